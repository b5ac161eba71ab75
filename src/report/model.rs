//! The report model: a run as one serializable document. The JSON output is
//! exactly this model; the text output is rendered from it.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value as J};

use driftsum_core::{Side, Value};

use crate::check::{DiffCounts, RunOutcome, Stats, TableOutcome};
use crate::reconcile::{DiffKind, Difference};

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Report {
    /// Version of the canonical encoding the hashes were computed with.
    pub encoding_version: u32,
    pub tables: Vec<TableReport>,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct TableReport {
    pub table: String,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub target_table: Option<String>,
    pub key_columns: Vec<String>,
    pub source_rows: u64,
    pub target_rows: u64,
    pub in_sync: bool,
    pub drifted_ranges: Vec<RangeReport>,
    /// Every difference in JSON; in a report built from an outcome that kept
    /// a sample, the first ones (`counts` has them all).
    pub differences: Vec<DifferenceReport>,
    /// Differences by kind, listed or not (not part of the JSON document,
    /// which lists them all).
    #[serde(skip)]
    pub counts: DiffCounts,
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    pub column_differences: Vec<ColumnReport>,
    /// Changed rows that differ only in floats agreeing to 15 significant digits.
    #[serde(skip_serializing_if = "is_zero", default)]
    pub float_only_changes: usize,
    pub stats: Stats,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub error: Option<String>,
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct RangeReport {
    pub first: Map<String, J>,
    pub last: Map<String, J>,
    pub source_rows: u64,
    pub target_rows: u64,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct DifferenceReport {
    pub kind: String,
    pub key: Map<String, J>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub columns: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub source: Option<Map<String, J>>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub target: Option<Map<String, J>>,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct ColumnReport {
    pub column: String,
    /// `source` or `target`.
    pub only_in: String,
}

/// Per-phase seconds rounded to milliseconds: the report is for people.
fn rounded(s: &Stats) -> Stats {
    Stats {
        seconds: round3(s.seconds),
        scan_seconds: round3(s.scan_seconds),
        walk_seconds: round3(s.walk_seconds),
        fetch_seconds: round3(s.fetch_seconds),
        ..s.clone()
    }
}

fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

fn object<'a>(
    names: impl IntoIterator<Item = &'a String>,
    values: impl IntoIterator<Item = &'a Value>,
) -> Map<String, J> {
    names
        .into_iter()
        .cloned()
        .zip(values.into_iter().map(Value::to_json))
        .collect()
}

fn side_name(s: Side) -> String {
    match s {
        Side::Source => "source".into(),
        Side::Target => "target".into(),
    }
}

impl DifferenceReport {
    /// One difference of table `t`, with its columns named.
    pub fn new(t: &TableOutcome, d: &Difference) -> DifferenceReport {
        let pick = |vals: &Option<Vec<Value>>| -> Option<Map<String, J>> {
            let vals = vals.as_ref()?;
            Some(match d.kind {
                DiffKind::Changed => object(
                    d.changed.iter().map(|&i| &t.columns[i]),
                    d.changed.iter().map(|&i| &vals[i]),
                ),
                _ => object(&t.columns, vals),
            })
        };
        DifferenceReport {
            kind: match d.kind {
                DiffKind::Missing => "missing",
                DiffKind::Extra => "extra",
                DiffKind::Changed => "changed",
            }
            .into(),
            key: object(&t.key_columns, &d.key),
            columns: (d.kind == DiffKind::Changed)
                .then(|| d.changed.iter().map(|&i| t.columns[i].clone()).collect()),
            source: pick(&d.source),
            target: pick(&d.target),
        }
    }
}

impl TableReport {
    pub fn from_outcome(t: &TableOutcome) -> TableReport {
        let mut report = TableReport::without_differences(t);
        report.differences = t
            .differences
            .iter()
            .map(|d| DifferenceReport::new(t, d))
            .collect();
        report
    }

    /// Everything about a table but its list of differences (a report
    /// that streams them writes them apart).
    pub fn without_differences(t: &TableOutcome) -> TableReport {
        TableReport {
            table: t.table.clone(),
            target_table: (t.target_table != t.table).then(|| t.target_table.clone()),
            key_columns: t.key_columns.clone(),
            source_rows: t.source_rows,
            target_rows: t.target_rows,
            in_sync: t.in_sync(),
            drifted_ranges: t
                .ranges
                .iter()
                .map(|r| RangeReport {
                    first: object(&t.key_columns, &r.first),
                    last: object(&t.key_columns, &r.last),
                    source_rows: r.source_rows,
                    target_rows: r.target_rows,
                })
                .collect(),
            differences: Vec::new(),
            counts: t.counts,
            column_differences: t
                .column_differences
                .iter()
                .map(|c| ColumnReport {
                    column: c.column.clone(),
                    only_in: side_name(c.only_in),
                })
                .collect(),
            float_only_changes: t.float_only_changes(),
            stats: rounded(&t.stats),
            error: t.error.clone(),
        }
    }

    /// Differences of one kind (`missing`, `extra`, `changed`), listed or
    /// not.
    pub fn count(&self, kind: &str) -> u64 {
        let listed = self.differences.iter().filter(|d| d.kind == kind).count() as u64;
        let counted = match kind {
            "missing" => self.counts.missing,
            "extra" => self.counts.extra,
            "changed" => self.counts.changed,
            _ => 0,
        };
        listed.max(counted)
    }

    /// Differences of every kind, listed or not.
    pub fn difference_count(&self) -> u64 {
        (self.differences.len() as u64).max(self.counts.total())
    }
}

impl Report {
    pub fn from_outcome(run: &RunOutcome) -> Report {
        Report {
            encoding_version: driftsum_core::ENCODING_VERSION,
            tables: run.tables.iter().map(TableReport::from_outcome).collect(),
        }
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("a report always serializes")
    }
}
