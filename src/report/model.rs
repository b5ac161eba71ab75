//! The report model: a run as one serializable document. The JSON output is
//! exactly this model (its schema is `docs/json-schema.json`); the text
//! output is rendered from it. What the run was asked (the sides, the
//! times) comes in a [`RunInfo`]; what it found, from the check's outcome.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value as J};

use driftsum_core::{LogicalType, Side, Value};

use crate::check::{DiffCounts, RunOutcome, Stats, TableOutcome};
use crate::reconcile::{DiffKind, Difference};

/// The version of the JSON document's shape: raised when a field changes
/// meaning or goes away (new fields may appear without it).
pub const FORMAT_VERSION: u32 = 1;

/// The tool that wrote a report.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct ToolInfo {
    pub name: String,
    pub version: String,
}

impl ToolInfo {
    pub fn this() -> ToolInfo {
        ToolInfo {
            name: env!("CARGO_PKG_NAME").into(),
            version: env!("CARGO_PKG_VERSION").into(),
        }
    }
}

/// One side of the run as given, with any password removed.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct SideInfo {
    /// The URL or path as given, its password (if any) replaced by `***`.
    pub url: String,
}

impl SideInfo {
    /// A side from the URL the user gave; the password never gets in.
    pub fn new(url: &str) -> SideInfo {
        SideInfo {
            url: crate::source::url::redact(url),
        }
    }
}

/// What a run was asked and when it ran: everything a report holds that the
/// check's outcome does not.
#[derive(Clone, Debug, PartialEq)]
pub struct RunInfo {
    pub source: SideInfo,
    pub target: SideInfo,
    /// RFC 3339, UTC, to the second.
    pub started_at: String,
    pub finished_at: String,
}

/// The time now as RFC 3339 in UTC, to the second (`2026-11-27T21:08:38Z`).
pub fn now_utc() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let micros = i128::from(secs) * 1_000_000;
    format!("{}Z", driftsum_core::time::format_timestamp(micros))
}

/// How a run or a table ended: `in_sync`, `drift` or `error`. An error
/// wins over drift (exit code 2 over 1): a run where one table drifted and
/// another could not be read is not a complete answer.
#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    InSync,
    Drift,
    Error,
}

impl Status {
    /// The status of an exit code (0, 1, anything else).
    pub fn of_exit_code(code: u8) -> Status {
        match code {
            0 => Status::InSync,
            1 => Status::Drift,
            _ => Status::Error,
        }
    }

    pub fn exit_code(self) -> u8 {
        match self {
            Status::InSync => 0,
            Status::Drift => 1,
            Status::Error => 2,
        }
    }

    fn of_table(t: &TableOutcome) -> Status {
        match (&t.error, t.in_sync()) {
            (Some(_), _) => Status::Error,
            (None, true) => Status::InSync,
            (None, false) => Status::Drift,
        }
    }
}

/// The run's tables and differences, counted.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct Summary {
    pub tables: u64,
    pub tables_in_sync: u64,
    pub tables_drifted: u64,
    pub tables_failed: u64,
    pub missing: u64,
    pub extra: u64,
    pub changed: u64,
}

impl Summary {
    pub fn of(run: &RunOutcome) -> Summary {
        let mut s = Summary::default();
        for t in &run.tables {
            s.tables += 1;
            match Status::of_table(t) {
                Status::InSync => s.tables_in_sync += 1,
                Status::Drift => s.tables_drifted += 1,
                Status::Error => s.tables_failed += 1,
            }
            s.missing += t.counts.of(DiffKind::Missing);
            s.extra += t.counts.of(DiffKind::Extra);
            s.changed += t.counts.of(DiffKind::Changed);
        }
        s
    }
}

