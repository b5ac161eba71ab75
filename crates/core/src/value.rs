//! Logical column types and the engine-independent values they hold.
//!
//! A column's [`LogicalType`] comes from the source schema; every engine's
//! stored values are decoded *into* that type (see [`crate::coerce`]), so two
//! engines that store the same fact differently produce equal [`Value`]s.
//! Canonical byte encoding of values lives in [`crate::canon`], not here.

use std::fmt;

use serde::{Deserialize, Serialize};

/// What a column means, independent of how any engine stores it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "type")]
pub enum LogicalType {
    /// Whole numbers, up to the range of `i128` (MySQL unsigned bigint fits).
    Integer,
    /// Binary floating point; `single` columns are compared at `f32` precision.
    Float {
        /// Whether the column is single precision (`f32`).
        single: bool,
    },
    /// Exact decimal; `scale` (digits after the point) when the column declares it.
    Decimal {
        /// Digits after the point, when declared.
        scale: Option<u16>,
    },
    /// Character strings.
    Text,
    /// Byte strings.
    Bytes,
    /// Booleans.
    Bool,
    /// An instant (timestamp with time zone), at `precision` fractional digits (0..=6).
    Timestamp {
        /// Fractional digits of seconds (0..=6).
        precision: u8,
    },
    /// A wall-clock timestamp without time zone, at `precision` fractional digits.
    TimestampNaive {
        /// Fractional digits of seconds (0..=6).
        precision: u8,
    },
    /// Calendar dates.
    Date,
    /// Time of day, at `precision` fractional digits.
    Time {
        /// Fractional digits of seconds (0..=6).
        precision: u8,
    },
    /// UUIDs.
    Uuid,
    /// JSON documents.
    Json,
    /// A column with no declared type (SQLite only): compared by storage class.
    Dynamic,
}

impl LogicalType {
    /// Whether this is a date, a time of day or a timestamp (with or without
    /// a zone).
    pub fn is_temporal(self) -> bool {
        matches!(
            self,
            LogicalType::Timestamp { .. }
                | LogicalType::TimestampNaive { .. }
                | LogicalType::Date
                | LogicalType::Time { .. }
        )
    }

    /// Whether a key column may have this type (keys need an order-preserving encoding).
    pub fn is_key_type(self) -> bool {
        matches!(
            self,
            LogicalType::Integer
                | LogicalType::Text
                | LogicalType::Bytes
                | LogicalType::Uuid
                | LogicalType::Dynamic
        )
    }

    /// A short name used in messages and reports.
    pub fn name(self) -> &'static str {
        match self {
            LogicalType::Integer => "integer",
            LogicalType::Float { single: false } => "double",
            LogicalType::Float { single: true } => "float4",
            LogicalType::Decimal { .. } => "decimal",
            LogicalType::Text => "text",
            LogicalType::Bytes => "bytes",
            LogicalType::Bool => "bool",
            LogicalType::Timestamp { .. } => "timestamptz",
            LogicalType::TimestampNaive { .. } => "timestamp",
            LogicalType::Date => "date",
            LogicalType::Time { .. } => "time",
            LogicalType::Uuid => "uuid",
            LogicalType::Json => "json",
            LogicalType::Dynamic => "dynamic",
        }
    }
}

impl fmt::Display for LogicalType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// One decoded column value.
///
/// Values are already normalized for their logical type when built by
/// [`crate::coerce`]: decimals are in canonical text form, timestamps are
/// microseconds truncated to the column's precision, JSON is re-serialized
/// with sorted keys.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    /// SQL NULL.
    Null,
    /// An integer.
    Int(i128),
    /// A binary float.
    Float(f64),
    /// Canonical decimal text: optional `-`, no leading zeros, no trailing
    /// fractional zeros, no exponent; zero is `0`.
    Decimal(String),
    /// Text.
    Text(String),
    /// Bytes.
    Bytes(Vec<u8>),
    /// A boolean.
    Bool(bool),
    /// Microseconds since 1970-01-01T00:00:00Z; `infinity` and `-infinity`
    /// are [`time::INFINITY_MICROS`](crate::time::INFINITY_MICROS) and its
    /// negative counterpart. Wide enough for every PostgreSQL timestamp.
    Timestamp(i128),
    /// Microseconds since 1970-01-01T00:00:00 on an unspecified wall clock
    /// (infinities as for [`Value::Timestamp`]).
    TimestampNaive(i128),
    /// Days since 1970-01-01 (every PostgreSQL date fits); `infinity` and
    /// `-infinity` are [`time::INFINITY_DAYS`](crate::time::INFINITY_DAYS)
    /// and its negative counterpart.
    Date(i32),
    /// Microseconds since midnight.
    Time(i64),
    /// A UUID's 16 bytes.
    Uuid([u8; 16]),
    /// Canonical JSON text (sorted object keys, no insignificant white space).
    Json(String),
    /// A stored value that could not be read as the column's type. It never
    /// equals a valid value, so it shows up as a difference, never a crash.
    Invalid(String),
}

