//! Calendar arithmetic and ISO-8601 parsing/formatting for temporal values.
//!
//! Hand-written (proleptic Gregorian calendar, Howard Hinnant's civil-date
//! algorithms) so the core needs no date crate and every engine's text is
//! read by exactly one set of rules.
//!
//! Instants are `i128` microseconds since 1970, so every PostgreSQL
//! timestamp (4713 BC to 294276 AD; PostgreSQL counts `i64` microseconds
//! from 2000, which overflows an `i64` counted from 1970) is exact, and
//! nothing saturates. Years in text have 4 to 7 digits, with an optional
//! sign (ISO 8601's astronomical years: `-0044` is 45 BC) or PostgreSQL's
//! ` BC` suffix (`0045-03-15 BC`). `infinity` and `-infinity` are values of
//! their own (sentinels outside any real instant or date).

/// Microseconds in a second.
pub const MICROS_PER_SEC: i64 = 1_000_000;
/// Microseconds in a day.
pub const MICROS_PER_DAY: i64 = 86_400 * MICROS_PER_SEC;

/// PostgreSQL's `infinity` as an instant; no parsed or decoded time reaches it.
pub const INFINITY_MICROS: i128 = i128::MAX;
/// PostgreSQL's `-infinity` as an instant.
pub const NEG_INFINITY_MICROS: i128 = i128::MIN;
/// PostgreSQL's `infinity` as a date (days since 1970). Beyond PostgreSQL's
/// last date (5874897-12-31), and [`parse_date`] never returns it.
pub const INFINITY_DAYS: i32 = i32::MAX;
/// PostgreSQL's `-infinity` as a date.
pub const NEG_INFINITY_DAYS: i32 = i32::MIN;

/// `+1` / `-1` when `text` is `infinity` / `-infinity` (`+infinity`, any case).
pub fn parse_infinity(text: &str) -> Option<i8> {
    let t = text.trim();
    let (sign, body) = match t.as_bytes().first()? {
        b'-' => (-1, &t[1..]),
        b'+' => (1, &t[1..]),
        _ => (1, t),
    };
    body.eq_ignore_ascii_case("infinity").then_some(sign)
}

/// Days since 1970-01-01 of a civil date.
pub fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = m as i64;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + d as i64 - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The civil date (year, month, day) of a day number since 1970-01-01.
pub fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

fn days_in_month(y: i64, m: u32) -> u32 {
    match m {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        _ if (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 => 29,
        _ => 28,
    }
}

/// A parsed ISO-8601 date-time: local wall-clock microseconds and the UTC
/// offset in seconds when the text carried one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DateTime {
    /// Microseconds since the epoch, on the wall clock of the text.
    pub local_micros: i128,
    /// The text's offset from UTC in seconds, when it had one.
    pub offset_secs: Option<i32>,
}

impl DateTime {
    /// Microseconds since the epoch in UTC, reading a missing offset as UTC.
    pub fn utc_micros(self) -> i128 {
        self.local_micros - self.offset_secs.unwrap_or(0) as i128 * MICROS_PER_SEC as i128
    }
}

struct Cursor<'a> {
    s: &'a [u8],
    i: usize,
}

impl Cursor<'_> {
    fn digits(&mut self, n: usize) -> Option<i64> {
        let end = self.i.checked_add(n)?;
        let part = self.s.get(self.i..end)?;
        let mut v = 0i64;
        for &c in part {
            if !c.is_ascii_digit() {
                return None;
            }
            v = v * 10 + (c - b'0') as i64;
        }
        self.i = end;
        Some(v)
    }
    /// A run of `min..=max` digits (no more may follow).
    fn digit_run(&mut self, min: usize, max: usize) -> Option<i64> {
        let n = self.s[self.i..]
            .iter()
            .take_while(|c| c.is_ascii_digit())
            .count();
        if !(min..=max).contains(&n) {
            return None;
        }
        self.digits(n)
    }
    fn eat(&mut self, c: u8) -> bool {
        if self.s.get(self.i) == Some(&c) {
            self.i += 1;
            true
        } else {
            false
        }
    }
    fn peek(&self) -> Option<u8> {
        self.s.get(self.i).copied()
    }
    fn done(&self) -> bool {
        self.i == self.s.len()
    }
}

