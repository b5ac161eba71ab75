//! The SQL layer the connectors share: a small [`Dialect`] trait (how an
//! engine quotes names, writes placeholders, orders and bounds key columns)
//! and the one place that builds a scan's `SELECT … WHERE (keys) > (…) AND
//! (keys) <= (…) ORDER BY keys` from it, plus the one column lookup with its
//! unsupported-type check.
//!
//! The user's `--where` filter is put in parentheses as given and never
//! rewritten; no SQL text is rewritten after it is built. What differs
//! between engines (casts, collations, date conditions) lives in each
//! connector's dialect, not here; decoding is not here either.

use driftsum_core::coerce::ColumnRule;
use driftsum_core::key::{self, KeyRange};
use driftsum_core::{Key, LogicalType, Value};

use super::spec::ScanSpec;
use crate::error::SourceError;

/// A key's values, for a query's bounds.
pub fn decode_key(k: &Key) -> Result<Vec<Value>, SourceError> {
    key::decode(k.as_bytes())
        .ok_or_else(|| SourceError::Other("a tree key could not be decoded".into()))
}

/// How one engine writes the parts of a scan query.
pub trait Dialect {
    /// A column as the connector knows it from the catalog.
    type Column;
    /// A bound value as the connector's driver takes it.
    type Bind;

    /// Quotes an identifier, so no name can become SQL.
    fn quote(&self, name: &str) -> String;
    /// The text standing for bound value `bind`, the `n`th (from 1) of the
    /// query: a placeholder with any cast it needs.
    fn placeholder(&self, n: usize, bind: &Self::Bind) -> String;
    /// The expression a column is selected by.
    fn select_expr(&self, c: &Self::Column) -> String;
    /// The expression a key column is ordered by, in key-byte order.
    fn order_expr(&self, c: &Self::Column) -> String;
    /// The expression and bound value comparing key column `c` with `v` in
    /// key-byte order; `None` when `v` cannot be compared that way.
    fn key_bound(&self, c: &Self::Column, v: &Value) -> Option<(String, Self::Bind)>;

    /// Whether a range whose trailing key columns cannot be bound is still
    /// narrowed by its leading ones (see [`range_condition`]).
    fn prefix_ranges(&self) -> bool {
        false
    }

    /// Whether a range's condition on leading key column `c` (read as
    /// `lead`) is one the key's index serves: the column compared as itself
    /// in its own order, which is key-byte order, or by its dates or
    /// seconds ([`time_condition`](Dialect::time_condition)). Not a column
    /// compared through an expression (text in another collation compared
    /// as bytes) or not bounded at all (a decimal, whose key order is its
    /// text's): each range read of such a key is a scan of the table.
    fn bounds_by_index(&self, c: &Self::Column, lead: LogicalType) -> bool {
        let _ = (c, lead);
        false
    }

    /// The expression and bound value that find key column `c` equal to
    /// `v` through the key's index (the column compared as itself, with a
    /// value of its own type); `None` when there is none. It may find rows
    /// whose key is not `v` (an equality looser than key bytes, as a
    /// case-blind collation's), which callers drop; never miss the row.
    fn key_equal(&self, c: &Self::Column, v: &Value) -> Option<(String, Self::Bind)> {
        let _ = (c, v);
        None
    }

    /// Whether [`key_equal`](Dialect::key_equal) takes the values of key
    /// column `c` read by `rule`, and finds every row with each: not a
    /// column whose rule drops the trailing spaces its own equality counts
    /// (a key `'ab'` read from a stored `'ab '` would not be found).
    fn looks_up(&self, c: &Self::Column, rule: &ColumnRule) -> bool {
        let _ = (c, rule);
        false
    }

    /// A condition for a range `(after, through]` (as key values) no key
    /// column can bound by value, from the leading key column `c` read as
    /// `lead` (dates and timestamps); `None` when there is none.
    fn time_condition(
        &self,
        c: &Self::Column,
        lead: LogicalType,
        (after, through): Bounds<'_>,
        binds: &mut Binds<'_, Self>,
    ) -> Option<String> {
        let _ = (c, lead, after, through, binds);
        None
    }
}

/// The values bound to a query being built, numbered as they are added.
pub struct Binds<'d, D: Dialect + ?Sized> {
    dialect: &'d D,
    list: Vec<D::Bind>,
}

impl<'d, D: Dialect + ?Sized> Binds<'d, D> {
    pub fn new(dialect: &'d D) -> Self {
        Binds {
            dialect,
            list: Vec::new(),
        }
    }

    /// Adds `bind`, returning the text that stands for it in the SQL.
    pub fn mark(&mut self, bind: D::Bind) -> String {
        let text = self.dialect.placeholder(self.list.len() + 1, &bind);
        self.list.push(bind);
        text
    }

