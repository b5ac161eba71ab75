//! The coercion table, row by row, and its edge cases.

use super::*;
use crate::value::LogicalType as T;

fn rule(ty: LogicalType) -> ColumnRule {
    ColumnRule::new(ty)
}

#[test]
fn timestamps_in_every_representation_agree() {
    let r = rule(T::Timestamp { precision: 6 });
    let iso = r.from_text("2024-03-01T10:00:00Z");
    assert_eq!(iso, r.from_text("2024-03-01 10:00:00+00"));
    assert_eq!(iso, r.from_text("2024-03-01 10:00:00"));
    assert_eq!(iso, r.from_int(1_709_287_200));
    assert_eq!(iso, r.from_real(2_460_370.916_666_666_5));
    let millis = ColumnRule {
        time_storage: TimeStorage::UnixMillis,
        ..r
    };
    assert_eq!(iso, millis.from_int(1_709_287_200_000));
    let cet = ColumnRule {
        assume_offset_secs: 3600,
        ..r
    };
    assert_eq!(iso, cet.from_text("2024-03-01 11:00:00"));
    assert!(matches!(r.from_text("not a time"), Value::Invalid(_)));
}

/// A column holds instants at its declared fractional digits: stored text
/// with more digits (nonzero) names an instant the column cannot hold, so it
/// is no value of it, while trailing zeros are the same instant. Numbers
/// (Unix seconds in a real) are truncated: they carry rounding noise.
#[test]
fn precision_of_text_and_of_numbers() {
    let r = rule(T::Timestamp { precision: 3 });
    assert!(matches!(
        r.from_text("2024-03-01T10:00:00.123456Z"),
        Value::Invalid(_)
    ));
    assert_eq!(
        r.from_text("2024-03-01T10:00:00.123000Z"),
        r.from_text("2024-03-01T10:00:00.123Z")
    );
    let unix = ColumnRule {
        time_storage: TimeStorage::UnixSeconds,
        ..r
    };
    assert_eq!(
        unix.from_real(1_709_287_200.123_4),
        r.from_text("2024-03-01T10:00:00.123Z")
    );
    let t = rule(T::Time { precision: 0 });
    assert!(matches!(t.from_text("10:00:00.5"), Value::Invalid(_)));
    assert_eq!(t.from_text("10:00:00.000"), t.from_text("10:00:00"));
    let f4 = rule(T::Float { single: true });
    assert_eq!(f4.from_real(0.1), f4.from_real(0.1f32 as f64));
    let f8 = rule(T::Float { single: false });
    assert_ne!(f8.from_real(0.1), f8.from_real(0.1f32 as f64));
}