/// `[±]YYYY[YYY]-MM-DD` as days since 1970; `bc` (a ` BC` suffix) reads
/// the year as PostgreSQL does: 1 BC is astronomical year 0.
fn parse_date_part(c: &mut Cursor<'_>, bc: bool) -> Option<i64> {
    let neg = c.eat(b'-');
    let signed = neg || c.eat(b'+');
    let y = c.digit_run(4, 7)?;
    let y = match (bc, signed) {
        (false, _) if neg => -y,
        (false, _) => y,
        (true, false) if y >= 1 => 1 - y,
        (true, _) => return None,
    };
    if !c.eat(b'-') {
        return None;
    }
    let m = c.digits(2)? as u32;
    if !c.eat(b'-') {
        return None;
    }
    let d = c.digits(2)? as u32;
    if !(1..=12).contains(&m) || d == 0 || d > days_in_month(y, m) {
        return None;
    }
    Some(days_from_civil(y, m, d))
}

/// Parses `HH:MM[:SS[.ffffff…]]`. Fractional digits past microseconds are
/// truncated in [`Form::Typed`] text and must be zeros in [`Form::Stored`]
/// text (they name another instant than the one kept).
fn parse_time_part(c: &mut Cursor<'_>, form: Form) -> Option<i64> {
    let h = c.digits(2)?;
    if !c.eat(b':') {
        return None;
    }
    let mi = c.digits(2)?;
    let mut s = 0;
    let mut frac = 0i64;
    if c.eat(b':') {
        s = c.digits(2)?;
        if c.eat(b'.') || c.eat(b',') {
            let start = c.i;
            while let Some(d) = c.peek().filter(u8::is_ascii_digit) {
                if c.i - start < 6 {
                    frac = frac * 10 + (d - b'0') as i64;
                } else if d != b'0' && form == Form::Stored {
                    return None;
                }
                c.i += 1;
            }
            let digits = c.i - start;
            if digits == 0 {
                return None;
            }
            // Fewer than six digits: scale up to microseconds.
            const SCALE: [i64; 6] = [100_000, 10_000, 1_000, 100, 10, 1];
            frac *= SCALE[digits.min(6) - 1];
        }
    }
    // 24:00:00 is midnight at the end of the day, as PostgreSQL allows.
    if h > 24 || mi > 59 || s > 60 || (h == 24 && (mi, s, frac) != (0, 0, 0)) {
        return None;
    }
    Some(((h * 60 + mi) * 60 + s) * MICROS_PER_SEC + frac)
}

fn parse_offset(c: &mut Cursor<'_>, form: Form) -> Option<Option<i32>> {
    if form == Form::Stored {
        // One space, and only before an offset: a trailing space is not
        // part of any form a writer uses.
        if c.eat(b' ') && c.done() {
            return None;
        }
    } else {
        while c.eat(b' ') {}
    }
    if c.done() {
        return Some(None);
    }
    let lenient = form == Form::Typed;
    if c.eat(b'Z') || (lenient && c.eat(b'z')) {
        return c.done().then_some(Some(0));
    }
    let rest = &c.s[c.i..];
    if rest == b"UTC" || (lenient && rest.eq_ignore_ascii_case(b"UTC")) {
        c.i = c.s.len();
        return Some(Some(0));
    }
    let sign = if c.eat(b'+') {
        1
    } else if c.eat(b'-') {
        -1
    } else {
        return None;
    };
    let h = c.digits(2)? as i32;
    let mut m = 0;
    // Minutes may follow with or without a colon: +05:30 or +0530.
    if c.eat(b':') || !c.done() {
        m = c.digits(2)? as i32;
    }
    let mut s = 0;
    if c.eat(b':') {
        s = c.digits(2)? as i32;
    }
    if !c.done() || h > 15 || m > 59 || s > 59 {
        return None;
    }
    Some(Some(sign * (h * 3600 + m * 60 + s)))
}