    pub fn into_vec(self) -> Vec<D::Bind> {
        self.list
    }
}

/// A key range's bounds as key values, `(after, through)`: what a range
/// query binds.
pub type Bounds<'a> = (Option<&'a [Value]>, &'a [Value]);

/// A query's text and the values bound to its placeholders, in order.
pub struct Query<B> {
    pub sql: String,
    pub binds: Vec<B>,
}

/// The range condition for `after < key <= through` (the bounds as key
/// values), written so the
/// primary key's index can serve it; `None` when no key column can be
/// bounded (the caller then reads the whole table, which is always
/// correct). It may select more rows than the range holds (callers filter
/// by key), never fewer:
///
/// - every key column bound by value: the exact tuple comparison;
/// - else, where the dialect allows [`prefix_ranges`](Dialect::prefix_ranges),
///   the leading columns that can be bound, compared as a tuple inclusively
///   (a key's encoding is its columns' encodings one after another, each
///   self-delimiting, so a key in the range has its leading columns in the
///   range of the bounds' leading columns);
/// - else the dialect's [`time_condition`](Dialect::time_condition) on the
///   leading column.
///
/// `lead` is the logical type the leading key column is read as (its
/// rule's), which decides the form of its key text.
pub fn range_condition<D: Dialect + ?Sized>(
    d: &D,
    keys: &[&D::Column],
    lead: LogicalType,
    (after, through): Bounds<'_>,
    binds: &mut Binds<'_, D>,
) -> Option<String> {
    if through.len() != keys.len() || after.is_some_and(|a| a.len() != keys.len()) {
        return None;
    }
    let sides = || {
        after
            .map(|a| (a, ">", ">="))
            .into_iter()
            .chain(std::iter::once((through, "<=", "<=")))
    };
    // How many leading columns every bound can express in SQL.
    let exact = sides()
        .map(|(vals, _, _)| {
            keys.iter()
                .zip(vals)
                .take_while(|(c, v)| d.key_bound(c, v).is_some())
                .count()
        })
        .min()
        .unwrap_or(0);
    if exact == 0 || (exact < keys.len() && !d.prefix_ranges()) {
        return d.time_condition(keys.first()?, lead, (after, through), binds);
    }
    let mut conds = Vec::new();
    for (vals, strict, inclusive) in sides() {
        let op = if exact == keys.len() {
            strict
        } else {
            inclusive
        };
        let mut cols = Vec::new();
        let mut marks = Vec::new();
        for (c, v) in keys.iter().zip(vals).take(exact) {
            let (col, bind) = d.key_bound(c, v)?;
            cols.push(col);
            marks.push(binds.mark(bind));
        }
        conds.push(format!("({}) {op} ({})", cols.join(", "), marks.join(", ")));
    }
    Some(conds.join(" AND "))
}

/// What one scan reads: the scan's spec (for the user's filter, and the
/// logical type its leading key column is read as), the FROM item, the
/// selected columns (key columns first), the key columns and the key range.
pub struct Scan<'a, C> {
    pub spec: &'a ScanSpec,
    /// The FROM item, quoted already.
    pub from: String,
    pub columns: &'a [&'a C],
    pub keys: &'a [&'a C],
    /// `None` for the whole table.
    pub range: Option<&'a KeyRange>,
    /// Whether the rows must come in key order (`ORDER BY` the keys); a
    /// whole-table scan whose caller places rows itself may leave the order
    /// to the engine ([`Source::scan_unordered`](super::Source::scan_unordered)).
    pub in_key_order: bool,
}

/// The one scan query: `SELECT … FROM … [WHERE (filter) AND range] [ORDER BY
/// keys]`, with its bound values; an error only when a range's keys cannot
/// be decoded into values.
pub fn scan_query<D: Dialect + ?Sized>(
    d: &D,
    scan: &Scan<'_, D::Column>,
) -> Result<Query<D::Bind>, SourceError> {
    let mut binds = Binds::new(d);
    let mut conds = Vec::new();
    if let Some(f) = &scan.spec.filter {
        conds.push(format!("({f})"));
    }
    if let Some(r) = scan.range {
        let lead = scan
            .spec
            .key
            .first()
            .map_or(LogicalType::Dynamic, |k| k.rule.ty);
        let after = r.after.as_ref().map(decode_key).transpose()?;
        let through = decode_key(&r.through)?;
        let bounds = (after.as_deref(), through.as_slice());
        if let Some(c) = range_condition(d, scan.keys, lead, bounds, &mut binds) {
            conds.push(c);
        }
    }
    let mut sql = select_from(d, scan);
    if !conds.is_empty() {
        sql.push_str(" WHERE ");
        sql.push_str(&conds.join(" AND "));
    }
    if scan.in_key_order && !scan.keys.is_empty() {
        let order: Vec<String> = scan.keys.iter().map(|c| d.order_expr(c)).collect();
        sql.push_str(" ORDER BY ");
        sql.push_str(&order.join(", "));
    }
    Ok(Query {
        sql,
        binds: binds.into_vec(),
    })
}

