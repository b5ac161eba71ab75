//! Row filters on decoded values: a half-open range `[since, until)` on one
//! column, tested against the column's logical value after each side has
//! decoded it (see [`crate::coerce`]), so that how a replica stores the
//! column (ISO text with `T` or a space, Unix seconds, Julian days) cannot
//! change which rows a filter keeps. Parsing a bound given on the command
//! line by the column's type lives here too; which column and which side is
//! the tool's business.

use std::cmp::Ordering;

use crate::coerce::{ColumnRule, TimeStorage};
use crate::decimal;
use crate::time;
use crate::value::{LogicalType, Value};

/// A half-open range of one column's values: `since <= v < until`, either
/// end open when `None`.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ValueRange {
    /// The least value kept (inclusive).
    pub since: Option<Value>,
    /// The first value no longer kept (exclusive).
    pub until: Option<Value>,
}

impl ValueRange {
    /// Whether a row whose column holds `v` is kept. NULL is in no range
    /// (as in SQL). A value that could not be read as the column's type,
    /// or one that does not compare with the bounds, is kept: it then shows
    /// up as a difference rather than being hidden by the filter.
    pub fn admits(&self, v: &Value) -> bool {
        match v {
            Value::Null => false,
            Value::Invalid(_) => true,
            _ => {
                let since_ok = self
                    .since
                    .as_ref()
                    .is_none_or(|s| compare(v, s).is_none_or(Ordering::is_ge));
                let until_ok = self
                    .until
                    .as_ref()
                    .is_none_or(|u| compare(v, u).is_none_or(Ordering::is_lt));
                since_ok && until_ok
            }
        }
    }

    /// Whether neither end is set.
    pub fn is_open(&self) -> bool {
        self.since.is_none() && self.until.is_none()
    }
}

/// The order of two values of one logical type; `None` when they do not
/// compare (different kinds, NaN, decimal specials, JSON).
pub fn compare(a: &Value, b: &Value) -> Option<Ordering> {
    match (a, b) {
        (Value::Int(x), Value::Int(y)) => Some(x.cmp(y)),
        (Value::Float(x), Value::Float(y)) => x.partial_cmp(y),
        (Value::Decimal(x), Value::Decimal(y)) => compare_decimal(x, y),
        (Value::Text(x), Value::Text(y)) => Some(x.as_bytes().cmp(y.as_bytes())),
        (Value::Bytes(x), Value::Bytes(y)) => Some(x.cmp(y)),
        (Value::Bool(x), Value::Bool(y)) => Some(x.cmp(y)),
        (Value::Timestamp(x), Value::Timestamp(y))
        | (Value::TimestampNaive(x), Value::TimestampNaive(y)) => Some(x.cmp(y)),
        (Value::Date(x), Value::Date(y)) => Some(x.cmp(y)),
        (Value::Time(x), Value::Time(y)) => Some(x.cmp(y)),
        (Value::Uuid(x), Value::Uuid(y)) => Some(x.cmp(y)),
        _ => None,
    }
}

/// Orders two canonical decimal texts (optional `-`, digits, optional
/// `.digits`); `None` for NaN and the infinities' texts.
fn compare_decimal(a: &str, b: &str) -> Option<Ordering> {
    if decimal::special(a).is_some() || decimal::special(b).is_some() {
        return None;
    }
    let split = |s: &str| {
        let (neg, digits) = match s.strip_prefix('-') {
            Some(d) => (true, d),
            None => (false, s),
        };
        let (int, frac) = digits.split_once('.').unwrap_or((digits, ""));
        let int = int.trim_start_matches('0');
        let frac = frac.trim_end_matches('0');
        let zero = int.is_empty() && frac.is_empty();
        (neg && !zero, int.to_string(), frac.to_string())
    };
    let (an, ai, af) = split(a);
    let (bn, bi, bf) = split(b);
    let magnitude = ai
        .len()
        .cmp(&bi.len())
        .then_with(|| ai.cmp(&bi))
        .then_with(|| af.cmp(&bf));
    Some(match (an, bn) {
        (false, true) => Ordering::Greater,
        (true, false) => Ordering::Less,
        (false, false) => magnitude,
        (true, true) => magnitude.reverse(),
    })
}

/// Reads a bound written by a user (`--since COL=VALUE`) as a value of the
/// column's logical type, at full precision (a bound finer than the column
/// stays exact: `v >= 09:00:00.5` keeps no `09:00:00` row). Timestamps are
/// ISO-8601 with `T` or a space; one without an offset is UTC. The error
/// says what the type accepts.
pub fn parse_bound(ty: LogicalType, text: &str) -> Result<Value, String> {
    use LogicalType as T;
    let full = match ty {
        T::Timestamp { .. } => T::Timestamp { precision: 6 },
        T::TimestampNaive { .. } => T::TimestampNaive { precision: 6 },
        T::Time { .. } => T::Time { precision: 6 },
        T::Decimal { .. } => T::Decimal { scale: None },
        T::Float { .. } => T::Float { single: false },
        other => other,
    };
    let expected = match ty {
        T::Integer => "an integer, such as 1000",
        T::Float { .. } => "a number, such as 2.5",
        T::Decimal { .. } => "a decimal number, such as 19.99",
        T::Text | T::Dynamic => "text",
        T::Timestamp { .. } | T::TimestampNaive { .. } => {
            "a date and time, such as 2024-01-01T09:00:00 (UTC unless it ends in Z or an offset \
             such as +02:00)"
        }
        T::Date => "a date, such as 2024-01-01",
        T::Time { .. } => "a time of day, such as 09:00:00",
        T::Bool | T::Bytes | T::Uuid | T::Json => {
            return Err(format!(
                "a {} column has no useful order to filter a range of; use --source-where / \
                 --target-where",
                ty.name()
            ))
        }
    };
    let rule = ColumnRule {
        time_storage: TimeStorage::Iso8601,
        ..ColumnRule::new(full)
    };
    let value = match full {
        // Given as text on the command line: a number stays a number.
        T::Dynamic => match text.trim().parse::<i64>() {
            Ok(i) => Value::Int(i.into()),
            Err(_) => Value::Text(text.to_string()),
        },
        T::Date => match time::parse_date(text.trim()) {
            Some(d) => Value::Date(d),
            None => rule.from_text(text),
        },
        _ => rule.from_text(text),
    };
    match value {
        Value::Invalid(_) | Value::Null => Err(format!(
            "{text:?} is not a value of the column's type ({}); write {expected}",
            ty.name()
        )),
        Value::Float(f) if f.is_nan() => Err(format!("{text:?} is not a number to compare with")),
        v => Ok(v),
    }
}

