//! What a check found: per-table outcomes and the run as a whole. Plain data;
//! rendering lives in `report`.

use driftsum_core::diff::LevelCost;
use driftsum_core::{LogicalType, Side, Value};

use crate::reconcile::{DiffKind, Difference};

/// A drifted key range, as key values.
#[derive(Clone, Debug, PartialEq)]
pub struct RangeOutcome {
    /// The range's exclusive lower bound (`None`: from the first key), so
    /// that it can be read again exactly.
    pub after: Option<Vec<Value>>,
    pub first: Vec<Value>,
    pub last: Vec<Value>,
    pub source_rows: u64,
    pub target_rows: u64,
}

/// A column that only one side has.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ColumnDifference {
    pub column: String,
    pub only_in: Side,
}

/// What one phase of fetching from the sides cost (both sides together), in
/// the wire encoding.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct PhaseCost {
    pub round_trips: u64,
    /// Entries or rows received.
    pub items: u64,
    pub bytes: u64,
}

/// What the sides exchanged: node summaries per tree level, then the leaf
/// entries of the drifted ranges, then the rows of the differing keys.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Transfer {
    pub levels: Vec<LevelCost>,
    pub entries: PhaseCost,
    pub rows: PhaseCost,
}

impl Transfer {
    pub fn bytes(&self) -> u64 {
        self.levels.iter().map(|l| l.bytes).sum::<u64>() + self.entries.bytes + self.rows.bytes
    }

    pub fn round_trips(&self) -> u64 {
        self.levels.iter().map(|l| l.round_trips).sum::<u64>()
            + self.entries.round_trips
            + self.rows.round_trips
    }
}

/// What comparing one table cost.
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Stats {
    pub source_rows_read: u64,
    pub target_rows_read: u64,
    pub nodes_compared: u64,
    pub bytes_exchanged: u64,
    pub round_trips: u64,
    pub seconds: f64,
    pub scan_seconds: f64,
    pub walk_seconds: f64,
    pub fetch_seconds: f64,
    /// `bytes_exchanged` and `round_trips`, phase by phase.
    #[serde(default)]
    pub transfer: Transfer,
}

/// How many differences of each kind a table holds: exact, however few of
/// them an outcome keeps.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct DiffCounts {
    pub missing: u64,
    pub extra: u64,
    pub changed: u64,
    /// Changed rows whose only differences are floats agreeing to 15 digits.
    pub float_only: u64,
}

impl DiffCounts {
    pub fn add(&mut self, d: &Difference) {
        match d.kind {
            DiffKind::Missing => self.missing += 1,
            DiffKind::Extra => self.extra += 1,
            DiffKind::Changed => self.changed += 1,
        }
        self.float_only += u64::from(d.float_only);
    }

    pub fn total(&self) -> u64 {
        self.missing + self.extra + self.changed
    }

    pub fn is_empty(&self) -> bool {
        self.total() == 0
    }

    /// The count of one kind.
    pub fn of(&self, kind: DiffKind) -> u64 {
        match kind {
            DiffKind::Missing => self.missing,
            DiffKind::Extra => self.extra,
            DiffKind::Changed => self.changed,
        }
    }
}

/// The result of comparing one table.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct TableOutcome {
    /// The table's name in the source (and in the replica unless mapped).
    pub table: String,
    pub target_table: String,
    pub key_columns: Vec<String>,
    /// The compared value columns, in the order of the difference vectors.
    pub columns: Vec<String>,
    /// The key columns' and value columns' logical types (from the source),
    /// so a report writes values as their type reads (a decimal's scale).
    pub key_types: Vec<LogicalType>,
    pub column_types: Vec<LogicalType>,
    pub source_rows: u64,
    pub target_rows: u64,
    pub ranges: Vec<RangeOutcome>,
    /// The differences found, in key order: all of them, or the first ones
    /// when the run keeps a sample (see `DiffOptions::keep_differences`;
    /// the full list then went to the run's [`DiffSink`](super::DiffSink)).
    pub differences: Vec<Difference>,
    /// Every difference found, counted by kind, kept or not.
    pub counts: DiffCounts,
    pub column_differences: Vec<ColumnDifference>,
    pub stats: Stats,
    /// What selected the rows read on the source and on the replica (SQL
    /// conditions and typed ranges, see `ScanSpec::filter_label`).
    pub filters: [Option<String>; 2],
    /// Set when the table could not be compared; then nothing else is.
    pub error: Option<String>,
}

impl TableOutcome {
    pub fn failed(table: &str, target_table: &str, error: impl ToString) -> TableOutcome {
        TableOutcome {
            table: table.to_string(),
            target_table: target_table.to_string(),
            error: Some(error.to_string()),
            ..TableOutcome::default()
        }
    }

    /// Records a difference: counted always, kept while fewer than `keep`
    /// are (all when `None`).
    pub fn record(&mut self, d: Difference, keep: Option<usize>) {
        self.counts.add(&d);
        if self.keeps_more(keep) {
            self.differences.push(d);
        }
    }

    /// [`record`](TableOutcome::record) for a difference the caller goes
    /// on using: copied only if kept.
    pub(crate) fn record_borrowed(&mut self, d: &Difference, keep: Option<usize>) {
        self.counts.add(d);
        if self.keeps_more(keep) {
            self.differences.push(d.clone());
        }
    }

    /// Whether the sample has room for one more difference.
    fn keeps_more(&self, keep: Option<usize>) -> bool {
        keep.is_none_or(|k| self.differences.len() < k)
    }

    /// Differences found, kept or not (an outcome assembled by hand may
    /// list differences it never counted).
    pub fn difference_count(&self) -> u64 {
        self.counts.total().max(self.differences.len() as u64)
    }

    pub fn in_sync(&self) -> bool {
        self.error.is_none()
            && self.difference_count() == 0
            && self.column_differences.is_empty()
            // A range from tree files without entries holds unnamed drift.
            && self.ranges.is_empty()
    }

    /// Changed rows whose only differences are floats agreeing to 15 digits.
    pub fn float_only_changes(&self) -> usize {
        let listed = self.differences.iter().filter(|d| d.float_only).count();
        listed.max(self.counts.float_only as usize)
    }
}

/// The result of a whole run.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct RunOutcome {
    pub tables: Vec<TableOutcome>,
}

impl RunOutcome {
    /// 0 when every table is in sync, 1 when drift was found, 2 when any
    /// table could not be compared.
    pub fn exit_code(&self) -> u8 {
        if self.tables.iter().any(|t| t.error.is_some()) {
            2
        } else if self.tables.iter().all(TableOutcome::in_sync) {
            0
        } else {
            1
        }
    }
}
