//! The JSON report written as the comparison runs: each difference is
//! written when it is found, one per line, and each table's other fields
//! once the table is done. The document is the one [`Report::to_json`]
//! writes (the same fields; only their order and spacing differ), so a run
//! where millions of rows drifted needs no more memory than one in sync.
//!
//! [`Report::to_json`]: super::Report::to_json

use std::io::{self, Write};

use serde_json::Value as J;

use super::model::{DifferenceReport, TableReport};
use crate::check::{DiffSink, TableOutcome};
use crate::reconcile::Difference;

/// A [`DiffSink`] writing the JSON report to `out`; call
/// [`finish`](JsonStream::finish) once the run is done.
pub struct JsonStream<W: Write> {
    out: W,
    tables: usize,
    differences: usize,
}

/// `value` pretty-printed, its later lines indented by `indent`.
fn pretty(value: &J, indent: &str) -> io::Result<String> {
    let s = serde_json::to_string_pretty(value).map_err(io::Error::other)?;
    Ok(s.replace('\n', &format!("\n{indent}")))
}

impl<W: Write> JsonStream<W> {
    pub fn new(out: W) -> JsonStream<W> {
        JsonStream {
            out,
            tables: 0,
            differences: 0,
        }
    }

    fn start_document(&mut self) -> io::Result<()> {
        write!(
            self.out,
            "{{\n  \"encoding_version\": {},\n  \"tables\": [",
            driftsum_core::ENCODING_VERSION
        )
    }

    /// Closes the document and flushes it; returns the writer.
    pub fn finish(mut self) -> io::Result<W> {
        if self.tables == 0 {
            self.start_document()?;
            write!(self.out, "]\n}}\n")?;
        } else {
            write!(self.out, "\n  ]\n}}\n")?;
        }
        self.out.flush()?;
        Ok(self.out)
    }
}

impl<W: Write> DiffSink for JsonStream<W> {
    fn table_started(&mut self, table: &TableOutcome) -> io::Result<()> {
        if self.tables == 0 {
            self.start_document()?;
        } else {
            write!(self.out, ",")?;
        }
        self.tables += 1;
        self.differences = 0;
        let name = serde_json::to_string(&table.table).map_err(io::Error::other)?;
        write!(
            self.out,
            "\n    {{\n      \"table\": {name},\n      \"differences\": ["
        )
    }

    fn difference(&mut self, table: &TableOutcome, d: &Difference) -> io::Result<()> {
        let line =
            serde_json::to_string(&DifferenceReport::new(table, d)).map_err(io::Error::other)?;
        let sep = if self.differences == 0 { "" } else { "," };
        self.differences += 1;
        write!(self.out, "{sep}\n        {line}")
    }

    fn table_finished(&mut self, table: &TableOutcome) -> io::Result<()> {
        if self.differences > 0 {
            write!(self.out, "\n      ]")?;
        } else {
            write!(self.out, "]")?;
        }
        let rest = serde_json::to_value(TableReport::without_differences(table))
            .map_err(io::Error::other)?;
        if let J::Object(fields) = rest {
            for (k, v) in fields {
                if k == "table" || k == "differences" {
                    continue;
                }
                let key = serde_json::to_string(&k).map_err(io::Error::other)?;
                write!(self.out, ",\n      {key}: {}", pretty(&v, "      ")?)?;
            }
        }
        write!(self.out, "\n    }}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::check::{DiffCounts, RangeOutcome, RunOutcome};
    use crate::reconcile::DiffKind;
    use crate::report::model::Report;
    use driftsum_core::Value;

    fn table(name: &str, diffs: &[(DiffKind, i64)]) -> TableOutcome {
        let mut t = TableOutcome::failed(name, name, "");
        t.error = None;
        t.key_columns = vec!["id".into()];
        t.columns = vec!["v".into(), "w \"q\"".into()];
        t.source_rows = 10;
        t.target_rows = 11;
        for &(kind, k) in diffs {
            let vals = Some(vec![Value::Int(k.into()), Value::Text(format!("é{k}\n"))]);
            t.record(
                Difference {
                    kind,
                    key: vec![Value::Int(k.into())],
                    source: (kind != DiffKind::Extra).then(|| vals.clone()).flatten(),
                    target: (kind != DiffKind::Missing).then(|| vals.clone()).flatten(),
                    changed: if kind == DiffKind::Changed {
                        vec![1]
                    } else {
                        vec![]
                    },
                    float_only: false,
                },
                None,
            );
        }
        if !diffs.is_empty() {
            t.ranges.push(RangeOutcome {
                first: vec![Value::Int(1)],
                last: vec![Value::Int(9)],
                source_rows: 3,
                target_rows: 4,
            });
        }
        t
    }

    /// Streamed, a run's document parses to exactly the report built from
    /// the whole outcome: no tables, in-sync and drifted tables, a failed
    /// one, names and values that need escaping.
    #[test]
    fn streamed_json_is_the_report() {
        let failed = TableOutcome::failed("c", "c", "no such \"table\"");
        let runs = [
            vec![],
            vec![table("a", &[])],
            vec![
                table("a", &[(DiffKind::Missing, 1), (DiffKind::Changed, 4)]),
                failed,
                table("d", &[(DiffKind::Extra, 7)]),
            ],
        ];
        for tables in runs {
            let mut sink = JsonStream::new(Vec::new());
            for t in &tables {
                sink.table_started(t).expect("start");
                for d in &t.differences {
                    sink.difference(t, d).expect("difference");
                }
                sink.table_finished(t).expect("finish");
            }
            let bytes = sink.finish().expect("close");
            let text = String::from_utf8(bytes).expect("utf-8");
            let streamed: J = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}: {text}"));
            let whole: J =
                serde_json::from_str(&Report::from_outcome(&RunOutcome { tables }).to_json())
                    .expect("whole");
            assert_eq!(streamed, whole, "{text}");
            assert_eq!(DiffCounts::default().total(), 0);
        }
    }
}
