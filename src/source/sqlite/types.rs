//! SQLite's declared types and stored values: the logical type a declared
//! type names, its REAL affinity, and reading a stored value (whatever its
//! storage class) as its column's logical type, refusing the integers that
//! `stored_as = "auto"` cannot read for sure as an instant. Reading rows is
//! in the connector and [`page_scan`](super::page_scan).

use std::ops::RangeInclusive;

use driftsum_core::coerce::{ColumnRule, TimeStorage};
use driftsum_core::time::{format_timestamp, MICROS_PER_SEC};
use driftsum_core::{LogicalType, Value};
use rusqlite::types::ValueRef;

use crate::error::SourceError;
use crate::source::spec::type_args;
use crate::source::text::utf8;

/// The integers that are whole Julian days of the years 1 to 9999 (noon of
/// 0001-01-01 to noon of 9999-12-31). As Unix seconds the same integers are
/// 1970-01-20T22:10:26 to 1970-03-04T04:38:04. A REAL Julian day with no
/// fraction is stored as an INTEGER in a column of NUMERIC affinity (a
/// `TIMESTAMP` or `DATETIME` column), so under `stored_as = "auto"` such an
/// integer may be either; it is refused rather than guessed. Any other
/// integer is Unix seconds: as a Julian day it would fall outside the years
/// 1 to 9999.
pub const AMBIGUOUS_INTEGERS: RangeInclusive<i64> = 1_721_426..=5_373_484;

/// A stored integer that `stored_as = "auto"` cannot read for sure as an
/// instant (one of [`AMBIGUOUS_INTEGERS`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct UnsureInstant(pub i64);

impl UnsureInstant {
    /// The error for this value in `table`.`column`: both readings, and
    /// the setting that decides.
    pub(super) fn error(self, table: &str, column: &str) -> SourceError {
        let n = self.0;
        let julian = (i128::from(n) - 2_440_588) * 86_400 * i128::from(MICROS_PER_SEC)
            + 43_200 * i128::from(MICROS_PER_SEC);
        let unix = i128::from(n) * i128::from(MICROS_PER_SEC);
        SourceError::Unsure(format!(
            "table {table:?}, column {column:?} holds the integer {n}, which is \
             {} as a Julian day but {} as Unix seconds (UTC), and stored_as = \"auto\" \
             does not guess between them; say which in the config (--config FILE): \
             stored_as = \"julian_day\" or stored_as = \"unix_seconds\", under \
             [tables.TABLE.columns.{column}] (the source's names) or [defaults]",
            format_timestamp(julian),
            format_timestamp(unix),
        ))
    }
}

/// Whether a column read by `rule` could meet an [`UnsureInstant`]: a
/// timestamp read under `stored_as = "auto"`. Not a date: a whole Julian
/// day is noon, never a date, so only Unix seconds (at midnight) can name
/// one.
fn reads_auto_instants(rule: &ColumnRule) -> bool {
    rule.time_storage == TimeStorage::Auto
        && matches!(
            rule.ty,
            LogicalType::Timestamp { .. } | LogicalType::TimestampNaive { .. }
        )
}

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

/// A stored value as its column's logical type; an integer that may name
/// two instants (see [`AMBIGUOUS_INTEGERS`]) is an error, never a guess.
pub(super) fn decode(v: ValueRef<'_>, rule: &ColumnRule) -> Result<Value, UnsureInstant> {
    Ok(match v {
        ValueRef::Null => Value::Null,
        ValueRef::Integer(i) if AMBIGUOUS_INTEGERS.contains(&i) && reads_auto_instants(rule) => {
            return Err(UnsureInstant(i))
        }
        ValueRef::Integer(i) => rule.from_int(i),
        ValueRef::Real(f) => rule.from_real(f),
        ValueRef::Text(t) => match utf8(t) {
            Ok(s) => rule.from_text(s),
            Err(_) => Value::Invalid(String::from_utf8_lossy(t).into_owned()),
        },
        ValueRef::Blob(b) => rule.from_blob(b),
    })
}

