//! MySQL / MariaDB DATE, DATETIME and TIMESTAMP values as the binary
//! protocol delivers them, turned into logical values.
//!
//! The protocol carries the stored fields as they are (year, month, day,
//! hour, minute, second, microseconds), so a zero date (`0000-00-00`), a zero
//! month or day (`2024-00-15`) and an `ALLOW_INVALID_DATES` day
//! (`2024-02-31`) arrive unchanged. None of them is a calendar day: each
//! becomes [`Value::Invalid`] holding the text MySQL itself prints for it
//! (`2024-00-15 10:00:00`, with as many fractional digits as the column
//! declares), never NULL and never a normalized neighbouring date. A replica
//! that copied that text holds an equal value; NULL, another date or another
//! time of day differ.

use driftsum_core::coerce::ColumnRule;
use driftsum_core::{time, LogicalType, Value};

/// The fields of a binary date-time, as stored.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Fields {
    year: u16,
    month: u8,
    day: u8,
    hour: u8,
    minute: u8,
    second: u8,
    micros: u32,
}

impl Fields {
    /// Parses the protocol's layout: a length byte (0, 4, 7 or 11), year
    /// (u16 LE), month, day, then hour, minute, second and microseconds (u32
    /// LE) as the length allows. Length 0 is the zero date. `None` when the
    /// bytes are not that layout.
    fn parse(b: &[u8]) -> Option<Fields> {
        let (&len, rest) = b.split_first()?;
        let body = rest.get(..len as usize)?;
        let mut f = Fields::default();
        match len {
            0 => return Some(f),
            4 | 7 | 11 => {}
            _ => return None,
        }
        f.year = u16::from_le_bytes([body[0], body[1]]);
        f.month = body[2];
        f.day = body[3];
        if len >= 7 {
            (f.hour, f.minute, f.second) = (body[4], body[5], body[6]);
        }
        if len == 11 {
            f.micros = u32::from_le_bytes([body[7], body[8], body[9], body[10]]);
        }
        Some(f)
    }

    /// Days since 1970-01-01, when the date is a real calendar day.
    fn days(&self) -> Option<i64> {
        let (y, m, d) = (self.year as i64, self.month as u32, self.day as u32);
        if !(1..=12).contains(&m) || d == 0 {
            return None;
        }
        let days = time::days_from_civil(y, m, d);
        // The civil-date formula carries 2024-02-31 over into March: a
        // round trip tells a real day from one that only looks like it.
        (time::civil_from_days(days) == (y, m, d)).then_some(days)
    }

    fn time_ok(&self) -> bool {
        self.hour <= 23 && self.minute <= 59 && self.second <= 59 && self.micros < 1_000_000
    }

    /// The text MySQL prints for the value: `YYYY-MM-DD` for a DATE, else
    /// `YYYY-MM-DD HH:MM:SS` and `fsp` fractional digits.
    fn mysql_text(&self, date_only: bool, fsp: u8) -> String {
        let mut s = format!("{:04}-{:02}-{:02}", self.year, self.month, self.day);
        if date_only {
            return s;
        }
        s.push_str(&format!(
            " {:02}:{:02}:{:02}",
            self.hour, self.minute, self.second
        ));
        let fsp = fsp.min(6) as u32;
        if fsp > 0 {
            let frac = self.micros / 10u32.pow(6 - fsp);
            s.push_str(&format!(".{frac:0width$}", width = fsp as usize));
        }
        s
    }
}

/// Decodes a binary DATE (`date_only`) or DATETIME / TIMESTAMP (declared
/// with `fsp` fractional digits) into `rule`'s logical type.
pub(super) fn decode(b: &[u8], date_only: bool, fsp: u8, rule: &ColumnRule) -> Value {
    let Some(f) = Fields::parse(b) else {
        return Value::Invalid(format!(
            "malformed date-time {}",
            driftsum_core::value::hex(b)
        ));
    };
    let days = match f.days() {
        Some(d) if f.time_ok() => d,
        _ => return not_a_day(f.mysql_text(date_only, fsp), rule),
    };
    let total = days * time::MICROS_PER_DAY
        + ((f.hour as i64 * 60 + f.minute as i64) * 60 + f.second as i64) * time::MICROS_PER_SEC
        + f.micros as i64;
    match rule.ty {
        LogicalType::Date if date_only => Value::Date(days as i32),
        LogicalType::Timestamp { .. } => rule.finish(Value::Timestamp(total.into())),
        LogicalType::TimestampNaive { .. } => rule.finish(Value::TimestampNaive(total.into())),
        // Read as another type (a cross-type comparison): through its text.
        _ => rule.from_text(&format!("{}Z", time::format_timestamp(total))),
    }
}

