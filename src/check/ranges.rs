//! Naming what differs inside the drifted key ranges, a chunk of ranges at
//! a time: each side's leaf entries name the differing keys, and only the
//! rows with those keys are compared value by value. A chunk holds at most
//! one agent request's worth of ranges and a bounded number of rows, and its
//! differences go to the sink before the next chunk is read, so memory does
//! not grow with the amount of drift.
//!
//! Where the entries and rows come from is a [`ChunkSide`]: an
//! [`Endpoint`] answering range reads, or a stream over one key-ordered scan
//! (see `merge`). What a chunk asks of its sides is counted in the wire
//! encoding whatever they are, so the cost reported for a local diff is
//! what the same diff through agents exchanges.

use driftsum_core::canon::CanonOptions;
use driftsum_core::diff::{entry_differences, DriftRange, KeyDiff};
use driftsum_core::key::KeyRange;
use driftsum_core::protocol as wire;
use driftsum_core::tree::Entry;
use driftsum_core::{key, Key, Value};

use super::endpoint::{Endpoint, Prepared};
use super::outcome::{PhaseCost, RangeOutcome, TableOutcome};
use super::sink::Found;
use crate::error::{CheckError, SourceError};
use crate::reconcile::{compare_rows, DiffKind, Difference, KeyedRow};
use crate::source::ScanSpec;
use crate::treefile::TreeFile;

/// Ranges a chunk holds at most: one entries request to an agent.
const CHUNK_RANGES: usize = wire::RANGES_BATCH;

/// Rows a chunk holds at most (the larger side's, summed over its ranges),
/// unless a single range holds more.
pub(super) const CHUNK_ROWS: u64 = 1 << 16;

/// One side as the reconciliation reads it.
pub(super) trait ChunkSide {
    /// The side's leaf entries in each of `ranges` (ascending, disjoint),
    /// each in key order; `None` when the side has none (a tree file built
    /// without entries).
    fn entries(&mut self, ranges: &[KeyRange]) -> Result<Option<Vec<Vec<Entry>>>, SourceError>;

    /// The side's rows with the keys of `groups` (ranges of the chunk last
    /// asked for entries), in key order; `None` when it holds no rows.
    fn rows(
        &mut self,
        groups: &[(Option<Key>, Vec<Key>)],
    ) -> Result<Option<Vec<KeyedRow>>, SourceError>;

    /// The tree file, when the side is one.
    fn file(&self) -> Option<&TreeFile>;
}

/// A side read through its [`Endpoint`]: range reads of a database, a tree
/// file's entries, an agent's pages.
pub(super) struct ByEndpoint<'e, 'a> {
    pub ep: &'e mut Endpoint<'a>,
    pub prepared: &'e mut Prepared,
    pub spec: &'e ScanSpec,
    pub opts: &'e CanonOptions,
}

impl ChunkSide for ByEndpoint<'_, '_> {
    fn entries(&mut self, ranges: &[KeyRange]) -> Result<Option<Vec<Vec<Entry>>>, SourceError> {
        self.ep.entries(self.prepared, self.spec, self.opts, ranges)
    }

    fn rows(
        &mut self,
        groups: &[(Option<Key>, Vec<Key>)],
    ) -> Result<Option<Vec<KeyedRow>>, SourceError> {
        self.ep.rows(self.prepared, self.spec, groups)
    }

    fn file(&self) -> Option<&TreeFile> {
        self.ep.file()
    }
}

/// What the reconciliation of one table works through.
#[derive(Clone, Copy)]
pub(super) struct Job<'j> {
    pub ranges: &'j [DriftRange],
    /// The same ranges as wire key ranges.
    pub keyed: &'j [KeyRange],
    pub nkey: usize,
    pub opts: &'j CanonOptions,
    /// One chunk for all ranges: a side read whole for each chunk (keys
    /// that do not come back in key order) is then read once.
    pub whole: bool,
}

