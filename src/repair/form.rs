//! Storage forms: how a replica column stores its values (storage class and
//! text shape), learned from the values it already holds or taken from the
//! config's `stored_as`, and writing a logical value in that form. Reading
//! stored values back is `driftsum_core::coerce`'s job; every value written
//! here is read back through it before it is used, so a repair never writes
//! what the next diff would read differently.

use driftsum_core::coerce::{ColumnRule, TimeStorage};
use driftsum_core::time::{self, MICROS_PER_DAY, MICROS_PER_SEC};
use driftsum_core::{canon, LogicalType, Value};
use rusqlite::types::Value as Sql;

/// The shape of ISO-8601 text.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IsoShape {
    /// `T` or a space between date and time; `None` for a date alone.
    pub sep: Option<char>,
    /// Fractional digits every value shows; `None` when they vary (only
    /// the significant ones are written).
    pub frac: Option<u8>,
    pub zone: Zone,
}

/// How ISO text ends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Zone {
    None,
    /// `Z`
    Z,
    /// `+00:00`
    Colon,
    /// `+0000`
    Plain,
}

/// How one replica column stores its values.
#[derive(Clone, Debug, PartialEq)]
pub enum Form {
    /// The logical type's own storage class (integer, real, text, blob).
    Natural,
    /// Numbers as text.
    NumberText {
        frac: Option<u8>,
    },
    /// Numbers as REAL.
    Real,
    /// Integral numbers as INTEGER, others as REAL (NUMERIC affinity).
    Numeric,
    /// Booleans as spelled words (`true`/`false`, `t`/`f`, ...).
    BoolText {
        yes: String,
        no: String,
    },
    /// UUIDs as text.
    UuidText {
        hyphens: bool,
        upper: bool,
        braces: bool,
    },
    /// UUIDs as 16-byte blobs.
    UuidBlob,
    /// Dates and times as ISO-8601 text.
    Iso(IsoShape),
    /// Instants as Unix seconds (`real`: with a fraction, as REAL).
    UnixSeconds {
        real: bool,
    },
    UnixMillis,
    JulianDay,
    /// Times of day as seconds since midnight.
    DaySeconds {
        real: bool,
    },
}

impl std::fmt::Display for Form {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Form::Natural => f.write_str("natural"),
            Form::NumberText { .. } => f.write_str("number as text"),
            Form::Real => f.write_str("REAL"),
            Form::Numeric => f.write_str("INTEGER or REAL"),
            Form::BoolText { yes, no } => write!(f, "'{yes}'/'{no}'"),
            Form::UuidText { .. } => f.write_str("uuid text"),
            Form::UuidBlob => f.write_str("uuid blob"),
            Form::Iso(s) => write!(f, "ISO-8601 text {s:?}"),
            Form::UnixSeconds { .. } => f.write_str("Unix seconds"),
            Form::UnixMillis => f.write_str("Unix milliseconds"),
            Form::JulianDay => f.write_str("Julian days"),
            Form::DaySeconds { .. } => f.write_str("seconds since midnight"),
        }
    }
}

/// The form of a column of type `rule.ty`, from the values it holds
/// (`samples`, NULLs left out) and its configured time storage. `Err` says
/// why it cannot be told.
pub fn learn(rule: &ColumnRule, samples: &[Sql]) -> Result<Form, String> {
    let mut forms: Vec<Form> = Vec::new();
    for s in samples {
        let f = sample_form(rule, s)?;
        match forms.iter_mut().find(|g| same_kind(g, &f)) {
            Some(g) => *g = merge(g, &f),
            None => forms.push(f),
        }
    }
    // REAL and INTEGER mixed in a numeric column: SQLite's NUMERIC
    // affinity stores integral numbers as INTEGER.
    if forms.len() == 2 && forms.contains(&Form::Natural) && forms.contains(&Form::Real) {
        return Ok(Form::Numeric);
    }
    match forms.len() {
        1 => Ok(forms.remove(0)),
        0 => default_form(rule),
        _ => Err(format!(
            "its values are stored in several forms ({})",
            forms
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        )),
    }
}

