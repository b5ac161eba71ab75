//! The types every connector shares: a table's schema, what a scan reads
//! and its key range, the row sink, and the [`Source`] trait itself; with
//! small helpers on them (key cuts, type arguments, quoting). The connectors
//! import these from here, never from `source` itself, whose `mod.rs` only
//! declares and re-exports.

use std::ops::ControlFlow;

use driftsum_core::canon::CanonOptions;
use driftsum_core::coerce::{ColumnRule, TrailingSpaces};
use driftsum_core::filter::ValueRange;
use driftsum_core::key::KeyRange;
use driftsum_core::{LogicalType, Value};

use crate::error::SourceError;

/// A column as its database declares it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Column {
    pub name: String,
    /// The type as declared (for messages).
    pub declared: String,
    pub ty: LogicalType,
    /// Whether the engine treats trailing spaces of this column's text as
    /// part of it (`char(n)` on PostgreSQL pads and strips them); a plan
    /// reads the column this way on both sides.
    pub trailing_spaces: TrailingSpaces,
}

/// A table's columns (in table order) and primary key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TableSchema {
    pub name: String,
    pub columns: Vec<Column>,
    /// Primary-key column names in key order; empty when there is none.
    pub primary_key: Vec<String>,
}

impl TableSchema {
    pub fn column(&self, name: &str) -> Option<&Column> {
        self.columns.iter().find(|c| c.name == name)
    }
}

/// One column to read and how to read it.
#[derive(Clone, Debug, PartialEq)]
pub struct ColumnSpec {
    pub name: String,
    pub rule: ColumnRule,
}

/// What to scan: key columns first, then the compared value columns.
#[derive(Clone, Debug, PartialEq)]
pub struct ScanSpec {
    pub table: String,
    pub key: Vec<ColumnSpec>,
    pub values: Vec<ColumnSpec>,
    /// A user-given SQL condition (`--where`, `--source-where`,
    /// `--target-where`), applied as is.
    pub filter: Option<String>,
    /// Typed ranges on decoded values (`--since`, `--until`, `--min-age`,
    /// `--max-age`): a row is read only when every range admits its value.
    /// Applied after decoding by `source::filter`, on every scan.
    pub ranges: Vec<ColumnRange>,
}

/// A typed range on one column (named and read as on this side): rows
/// whose decoded value it does not admit are not read.
#[derive(Clone, Debug, PartialEq)]
pub struct ColumnRange {
    pub column: ColumnSpec,
    pub range: ValueRange,
}

impl ScanSpec {
    pub fn width(&self) -> usize {
        self.key.len() + self.values.len()
    }

    /// The key columns, then the value columns: a scanned row's order.
    pub fn columns(&self) -> impl Iterator<Item = &ColumnSpec> {
        self.key.iter().chain(&self.values)
    }

    /// What selects this scan's rows, as one text (a tree file records it,
    /// and only a scan selecting the same rows may be compared with it):
    /// the SQL condition alone when there are no typed ranges.
    pub fn filter_label(&self) -> Option<String> {
        if self.ranges.is_empty() {
            return self.filter.clone();
        }
        let mut parts: Vec<String> = self.filter.iter().map(|f| format!("({f})")).collect();
        for r in &self.ranges {
            if let Some(s) = &r.range.since {
                parts.push(format!("{} >= {s}", r.column.name));
            }
            if let Some(u) = &r.range.until {
                parts.push(format!("{} < {u}", r.column.name));
            }
        }
        Some(parts.join(" AND "))
    }
}

/// The receiver of scanned rows: each row is the key values followed by the
/// value columns, in [`ScanSpec`] order. It answers
/// [`ControlFlow::Break`] when it wants no more rows: the scan then ends
/// early, with `Ok`. It is `Send`, so a scan may run on any thread.
pub type RowSink<'a> = dyn FnMut(&[Value]) -> ControlFlow<()> + Send + 'a;

/// The receiver of rows already encoded: each row's key bytes and canonical
/// row bytes, exactly as [`RowHasher::encode`](driftsum_core::row::RowHasher::encode)
/// makes them from the row's values. Answers as a [`RowSink`] does.
pub type EncodedSink<'a> = dyn FnMut(&[u8], &[u8]) -> ControlFlow<()> + Send + 'a;

/// Which rows of a scan are wanted, by their key values (see
/// [`Source::scan_unordered_wanted`]).
pub type KeyFilter<'a> = dyn FnMut(&[Value]) -> bool + Send + 'a;