/// [`decode`] into a slot of the row buffer, in place where the slot holds
/// the same kind of value as the previous row's (see
/// [`ColumnRule::int_in_place`]):
/// text and decimals keep their allocations, numbers and timestamps are
/// overwritten. Fails as [`decode`] does.
pub(super) fn decode_into(
    slot: &mut Value,
    v: ValueRef<'_>,
    rule: &ColumnRule,
) -> Result<(), UnsureInstant> {
    let done = match v {
        ValueRef::Integer(i) => rule.int_in_place(i, slot),
        // A decimal column stored as REAL (NUMERIC affinity does that).
        ValueRef::Real(f) => rule.real_in_place(f, slot),
        ValueRef::Text(t) => match utf8(t) {
            Ok(t) => rule.text_in_place(t, slot),
            Err(_) => false,
        },
        _ => false,
    };
    if !done {
        *slot = decode(v, rule)?;
    }
    Ok(())
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

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(ty: LogicalType, time_storage: TimeStorage) -> ColumnRule {
        ColumnRule {
            time_storage,
            ..ColumnRule::new(ty)
        }
    }

    #[test]
    fn integers_that_may_be_julian_days_are_refused_under_auto() {
        let naive = LogicalType::TimestampNaive { precision: 6 };
        let instants = [naive, LogicalType::Timestamp { precision: 0 }];
        let (lo, hi) = (*AMBIGUOUS_INTEGERS.start(), *AMBIGUOUS_INTEGERS.end());
        for ty in instants {
            let auto = rule(ty, TimeStorage::Auto);
            for n in [lo, lo + 1, 2_460_311, hi - 1, hi] {
                assert_eq!(decode(ValueRef::Integer(n), &auto), Err(UnsureInstant(n)));
                let mut slot = Value::Null;
                assert!(decode_into(&mut slot, ValueRef::Integer(n), &auto).is_err());
                // Said how, every value reads.
                for said in [TimeStorage::JulianDay, TimeStorage::UnixSeconds] {
                    let v = decode(ValueRef::Integer(n), &rule(ty, said)).expect("said");
                    assert!(!matches!(v, Value::Invalid(_)), "{n}: {v:?}");
                }
            }
            for n in [i64::MIN, -1, 0, 1, lo - 1, hi + 1, 1_704_110_400, i64::MAX] {
                assert_eq!(
                    decode(ValueRef::Integer(n), &auto),
                    Ok(auto.from_int(n)),
                    "{n}"
                );
            }
            // A real is a Julian day, and text is text: nothing to refuse.
            assert!(decode(ValueRef::Real(2_460_311.0), &auto).is_ok());
            assert!(decode(ValueRef::Text(b"2460311".as_slice()), &auto).is_ok());
        }
        // A date's integers are Unix seconds at midnight (1970-01-21 here):
        // a whole Julian day is noon, never a date.
        let date = rule(LogicalType::Date, TimeStorage::Auto);
        let n = 1_728_000;
        assert_eq!(decode(ValueRef::Integer(n), &date), Ok(date.from_int(n)));
        assert_eq!(decode(ValueRef::Integer(n), &date), Ok(Value::Date(20)));
        // Integers of other types are not instants.
        for ty in [
            LogicalType::Integer,
            LogicalType::Text,
            LogicalType::Dynamic,
        ] {
            assert!(decode(ValueRef::Integer(2_460_311), &rule(ty, TimeStorage::Auto)).is_ok());
        }
        // Both readings of the example, and the fix, in the message.
        let e = UnsureInstant(2_460_311).error("o", "at").to_string();
        for says in [
            "2024-01-01T12:00:00",
            "1970-01-29T11:25:11",
            "\"julian_day\"",
            "\"unix_seconds\"",
            "columns.at",
        ] {
            assert!(e.contains(says), "{says}: {e}");
        }
        // The edges name the years they are said to be.
        let e = UnsureInstant(lo).error("o", "at").to_string();
        assert!(
            e.contains("0001-01-01T12:00:00") && e.contains("1970-01-20T22:10:26"),
            "{e}"
        );
        let e = UnsureInstant(hi).error("o", "at").to_string();
        assert!(
            e.contains("9999-12-31T12:00:00") && e.contains("1970-03-04T04:38:04"),
            "{e}"
        );
    }
}
