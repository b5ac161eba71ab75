//! The JSON report written as the comparison runs: what is known at the
//! start (versions, sides, start time) at once, each difference when it is
//! found, one per line, each table's other fields once the table is done,
//! and how the run ended last. The document is the one [`Report::to_json`]
//! writes (the same fields; only their order and spacing differ), so a run
//! where millions of rows drifted needs no more memory than one in sync.
//!
//! [`Report::to_json`]: super::Report::to_json

use std::io::{self, Write};

use serde_json::Value as J;

use super::difference::DifferenceWriter;
use super::model::{Report, RunInfo, TableReport};
use crate::check::{DiffSink, RunOutcome, TableOutcome};
use crate::reconcile::Difference;

/// A [`DiffSink`] writing the JSON report to `out`; call
/// [`finish`](JsonStream::finish) once the run is done (or
/// [`fail`](JsonStream::fail) when it stopped).
pub struct JsonStream<W: Write> {
    out: W,
    /// Fields known at the start, written before the first table.
    head: Option<Fields>,
    tables: usize,
    differences: usize,
    /// Counts only: no lists of ranges or differences (`--summary`).
    summary: bool,
    /// The table's column names, quoted at its first difference.
    writer: Option<DifferenceWriter>,
}

/// `value` pretty-printed, its later lines indented by `indent`.
fn pretty(value: &J, indent: &str) -> io::Result<String> {
    let s = serde_json::to_string_pretty(value).map_err(io::Error::other)?;
    Ok(s.replace('\n', &format!("\n{indent}")))
}

/// Top-level fields of a report, in document order.
type Fields = Vec<(String, J)>;

/// A report's top-level fields in document order, split around `tables`.
fn fields(report: &Report) -> io::Result<(Fields, Fields)> {
    let J::Object(all) = serde_json::to_value(report).map_err(io::Error::other)? else {
        return Err(io::Error::other("a report serializes to an object"));
    };
    let mut head = Vec::new();
    let mut tail = Vec::new();
    let mut before = true;
    for (k, v) in all {
        if k == "tables" {
            before = false;
        } else if before {
            head.push((k, v));
        } else {
            tail.push((k, v));
        }
    }
    Ok((head, tail))
}

impl<W: Write> JsonStream<W> {
    /// A report of the run `info` describes (its `finished_at` is not
    /// used: [`finish`](JsonStream::finish) is told the end).
    pub fn new(out: W, info: &RunInfo, summary: bool) -> io::Result<JsonStream<W>> {
        let (head, _) = fields(&Report::failed(info, None))?;
        Ok(JsonStream {
            out,
            head: Some(head),
            tables: 0,
            differences: 0,
            summary,
            writer: None,
        })
    }

    fn start_document(&mut self) -> io::Result<()> {
        let Some(head) = self.head.take() else {
            return Ok(());
        };
        write!(self.out, "{{")?;
        for (k, v) in &head {
            let key = serde_json::to_string(k).map_err(io::Error::other)?;
            write!(self.out, "\n  {key}: {},", pretty(v, "  ")?)?;
        }
        write!(self.out, "\n  \"tables\": [")
    }

    /// Closes the document with how the run ended (`report`'s fields after
    /// its tables, which are not written again) and flushes it; returns the
    /// writer.
    fn close(mut self, report: &Report) -> io::Result<W> {
        self.start_document()?;
        if self.tables == 0 {
            write!(self.out, "]")?;
        } else {
            write!(self.out, "\n  ]")?;
        }
        let (_, tail) = fields(report)?;
        for (k, v) in &tail {
            let key = serde_json::to_string(k).map_err(io::Error::other)?;
            write!(self.out, ",\n  {key}: {}", pretty(v, "  ")?)?;
        }
        write!(self.out, "\n}}\n")?;
        self.out.flush()?;
        Ok(self.out)
    }

    /// Closes the document of a run that finished (`info` with its end
    /// time).
    pub fn finish(self, info: &RunInfo, run: &RunOutcome) -> io::Result<W> {
        let mut report = Report::new(info, &RunOutcome::default());
        let whole = Report::new(info, run);
        report.status = whole.status;
        report.exit_code = whole.exit_code;
        report.summary = whole.summary;
        report.hints = whole.hints;
        self.close(&report)
    }

    /// Closes the document of a run that stopped with `error` (status
    /// `error`, exit code 2), after whatever tables it wrote.
    pub fn fail(self, info: &RunInfo, error: String) -> io::Result<W> {
        self.close(&Report::failed(info, Some(error)))
    }
}

