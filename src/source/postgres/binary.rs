//! PostgreSQL's binary wire formats for the types sqlx cannot decode without
//! extra features, parsed by hand: reading them in binary spares the server
//! a text conversion per value and the client a parse, and stays exact.

use driftsum_core::time;

/// Microseconds from 1970-01-01 to PostgreSQL's epoch, 2000-01-01.
const PG_EPOCH_MICROS: i128 = 946_684_800_000_000;
/// Days from 1970-01-01 to 2000-01-01.
const PG_EPOCH_DAYS: i32 = 10_957;

/// A value whose wire form is not what its type's binary format says.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// A fixed-size value of another size.
    #[error("{what} of {got} bytes, expected {expected}")]
    Size {
        what: &'static str,
        got: usize,
        expected: usize,
    },
    #[error("an integer of {0} bytes")]
    IntegerSize(usize),
    #[error("text that is not UTF-8: {0}")]
    NotUtf8(#[from] std::str::Utf8Error),
    #[error("date {0} days after 2000-01-01 is out of range")]
    DateOutOfRange(i32),
    #[error("numeric header is short")]
    NumericHeader,
    #[error("numeric sign {0:#x}")]
    NumericSign(u16),
    #[error("numeric of {digits} digits in {bytes} bytes")]
    NumericSize { digits: usize, bytes: usize },
    #[error("numeric digit {0}")]
    NumericDigit(u16),
    /// An array not of the shape asked for.
    #[error("array: {0}")]
    ArrayShape(&'static str),
    /// The driver could not hand the value's bytes over.
    #[error("{0}")]
    Driver(String),
    /// A column of a type the connector refuses (checked before a scan).
    #[error("unsupported type")]
    Unsupported,
}

/// The bytes of an `N`-byte binary value of type `what`.
pub fn fixed<const N: usize>(b: &[u8], what: &'static str) -> Result<[u8; N], DecodeError> {
    b.try_into().map_err(|_| DecodeError::Size {
        what,
        got: b.len(),
        expected: N,
    })
}

fn be<const N: usize>(b: &[u8]) -> Result<[u8; N], DecodeError> {
    fixed(b, "a value")
}

/// `timestamp` / `timestamptz`: i64 microseconds since 2000-01-01, as
/// microseconds since 1970 (in an `i128`, so PostgreSQL's whole range up to
/// 294276 AD is exact); ±infinity are the core's infinity instants.
pub fn timestamp(b: &[u8]) -> Result<i128, DecodeError> {
    Ok(match i64::from_be_bytes(be(b)?) {
        i64::MAX => time::INFINITY_MICROS,
        i64::MIN => time::NEG_INFINITY_MICROS,
        m => m as i128 + PG_EPOCH_MICROS,
    })
}

/// `date`: i32 days since 2000-01-01, as days since 1970; ±infinity are the
/// core's infinity dates. Every date PostgreSQL accepts (up to 5874897 AD)
/// fits; anything else is an error, never a clamped day.
pub fn date(b: &[u8]) -> Result<i32, DecodeError> {
    Ok(match i32::from_be_bytes(be(b)?) {
        i32::MAX => time::INFINITY_DAYS,
        i32::MIN => time::NEG_INFINITY_DAYS,
        d => d
            .checked_add(PG_EPOCH_DAYS)
            .filter(|&d| d != time::INFINITY_DAYS)
            .ok_or(DecodeError::DateOutOfRange(d))?,
    })
}

/// `time`: i64 microseconds since midnight.
pub fn time(b: &[u8]) -> Result<i64, DecodeError> {
    Ok(i64::from_be_bytes(be(b)?))
}

/// `uuid`: 16 bytes.
pub fn uuid(b: &[u8]) -> Result<[u8; 16], DecodeError> {
    be(b)
}

/// What [`numeric`] wrote, so a caller need not search the text for it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Numeric {
    /// A number in canonical decimal text (no leading zeros, no trailing
    /// zeros after the point), with this many digits after its point.
    Finite { frac: usize },
    /// `NaN`, `Infinity` or `-Infinity`.
    Special,
}

/// `numeric`: `ndigits`, `weight`, `sign`, `dscale` (i16/i16/u16/u16), then
/// `ndigits` base-10000 digits, the first worth 10000^weight. Returns the
/// decimal text (`NaN`, `Infinity`, `-Infinity` for the special values).
pub fn numeric(b: &[u8]) -> Result<(String, Numeric), DecodeError> {
    let mut out = String::new();
    let kind = numeric_into(b, &mut out)?;
    Ok((out, kind))
}