impl Value {
    /// Whether the value is NULL.
    pub fn is_null(&self) -> bool {
        matches!(self, Value::Null)
    }

    /// The value as a JSON value, the way people read it: numbers as numbers,
    /// temporal values as ISO-8601 strings, blobs as hex, decimals as strings
    /// (so no digit is lost).
    pub fn to_json(&self) -> serde_json::Value {
        use serde_json::Value as J;
        match self {
            Value::Null => J::Null,
            Value::Int(i) => match i64::try_from(*i) {
                Ok(v) => J::from(v),
                Err(_) => match u64::try_from(*i) {
                    Ok(v) => J::from(v),
                    Err(_) => J::String(i.to_string()),
                },
            },
            Value::Float(f) => match serde_json::Number::from_f64(*f) {
                Some(n) => J::Number(n),
                None => J::String(format_float(*f)),
            },
            Value::Bool(b) => J::Bool(*b),
            // As JSON where serde_json holds it exactly (it reads numbers as
            // f64), else as its text, so a report never shows a rounded number.
            Value::Json(s) => serde_json::from_str::<J>(s)
                .ok()
                .filter(|v| serde_json::to_string(v).is_ok_and(|t| t == *s))
                .unwrap_or_else(|| J::String(s.clone())),
            other => J::String(other.to_string()),
        }
    }
}

fn format_float(f: f64) -> String {
    if f.is_nan() {
        "NaN".into()
    } else if f.is_infinite() {
        if f > 0.0 { "Infinity" } else { "-Infinity" }.into()
    } else {
        format!("{f}")
    }
}

impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use crate::time;
        match self {
            Value::Null => f.write_str("NULL"),
            Value::Int(i) => write!(f, "{i}"),
            Value::Float(x) => f.write_str(&format_float(*x)),
            Value::Decimal(s) | Value::Text(s) | Value::Json(s) => f.write_str(s),
            Value::Bytes(b) => f.write_str(&hex(b)),
            Value::Bool(b) => write!(f, "{b}"),
            Value::Timestamp(us @ (time::INFINITY_MICROS | time::NEG_INFINITY_MICROS)) => {
                f.write_str(&time::format_timestamp(*us))
            }
            Value::Timestamp(us) => write!(f, "{}Z", time::format_timestamp(*us)),
            Value::TimestampNaive(us) => f.write_str(&time::format_timestamp(*us)),
            Value::Date(d) => f.write_str(&time::format_date(*d)),
            Value::Time(us) => f.write_str(&time::format_time(*us)),
            Value::Uuid(u) => f.write_str(&format_uuid(u)),
            Value::Invalid(s) => write!(f, "<invalid: {s}>"),
        }
    }
}

/// Lower-case hex of a byte string.
pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(DIGITS[(b >> 4) as usize] as char);
        s.push(DIGITS[(b & 15) as usize] as char);
    }
    s
}

/// The usual hyphenated lower-case form of a UUID.
pub fn format_uuid(u: &[u8; 16]) -> String {
    let h = hex(u);
    format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_rendering_reads_naturally() {
        assert_eq!(Value::Int(5).to_json(), serde_json::json!(5));
        assert_eq!(Value::Float(9.5).to_json(), serde_json::json!(9.5));
        assert_eq!(Value::Float(f64::NAN).to_json(), serde_json::json!("NaN"));
        assert_eq!(
            Value::Bytes(vec![0xde, 0xad]).to_json(),
            serde_json::json!("dead")
        );
        assert_eq!(Value::Null.to_json(), serde_json::Value::Null);
        assert_eq!(
            Value::Uuid([0x12; 16]).to_string(),
            "12121212-1212-1212-1212-121212121212"
        );
        assert_eq!(
            Value::Int(i128::MAX).to_json(),
            serde_json::json!(i128::MAX.to_string())
        );
    }
}
