//! PostgreSQL's SQL dialect for the shared SQL layer ([`sql`]): how a
//! column is selected and ordered in key-byte order, how key values are
//! bound (with their casts), and the date and timestamp range conditions.
//! The query itself is built in [`sql`], never here.

use driftsum_core::coerce::{ColumnRule, TrailingSpaces};
use driftsum_core::{LogicalType, Value};

use super::column::{PgColumn, Wire};
use crate::source::spec::quote_ident;
use crate::source::sql::Bounds;
use crate::source::{server, sql};

/// The SQL expression that reads a column.
pub(super) fn select_expr(c: &PgColumn) -> String {
    match c.wire {
        Wire::PaddedText | Wire::EnumText | Wire::Cast => {
            format!("{}::text", quote_ident(&c.name))
        }
        _ => quote_ident(&c.name),
    }
}

/// The SQL expression a key column is ordered by, in key-byte order: text in
/// the "C" collation (byte order of UTF-8) unless its own collation already
/// is byte order (then its index serves the order); enums by label, not by
/// position; numerics by their text, as their keys are (a canonical text
/// without trailing fraction zeros, which orders as PostgreSQL's fixed-scale
/// text does; should a key not, the tree builder finds it out of order and
/// sorts).
pub(super) fn order_expr(c: &PgColumn) -> String {
    match c.wire {
        Wire::Text if c.byte_order => quote_ident(&c.name),
        Wire::Text | Wire::PaddedText => format!("{} COLLATE \"C\"", quote_ident(&c.name)),
        Wire::EnumText | Wire::Numeric => {
            format!("{}::text COLLATE \"C\"", quote_ident(&c.name))
        }
        _ => quote_ident(&c.name),
    }
}

/// One bound key value for a range condition.
pub(super) enum Bind {
    /// An integer, compared as `int8`.
    Int(i64),
    /// Text cast in SQL to the named type (`text`, `uuid`, `date`, …).
    Cast(String, &'static str),
    Bytes(Vec<u8>),
}

/// PostgreSQL's SQL: double-quoted names, `$n` placeholders with the cast
/// each bound value needs, text keys in the "C" collation.
pub(super) struct PgSql {
    /// Integer bounds written as literals, which integers cannot abuse, so
    /// that a scan with no other bound values can be read through COPY
    /// (which takes no parameters).
    pub(super) inline_ints: bool,
}

impl sql::Dialect for PgSql {
    type Column = PgColumn;
    type Bind = Bind;

    fn quote(&self, name: &str) -> String {
        quote_ident(name)
    }

    fn placeholder(&self, n: usize, bind: &Bind) -> String {
        match bind {
            // Quoted: `-9223372036854775808::int8` would cast before
            // negating, and overflow.
            Bind::Int(i) if self.inline_ints => format!("'{i}'::int8"),
            Bind::Int(_) => format!("${n}::int8"),
            Bind::Cast(_, ty) => format!("CAST(${n} AS {ty})"),
            Bind::Bytes(_) => format!("${n}::bytea"),
        }
    }

    fn select_expr(&self, c: &PgColumn) -> String {
        select_expr(c)
    }

    fn order_expr(&self, c: &PgColumn) -> String {
        order_expr(c)
    }

    /// Compared in the column's own order when that is key-byte order.
    /// Bound values may come from the other side, so they are never cast to
    /// a narrower type (`varchar(5)`, `integer`) that could truncate or
    /// overflow.
    fn key_bound(&self, c: &PgColumn, v: &Value) -> Option<(String, Bind)> {
        let col = quote_ident(&c.name);
        Some(match (c.wire, v) {
            (Wire::Int, Value::Int(i)) => (col, Bind::Int((*i).try_into().ok()?)),
            (Wire::Text, Value::Text(s)) if !s.contains('\0') => {
                (order_expr(c), Bind::Cast(s.clone(), "text"))
            }
            // Compared as the trimmed text driftsum reads, exactly.
            (Wire::PaddedText | Wire::EnumText, Value::Text(s)) if !s.contains('\0') => (
                format!("{col}::text COLLATE \"C\""),
                Bind::Cast(s.clone(), "text"),
            ),
            (Wire::Bytes, Value::Bytes(b)) => (col, Bind::Bytes(b.clone())),
            (Wire::Uuid, Value::Uuid(_)) => (col, Bind::Cast(v.to_string(), "uuid")),
            _ => return None,
        })
    }

    /// Leading key columns in key-byte order narrow a range alone.
    fn prefix_ranges(&self) -> bool {
        true
    }

