//! The typed row filters of a [`ScanSpec`] (`ranges`: `--since`, `--until`,
//! `--min-age`, `--max-age`), applied to every scan of a connector after it
//! has decoded the values. [`Filtered`] wraps a connector: each scan reads
//! the range columns too (appended to the values when the spec does not
//! read them anyway), hands on only the rows every range admits, and cuts
//! the extra columns off again. Because the test is on logical values, it
//! keeps the same rows whatever the storage form of either side, and every
//! path that reads rows (first pass, key ranges, rows by key, agents) goes
//! through it. SQL filters are the connectors' (`sql.rs`), not here.

use std::ops::ControlFlow;

use driftsum_core::canon::CanonOptions;
use driftsum_core::Value;

use super::spec::{wanted_only, EncodedSink, KeyFilter, RowSink, ScanSpec, Source, TableSchema};
use crate::error::SourceError;
use driftsum_core::key::KeyRange;

/// A connector whose scans apply their spec's typed ranges. Every method of
/// [`Source`] is handed on to the connector: a method added to the trait
/// must be handed on here too.
pub struct Filtered(pub Box<dyn Source>);

impl Filtered {
    /// `source`, filtering.
    pub fn wrap(source: Box<dyn Source>) -> Box<dyn Source> {
        Box::new(Filtered(source))
    }
}

/// The scan a connector runs for `spec`: without the ranges, and with each
/// range column it would not read otherwise appended; with, for each range,
/// the place of its column in a scanned row.
fn widened(spec: &ScanSpec) -> (ScanSpec, Vec<usize>) {
    let mut inner = ScanSpec {
        ranges: Vec::new(),
        ..spec.clone()
    };
    let mut places = Vec::with_capacity(spec.ranges.len());
    for r in &spec.ranges {
        let at = inner
            .columns()
            .position(|c| c.name == r.column.name && c.rule == r.column.rule);
        places.push(match at {
            Some(i) => i,
            None => {
                inner.values.push(r.column.clone());
                inner.width() - 1
            }
        });
    }
    (inner, places)
}

/// Scans `source` for `spec`, its typed ranges applied.
pub fn scan(
    source: &mut dyn Source,
    spec: &ScanSpec,
    bounds: Option<&KeyRange>,
    sink: &mut RowSink<'_>,
) -> Result<(), SourceError> {
    filtered(spec, sink, |inner, sink| source.scan(inner, bounds, sink))
}

/// Runs `read` (one of the connector's scans) for `spec` with its typed
/// ranges taken out and applied here to the rows it reads.
fn filtered(
    spec: &ScanSpec,
    sink: &mut RowSink<'_>,
    read: impl FnOnce(&ScanSpec, &mut RowSink<'_>) -> Result<(), SourceError>,
) -> Result<(), SourceError> {
    if spec.ranges.is_empty() {
        return read(spec, sink);
    }
    let (inner, places) = widened(spec);
    let width = spec.width();
    read(&inner, &mut |row: &[Value]| {
        let kept = spec
            .ranges
            .iter()
            .zip(&places)
            .all(|(r, &i)| row.get(i).is_some_and(|v| r.range.admits(v)));
        match kept {
            true => sink(&row[..width.min(row.len())]),
            false => ControlFlow::Continue(()),
        }
    })
}

impl Source for Filtered {
    fn describe(&self) -> String {
        self.0.describe()
    }

    fn tables(&mut self) -> Result<Vec<String>, SourceError> {
        self.0.tables()
    }

    fn schema(&mut self, table: &str) -> Result<TableSchema, SourceError> {
        self.0.schema(table)
    }

    fn scan(
        &mut self,
        spec: &ScanSpec,
        bounds: Option<&KeyRange>,
        sink: &mut RowSink<'_>,
    ) -> Result<(), SourceError> {
        scan(self.0.as_mut(), spec, bounds, sink)
    }

    fn reads_faster_unordered(&mut self, spec: &ScanSpec) -> Result<bool, SourceError> {
        self.0.reads_faster_unordered(&widened(spec).0)
    }

    fn scan_unordered(
        &mut self,
        spec: &ScanSpec,
        sink: &mut RowSink<'_>,
    ) -> Result<(), SourceError> {
        let inner = self.0.as_mut();
        filtered(spec, sink, |spec, sink| inner.scan_unordered(spec, sink))
    }

    /// Handed on when the spec has no typed ranges. They test values, which
    /// the connector leaves undecoded for rows not wanted: with ranges every
    /// row is read whole, and only the rows they admit are asked about, so
    /// that `wanted` sees the rows any other scan of the spec yields.
    fn scan_unordered_wanted(
        &mut self,
        spec: &ScanSpec,
        wanted: &mut KeyFilter<'_>,
        sink: &mut RowSink<'_>,
    ) -> Result<(), SourceError> {
        match spec.ranges.is_empty() {
            true => self.0.scan_unordered_wanted(spec, wanted, sink),
            false => self.scan_unordered(spec, &mut wanted_only(spec, wanted, sink)),
        }
    }

    /// Handed on when the spec has no typed ranges: they test values,
    /// which an encoded scan does not build.
    fn scan_encoded(
        &mut self,
        spec: &ScanSpec,
        unordered: bool,
        opts: &CanonOptions,
        sink: &mut EncodedSink<'_>,
    ) -> Result<bool, SourceError> {
        match spec.ranges.is_empty() {
            true => self.0.scan_encoded(spec, unordered, opts, sink),
            false => Ok(false),
        }
    }

    fn fork(&mut self) -> Result<Option<Box<dyn Source>>, SourceError> {
        Ok(self.0.fork()?.map(Filtered::wrap))
    }

    fn ranges_find_every_row(&self, spec: &ScanSpec) -> bool {
        self.0.ranges_find_every_row(&widened(spec).0)
    }

    fn ranges_use_index(&mut self, spec: &ScanSpec) -> Result<bool, SourceError> {
        self.0.ranges_use_index(&widened(spec).0)
    }

    fn looks_up_keys(&mut self, spec: &ScanSpec) -> Result<bool, SourceError> {
        self.0.looks_up_keys(&widened(spec).0)
    }

    fn scan_keys(
        &mut self,
        spec: &ScanSpec,
        keys: &[Vec<Value>],
        sink: &mut RowSink<'_>,
    ) -> Result<bool, SourceError> {
        let inner = self.0.as_mut();
        let mut found = false;
        filtered(spec, sink, |spec, sink| {
            found = inner.scan_keys(spec, keys, sink)?;
            Ok(())
        })?;
        Ok(found)
    }

    fn scans_again_in_key_order(&self, spec: &ScanSpec) -> bool {
        self.0.scans_again_in_key_order(&widened(spec).0)
    }

    fn cheap_forks(&self) -> bool {
        self.0.cheap_forks()
    }

    fn estimate_rows(&mut self, table: &str) -> Option<u64> {
        self.0.estimate_rows(table)
    }

    /// The engine's own count holds only for SQL filters: typed ranges are
    /// applied here, so a table with any is counted by scanning it.
    fn count(&mut self, spec: &ScanSpec) -> Result<Option<u64>, SourceError> {
        match spec.ranges.is_empty() {
            true => self.0.count(spec),
            false => Ok(None),
        }
    }

    fn key_cuts(
        &mut self,
        spec: &ScanSpec,
        rows_per_range: u64,
    ) -> Result<Vec<Vec<Value>>, SourceError> {
        self.0.key_cuts(&widened(spec).0, rows_per_range)
    }
}