impl<W: Write> DiffSink for JsonStream<W> {
    fn table_started(&mut self, table: &TableOutcome) -> io::Result<()> {
        self.start_document()?;
        if self.tables > 0 {
            write!(self.out, ",")?;
        }
        self.tables += 1;
        self.differences = 0;
        self.writer = None;
        let name = serde_json::to_string(&table.table).map_err(io::Error::other)?;
        write!(self.out, "\n    {{\n      \"table\": {name}")?;
        if !self.summary {
            write!(self.out, ",\n      \"differences\": [")?;
        }
        Ok(())
    }

    fn difference(&mut self, table: &TableOutcome, d: &Difference) -> io::Result<()> {
        if self.summary {
            return Ok(());
        }
        let sep = if self.differences == 0 { "" } else { "," };
        self.differences += 1;
        write!(self.out, "{sep}\n        ")?;
        let writer = match &self.writer {
            Some(w) => w,
            None => self.writer.insert(DifferenceWriter::new(table)?),
        };
        writer.write(&mut self.out, table, d)
    }

    fn table_finished(&mut self, table: &TableOutcome) -> io::Result<()> {
        let mut rest = TableReport::without_differences(table);
        if self.summary {
            rest = rest.summarized();
        } else if self.differences > 0 {
            write!(self.out, "\n      ]")?;
        } else {
            write!(self.out, "]")?;
        }
        let rest = serde_json::to_value(rest).map_err(io::Error::other)?;
        if let J::Object(fields) = rest {
            for (k, v) in fields {
                if k == "table" || k == "differences" {
                    continue;
                }
                let key = serde_json::to_string(&k).map_err(io::Error::other)?;
                write!(self.out, ",\n      {key}: {}", pretty(&v, "      ")?)?;
            }
        }
        write!(self.out, "\n    }}")?;
        // A reader of the stream gets each table as it is done.
        self.out.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::check::{DiffCounts, RangeOutcome, RunOutcome};
    use crate::reconcile::DiffKind;
    use crate::report::model::{Report, SideInfo};
    use driftsum_core::Value;

    fn table(name: &str, diffs: &[(DiffKind, i64)]) -> TableOutcome {
        let mut t = TableOutcome::failed(name, name, "");
        t.error = None;
        t.key_columns = vec!["id".into()];
        t.columns = vec!["v".into(), "w \"q\"".into()];
        t.source_rows = 10;
        t.target_rows = 11;
        for &(kind, k) in diffs {
            let row = vec![Value::Int(k.into()), Value::Text(format!("é{k}\n"))];
            // A changed row holds its changed column's value (`w "q"`) only.
            let vals = Some(match kind {
                DiffKind::Changed => row[1..].to_vec(),
                _ => row,
            });
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
                after: None,
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
        let info = RunInfo {
            source: SideInfo::new("postgres://u:pw@h/db"),
            target: SideInfo::new("sqlite:r.db"),
            started_at: "2026-11-27T21:00:00Z".into(),
            finished_at: "2026-11-27T21:00:05Z".into(),
        };
        for summary in [false, true] {
            for tables in runs.clone() {
                let mut sink = JsonStream::new(Vec::new(), &info, summary).expect("start");
                for t in &tables {
                    sink.table_started(t).expect("start");
                    for d in &t.differences {
                        sink.difference(t, d).expect("difference");
                    }
                    sink.table_finished(t).expect("finish");
                }
                let run = RunOutcome { tables };
                let bytes = sink.finish(&info, &run).expect("close");
                let text = String::from_utf8(bytes).expect("utf-8");
                let streamed: J =
                    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}: {text}"));
                let mut report = Report::new(&info, &run);
                if summary {
                    report = report.summarized();
                }
                let whole: J = serde_json::from_str(&report.to_json()).expect("whole");
                assert_eq!(streamed, whole, "{text}");
                assert_eq!(DiffCounts::default().total(), 0);
            }
        }
        // A run that stopped: the same document as a failed report.
        let sink = JsonStream::new(Vec::new(), &info, false).expect("start");
        let bytes = sink.fail(&info, "cannot open".into()).expect("close");
        let streamed: J = serde_json::from_slice(&bytes).expect("parses");
        let whole: J =
            serde_json::from_str(&Report::failed(&info, Some("cannot open".into())).to_json())
                .expect("whole");
        assert_eq!(streamed, whole);
        assert_eq!(streamed["status"], "error");
    }
}