#[test]
fn other_types() {
    let d = rule(T::Decimal { scale: Some(2) });
    assert_eq!(d.from_text("5.10"), d.from_real(5.1));
    assert_eq!(d.from_text("5"), d.from_int(5));
    let b = rule(T::Bool);
    assert_eq!(b.from_int(1), b.from_text("true"));
    assert!(matches!(b.from_int(7), Value::Invalid(_)));
    let u = rule(T::Uuid);
    let blob = [0xA0u8; 16];
    assert_eq!(
        u.from_text("a0a0a0a0-A0A0-a0a0-a0a0-a0a0a0a0a0a0"),
        u.from_blob(&blob)
    );
    assert!(matches!(u.from_text("a0a0"), Value::Invalid(_)));
    let j = rule(T::Json);
    assert_eq!(
        j.from_text(r#"{"b": 1, "a": [true]}"#),
        j.from_text(r#"{"a":[true],"b":1}"#)
    );
    let date = rule(T::Date);
    assert_eq!(date.from_text("2024-03-01"), Value::Date(19_783));
    assert_eq!(date.from_int(1_709_251_200), Value::Date(19_783));
    let t = rule(T::Time { precision: 6 });
    assert_eq!(t.from_text("00:00:01"), t.from_int(1));
    let i = rule(T::Integer);
    assert_eq!(i.from_text("12"), i.from_real(12.0));
    assert!(matches!(i.from_real(1.5), Value::Invalid(_)));
}

/// With insignificant trailing spaces, every way of reading text (as
/// stored text, a blob, a typed driver's value, in place) drops exactly
/// the trailing U+0020 spaces; with significant ones nothing changes.
#[test]
fn trailing_spaces_of_char_columns() {
    let char_rule = ColumnRule {
        trailing_spaces: TrailingSpaces::Insignificant,
        ..rule(T::Text)
    };
    let text_rule = rule(T::Text);
    let bodies = ["", "ab", " ab", "a b", "ab\t", "ab\u{a0}", "é", "ab\n"];
    for body in bodies {
        for pad in 0..4 {
            let stored = format!("{body}{}", " ".repeat(pad));
            let want = Value::Text(body.trim_end_matches(' ').to_string());
            assert_eq!(char_rule.from_text(&stored), want, "{stored:?}");
            assert_eq!(char_rule.from_blob(stored.as_bytes()), want, "{stored:?}");
            assert_eq!(
                char_rule.finish(Value::Text(stored.clone())),
                want,
                "{stored:?}"
            );
            let mut slot = Value::Text("old".into());
            assert!(char_rule.text_in_place(&stored, &mut slot));
            assert_eq!(slot, want, "{stored:?}");
            // A text column keeps every space.
            assert_eq!(text_rule.from_text(&stored), Value::Text(stored.clone()));
            assert_eq!(
                text_rule.finish(Value::Text(stored.clone())),
                Value::Text(stored.clone())
            );
        }
    }
    // Other types are untouched by the setting.
    let num = ColumnRule {
        trailing_spaces: TrailingSpaces::Insignificant,
        ..rule(T::Integer)
    };
    assert_eq!(num.finish(Value::Int(5)), Value::Int(5));
    assert_eq!(num.from_text("5 "), Value::Int(5));
}

/// A decimal column's NaN and ±Infinity equal the float the replica
/// stores, and stay distinct from each other and from every number.
#[test]
fn decimal_specials_equal_the_replicas_floats() {
    for scale in [None, Some(0), Some(2), Some(400)] {
        let d = rule(T::Decimal { scale });
        let all = [
            (d.from_text("Infinity"), d.from_real(f64::INFINITY)),
            (d.from_text("-Infinity"), d.from_real(f64::NEG_INFINITY)),
            (d.from_text("NaN"), d.from_real(f64::NAN)),
            (
                d.finish(Value::Decimal("Infinity".into())),
                d.from_text("inf"),
            ),
        ];
        for (a, b) in &all {
            assert_eq!(a, b, "{scale:?}");
            assert!(matches!(a, Value::Decimal(_)), "{a:?}");
        }
        assert_ne!(all[0].0, all[1].0);
        assert_ne!(all[0].0, all[2].0);
        assert_ne!(all[0].0, d.from_real(f64::MAX));
    }
}

/// Timestamps and dates across PostgreSQL's whole range, and its
/// infinities, read from the replica's text equal the decoded values.
#[test]
fn wide_instants_and_infinities() {
    let last = 9_224_318_015_999_999_999i128;
    for ty in [
        T::Timestamp { precision: 6 },
        T::TimestampNaive { precision: 6 },
    ] {
        let r = rule(ty);
        let v = |t| r.finish(Value::Timestamp(t));
        assert_eq!(r.from_text("294276-12-31 23:59:59.999999"), v(last));
        assert_ne!(
            r.from_text("294276-12-31 23:59:59"),
            r.from_text("294250-01-01")
        );
        assert_eq!(r.from_text("infinity"), v(time::INFINITY_MICROS));
        assert_eq!(r.from_text("-infinity"), v(time::NEG_INFINITY_MICROS));
        assert_ne!(r.from_text("infinity"), r.from_text("-infinity"));
        assert_eq!(
            r.from_text("4714-11-24 00:00:00 BC"),
            v(-210_866_803_200_000_000)
        );
        let p0 = rule(match ty {
            T::Timestamp { .. } => T::Timestamp { precision: 0 },
            _ => T::TimestampNaive { precision: 0 },
        });
        assert_eq!(
            p0.from_text("infinity"),
            p0.finish(Value::Timestamp(time::INFINITY_MICROS))
        );
        let mut slot = v(0);
        assert!(!r.text_in_place("infinity", &mut slot));
        assert!(r.text_in_place("294276-12-31 23:59:59.999999", &mut slot));
        assert_eq!(slot, v(last));
    }
    let d = rule(T::Date);
    assert_eq!(d.from_text("5874897-12-31"), Value::Date(2_145_042_905));
    assert_eq!(d.from_text("infinity"), Value::Date(time::INFINITY_DAYS));
    assert_eq!(
        d.from_text("-infinity"),
        Value::Date(time::NEG_INFINITY_DAYS)
    );
    assert_eq!(d.from_text("4714-11-24 BC"), Value::Date(-2_440_588));
    assert!(matches!(d.from_text("99999999-01-01"), Value::Invalid(_)));
    assert_eq!(Value::Date(time::INFINITY_DAYS).to_string(), "infinity");
    assert_eq!(
        Value::Timestamp(time::NEG_INFINITY_MICROS).to_string(),
        "-infinity"
    );
    assert_eq!(
        Value::Timestamp(last).to_string(),
        "294276-12-31T23:59:59.999999Z"
    );
}

#[test]
fn json_numbers_are_exact() {
    let j = rule(T::Json);
    for (a, b) in [
        (
            r#"{"n": 12345678901234567890123}"#,
            r#"{"n": 12345678901234567890124}"#,
        ),
        (r#"{"p": 0.1}"#, r#"{"p": 0.10000000000000001}"#),
        (
            r#"{"big": 18446744073709551616}"#,
            r#"{"big": 18446744073709551617}"#,
        ),
    ] {
        assert_ne!(j.from_text(a), j.from_text(b), "{a}");
        assert!(matches!(j.from_text(a), Value::Json(_)));
    }
    assert_eq!(j.from_text(r#"{"a": 1.0}"#), j.from_text(r#"{"a":1}"#));
    assert_eq!(j.from_int(5), j.from_text("5.0"));
    assert_eq!(j.from_real(1e300), j.from_text("1e300"));
    assert_eq!(j.from_real(0.1), j.from_text("0.1"));
    // A report shows exact JSON as JSON, and a number f64 cannot hold as text.
    assert_eq!(
        j.from_text(r#"{"a": 1.5}"#).to_json(),
        serde_json::json!({"a": 1.5})
    );
    assert_eq!(
        j.from_text(r#"{"n": 12345678901234567890123}"#).to_json(),
        serde_json::json!(r#"{"n":12345678901234567890123}"#)
    );
}

/// Writing in place gives exactly what building the value gives, for
/// every kind of column, whatever the slot held before.
#[test]
fn in_place_matches_building() {
    let cet = ColumnRule {
        assume_offset_secs: 3600,
        ..rule(T::Timestamp { precision: 3 })
    };
    let unix = ColumnRule {
        time_storage: TimeStorage::UnixSeconds,
        ..rule(T::TimestampNaive { precision: 6 })
    };
    let padded = ColumnRule {
        trailing_spaces: TrailingSpaces::Insignificant,
        ..rule(T::Text)
    };
    let rules = [
        rule(T::Integer),
        rule(T::Dynamic),
        rule(T::Text),
        rule(T::Float { single: false }),
        rule(T::Float { single: true }),
        rule(T::Decimal { scale: Some(2) }),
        rule(T::Decimal { scale: None }),
        rule(T::TimestampNaive { precision: 0 }),
        rule(T::Date),
        cet,
        unix,
        padded,
    ];
    let slots = [
        Value::Null,
        Value::Int(7),
        Value::Float(0.5),
        Value::Decimal("1.5".into()),
        Value::Text("old".into()),
        Value::Timestamp(1),
        Value::TimestampNaive(1),
    ];
    let ints = [0, -1, i64::MIN, i64::MAX, 1_700_000_000];
    let reals = [
        0.0,
        -0.0,
        1.005,
        0.1 + 0.2,
        1e300,
        -2.5e-7,
        f64::INFINITY,
        123.45,
    ];
    let texts = [
        "2024-03-01 10:00:00.123456",
        "2024-03-01T10:00:00.9999+02:00",
        "2024-03-01",
        "not a time",
        "1700000000",
        "",
        "ab  ",
        " ",
        "a\t ",
    ];
    for r in &rules {
        for slot in &slots {
            for &i in &ints {
                let mut s = slot.clone();
                if r.int_in_place(i, &mut s) {
                    assert_eq!(s, r.from_int(i), "{r:?} {i}");
                }
            }
            for &f in &reals {
                let mut s = slot.clone();
                if r.real_in_place(f, &mut s) {
                    assert_eq!(s, r.from_real(f), "{r:?} {f}");
                }
            }
            for t in texts {
                let mut s = slot.clone();
                if r.text_in_place(t, &mut s) {
                    assert_eq!(s, r.from_text(t), "{r:?} {t:?}");
                }
            }
        }
    }
    // The common cases do take the fast way.
    let mut s = Value::Int(0);
    assert!(rule(T::Integer).int_in_place(5, &mut s));
    let mut s = Value::TimestampNaive(0);
    assert!(rule(T::TimestampNaive { precision: 6 }).text_in_place(texts[0], &mut s));
    let mut s = Value::Decimal(String::new());
    assert!(rule(T::Decimal { scale: Some(2) }).real_in_place(123.45, &mut s));
    assert_eq!(s, Value::Decimal("123.45".into()));
}

mod stored_text {
    //! Families of stored date and time texts: every spelling a writer uses
    //! reads as the one value, and every other text (white space around it,
    //! a lower-case letter, a nonzero digit the column cannot hold) is no
    //! value of the column, so it never reads as its neighbour's instant.

    use super::*;
    use proptest::prelude::*;

    /// `YYYY-MM-DD`, separator, `HH:MM:SS`, and `frac` fraction digits of
    /// `micros` (0 to 9: past six, zeros).
    fn spell(micros: i128, sep: char, frac: usize, suffix: &str) -> String {
        let day = micros.div_euclid(i128::from(MICROS_PER_DAY));
        let (y, m, d) = time::civil_from_days(day as i64);
        let us = micros.rem_euclid(i128::from(MICROS_PER_DAY)) as i64;
        let (s, f) = (us / MICROS_PER_SEC, us % MICROS_PER_SEC);
        let mut t = format!(
            "{y:04}-{m:02}-{d:02}{sep}{:02}:{:02}:{:02}",
            s / 3600,
            s / 60 % 60,
            s % 60
        );
        if frac > 0 {
            let digits = format!("{f:06}000");
            t.push('.');
            t.push_str(&digits[..frac]);
        }
        t + suffix
    }

    fn instant() -> impl Strategy<Value = i128> {
        // Years 1000 to 9999, any microsecond.
        (-30_610_224_000_000_000i128..253_402_300_799_999_999).prop_map(|m| m)
    }

    proptest! {
        #[test]
        fn writer_spellings_agree_and_others_are_no_value(
            micros in instant(),
            precision in 0u8..=6,
            naive in any::<bool>(),
            digit in 1u8..=9,
        ) {
            let ty = if naive {
                T::TimestampNaive { precision }
            } else {
                T::Timestamp { precision }
            };
            let r = rule(ty);
            let m = time::truncate_instant(micros, precision);
            let want = r.from_text(&spell(m, 'T', 6, "Z"));
            prop_assert!(!matches!(want, Value::Invalid(_)));
            // Every spelling a writer uses: T or a space, an offset or not,
            // the column's digits or more zeros.
            for sep in ['T', ' '] {
                for suffix in ["", "Z", "+00", "+00:00", " UTC", " +00:00"] {
                    for frac in usize::from(precision)..=9 {
                        let text = spell(m, sep, frac, suffix);
                        prop_assert_eq!(&r.from_text(&text), &want, "{}", text);
                        let mut slot = want.clone();
                        if r.text_in_place(&text, &mut slot) {
                            prop_assert_eq!(&slot, &want, "{}", text);
                        }
                    }
                }
            }
            // Texts no writer produces are no value of the column.
            let canonical = spell(m, ' ', 6, "");
            let nonzero = |at: usize| {
                let mut t = spell(m, ' ', 9, "");
                let i = t.len() - 9 + at;
                t.replace_range(i..=i, &char::from(b'0' + digit).to_string());
                t
            };
            let mut odd = vec![
                format!("{canonical} "),
                format!(" {canonical}"),
                format!("{canonical}\t"),
                canonical.replacen(' ', "t", 1),
                format!("{canonical}z"),
                format!("{canonical} utc"),
                format!("{canonical}  "),
                nonzero(6),
                nonzero(8),
            ];
            if precision < 6 {
                odd.push(nonzero(usize::from(precision)));
            }
            for text in odd {
                prop_assert!(
                    matches!(r.from_text(&text), Value::Invalid(_)),
                    "{:?} read as {:?}", text, r.from_text(&text)
                );
                let mut slot = want.clone();
                prop_assert!(!r.text_in_place(&text, &mut slot), "{:?}", text);
            }
        }

        #[test]
        fn times_of_day_follow_the_same_rule(
            us in 0i64..MICROS_PER_DAY,
            precision in 0u8..=6,
            digit in 1u8..=9,
        ) {
            let r = rule(T::Time { precision });
            let us = time::truncate_micros(us, precision);
            let text = spell(i128::from(us), 'T', 9, "");
            let text = &text[11..];
            let want = Value::Time(us);
            prop_assert_eq!(r.from_text(text), want.clone());
            prop_assert_eq!(r.from_text(&text[..text.len() - 3]), want);
            for odd in [format!("{text} "), format!(" {text}")] {
                prop_assert!(matches!(r.from_text(&odd), Value::Invalid(_)), "{:?}", odd);
            }
            let mut more = text.to_string();
            let at = 9 + usize::from(precision);
            more.replace_range(at..=at, &char::from(b'0' + digit).to_string());
            prop_assert!(matches!(r.from_text(&more), Value::Invalid(_)), "{:?}", more);
        }
    }
}