/// How strictly a text is read as a date or time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Form {
    /// Typed by a person (a filter bound, a config value): surrounding
    /// white space and any letter case pass, and digits past microseconds
    /// are dropped.
    Typed,
    /// Stored in a database: only the forms writers produce (`T` or one
    /// space between date and time, `Z`, `UTC` and ` BC` in capitals, no
    /// surrounding white space, no nonzero digit past microseconds). Any
    /// other text is no value of the column, so two stored texts that
    /// differ never read as one instant unless they are two spellings of it
    /// that writers use: a key in an odd form is a difference, never
    /// merged with its neighbour.
    Stored,
}

/// Parses `YYYY-MM-DD`, `YYYY-MM-DD[T ]HH:MM[:SS[.f…]]`, each optionally
/// followed by `Z`, `UTC` or `±HH[:MM[:SS]]`, then optionally ` BC`. The
/// year may have 4 to 7 digits and a sign (see the module comment). Text
/// typed by a person; see [`parse_stored_datetime`] for a stored value.
pub fn parse_datetime(text: &str) -> Option<DateTime> {
    parse_datetime_in(text.trim(), Form::Typed)
}

/// [`parse_datetime`] for a value stored in a database ([`Form::Stored`]).
pub fn parse_stored_datetime(text: &str) -> Option<DateTime> {
    parse_datetime_in(text, Form::Stored)
}

fn parse_datetime_in(t: &str, form: Form) -> Option<DateTime> {
    match fixed_datetime(t.as_bytes()) {
        Some(parsed) => parsed,
        None => parse_datetime_general(t, form),
    }
}

/// The form nearly every stored timestamp has, `YYYY-MM-DD HH:MM:SS` with
/// `T` or a space and up to six fractional digits, read by position: a scan
/// parses one per row. `None` when the text has another shape (the general
/// parser decides then); otherwise what the general parser gives, in both
/// forms.
#[inline]
fn fixed_datetime(t: &[u8]) -> Option<Option<DateTime>> {
    let frac_digits = match t.len() {
        19 => 0,
        21..=26 if t[19] == b'.' || t[19] == b',' => t.len() - 20,
        _ => return None,
    };
    if t[4] != b'-'
        || t[7] != b'-'
        || !matches!(t[10], b' ' | b'T')
        || t[13] != b':'
        || t[16] != b':'
    {
        return None;
    }
    // Every digit position checked at once, then each field read by
    // position: no loop a field.
    const DIGITS: [usize; 14] = [0, 1, 2, 3, 5, 6, 8, 9, 11, 12, 14, 15, 17, 18];
    if DIGITS.iter().any(|&i| !t[i].is_ascii_digit()) {
        return None;
    }
    let n = |i: usize| i64::from(t[i] - b'0');
    let two = |i: usize| n(i) * 10 + n(i + 1);
    let y = two(0) * 100 + two(2);
    let (m, d, h, mi, sec) = (two(5), two(8), two(11), two(14), two(17));
    let mut frac = 0;
    if frac_digits > 0 {
        const SCALE: [i64; 6] = [100_000, 10_000, 1_000, 100, 10, 1];
        for &c in &t[20..] {
            if !c.is_ascii_digit() {
                return None;
            }
            frac = frac * 10 + i64::from(c - b'0');
        }
        frac *= SCALE[frac_digits - 1];
    }
    // From here the shape is certain: a bad field is a bad value.
    let (m, d) = (m as u32, d as u32);
    if !(1..=12).contains(&m) || d == 0 || d > days_in_month(y, m) {
        return Some(None);
    }
    if h > 24 || mi > 59 || sec > 60 || (h == 24 && (mi, sec, frac) != (0, 0, 0)) {
        return Some(None);
    }
    let micros = ((h * 60 + mi) * 60 + sec) * MICROS_PER_SEC + frac;
    Some(Some(DateTime {
        local_micros: days_from_civil(y, m, d) as i128 * MICROS_PER_DAY as i128 + micros as i128,
        offset_secs: None,
    }))
}

fn parse_datetime_general(t: &str, form: Form) -> Option<DateTime> {
    let (t, bc) = match t.len().checked_sub(3).and_then(|i| t.get(i..)) {
        Some(" BC") => (&t[..t.len() - 3], true),
        Some(tail) if form == Form::Typed && tail.eq_ignore_ascii_case(" BC") => {
            (&t[..t.len() - 3], true)
        }
        _ => (t, false),
    };
    let mut c = Cursor {
        s: t.as_bytes(),
        i: 0,
    };
    let days = parse_date_part(&mut c, bc)?;
    let mut micros = 0;
    let lower_t = form == Form::Typed && c.eat(b't');
    if lower_t || c.eat(b'T') || c.eat(b' ') {
        micros = parse_time_part(&mut c, form)?;
    }
    let offset_secs = parse_offset(&mut c, form)?;
    Some(DateTime {
        local_micros: days as i128 * MICROS_PER_DAY as i128 + micros as i128,
        offset_secs,
    })
}