    /// The column as itself against a value cast to its kind: text (under
    /// any collation: a deterministic one's equality is byte equality, a
    /// case-blind one's finds more), `char(n)` as `bpchar` (blind to the
    /// trailing spaces a key drops), numerics, integers, `uuid`, `bytea`.
    fn key_equal(&self, c: &PgColumn, v: &Value) -> Option<(String, Bind)> {
        let bind = match (c.wire, v) {
            (Wire::Int, Value::Int(i)) => Bind::Int((*i).try_into().ok()?),
            (Wire::Text, Value::Text(s)) if !s.contains('\0') => Bind::Cast(s.clone(), "text"),
            (Wire::PaddedText, Value::Text(s)) if !s.contains('\0') => {
                Bind::Cast(s.clone(), "bpchar")
            }
            (Wire::Numeric, Value::Text(s) | Value::Decimal(s)) => Bind::Cast(s.clone(), "numeric"),
            (Wire::Bytes, Value::Bytes(b)) => Bind::Bytes(b.clone()),
            (Wire::Uuid, Value::Uuid(_)) => Bind::Cast(v.to_string(), "uuid"),
            _ => return None,
        };
        Some((quote_ident(&c.name), bind))
    }

    /// `char(n)` whatever the rule (its equality ignores the padding);
    /// other text only when the rule keeps trailing spaces.
    fn looks_up(&self, c: &PgColumn, rule: &ColumnRule) -> bool {
        match (c.wire, rule.ty) {
            (Wire::Int, LogicalType::Integer)
            | (Wire::Bytes, LogicalType::Bytes)
            | (Wire::Uuid, LogicalType::Uuid)
            | (Wire::Numeric, LogicalType::Decimal { .. })
            | (Wire::PaddedText, LogicalType::Text) => true,
            (Wire::Text, LogicalType::Text) => rule.trailing_spaces == TrailingSpaces::Significant,
            _ => false,
        }
    }

    fn bounds_by_index(&self, c: &PgColumn, lead: LogicalType) -> bool {
        match (c.wire, lead) {
            (Wire::Int, LogicalType::Integer)
            | (Wire::Bytes, LogicalType::Bytes)
            | (Wire::Uuid, LogicalType::Uuid) => true,
            (Wire::Text, LogicalType::Text) => c.byte_order,
            _ => time_key(c, lead).is_some(),
        }
    }

    /// The condition for a leading date or timestamp key column `c`: its
    /// values from the first bound's date (or second) through the last
    /// one's, plus every value outside the years 1000..9999 and NULL, whose
    /// key text has another shape and so another place in key order. Each
    /// part is an index range (PostgreSQL ORs their bitmaps). `None` when
    /// neither bound has such a date.
    fn time_condition(
        &self,
        c: &PgColumn,
        lead: LogicalType,
        bounds: Bounds<'_>,
        binds: &mut sql::Binds<'_, Self>,
    ) -> Option<String> {
        let (kind, ty, step) = time_key(c, lead)?;
        let utc = if ty == "timestamptz" { "+00" } else { "" };
        let (lo, hi) = server::time_bounds(bounds, kind)?;
        let col = quote_ident(&c.name);
        let mut inside = Vec::new();
        if let Some(lo) = lo {
            let m = binds.mark(Bind::Cast(format!("{lo}{utc}"), ty));
            inside.push(format!("{col} >= {m}"));
        }
        if let Some(hi) = hi {
            let m = binds.mark(Bind::Cast(format!("{hi}{utc}"), ty));
            inside.push(match step {
                Some(step) => format!("{col} < {m} + {step}"),
                None => format!("{col} <= {m}"),
            });
        }
        let (first, past) = server::TIME_REGULAR;
        Some(format!(
            "(({}) OR {col} < '{first}{utc}'::{ty} OR {col} >= '{past}{utc}'::{ty} \
             OR {col} IS NULL)",
            inside.join(" AND ")
        ))
    }
}

/// How a leading date or timestamp key column `c` read as `lead` is bounded
/// (see [`sql::Dialect::time_condition`]): its key kind, the SQL type its
/// bounds are cast to, and the step past the last bound's second. Only a
/// column read as its own kind has key text of that shape (a timestamp read
/// as a date is invalid off midnight).
fn time_key(
    c: &PgColumn,
    lead: LogicalType,
) -> Option<(server::TimeKey, &'static str, Option<&'static str>)> {
    use LogicalType as T;
    let second = Some("interval '1 second'");
    Some(match (c.wire, c.ty, lead) {
        (Wire::Date, _, T::Date) => (server::TimeKey::Date, "date", None),
        (Wire::Timestamp, T::Timestamp { .. }, T::Timestamp { .. } | T::TimestampNaive { .. }) => {
            (server::TimeKey::Second, "timestamptz", second)
        }
        (
            Wire::Timestamp,
            T::TimestampNaive { .. },
            T::Timestamp { .. } | T::TimestampNaive { .. },
        ) => (server::TimeKey::Second, "timestamp", second),
        _ => return None,
    })
}