/// `SELECT <the scan's columns> FROM <its FROM item>`.
fn select_from<D: Dialect + ?Sized>(d: &D, scan: &Scan<'_, D::Column>) -> String {
    let exprs: Vec<String> = scan.columns.iter().map(|c| d.select_expr(c)).collect();
    format!(
        "SELECT {} FROM {}",
        if exprs.is_empty() {
            "1".to_string()
        } else {
            exprs.join(", ")
        },
        scan.from
    )
}

/// Whether every key column of `scan` can be looked up by equality (see
/// [`Dialect::looks_up`]).
pub fn looks_up<D: Dialect + ?Sized>(d: &D, spec: &ScanSpec, keys: &[&D::Column]) -> bool {
    keys.len() == spec.key.len()
        && !keys.is_empty()
        && keys
            .iter()
            .zip(&spec.key)
            .all(|(c, k)| d.looks_up(c, &k.rule))
}

/// Keys looked up by one query of [`keys_queries`]: a bound value each (a
/// key column each), far below every engine's limit on them.
pub const KEYS_PER_QUERY: usize = 1000;

/// The queries for the rows of `keys` (each a key's values),
/// [`KEYS_PER_QUERY`] keys to a query (see [`keys_query`]), every one built
/// before any is run, so that a key that cannot be looked up leaves nothing
/// read: `None` when the scan's key columns cannot be looked up
/// ([`looks_up`]) or a key has a value [`Dialect::key_equal`] does not take.
pub fn keys_queries<D: Dialect + ?Sized>(
    d: &D,
    scan: &Scan<'_, D::Column>,
    keys: &[Vec<Value>],
) -> Option<Vec<Query<D::Bind>>> {
    if !looks_up(d, scan.spec, scan.keys) {
        return None;
    }
    keys.chunks(KEYS_PER_QUERY)
        .map(|batch| keys_query(d, scan, batch))
        .collect()
}

/// The query for the rows of `keys` (each a key's values): `SELECT … FROM
/// … WHERE [(filter) AND] (k = … OR …)`, in no particular order, every key
/// column compared by [`Dialect::key_equal`] so that the key's index finds
/// each row; `None` when a key has a value no such comparison takes, or
/// there are no keys. `scan`'s range and order are not used.
fn keys_query<D: Dialect + ?Sized>(
    d: &D,
    scan: &Scan<'_, D::Column>,
    keys: &[Vec<Value>],
) -> Option<Query<D::Bind>> {
    let mut binds = Binds::new(d);
    // One key column: `k IN (…)`, one index scan for the list; more: an OR
    // of each key's equalities, each its own index lookup.
    let mut column = None;
    let mut each = Vec::with_capacity(keys.len());
    for key in keys {
        if key.len() != scan.keys.len() {
            return None;
        }
        let mut parts = Vec::with_capacity(key.len());
        for (c, v) in scan.keys.iter().zip(key) {
            let (col, bind) = d.key_equal(c, v)?;
            let mark = binds.mark(bind);
            match scan.keys.len() {
                1 => {
                    column.get_or_insert(col);
                    parts.push(mark);
                }
                _ => parts.push(format!("{col} = {mark}")),
            }
        }
        each.push(match parts.len() {
            1 => parts.remove(0),
            _ => format!("({})", parts.join(" AND ")),
        });
    }
    if each.is_empty() {
        return None;
    }
    let mut sql = select_from(d, scan);
    sql.push_str(" WHERE ");
    if let Some(f) = &scan.spec.filter {
        sql.push_str(&format!("({f}) AND "));
    }
    match column {
        Some(col) => sql.push_str(&format!("{col} IN ({})", each.join(", "))),
        None => sql.push_str(&format!("({})", each.join(" OR "))),
    }
    Some(Query {
        sql,
        binds: binds.into_vec(),
    })
}

/// A column of a server's catalog, as the shared lookup needs it.
pub trait CatalogColumn {
    fn name(&self) -> &str;
    /// The type as declared, for messages.
    fn declared(&self) -> &str;
    /// Whether the connector can read the column's values.
    fn supported(&self) -> bool;
}

