//! The canonical, versioned row encoding that both sides hash.
//!
//! Each value is a one-byte type tag and a fixed payload (documented on
//! [`encode_value`]); NULL has its own tag. A row is its values in the order
//! of their column *names* (sorted), never their position in a table, so two
//! tables that list the same columns differently still agree. Changing any
//! byte of this encoding must bump [`ENCODING_VERSION`].

use serde::{Deserialize, Serialize};

use crate::value::Value;

/// Version of the canonical encoding, stamped into trees, reports and history.
pub const ENCODING_VERSION: u32 = 2;

/// Options that change what "equal" means; both sides must use the same.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct CanonOptions {
    /// Round floats to this many significant digits before hashing (for
    /// replicas known to lose float precision). `None`: compare exactly at
    /// the column's own precision.
    pub float_digits: Option<u8>,
}

/// Normalizes a float for comparison: -0.0 is 0.0 and every NaN is one NaN.
pub fn normalize_float(f: f64) -> f64 {
    if f.is_nan() {
        f64::NAN
    } else if f == 0.0 {
        0.0
    } else {
        f
    }
}

/// Rounds a float to `digits` significant digits (1..=17).
pub fn round_significant(f: f64, digits: u8) -> f64 {
    if !f.is_finite() || f == 0.0 {
        return normalize_float(f);
    }
    let d = digits.clamp(1, 17) as usize;
    format!("{:.*e}", d - 1, f).parse().unwrap_or(f)
}

/// Whether two floats agree to `digits` significant digits: they differ by
/// at most one unit in the last kept digit of the larger. Used at row level,
/// so a pair straddling a rounding boundary is not called drift.
pub fn floats_agree(a: f64, b: f64, digits: u8) -> bool {
    let (a, b) = (normalize_float(a), normalize_float(b));
    if a.is_nan() || b.is_nan() {
        return a.is_nan() && b.is_nan();
    }
    if a == b {
        return true;
    }
    if !a.is_finite() || !b.is_finite() {
        return false;
    }
    let mag = a.abs().max(b.abs());
    let unit = 10f64.powi(mag.log10().floor() as i32 - digits.clamp(1, 17) as i32 + 1);
    (a - b).abs() <= unit
}

const TAG_NULL: u8 = 0;
const TAG_INT: u8 = 1;
const TAG_FLOAT: u8 = 2;
const TAG_DECIMAL: u8 = 3;
const TAG_TEXT: u8 = 4;
const TAG_BYTES: u8 = 5;
const TAG_BOOL: u8 = 6;
const TAG_TIMESTAMP: u8 = 7;
const TAG_TIMESTAMP_NAIVE: u8 = 8;
const TAG_DATE: u8 = 9;
const TAG_TIME: u8 = 10;
const TAG_UUID: u8 = 11;
const TAG_JSON: u8 = 12;
const TAG_INVALID: u8 = 13;

