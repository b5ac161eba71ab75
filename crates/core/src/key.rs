//! Order-preserving key bytes: primary-key values encoded so that comparing
//! the bytes compares the keys.
//!
//! Each column is a class byte followed by its payload; compound keys are the
//! concatenation of their columns. Integers take as few bytes as they need:
//! the class byte says how many and the sign (`0x11` is zero, `0x11 + n` an
//! n-byte positive big-endian magnitude, `0x11 - n` an n-byte negative one,
//! complemented), so byte order is numeric order and a typical id costs four
//! bytes instead of seventeen; every key byte is hashed and sent. Text and
//! bytes are escaped (`00` → `00 FF`) and terminated by `00 00`, so a prefix
//! sorts before any longer string and columns never run into each other.
//! [`decode`] turns the bytes back into values.

use std::fmt;

use crate::time;
use crate::value::Value;

const NULL: u8 = 0x00;
/// Class byte of the integer zero; integers use `0x01..=0x21`.
const INT_ZERO: u8 = 0x11;
const INT_MIN_CLASS: u8 = INT_ZERO - 16;
const INT_MAX_CLASS: u8 = INT_ZERO + 16;
const FLOAT: u8 = 0x30;
const TEXT: u8 = 0x31;
const BYTES: u8 = 0x32;
const UUID: u8 = 0x33;
/// Any other value in a key column (only possible for dynamic or invalid
/// values): its display text, so it still has a stable place in the order.
const OTHER: u8 = 0x34;

/// Appends an integer: class byte for sign and length, then the magnitude's
/// significant bytes (complemented when negative, so larger magnitudes sort
/// first).
fn encode_int(out: &mut Vec<u8>, i: i128) {
    let mag = i.unsigned_abs();
    let n = 16 - (mag.leading_zeros() / 8) as usize;
    let bytes = if i < 0 { !mag } else { mag }.to_be_bytes();
    out.push(if i < 0 {
        INT_ZERO - n as u8
    } else {
        INT_ZERO + n as u8
    });
    out.extend_from_slice(&bytes[16 - n..]);
}

fn decode_int(class: u8, bytes: &[u8], i: &mut usize) -> Option<i128> {
    let negative = class < INT_ZERO;
    let n = class.abs_diff(INT_ZERO) as usize;
    let raw = bytes.get(*i..*i + n)?;
    *i += n;
    let mut buf = [0u8; 16];
    buf[16 - n..].copy_from_slice(raw);
    let stored = u128::from_be_bytes(buf);
    if !negative {
        return i128::try_from(stored).ok();
    }
    let mask = if n == 16 {
        u128::MAX
    } else {
        (1u128 << (8 * n)) - 1
    };
    let mag = !stored & mask;
    // i128::MIN's magnitude is one past i128::MAX.
    match mag.cmp(&(1u128 << 127)) {
        std::cmp::Ordering::Less => Some(-(mag as i128)),
        std::cmp::Ordering::Equal => Some(i128::MIN),
        std::cmp::Ordering::Greater => None,
    }
}

/// An encoded key; `Ord` on it is the key order both sides agree on.
#[derive(Clone)]
pub struct Key(Repr);

/// Encoded keys this long or shorter (an integer key, a short text) are
/// held in place: a tree holds two keys per node, and one allocation per key
/// was most of a large tree's memory.
const INLINE: usize = 22;

#[derive(Clone)]
enum Repr {
    Inline(u8, [u8; INLINE]),
    Heap(Box<[u8]>),
}

impl Key {
    /// A key from its encoded bytes.
    pub fn from_bytes(bytes: &[u8]) -> Key {
        if bytes.len() <= INLINE {
            let mut held = [0; INLINE];
            held[..bytes.len()].copy_from_slice(bytes);
            return Key(Repr::Inline(bytes.len() as u8, held));
        }
        Key(Repr::Heap(bytes.into()))
    }
    /// The encoded bytes, which sort as the key's values do.
    pub fn as_bytes(&self) -> &[u8] {
        match &self.0 {
            Repr::Inline(len, held) => &held[..usize::from(*len)],
            Repr::Heap(bytes) => bytes,
        }
    }
}

impl Default for Key {
    fn default() -> Key {
        Key::from_bytes(&[])
    }
}

impl PartialEq for Key {
    fn eq(&self, other: &Key) -> bool {
        self.as_bytes() == other.as_bytes()
    }
}

impl Eq for Key {}

impl PartialOrd for Key {
    fn partial_cmp(&self, other: &Key) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Key {
    fn cmp(&self, other: &Key) -> std::cmp::Ordering {
        self.as_bytes().cmp(other.as_bytes())
    }
}

impl std::hash::Hash for Key {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.as_bytes().hash(state);
    }
}

impl fmt::Debug for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match decode(self.as_bytes()) {
            Some(vals) => {
                let parts: Vec<String> = vals.iter().map(|v| v.to_string()).collect();
                write!(f, "Key({})", parts.join(", "))
            }
            None => write!(f, "Key(0x{})", crate::value::hex(self.as_bytes())),
        }
    }
}

