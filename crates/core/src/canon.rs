//! The canonical, versioned row encoding that both sides hash.
//!
//! Each value is a one-byte type tag and a fixed payload (documented on
//! [`encode_value`]); NULL has its own tag. A row is its values in the order
//! of their column *names* (sorted), never their position in a table, so two
//! tables that list the same columns differently still agree. Changing any
//! byte of this encoding must bump [`ENCODING_VERSION`].

use serde::{Deserialize, Serialize};

use crate::decimal::{self, Parts};
use crate::tag;
use crate::value::Value;
use crate::varint;

/// Version of the canonical encoding, stamped into trees, reports and history.
pub const ENCODING_VERSION: u32 = 3;

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

/// The shortest decimal digits that read back as `f` (finite), as the
/// replica's text would hold them.
fn float_parts(f: f64) -> Option<Parts> {
    Parts::parse(&format!("{f:e}"))
}

/// Rounds a float to `digits` significant digits (1..=17), half away from
/// zero on its shortest decimal form (so `2.675` at 3 digits is `2.68`, as
/// a person reading the digits expects, although the double is below it).
/// A value that would round past the largest double stays the largest
/// double, never infinity.
pub fn round_significant(f: f64, digits: u8) -> f64 {
    if !f.is_finite() || f == 0.0 {
        return normalize_float(f);
    }
    let Some(mut p) = float_parts(f) else {
        return f;
    };
    let top = p.magnitude().unwrap_or(0);
    p.round_to_scale(digits.clamp(1, 17) as i64 - 1 - top);
    let text: String = p.digits.iter().map(|d| (b'0' + d) as char).collect();
    match format!("{}{text}e{}", if p.neg { "-" } else { "" }, p.exp).parse::<f64>() {
        Ok(r) if r.is_finite() => normalize_float(r),
        _ => f64::MAX.copysign(f),
    }
}

/// Whether two floats agree to `digits` significant digits: they differ by
/// at most one unit in the last kept digit of the larger. Used at row level,
/// so a pair straddling a rounding boundary is not called drift. Decided
/// exactly on their shortest decimal forms: `1.00`/`1.01` and `2.00`/`2.01`
/// at 3 digits are both one unit apart.
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
    let (Some(pa), Some(pb)) = (float_parts(a), float_parts(b)) else {
        return false;
    };
    let Some(top) = pa.magnitude().max(pb.magnitude()) else {
        return false;
    };
    decimal::within_pow10(&pa, &pb, top - digits.clamp(1, 17) as i64 + 1)
}

/// A tag and the zigzag LEB128 of `i` (small magnitudes, either sign, stay short).
#[inline]
fn zigzag(out: &mut Vec<u8>, tag: u8, i: i128) {
    out.push(tag);
    varint::put_u128(out, ((i << 1) ^ (i >> 127)) as u128);
}