/// [`numeric`] into `out` (cleared first), so a scan reuses one allocation.
pub fn numeric_into(b: &[u8], out: &mut String) -> Result<Numeric, DecodeError> {
    out.clear();
    let head = |i: usize| -> Result<u16, DecodeError> {
        Ok(u16::from_be_bytes(be(b
            .get(i..i + 2)
            .ok_or(DecodeError::NumericHeader)?)?))
    };
    let ndigits = head(0)? as usize;
    let weight = head(2)? as i16 as i64;
    let sign = head(4)?;
    match sign {
        0xC000 => {
            out.push_str("NaN");
            return Ok(Numeric::Special);
        }
        0xD000 => {
            out.push_str("Infinity");
            return Ok(Numeric::Special);
        }
        0xF000 => {
            out.push_str("-Infinity");
            return Ok(Numeric::Special);
        }
        0x0000 | 0x4000 => {}
        other => return Err(DecodeError::NumericSign(other)),
    }
    if b.len() != 8 + 2 * ndigits {
        return Err(DecodeError::NumericSize {
            digits: ndigits,
            bytes: b.len(),
        });
    }
    // The base-10000 digits as 4 decimal digits each; the decimal point
    // falls after the digits of weight 0. Written straight into canonical
    // form (no leading or trailing zeros), the hot path for money columns:
    // the digits of a usual value sit on the stack, and the text is the one
    // allocation.
    let mut stack = [0u8; 64];
    let mut heap = Vec::new();
    let all: &mut [u8] = if 4 * ndigits <= stack.len() {
        &mut stack[..4 * ndigits]
    } else {
        heap.resize(4 * ndigits, 0);
        &mut heap
    };
    for (i, out) in all.chunks_exact_mut(4).enumerate() {
        let d = head(8 + 2 * i)?;
        if d > 9999 {
            return Err(DecodeError::NumericDigit(d));
        }
        out.copy_from_slice(&[
            b'0' + (d / 1000) as u8,
            b'0' + (d / 100 % 10) as u8,
            b'0' + (d / 10 % 10) as u8,
            b'0' + (d % 10) as u8,
        ]);
    }
    let mut point = 4 * (weight + 1);
    let lead = all.iter().take_while(|&&c| c == b'0').count();
    let lead = lead.min(point.max(0) as usize);
    let mut digits = &all[lead..];
    point -= lead as i64;
    while digits.last() == Some(&b'0') && digits.len() as i64 > point {
        digits = &digits[..digits.len() - 1];
    }
    if digits.iter().all(|&c| c == b'0') {
        out.push('0');
        return Ok(Numeric::Finite { frac: 0 });
    }
    let len = digits.len() as i64;
    if sign == 0x4000 {
        out.push('-');
    }
    let frac = if point <= 0 {
        out.push_str("0.");
        out.extend(std::iter::repeat_n('0', (-point) as usize));
        out.push_str(ascii(digits));
        (len - point) as usize
    } else if point >= len {
        out.push_str(ascii(digits));
        out.extend(std::iter::repeat_n('0', (point - len) as usize));
        0
    } else {
        out.push_str(ascii(&digits[..point as usize]));
        out.push('.');
        out.push_str(ascii(&digits[point as usize..]));
        (len - point) as usize
    };
    Ok(Numeric::Finite { frac })
}

/// The elements of a one-dimensional integer array (`int2[]`, `int4[]`,
/// `int8[]`) in its binary send format, appended to `out`: a header (number
/// of dimensions, a has-NULLs flag, the element type), per dimension its
/// length and lower bound, then per element an i32 length and the value.
/// A NULL element, or more than one dimension, is an error: the key scans
/// that read such arrays only ever ask for a NOT NULL column.
pub fn int_array(b: &[u8], out: &mut Vec<i64>) -> Result<(), DecodeError> {
    let word = |at: usize| -> Result<i32, DecodeError> {
        let w = b.get(at..at + 4).ok_or(DecodeError::ArrayShape("short"))?;
        Ok(i32::from_be_bytes(be(w)?))
    };
    let dims = word(0)?;
    if dims == 0 {
        return Ok(());
    }
    if dims != 1 {
        return Err(DecodeError::ArrayShape("not one-dimensional"));
    }
    if word(4)? != 0 {
        return Err(DecodeError::ArrayShape("a NULL element"));
    }
    let len = usize::try_from(word(12)?).map_err(|_| DecodeError::ArrayShape("length"))?;
    // Each element takes at least its 4-byte length: a length the bytes
    // cannot hold is refused before anything is reserved for it.
    if len > b.len() / 4 {
        return Err(DecodeError::ArrayShape("length"));
    }
    out.reserve(len);
    let mut at = 20;
    for _ in 0..len {
        let n = word(at)?;
        at += 4;
        let n = usize::try_from(n).map_err(|_| DecodeError::ArrayShape("a NULL element"))?;
        let v = b.get(at..at + n).ok_or(DecodeError::ArrayShape("short"))?;
        out.push(match n {
            2 => i16::from_be_bytes(be(v)?) as i64,
            4 => i32::from_be_bytes(be(v)?) as i64,
            8 => i64::from_be_bytes(be(v)?),
            n => return Err(DecodeError::IntegerSize(n)),
        });
        at += n;
    }
    if at != b.len() {
        return Err(DecodeError::ArrayShape("trailing bytes"));
    }
    Ok(())
}

