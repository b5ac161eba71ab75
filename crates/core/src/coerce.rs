//! Coercion: reading a stored value (an integer, a real, text or a blob, as
//! SQLite or a text protocol hands it over) as a column's logical type.
//!
//! The rules are explicit and the same for every engine:
//!
//! | logical type | integer | real | text | blob |
//! |---|---|---|---|---|
//! | integer | as is | if integral | decimal digits | — |
//! | float | as f64 | as is | parsed | — |
//! | decimal | as is | shortest digits, rounded to scale | parsed, rounded to scale | — |
//! | text | its digits | its digits | as is | if UTF-8 |
//! | bytes | — | — | its UTF-8 bytes | as is |
//! | bool | 0 / 1 | 0.0 / 1.0 | `t`/`f`, `true`/`false`, `1`/`0`, `yes`/`no`, `on`/`off` | — |
//! | timestamps | Unix seconds (or millis) | Julian day (or Unix seconds) | ISO-8601 | — |
//! | date | Unix seconds at midnight | Julian day | `YYYY-MM-DD` | — |
//! | time | seconds since midnight | seconds since midnight | `HH:MM:SS[.f]` | — |
//! | uuid | — | — | hex, with or without hyphens or braces | 16 bytes |
//! | json | as JSON | as JSON | parsed JSON | if UTF-8 JSON |
//!
//! Anything else becomes [`Value::Invalid`]: a difference, never a crash.
//! Text of a column whose trailing spaces are insignificant (SQL `char(n)`,
//! see [`TrailingSpaces`]) loses them, whichever side it is read on.

use serde::{Deserialize, Serialize};

use crate::canon::normalize_float;
use crate::decimal;
use crate::time::{self, MICROS_PER_DAY, MICROS_PER_SEC};
use crate::value::{LogicalType, Value};

/// How a replica stores temporal values, when it is not left to detection.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TimeStorage {
    /// Integers are Unix seconds, reals are Julian days, text is ISO-8601.
    #[default]
    Auto,
    /// Every value is ISO-8601 text.
    Iso8601,
    /// Integers are Unix seconds.
    UnixSeconds,
    /// Integers are Unix milliseconds.
    UnixMillis,
    /// Numbers are Julian days.
    JulianDay,
}

/// Whether trailing spaces are part of a text value.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TrailingSpaces {
    /// `'ab'` and `'ab '` differ (text, varchar).
    #[default]
    Significant,
    /// `'ab'` and `'ab '` are one value, as in SQL `char(n)`: the source
    /// pads or strips them, a replica may hold either, so both sides drop
    /// trailing U+0020 spaces (and nothing else) before comparing.
    Insignificant,
}

/// How to read one column: its logical type and the storage conventions.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ColumnRule {
    /// The column's logical type.
    pub ty: LogicalType,
    /// How a SQLite column stores dates and times.
    pub time_storage: TimeStorage,
    /// UTC offset (seconds) assumed for instants stored without one.
    pub assume_offset_secs: i32,
    /// Whether a text value's trailing spaces count.
    pub trailing_spaces: TrailingSpaces,
}

impl ColumnRule {
    /// The rule for a column of type `ty`, with default time storage.
    pub fn new(ty: LogicalType) -> ColumnRule {
        ColumnRule {
            ty,
            time_storage: TimeStorage::Auto,
            assume_offset_secs: 0,
            trailing_spaces: TrailingSpaces::Significant,
        }
    }

