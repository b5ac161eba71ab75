//! SQLite's SQL for scans: the [`sql::Dialect`] that quotes, orders and
//! binds keys, and when a key range may be put in a WHERE clause at all.
//! The scan itself is in the connector.

use driftsum_core::coerce::TrailingSpaces;
use driftsum_core::{LogicalType, Value};
use rusqlite::types::ValueRef;

use crate::source::spec::{quote_ident, ColumnSpec, ScanSpec};
use crate::source::sql;

/// Whether SQL comparisons on these key columns follow key-byte order, so a
/// range can be put in a WHERE clause (a UUID may be stored as text or blob,
/// whose SQL order differs). Each scan also checks the stored values (see
/// [`stored_as_declared`]).
pub(super) fn range_friendly(spec: &ScanSpec) -> bool {
    spec.key.iter().all(|k| {
        // A key read without its trailing spaces (a `char(n)` source's)
        // is not the stored text that SQL compares: `'ab  ' <= 'ab'` is
        // false, and the row would fall out of its range.
        k.rule.trailing_spaces == TrailingSpaces::Significant
            && matches!(
                k.rule.ty,
                LogicalType::Integer | LogicalType::Text | LogicalType::Bytes
            )
    })
}

/// Whether a key value is stored in the storage class its logical type
/// expects; only then does an SQL range comparison find it.
pub(super) fn stored_as_declared(v: ValueRef<'_>, ty: LogicalType) -> bool {
    matches!(
        (v, ty),
        (ValueRef::Integer(_), LogicalType::Integer)
            | (ValueRef::Text(_), LogicalType::Text)
            | (ValueRef::Blob(_), LogicalType::Bytes)
    )
}

/// SQLite's SQL: a scan's columns are read as the [`ColumnSpec`] names
/// them, and every key value can be bound (a scan whose keys SQL cannot
/// range over is read whole, see [`range_friendly`]).
pub(super) struct SqliteSql;

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