/// The form of an empty column: its type's own, or the configured one.
fn default_form(rule: &ColumnRule) -> Result<Form, String> {
    let ty = rule.ty;
    if !ty.is_temporal() {
        return Ok(match ty {
            LogicalType::Bool => Form::Natural,
            LogicalType::Uuid => Form::UuidText {
                hyphens: true,
                upper: false,
                braces: false,
            },
            LogicalType::Decimal { .. } => Form::NumberText { frac: None },
            _ => Form::Natural,
        });
    }
    let date_only = ty == LogicalType::Date;
    Ok(match (rule.time_storage, ty) {
        (TimeStorage::Auto, _) => {
            return Err("it holds no value to learn its form from".into());
        }
        (TimeStorage::Iso8601, LogicalType::Time { .. }) => Form::Iso(IsoShape {
            sep: None,
            frac: None,
            zone: Zone::None,
        }),
        (TimeStorage::Iso8601, _) => Form::Iso(IsoShape {
            // SQLite's own datetime() shape.
            sep: (!date_only).then_some(' '),
            frac: None,
            zone: Zone::None,
        }),
        (_, LogicalType::Time { .. }) => Form::DaySeconds { real: false },
        (TimeStorage::UnixSeconds, _) => Form::UnixSeconds { real: false },
        (TimeStorage::UnixMillis, _) => Form::UnixMillis,
        (TimeStorage::JulianDay, _) => Form::JulianDay,
    })
}

fn same_kind(a: &Form, b: &Form) -> bool {
    match (a, b) {
        (Form::Iso(x), Form::Iso(y)) => x.sep == y.sep && x.zone == y.zone,
        (Form::NumberText { .. }, Form::NumberText { .. }) => true,
        (Form::UnixSeconds { .. }, Form::UnixSeconds { .. }) => true,
        (Form::DaySeconds { .. }, Form::DaySeconds { .. }) => true,
        (Form::BoolText { yes: a, .. }, Form::BoolText { yes: b, .. }) => a == b,
        _ => a == b,
    }
}

/// Two samples of one kind: fractional digits that differ become "as
/// many as needed", a REAL among integers makes them all REAL.
fn merge(a: &Form, b: &Form) -> Form {
    let frac = |x: Option<u8>, y: Option<u8>| if x == y { x } else { None };
    match (a, b) {
        (Form::Iso(x), Form::Iso(y)) => Form::Iso(IsoShape {
            frac: frac(x.frac, y.frac),
            ..*x
        }),
        (Form::NumberText { frac: x }, Form::NumberText { frac: y }) => {
            Form::NumberText { frac: frac(*x, *y) }
        }
        (Form::UnixSeconds { real: x }, Form::UnixSeconds { real: y }) => {
            Form::UnixSeconds { real: *x || *y }
        }
        (Form::DaySeconds { real: x }, Form::DaySeconds { real: y }) => {
            Form::DaySeconds { real: *x || *y }
        }
        _ => a.clone(),
    }
}

/// Digits after the point in number text (`None` without a point).
fn text_frac(s: &str) -> Option<u8> {
    let t = s.trim();
    if t.contains(['e', 'E']) {
        return None;
    }
    Some(t.split_once('.').map_or(0, |(_, f)| f.len().min(255) as u8))
}