    /// Text as this column compares it (see [`TrailingSpaces`]).
    #[inline]
    fn text<'a>(&self, s: &'a str) -> &'a str {
        match self.trailing_spaces {
            TrailingSpaces::Significant => s,
            TrailingSpaces::Insignificant => s.trim_end_matches(' '),
        }
    }

    /// Reads a stored integer.
    pub fn from_int(&self, i: i64) -> Value {
        use LogicalType as T;
        match self.ty {
            T::Integer | T::Dynamic => Value::Int(i as i128),
            T::Float { .. } => self.float(i as f64),
            T::Decimal { .. } => Value::Decimal(i.to_string()),
            T::Text => Value::Text(i.to_string()),
            T::Bool => match i {
                0 => Value::Bool(false),
                1 => Value::Bool(true),
                _ => invalid(i),
            },
            T::Json => Value::Json(i.to_string()),
            T::Timestamp { .. } | T::TimestampNaive { .. } | T::Date => {
                let micros = match self.time_storage {
                    TimeStorage::Auto | TimeStorage::UnixSeconds => {
                        Some(i as i128 * MICROS_PER_SEC as i128)
                    }
                    TimeStorage::UnixMillis => Some(i as i128 * 1000),
                    TimeStorage::JulianDay => julian_to_micros(i as f64),
                    TimeStorage::Iso8601 => None,
                };
                micros.map_or_else(|| invalid(i), |m| self.instant(m))
            }
            T::Time { precision } => match (i as i128 * MICROS_PER_SEC as i128).try_into() {
                Ok(m) if (0..=MICROS_PER_DAY).contains(&m) => {
                    Value::Time(time::truncate_micros(m, precision))
                }
                _ => invalid(i),
            },
            T::Bytes | T::Uuid => invalid(i),
        }
    }

    /// Reads a stored real.
    pub fn from_real(&self, f: f64) -> Value {
        use LogicalType as T;
        match self.ty {
            T::Float { .. } | T::Dynamic => self.float(f),
            T::Integer => {
                if f.fract() == 0.0 && f.abs() < 1.7e38 {
                    Value::Int(f as i128)
                } else {
                    invalid(f)
                }
            }
            T::Decimal { scale } => {
                decimal::from_f64(f, scale).map_or_else(|| invalid(f), Value::Decimal)
            }
            T::Text => Value::Text(format!("{f}")),
            T::Bool if f == 0.0 => Value::Bool(false),
            T::Bool if f == 1.0 => Value::Bool(true),
            T::Json if f.is_finite() => {
                canonical_json(&format!("{f}")).map_or_else(|| invalid(f), Value::Json)
            }
            T::Timestamp { .. } | T::TimestampNaive { .. } | T::Date => {
                let micros = match self.time_storage {
                    TimeStorage::Auto | TimeStorage::JulianDay => julian_to_micros(f),
                    TimeStorage::UnixSeconds => finite_micros(f * 1e6),
                    TimeStorage::UnixMillis => finite_micros(f * 1e3),
                    TimeStorage::Iso8601 => None,
                };
                micros.map_or_else(|| invalid(f), |m| self.instant(m))
            }
            T::Time { precision } => match finite_micros(f * 1e6) {
                Some(m) if (0..=MICROS_PER_DAY as i128).contains(&m) => {
                    Value::Time(time::truncate_micros(m as i64, precision))
                }
                _ => invalid(f),
            },
            _ => invalid(f),
        }
    }

    /// Reads stored text.
    pub fn from_text(&self, s: &str) -> Value {
        use LogicalType as T;
        let parsed = match self.ty {
            T::Text | T::Dynamic => return Value::Text(self.text(s).to_owned()),
            T::Bytes => return Value::Bytes(s.as_bytes().to_vec()),
            T::Integer => s.trim().parse::<i128>().ok().map(Value::Int).or_else(|| {
                // "12.0" or "1.2e1" still name an integer.
                let d = decimal::normalize(s, None)?;
                d.parse::<i128>().ok().map(Value::Int)
            }),
            T::Float { .. } => parse_float(s).map(|f| self.float(f)),
            T::Decimal { scale } => decimal::normalize(s, scale).map(Value::Decimal),
            T::Bool => parse_bool(s).map(Value::Bool),
            T::Timestamp { .. } | T::TimestampNaive { .. } | T::Date => {
                match self.time_storage {
                    // PostgreSQL's infinities, as its text output spells them.
                    _ if time::parse_infinity(s).is_some() => time::parse_infinity(s).map(|sign| {
                        self.instant(if sign > 0 {
                            time::INFINITY_MICROS
                        } else {
                            time::NEG_INFINITY_MICROS
                        })
                    }),
                    TimeStorage::Auto | TimeStorage::Iso8601 => {
                        time::parse_datetime(s).map(|dt| self.instant(self.dt_micros(&dt)))
                    }
                    // Numbers stored as text, as a text-only sync may write them.
                    _ => s.trim().parse::<f64>().ok().map(|f| {
                        if f.fract() == 0.0 && f.abs() < 9e15 {
                            self.from_int(f as i64)
                        } else {
                            self.from_real(f)
                        }
                    }),
                }
                .filter(|v| !matches!(v, Value::Invalid(_)))
            }
            T::Time { precision } => {
                time::parse_time(s).map(|m| Value::Time(time::truncate_micros(m, precision)))
            }
            T::Uuid => parse_uuid(s).map(Value::Uuid),
            T::Json => canonical_json(s).map(Value::Json),
        };
        parsed.unwrap_or_else(|| Value::Invalid(s.to_owned()))
    }

    /// [`from_int`](ColumnRule::from_int) into `slot`, in place, when the
    /// slot already holds the kind of value that gives; `false` (and `slot`
    /// untouched) otherwise, and then the caller assigns `from_int`'s
    /// value. A scan decodes every value of every row, and moving a freshly
    /// built `Value` into its slot showed up in profiles (a store-forwarding
    /// stall); rows of a table mostly repeat the previous row's kinds.
    #[inline]
    pub fn int_in_place(&self, i: i64, slot: &mut Value) -> bool {
        match (self.ty, slot) {
            (LogicalType::Integer | LogicalType::Dynamic, Value::Int(x)) => {
                *x = i128::from(i);
                true
            }
            _ => false,
        }
    }

    /// [`from_real`](ColumnRule::from_real) into `slot`, in place; see
    /// [`int_in_place`](ColumnRule::int_in_place). A decimal reuses its
    /// text's allocation; when it returns `false` that text may be cleared.
    #[inline]
    pub fn real_in_place(&self, f: f64, slot: &mut Value) -> bool {
        match (self.ty, slot) {
            (LogicalType::Float { .. } | LogicalType::Dynamic, Value::Float(x)) => {
                *x = self.float_bits(f);
                true
            }
            (LogicalType::Decimal { scale }, Value::Decimal(d)) => decimal::write_f64(d, f, scale),
            _ => false,
        }
    }

    /// [`from_text`](ColumnRule::from_text) into `slot`, in place; see
    /// [`int_in_place`](ColumnRule::int_in_place). Text reuses its
    /// allocation; a timestamp in ISO form sets its microseconds.
    #[inline]
    pub fn text_in_place(&self, s: &str, slot: &mut Value) -> bool {
        use LogicalType as T;
        let iso = matches!(self.time_storage, TimeStorage::Auto | TimeStorage::Iso8601);
        match (self.ty, slot) {
            (T::Text | T::Dynamic, Value::Text(t)) => {
                t.clear();
                t.push_str(self.text(s));
                true
            }
            (T::Timestamp { precision }, Value::Timestamp(m))
            | (T::TimestampNaive { precision }, Value::TimestampNaive(m))
                if iso =>
            {
                match time::parse_datetime(s) {
                    Some(dt) => {
                        *m = time::truncate_instant(self.dt_micros(&dt), precision);
                        true
                    }
                    None => false,
                }
            }
            _ => false,
        }
    }

    /// The instant a parsed date-time names for this column: a timestamp
    /// without an offset is taken at the assumed offset, a date at its
    /// local midnight, a naive timestamp at its wall-clock time.
    fn dt_micros(&self, dt: &time::DateTime) -> i128 {
        match (self.ty, dt.offset_secs) {
            (LogicalType::Timestamp { .. }, None) => {
                dt.local_micros - self.assume_offset_secs as i128 * MICROS_PER_SEC as i128
            }
            (LogicalType::Date, _) => dt.local_micros,
            _ => dt.utc_micros(),
        }
    }

    /// Reads a stored blob.
    pub fn from_blob(&self, b: &[u8]) -> Value {
        use LogicalType as T;
        match self.ty {
            T::Bytes | T::Dynamic => Value::Bytes(b.to_vec()),
            T::Uuid => match <[u8; 16]>::try_from(b) {
                Ok(u) => Value::Uuid(u),
                Err(_) => Value::Invalid(crate::value::hex(b)),
            },
            _ => match std::str::from_utf8(b) {
                Ok(s) => self.from_text(s),
                Err(_) => Value::Invalid(crate::value::hex(b)),
            },
        }
    }

    /// Normalizes a value a typed driver already decoded (PostgreSQL's
    /// binary protocol, say) to this column's precision.
    #[inline]
    pub fn finish(&self, v: Value) -> Value {
        // Most types need nothing: return before moving the value around.
        if !matches!(
            self.ty,
            LogicalType::Float { .. }
                | LogicalType::Timestamp { .. }
                | LogicalType::TimestampNaive { .. }
                | LogicalType::Time { .. }
                | LogicalType::Decimal { .. }
        ) && self.trailing_spaces == TrailingSpaces::Significant
        {
            return v;
        }
        match (self.ty, v) {
            (LogicalType::Text | LogicalType::Dynamic, Value::Text(s)) => {
                match self.text(&s).len() {
                    n if n == s.len() => Value::Text(s),
                    n => {
                        let mut s = s;
                        s.truncate(n);
                        Value::Text(s)
                    }
                }
            }
            (LogicalType::Float { .. }, Value::Float(f)) => self.float(f),
            (
                LogicalType::Timestamp { .. } | LogicalType::TimestampNaive { .. },
                Value::Timestamp(m),
            )
            | (
                LogicalType::Timestamp { .. } | LogicalType::TimestampNaive { .. },
                Value::TimestampNaive(m),
            ) => self.instant(m),
            (LogicalType::Time { precision }, Value::Time(m)) => {
                Value::Time(time::truncate_micros(m, precision))
            }
            (LogicalType::Decimal { scale }, Value::Decimal(s)) => {
                decimal::normalize(&s, scale).map_or(Value::Invalid(s), Value::Decimal)
            }
            (_, v) => v,
        }
    }

    fn float(&self, f: f64) -> Value {
        Value::Float(self.float_bits(f))
    }

    /// The canonical float `f` is in this column (single precision rounds).
    fn float_bits(&self, f: f64) -> f64 {
        let f = match self.ty {
            LogicalType::Float { single: true } => f as f32 as f64,
            _ => f,
        };
        normalize_float(f)
    }

    /// Builds the temporal value for microseconds since the epoch (or one
    /// of the infinity sentinels, which stay infinities).
    fn instant(&self, micros: i128) -> Value {
        match (self.ty, micros) {
            (LogicalType::Timestamp { precision }, _) => {
                Value::Timestamp(time::truncate_instant(micros, precision))
            }
            (LogicalType::TimestampNaive { precision }, _) => {
                Value::TimestampNaive(time::truncate_instant(micros, precision))
            }
            (LogicalType::Date, time::INFINITY_MICROS) => Value::Date(time::INFINITY_DAYS),
            (LogicalType::Date, time::NEG_INFINITY_MICROS) => Value::Date(time::NEG_INFINITY_DAYS),
            (LogicalType::Date, _) => time::days_of(micros).map_or_else(
                || Value::Invalid(time::format_timestamp(micros)),
                Value::Date,
            ),
            _ => Value::Invalid(time::format_timestamp(micros)),
        }
    }
}