/// A scan's columns found in a table's catalog columns: the key columns,
/// and every scanned column (keys first) in [`ScanSpec`] order. A missing
/// column is [`SourceError::NoColumn`], one of a type the connector cannot
/// read [`SourceError::UnsupportedType`].
#[allow(clippy::type_complexity)]
pub fn scan_columns<'c, C: CatalogColumn>(
    spec: &ScanSpec,
    table: &'c [C],
) -> Result<(Vec<&'c C>, Vec<&'c C>), SourceError> {
    let find = |name: &str| -> Result<&'c C, SourceError> {
        let c = table
            .iter()
            .find(|c| c.name() == name)
            .ok_or_else(|| SourceError::NoColumn {
                table: spec.table.clone(),
                column: name.to_string(),
            })?;
        if !c.supported() {
            return Err(SourceError::UnsupportedType {
                table: spec.table.clone(),
                column: c.name().to_string(),
                declared: c.declared().to_string(),
            });
        }
        Ok(c)
    };
    let keys = spec
        .key
        .iter()
        .map(|k| find(&k.name))
        .collect::<Result<Vec<_>, _>>()?;
    let cols = spec
        .columns()
        .map(|c| find(&c.name))
        .collect::<Result<Vec<_>, _>>()?;
    Ok((keys, cols))
}

/// The position of the first key column that `is_timestamp` (as stored)
/// and is read as a timestamp: its rows then need putting in key-byte order
/// (see [`super::key_order::KeyOrder`]).
pub fn timestamp_key<C>(
    spec: &ScanSpec,
    keys: &[&C],
    is_timestamp: impl Fn(&C) -> bool,
) -> Option<usize> {
    spec.key.iter().zip(keys).position(|(k, c)| {
        is_timestamp(c)
            && matches!(
                k.rule.ty,
                LogicalType::Timestamp { .. } | LogicalType::TimestampNaive { .. }
            )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A dialect of plain integers and text, bound as `?`.
    struct Plain;

    impl Dialect for Plain {
        type Column = &'static str;
        type Bind = Value;
        fn quote(&self, name: &str) -> String {
            crate::source::spec::quote_ident(name)
        }
        fn placeholder(&self, _: usize, _: &Value) -> String {
            "?".into()
        }
        fn select_expr(&self, c: &&'static str) -> String {
            self.quote(c)
        }
        fn order_expr(&self, c: &&'static str) -> String {
            self.quote(c)
        }
        fn key_bound(&self, c: &&'static str, v: &Value) -> Option<(String, Value)> {
            matches!(v, Value::Int(_)).then(|| (self.quote(c), v.clone()))
        }
    }

    fn int_spec(keys: &[&str], filter: Option<&str>) -> ScanSpec {
        let int = |name: &&str| crate::source::spec::ColumnSpec {
            name: name.to_string(),
            rule: driftsum_core::coerce::ColumnRule::new(LogicalType::Integer),
        };
        ScanSpec {
            table: "t".into(),
            key: keys.iter().map(int).collect(),
            values: Vec::new(),
            filter: filter.map(str::to_string),
            ranges: Vec::new(),
        }
    }

    #[test]
    fn scans_are_built_once() {
        let (a, b) = ("a", "b");
        let bounds = KeyRange {
            after: Some(key::encode(&[Value::Int(1), Value::Int(2)])),
            through: key::encode(&[Value::Int(3), Value::Int(4)]),
        };
        let q = scan_query(
            &Plain,
            &Scan {
                spec: &int_spec(&["a", "b"], Some("a > 0")),
                from: "\"t\"".into(),
                columns: &[&a, &b],
                keys: &[&a, &b],
                range: Some(&bounds),
                in_key_order: true,
            },
        )
        .expect("keys decode");
        assert_eq!(
            q.sql,
            "SELECT \"a\", \"b\" FROM \"t\" WHERE (a > 0) AND (\"a\", \"b\") > (?, ?) \
             AND (\"a\", \"b\") <= (?, ?) ORDER BY \"a\", \"b\""
        );
        assert_eq!(q.binds.len(), 4);
        // A bound that cannot be expressed leaves the range out.
        let odd = KeyRange {
            after: None,
            through: key::encode(&[Value::Int(3), Value::Text("x".into())]),
        };
        let q = scan_query(
            &Plain,
            &Scan {
                spec: &int_spec(&["a", "b"], None),
                from: "\"t\"".into(),
                columns: &[],
                keys: &[&a, &b],
                range: Some(&odd),
                in_key_order: true,
            },
        )
        .expect("keys decode");
        assert_eq!(q.sql, "SELECT 1 FROM \"t\" ORDER BY \"a\", \"b\"");
        assert!(q.binds.is_empty());
        // Bytes that are not a key are an error, never a guessed bound.
        let broken = KeyRange {
            after: None,
            through: driftsum_core::Key::from_bytes(&[0x31, b'x']),
        };
        let q = scan_query(
            &Plain,
            &Scan {
                spec: &int_spec(&["a"], None),
                from: "\"t\"".into(),
                columns: &[],
                keys: &[&a],
                range: Some(&broken),
                in_key_order: true,
            },
        );
        assert!(q.is_err());
    }
}