/// A whole run. Fields in the order the streamed document writes them: what
/// is known at the start, the tables, then how the run ended.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Report {
    pub format_version: u32,
    pub tool: ToolInfo,
    /// Version of the canonical encoding the hashes were computed with.
    pub encoding_version: u32,
    pub source: SideInfo,
    pub target: SideInfo,
    pub started_at: String,
    pub tables: Vec<TableReport>,
    pub finished_at: String,
    pub status: Status,
    /// The process's exit code: 0 in sync, 1 drift, 2 error (2 wins over 1).
    pub exit_code: u8,
    pub summary: Summary,
    /// What the result suggests the user got wrong (sides that look
    /// swapped, a table found under another spelling); see `hints`.
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    pub hints: Vec<String>,
    /// Why the run stopped before comparing (or finishing) its tables: a
    /// side that could not be opened, a report that could not be written.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub error: Option<String>,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct TableReport {
    pub table: String,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub target_table: Option<String>,
    pub status: Status,
    pub key_columns: Vec<String>,
    /// Rows compared on each side; absent (`null`) when the table could not
    /// be compared, so no failure reads as an empty table.
    pub source_rows: Option<u64>,
    pub target_rows: Option<u64>,
    pub in_sync: bool,
    /// Absent from a summary (`--summary`).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub drifted_ranges: Option<Vec<RangeReport>>,
    /// Every difference in JSON; in a report built from an outcome that kept
    /// a sample, the first ones (`counts` has them all). Absent from a
    /// summary.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub differences: Option<Vec<DifferenceReport>>,
    /// Differences by kind, listed or not.
    pub counts: DiffCounts,
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    pub column_differences: Vec<ColumnReport>,
    /// Changed rows that differ only in floats agreeing to 15 significant digits.
    #[serde(skip_serializing_if = "is_zero", default)]
    pub float_only_changes: usize,
    pub stats: Stats,
    /// What selected the rows compared on each side; absent when nothing
    /// did (every row was compared).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub filters: Option<FilterReport>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub error: Option<String>,
}

/// The row filters applied to one table, per side: the SQL condition(s) and
/// typed ranges (`col >= value`, `col < value`), joined by AND; `null` on a
/// side that read every row.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct FilterReport {
    pub source: Option<String>,
    pub target: Option<String>,
}

impl FilterReport {
    fn of(t: &TableOutcome) -> Option<FilterReport> {
        let [source, target] = t.filters.clone();
        (source.is_some() || target.is_some()).then_some(FilterReport { source, target })
    }
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

/// A value as the report shows it: [`Value::to_json`], but a decimal of a
/// column with a declared scale written with that many fractional digits
/// (`1.50` in a `numeric(10,2)`, not the canonical `1.5`).
pub fn value_json(v: &Value, ty: Option<&LogicalType>) -> J {
    match (v, ty) {
        (Value::Decimal(d), Some(LogicalType::Decimal { scale: Some(scale) })) => {
            J::String(with_scale(d, usize::from(*scale)))
        }
        _ => v.to_json(),
    }
}

/// A canonical decimal's text padded with zeros to `scale` fractional
/// digits; anything else (`NaN`, `Infinity`, a longer fraction) as it is.
fn with_scale(d: &str, scale: usize) -> String {
    let digits = d.strip_prefix('-').unwrap_or(d);
    if scale == 0 || digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
        return d.to_string();
    }
    let frac = match d.split_once('.') {
        Some((_, f)) => f.len(),
        None => 0,
    };
    if frac >= scale {
        return d.to_string();
    }
    let mut out = d.to_string();
    if frac == 0 {
        out.push('.');
    }
    out.extend(std::iter::repeat_n('0', scale - frac));
    out
}

/// Names and values as one object, in the names' order (key order for a
/// key, table order for a row), each value written as its type reads.
fn object<'a>(
    names: impl IntoIterator<Item = &'a String>,
    values: impl IntoIterator<Item = &'a Value>,
    types: impl IntoIterator<Item = Option<&'a LogicalType>>,
) -> Map<String, J> {
    let mut types = types.into_iter();
    names
        .into_iter()
        .cloned()
        .zip(
            values
                .into_iter()
                .map(|v| value_json(v, types.next().flatten())),
        )
        .collect()
}

