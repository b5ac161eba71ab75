//! Where a run's differences go as they are found. A report written while
//! the rows are compared holds one difference at a time, so a table where
//! every row drifted costs no more memory than one in sync; the outcome
//! keeps only a sample and exact counts (see `DiffOptions::keep_differences`).

use std::io;

use super::outcome::TableOutcome;
use crate::reconcile::Difference;

/// Receives a run's tables, in report order, and each table's differences,
/// in key order, as they are found.
pub trait DiffSink {
    /// A table's comparison begins: its names are known, nothing else yet.
    fn table_started(&mut self, _table: &TableOutcome) -> io::Result<()> {
        Ok(())
    }

    /// One difference of the table last started.
    fn difference(&mut self, table: &TableOutcome, d: &Difference) -> io::Result<()>;

    /// The table is done and its outcome final (counts, ranges, statistics,
    /// or the error that stopped it after the differences already given).
    fn table_finished(&mut self, _table: &TableOutcome) -> io::Result<()> {
        Ok(())
    }
}

/// A sink that keeps nothing: the outcome's own list is all there is.
pub struct Discard;

impl DiffSink for Discard {
    fn difference(&mut self, _: &TableOutcome, _: &Difference) -> io::Result<()> {
        Ok(())
    }
}

/// Where one table's differences go: the sink, and the outcome's sample.
pub(super) struct Found<'s> {
    pub sink: &'s mut dyn DiffSink,
    pub keep: Option<usize>,
}

impl Found<'_> {
    /// Hands `d` to the sink, then counts it (and keeps it while the sample
    /// has room).
    pub fn emit(&mut self, outcome: &mut TableOutcome, d: Difference) -> io::Result<()> {
        self.sink.difference(outcome, &d)?;
        outcome.record(d, self.keep);
        Ok(())
    }

    /// [`emit`](Found::emit) for a difference the caller goes on using
    /// (its room reused for the next one): copied only if kept.
    pub fn emit_borrowed(&mut self, outcome: &mut TableOutcome, d: &Difference) -> io::Result<()> {
        self.sink.difference(outcome, d)?;
        outcome.record_borrowed(d, self.keep);
        Ok(())
    }
}