fn escaped(out: &mut Vec<u8>, bytes: &[u8]) {
    for &b in bytes {
        out.push(b);
        if b == 0 {
            out.push(0xFF);
        }
    }
    out.extend_from_slice(&[0, 0]);
}

/// Appends one key column's encoding to `out`.
pub fn encode_value(out: &mut Vec<u8>, v: &Value) {
    match v {
        Value::Null => out.push(NULL),
        Value::Int(i) => encode_int(out, *i),
        Value::Float(f) => {
            out.push(FLOAT);
            let bits = f.to_bits();
            let ordered = if bits >> 63 == 1 {
                !bits
            } else {
                bits | (1 << 63)
            };
            out.extend_from_slice(&ordered.to_be_bytes());
        }
        Value::Text(s) => {
            out.push(TEXT);
            escaped(out, s.as_bytes());
        }
        Value::Bytes(b) => {
            out.push(BYTES);
            escaped(out, b);
        }
        Value::Uuid(u) => {
            out.push(UUID);
            out.extend_from_slice(u);
        }
        other => {
            out.push(OTHER);
            // Dates and times as their display text, written without the
            // formatting machinery where they can be (no 0 byte to escape, then
            // the terminator `escaped` writes).
            let fast = match other {
                Value::Timestamp(us) if time::write_timestamp(out, *us, false) => {
                    out.push(b'Z');
                    true
                }
                Value::TimestampNaive(us) => time::write_timestamp(out, *us, false),
                Value::Date(d) => {
                    let infinite = matches!(*d, time::INFINITY_DAYS | time::NEG_INFINITY_DAYS);
                    !infinite
                        && time::write_timestamp(
                            out,
                            i128::from(*d) * i128::from(time::MICROS_PER_DAY),
                            true,
                        )
                }
                Value::Time(us) => time::write_time(out, *us),
                _ => false,
            };
            match fast {
                true => out.extend_from_slice(&[0, 0]),
                false => escaped(out, other.to_string().as_bytes()),
            }
        }
    }
}

/// Encodes a whole (possibly compound) key into `out`, which is cleared first.
pub fn encode_into(out: &mut Vec<u8>, values: &[Value]) {
    out.clear();
    for v in values {
        encode_value(out, v);
    }
}

/// The key of a row's key values.
pub fn encode(values: &[Value]) -> Key {
    let mut out = Vec::with_capacity(16 * values.len() + 2);
    encode_into(&mut out, values);
    Key::from_bytes(&out)
}

fn unescape(bytes: &[u8], i: &mut usize) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    loop {
        let b = *bytes.get(*i)?;
        *i += 1;
        if b != 0 {
            out.push(b);
            continue;
        }
        match *bytes.get(*i)? {
            0 => {
                *i += 1;
                return Some(out);
            }
            0xFF => {
                *i += 1;
                out.push(0);
            }
            _ => return None,
        }
    }
}

/// Decodes key bytes back into values; `None` if the bytes are not a key.
/// Values of the `OTHER` class come back as text.
pub fn decode(bytes: &[u8]) -> Option<Vec<Value>> {
    let mut i = 0;
    let mut out = Vec::new();
    while i < bytes.len() {
        let class = bytes[i];
        i += 1;
        let v = match class {
            NULL => Value::Null,
            INT_MIN_CLASS..=INT_MAX_CLASS => Value::Int(decode_int(class, bytes, &mut i)?),
            FLOAT => {
                let raw: [u8; 8] = bytes.get(i..i + 8)?.try_into().ok()?;
                i += 8;
                let o = u64::from_be_bytes(raw);
                let bits = if o >> 63 == 1 { o & !(1 << 63) } else { !o };
                Value::Float(f64::from_bits(bits))
            }
            TEXT | OTHER => Value::Text(String::from_utf8(unescape(bytes, &mut i)?).ok()?),
            BYTES => Value::Bytes(unescape(bytes, &mut i)?),
            UUID => {
                let raw: [u8; 16] = bytes.get(i..i + 16)?.try_into().ok()?;
                i += 16;
                Value::Uuid(raw)
            }
            _ => return None,
        };
        out.push(v);
    }
    Some(out)
}

/// A key interval `(after, through]`; `after: None` starts at the first key.
/// The one key-range type: the walk reports drifted ranges in it, the agent
/// protocol asks for entries of it, and reconciliation scans it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyRange {
    /// Exclusive lower bound; `None` means from the first key.
    pub after: Option<Key>,
    /// Inclusive upper bound.
    pub through: Key,
}