/// The text of bytes known to be ASCII digits.
fn ascii(d: &[u8]) -> &str {
    std::str::from_utf8(d).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn num(ndigits: u16, weight: i16, sign: u16, digits: &[u16]) -> Vec<u8> {
        let mut b = Vec::new();
        for v in [ndigits, weight as u16, sign, 0] {
            b.extend_from_slice(&v.to_be_bytes());
        }
        for d in digits {
            b.extend_from_slice(&d.to_be_bytes());
        }
        b
    }

    /// The text of a numeric, checking the digits after its point are
    /// counted as the text shows them.
    fn text(b: &[u8]) -> Result<String, DecodeError> {
        let (text, kind) = numeric(b)?;
        let special = matches!(text.as_str(), "NaN" | "Infinity" | "-Infinity");
        let want = if special {
            Numeric::Special
        } else {
            Numeric::Finite {
                frac: text.find('.').map_or(0, |p| text.len() - p - 1),
            }
        };
        assert_eq!(kind, want, "{text}");
        Ok(text)
    }

    #[test]
    fn numerics() {
        // 12345.678 = 1|2345|6780 with weight 1.
        assert_eq!(text(&num(3, 1, 0, &[1, 2345, 6780])).unwrap(), "12345.678");
        assert_eq!(text(&num(1, -1, 0x4000, &[5000])).unwrap(), "-0.5");
        assert_eq!(text(&num(1, 2, 0, &[7])).unwrap(), "700000000");
        assert_eq!(text(&num(0, 0, 0, &[])).unwrap(), "0");
        assert_eq!(text(&num(0, 0, 0xC000, &[])).unwrap(), "NaN");
        assert_eq!(text(&num(0, 0, 0xD000, &[])).unwrap(), "Infinity");
        assert_eq!(text(&num(0, 0, 0xF000, &[])).unwrap(), "-Infinity");
        assert_eq!(text(&num(1, -2, 0, &[5])).unwrap(), "0.00000005");
        assert_eq!(text(&num(2, 0, 0, &[12, 5000])).unwrap(), "12.5");
        assert_eq!(text(&num(2, 0, 0x4000, &[0, 0])).unwrap(), "0");
        // Every form agrees with the text normalizer.
        for (n, w, d) in [
            (3u16, 1i16, vec![1u16, 2345, 6780]),
            (2, -1, vec![10, 9999]),
            (1, 3, vec![42]),
        ] {
            let text = text(&num(n, w, 0, &d)).unwrap();
            assert_eq!(
                driftsum_core::decimal::normalize(&text, None).unwrap(),
                text
            );
        }
        assert!(numeric(&num(2, 0, 0, &[1])).is_err());
        assert!(numeric(&[1, 2]).is_err());
    }

    /// An array of `vals` (`None` for NULL) of `width`-byte integers.
    fn int_arr(vals: &[Option<i64>], width: usize) -> Vec<u8> {
        let mut b = Vec::new();
        let has_null = vals.iter().any(Option::is_none) as i32;
        for w in [1, has_null, 20, vals.len() as i32, 1] {
            b.extend_from_slice(&w.to_be_bytes());
        }
        for v in vals {
            match v {
                None => b.extend_from_slice(&(-1i32).to_be_bytes()),
                Some(v) => {
                    b.extend_from_slice(&(width as i32).to_be_bytes());
                    b.extend_from_slice(&v.to_be_bytes()[8 - width..]);
                }
            }
        }
        b
    }

    #[test]
    fn integer_arrays() {
        let vals = [Some(-3), Some(0), Some(7), Some(i32::MAX as i64)];
        for width in [4, 8] {
            let mut out = Vec::new();
            int_array(&int_arr(&vals, width), &mut out).unwrap();
            assert_eq!(out, [-3, 0, 7, i32::MAX as i64]);
        }
        let mut out = vec![1];
        int_array(&int_arr(&[Some(i64::MIN), Some(i64::MAX)], 8), &mut out).unwrap();
        assert_eq!(out, [1, i64::MIN, i64::MAX]);
        let mut out = Vec::new();
        int_array(&int_arr(&[Some(-2)], 2), &mut out).unwrap();
        assert_eq!(out, [-2]);
        // An empty array has no dimensions.
        int_array(&0i32.to_be_bytes().repeat(3), &mut out).unwrap();
        assert_eq!(out, [-2]);
        // NULLs, short, long, odd widths and lengths are errors, never panics.
        let good = int_arr(&vals, 8);
        assert!(int_array(&int_arr(&[Some(1), None], 8), &mut out).is_err());
        for cut in 0..good.len() {
            assert!(
                int_array(&good[..cut], &mut Vec::new()).is_err(),
                "cut {cut}"
            );
        }
        let mut long = good.clone();
        long.push(0);
        assert!(int_array(&long, &mut Vec::new()).is_err());
        assert!(int_array(&int_arr(&[Some(1)], 3), &mut Vec::new()).is_err());
        let mut huge = good.clone();
        huge[12..16].copy_from_slice(&i32::MAX.to_be_bytes());
        assert!(int_array(&huge, &mut Vec::new()).is_err());
        let mut two = good;
        two[..4].copy_from_slice(&2i32.to_be_bytes());
        assert!(int_array(&two, &mut Vec::new()).is_err());
    }

    /// Any weight PostgreSQL sends is exact: `1e5000`, `1e-5000` and the
    /// extremes of the i16 weight (131072 digits before the point, 16383 and
    /// more after), with one unit in the last place still a difference.
    #[test]
    fn numerics_of_any_width() {
        let text = |w: i16, d: &[u16]| text(&num(d.len() as u16, w, 0, d)).unwrap();
        let big = text(1250, &[1]);
        assert!(big == format!("1{}", "0".repeat(5000)), "1e5000");
        let small = text(-1250, &[1]);
        assert!(small == format!("0.{}1", "0".repeat(4999)), "1e-5000");
        let widest = text(i16::MAX, &[9999]);
        assert_eq!(widest.len(), 4 + 4 * i16::MAX as usize);
        let tiniest = text(i16::MIN, &[1]);
        assert!(tiniest.starts_with("0.0000") && tiniest.ends_with("0001"));
        assert_eq!(tiniest.len(), 2 + 4 * 32768);
        assert_ne!(text(-75, &[1]), text(-75, &[2]));
        // numeric(600,400): 0.(299 zeros)1 is 10000^-75.
        assert!(text(-75, &[1]) == format!("0.{}1", "0".repeat(299)));
        for t in [&big, &small, &widest] {
            assert!(driftsum_core::decimal::normalize(t, None).as_ref() == Some(t));
        }
    }

    #[test]
    fn numerics_agree_with_a_naive_rendering() {
        let mut x: u64 = 0x2545_f491_4f6c_dd1d;
        let mut next = |m: u64| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x % m
        };
        for _ in 0..20_000 {
            let n = next(24) as usize;
            let weight = next(24) as i16 - 12;
            let neg = next(2) == 1;
            let digits: Vec<u16> = (0..n)
                .map(|_| match next(4) {
                    0 => 0,
                    1 => 9999,
                    _ => next(10_000) as u16,
                })
                .collect();
            let got = text(&num(
                n as u16,
                weight,
                if neg { 0x4000 } else { 0 },
                &digits,
            ))
            .expect("numeric");
            // All digits written out, the point placed by padding with zeros.
            let mut all: String = digits.iter().map(|d| format!("{d:04}")).collect();
            let mut point = 4 * (weight as i64 + 1);
            if point < 0 {
                all.insert_str(0, &"0".repeat((-point) as usize));
                point = 0;
            }
            while (all.len() as i64) < point {
                all.push('0');
            }
            let text = format!(
                "{}0{}.{}0",
                if neg { "-" } else { "" },
                &all[..point as usize],
                &all[point as usize..]
            );
            let want = driftsum_core::decimal::normalize(&text, None).expect("normalize");
            assert_eq!(got, want, "{text}");
        }
    }

    #[test]
    fn temporal() {
        assert_eq!(timestamp(&0i64.to_be_bytes()).unwrap(), PG_EPOCH_MICROS);
        assert_eq!(
            timestamp(&i64::MAX.to_be_bytes()).unwrap(),
            time::INFINITY_MICROS
        );
        assert_eq!(
            timestamp(&i64::MIN.to_be_bytes()).unwrap(),
            time::NEG_INFINITY_MICROS
        );
        assert_eq!(date(&(-1i32).to_be_bytes()).unwrap(), 10_956);
        assert_eq!(date(&i32::MAX.to_be_bytes()).unwrap(), time::INFINITY_DAYS);
        assert_eq!(
            date(&i32::MIN.to_be_bytes()).unwrap(),
            time::NEG_INFINITY_DAYS
        );
        assert!(date(&(i32::MAX - 1).to_be_bytes()).is_err());
        assert!(time(&[0; 3]).is_err());
        assert!(uuid(&[0; 15]).is_err());
    }
}