fn sample_form(rule: &ColumnRule, s: &Sql) -> Result<Form, String> {
    use LogicalType as T;
    let storage = rule.time_storage;
    Ok(match (rule.ty, s) {
        (_, Sql::Null) => Form::Natural,
        (T::Bool, Sql::Integer(_)) => Form::Natural,
        (T::Bool, Sql::Real(_)) => Form::Real,
        (T::Bool, Sql::Text(t)) => bool_words(t)?,
        (T::Uuid, Sql::Blob(_)) => Form::UuidBlob,
        (T::Uuid, Sql::Text(t)) => Form::UuidText {
            hyphens: t.contains('-'),
            upper: t.chars().any(|c| c.is_ascii_uppercase()),
            braces: t.trim().starts_with('{'),
        },
        (T::Integer | T::Float { .. } | T::Decimal { .. }, Sql::Integer(_)) => Form::Natural,
        (T::Integer | T::Float { .. } | T::Decimal { .. }, Sql::Real(_)) => Form::Real,
        (T::Integer | T::Float { .. } | T::Decimal { .. }, Sql::Text(t)) => {
            Form::NumberText { frac: text_frac(t) }
        }
        (T::Time { .. }, Sql::Text(t)) => Form::Iso(IsoShape {
            sep: None,
            frac: iso_frac(t),
            zone: Zone::None,
        }),
        (T::Time { .. }, Sql::Integer(_)) => Form::DaySeconds { real: false },
        (T::Time { .. }, Sql::Real(_)) => Form::DaySeconds { real: true },
        (T::Timestamp { .. } | T::TimestampNaive { .. } | T::Date, Sql::Text(t)) => {
            if !matches!(storage, TimeStorage::Auto | TimeStorage::Iso8601) {
                return Err(format!(
                    "it holds ISO text ({t:?}) but its stored_as says {storage:?}"
                ));
            }
            Form::Iso(iso_shape(t)?)
        }
        (T::Timestamp { .. } | T::TimestampNaive { .. } | T::Date, Sql::Integer(_)) => {
            match storage {
                TimeStorage::Auto | TimeStorage::UnixSeconds => Form::UnixSeconds { real: false },
                TimeStorage::UnixMillis => Form::UnixMillis,
                TimeStorage::JulianDay => Form::JulianDay,
                TimeStorage::Iso8601 => {
                    return Err("it holds numbers but its stored_as says iso8601".into())
                }
            }
        }
        (T::Timestamp { .. } | T::TimestampNaive { .. } | T::Date, Sql::Real(_)) => match storage {
            TimeStorage::Auto | TimeStorage::JulianDay => Form::JulianDay,
            TimeStorage::UnixSeconds => Form::UnixSeconds { real: true },
            TimeStorage::UnixMillis => Form::UnixMillis,
            TimeStorage::Iso8601 => {
                return Err("it holds numbers but its stored_as says iso8601".into())
            }
        },
        (_, Sql::Integer(_) | Sql::Text(_) | Sql::Blob(_)) => Form::Natural,
        (_, Sql::Real(_)) => Form::Real,
    })
}

fn iso_frac(t: &str) -> Option<u8> {
    // The digits after the seconds' point, up to the zone.
    let (_, rest) = t.split_once('.')?;
    Some(rest.chars().take_while(char::is_ascii_digit).count() as u8)
}

fn iso_shape(t: &str) -> Result<IsoShape, String> {
    let t = t.trim();
    let bad = || format!("its text {t:?} is not ISO-8601 of a shape repair writes");
    if time::parse_datetime(t).is_none() {
        return Err(bad());
    }
    // Year digits then the date's two hyphens: the separator follows.
    let date_end = t
        .char_indices()
        .filter(|&(_, c)| c == '-')
        .nth(if t.starts_with('-') { 2 } else { 1 })
        .map(|(i, _)| i + 3)
        .ok_or_else(bad)?;
    let sep = t[date_end..].chars().next();
    if sep.is_none() {
        return Ok(IsoShape {
            sep: None,
            frac: Some(0),
            zone: Zone::None,
        });
    }
    let rest = &t[date_end + 1..];
    let zone = if rest.ends_with('Z') || rest.ends_with('z') {
        Zone::Z
    } else if let Some(i) = rest.rfind(['+', '-']) {
        match rest[i + 1..].contains(':') {
            true => Zone::Colon,
            false => Zone::Plain,
        }
    } else {
        Zone::None
    };
    Ok(IsoShape {
        sep: match sep {
            Some('T' | 't') => Some('T'),
            Some(' ') => Some(' '),
            _ => return Err(bad()),
        },
        frac: Some(iso_frac(rest).unwrap_or(0)),
        zone,
    })
}

fn bool_words(t: &str) -> Result<Form, String> {
    let lower = t.trim().to_ascii_lowercase();
    let pairs = [
        ("true", "false"),
        ("t", "f"),
        ("yes", "no"),
        ("y", "n"),
        ("on", "off"),
        ("1", "0"),
    ];
    let upper = t.trim().chars().any(|c| c.is_ascii_uppercase());
    let case = |s: &str| match upper {
        true => s.to_ascii_uppercase(),
        false => s.to_string(),
    };
    for (y, n) in pairs {
        if lower == y || lower == n {
            return Ok(Form::BoolText {
                yes: case(y),
                no: case(n),
            });
        }
    }
    Err(format!("its text {t:?} is not a boolean"))
}