fn side_name(s: Side) -> String {
    match s {
        Side::Source => "source".into(),
        Side::Target => "target".into(),
    }
}

/// A table's key column types, one per key column (`None` past the end, for
/// an outcome assembled without them).
fn key_types(t: &TableOutcome) -> impl Iterator<Item = Option<&LogicalType>> {
    (0..).map(|i| t.key_types.get(i))
}

fn column_types(t: &TableOutcome) -> impl Iterator<Item = Option<&LogicalType>> {
    (0..).map(|i| t.column_types.get(i))
}

impl DifferenceReport {
    /// One difference of table `t`, with its columns named.
    pub fn new(t: &TableOutcome, d: &Difference) -> DifferenceReport {
        let pick = |vals: &Option<Vec<Value>>| -> Option<Map<String, J>> {
            let vals = vals.as_ref()?;
            Some(match d.kind {
                DiffKind::Changed => object(
                    d.changed.iter().map(|&i| &t.columns[i]),
                    vals.iter(),
                    d.changed.iter().map(|&i| t.column_types.get(i)),
                ),
                _ => object(&t.columns, vals, column_types(t)),
            })
        };
        DifferenceReport {
            kind: match d.kind {
                DiffKind::Missing => "missing",
                DiffKind::Extra => "extra",
                DiffKind::Changed => "changed",
            }
            .into(),
            key: object(&t.key_columns, &d.key, key_types(t)),
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
        report.differences = Some(
            t.differences
                .iter()
                .map(|d| DifferenceReport::new(t, d))
                .collect(),
        );
        report
    }

    /// Everything about a table but its list of differences (a report
    /// that streams them writes them apart, a summary leaves them out).
    pub fn without_differences(t: &TableOutcome) -> TableReport {
        let read = t.error.is_none();
        TableReport {
            table: t.table.clone(),
            target_table: (t.target_table != t.table).then(|| t.target_table.clone()),
            status: Status::of_table(t),
            key_columns: t.key_columns.clone(),
            source_rows: read.then_some(t.source_rows),
            target_rows: read.then_some(t.target_rows),
            in_sync: t.in_sync(),
            drifted_ranges: Some(
                t.ranges
                    .iter()
                    .map(|r| RangeReport {
                        first: object(&t.key_columns, &r.first, key_types(t)),
                        last: object(&t.key_columns, &r.last, key_types(t)),
                        source_rows: r.source_rows,
                        target_rows: r.target_rows,
                    })
                    .collect(),
            ),
            differences: None,
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
            filters: FilterReport::of(t),
            error: t.error.clone(),
        }
    }

    /// Without the lists of ranges and differences: counts only.
    pub fn summarized(mut self) -> TableReport {
        self.drifted_ranges = None;
        self.differences = None;
        self
    }

    /// The listed differences (none in a summary).
    pub fn listed(&self) -> &[DifferenceReport] {
        self.differences.as_deref().unwrap_or_default()
    }

    /// The drifted ranges (none in a summary).
    pub fn ranges(&self) -> &[RangeReport] {
        self.drifted_ranges.as_deref().unwrap_or_default()
    }

    /// Differences of one kind (`missing`, `extra`, `changed`), listed or
    /// not.
    pub fn count(&self, kind: &str) -> u64 {
        let listed = self.listed().iter().filter(|d| d.kind == kind).count() as u64;
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
        (self.listed().len() as u64).max(self.counts.total())
    }
}

impl Report {
    /// The report of a finished run.
    pub fn new(info: &RunInfo, run: &RunOutcome) -> Report {
        let status = Status::of_exit_code(run.exit_code());
        Report {
            tables: run.tables.iter().map(TableReport::from_outcome).collect(),
            status,
            exit_code: status.exit_code(),
            summary: Summary::of(run),
            hints: super::hints::of(&info.source.url, &info.target.url, run),
            ..Report::failed(info, None)
        }
    }