/// Parses a date alone (`YYYY-MM-DD`), or the date part of a date-time at midnight.
pub fn parse_date(text: &str) -> Option<i32> {
    let dt = parse_datetime(text)?;
    days_of(dt.local_micros)
}

/// The day number of a midnight, if it is one and a date can hold it
/// (never one of the infinity sentinels).
pub fn days_of(micros: i128) -> Option<i32> {
    let day = MICROS_PER_DAY as i128;
    if micros.rem_euclid(day) != 0 {
        return None;
    }
    i32::try_from(micros.div_euclid(day))
        .ok()
        .filter(|&d| d != INFINITY_DAYS && d != NEG_INFINITY_DAYS)
}

/// Parses a time of day `HH:MM[:SS[.f…]]` typed by a person.
pub fn parse_time(text: &str) -> Option<i64> {
    parse_time_in(text.trim(), Form::Typed)
}

/// [`parse_time`] for a value stored in a database ([`Form::Stored`]).
pub fn parse_stored_time(text: &str) -> Option<i64> {
    parse_time_in(text, Form::Stored)
}

fn parse_time_in(text: &str, form: Form) -> Option<i64> {
    let mut c = Cursor {
        s: text.as_bytes(),
        i: 0,
    };
    let t = parse_time_part(&mut c, form)?;
    c.done().then_some(t)
}

fn format_frac(out: &mut String, micros: i64) {
    if micros != 0 {
        let s = format!(".{micros:06}");
        out.push_str(s.trim_end_matches('0'));
    }
}

/// Appends `n` (0 ≤ n < 10^width) in `width` zero-padded digits.
pub fn push_digits(out: &mut Vec<u8>, n: u64, width: usize) {
    let at = out.len();
    out.resize(at + width, b'0');
    let mut n = n;
    for slot in out[at..].iter_mut().rev() {
        *slot = b'0' + (n % 10) as u8;
        n /= 10;
    }
}

/// Appends `HH:MM:SS[.f…]` for microseconds since midnight (`0..86400e6`).
fn push_time(out: &mut Vec<u8>, micros: i64) {
    let secs = (micros / MICROS_PER_SEC) as u64;
    push_digits(out, secs / 3600, 2);
    out.push(b':');
    push_digits(out, secs / 60 % 60, 2);
    out.push(b':');
    push_digits(out, secs % 60, 2);
    let mut frac = (micros % MICROS_PER_SEC) as u64;
    if frac != 0 {
        let mut width = 6;
        while frac.is_multiple_of(10) {
            frac /= 10;
            width -= 1;
        }
        out.push(b'.');
        push_digits(out, frac, width);
    }
}

/// Appends `YYYY-MM-DD` for `days` since 1970-01-01 when the year is 0000
/// to 9999; `false` (having appended nothing) otherwise.
pub fn push_date(out: &mut Vec<u8>, days: i64) -> bool {
    if !(-719_528..=2_932_896).contains(&days) {
        return false;
    }
    let (y, m, d) = civil_from_days(days);
    push_digits(out, y as u64, 4);
    out.push(b'-');
    push_digits(out, u64::from(m), 2);
    out.push(b'-');
    push_digits(out, u64::from(d), 2);
    true
}

/// Appends exactly what [`format_timestamp`] returns (and, for `date` only,
/// [`format_date`] of its days), without formatting machinery, for the
/// common case: years 0000–9999. `false` (having appended nothing) for any
/// other value, which the caller formats the slow way.
pub fn write_timestamp(out: &mut Vec<u8>, micros: i128, date_only: bool) -> bool {
    let day = MICROS_PER_DAY as i128;
    // 0000-01-01 ..= 9999-12-31, as days since 1970.
    let Ok(days) = i64::try_from(micros.div_euclid(day)) else {
        return false;
    };
    if !push_date(out, days) {
        return false;
    }
    if !date_only {
        out.push(b'T');
        push_time(out, micros.rem_euclid(day) as i64);
    }
    true
}

