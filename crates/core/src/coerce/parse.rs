//! The small parsers and conversions the coercion rules share: floats,
//! booleans, UUIDs, canonical JSON and Julian days. Which rule applies to
//! which stored value is decided in [`super`].

use crate::value::Value;

/// A stored value its column cannot hold, kept as text for the report.
pub(super) fn invalid(v: impl ToString) -> Value {
    Value::Invalid(v.to_string())
}

/// Rounded microseconds from a float count, while an `i128` holds them with
/// room to spare (far past any year a database stores).
pub(super) fn finite_micros(m: f64) -> Option<i128> {
    (m.is_finite() && m.abs() < 1e30).then(|| m.round() as i128)
}

/// Julian day number to Unix microseconds, rounded to the millisecond: a
/// Julian day in an f64 only holds about 40 µs of precision, and SQLite's own
/// `julianday()` works in milliseconds.
pub(super) fn julian_to_micros(jd: f64) -> Option<i128> {
    finite_micros((jd - 2_440_587.5) * 86_400_000.0).map(|ms| ms * 1000)
}

pub(super) fn parse_float(s: &str) -> Option<f64> {
    let t = s.trim();
    match t.to_ascii_lowercase().as_str() {
        "nan" => Some(f64::NAN),
        "inf" | "infinity" | "+inf" | "+infinity" => Some(f64::INFINITY),
        "-inf" | "-infinity" => Some(f64::NEG_INFINITY),
        _ => t.parse().ok(),
    }
}

pub(super) fn parse_bool(s: &str) -> Option<bool> {
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