    /// The report of a run that stopped before it compared anything (a
    /// side that could not be opened): no tables, status `error`.
    pub fn failed(info: &RunInfo, error: Option<String>) -> Report {
        Report {
            format_version: FORMAT_VERSION,
            tool: ToolInfo::this(),
            encoding_version: driftsum_core::ENCODING_VERSION,
            source: info.source.clone(),
            target: info.target.clone(),
            started_at: info.started_at.clone(),
            tables: Vec::new(),
            finished_at: info.finished_at.clone(),
            status: Status::Error,
            exit_code: Status::Error.exit_code(),
            summary: Summary::default(),
            hints: Vec::new(),
            error,
        }
    }

    /// Without the lists of ranges and differences: counts only.
    pub fn summarized(mut self) -> Report {
        self.tables = self
            .tables
            .into_iter()
            .map(TableReport::summarized)
            .collect();
        self
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("a report always serializes")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimals_keep_their_scale() {
        let two = LogicalType::Decimal { scale: Some(2) };
        let cases = [
            ("1.5", "1.50"),
            ("1", "1.00"),
            ("-0.5", "-0.50"),
            ("0", "0.00"),
            ("12.345", "12.345"),
            ("NaN", "NaN"),
            ("Infinity", "Infinity"),
            ("-Infinity", "-Infinity"),
        ];
        for (canonical, shown) in cases {
            let v = Value::Decimal(canonical.into());
            assert_eq!(
                value_json(&v, Some(&two)),
                J::String(shown.into()),
                "{canonical}"
            );
        }
        let v = Value::Decimal("1.5".into());
        let unscaled = LogicalType::Decimal { scale: None };
        assert_eq!(value_json(&v, Some(&unscaled)), J::String("1.5".into()));
        assert_eq!(value_json(&v, None), J::String("1.5".into()));
        let zero = LogicalType::Decimal { scale: Some(0) };
        assert_eq!(
            value_json(&Value::Decimal("7".into()), Some(&zero)),
            J::String("7".into())
        );
    }

    #[test]
    fn compound_keys_keep_key_order() {
        let names = ["zone".to_string(), "at".to_string(), "id".to_string()];
        let values = [Value::Text("eu".into()), Value::Int(5), Value::Int(1)];
        let m = object(&names, &values, [None, None, None]);
        let order: Vec<&str> = m.keys().map(String::as_str).collect();
        assert_eq!(order, ["zone", "at", "id"]);
        let text = serde_json::to_string(&m).expect("serializes");
        assert_eq!(text, r#"{"zone":"eu","at":5,"id":1}"#);
    }

    #[test]
    fn status_error_wins_over_drift() {
        let mut drifted = TableOutcome::failed("a", "a", "");
        drifted.error = None;
        drifted.counts.missing = 1;
        let failed = TableOutcome::failed("b", "b", "no such table");
        let run = RunOutcome {
            tables: vec![drifted, failed],
        };
        let info = RunInfo {
            source: SideInfo::new("postgres://u:secret@h/db"),
            target: SideInfo::new("sqlite:r.db"),
            started_at: now_utc(),
            finished_at: now_utc(),
        };
        let r = Report::new(&info, &run);
        assert_eq!(r.status, Status::Error);
        assert_eq!(r.exit_code, 2);
        assert_eq!(r.summary.tables_drifted, 1);
        assert_eq!(r.summary.tables_failed, 1);
        assert_eq!(r.tables[1].source_rows, None);
        assert_eq!(r.tables[0].source_rows, Some(0));
        assert!(!r.source.url.contains("secret"), "{}", r.source.url);
        assert!(!r.to_json().contains("secret"));
    }

    #[test]
    fn times_are_rfc3339_utc() {
        let t = now_utc();
        assert_eq!(t.len(), "2026-11-27T21:08:38Z".len(), "{t}");
        assert!(t.ends_with('Z') && t.as_bytes()[10] == b'T', "{t}");
    }
}