/// `sink`, handed only the rows of `spec` whose key values `wanted`
/// accepts, for a scan that reads every row whole.
pub fn wanted_only<'s, 'w: 's, 'k: 's>(
    spec: &ScanSpec,
    wanted: &'s mut KeyFilter<'w>,
    sink: &'s mut RowSink<'k>,
) -> impl FnMut(&[Value]) -> ControlFlow<()> + Send + use<'s, 'w, 'k> {
    let nkey = spec.key.len();
    move |row| match wanted(&row[..nkey]) {
        true => sink(row),
        false => ControlFlow::Continue(()),
    }
}

/// One side of a comparison: a database connection (read-only).
pub trait Source: Send {
    /// Engine and location for messages, never with credentials.
    fn describe(&self) -> String;
    /// Names of the tables that can be compared, sorted.
    fn tables(&mut self) -> Result<Vec<String>, SourceError>;
    /// A table's schema; [`SourceError::NoTable`] when it does not exist.
    fn schema(&mut self, table: &str) -> Result<TableSchema, SourceError>;
    /// Streams rows ordered by key (binary order). `range` narrows the scan
    /// when the connector can express it; callers still filter by key, since a
    /// connector may ignore it and return more rows.
    fn scan(
        &mut self,
        spec: &ScanSpec,
        range: Option<&KeyRange>,
        sink: &mut RowSink<'_>,
    ) -> Result<(), SourceError>;

    /// Whether [`scan_unordered`](Source::scan_unordered) reads `spec`'s
    /// whole table faster than [`scan`](Source::scan) does, in an order
    /// close to key order (PostgreSQL: a sequential scan of a table keyed by
    /// one unique integer column, instead of a walk of its key's index).
    /// Only such a source's rows are read unordered: a caller placing rows
    /// by key then needs few of them read again.
    fn reads_faster_unordered(&mut self, spec: &ScanSpec) -> Result<bool, SourceError> {
        let _ = spec;
        Ok(false)
    }

    /// Streams every row of `spec` in the order the engine reads them
    /// fastest, not in key order: for a first pass only when
    /// [`reads_faster_unordered`](Source::reads_faster_unordered) said so,
    /// and by callers that place every row by its key themselves. The
    /// default reads in key order.
    fn scan_unordered(
        &mut self,
        spec: &ScanSpec,
        sink: &mut RowSink<'_>,
    ) -> Result<(), SourceError> {
        self.scan(spec, None, sink)
    }

    /// [`scan_unordered`](Source::scan_unordered), handing `sink` only the
    /// rows whose key values (a row's first values) `wanted` accepts, which
    /// is asked once about each row that scan yields: a source that can
    /// leaves the other rows' values undecoded. The default reads every row
    /// whole and asks.
    fn scan_unordered_wanted(
        &mut self,
        spec: &ScanSpec,
        wanted: &mut KeyFilter<'_>,
        sink: &mut RowSink<'_>,
    ) -> Result<(), SourceError> {
        self.scan_unordered(spec, &mut wanted_only(spec, wanted, sink))
    }

    /// Streams every row of `spec`'s table, as [`scan`](Source::scan) with
    /// no range does (or [`scan_unordered`](Source::scan_unordered) when
    /// `unordered`), each row encoded under `opts` without building its
    /// values, when this source can read the table so; else reads nothing
    /// and answers `false`, and the caller scans values instead. The
    /// default cannot.
    fn scan_encoded(
        &mut self,
        spec: &ScanSpec,
        unordered: bool,
        opts: &CanonOptions,
        sink: &mut EncodedSink<'_>,
    ) -> Result<bool, SourceError> {
        let _ = (spec, unordered, opts, sink);
        Ok(false)
    }

    /// Another connection that reads exactly this one's snapshot, so that
    /// key ranges can be scanned in parallel and still add up to one
    /// consistent table; `None` when the engine cannot promise that.
    fn fork(&mut self) -> Result<Option<Box<dyn Source>>, SourceError> {
        Ok(None)
    }

    /// Whether a scan given `bounds` finds every row of `spec`'s table in
    /// them that a full scan finds. False once a scan met a key stored so
    /// that the query's comparisons skip it (SQLite: a key in another
    /// storage class than its column's type, or NULL); such a table's ranges
    /// must be read by scanning it whole and filtering by key.
    fn ranges_find_every_row(&self, spec: &ScanSpec) -> bool {
        let _ = spec;
        true
    }

    /// Whether a read of one key range of `spec` goes through the key's
    /// index (see [`Dialect::bounds_by_index`](super::sql::Dialect::bounds_by_index)),
    /// so that reading many ranges one by one costs about their rows. When
    /// not (a decimal key, text in a collation that is not byte order), each
    /// range read is a scan of the table, and a caller with several ranges
    /// reads them all by one scan instead.
    fn ranges_use_index(&mut self, spec: &ScanSpec) -> Result<bool, SourceError> {
        let _ = spec;
        Ok(true)
    }