/// Appends exactly what [`format_time`] returns, for a time of day inside
/// one day; `false` (having appended nothing) otherwise.
pub fn write_time(out: &mut Vec<u8>, micros: i64) -> bool {
    if !(0..MICROS_PER_DAY).contains(&micros) {
        return false;
    }
    push_time(out, micros);
    true
}

/// `YYYY-MM-DDTHH:MM:SS[.ffffff]` (no zone suffix), or `infinity` /
/// `-infinity`.
pub fn format_timestamp(micros: impl Into<i128>) -> String {
    let micros: i128 = micros.into();
    match micros {
        INFINITY_MICROS => return "infinity".into(),
        NEG_INFINITY_MICROS => return "-infinity".into(),
        _ => {}
    }
    let day = MICROS_PER_DAY as i128;
    // Parsed text (7-digit years at most) and decoded values stay far
    // inside this; beyond it the calendar arithmetic could overflow.
    let days = match i64::try_from(micros.div_euclid(day)) {
        Ok(d) if d.unsigned_abs() < 1 << 40 => d,
        _ => return format!("{micros}us since 1970"),
    };
    let mut out = format_date_i64(days);
    out.push('T');
    out.push_str(&format_time(micros.rem_euclid(day) as i64));
    out
}

/// `YYYY-MM-DD` (astronomical years, `-0044` for 45 BC), or `infinity` /
/// `-infinity`.
pub fn format_date(days: i32) -> String {
    match days {
        INFINITY_DAYS => "infinity".into(),
        NEG_INFINITY_DAYS => "-infinity".into(),
        d => format_date_i64(d as i64),
    }
}

fn format_date_i64(days: i64) -> String {
    let (y, m, d) = civil_from_days(days);
    if y < 0 {
        format!("-{:04}-{m:02}-{d:02}", -y)
    } else {
        format!("{y:04}-{m:02}-{d:02}")
    }
}

/// Formats microseconds since midnight as a time of day.
pub fn format_time(micros: i64) -> String {
    let secs = micros.div_euclid(MICROS_PER_SEC);
    let mut out = format!("{:02}:{:02}:{:02}", secs / 3600, secs / 60 % 60, secs % 60);
    format_frac(&mut out, micros.rem_euclid(MICROS_PER_SEC));
    out
}

/// Truncates microseconds to `precision` fractional digits (0..=6), towards
/// negative infinity so that instants before 1970 behave like later ones.
pub fn truncate_micros(micros: i64, precision: u8) -> i64 {
    if precision >= 6 {
        return micros;
    }
    let unit = 10i64.pow(6 - precision as u32);
    micros.div_euclid(unit) * unit
}

/// [`truncate_micros`] for an instant; the infinities stay themselves.
pub fn truncate_instant(micros: i128, precision: u8) -> i128 {
    if precision >= 6 || micros == INFINITY_MICROS || micros == NEG_INFINITY_MICROS {
        return micros;
    }
    let unit = 10i128.pow(6 - precision as u32);
    micros.div_euclid(unit) * unit
}

#[cfg(test)]
mod tests {
    use super::*;

    use proptest::prelude::{Just, Strategy as _};

