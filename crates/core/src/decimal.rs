//! Exact decimal normalization: any decimal text (or a float's shortest
//! round-trip form) becomes one canonical text, rounded to a column's scale.
//!
//! `5.10`, `5.1`, `+05.100` and `51e-1` all become `5.1`, so PostgreSQL's
//! `numeric(12,2)` and a SQLite REAL or TEXT copy of it compare equal.

/// Largest decimal exponent accepted; beyond it the text is not a number we
/// can hold exactly (and no SQL engine produces one).
const MAX_EXPONENT: i64 = 4096;

/// Canonical text of a decimal number, rounded half away from zero to
/// `scale` fractional digits when given. `None` when `text` is not a number.
pub fn normalize(text: &str, scale: Option<u8>) -> Option<String> {
    let t = text.trim();
    let (neg, body) = match t.as_bytes().first()? {
        b'-' => (true, &t[1..]),
        b'+' => (false, &t[1..]),
        _ => (false, t),
    };
    let (mantissa, exp_part) = match body.find(['e', 'E']) {
        Some(i) => (&body[..i], Some(&body[i + 1..])),
        None => (body, None),
    };
    let mut exp: i64 = match exp_part {
        Some(e) => {
            let v: i64 = e.parse().ok()?;
            if v.abs() > MAX_EXPONENT {
                return None;
            }
            v
        }
        None => 0,
    };
    let (int_part, frac_part) = match mantissa.find('.') {
        Some(i) => (&mantissa[..i], &mantissa[i + 1..]),
        None => (mantissa, ""),
    };
    if int_part.is_empty() && frac_part.is_empty() {
        return None;
    }
    let mut digits: Vec<u8> = Vec::with_capacity(int_part.len() + frac_part.len());
    for c in int_part.bytes().chain(frac_part.bytes()) {
        if !c.is_ascii_digit() {
            return None;
        }
        digits.push(c - b'0');
    }
    exp -= frac_part.len() as i64;

    if let Some(scale) = scale {
        let min_exp = -(scale as i64);
        if exp < min_exp {
            let drop = (min_exp - exp) as usize;
            let round_up = if drop > digits.len() {
                false
            } else {
                digits[digits.len() - drop] >= 5
            };
            digits.truncate(digits.len().saturating_sub(drop));
            exp = min_exp;
            if round_up {
                let mut i = digits.len();
                loop {
                    if i == 0 {
                        digits.insert(0, 1);
                        break;
                    }
                    i -= 1;
                    if digits[i] == 9 {
                        digits[i] = 0;
                    } else {
                        digits[i] += 1;
                        break;
                    }
                }
            }
        }
    }

    // Strip leading zeros, then trailing zeros into the exponent.
    let lead = digits.iter().take_while(|&&d| d == 0).count();
    digits.drain(..lead);
    while digits.last() == Some(&0) {
        digits.pop();
        exp += 1;
    }
    if digits.is_empty() {
        return Some("0".to_string());
    }
    let mut out = String::with_capacity(digits.len() + 4);
    if neg {
        out.push('-');
    }
    let n = digits.len() as i64;
    let ch = |d: &u8| (b'0' + d) as char;
    if exp >= 0 {
        out.extend(digits.iter().map(ch));
        out.extend(std::iter::repeat_n('0', exp as usize));
    } else if -exp >= n {
        out.push_str("0.");
        out.extend(std::iter::repeat_n('0', (-exp - n) as usize));
        out.extend(digits.iter().map(ch));
    } else {
        let point = (n + exp) as usize;
        out.extend(digits[..point].iter().map(ch));
        out.push('.');
        out.extend(digits[point..].iter().map(ch));
    }
    Some(out)
}

/// Canonical decimal text of a float (its shortest round-trip digits).
pub fn from_f64(f: f64, scale: Option<u8>) -> Option<String> {
    let mut out = String::new();
    write_f64(&mut out, f, scale).then_some(out)
}

/// [`from_f64`] into `out` (cleared first), so a scan can reuse one
/// allocation; `false` where `from_f64` gives `None`.
pub fn write_f64(out: &mut String, f: f64, scale: Option<u8>) -> bool {
    out.clear();
    if !f.is_finite() {
        return false;
    }
    if let Some(s) = scale.filter(|&s| s <= 9) {
        // The common case, a money column stored as REAL: the float is the
        // nearest double to a decimal with at most `s` fractional digits, so
        // scaling and rounding recovers that decimal exactly (well inside
        // 2^53), and it is what its shortest digits would say. Anything
        // further from the grid takes the exact path below.
        const POW10: [f64; 10] = [1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9];
        let x = f * POW10[s as usize];
        let r = x.round();
        // A few ulps of the scaled value, always far below half a unit.
        let tolerance = (r.abs() * 1e-15).max(1e-9);
        if r.abs() < 1e14 && (x - r).abs() < tolerance {
            write_scaled(out, r as i64, s);
            return true;
        }
    }
    match normalize(&format!("{f}"), scale) {
        Some(d) => {
            out.push_str(&d);
            true
        }
        None => false,
    }
}