/// `value` written in `form` for a column read by `rule`; `Err` when the
/// form cannot hold it or it would read back as another value.
pub fn write(value: &Value, form: &Form, rule: &ColumnRule) -> Result<Sql, String> {
    let sql = encode(value, form, rule)?;
    let back = read(&sql, rule);
    if canon::values_equal(&back, value, &Default::default()) {
        Ok(sql)
    } else {
        Err(format!(
            "{value} written as {form} would read back as {back}"
        ))
    }
}

/// A stored value as the column reads it (what the diff sees).
pub fn read(v: &Sql, rule: &ColumnRule) -> Value {
    match v {
        Sql::Null => Value::Null,
        Sql::Integer(i) => rule.from_int(*i),
        Sql::Real(f) => rule.from_real(*f),
        Sql::Text(t) => rule.from_text(t),
        Sql::Blob(b) => rule.from_blob(b),
    }
}

fn int(i: i128) -> Result<Sql, String> {
    i64::try_from(i)
        .map(Sql::Integer)
        .map_err(|_| format!("{i} does not fit SQLite's 64-bit integers"))
}

fn encode(value: &Value, form: &Form, rule: &ColumnRule) -> Result<Sql, String> {
    let unwritable = || format!("{value} cannot be written as {form}");
    Ok(match (value, form) {
        (Value::Null, _) => Sql::Null,
        (Value::Invalid(_), _) => return Err(format!("the source value {value} is not valid")),
        (Value::Float(f), _) if f.is_nan() => {
            return Err("SQLite stores NaN as NULL, so it cannot be written".into())
        }
        (Value::Int(i), Form::Natural | Form::Numeric) => int(*i)?,
        (Value::Int(i), Form::Real) => Sql::Real(*i as f64),
        (Value::Int(i), Form::NumberText { .. }) => Sql::Text(i.to_string()),
        (Value::Float(f), Form::Natural | Form::Real) => Sql::Real(*f),
        (Value::Float(f), Form::Numeric) if f.fract() == 0.0 && f.abs() < 9e15 => {
            Sql::Integer(*f as i64)
        }
        (Value::Float(f), Form::Numeric) => Sql::Real(*f),
        (Value::Float(f), Form::NumberText { .. }) => Sql::Text(format!("{f:?}")),
        (Value::Decimal(d), Form::Real) => Sql::Real(d.parse::<f64>().map_err(|_| unwritable())?),
        (Value::Decimal(d), Form::Numeric) => match d.parse::<i64>() {
            Ok(i) => Sql::Integer(i),
            Err(_) => Sql::Real(d.parse::<f64>().map_err(|_| unwritable())?),
        },
        (Value::Decimal(d), Form::Natural) => Sql::Text(d.clone()),
        (Value::Decimal(d), Form::NumberText { frac }) => Sql::Text(pad_decimal(d, *frac)),
        (Value::Text(s), Form::Natural | Form::NumberText { .. }) => Sql::Text(s.clone()),
        (Value::Json(s), _) => Sql::Text(s.clone()),
        (Value::Bytes(b), Form::Natural) => Sql::Blob(b.clone()),
        (Value::Bool(b), Form::Natural | Form::Numeric) => Sql::Integer(i64::from(*b)),
        (Value::Bool(b), Form::Real) => Sql::Real(f64::from(u8::from(*b))),
        (Value::Bool(b), Form::BoolText { yes, no }) => {
            Sql::Text(if *b { yes.clone() } else { no.clone() })
        }
        (Value::Uuid(u), Form::UuidBlob) => Sql::Blob(u.to_vec()),
        (
            Value::Uuid(u),
            Form::UuidText {
                hyphens,
                upper,
                braces,
            },
        ) => {
            let mut s = match hyphens {
                true => driftsum_core::value::format_uuid(u),
                false => driftsum_core::value::hex(u),
            };
            if *upper {
                s = s.to_ascii_uppercase();
            }
            if *braces {
                s = format!("{{{s}}}");
            }
            Sql::Text(s)
        }
        (Value::Timestamp(m) | Value::TimestampNaive(m), _) => {
            if *m == time::INFINITY_MICROS || *m == time::NEG_INFINITY_MICROS {
                return Err(unwritable());
            }
            // An instant stored without an offset is read at the column's
            // assumed offset: written on that wall clock.
            let shift = match (value, form) {
                (
                    Value::Timestamp(_),
                    Form::Iso(IsoShape {
                        zone: Zone::None, ..
                    }),
                ) => rule.assume_offset_secs as i128 * MICROS_PER_SEC as i128,
                _ => 0,
            };
            instant(*m + shift, form).ok_or_else(unwritable)?
        }
        (Value::Date(d), Form::Iso(shape)) => {
            let mut s = time::format_date(*d);
            if let Some(sep) = shape.sep {
                s.push(sep);
                s.push_str("00:00:00");
                if let Some(n @ 1..) = shape.frac {
                    s.push('.');
                    s.push_str(&"0".repeat(n as usize));
                }
                s.push_str(zone_suffix(shape.zone));
            }
            Sql::Text(s)
        }
        (Value::Date(d), _) => {
            instant(*d as i128 * MICROS_PER_DAY as i128, form).ok_or_else(unwritable)?
        }
        (Value::Time(t), Form::Iso(shape)) => {
            let mut s = time::format_time(t.div_euclid(MICROS_PER_SEC) * MICROS_PER_SEC);
            s.push_str(&frac_text(t.rem_euclid(MICROS_PER_SEC), shape.frac));
            Sql::Text(s)
        }
        (Value::Time(t), Form::DaySeconds { real: false }) if t % MICROS_PER_SEC == 0 => {
            Sql::Integer(t / MICROS_PER_SEC)
        }
        (Value::Time(t), Form::DaySeconds { .. }) => Sql::Real(*t as f64 / 1e6),
        _ => return Err(unwritable()),
    })
}