#[inline]
fn var(out: &mut Vec<u8>, tag: u8, bytes: &[u8]) {
    out.push(tag);
    varint::put(out, bytes.len() as u64);
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
/// | decimal | 3 | LEB128 length + canonical text (`NaN`, `Infinity`, `-Infinity` for the special values) |
/// | text | 4 | LEB128 length + UTF-8 |
/// | bytes | 5 | LEB128 length + bytes |
/// | bool | 6 | 0 or 1 |
/// | timestamptz | 7 | zigzag LEB128 of the i128 microseconds since the epoch, UTC (±infinity: `i128::MAX`/`MIN`) |
/// | timestamp | 8 | zigzag LEB128 of the i128 microseconds since the epoch, wall clock |
/// | date | 9 | i32 BE days since 1970-01-01 (±infinity: `i32::MAX`/`MIN`) |
/// | time | 10 | i64 BE microseconds since midnight |
/// | uuid | 11 | 16 bytes |
/// | json | 12 | LEB128 length + canonical JSON text ([`crate::json`]) |
/// | invalid | 13 | LEB128 length + the stored text |
#[inline]
pub fn encode_value(out: &mut Vec<u8>, v: &Value, opts: &CanonOptions) {
    match v {
        Value::Null => out.push(tag::NULL),
        Value::Int(i) => zigzag(out, tag::INT, *i),
        Value::Float(f) => {
            let f = match opts.float_digits {
                Some(d) => round_significant(*f, d),
                None => normalize_float(*f),
            };
            out.push(tag::FLOAT);
            out.extend_from_slice(&f.to_bits().to_be_bytes());
        }
        Value::Decimal(s) => encode_decimal(out, s),
        Value::Text(s) => encode_text(out, s),
        Value::Bytes(b) => var(out, tag::BYTES, b),
        Value::Bool(b) => out.extend_from_slice(&[tag::BOOL, *b as u8]),
        Value::Timestamp(t) => zigzag(out, tag::TIMESTAMP, *t),
        Value::TimestampNaive(t) => zigzag(out, tag::TIMESTAMP_NAIVE, *t),
        Value::Date(d) => {
            out.push(tag::DATE);
            out.extend_from_slice(&d.to_be_bytes());
        }
        Value::Time(t) => {
            out.push(tag::TIME);
            out.extend_from_slice(&t.to_be_bytes());
        }
        Value::Uuid(u) => {
            out.push(tag::UUID);
            out.extend_from_slice(u);
        }
        Value::Json(s) => var(out, tag::JSON, s.as_bytes()),
        Value::Invalid(s) => var(out, tag::INVALID, s.as_bytes()),
    }
}

/// What [`encode_value`] writes for `Value::Text(s)`, without the value.
#[inline]
pub fn encode_text(out: &mut Vec<u8>, s: &str) {
    var(out, tag::TEXT, s.as_bytes());
}

/// What [`encode_value`] writes for `Value::Decimal(s)`, without the value.
#[inline]
pub fn encode_decimal(out: &mut Vec<u8>, s: &str) {
    var(out, tag::DECIMAL, s.as_bytes());
}

/// Whether two values are equal under the canonical encoding.
pub fn values_equal(a: &Value, b: &Value, opts: &CanonOptions) -> bool {
    // Equal values encode alike (the encoding is a function of the value,
    // and the two zeros it normalizes are equal floats): most compared
    // columns of a changed row are, and need no encoding.
    if a == b {
        return true;
    }
    thread_local! {
        static BUFFERS: std::cell::RefCell<(Vec<u8>, Vec<u8>)> = const {
            std::cell::RefCell::new((Vec::new(), Vec::new()))
        };
    }
    BUFFERS.with(|b2| {
        let (x, y) = &mut *b2.borrow_mut();
        x.clear();
        y.clear();
        encode_value(x, a, opts);
        encode_value(y, b, opts);
        x == y
    })
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

    /// Equality is equality of the encodings, whether the values are equal
    /// as values (the shortcut) or not.
    #[test]
    fn equality_is_encoding_equality() {
        let pool = [
            Value::Float(0.0),
            Value::Float(-0.0),
            Value::Float(f64::NAN),
            Value::Float(-f64::NAN),
            Value::Float(1.5),
            Value::Decimal("1.5".into()),
            Value::Decimal("1.50".into()),
            Value::Text("1.5".into()),
            Value::Text("a ".into()),
            Value::Text("a".into()),
            Value::Int(1),
            Value::Bool(true),
            Value::Null,
            Value::Timestamp(0),
            Value::TimestampNaive(0),
        ];
        for opts in [
            CanonOptions::default(),
            CanonOptions {
                float_digits: Some(3),
            },
        ] {
            for a in &pool {
                for b in &pool {
                    let (mut x, mut y) = (Vec::new(), Vec::new());
                    encode_value(&mut x, a, &opts);
                    encode_value(&mut y, b, &opts);
                    assert_eq!(values_equal(a, b, &opts), x == y, "{a:?} {b:?}");
                }
            }
        }
    }

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

    /// One unit in the last kept digit is agreement at every decade and
    /// every position in it (a float subtraction got 1.00/1.01 wrong and
    /// 2.00/2.01 right), and two units never are.
    #[test]
    fn agreement_is_decided_in_decimal_digits() {
        for digits in 1u8..=6 {
            for exp in -20i32..=20 {
                for lead in [1u64, 2, 5, 9] {
                    let d = digits as u32;
                    let m = lead * 10u64.pow(d - 1);
                    // Within one decade (crossing it changes the unit).
                    for (step, want) in [(1u64, true), (2, false)]
                        .into_iter()
                        .filter(|&(step, _)| m + step < 10u64.pow(d))
                    {
                        let a: f64 = format!("{m}e{exp}").parse().unwrap();
                        let b: f64 = format!("{}e{exp}", m + step).parse().unwrap();
                        assert_eq!(floats_agree(a, b, digits), want, "{a} {b} {digits}");
                        assert_eq!(floats_agree(-a, -b, digits), want, "{a} {b} {digits}");
                    }
                }
            }
        }
        // Across a decade the larger value's unit counts.
        assert!(floats_agree(9.99, 10.0, 3));
        assert!(floats_agree(9.95, 10.0, 3) == (10.0 - 9.95 <= 0.1));
        assert!(!floats_agree(9.8, 10.0, 3));
        assert!(floats_agree(-0.0, 0.0, 1));
        assert!(!floats_agree(1.0, -1.0, 1));
        assert!(!floats_agree(f64::MAX, f64::INFINITY, 3));
    }

    #[test]
    fn rounding_is_on_decimal_digits_and_never_reaches_infinity() {
        assert_eq!(round_significant(2.675, 3), 2.68);
        assert_eq!(round_significant(-2.675, 3), -2.68);
        assert_eq!(round_significant(1.005, 3), 1.01);
        assert_eq!(round_significant(123_456.0, 2), 120_000.0);
        assert_eq!(round_significant(9.96, 2), 10.0);
        assert_eq!(round_significant(f64::MAX, 3), f64::MAX);
        assert_eq!(round_significant(-f64::MAX, 1), -f64::MAX);
        assert_eq!(round_significant(5e-324, 3), 5e-324);
        assert!(round_significant(f64::NAN, 3).is_nan());
    }

    /// Timestamps at both ends of PostgreSQL's range (and past an i64 of
    /// microseconds since 1970) and the infinities encode distinctly.
    #[test]
    fn wide_timestamps_encode_distinctly() {
        let o = CanonOptions::default();
        let max = 9_224_318_015_999_999_999i128; // 294276-12-31T23:59:59.999999
        let vals = [
            crate::time::NEG_INFINITY_MICROS,
            -210_866_803_200_000_000, // 4714-11-24 BC
            -1,
            0,
            i64::MAX as i128,
            max - 1,
            max,
            crate::time::INFINITY_MICROS,
        ];
        let enc: std::collections::HashSet<Vec<u8>> = vals
            .iter()
            .map(|&t| {
                let mut out = Vec::new();
                encode_value(&mut out, &Value::Timestamp(t), &o);
                out
            })
            .collect();
        assert_eq!(enc.len(), vals.len());
        assert!(!values_equal(
            &Value::Timestamp(0),
            &Value::TimestampNaive(0),
            &o
        ));
    }

    #[test]
    fn integers_and_lengths_are_compact_and_distinct() {
        let o = CanonOptions::default();
        let enc = |v: Value| {
            let mut out = Vec::new();
            encode_value(&mut out, &v, &o);
            out
        };
        assert_eq!(enc(Value::Int(0)), [tag::INT, 0]);
        assert_eq!(enc(Value::Int(-1)), [tag::INT, 1]);
        assert_eq!(enc(Value::Int(1)), [tag::INT, 2]);
        assert_eq!(enc(Value::Int(64)), [tag::INT, 0x80, 1]);
        assert_eq!(enc(Value::Int(i128::MIN)).len(), 1 + 19);
        assert_ne!(enc(Value::Int(i128::MIN)), enc(Value::Int(i128::MAX)));
        let long = "x".repeat(300);
        assert_eq!(&enc(Value::Text(long))[..3], &[tag::TEXT, 0xAC, 0x02]);
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
