//! Exact decimal normalization: any decimal text (or a float's shortest
//! round-trip form) becomes one canonical text, rounded to a column's scale.
//!
//! `5.10`, `5.1`, `+05.100` and `51e-1` all become `5.1`, so PostgreSQL's
//! `numeric(12,2)` and a SQLite REAL or TEXT copy of it compare equal. The
//! special values PostgreSQL's `numeric` allows are `NaN`, `Infinity` and
//! `-Infinity`, each its own value, equal to the float NaN and ±infinity a
//! replica stores. Every digit counts, however wide: nothing is clamped.

/// Largest power of ten (either way) a canonical decimal may reach. Above
/// anything PostgreSQL holds (131072 digits before the point, 16383 after),
/// and a bound on how far a short text can grow when written out in full.
pub const MAX_EXPONENT: i64 = 1 << 18;

/// Canonical spellings of the special values.
pub const NAN: &str = "NaN";
/// The canonical text of positive infinity.
pub const INFINITY: &str = "Infinity";
/// The canonical text of negative infinity.
pub const NEG_INFINITY: &str = "-Infinity";

/// A decimal number as sign, significant digits (0..=9 each, no leading or
/// trailing zeros; empty for zero) and a power of ten: the value is
/// `digits × 10^exp`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Parts {
    /// Whether the number is negative.
    pub neg: bool,
    /// The significant digits (0–9 each).
    pub digits: Vec<u8>,
    /// The power of ten the digits are scaled by.
    pub exp: i64,
}

