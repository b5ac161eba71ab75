//! SQLite's SQL for scans: the [`sql::Dialect`] that quotes, orders and
//! binds keys, and when a key range may be put in a WHERE clause at all
//! (date and time keys only in a text form proven by `time_keys`). The scan
//! itself is in the connector.

use driftsum_core::coerce::TrailingSpaces;
use driftsum_core::{LogicalType, Value};
use rusqlite::types::ValueRef;

use super::time_keys::{KeyShapes, TextShape};
use super::types::decode;
use crate::source::spec::{quote_ident, ColumnSpec, ScanSpec};
use crate::source::sql;

/// Whether a key value is stored in the storage class its logical type
/// expects; only then does an SQL range comparison find it. Date and time
/// keys are not judged row by row: their ranges need a proof over the whole
/// table (see [`SqliteSql::range_friendly`]).
pub(super) fn stored_as_declared(v: ValueRef<'_>, ty: LogicalType) -> bool {
    ty.is_temporal()
        || matches!(
            (v, ty),
            (ValueRef::Integer(_), LogicalType::Integer)
                | (ValueRef::Text(_), LogicalType::Text)
                | (ValueRef::Blob(_), LogicalType::Bytes)
        )
}

/// SQLite's SQL: a scan's columns are read as the [`ColumnSpec`] names
/// them, and every key value can be bound (a scan whose keys SQL cannot
/// range over is read whole, see [`SqliteSql::range_friendly`]).
#[derive(Default)]
pub(super) struct SqliteSql {
    /// The proven text forms of the scan's date and time key columns (see
    /// `time_keys`); a column not listed, or listed with `None`, has none.
    pub shapes: KeyShapes,
    /// Whether the key has more than one column: a bound rounded down to
    /// its form is then no bound (see [`sql::Dialect::key_bound`] here).
    pub compound: bool,
}

impl SqliteSql {
    fn shape(&self, c: &ColumnSpec) -> Option<&TextShape> {
        self.shapes
            .iter()
            .find(|(name, _)| *name == c.name)
            .and_then(|(_, s)| s.as_ref())
    }

    /// Whether SQL comparisons on these key columns follow key-byte order,
    /// so a range can be put in a WHERE clause (a UUID may be stored as text
    /// or blob, whose SQL order differs; a timestamp as text in any form, or
    /// a number). Each scan also checks the stored values (see
    /// [`stored_as_declared`]).
    pub(super) fn range_friendly(&self, spec: &ScanSpec) -> bool {
        spec.key.iter().all(|k| {
            // A key read without its trailing spaces (a `char(n)` source's)
            // is not the stored text that SQL compares: `'ab  ' <= 'ab'` is
            // false, and the row would fall out of its range.
            k.rule.trailing_spaces == TrailingSpaces::Significant
                && (matches!(
                    k.rule.ty,
                    LogicalType::Integer | LogicalType::Text | LogicalType::Bytes
                ) || self.shape(k).is_some())
        })
    }
}

impl sql::Dialect for SqliteSql {
    type Column = ColumnSpec;
    type Bind = rusqlite::types::Value;

    fn quote(&self, name: &str) -> String {
        quote_ident(name)
    }

    fn placeholder(&self, _: usize, _: &Self::Bind) -> String {
        "?".into()
    }

    fn select_expr(&self, c: &ColumnSpec) -> String {
        quote_ident(&c.name)
    }

    fn order_expr(&self, c: &ColumnSpec) -> String {
        match c.rule.ty {
            // Text keys compare bytewise whatever the column's collation.
            LogicalType::Text => format!("{} COLLATE BINARY", quote_ident(&c.name)),
            _ => quote_ident(&c.name),
        }
    }

    fn key_bound(&self, c: &ColumnSpec, v: &Value) -> Option<(String, Self::Bind)> {
        if c.rule.ty.is_temporal() {
            // Every stored key is its value written in the proven form, so
            // comparing texts in that form compares values. A bound finer
            // than the form is rounded down: the stored values, all on the
            // form's grid, compare with it as with the bound itself for `>`
            // and `<=` alike; but inside a tuple comparison the equal case
            // would then be wrong.
            let shape = self.shape(c)?;
            // A bound decoded from key bytes holds the value's ISO text;
            // read it back as the column's type, and only if that is the
            // value the key named.
            let typed;
            let v = match v {
                Value::Text(s) => {
                    typed = decode(ValueRef::Text(s.as_bytes()), &c.rule).ok()?;
                    if typed.to_string() != *s {
                        return None;
                    }
                    &typed
                }
                v => v,
            };
            let mut text = Vec::new();
            let exact = shape.write(v, &c.rule, &mut text)?;
            if !exact && self.compound {
                return None;
            }
            let text = String::from_utf8(text).ok()?;
            return Some((self.order_expr(c), rusqlite::types::Value::Text(text)));
        }
        Some((self.order_expr(c), to_sql(v)))
    }
}

fn to_sql(v: &Value) -> rusqlite::types::Value {
    use rusqlite::types::Value as S;
    match v {
        Value::Int(i) => i64::try_from(*i).map_or_else(|_| S::Text(i.to_string()), S::Integer),
        Value::Text(s) => S::Text(s.clone()),
        Value::Bytes(b) => S::Blob(b.clone()),
        Value::Null => S::Null,
        other => S::Text(other.to_string()),
    }
}
