//! MySQL's SQL dialect for the shared SQL layer ([`sql`]): backquoted
//! names, `?` placeholders, text keys ordered and bounded as utf8mb4 bytes,
//! and the date and date-time range conditions. The query itself is built
//! in [`sql`], never here.

use driftsum_core::{LogicalType, Value};

use super::column::{ColInfo, Wire};
use crate::source::sql::Bounds;
use crate::source::{server, sql};

/// Backtick-quotes a MySQL identifier, so no name can become SQL.
pub fn quote_ident(name: &str) -> String {
    format!("`{}`", name.replace('`', "``"))
}

/// A key bound value, bound as a parameter.
pub(super) enum Param {
    I(i64),
    U(u64),
    B(Vec<u8>),
}

/// The parameter comparing `v` with a key column read as `col`, when SQL
/// comparison on it follows key-byte order; `None` when it cannot.
pub(super) fn bound_param(col: &ColInfo, v: &Value) -> Option<Param> {
    match (col.ty?, v) {
        (LogicalType::Integer, Value::Int(i)) if col.wire != Wire::Unsupported => {
            if let Ok(i) = i64::try_from(*i) {
                Some(Param::I(i))
            } else {
                u64::try_from(*i).ok().map(Param::U)
            }
        }
        (LogicalType::Text, Value::Text(s)) => Some(Param::B(s.as_bytes().to_vec())),
        (LogicalType::Bytes, Value::Bytes(b)) => Some(Param::B(b.clone())),
        (LogicalType::Uuid, Value::Uuid(u)) => {
            Some(Param::B(driftsum_core::value::format_uuid(u).into_bytes()))
        }
        _ => None,
    }
}

/// MySQL's SQL: backquoted names, `?` placeholders, text keys ordered as
/// utf8mb4 bytes.
pub(super) struct MySqlSql;

impl sql::Dialect for MySqlSql {
    type Column = ColInfo;
    type Bind = Param;

    fn quote(&self, name: &str) -> String {
        quote_ident(name)
    }

    fn placeholder(&self, _: usize, _: &Param) -> String {
        "?".into()
    }

    fn select_expr(&self, c: &ColInfo) -> String {
        select_expr(c)
    }

    fn order_expr(&self, c: &ColInfo) -> String {
        order_expr(c)
    }

    fn key_bound(&self, c: &ColInfo, v: &Value) -> Option<(String, Param)> {
        bound_param(c, v).map(|p| (order_expr(c), p))
    }

    fn bounds_by_index(&self, c: &ColInfo, lead: LogicalType) -> bool {
        match (c.ty, lead) {
            (Some(LogicalType::Integer), LogicalType::Integer) => c.wire != Wire::Unsupported,
            (Some(LogicalType::Bytes), LogicalType::Bytes) => true,
            (Some(LogicalType::Text), LogicalType::Text) => c.byte_order,
            _ => time_key(c, lead).is_some(),
        }
    }

    /// The condition for a leading DATE, DATETIME or TIMESTAMP key column
    /// `c` read as `lead`: its values from the first bound's date (or
    /// second) through the last one's, plus zero dates, years before 1000
    /// and NULL, whose key text has another shape (see
    /// [`server::time_prefix`]); each an index range. `None` when neither
    /// bound has such a date.
    fn time_condition(
        &self,
        c: &ColInfo,
        lead: LogicalType,
        bounds: Bounds<'_>,
        binds: &mut sql::Binds<'_, Self>,
    ) -> Option<String> {
        let kind = time_key(c, lead)?;
        let (lo, hi) = server::time_bounds(bounds, kind)?;
        let col = quote_ident(&c.name);
        let mut inside = Vec::new();
        if let Some(lo) = lo {
            let m = binds.mark(Param::B(lo.into_bytes()));
            inside.push(format!("{col} >= {m}"));
        }
        if let Some(hi) = hi {
            let m = binds.mark(Param::B(hi.into_bytes()));
            inside.push(match kind {
                server::TimeKey::Date => format!("{col} <= {m}"),
                server::TimeKey::Second => format!("{col} < {m} + INTERVAL 1 SECOND"),
            });
        }
        // The server holds no year past 9999.
        let first = server::TIME_REGULAR.0;
        Some(format!(
            "(({}) OR {col} < '{first}' OR {col} IS NULL)",
            inside.join(" AND ")
        ))
    }
}

/// The expression a key column is ordered and bounded by: its value, or for
/// text its utf8mb4 bytes, so the order is key-byte order whatever the
/// collation (and trailing spaces count). That costs a sort on the server;
/// a column whose collation already orders by code point is left as is, so
/// its index serves the order.
pub(super) fn order_expr(col: &ColInfo) -> String {
    let q = quote_ident(&col.name);
    match col.ty {
        Some(LogicalType::Text) if col.byte_order => q,
        Some(LogicalType::Text) => format!("CAST(CONVERT({q} USING utf8mb4) AS BINARY)"),
        // A decimal's key is its canonical text (no trailing fraction
        // zeros), which orders as the server's fixed-scale text does;
        // should a key not, the tree builder finds it out of order.
        Some(LogicalType::Uuid | LogicalType::Decimal { .. }) => {
            format!("CAST(CAST({q} AS CHAR) AS BINARY)")
        }
        _ => q,
    }
}

/// The expression a column is selected by.
pub(super) fn select_expr(col: &ColInfo) -> String {
    let q = quote_ident(&col.name);
    match col.wire {
        Wire::Cast => format!("CAST({q} AS CHAR)"),
        _ => q,
    }
}

/// How a leading DATE, DATETIME or TIMESTAMP key column `c` read as `lead`
/// is bounded (see [`sql::Dialect::time_condition`]).
fn time_key(c: &ColInfo, lead: LogicalType) -> Option<server::TimeKey> {
    use LogicalType as T;
    match (c.wire, lead) {
        (Wire::Date, T::Date) => Some(server::TimeKey::Date),
        (Wire::DateTime { .. }, T::Timestamp { .. } | T::TimestampNaive { .. }) => {
            Some(server::TimeKey::Second)
        }
        _ => None,
    }
}