impl Parts {
    /// Parses decimal text: optional sign, digits with an optional point,
    /// optional exponent. `None` for anything else (the special values too)
    /// and for exponents beyond [`MAX_EXPONENT`].
    pub fn parse(text: &str) -> Option<Parts> {
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
        let exp: i64 = match exp_part {
            Some(e) => {
                let v: i64 = e.parse().ok()?;
                if v.abs() > 2 * MAX_EXPONENT {
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
        let mut p = Parts {
            neg,
            digits,
            exp: exp - frac_part.len() as i64,
        };
        p.trim();
        Some(p)
    }

    /// Drops leading zeros, and trailing zeros into the exponent; zero is
    /// unsigned with exponent 0.
    fn trim(&mut self) {
        let lead = self.digits.iter().take_while(|&&d| d == 0).count();
        self.digits.drain(..lead);
        while self.digits.last() == Some(&0) {
            self.digits.pop();
            self.exp += 1;
        }
        if self.digits.is_empty() {
            self.neg = false;
            self.exp = 0;
        }
    }

    /// Rounds half away from zero to `scale` digits after the point.
    pub fn round_to_scale(&mut self, scale: i64) {
        let min_exp = -scale;
        if self.exp >= min_exp {
            return;
        }
        let drop = (min_exp - self.exp) as u64;
        let round_up = match usize::try_from(drop) {
            Ok(d) if d <= self.digits.len() => self.digits[self.digits.len() - d] >= 5,
            _ => false,
        };
        let keep = self
            .digits
            .len()
            .saturating_sub(drop.min(usize::MAX as u64) as usize);
        self.digits.truncate(keep);
        self.exp = min_exp;
        if round_up {
            let mut i = self.digits.len();
            loop {
                if i == 0 {
                    self.digits.insert(0, 1);
                    break;
                }
                i -= 1;
                if self.digits[i] == 9 {
                    self.digits[i] = 0;
                } else {
                    self.digits[i] += 1;
                    break;
                }
            }
        }
        self.trim();
    }

    /// The power of ten of the leading digit (`None` for zero).
    pub fn magnitude(&self) -> Option<i64> {
        (!self.digits.is_empty()).then(|| self.exp + self.digits.len() as i64 - 1)
    }

    /// Whether the written-out form stays within [`MAX_EXPONENT`].
    fn in_range(&self) -> bool {
        self.digits.is_empty()
            || (self.exp <= MAX_EXPONENT && self.exp + self.digits.len() as i64 >= -MAX_EXPONENT)
    }

    /// Appends the canonical plain text: optional `-`, no leading zeros, no
    /// trailing fractional zeros, no exponent; zero is `0`.
    pub fn write_plain(&self, out: &mut String) {
        if self.digits.is_empty() {
            out.push('0');
            return;
        }
        if self.neg {
            out.push('-');
        }
        let n = self.digits.len() as i64;
        let exp = self.exp;
        let ch = |d: &u8| (b'0' + d) as char;
        if exp >= 0 {
            out.extend(self.digits.iter().map(ch));
            out.extend(std::iter::repeat_n('0', exp as usize));
        } else if -exp >= n {
            out.push_str("0.");
            out.extend(std::iter::repeat_n('0', (-exp - n) as usize));
            out.extend(self.digits.iter().map(ch));
        } else {
            let point = (n + exp) as usize;
            out.extend(self.digits[..point].iter().map(ch));
            out.push('.');
            out.extend(self.digits[point..].iter().map(ch));
        }
    }
}

/// Whether `|a − b| ≤ 10^k`, decided exactly in decimal digits (no float
/// subtraction, whose rounding makes `1.01 − 1.00` exceed `0.01` while
/// `2.01 − 2.00` does not).
pub fn within_pow10(a: &Parts, b: &Parts, k: i64) -> bool {
    let base = a.exp.min(b.exp).min(k);
    // Little-endian digits of |p| × 10^(p.exp − base).
    let widen = |p: &Parts| -> Vec<u8> {
        let mut v = if p.digits.is_empty() {
            Vec::new()
        } else {
            vec![0u8; (p.exp - base) as usize]
        };
        v.extend(p.digits.iter().rev());
        v
    };
    let (x, y) = (widen(a), widen(b));
    let diff = if a.neg == b.neg {
        if cmp_le(&x, &y).is_lt() {
            sub_le(&y, &x)
        } else {
            sub_le(&x, &y)
        }
    } else {
        add_le(&x, &y)
    };
    let mut unit = vec![0u8; (k - base) as usize];
    unit.push(1);
    cmp_le(&diff, &unit).is_le()
}

/// Compares little-endian digit strings by value.
fn cmp_le(x: &[u8], y: &[u8]) -> std::cmp::Ordering {
    let sig = |v: &[u8]| v.iter().rposition(|&d| d != 0).map_or(0, |p| p + 1);
    let (nx, ny) = (sig(x), sig(y));
    nx.cmp(&ny)
        .then_with(|| x[..nx].iter().rev().cmp(y[..ny].iter().rev()))
}

fn add_le(x: &[u8], y: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(x.len().max(y.len()) + 1);
    let mut carry = 0;
    for i in 0..x.len().max(y.len()) {
        let s = x.get(i).copied().unwrap_or(0) + y.get(i).copied().unwrap_or(0) + carry;
        out.push(s % 10);
        carry = s / 10;
    }
    out.push(carry);
    out
}

/// `x − y` for `x ≥ y`.
fn sub_le(x: &[u8], y: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(x.len());
    let mut borrow = 0;
    for (i, &d) in x.iter().enumerate() {
        let s = y.get(i).copied().unwrap_or(0) + borrow;
        if d >= s {
            out.push(d - s);
            borrow = 0;
        } else {
            out.push(d + 10 - s);
            borrow = 1;
        }
    }
    out
}

/// The canonical spelling of a special value (`NaN`, `Infinity`, `inf`,
/// `-Infinity`, …, in any case), if `t` is one.
pub fn special(t: &str) -> Option<&'static str> {
    let t = t.trim();
    let (neg, body) = match t.as_bytes().first()? {
        b'-' => (true, &t[1..]),
        b'+' => (false, &t[1..]),
        _ => (false, t),
    };
    if body.eq_ignore_ascii_case("infinity") || body.eq_ignore_ascii_case("inf") {
        Some(if neg { NEG_INFINITY } else { INFINITY })
    } else if body.eq_ignore_ascii_case("nan") && !neg {
        Some(NAN)
    } else {
        None
    }
}

/// Canonical text of a decimal number, rounded half away from zero to
/// `scale` fractional digits when given. The special values keep their
/// canonical spelling ([`special`]). `None` when `text` is not a number.
pub fn normalize(text: &str, scale: Option<u16>) -> Option<String> {
    let mut p = match Parts::parse(text) {
        Some(p) => p,
        None => return special(text).map(str::to_owned),
    };
    if let Some(scale) = scale {
        p.round_to_scale(scale as i64);
    }
    if !p.in_range() {
        return None;
    }
    let mut out = String::with_capacity(p.digits.len() + 4);
    p.write_plain(&mut out);
    Some(out)
}

/// Canonical decimal text of a float (its shortest round-trip digits).
pub fn from_f64(f: f64, scale: Option<u16>) -> Option<String> {
    let mut out = String::new();
    write_f64(&mut out, f, scale).then_some(out)
}

/// [`from_f64`] into `out` (cleared first), so a scan can reuse one
/// allocation; `false` where `from_f64` gives `None`.
pub fn write_f64(out: &mut String, f: f64, scale: Option<u16>) -> bool {
    out.clear();
    if !f.is_finite() {
        // A decimal column's NaN and ±Infinity are the float's.
        out.push_str(if f.is_nan() {
            NAN
        } else if f > 0.0 {
            INFINITY
        } else {
            NEG_INFINITY
        });
        return true;
    }
    if let Some(s) = scale.filter(|&s| s <= 9) {
        // The common case, a money column stored as REAL: the float is the
        // nearest double to a decimal with at most `s` fractional digits, so
        // scaling and rounding recovers that decimal exactly (well inside
        // 2^53), and it is what its shortest digits would say. Anything
        // further from the grid takes the exact path below.
        const POW10: [f64; 10] = [1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9];
        let x = f * POW10[s as usize];
        if x.abs() < 1e14 {
            // Any nearby integer will do, the check below decides: `as`
            // truncates (half away from zero added) in one instruction
            // where `round` can be a library call.
            let r = (x + 0.5f64.copysign(x)) as i64;
            // A few ulps of the scaled value, always far below half a unit.
            let tolerance = ((r as f64).abs() * 1e-15).max(1e-9);
            if (x - r as f64).abs() < tolerance {
                write_scaled(out, r, s);
                return true;
            }
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
/// `out`: this runs once per decimal value of a scan.
fn write_scaled(out: &mut String, units: i64, scale: u16) {
    if units == 0 {
        out.push('0');
        return;
    }
    if units < 0 {
        out.push('-');
    }
    let mut buf = itoa::Buffer::new();
    let digits = buf.format(units.unsigned_abs());
    let scale = usize::from(scale);
    let (int, frac) = digits.split_at(digits.len().saturating_sub(scale));
    out.push_str(if int.is_empty() { "0" } else { int });
    // Not all zeros (units is not 0), so something is left after trimming.
    let frac = frac.trim_end_matches('0');
    if !frac.is_empty() {
        out.push('.');
        for _ in digits.len()..scale {
            out.push('0');
        }
        out.push_str(frac);
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
        assert!(normalize("1e999999", None).is_none());
        assert!(normalize("1e-999999", None).is_none());
        assert!(normalize("1e99999999999999999999", None).is_none());
        assert!(normalize("", None).is_none());
        assert!(normalize(".", None).is_none());
    }

    /// Every digit of a wide number counts: PostgreSQL's extremes (131072
    /// digits before the point, 16383 after) and its `1e±5000` are exact,
    /// and one unit in the last place is a different value.
    #[test]
    fn wide_numbers_keep_every_digit() {
        let n = |s: &str, k| normalize(s, k).unwrap();
        for e in [300i64, 5000, 16383, 131071] {
            let big = n(&format!("1e{e}"), None);
            assert!(big == format!("1{}", "0".repeat(e as usize)), "1e{e}");
            assert!(big != n(&format!("{big}1e-1"), None), "1e{e}");
            let small = n(&format!("1e-{e}"), u16::try_from(e).ok());
            assert!(
                small == format!("0.{}1", "0".repeat(e as usize - 1)),
                "1e-{e}"
            );
            assert!(small != n(&format!("2e-{e}"), None), "1e-{e}");
            let padded = format!("0.{}1000", "0".repeat(e as usize - 1));
            assert!(small == n(&padded, None), "1e-{e}");
        }
        // numeric(600,400): 0.(299 zeros)1 is not 0, nor rounded away.
        let tiny = format!("0.{}1", "0".repeat(299));
        assert_eq!(n(&tiny, Some(400)), tiny);
        assert_eq!(n(&tiny, Some(299)), "0");
        assert_eq!(
            n(&format!("0.{}05", "0".repeat(299)), Some(300)),
            format!("0.{}1", "0".repeat(299))
        );
        // Rounding a long fraction carries all the way.
        assert_eq!(n(&format!("0.{}", "9".repeat(1000)), Some(999)), "1");
        assert_eq!(
            n(&format!("-{}.5", "9".repeat(500)), Some(0)),
            format!("-1{}", "0".repeat(500))
        );
    }

    #[test]
    fn special_values_are_their_own() {
        let n = |s: &str| normalize(s, Some(2)).unwrap();
        for (canon, forms) in [
            ("NaN", &["nan", "NAN", " NaN "][..]),
            ("Infinity", &["inf", "+Infinity", "INFINITY", "+inf"][..]),
            ("-Infinity", &["-inf", "-infinity"][..]),
        ] {
            for f in forms {
                assert_eq!(n(f), canon, "{f}");
            }
        }
        assert_eq!(super::from_f64(f64::INFINITY, Some(2)).unwrap(), "Infinity");
        assert_eq!(
            super::from_f64(f64::NEG_INFINITY, None).unwrap(),
            "-Infinity"
        );
        assert_eq!(super::from_f64(f64::NAN, Some(0)).unwrap(), "NaN");
        assert!(normalize("-nan", None).is_none());
        assert!(normalize("infinit", None).is_none());
    }

    /// `within_pow10` against the same question asked of exact integers.
    #[test]
    fn within_pow10_is_exact() {
        let p = |s: &str| super::Parts::parse(s).unwrap();
        assert!(super::within_pow10(&p("1.00"), &p("1.01"), -2));
        assert!(super::within_pow10(&p("2.00"), &p("2.01"), -2));
        assert!(super::within_pow10(&p("9.99"), &p("10"), -2));
        assert!(!super::within_pow10(&p("1.00"), &p("1.0100001"), -2));
        assert!(super::within_pow10(&p("-0.005"), &p("0.005"), -2));
        assert!(!super::within_pow10(&p("-0.005"), &p("0.0051"), -2));
        assert!(super::within_pow10(&p("1e300"), &p("1.01e300"), 298));
        for a in -300i64..300 {
            for b in [-300i64, -7, 0, 5, 299] {
                for k in 0..3 {
                    let want = (a - b).abs() <= 10i64.pow(k);
                    let (x, y) = (format!("{a}e-3"), format!("{b}e-3"));
                    assert_eq!(
                        super::within_pow10(&p(&x), &p(&y), k as i64 - 3),
                        want,
                        "{x} {y} {k}"
                    );
                }
            }
        }
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
        fn fast_path_agrees(units in -100_000_000_000_000i64..100_000_000_000_000, scale in 0u16..=9, noise in -3i32..=3) {
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
