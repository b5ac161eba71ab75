//! MySQL's SQL dialect for the shared SQL layer ([`sql`]): backquoted
//! names, `?` placeholders, text keys ordered and bounded as utf8mb4 bytes,
//! and the date and date-time range conditions. The query itself is built
//! in [`sql`], never here.

use driftsum_core::coerce::{ColumnRule, TrailingSpaces};
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
    /// Text, compared in the column's collation.
    S(String),
    /// A decimal's text, cast to the column's own `DECIMAL(p,s)`.
    Decimal(String, String),
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

    fn placeholder(&self, _: usize, p: &Param) -> String {
        match p {
            Param::Decimal(_, ty) => format!("CAST(? AS {ty})"),
            _ => "?".into(),
        }
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

    /// The column as itself: text against text in its own collation (a
    /// case- or accent-blind one, or PAD SPACE, finds more rows, never
    /// fewer), a decimal against its text cast to the column's declared
    /// `DECIMAL(p,s)`, integers and bytes as they bind.
    fn key_equal(&self, c: &ColInfo, v: &Value) -> Option<(String, Param)> {
        let col = quote_ident(&c.name);
        match (c.ty?, v) {
            (LogicalType::Text, Value::Text(s)) => Some((col, Param::S(s.clone()))),
            (LogicalType::Decimal { .. }, Value::Text(s) | Value::Decimal(s)) => {
                Some((col, Param::Decimal(s.clone(), decimal_type(&c.declared)?)))
            }
            (LogicalType::Integer | LogicalType::Bytes, _) => bound_param(c, v).map(|p| (col, p)),
            _ => None,
        }
    }

    /// Text only when the rule keeps trailing spaces (a `NO PAD`
    /// collation's equality counts them); a decimal whose declared type a
    /// cast can name.
    fn looks_up(&self, c: &ColInfo, rule: &ColumnRule) -> bool {
        match (c.ty, rule.ty) {
            (Some(LogicalType::Integer), LogicalType::Integer) => c.wire != Wire::Unsupported,
            (Some(LogicalType::Bytes), LogicalType::Bytes) => true,
            (Some(LogicalType::Text), LogicalType::Text) => {
                rule.trailing_spaces == TrailingSpaces::Significant
            }
            (Some(LogicalType::Decimal { .. }), LogicalType::Decimal { .. }) => {
                decimal_type(&c.declared).is_some()
            }
            _ => false,
        }
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

/// `DECIMAL(p,s)` of a column declared `decimal(p,s)` (any case, `unsigned`
/// or `zerofill` after it), for a cast that holds each of its values
/// exactly; `None` for any other declaration.
fn decimal_type(declared: &str) -> Option<String> {
    let d = declared.trim().to_ascii_lowercase();
    let inner = d
        .strip_prefix("decimal(")
        .or_else(|| d.strip_prefix("numeric("))?;
    let (args, _) = inner.split_once(')')?;
    let (p, s) = args.split_once(',').unwrap_or((args, "0"));
    let (p, s): (u8, u8) = (p.trim().parse().ok()?, s.trim().parse().ok()?);
    Some(format!("DECIMAL({p},{s})"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimal_casts_hold_the_declared_type() {
        let t = |d: &str| decimal_type(d);
        assert_eq!(t("decimal(12,3)").as_deref(), Some("DECIMAL(12,3)"));
        assert_eq!(
            t("DECIMAL(65,30) unsigned").as_deref(),
            Some("DECIMAL(65,30)")
        );
        assert_eq!(t("numeric(10)").as_deref(), Some("DECIMAL(10,0)"));
        assert_eq!(
            t(" decimal( 5 , 2 ) zerofill").as_deref(),
            Some("DECIMAL(5,2)")
        );
        for odd in [
            "decimal",
            "double",
            "decimal(x,2)",
            "decimal(5,2",
            "varchar(5)",
        ] {
            assert_eq!(t(odd), None, "{odd}");
        }
    }
}