/// The drifted ranges, cut into consecutive chunks.
pub(super) fn chunks(ranges: &[DriftRange], whole: bool) -> Vec<std::ops::Range<usize>> {
    if whole {
        return std::iter::once(0..ranges.len()).collect();
    }
    let mut out = Vec::new();
    let (mut start, mut rows) = (0, 0u64);
    for (i, r) in ranges.iter().enumerate() {
        let n = r.source_rows.max(r.target_rows);
        if i > start && (i - start == CHUNK_RANGES || rows + n > CHUNK_ROWS) {
            out.push(start..i);
            (start, rows) = (i, 0);
        }
        rows += n;
    }
    if start < ranges.len() {
        out.push(start..ranges.len());
    }
    out
}

fn key_values(k: &Key) -> Vec<Value> {
    key::decode(k.as_bytes()).unwrap_or_default()
}

pub(super) fn range_outcome(r: &DriftRange, first: Option<Key>) -> RangeOutcome {
    RangeOutcome {
        first: key_values(first.as_ref().unwrap_or(&r.range.through)),
        last: key_values(&r.range.through),
        source_rows: r.source_rows,
        target_rows: r.target_rows,
    }
}

/// What fetching one side's entries of the drifted ranges costs on the
/// wire: the pages an agent sends.
pub(super) fn entries_cost(cost: &mut PhaseCost, ranges: &[KeyRange], entries: &[Vec<Entry>]) {
    for (req, page, more) in wire::entry_pages(0, ranges, entries) {
        cost.round_trips += 1;
        cost.items += page.iter().map(Vec::len).sum::<usize>() as u64;
        cost.bytes += (req.encode().len() + wire::encode_entries(&page, more).len()) as u64;
    }
}

/// What fetching one side's rows by key costs on the wire. Pages and rows
/// are both in key order, so one pass over the rows serves every page.
pub(super) fn rows_cost(
    cost: &mut PhaseCost,
    groups: &[(Option<Key>, Vec<Key>)],
    rows: &[KeyedRow],
) {
    let mut at = 0;
    for req in wire::rows_pages(0, groups) {
        let mut found: Vec<Vec<Value>> = Vec::new();
        for k in req.groups.iter().flat_map(|g| &g.1) {
            while rows.get(at).is_some_and(|r| r.key < *k) {
                at += 1;
            }
            if let Some(r) = rows.get(at).filter(|r| r.key == *k) {
                found.push(r.values.clone());
                at += 1;
            }
        }
        cost.round_trips += 1;
        cost.items += found.len() as u64;
        cost.bytes += (req.encode().len() + wire::encode_rows(&found).len()) as u64;
    }
}

/// Deals key-sorted rows to the ranges (ascending) holding them.
fn split_by_ranges(rows: Vec<KeyedRow>, ranges: &[KeyRange]) -> Vec<Vec<KeyedRow>> {
    let mut out: Vec<Vec<KeyedRow>> = vec![Vec::new(); ranges.len()];
    let mut i = 0;
    for r in rows {
        while ranges.get(i).is_some_and(|g| g.through < r.key) {
            i += 1;
        }
        match ranges.get(i) {
            Some(g) if g.contains(r.key.as_bytes()) => out[i].push(r),
            Some(_) => {}
            None => break,
        }
    }
    out
}

/// Differences named by keys alone, when a side (a tree file) has no rows.
fn key_differences(diffs: &[(Key, KeyDiff)]) -> Vec<Difference> {
    diffs
        .iter()
        .map(|(k, d)| Difference {
            kind: match d {
                KeyDiff::SourceOnly => DiffKind::Missing,
                KeyDiff::TargetOnly => DiffKind::Extra,
                KeyDiff::Changed => DiffKind::Changed,
            },
            key: key_values(k),
            source: None,
            target: None,
            changed: Vec::new(),
            float_only: false,
        })
        .collect()
}