    proptest::proptest! {
        /// The fast writers append exactly what the formatting functions
        /// return, wherever they accept a value.
        #[test]
        fn writers_match_formatters(
            micros in proptest::prop_oneof![
                proptest::prelude::any::<i64>().prop_map(i128::from),
                (-62_167_219_200_000_000i128..253_402_300_800_000_000i128),
                (-10i128..10),
                (0i128..1000).prop_map(|d| d * MICROS_PER_DAY as i128),
                (0i128..100_000).prop_map(|s| 1_700_000_000_000_000 + s * 10_000),
            ],
            tod in proptest::prop_oneof![
                proptest::prelude::any::<i64>(),
                0i64..MICROS_PER_DAY,
                (0i64..86_400).prop_map(|s| s * MICROS_PER_SEC),
            ],
        ) {
            let mut out = Vec::new();
            if write_timestamp(&mut out, micros, false) {
                proptest::prop_assert_eq!(String::from_utf8(out.clone()).unwrap(), format_timestamp(micros));
                out.clear();
                proptest::prop_assert!(write_timestamp(&mut out, micros, true));
                let days = micros.div_euclid(MICROS_PER_DAY as i128) as i32;
                proptest::prop_assert_eq!(String::from_utf8(out.clone()).unwrap(), format_date(days));
            } else {
                proptest::prop_assert!(out.is_empty());
            }
            out.clear();
            if write_time(&mut out, tod) {
                proptest::prop_assert_eq!(String::from_utf8(out).unwrap(), format_time(tod));
            } else {
                proptest::prop_assert!(out.is_empty() && !(0..MICROS_PER_DAY).contains(&tod));
            }
        }
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(4096))]
        /// The by-position reading of the common form answers exactly what
        /// the general parser does, valid or not, in both forms: digits,
        /// separators and lengths around the common shape, impossible dates
        /// and times, leap days and the 24:00:00 end of day.
        #[test]
        fn fixed_form_reads_like_the_general_parser(
            y in proptest::prop_oneof![Just(2000u32), Just(1900), Just(2024), 0u32..10_000],
            m in proptest::prop_oneof![4 => 1u32..13, 1 => 0u32..100],
            d in proptest::prop_oneof![4 => 1u32..32, 1 => 0u32..100],
            h in proptest::prop_oneof![4 => 0u32..24, 1 => Just(24), 1 => 0u32..100],
            mi in proptest::prop_oneof![4 => 0u32..60, 2 => Just(0), 1 => 0u32..100],
            sec in proptest::prop_oneof![4 => 0u32..61, 2 => Just(0), 1 => 0u32..100],
            sep in proptest::prop_oneof![
                4 => Just(" "),
                2 => Just("T"),
                1 => proptest::sample::select(vec!["t", "  ", "_", ""]),
            ],
            frac in proptest::prop_oneof![3 => "(\\.[0-9]{1,6})?", 1 => "[.,][0-9]{0,9}"],
            tail in proptest::prop_oneof![
                6 => Just(""),
                1 => proptest::sample::select(vec![" BC", "Z", "+01:00", " ", "0"]),
            ],
            noise in proptest::prop_oneof![
                4 => Just(None),
                1 => (0usize..30, proptest::sample::select(vec![b'x', b'-', b':', b'/', b' ', 0xC3])).prop_map(Some),
            ],
        ) {
            let mut text = format!("{y:04}-{m:02}-{d:02}{sep}{h:02}:{mi:02}:{sec:02}{frac}{tail}").into_bytes();
            if let Some((at, b)) = noise {
                if at < text.len() {
                    text[at] = b;
                }
            }
            let Ok(text) = String::from_utf8(text) else { return Ok(()) };
            for form in [Form::Stored, Form::Typed] {
                proptest::prop_assert_eq!(
                    parse_datetime_in(&text, form),
                    parse_datetime_general(&text, form),
                    "{:?} {:?}", text, form
                );
            }
        }
    }

    #[test]
    fn civil_round_trips() {
        for days in [-800_000i64, -719_468, -1, 0, 1, 19_000, 2_932_896] {
            let (y, m, d) = civil_from_days(days);
            assert_eq!(days_from_civil(y, m, d), days);
        }
        assert_eq!(days_from_civil(2024, 3, 1), 19_783);
    }

    #[test]
    fn parses_common_forms() {
        let t = parse_datetime("2024-03-01 10:00:00+00").unwrap();
        let u = parse_datetime("2024-03-01T10:00:00Z").unwrap();
        let v = parse_datetime("2024-03-01T12:00:00.000+02:00").unwrap();
        assert_eq!(t.utc_micros(), u.utc_micros());
        assert_eq!(u.utc_micros(), v.utc_micros());
        assert_eq!(parse_datetime("2024-03-01").unwrap().offset_secs, None);
        assert_eq!(
            parse_datetime("1969-12-31 23:59:59.999999")
                .unwrap()
                .utc_micros(),
            -1
        );
        assert!(parse_datetime("2024-02-30").is_none());
        assert!(parse_datetime("2024-03-01T25:00").is_none());
        assert!(parse_datetime("yesterday").is_none());
        assert_eq!(parse_time("10:11:12.5"), Some(36_672_500_000));
        assert_eq!(parse_date("2024-03-01"), Some(19_783));
    }

    /// Both ends of PostgreSQL's range and beyond, in every spelling a
    /// replica's text may use: 5- to 7-digit years, signed ISO years and
    /// PostgreSQL's ` BC`.
    #[test]
    fn wide_and_bc_years() {
        let us = |s: &str| {
            parse_datetime(s)
                .unwrap_or_else(|| panic!("{s}"))
                .utc_micros()
        };
        let last = 9_224_318_015_999_999_999i128; // 294276-12-31 23:59:59.999999
        assert_eq!(us("294276-12-31 23:59:59.999999"), last);
        assert_eq!(us("+294276-12-31T23:59:59.999999Z"), last);
        assert_eq!(us("294276-12-31 23:59:59.999999+00"), last);
        assert!(last > i64::MAX as i128);
        assert_ne!(us("294276-12-31 23:59:59"), us("294250-01-01 00:00:00"));
        assert_eq!(us("294277-01-01") - 1, last);
        let first = -210_866_803_200_000_000i128; // 4714-11-24 BC 00:00
        assert_eq!(us("4714-11-24 00:00:00+00 BC"), first);
        assert_eq!(us("-4713-11-24T00:00:00Z"), first);
        assert_eq!(us("4714-11-24 BC"), first);
        assert_eq!(us("0001-12-31 BC"), us("0000-12-31"));
        assert_eq!(
            us("0001-01-01 BC") - us("0001-01-01"),
            -366 * MICROS_PER_DAY as i128
        );
        // Leap years are astronomical: 1 BC (year 0) and 5 BC (-4) are leap.
        assert!(parse_datetime("0001-02-29 BC").is_some());
        assert!(parse_datetime("0005-02-29 BC").is_some());
        assert!(parse_datetime("0002-02-29 BC").is_none());
        assert!(parse_datetime("0000-01-01 BC").is_none());
        assert!(parse_datetime("-0001-01-01 BC").is_none());
        assert_eq!(parse_date("5874897-12-31"), Some(2_145_042_905));
        assert_eq!(
            parse_date("10000-01-01"),
            Some(days_from_civil(10_000, 1, 1) as i32)
        );
        // Past what a date holds: not a date (and never an infinity).
        assert_eq!(parse_date(&format_date_i64(i32::MAX as i64)), None);
        assert_eq!(
            parse_date(&format_date_i64(i32::MAX as i64 - 1)),
            Some(i32::MAX - 1)
        );
        assert_eq!(parse_date("9999999-12-31"), None);
        assert!(parse_datetime("12345678-01-01").is_none());
        assert!(parse_datetime("123-01-01").is_none());
        for t in [last, first, 0, -1, i64::MAX as i128 + 1] {
            let s = format_timestamp(t);
            assert_eq!(us(&s), t, "{s}");
        }
        assert_eq!(format_timestamp(last), "294276-12-31T23:59:59.999999");
        assert_eq!(format_timestamp(INFINITY_MICROS), "infinity");
        assert_eq!(format_date(NEG_INFINITY_DAYS), "-infinity");
        assert_eq!(format_date(2_145_042_905), "5874897-12-31");
        assert_eq!(parse_infinity(" +Infinity"), Some(1));
        assert_eq!(parse_infinity("-infinity"), Some(-1));
        assert_eq!(parse_infinity("inf"), None);
        assert_eq!(truncate_instant(INFINITY_MICROS, 0), INFINITY_MICROS);
        assert_eq!(truncate_instant(last, 0), last - 999_999);
    }

    #[test]
    fn formats_round_trip() {
        for us in [
            -1i128,
            0,
            1_709_287_200_000_000,
            1_709_287_200_123_456,
            -62_135_596_800_000_000,
        ] {
            let s = format_timestamp(us);
            assert_eq!(parse_datetime(&s).unwrap().utc_micros(), us, "{s}");
        }
        assert_eq!(format_time(36_672_500_000), "10:11:12.5");
        assert_eq!(truncate_micros(-1, 0), -1_000_000);
        assert_eq!(truncate_micros(1_234_567, 3), 1_234_000);
    }
}
