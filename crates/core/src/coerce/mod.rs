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

mod parse;
#[cfg(test)]
mod tests;

pub use parse::{canonical_json, parse_uuid};
use parse::{finite_micros, invalid, julian_to_micros, parse_bool, parse_float};

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
                    TimeStorage::Auto | TimeStorage::Iso8601 => time::parse_stored_datetime(s)
                        .map(|dt| self.dt_micros(&dt))
                        .filter(|&m| self.holds_text_instant(m))
                        .map(|m| self.instant(m)),
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
            T::Time { precision } => time::parse_stored_time(s)
                .filter(|&m| time::truncate_micros(m, precision) == m)
                .map(Value::Time),
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
                match time::parse_stored_datetime(s).map(|dt| self.dt_micros(&dt)) {
                    Some(micros) if time::truncate_instant(micros, precision) == micros => {
                        *m = micros;
                        true
                    }
                    _ => false,
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

    /// Whether an instant read from text is one this column holds: a text
    /// with nonzero digits past the column's fractional digits names an
    /// instant the column cannot, so it is no value of it (a difference),
    /// where truncating would merge it with another (and two keys into one).
    /// Numbers are truncated instead: a Julian day or Unix seconds in a
    /// real carry rounding noise in their last digits.
    fn holds_text_instant(&self, micros: i128) -> bool {
        match self.ty {
            LogicalType::Timestamp { precision } | LogicalType::TimestampNaive { precision } => {
                time::truncate_instant(micros, precision) == micros
            }
            _ => true,
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

    /// The canonical float `f` is in this column (single precision rounds):
    /// what [`ColumnRule::finish`] makes of a float.
    #[inline]
    pub fn float_bits(&self, f: f64) -> f64 {
        let f = match self.ty {
            LogicalType::Float { single: true } => f as f32 as f64,
            _ => f,
        };
        normalize_float(f)
    }

    /// Builds the temporal value for microseconds since the epoch (or one
    /// of the infinity sentinels, which stay infinities): what
    /// [`ColumnRule::finish`] makes of a timestamp.
    #[inline]
    pub fn instant(&self, micros: i128) -> Value {
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
