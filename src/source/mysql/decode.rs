//! Decoding MySQL values as the binary protocol delivers them into the
//! logical type of a scan's column rule (dates and date-times through
//! [`datetime`](super::datetime)).

use driftsum_core::coerce::ColumnRule;
use driftsum_core::{LogicalType, Value};
use sqlx::mysql::MySqlRow;
use sqlx::Row;

use super::column::Wire;
use super::datetime;
use crate::source::text::utf8;

/// Decodes column `i` of `row`, read as `wire`, into `rule`'s logical type.
fn decode(row: &MySqlRow, i: usize, wire: Wire, rule: &ColumnRule) -> Result<Value, sqlx::Error> {
    Ok(match wire {
        Wire::Int => match row.try_get_unchecked::<Option<i64>, _>(i)? {
            None => Value::Null,
            Some(v) => rule.from_int(v),
        },
        Wire::UInt => match row.try_get_unchecked::<Option<u64>, _>(i)? {
            None => Value::Null,
            Some(v) => match i64::try_from(v) {
                Ok(v) => rule.from_int(v),
                Err(_) => match rule.ty {
                    LogicalType::Integer | LogicalType::Dynamic => {
                        rule.finish(Value::Int(v as i128))
                    }
                    _ => rule.from_text(&v.to_string()),
                },
            },
        },
        Wire::Float => match row.try_get_unchecked::<Option<f64>, _>(i)? {
            None => Value::Null,
            Some(v) => rule.from_real(v),
        },
        Wire::Bytes => match row.try_get_unchecked::<Option<&[u8]>, _>(i)? {
            None => Value::Null,
            Some(b) => rule.from_blob(b),
        },
        Wire::DateTime { fsp } => match datetime_bytes(row, i)? {
            None => Value::Null,
            Some(b) => datetime::decode(b, false, fsp, rule),
        },
        Wire::Date => match datetime_bytes(row, i)? {
            None => Value::Null,
            Some(b) => datetime::decode(b, true, 0, rule),
        },
        Wire::Text | Wire::Cast => match row.try_get_unchecked::<Option<&[u8]>, _>(i)? {
            None => Value::Null,
            Some(b) => match utf8(b) {
                Ok(s) => rule.from_text(s),
                Err(_) => rule.from_blob(b),
            },
        },
        // Refused before the query runs.
        Wire::Unsupported => Value::Invalid("unsupported type".into()),
    })
}

/// The binary bytes of a DATE, DATETIME or TIMESTAMP, `None` for NULL.
///
/// sqlx calls a zero date (`0000-00-00`, sent with length 0) NULL when asked
/// for an `Option`, which would make it equal a replica's NULL. Asked for
/// the bytes themselves it hands them over, and fails only on a real NULL.
fn datetime_bytes(row: &MySqlRow, i: usize) -> Result<Option<&[u8]>, sqlx::Error> {
    match row.try_get_unchecked::<&[u8], _>(i) {
        Ok(b) => Ok(Some(b)),
        Err(sqlx::Error::ColumnDecode { source, .. })
            if source.is::<sqlx::error::UnexpectedNullError>() =>
        {
            Ok(None)
        }
        Err(e) => Err(e),
    }
}

/// [`decode`] into a slot of the row buffer, reusing a text value's
/// allocation from the previous row (a fresh `String` per text value showed
/// in profiles).
pub(super) fn decode_into(
    slot: &mut Value,
    row: &MySqlRow,
    i: usize,
    wire: Wire,
    rule: &ColumnRule,
) -> Result<(), sqlx::Error> {
    if let (Wire::Text, LogicalType::Text, Value::Text(s)) = (wire, rule.ty, &mut *slot) {
        if let Some(Ok(t)) = row.try_get_unchecked::<Option<&[u8]>, _>(i)?.map(utf8) {
            s.clear();
            s.push_str(t);
            return Ok(());
        }
    }
    *slot = decode(row, i, wire, rule)?;
    Ok(())
}
