//! One difference of a table written as a line of the JSON report,
//! straight from the outcome: byte for byte what [`DifferenceReport`]
//! serializes to, without building it (a run that streams millions of
//! differences builds no map and no JSON value per difference).

use std::io::{self, Write};

use driftsum_core::{LogicalType, Value};

use super::model::value_json;
#[cfg(doc)]
use super::model::DifferenceReport;
use crate::check::TableOutcome;
use crate::reconcile::{DiffKind, Difference};

/// Writes one table's differences as [`DifferenceReport`] serializes them,
/// straight from the outcome: a run that streams millions of differences
/// builds no map and no JSON value per difference, and quotes each column
/// name once per table.
pub struct DifferenceWriter {
    /// The key columns' names, then the value columns', as JSON strings.
    key: Vec<String>,
    columns: Vec<String>,
}

impl DifferenceWriter {
    pub fn new(t: &TableOutcome) -> serde_json::Result<DifferenceWriter> {
        let quoted = |names: &[String]| -> serde_json::Result<Vec<String>> {
            names.iter().map(serde_json::to_string).collect()
        };
        Ok(DifferenceWriter {
            key: quoted(&t.key_columns)?,
            columns: quoted(&t.columns)?,
        })
    }

    /// Writes `d`, a difference of table `t` (the table this writer was
    /// made for), as one line of compact JSON.
    pub fn write(&self, out: &mut impl Write, t: &TableOutcome, d: &Difference) -> io::Result<()> {
        let kind = match d.kind {
            DiffKind::Missing => "missing",
            DiffKind::Extra => "extra",
            DiffKind::Changed => "changed",
        };
        for part in [r#"{"kind":""#, kind, r#"","key":"#] {
            out.write_all(part.as_bytes())?;
        }
        let key = d.key.iter().enumerate();
        write_object(out, &self.key, key, &t.key_types)?;
        let changed = d.kind == DiffKind::Changed;
        if changed {
            out.write_all(b",\"columns\":[")?;
            for (n, &c) in d.changed.iter().enumerate() {
                if n > 0 {
                    out.write_all(b",")?;
                }
                out.write_all(column(&self.columns, c)?.as_bytes())?;
            }
            out.write_all(b"]")?;
        }
        for (field, vals) in [("source", &d.source), ("target", &d.target)] {
            let Some(vals) = vals else { continue };
            for part in [r#",""#, field, r#"":"#] {
                out.write_all(part.as_bytes())?;
            }
            match changed {
                true => {
                    let vals = d.changed.iter().copied().zip(vals);
                    write_object(out, &self.columns, vals, &t.column_types)?
                }
                false => {
                    let vals = vals.iter().enumerate();
                    write_object(out, &self.columns, vals, &t.column_types)?
                }
            }
        }
        out.write_all(b"}")
    }
}

/// Column `i`'s quoted name, or an error for a difference wider than its
/// table.
fn column(names: &[String], i: usize) -> io::Result<&str> {
    names
        .get(i)
        .map(String::as_str)
        .ok_or_else(|| io::Error::other("a difference has more columns than its table"))
}

/// Values of the columns they name, as one object (each written as
/// [`value_json`] has it).
fn write_object<'a>(
    out: &mut impl Write,
    names: &[String],
    values: impl Iterator<Item = (usize, &'a Value)>,
    types: &[LogicalType],
) -> io::Result<()> {
    out.write_all(b"{")?;
    for (n, (i, v)) in values.enumerate() {
        if n > 0 {
            out.write_all(b",")?;
        }
        out.write_all(column(names, i)?.as_bytes())?;
        out.write_all(b":")?;
        match v {
            Value::Null => out.write_all(b"null")?,
            Value::Int(x) => match i64::try_from(*x) {
                Ok(x) => serde_json::to_writer(&mut *out, &x)?,
                Err(_) => serde_json::to_writer(&mut *out, &value_json(v, types.get(i)))?,
            },
            Value::Text(x) => serde_json::to_writer(&mut *out, x)?,
            v => serde_json::to_writer(&mut *out, &value_json(v, types.get(i)))?,
        }
    }
    out.write_all(b"}")
}

#[cfg(test)]
mod tests {
    use super::super::model::DifferenceReport;
    use super::*;

    /// A difference written straight from the outcome is byte for byte the
    /// one built as a report: every kind, compound keys, key types missing
    /// past the end, decimals padded to their scale, NULLs, text to escape.
    #[test]
    fn difference_views_write_the_report() {
        let dec = LogicalType::Decimal { scale: Some(2) };
        let mut t = TableOutcome::failed("t", "t", "x");
        t.error = None;
        t.key_columns = vec!["a".into(), "b \"q\"".into()];
        t.key_types = vec![LogicalType::Integer];
        t.columns = vec!["n".into(), "d".into(), "s".into()];
        t.column_types = vec![LogicalType::Integer, dec, LogicalType::Text];
        let key = vec![Value::Int(7), Value::Text("k\n".into())];
        let row = |d: &str, s: Option<&str>| {
            vec![
                Value::Int(1),
                Value::Decimal(d.into()),
                s.map_or(Value::Null, |s| Value::Text(s.into())),
            ]
        };
        let diffs = [
            Difference {
                kind: DiffKind::Missing,
                key: key.clone(),
                source: Some(row("1.5", Some("é\"x"))),
                target: None,
                changed: Vec::new(),
                float_only: false,
            },
            Difference {
                kind: DiffKind::Extra,
                key: key.clone(),
                source: None,
                target: Some(row("2", None)),
                changed: Vec::new(),
                float_only: false,
            },
            Difference {
                kind: DiffKind::Changed,
                key,
                source: Some(row("1.5", Some("a"))[1..].to_vec()),
                target: Some(row("1.25", None)[1..].to_vec()),
                changed: vec![1, 2],
                float_only: false,
            },
            // Values written the slow way: too wide for an i64, floats,
            // bytes, a bool, a time.
            Difference {
                kind: DiffKind::Missing,
                key: vec![Value::Int(i128::MAX), Value::Int(i128::from(u64::MAX))],
                source: Some(vec![
                    Value::Float(f64::NAN),
                    Value::Bytes(vec![1, 0xab]),
                    Value::Bool(true),
                ]),
                target: None,
                changed: Vec::new(),
                float_only: false,
            },
            Difference {
                kind: DiffKind::Extra,
                key: vec![Value::Int(i128::from(i64::MIN)), Value::Null],
                source: None,
                target: Some(vec![
                    Value::Float(-0.5),
                    Value::Timestamp(1),
                    Value::Json("{\"a\":[1]}".into()),
                ]),
                changed: Vec::new(),
                float_only: false,
            },
        ];
        // A changed row holds its changed columns' values only.
        assert_eq!(
            serde_json::to_string(&DifferenceReport::new(&t, &diffs[2])).expect("built"),
            r#"{"kind":"changed","key":{"a":7,"b \"q\"":"k\n"},"columns":["d","s"],"source":{"d":"1.50","s":"a"},"target":{"d":"1.25","s":null}}"#
        );
        let writer = DifferenceWriter::new(&t).expect("names");
        for d in &diffs {
            let built = serde_json::to_string(&DifferenceReport::new(&t, d)).expect("built");
            let mut written = Vec::new();
            writer.write(&mut written, &t, d).expect("written");
            assert_eq!(String::from_utf8(written).expect("UTF-8"), built);
        }
    }
}