/// A stored value that names no calendar day, as `rule` reads its text: for
/// a temporal column that is always the invalid value holding the text
/// (parsing must never turn it into a neighbouring day); a text column
/// compared with it reads the text itself.
fn not_a_day(text: String, rule: &ColumnRule) -> Value {
    match rule.ty {
        LogicalType::Text | LogicalType::Bytes | LogicalType::Dynamic => rule.from_text(&text),
        _ => Value::Invalid(text),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn date(y: u16, m: u8, d: u8) -> Vec<u8> {
        let y = y.to_le_bytes();
        vec![4, y[0], y[1], m, d]
    }

    fn datetime(y: u16, m: u8, d: u8, h: u8, mi: u8, s: u8, us: u32) -> Vec<u8> {
        let mut b = date(y, m, d);
        b[0] = 11;
        b.extend([h, mi, s]);
        b.extend(us.to_le_bytes());
        b
    }

    #[test]
    fn real_days_decode_exactly() {
        let naive = ColumnRule::new(LogicalType::TimestampNaive { precision: 6 });
        let utc = ColumnRule::new(LogicalType::Timestamp { precision: 6 });
        let day = ColumnRule::new(LogicalType::Date);
        let b = datetime(2024, 3, 1, 10, 0, 0, 5);
        assert_eq!(
            decode(&b, false, 6, &naive),
            naive.from_text("2024-03-01 10:00:00.000005")
        );
        assert_eq!(
            decode(
                &b[..8]
                    .iter()
                    .copied()
                    .map(|x| if x == 11 { 7 } else { x })
                    .collect::<Vec<_>>(),
                false,
                0,
                &utc
            ),
            utc.from_text("2024-03-01T10:00:00Z")
        );
        assert_eq!(
            decode(&date(1969, 7, 20), true, 0, &day),
            day.from_text("1969-07-20")
        );
        // Both ends of MySQL's ranges, leap days, year zero.
        for (y, m, d) in [
            (1000, 1, 1),
            (9999, 12, 31),
            (2000, 2, 29),
            (2024, 2, 29),
            (0, 1, 1),
        ] {
            let text = format!("{y:04}-{m:02}-{d:02}");
            assert_eq!(
                decode(&date(y, m, d), true, 0, &day),
                day.from_text(&text),
                "{text}"
            );
            assert!(matches!(day.from_text(&text), Value::Date(_)), "{text}");
        }
        assert_eq!(
            decode(
                &datetime(9999, 12, 31, 23, 59, 59, 999_999),
                false,
                6,
                &naive
            ),
            naive.from_text("9999-12-31 23:59:59.999999")
        );
    }

    #[test]
    fn days_that_are_not_calendar_days_keep_their_text() {
        let day = ColumnRule::new(LogicalType::Date);
        let naive = ColumnRule::new(LogicalType::TimestampNaive { precision: 0 });
        let naive6 = ColumnRule::new(LogicalType::TimestampNaive { precision: 6 });
        let utc3 = ColumnRule::new(LogicalType::Timestamp { precision: 3 });
        let cases: Vec<(Vec<u8>, bool, u8, &ColumnRule, &str)> = vec![
            (vec![0], true, 0, &day, "0000-00-00"),
            (vec![0], false, 0, &naive, "0000-00-00 00:00:00"),
            (vec![0], false, 6, &naive6, "0000-00-00 00:00:00.000000"),
            (vec![0], false, 3, &utc3, "0000-00-00 00:00:00.000"),
            (date(2024, 2, 31), true, 0, &day, "2024-02-31"),
            (date(2023, 2, 29), true, 0, &day, "2023-02-29"),
            (date(2024, 4, 31), true, 0, &day, "2024-04-31"),
            (date(2024, 0, 15), true, 0, &day, "2024-00-15"),
            (date(2024, 5, 0), true, 0, &day, "2024-05-00"),
            (date(2024, 0, 0), true, 0, &day, "2024-00-00"),
            (date(2024, 13, 1), true, 0, &day, "2024-13-01"),
            (
                datetime(2024, 0, 15, 10, 0, 0, 0),
                false,
                0,
                &naive,
                "2024-00-15 10:00:00",
            ),
            (
                datetime(2024, 0, 15, 23, 59, 59, 0),
                false,
                0,
                &naive,
                "2024-00-15 23:59:59",
            ),
            (
                datetime(2024, 2, 31, 10, 0, 0, 1),
                false,
                6,
                &naive6,
                "2024-02-31 10:00:00.000001",
            ),
            (
                datetime(2024, 2, 31, 10, 0, 0, 123_456),
                false,
                3,
                &utc3,
                "2024-02-31 10:00:00.123",
            ),
        ];
        for (bytes, date_only, fsp, rule, text) in cases {
            let v = decode(&bytes, date_only, fsp, rule);
            assert_eq!(v, Value::Invalid(text.to_string()), "{text}");
            // The replica's copy of that text reads as the same value.
            assert_eq!(rule.from_text(text), v, "{text}");
        }
        // A time of day is never dropped: two times on one zero-month day differ.
        assert_ne!(
            decode(&datetime(2024, 0, 15, 10, 0, 0, 0), false, 0, &naive),
            decode(&datetime(2024, 0, 15, 23, 59, 59, 0), false, 0, &naive)
        );
        // And the invalid day never equals the day it would roll over into.
        assert_ne!(
            decode(&date(2024, 2, 31), true, 0, &day),
            day.from_text("2024-03-02")
        );
        // A text column on the other side sees the text itself.
        let text = ColumnRule::new(LogicalType::Text);
        assert_eq!(
            decode(&date(2024, 2, 31), true, 0, &text),
            Value::Text("2024-02-31".into())
        );
    }

    #[test]
    fn malformed_bytes_are_invalid_not_a_panic() {
        let naive = ColumnRule::new(LogicalType::TimestampNaive { precision: 0 });
        for b in [
            &[][..],
            &[11, 1],
            &[4, 1, 2, 3],
            &[5, 0, 0, 0, 0, 0],
            &[7, 0xE8, 7, 1, 1, 24, 0, 0],
        ] {
            assert!(
                matches!(decode(b, false, 0, &naive), Value::Invalid(_)),
                "{b:?}"
            );
        }
    }
}