/// The bound, for a column of type `ty`, that is `micros` after the Unix
/// epoch (for `--min-age` / `--max-age`, counted back from now): an instant,
/// a wall-clock timestamp read as UTC, or the (UTC) date it falls on;
/// `None` for a
/// type that is no point in time.
pub fn instant_bound(ty: LogicalType, micros: i128) -> Option<Value> {
    match ty {
        LogicalType::Timestamp { .. } => Some(Value::Timestamp(micros)),
        LogicalType::TimestampNaive { .. } => Some(Value::TimestampNaive(micros)),
        // The day the instant falls on (a date column holds no finer time).
        LogicalType::Date => {
            let day = micros.div_euclid(time::MICROS_PER_DAY as i128);
            i32::try_from(day).ok().map(Value::Date)
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(text: &str) -> Value {
        parse_bound(LogicalType::Timestamp { precision: 6 }, text).expect("parses")
    }

    #[test]
    fn half_open() {
        let r = ValueRange {
            since: Some(Value::Int(10)),
            until: Some(Value::Int(20)),
        };
        for (v, kept) in [(9, false), (10, true), (19, true), (20, false), (21, false)] {
            assert_eq!(r.admits(&Value::Int(v)), kept, "{v}");
        }
        assert!(!r.admits(&Value::Null));
        assert!(r.admits(&Value::Invalid("x".into())));
        assert!(ValueRange::default().admits(&Value::Int(0)));
    }

    #[test]
    fn timestamps_in_every_written_form_are_one_instant() {
        let a = ts("2024-01-01T09:00:00");
        for form in [
            "2024-01-01 09:00:00",
            "2024-01-01T09:00:00Z",
            "2024-01-01T10:00:00+01:00",
            "2024-01-01 09:00:00.000",
        ] {
            assert_eq!(ts(form), a, "{form}");
        }
        // Finer than the column: kept exact.
        let half = parse_bound(
            LogicalType::Timestamp { precision: 0 },
            "2024-01-01 09:00:00.5",
        )
        .expect("parses");
        assert_eq!(compare(&a, &half), Some(Ordering::Less));
    }

    #[test]
    fn decimals_order_numerically() {
        let d = |s: &str| Value::Decimal(s.to_string());
        let sorted = [
            "-100", "-9.5", "-0.01", "0", "0.001", "2", "10", "10.5", "100",
        ];
        for (i, a) in sorted.iter().enumerate() {
            for (j, b) in sorted.iter().enumerate() {
                assert_eq!(compare(&d(a), &d(b)), Some(i.cmp(&j)), "{a} vs {b}");
            }
        }
        assert_eq!(compare(&d("1.50"), &d("1.5")), Some(Ordering::Equal));
        assert_eq!(compare(&d("NaN"), &d("1")), None);
        let bound = parse_bound(LogicalType::Decimal { scale: Some(2) }, "1.255").expect("ok");
        assert_eq!(compare(&d("1.25"), &bound), Some(Ordering::Less));
    }

    #[test]
    fn bad_bounds_say_what_the_type_takes() {
        let e = parse_bound(LogicalType::Timestamp { precision: 6 }, "yesterday").unwrap_err();
        assert!(e.contains("2024-01-01T09:00:00"), "{e}");
        let e = parse_bound(LogicalType::Integer, "12x").unwrap_err();
        assert!(e.contains("integer"), "{e}");
        assert!(parse_bound(LogicalType::Bool, "true").is_err());
        assert!(parse_bound(LogicalType::Date, "2024-02-30").is_err());
        assert_eq!(
            parse_bound(LogicalType::Date, "2024-02-29"),
            Ok(Value::Date(time::parse_date("2024-02-29").expect("date")))
        );
    }

    #[test]
    fn age_bounds_follow_the_column_type() {
        let noon = 19_723 * time::MICROS_PER_DAY as i128 + 12 * 3_600_000_000;
        assert_eq!(
            instant_bound(LogicalType::Date, noon),
            Some(Value::Date(19_723))
        );
        assert_eq!(
            instant_bound(LogicalType::Timestamp { precision: 3 }, noon),
            Some(Value::Timestamp(noon))
        );
        assert_eq!(instant_bound(LogicalType::Integer, noon), None);
    }
}