fn invalid(v: impl ToString) -> Value {
    Value::Invalid(v.to_string())
}

/// Rounded microseconds from a float count, while an `i128` holds them with
/// room to spare (far past any year a database stores).
fn finite_micros(m: f64) -> Option<i128> {
    (m.is_finite() && m.abs() < 1e30).then(|| m.round() as i128)
}

/// Julian day number to Unix microseconds, rounded to the millisecond: a
/// Julian day in an f64 only holds about 40 µs of precision, and SQLite's own
/// `julianday()` works in milliseconds.
fn julian_to_micros(jd: f64) -> Option<i128> {
    finite_micros((jd - 2_440_587.5) * 86_400_000.0).map(|ms| ms * 1000)
}

fn parse_float(s: &str) -> Option<f64> {
    let t = s.trim();
    match t.to_ascii_lowercase().as_str() {
        "nan" => Some(f64::NAN),
        "inf" | "infinity" | "+inf" | "+infinity" => Some(f64::INFINITY),
        "-inf" | "-infinity" => Some(f64::NEG_INFINITY),
        _ => t.parse().ok(),
    }
}

fn parse_bool(s: &str) -> Option<bool> {
    match s.trim().to_ascii_lowercase().as_str() {
        "t" | "true" | "1" | "y" | "yes" | "on" => Some(true),
        "f" | "false" | "0" | "n" | "no" | "off" => Some(false),
        _ => None,
    }
}

