//! Calendar arithmetic and ISO-8601 parsing/formatting for temporal values.
//!
//! Hand-written (proleptic Gregorian calendar, Howard Hinnant's civil-date
//! algorithms) so the core needs no date crate and every engine's text is
//! read by exactly one set of rules.

pub const MICROS_PER_SEC: i64 = 1_000_000;
pub const MICROS_PER_DAY: i64 = 86_400 * MICROS_PER_SEC;

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
    pub local_micros: i64,
    pub offset_secs: Option<i32>,
}

impl DateTime {
    /// Microseconds since the epoch in UTC, reading a missing offset as UTC.
    pub fn utc_micros(self) -> i64 {
        self.local_micros - self.offset_secs.unwrap_or(0) as i64 * MICROS_PER_SEC
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

fn parse_date_part(c: &mut Cursor<'_>) -> Option<i64> {
    let neg = c.eat(b'-');
    let y = c.digits(4)?;
    let y = if neg { -y } else { y };
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

/// Parses `HH:MM[:SS[.ffffff…]]`; fractional digits past microseconds are truncated.
fn parse_time_part(c: &mut Cursor<'_>) -> Option<i64> {
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

fn parse_offset(c: &mut Cursor<'_>) -> Option<Option<i32>> {
    while c.eat(b' ') {}
    if c.done() {
        return Some(None);
    }
    if c.eat(b'Z') || c.eat(b'z') {
        return c.done().then_some(Some(0));
    }
    if c.s[c.i..].eq_ignore_ascii_case(b"UTC") {
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

/// Parses `YYYY-MM-DD`, `YYYY-MM-DD[T ]HH:MM[:SS[.f…]]`, each optionally
/// followed by `Z`, `UTC` or `±HH[:MM]`.
pub fn parse_datetime(text: &str) -> Option<DateTime> {
    let mut c = Cursor {
        s: text.trim().as_bytes(),
        i: 0,
    };
    let days = parse_date_part(&mut c)?;
    let mut micros = 0;
    if c.eat(b'T') || c.eat(b't') || c.eat(b' ') {
        micros = parse_time_part(&mut c)?;
    }
    let offset_secs = parse_offset(&mut c)?;
    Some(DateTime {
        local_micros: days.checked_mul(MICROS_PER_DAY)?.checked_add(micros)?,
        offset_secs,
    })
}

/// Parses a date alone (`YYYY-MM-DD`), or the date part of a date-time at midnight.
pub fn parse_date(text: &str) -> Option<i32> {
    let dt = parse_datetime(text)?;
    if dt.local_micros.rem_euclid(MICROS_PER_DAY) != 0 {
        return None;
    }
    i32::try_from(dt.local_micros.div_euclid(MICROS_PER_DAY)).ok()
}

/// Parses a time of day `HH:MM[:SS[.f…]]`.
pub fn parse_time(text: &str) -> Option<i64> {
    let mut c = Cursor {
        s: text.trim().as_bytes(),
        i: 0,
    };
    let t = parse_time_part(&mut c)?;
    c.done().then_some(t)
}

fn format_frac(out: &mut String, micros: i64) {
    if micros != 0 {
        let s = format!(".{micros:06}");
        out.push_str(s.trim_end_matches('0'));
    }
}

/// `YYYY-MM-DDTHH:MM:SS[.ffffff]` (no zone suffix).
pub fn format_timestamp(micros: i64) -> String {
    let days = micros.div_euclid(MICROS_PER_DAY);
    let mut out = format_date_i64(days);
    out.push('T');
    out.push_str(&format_time(micros.rem_euclid(MICROS_PER_DAY)));
    out
}

pub fn format_date(days: i32) -> String {
    format_date_i64(days as i64)
}

fn format_date_i64(days: i64) -> String {
    let (y, m, d) = civil_from_days(days);
    if y < 0 {
        format!("-{:04}-{m:02}-{d:02}", -y)
    } else {
        format!("{y:04}-{m:02}-{d:02}")
    }
}

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

#[cfg(test)]
mod tests {
    use super::*;

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

    #[test]
    fn formats_round_trip() {
        for us in [
            -1i64,
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