/// Appends `v` as LEB128: seven bits a byte, low first, high bit = more.
fn leb128(out: &mut Vec<u8>, mut v: u128) {
    while v >= 0x80 {
        out.push(v as u8 | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn var(out: &mut Vec<u8>, tag: u8, bytes: &[u8]) {
    out.push(tag);
    leb128(out, bytes.len() as u128);
    out.extend_from_slice(bytes);
}

/// Appends one value's canonical encoding. Lengths and integers are LEB128
/// (integers zigzag-mapped first), so a typical row fits one 64-byte BLAKE3
/// block: hashing costs per block, and it is most of the cost of a scan.
///
/// | value | tag | payload |
/// |---|---|---|
/// | NULL | 0 | — |
/// | integer | 1 | zigzag LEB128 of the i128 |
/// | float | 2 | IEEE-754 bits of the normalized (and, with `float_digits`, rounded) value, big-endian |
/// | decimal | 3 | LEB128 length + canonical text |
/// | text | 4 | LEB128 length + UTF-8 |
/// | bytes | 5 | LEB128 length + bytes |
/// | bool | 6 | 0 or 1 |
/// | timestamptz | 7 | i64 BE microseconds since the epoch, UTC |
/// | timestamp | 8 | i64 BE microseconds since the epoch, wall clock |
/// | date | 9 | i32 BE days since 1970-01-01 |
/// | time | 10 | i64 BE microseconds since midnight |
/// | uuid | 11 | 16 bytes |
/// | json | 12 | LEB128 length + canonical JSON text |
/// | invalid | 13 | LEB128 length + the stored text |
pub fn encode_value(out: &mut Vec<u8>, v: &Value, opts: &CanonOptions) {
    match v {
        Value::Null => out.push(TAG_NULL),
        Value::Int(i) => {
            out.push(TAG_INT);
            leb128(out, ((i << 1) ^ (i >> 127)) as u128);
        }
        Value::Float(f) => {
            let f = match opts.float_digits {
                Some(d) => round_significant(*f, d),
                None => normalize_float(*f),
            };
            out.push(TAG_FLOAT);
            out.extend_from_slice(&f.to_bits().to_be_bytes());
        }
        Value::Decimal(s) => var(out, TAG_DECIMAL, s.as_bytes()),
        Value::Text(s) => var(out, TAG_TEXT, s.as_bytes()),
        Value::Bytes(b) => var(out, TAG_BYTES, b),
        Value::Bool(b) => out.extend_from_slice(&[TAG_BOOL, *b as u8]),
        Value::Timestamp(t) => {
            out.push(TAG_TIMESTAMP);
            out.extend_from_slice(&t.to_be_bytes());
        }
        Value::TimestampNaive(t) => {
            out.push(TAG_TIMESTAMP_NAIVE);
            out.extend_from_slice(&t.to_be_bytes());
        }
        Value::Date(d) => {
            out.push(TAG_DATE);
            out.extend_from_slice(&d.to_be_bytes());
        }
        Value::Time(t) => {
            out.push(TAG_TIME);
            out.extend_from_slice(&t.to_be_bytes());
        }
        Value::Uuid(u) => {
            out.push(TAG_UUID);
            out.extend_from_slice(u);
        }
        Value::Json(s) => var(out, TAG_JSON, s.as_bytes()),
        Value::Invalid(s) => var(out, TAG_INVALID, s.as_bytes()),
    }
}

/// Whether two values are equal under the canonical encoding.
pub fn values_equal(a: &Value, b: &Value, opts: &CanonOptions) -> bool {
    let (mut x, mut y) = (Vec::new(), Vec::new());
    encode_value(&mut x, a, opts);
    encode_value(&mut y, b, opts);
    x == y
}

/// Encodes a row: `values` are in the caller's column order and `order`
/// lists, for each column in name order, its index into `values`.
pub fn encode_row(out: &mut Vec<u8>, values: &[Value], order: &[usize], opts: &CanonOptions) {
    out.clear();
    for &i in order {
        encode_value(out, &values[i], opts);
    }
}

/// The permutation that visits `names` in sorted order (see [`encode_row`]).
pub fn name_order<S: AsRef<str>>(names: &[S]) -> Vec<usize> {
    let mut idx: Vec<usize> = (0..names.len()).collect();
    idx.sort_by(|&a, &b| names[a].as_ref().cmp(names[b].as_ref()));
    idx
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn floats_normalize() {
        let o = CanonOptions::default();
        assert!(values_equal(&Value::Float(-0.0), &Value::Float(0.0), &o));
        assert!(values_equal(
            &Value::Float(f64::NAN),
            &Value::Float(-f64::NAN),
            &o
        ));
        let next = f64::from_bits(1.5f64.to_bits() + 1);
        assert!(!values_equal(&Value::Float(1.5), &Value::Float(next), &o));
        let o6 = CanonOptions {
            float_digits: Some(6),
        };
        assert!(values_equal(&Value::Float(1.5), &Value::Float(next), &o6));
    }

    #[test]
    fn null_is_not_empty() {
        let o = CanonOptions::default();
        assert!(!values_equal(&Value::Null, &Value::Text(String::new()), &o));
        assert!(!values_equal(
            &Value::Text("1".into()),
            &Value::Decimal("1".into()),
            &o
        ));
    }

    #[test]
    fn agreement_tolerates_rounding_boundaries() {
        // 1.2345 and 1.2344999999 round differently at 4 digits but agree.
        assert!(floats_agree(1.2345, 1.234_499_999_9, 4));
        assert!(!floats_agree(1.2345, 1.2365, 4));
        assert!(floats_agree(f64::NAN, f64::NAN, 4));
        assert!(!floats_agree(f64::INFINITY, 1e308, 4));
    }

    #[test]
    fn integers_and_lengths_are_compact_and_distinct() {
        let o = CanonOptions::default();
        let enc = |v: Value| {
            let mut out = Vec::new();
            encode_value(&mut out, &v, &o);
            out
        };
        assert_eq!(enc(Value::Int(0)), [TAG_INT, 0]);
        assert_eq!(enc(Value::Int(-1)), [TAG_INT, 1]);
        assert_eq!(enc(Value::Int(1)), [TAG_INT, 2]);
        assert_eq!(enc(Value::Int(64)), [TAG_INT, 0x80, 1]);
        assert_eq!(enc(Value::Int(i128::MIN)).len(), 1 + 19);
        assert_ne!(enc(Value::Int(i128::MIN)), enc(Value::Int(i128::MAX)));
        let long = "x".repeat(300);
        assert_eq!(&enc(Value::Text(long))[..3], &[TAG_TEXT, 0xAC, 0x02]);
        // Distinct integers never share an encoding.
        let ints = [
            i128::MIN,
            -65,
            -64,
            -1,
            0,
            63,
            64,
            i64::MAX as i128,
            i128::MAX,
        ];
        let all: std::collections::HashSet<Vec<u8>> =
            ints.iter().map(|&i| enc(Value::Int(i))).collect();
        assert_eq!(all.len(), ints.len());
    }

    #[test]
    fn row_encoding_follows_names_not_positions() {
        let o = CanonOptions::default();
        let (mut a, mut b) = (Vec::new(), Vec::new());
        let va = [Value::Int(1), Value::Text("x".into())];
        let vb = [Value::Text("x".into()), Value::Int(1)];
        encode_row(&mut a, &va, &name_order(&["n", "s"]), &o);
        encode_row(&mut b, &vb, &name_order(&["s", "n"]), &o);
        assert_eq!(a, b);
    }
}