fn zone_suffix(zone: Zone) -> &'static str {
    match zone {
        Zone::None => "",
        Zone::Z => "Z",
        Zone::Colon => "+00:00",
        Zone::Plain => "+0000",
    }
}

/// `.fff` for `micros` of a second: `digits` of them when that holds the
/// value exactly, else only the significant ones.
fn frac_text(micros: i64, digits: Option<u8>) -> String {
    let full = format!("{micros:06}");
    let sig = full.trim_end_matches('0');
    match digits {
        Some(n) if n as usize >= sig.len() => {
            let n = n as usize;
            match n {
                0 => String::new(),
                _ if n <= 6 => format!(".{}", &full[..n]),
                _ => format!(".{full}{}", "0".repeat(n - 6)),
            }
        }
        _ if sig.is_empty() => String::new(),
        _ => format!(".{sig}"),
    }
}

/// An instant (microseconds since 1970 on the clock it is written in) in a
/// temporal form.
fn instant(m: i128, form: &Form) -> Option<Sql> {
    match form {
        Form::Iso(shape) => {
            let day = MICROS_PER_DAY as i128;
            let days = i32::try_from(m.div_euclid(day)).ok()?;
            let mut s = time::format_date(days);
            let of_day = m.rem_euclid(day) as i64;
            match shape.sep {
                Some(sep) => {
                    s.push(sep);
                    s.push_str(&time::format_time(
                        of_day.div_euclid(MICROS_PER_SEC) * MICROS_PER_SEC,
                    ));
                    s.push_str(&frac_text(of_day.rem_euclid(MICROS_PER_SEC), shape.frac));
                    s.push_str(zone_suffix(shape.zone));
                }
                // A date-only shape holds midnights only.
                None if of_day != 0 => return None,
                None => {}
            }
            Some(Sql::Text(s))
        }
        Form::UnixSeconds { real: false } if m % MICROS_PER_SEC as i128 == 0 => {
            i64::try_from(m / MICROS_PER_SEC as i128)
                .ok()
                .map(Sql::Integer)
        }
        Form::UnixSeconds { .. } => Some(Sql::Real(m as f64 / 1e6)),
        Form::UnixMillis if m % 1000 == 0 => i64::try_from(m / 1000).ok().map(Sql::Integer),
        Form::JulianDay => Some(Sql::Real(m as f64 / 86_400e6 + 2_440_587.5)),
        _ => None,
    }
}

