//! SQLite's declared types and stored values: the logical type a declared
//! type names, its REAL affinity, and reading a stored value (whatever its
//! storage class) as its column's logical type. Reading rows is in the
//! connector and [`page_scan`](super::page_scan).

use driftsum_core::coerce::ColumnRule;
use driftsum_core::{LogicalType, Value};
use rusqlite::types::ValueRef;

use crate::source::spec::type_args;

/// The logical type of a SQLite declared type. SQLite accepts any name, so
/// this follows its affinity rules, refined by common type names.
pub fn logical_type(declared: &str) -> LogicalType {
    let d = declared.to_ascii_uppercase();
    let has = |s: &str| d.contains(s);
    if d.trim().is_empty() {
        LogicalType::Dynamic
    } else if has("BOOL") {
        LogicalType::Bool
    } else if has("TIMESTAMPTZ") || has("WITH TIME ZONE") {
        LogicalType::Timestamp {
            precision: precision(&d),
        }
    } else if has("TIMESTAMP") || has("DATETIME") {
        LogicalType::TimestampNaive {
            precision: precision(&d),
        }
    } else if d.starts_with("DATE") {
        LogicalType::Date
    } else if d.starts_with("TIME") {
        LogicalType::Time {
            precision: precision(&d),
        }
    } else if has("UUID") || has("GUID") {
        LogicalType::Uuid
    } else if has("JSON") {
        LogicalType::Json
    } else if has("INT") {
        LogicalType::Integer
    } else if has("CHAR") || has("CLOB") || has("TEXT") {
        LogicalType::Text
    } else if has("BLOB") || has("BINARY") || has("BYTEA") {
        LogicalType::Bytes
    } else if has("FLOAT4") || d == "REAL4" {
        LogicalType::Float { single: true }
    } else if has("REAL") || has("FLOA") || has("DOUB") {
        LogicalType::Float { single: false }
    } else if has("DEC") || has("NUMERIC") {
        LogicalType::Decimal { scale: scale(&d) }
    } else {
        LogicalType::Dynamic
    }
}

fn precision(d: &str) -> u8 {
    type_args(d).first().map_or(6, |&p| p.clamp(0, 6) as u8)
}

fn scale(d: &str) -> Option<u16> {
    let args = type_args(d);
    match args.as_slice() {
        [_, s] => Some((*s).clamp(0, u16::MAX.into()) as u16),
        [_] => Some(0),
        _ => None,
    }
}

pub(super) fn decode(v: ValueRef<'_>, rule: &ColumnRule) -> Value {
    match v {
        ValueRef::Null => Value::Null,
        ValueRef::Integer(i) => rule.from_int(i),
        ValueRef::Real(f) => rule.from_real(f),
        ValueRef::Text(t) => match std::str::from_utf8(t) {
            Ok(s) => rule.from_text(s),
            Err(_) => Value::Invalid(String::from_utf8_lossy(t).into_owned()),
        },
        ValueRef::Blob(b) => rule.from_blob(b),
    }
}

/// [`decode`] into a slot of the row buffer, in place where the slot holds
/// the same kind of value as the previous row's (see
/// [`ColumnRule::int_in_place`]):
/// text and decimals keep their allocations, numbers and timestamps are
/// overwritten.
pub(super) fn decode_into(slot: &mut Value, v: ValueRef<'_>, rule: &ColumnRule) {
    let done = match v {
        ValueRef::Integer(i) => rule.int_in_place(i, slot),
        // A decimal column stored as REAL (NUMERIC affinity does that).
        ValueRef::Real(f) => rule.real_in_place(f, slot),
        ValueRef::Text(t) => match std::str::from_utf8(t) {
            Ok(t) => rule.text_in_place(t, slot),
            Err(_) => false,
        },
        _ => false,
    };
    if !done {
        *slot = decode(v, rule);
    }
}

/// SQLite's rule for REAL column affinity from a declared type (the first
/// matching rule wins: INT makes INTEGER, CHAR/CLOB/TEXT make TEXT, BLOB or
/// nothing makes BLOB, then REAL/FLOA/DOUB make REAL).
pub(super) fn real_affinity(declared: &str) -> bool {
    let d = declared.to_ascii_uppercase();
    let has = |s: &str| d.contains(s);
    !(has("INT") || has("CHAR") || has("CLOB") || has("TEXT") || has("BLOB") || d.is_empty())
        && (has("REAL") || has("FLOA") || has("DOUB"))
}