impl KeyRange {
    /// Whether `key` lies in the range.
    pub fn contains(&self, key: &[u8]) -> bool {
        self.after.as_ref().is_none_or(|a| key > a.as_bytes()) && key <= self.through.as_bytes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// A key held in place or on the heap is the same key: its bytes,
        /// order, equality and hash are its bytes'.
        #[test]
        fn keys_are_their_bytes(a in prop::collection::vec(any::<u8>(), 0..40), b in prop::collection::vec(any::<u8>(), 0..40)) {
            use std::hash::{BuildHasher, RandomState};
            let (ka, kb) = (Key::from_bytes(&a), Key::from_bytes(&b));
            prop_assert_eq!(ka.as_bytes(), &a[..]);
            prop_assert_eq!(ka.cmp(&kb), a.cmp(&b));
            prop_assert_eq!(ka == kb, a == b);
            let state = RandomState::new();
            prop_assert_eq!(state.hash_one(&ka), state.hash_one(&a[..]));
            prop_assert_eq!(ka.clone(), ka);
        }

        /// Dates and times encode as their display text, fast path or not:
        /// the bytes every tree and tree file already holds.
        #[test]
        fn time_keys_encode_as_their_text(
            v in prop_oneof![
                any::<i64>().prop_map(|m| Value::Timestamp(i128::from(m))),
                (-62_167_219_200_000_000i128..253_402_300_800_000_000i128).prop_map(Value::Timestamp),
                (-62_167_219_200_000_000i128..253_402_300_800_000_000i128).prop_map(Value::TimestampNaive),
                Just(Value::Timestamp(time::INFINITY_MICROS)),
                Just(Value::TimestampNaive(time::NEG_INFINITY_MICROS)),
                any::<i32>().prop_map(Value::Date),
                (-719_528i32..2_932_897).prop_map(Value::Date),
                any::<i64>().prop_map(Value::Time),
                (0..time::MICROS_PER_DAY).prop_map(Value::Time),
            ]
        ) {
            let mut fast = Vec::new();
            encode_value(&mut fast, &v);
            let mut slow = vec![OTHER];
            escaped(&mut slow, v.to_string().as_bytes());
            prop_assert_eq!(fast, slow);
        }
    }

    fn arb_key_value() -> impl Strategy<Value = Value> {
        prop_oneof![
            any::<i64>().prop_map(|i| Value::Int(i as i128)),
            any::<i128>().prop_map(Value::Int),
            ".{0,6}".prop_map(Value::Text),
            proptest::collection::vec(any::<u8>(), 0..6).prop_map(Value::Bytes),
        ]
    }

    proptest! {
        #[test]
        fn order_is_preserved(a in any::<i64>(), b in any::<i64>(),
                              s in proptest::collection::vec(any::<u8>(), 0..8),
                              t in proptest::collection::vec(any::<u8>(), 0..8),
                              x in any::<i64>()) {
            let ka = encode(&[Value::Int(a as i128)]);
            let kb = encode(&[Value::Int(b as i128)]);
            prop_assert_eq!(ka.cmp(&kb), a.cmp(&b));
            // Compound: (bytes, int) compares like a tuple.
            let ks = encode(&[Value::Bytes(s.clone()), Value::Int(x as i128)]);
            let kt = encode(&[Value::Bytes(t.clone()), Value::Int(a as i128)]);
            prop_assert_eq!(ks.cmp(&kt), (s, x).cmp(&(t, a)));
        }

        #[test]
        fn wide_integer_order_is_preserved(a in any::<i128>(), b in any::<i128>(),
                                           s in any::<i32>(), t in any::<i32>()) {
            let (ka, kb) = (encode(&[Value::Int(a)]), encode(&[Value::Int(b)]));
            prop_assert_eq!(ka.cmp(&kb), a.cmp(&b));
            let (ks, kt) = (encode(&[Value::Int(s as i128)]), encode(&[Value::Int(t as i128)]));
            prop_assert_eq!(ks.cmp(&kt), s.cmp(&t));
        }

        #[test]
        fn decode_inverts_encode(vals in proptest::collection::vec(arb_key_value(), 1..4)) {
            prop_assert_eq!(decode(encode(&vals).as_bytes()), Some(vals));
        }

        #[test]
        fn decode_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..40)) {
            let _ = decode(&bytes);
        }
    }

    #[test]
    fn integers_are_short_and_ordered() {
        let vals = [
            i128::MIN,
            i128::MIN + 1,
            -(1 << 64),
            i64::MIN as i128,
            -65_536,
            -256,
            -255,
            -1,
            0,
            1,
            255,
            256,
            1_000_000,
            i64::MAX as i128,
            i128::MAX,
        ];
        let keys: Vec<Key> = vals.iter().map(|&i| encode(&[Value::Int(i)])).collect();
        assert!(keys.windows(2).all(|w| w[0] < w[1]), "{keys:?}");
        for (k, &i) in keys.iter().zip(&vals) {
            assert_eq!(decode(k.as_bytes()), Some(vec![Value::Int(i)]));
        }
        assert_eq!(encode(&[Value::Int(0)]).as_bytes(), &[INT_ZERO]);
        assert_eq!(encode(&[Value::Int(999_999)]).as_bytes().len(), 4);
        assert_eq!(encode(&[Value::Int(i128::MIN)]).as_bytes().len(), 17);
    }

    #[test]
    fn floats_order() {
        let fs = [f64::NEG_INFINITY, -2.5, -0.0, 1e-300, 3.0, f64::INFINITY];
        let keys: Vec<Key> = fs.iter().map(|f| encode(&[Value::Float(*f)])).collect();
        assert!(keys.windows(2).all(|w| w[0] < w[1]));
    }
}