/// Canonical text of `units / 10^scale` (`scale` at most 9), appended to
/// `out`. Digits are laid out in a stack buffer: this runs once per decimal
/// value of a scan.
fn write_scaled(out: &mut String, units: i64, scale: u8) {
    if units == 0 {
        out.push('0');
        return;
    }
    // Right-aligned digits over a field of zeros, so the integer part has at
    // least one digit whatever the scale.
    let mut buf = [b'0'; 32];
    let mut n = units.unsigned_abs();
    let mut start = buf.len();
    while n > 0 {
        start -= 1;
        buf[start] = b'0' + (n % 10) as u8;
        n /= 10;
    }
    let point = buf.len() - scale as usize;
    let start = start.min(point - 1);
    let frac_end = buf[point..]
        .iter()
        .rposition(|&b| b != b'0')
        .map_or(point, |p| point + p + 1);
    if units < 0 {
        out.push('-');
    }
    out.extend(buf[start..point].iter().map(|&b| b as char));
    if frac_end > point {
        out.push('.');
        out.extend(buf[point..frac_end].iter().map(|&b| b as char));
    }
}

#[cfg(test)]
mod tests {
    use super::normalize;

    #[test]
    fn scaled_units_print_canonically() {
        let from_scaled = |units, scale| {
            let mut out = String::from("junk");
            out.clear();
            super::write_scaled(&mut out, units, scale);
            out
        };
        assert_eq!(from_scaled(113, 2), "1.13");
        assert_eq!(from_scaled(-110, 2), "-1.1");
        assert_eq!(from_scaled(100, 2), "1");
        assert_eq!(from_scaled(5, 3), "0.005");
        assert_eq!(from_scaled(-50, 3), "-0.05");
        assert_eq!(from_scaled(1234, 0), "1234");
        assert_eq!(from_scaled(i64::MIN, 9), "-9223372036.854775808");
        assert_eq!(from_scaled(7, 9), "0.000000007");
    }

    #[test]
    fn canonical_forms() {
        let n = |s| normalize(s, None).unwrap();
        assert_eq!(n("5.10"), "5.1");
        assert_eq!(n("+05.100"), "5.1");
        assert_eq!(n("51e-1"), "5.1");
        assert_eq!(n("-0.000"), "0");
        assert_eq!(n("1200"), "1200");
        assert_eq!(n("12e2"), "1200");
        assert_eq!(n(".5"), "0.5");
        assert_eq!(n("-0.0012"), "-0.0012");
        assert!(normalize("abc", None).is_none());
        assert!(normalize("1e99999", None).is_none());
        assert!(normalize("", None).is_none());
        assert!(normalize(".", None).is_none());
    }

    #[test]
    fn rounds_to_scale_half_away_from_zero() {
        let r = |s, k| normalize(s, Some(k)).unwrap();
        assert_eq!(r("5.105", 2), "5.11");
        assert_eq!(r("-5.105", 2), "-5.11");
        assert_eq!(r("9.999", 2), "10");
        assert_eq!(r("0.004", 2), "0");
        assert_eq!(r("0.0049", 3), "0.005");
        assert_eq!(r("123", 0), "123");
        assert_eq!(r("0.5", 0), "1");
        assert_eq!(super::from_f64(5.1, Some(2)).unwrap(), "5.1");
        assert_eq!(super::from_f64(0.1 + 0.2, Some(2)).unwrap(), "0.3");
        assert_eq!(super::from_f64(-0.05, Some(2)).unwrap(), "-0.05");
        assert_eq!(super::from_f64(1200.0, Some(2)).unwrap(), "1200");
        assert_eq!(super::from_f64(5.105, Some(2)).unwrap(), "5.11");
    }

    proptest::proptest! {
        /// The fast path says what the exact path says.
        #[test]
        fn fast_path_agrees(units in -100_000_000_000_000i64..100_000_000_000_000, scale in 0u8..=9, noise in -3i32..=3) {
            let f = units as f64 / 10f64.powi(scale as i32);
            let f = f64::from_bits((f.to_bits() as i64 + noise as i64) as u64);
            proptest::prop_assert_eq!(super::from_f64(f, Some(scale)), normalize(&format!("{f}"), Some(scale)));
        }
    }

    #[test]
    fn fast_path_edges() {
        for (f, s) in [
            (0.0, 2),
            (-0.0, 2),
            (1e14, 0),
            (0.125, 2),
            (2.675, 2),
            (1.005, 2),
        ] {
            assert_eq!(
                super::from_f64(f, Some(s)),
                normalize(&format!("{f}"), Some(s)),
                "{f} at {s}"
            );
        }
    }
}