/// Names every difference in the job's ranges, chunk by chunk, into the
/// outcome and the sink.
pub(super) fn reconcile(
    sa: &mut dyn ChunkSide,
    sb: &mut dyn ChunkSide,
    job: &Job<'_>,
    outcome: &mut TableOutcome,
    found: &mut Found<'_>,
) -> Result<(), CheckError> {
    for span in chunks(job.ranges, job.whole) {
        let ranges = &job.ranges[span.clone()];
        let keyed = &job.keyed[span];
        let ea = sa.entries(keyed).map_err(CheckError::Source)?;
        let eb = sb.entries(keyed).map_err(CheckError::Target)?;
        for e in [&ea, &eb].into_iter().flatten() {
            entries_cost(&mut outcome.stats.transfer.entries, keyed, e);
        }
        let (Some(ea), Some(eb)) = (&ea, &eb) else {
            // A tree file without entries: the ranges are all that is known.
            for (i, r) in ranges.iter().enumerate() {
                let mut first = [&ea, &eb]
                    .into_iter()
                    .flatten()
                    .filter_map(|e| e[i].first().map(|e| e.key.clone()))
                    .min();
                for f in [sa.file(), sb.file()].into_iter().flatten() {
                    let k = f.first_key_after(r.range.after.as_ref()).ok().flatten();
                    first = first.into_iter().chain(k).min();
                }
                outcome.ranges.push(range_outcome(r, first));
            }
            continue;
        };
        // The walk found each range because its trees differ; if the entries
        // read back disagree with the trees' row counts, one side's reads
        // missed rows its tree holds (keys stored oddly, a snapshot that
        // moved). Saying "in sync" then would be a guess.
        for (i, r) in ranges.iter().enumerate() {
            for (side, entries, rows) in [
                ("source", &ea[i], r.source_rows),
                ("target", &eb[i], r.target_rows),
            ] {
                if entries.len() as u64 != rows {
                    return Err(CheckError::Unsure(format!(
                        "the {side}'s tree holds {rows} rows in a drifted key range, but {} were read back from it: \
                         its data changed during the comparison, or it holds keys its range reads cannot reach",
                        entries.len()
                    )));
                }
            }
        }
        // The differing keys of each range, and the keys each side is asked
        // for rows of, grouped by range.
        let diffs: Vec<Vec<(Key, KeyDiff)>> = ea
            .iter()
            .zip(eb)
            .map(|(x, y)| entry_differences(x, y))
            .collect();
        let groups = |side: KeyDiff| -> Vec<(Option<Key>, Vec<Key>)> {
            keyed
                .iter()
                .zip(&diffs)
                .filter_map(|(r, d)| {
                    let keys: Vec<Key> = d
                        .iter()
                        .filter(|(_, k)| *k == side || *k == KeyDiff::Changed)
                        .map(|(k, _)| k.clone())
                        .collect();
                    (!keys.is_empty()).then(|| (r.after.clone(), keys))
                })
                .collect()
        };
        let (ga, gb) = (groups(KeyDiff::SourceOnly), groups(KeyDiff::TargetOnly));
        let ra = match ga.is_empty() {
            true => Some(Vec::new()),
            false => sa.rows(&ga).map_err(CheckError::Source)?,
        };
        let rb = match gb.is_empty() {
            true => Some(Vec::new()),
            false => sb.rows(&gb).map_err(CheckError::Target)?,
        };
        let rows = match (ra, rb) {
            (Some(ra), Some(rb)) => {
                let transfer = &mut outcome.stats.transfer;
                rows_cost(&mut transfer.rows, &ga, &ra);
                rows_cost(&mut transfer.rows, &gb, &rb);
                Some((split_by_ranges(ra, keyed), split_by_ranges(rb, keyed)))
            }
            _ => None,
        };
        let mut rows = rows;
        for (i, r) in ranges.iter().enumerate() {
            if diffs[i].is_empty() {
                continue;
            }
            let here = match &mut rows {
                Some((ra, rb)) => compare_rows(
                    std::mem::take(&mut ra[i]),
                    std::mem::take(&mut rb[i]),
                    job.nkey,
                    job.opts,
                ),
                None => key_differences(&diffs[i]),
            };
            // With --float-digits, a range can hold only tolerated float
            // differences: it is then not drift.
            if here.is_empty() {
                continue;
            }
            let first = [&ea[i], &eb[i]]
                .into_iter()
                .filter_map(|e| e.first().map(|e| e.key.clone()))
                .min();
            for d in here {
                found.emit(outcome, d).map_err(CheckError::Output)?;
            }
            outcome.ranges.push(range_outcome(r, first));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn range(after: Option<i64>, through: i64, rows: u64) -> DriftRange {
        let k = |i: i64| key::encode(&[Value::Int(i.into())]);
        DriftRange {
            range: KeyRange {
                after: after.map(k),
                through: k(through),
            },
            source_rows: rows,
            target_rows: rows / 2,
        }
    }

    /// Chunks cover every range once, in order, within both limits (a
    /// range bigger than the row limit alone in its chunk).
    #[test]
    fn chunks_cover_the_ranges_within_limits() {
        let mut ranges = Vec::new();
        for i in 0..5000i64 {
            let rows = match i % 997 {
                0 => CHUNK_ROWS * 2,
                n => (n as u64 % 40) + 1,
            };
            ranges.push(range((i > 0).then(|| i * 10 - 10), i * 10, rows));
        }
        let cut = chunks(&ranges, false);
        let mut next = 0;
        for c in &cut {
            assert_eq!(c.start, next);
            assert!(c.end > c.start && c.end - c.start <= CHUNK_RANGES);
            let rows: u64 = ranges[c.clone()].iter().map(|r| r.source_rows).sum();
            assert!(rows <= CHUNK_ROWS || c.len() == 1, "{c:?}: {rows} rows");
            next = c.end;
        }
        assert_eq!(next, ranges.len());
        let whole = chunks(&ranges, true);
        assert_eq!((whole.len(), whole[0].clone()), (1, 0..ranges.len()));
        assert!(chunks(&[], false).is_empty());
    }

    fn row(i: i64) -> KeyedRow {
        let values = vec![Value::Int(i.into()), Value::Text(format!("v{i}"))];
        KeyedRow {
            key: key::encode(&values[..1]),
            values,
        }
    }

    /// Rows go to the range holding them; rows between ranges go nowhere.
    #[test]
    fn rows_are_dealt_to_their_ranges() {
        let keyed: Vec<KeyRange> = [range(None, 3, 0), range(Some(5), 8, 0)]
            .into_iter()
            .map(|r| r.range)
            .collect();
        let rows: Vec<KeyedRow> = (0..12).map(row).collect();
        let keys = |v: &[KeyedRow]| -> Vec<Key> { v.iter().map(|r| r.key.clone()).collect() };
        let split = split_by_ranges(rows.clone(), &keyed);
        assert_eq!(keys(&split[0]), keys(&rows[0..4]));
        assert_eq!(keys(&split[1]), keys(&rows[6..9]));
    }

    /// The one-pass cost of rows by key is what pairing every page with
    /// its rows by search costs.
    #[test]
    fn rows_cost_matches_a_search_per_page() {
        let rows: Vec<KeyedRow> = (0..5000).filter(|i| i % 3 != 0).map(row).collect();
        let groups: Vec<(Option<Key>, Vec<Key>)> = (0..50i64)
            .map(|g| {
                let keys = (g * 100..g * 100 + 100)
                    .filter(|i| i % 7 != 0)
                    .map(|i| row(i).key)
                    .collect();
                (None, keys)
            })
            .collect();
        let mut fast = PhaseCost::default();
        rows_cost(&mut fast, &groups, &rows);
        let mut slow = PhaseCost::default();
        for req in wire::rows_pages(0, &groups) {
            let keys: Vec<&Key> = req.groups.iter().flat_map(|g| &g.1).collect();
            let found: Vec<Vec<Value>> = rows
                .iter()
                .filter(|r| keys.binary_search(&&r.key).is_ok())
                .map(|r| r.values.clone())
                .collect();
            slow.round_trips += 1;
            slow.items += found.len() as u64;
            slow.bytes += (req.encode().len() + wire::encode_rows(&found).len()) as u64;
        }
        assert_eq!(fast, slow);
        assert!(fast.round_trips > 1 && fast.items > 2000);
    }
}