    /// Whether [`scan_keys`](Source::scan_keys) can look `spec`'s keys up
    /// (its key columns' types and collations allow an equality its index
    /// serves): only then does a side whose ranges cannot go through the
    /// index keep its leaves' entries to read rows by key. The default
    /// cannot.
    fn looks_up_keys(&mut self, spec: &ScanSpec) -> Result<bool, SourceError> {
        let _ = spec;
        Ok(false)
    }

    /// Streams the rows of `spec` whose keys are among `keys` (each a key's
    /// values), in no particular order, each found through the key's index
    /// (for a side whose range reads cannot go through it, see
    /// [`ranges_use_index`](Source::ranges_use_index)). It may send rows of
    /// other keys, which the caller drops, never miss one. `false`, having
    /// sent nothing, when this source cannot look these keys up so; the
    /// caller then reads their ranges. The default cannot.
    fn scan_keys(
        &mut self,
        spec: &ScanSpec,
        keys: &[Vec<Value>],
        sink: &mut RowSink<'_>,
    ) -> Result<bool, SourceError> {
        let _ = (spec, keys, sink);
        Ok(false)
    }

    /// Whether a whole scan of `spec` that just came back out of key order
    /// did so only because this source tried a faster read order that
    /// turned out wrong, and it now reads that table in key order (SQLite:
    /// a table keyed by text times whose rowids turned out not to ascend
    /// with its keys). One more scan is then cheaper than holding and
    /// sorting every key.
    fn scans_again_in_key_order(&self, spec: &ScanSpec) -> bool {
        let _ = spec;
        false
    }

    /// Whether [`fork`](Source::fork)ed connections cost next to nothing
    /// (an embedded database), so key ranges are worth it by default.
    fn cheap_forks(&self) -> bool {
        false
    }

    /// About how many rows `table` holds, from the engine's statistics (for
    /// progress only; see [`estimate`](super::estimate)); `None` when it
    /// keeps none.
    fn estimate_rows(&mut self, table: &str) -> Option<u64> {
        let _ = table;
        None
    }

    /// How many rows a scan of `spec` would return (its filter applied),
    /// counted by the engine itself (`SELECT count(*)`) in this
    /// connection's snapshot, so that no row is read into this process;
    /// `None` when the connector cannot (the caller then counts a key-only
    /// scan).
    fn count(&mut self, spec: &ScanSpec) -> Result<Option<u64>, SourceError> {
        let _ = spec;
        Ok(None)
    }

    /// Keys that cut `spec`'s table into consecutive ranges of about
    /// `rows_per_range` rows, for [`fork`](Source::fork)ed scans: range `i`
    /// holds the keys after cut `i - 1` (from the start for the first) up to
    /// and including cut `i`, and the last cut is the table's greatest key,
    /// so together they cover every row. Empty when the source cannot cut
    /// the key cheaply and safely (every row must fall in a range's bounds).
    fn key_cuts(
        &mut self,
        spec: &ScanSpec,
        rows_per_range: u64,
    ) -> Result<Vec<Vec<Value>>, SourceError> {
        let _ = (spec, rows_per_range);
        Ok(Vec::new())
    }
}

/// At most this many key ranges per scan (each is one query).
const MAX_RANGES: i128 = 4096;

/// Cuts splitting the integer keys `lo..=hi` evenly into ranges of about
/// `rows_per_range` keys (see [`Source::key_cuts`]); the last cut is `hi`.
/// Empty when one range would do.
pub fn even_cuts(lo: i64, hi: i64, rows_per_range: u64) -> Vec<Vec<Value>> {
    let span = hi as i128 - lo as i128 + 1;
    let ranges = (span / rows_per_range.max(1) as i128).clamp(1, MAX_RANGES);
    if ranges < 2 {
        return Vec::new();
    }
    (1..=ranges)
        .map(|i| vec![Value::Int(lo as i128 - 1 + span * i / ranges)])
        .collect()
}

/// The numbers in a declared type's parentheses: `numeric(12,2)` → `[12, 2]`.
pub fn type_args(declared: &str) -> Vec<i64> {
    let Some(open) = declared.find('(') else {
        return Vec::new();
    };
    let close = declared[open..]
        .find(')')
        .map_or(declared.len(), |c| open + c);
    declared[open + 1..close]
        .split(',')
        .filter_map(|p| p.trim().parse().ok())
        .collect()
}

/// Double-quotes an SQL identifier, so no name can become SQL.
pub fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}