/// Parses a UUID from 32 hex digits, with optional hyphens and braces.
pub fn parse_uuid(s: &str) -> Option<[u8; 16]> {
    let t = s.trim().trim_start_matches('{').trim_end_matches('}');
    let mut out = [0u8; 16];
    let mut n = 0;
    for c in t.bytes() {
        if c == b'-' {
            continue;
        }
        let d = (c as char).to_digit(16)? as u8;
        if n >= 32 {
            return None;
        }
        out[n / 2] |= if n % 2 == 0 { d << 4 } else { d };
        n += 1;
    }
    (n == 32).then_some(out)
}

/// JSON in its canonical text (see [`crate::json`]: sorted keys, exact
/// numbers, no white space).
pub fn canonical_json(s: &str) -> Option<String> {
    crate::json::canonical(s)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::value::LogicalType as T;

    fn rule(ty: LogicalType) -> ColumnRule {
        ColumnRule::new(ty)
    }

    #[test]
    fn timestamps_in_every_representation_agree() {
        let r = rule(T::Timestamp { precision: 6 });
        let iso = r.from_text("2024-03-01T10:00:00Z");
        assert_eq!(iso, r.from_text("2024-03-01 10:00:00+00"));
        assert_eq!(iso, r.from_text("2024-03-01 10:00:00"));
        assert_eq!(iso, r.from_int(1_709_287_200));
        assert_eq!(iso, r.from_real(2_460_370.916_666_666_5));
        let millis = ColumnRule {
            time_storage: TimeStorage::UnixMillis,
            ..r
        };
        assert_eq!(iso, millis.from_int(1_709_287_200_000));
        let cet = ColumnRule {
            assume_offset_secs: 3600,
            ..r
        };
        assert_eq!(iso, cet.from_text("2024-03-01 11:00:00"));
        assert!(matches!(r.from_text("not a time"), Value::Invalid(_)));
    }

    #[test]
    fn precision_truncates() {
        let r = rule(T::Timestamp { precision: 3 });
        assert_eq!(
            r.from_text("2024-03-01T10:00:00.123456Z"),
            r.from_text("2024-03-01T10:00:00.123Z")
        );
        let f4 = rule(T::Float { single: true });
        assert_eq!(f4.from_real(0.1), f4.from_real(0.1f32 as f64));
        let f8 = rule(T::Float { single: false });
        assert_ne!(f8.from_real(0.1), f8.from_real(0.1f32 as f64));
    }

    #[test]
    fn other_types() {
        let d = rule(T::Decimal { scale: Some(2) });
        assert_eq!(d.from_text("5.10"), d.from_real(5.1));
        assert_eq!(d.from_text("5"), d.from_int(5));
        let b = rule(T::Bool);
        assert_eq!(b.from_int(1), b.from_text("true"));
        assert!(matches!(b.from_int(7), Value::Invalid(_)));
        let u = rule(T::Uuid);
        let blob = [0xA0u8; 16];
        assert_eq!(
            u.from_text("a0a0a0a0-A0A0-a0a0-a0a0-a0a0a0a0a0a0"),
            u.from_blob(&blob)
        );
        assert!(matches!(u.from_text("a0a0"), Value::Invalid(_)));
        let j = rule(T::Json);
        assert_eq!(
            j.from_text(r#"{"b": 1, "a": [true]}"#),
            j.from_text(r#"{"a":[true],"b":1}"#)
        );
        let date = rule(T::Date);
        assert_eq!(date.from_text("2024-03-01"), Value::Date(19_783));
        assert_eq!(date.from_int(1_709_251_200), Value::Date(19_783));
        let t = rule(T::Time { precision: 6 });
        assert_eq!(t.from_text("00:00:01"), t.from_int(1));
        let i = rule(T::Integer);
        assert_eq!(i.from_text("12"), i.from_real(12.0));
        assert!(matches!(i.from_real(1.5), Value::Invalid(_)));
    }

    /// With insignificant trailing spaces, every way of reading text (as
    /// stored text, a blob, a typed driver's value, in place) drops exactly
    /// the trailing U+0020 spaces; with significant ones nothing changes.
    #[test]
    fn trailing_spaces_of_char_columns() {
        let char_rule = ColumnRule {
            trailing_spaces: TrailingSpaces::Insignificant,
            ..rule(T::Text)
        };
        let text_rule = rule(T::Text);
        let bodies = ["", "ab", " ab", "a b", "ab\t", "ab\u{a0}", "é", "ab\n"];
        for body in bodies {
            for pad in 0..4 {
                let stored = format!("{body}{}", " ".repeat(pad));
                let want = Value::Text(body.trim_end_matches(' ').to_string());
                assert_eq!(char_rule.from_text(&stored), want, "{stored:?}");
                assert_eq!(char_rule.from_blob(stored.as_bytes()), want, "{stored:?}");
                assert_eq!(
                    char_rule.finish(Value::Text(stored.clone())),
                    want,
                    "{stored:?}"
                );
                let mut slot = Value::Text("old".into());
                assert!(char_rule.text_in_place(&stored, &mut slot));
                assert_eq!(slot, want, "{stored:?}");
                // A text column keeps every space.
                assert_eq!(text_rule.from_text(&stored), Value::Text(stored.clone()));
                assert_eq!(
                    text_rule.finish(Value::Text(stored.clone())),
                    Value::Text(stored.clone())
                );
            }
        }
        // Other types are untouched by the setting.
        let num = ColumnRule {
            trailing_spaces: TrailingSpaces::Insignificant,
            ..rule(T::Integer)
        };
        assert_eq!(num.finish(Value::Int(5)), Value::Int(5));
        assert_eq!(num.from_text("5 "), Value::Int(5));
    }

    /// A decimal column's NaN and ±Infinity equal the float the replica
    /// stores, and stay distinct from each other and from every number.
    #[test]
    fn decimal_specials_equal_the_replicas_floats() {
        for scale in [None, Some(0), Some(2), Some(400)] {
            let d = rule(T::Decimal { scale });
            let all = [
                (d.from_text("Infinity"), d.from_real(f64::INFINITY)),
                (d.from_text("-Infinity"), d.from_real(f64::NEG_INFINITY)),
                (d.from_text("NaN"), d.from_real(f64::NAN)),
                (
                    d.finish(Value::Decimal("Infinity".into())),
                    d.from_text("inf"),
                ),
            ];
            for (a, b) in &all {
                assert_eq!(a, b, "{scale:?}");
                assert!(matches!(a, Value::Decimal(_)), "{a:?}");
            }
            assert_ne!(all[0].0, all[1].0);
            assert_ne!(all[0].0, all[2].0);
            assert_ne!(all[0].0, d.from_real(f64::MAX));
        }
    }

    /// Timestamps and dates across PostgreSQL's whole range, and its
    /// infinities, read from the replica's text equal the decoded values.
    #[test]
    fn wide_instants_and_infinities() {
        let last = 9_224_318_015_999_999_999i128;
        for ty in [
            T::Timestamp { precision: 6 },
            T::TimestampNaive { precision: 6 },
        ] {
            let r = rule(ty);
            let v = |t| r.finish(Value::Timestamp(t));
            assert_eq!(r.from_text("294276-12-31 23:59:59.999999"), v(last));
            assert_ne!(
                r.from_text("294276-12-31 23:59:59"),
                r.from_text("294250-01-01")
            );
            assert_eq!(r.from_text("infinity"), v(time::INFINITY_MICROS));
            assert_eq!(r.from_text("-infinity"), v(time::NEG_INFINITY_MICROS));
            assert_ne!(r.from_text("infinity"), r.from_text("-infinity"));
            assert_eq!(
                r.from_text("4714-11-24 00:00:00 BC"),
                v(-210_866_803_200_000_000)
            );
            let p0 = rule(match ty {
                T::Timestamp { .. } => T::Timestamp { precision: 0 },
                _ => T::TimestampNaive { precision: 0 },
            });
            assert_eq!(
                p0.from_text("infinity"),
                p0.finish(Value::Timestamp(time::INFINITY_MICROS))
            );
            let mut slot = v(0);
            assert!(!r.text_in_place("infinity", &mut slot));
            assert!(r.text_in_place("294276-12-31 23:59:59.999999", &mut slot));
            assert_eq!(slot, v(last));
        }
        let d = rule(T::Date);
        assert_eq!(d.from_text("5874897-12-31"), Value::Date(2_145_042_905));
        assert_eq!(d.from_text("infinity"), Value::Date(time::INFINITY_DAYS));
        assert_eq!(
            d.from_text("-infinity"),
            Value::Date(time::NEG_INFINITY_DAYS)
        );
        assert_eq!(d.from_text("4714-11-24 BC"), Value::Date(-2_440_588));
        assert!(matches!(d.from_text("99999999-01-01"), Value::Invalid(_)));
        assert_eq!(Value::Date(time::INFINITY_DAYS).to_string(), "infinity");
        assert_eq!(
            Value::Timestamp(time::NEG_INFINITY_MICROS).to_string(),
            "-infinity"
        );
        assert_eq!(
            Value::Timestamp(last).to_string(),
            "294276-12-31T23:59:59.999999Z"
        );
    }

    #[test]
    fn json_numbers_are_exact() {
        let j = rule(T::Json);
        for (a, b) in [
            (
                r#"{"n": 12345678901234567890123}"#,
                r#"{"n": 12345678901234567890124}"#,
            ),
            (r#"{"p": 0.1}"#, r#"{"p": 0.10000000000000001}"#),
            (
                r#"{"big": 18446744073709551616}"#,
                r#"{"big": 18446744073709551617}"#,
            ),
        ] {
            assert_ne!(j.from_text(a), j.from_text(b), "{a}");
            assert!(matches!(j.from_text(a), Value::Json(_)));
        }
        assert_eq!(j.from_text(r#"{"a": 1.0}"#), j.from_text(r#"{"a":1}"#));
        assert_eq!(j.from_int(5), j.from_text("5.0"));
        assert_eq!(j.from_real(1e300), j.from_text("1e300"));
        assert_eq!(j.from_real(0.1), j.from_text("0.1"));
        // A report shows exact JSON as JSON, and a number f64 cannot hold as text.
        assert_eq!(
            j.from_text(r#"{"a": 1.5}"#).to_json(),
            serde_json::json!({"a": 1.5})
        );
        assert_eq!(
            j.from_text(r#"{"n": 12345678901234567890123}"#).to_json(),
            serde_json::json!(r#"{"n":12345678901234567890123}"#)
        );
    }

    /// Writing in place gives exactly what building the value gives, for
    /// every kind of column, whatever the slot held before.
    #[test]
    fn in_place_matches_building() {
        let cet = ColumnRule {
            assume_offset_secs: 3600,
            ..rule(T::Timestamp { precision: 3 })
        };
        let unix = ColumnRule {
            time_storage: TimeStorage::UnixSeconds,
            ..rule(T::TimestampNaive { precision: 6 })
        };
        let padded = ColumnRule {
            trailing_spaces: TrailingSpaces::Insignificant,
            ..rule(T::Text)
        };
        let rules = [
            rule(T::Integer),
            rule(T::Dynamic),
            rule(T::Text),
            rule(T::Float { single: false }),
            rule(T::Float { single: true }),
            rule(T::Decimal { scale: Some(2) }),
            rule(T::Decimal { scale: None }),
            rule(T::TimestampNaive { precision: 0 }),
            rule(T::Date),
            cet,
            unix,
            padded,
        ];
        let slots = [
            Value::Null,
            Value::Int(7),
            Value::Float(0.5),
            Value::Decimal("1.5".into()),
            Value::Text("old".into()),
            Value::Timestamp(1),
            Value::TimestampNaive(1),
        ];
        let ints = [0, -1, i64::MIN, i64::MAX, 1_700_000_000];
        let reals = [
            0.0,
            -0.0,
            1.005,
            0.1 + 0.2,
            1e300,
            -2.5e-7,
            f64::INFINITY,
            123.45,
        ];
        let texts = [
            "2024-03-01 10:00:00.123456",
            "2024-03-01T10:00:00.9999+02:00",
            "2024-03-01",
            "not a time",
            "1700000000",
            "",
            "ab  ",
            " ",
            "a\t ",
        ];
        for r in &rules {
            for slot in &slots {
                for &i in &ints {
                    let mut s = slot.clone();
                    if r.int_in_place(i, &mut s) {
                        assert_eq!(s, r.from_int(i), "{r:?} {i}");
                    }
                }
                for &f in &reals {
                    let mut s = slot.clone();
                    if r.real_in_place(f, &mut s) {
                        assert_eq!(s, r.from_real(f), "{r:?} {f}");
                    }
                }
                for t in texts {
                    let mut s = slot.clone();
                    if r.text_in_place(t, &mut s) {
                        assert_eq!(s, r.from_text(t), "{r:?} {t:?}");
                    }
                }
            }
        }
        // The common cases do take the fast way.
        let mut s = Value::Int(0);
        assert!(rule(T::Integer).int_in_place(5, &mut s));
        let mut s = Value::TimestampNaive(0);
        assert!(rule(T::TimestampNaive { precision: 6 }).text_in_place(texts[0], &mut s));
        let mut s = Value::Decimal(String::new());
        assert!(rule(T::Decimal { scale: Some(2) }).real_in_place(123.45, &mut s));
        assert_eq!(s, Value::Decimal("123.45".into()));
    }
}