/// A canonical decimal shown with `frac` fractional digits when that
/// keeps every digit.
fn pad_decimal(d: &str, frac: Option<u8>) -> String {
    let Some(n) = frac else {
        return d.to_string();
    };
    if d.parse::<f64>().is_err() || d.chars().any(|c| c.is_ascii_alphabetic()) {
        return d.to_string();
    }
    let have = d.split_once('.').map_or(0, |(_, f)| f.len());
    let n = n as usize;
    if have > n {
        return d.to_string();
    }
    let mut s = d.to_string();
    if have == 0 && n > 0 {
        s.push('.');
    }
    s.push_str(&"0".repeat(n - have));
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(ty: LogicalType) -> ColumnRule {
        ColumnRule::new(ty)
    }

    #[test]
    fn iso_shapes_are_learned_and_written() {
        let r = rule(LogicalType::Timestamp { precision: 6 });
        let f = learn(
            &r,
            &[
                Sql::Text("2024-01-02T03:04:05.120Z".into()),
                Sql::Text("2024-05-02T03:04:05.000Z".into()),
            ],
        )
        .unwrap();
        assert_eq!(
            f,
            Form::Iso(IsoShape {
                sep: Some('T'),
                frac: Some(3),
                zone: Zone::Z
            })
        );
        let v = Value::Timestamp(1_700_000_000_500_000);
        assert_eq!(
            write(&v, &f, &r).unwrap(),
            Sql::Text("2023-11-14T22:13:20.500Z".into())
        );
        // More digits than the shape shows are kept, never rounded away.
        let v = Value::Timestamp(1_700_000_000_500_001);
        assert_eq!(
            write(&v, &f, &r).unwrap(),
            Sql::Text("2023-11-14T22:13:20.500001Z".into())
        );
    }

    #[test]
    fn mixed_or_empty_columns_are_refused() {
        let r = rule(LogicalType::TimestampNaive { precision: 0 });
        assert!(learn(
            &r,
            &[Sql::Integer(5), Sql::Text("2024-01-01 00:00:00".into())]
        )
        .is_err());
        assert!(learn(&r, &[]).is_err());
        let configured = ColumnRule {
            time_storage: TimeStorage::UnixMillis,
            ..r
        };
        assert_eq!(learn(&configured, &[]).unwrap(), Form::UnixMillis);
    }

    #[test]
    fn numbers_bools_uuids() {
        let d = rule(LogicalType::Decimal { scale: Some(2) });
        let f = learn(&d, &[Sql::Text("1.50".into()), Sql::Text("2.00".into())]).unwrap();
        assert_eq!(
            write(&Value::Decimal("3.5".into()), &f, &d).unwrap(),
            Sql::Text("3.50".into())
        );
        let mixed = learn(&d, &[Sql::Integer(3), Sql::Real(2.5)]).unwrap();
        assert_eq!(mixed, Form::Numeric);
        let b = rule(LogicalType::Bool);
        let f = learn(&b, &[Sql::Text("TRUE".into())]).unwrap();
        assert_eq!(
            write(&Value::Bool(false), &f, &b).unwrap(),
            Sql::Text("FALSE".into())
        );
        let u = rule(LogicalType::Uuid);
        let f = learn(&u, &[Sql::Blob(vec![1; 16])]).unwrap();
        assert_eq!(
            write(&Value::Uuid([2; 16]), &f, &u).unwrap(),
            Sql::Blob(vec![2; 16])
        );
    }

    #[test]
    fn julian_and_unix_forms_read_back() {
        let r = rule(LogicalType::TimestampNaive { precision: 3 });
        let jd = learn(&r, &[Sql::Real(2_460_000.5)]).unwrap();
        assert_eq!(jd, Form::JulianDay);
        write(&Value::TimestampNaive(1_700_000_000_123_000), &jd, &r).unwrap();
        let unix = learn(&r, &[Sql::Integer(1_700_000_000)]).unwrap();
        // A fraction an integer form cannot hold is refused, not dropped.
        assert!(write(&Value::TimestampNaive(1_700_000_000_123_000), &unix, &r).is_err());
    }
}
