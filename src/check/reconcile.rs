//! Naming what differs inside the drifted key ranges, a chunk of ranges at
//! a time: each side's leaf entries name the differing keys, and only the
//! rows with those keys are compared value by value. A chunk holds at most
//! one agent request's worth of ranges and a bounded number of rows, and its
//! differences go to the sink before the next chunk is read, so memory does
//! not grow with the amount of drift.
//!
//! The entries and rows come from each side's range reads (see
//! `prepared`). What a chunk asks of its sides is counted in the wire
//! encoding whatever they are, so the cost reported for a local diff is
//! what the same diff through agents exchanges; the streamed comparison
//! (see `stream`) reports what the same chunks would have asked.

use driftsum_core::canon::CanonOptions;
use driftsum_core::diff::{entry_differences, DriftRange, KeyDiff};
use driftsum_core::key::KeyRange;
use driftsum_core::protocol as wire;
use driftsum_core::tree::Entry;
use driftsum_core::{key, Key, Value};

use super::outcome::{PhaseCost, RangeOutcome, TableOutcome};
use super::prepared::Prepared;
use super::sink::Found;
use crate::error::CheckError;
use crate::reconcile::{compare_rows, DiffKind, Difference, KeyedRow};

/// Ranges a chunk holds at most: one entries request to an agent.
const CHUNK_RANGES: usize = wire::RANGES_BATCH;

/// Rows a chunk holds at most (the larger side's, summed over its ranges),
/// unless a single range holds more.
pub(super) const CHUNK_ROWS: u64 = 1 << 16;

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
        after: r.range.after.as_ref().map(key_values),
        first: key_values(first.as_ref().unwrap_or(&r.range.through)),
        last: key_values(&r.range.through),
        source_rows: r.source_rows,
        target_rows: r.target_rows,
    }
}

/// What fetching one side's entries of the drifted ranges costs on the
/// wire: the pages an agent sends.
fn entries_cost(cost: &mut PhaseCost, ranges: &[KeyRange], entries: &[Vec<Entry>]) {
    for (req, page, _more) in wire::entry_pages(0, ranges, entries) {
        cost.round_trips += 1;
        cost.items += page.iter().map(|p| p.len()).sum::<usize>() as u64;
        cost.bytes += (req.encode().len() + wire::encoded_entries_len(&page)) as u64;
    }
}

/// What fetching one side's rows by key costs on the wire. Pages and rows
/// are both in key order, so one pass over the rows serves every page.
fn rows_cost(cost: &mut PhaseCost, groups: &[(Option<Key>, Vec<Key>)], rows: &[KeyedRow]) {
    let mut at = 0;
    for req in wire::rows_pages(0, groups) {
        let mut found: Vec<&[Value]> = Vec::new();
        for k in req.groups.iter().flat_map(|g| &g.1) {
            while rows.get(at).is_some_and(|r| r.key < *k) {
                at += 1;
            }
            if let Some(r) = rows.get(at).filter(|r| r.key == *k) {
                found.push(&r.values);
                at += 1;
            }
        }
        cost.round_trips += 1;
        cost.items += found.len() as u64;
        cost.bytes += (req.encoded_len() + wire::encoded_rows_len(found.into_iter())) as u64;
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
    source: &mut Prepared<'_>,
    target: &mut Prepared<'_>,
    job: &Job<'_>,
    outcome: &mut TableOutcome,
    found: &mut Found<'_>,
) -> Result<(), CheckError> {
    for span in chunks(job.ranges, job.whole) {
        let chunk = Job {
            ranges: &job.ranges[span.clone()],
            keyed: &job.keyed[span],
            ..*job
        };
        reconcile_chunk(source, target, &chunk, outcome, found)?;
    }
    Ok(())
}

/// Per range of a chunk: each side's leaf entries.
type ChunkEntries = Vec<Vec<Entry>>;
/// Per range: its differing keys, and on which side they differ.
type KeyDiffs = Vec<Vec<(Key, KeyDiff)>>;
/// Keys to read rows of, grouped by range (with the range's lower bound).
type KeyGroups = Vec<(Option<Key>, Vec<Key>)>;
/// Per range: the source's rows and the target's rows read.
type RangeRows = (Vec<Vec<KeyedRow>>, Vec<Vec<KeyedRow>>);

/// One chunk: read both sides' entries, name the differing keys, read the
/// rows with those keys, and compare them value by value.
fn reconcile_chunk(
    source: &mut Prepared<'_>,
    target: &mut Prepared<'_>,
    chunk: &Job<'_>,
    outcome: &mut TableOutcome,
    found: &mut Found<'_>,
) -> Result<(), CheckError> {
    let source_entries = source.entries(chunk.keyed).map_err(CheckError::Source)?;
    let target_entries = target.entries(chunk.keyed).map_err(CheckError::Target)?;
    for e in [&source_entries, &target_entries].into_iter().flatten() {
        entries_cost(&mut outcome.stats.transfer.entries, chunk.keyed, e);
    }
    let (Some(source_entries), Some(target_entries)) = (&source_entries, &target_entries) else {
        let read = [&source_entries, &target_entries];
        ranges_alone(source, target, chunk, read, outcome);
        return Ok(());
    };
    counts_agree(chunk.ranges, source_entries, target_entries)?;
    let diffs: KeyDiffs = source_entries
        .iter()
        .zip(target_entries)
        .map(|(s, t)| entry_differences(s, t))
        .collect();
    let rows = fetch_rows(source, target, chunk.keyed, &diffs, outcome)?;
    let entries = (source_entries, target_entries);
    emit_differences(chunk, &diffs, rows, entries, outcome, found)
}

/// When a side (a tree file without entries) cannot name keys: the drifted
/// ranges are all that is known, each with the first key any side knows.
fn ranges_alone(
    source: &Prepared<'_>,
    target: &Prepared<'_>,
    chunk: &Job<'_>,
    read: [&Option<ChunkEntries>; 2],
    outcome: &mut TableOutcome,
) {
    for (i, r) in chunk.ranges.iter().enumerate() {
        let mut first = read
            .into_iter()
            .flatten()
            .filter_map(|e| e[i].first().map(|e| e.key.clone()))
            .min();
        for f in [source.file(), target.file()].into_iter().flatten() {
            let k = f.first_key_after(r.range.after.as_ref()).ok().flatten();
            first = first.into_iter().chain(k).min();
        }
        outcome.ranges.push(range_outcome(r, first));
    }
}

/// The walk found each range because its trees differ; if the entries read
/// back disagree with the trees' row counts, one side's reads missed rows
/// its tree holds (keys stored oddly, a snapshot that moved). Saying "in
/// sync" then would be a guess.
fn counts_agree(
    ranges: &[DriftRange],
    source: &ChunkEntries,
    target: &ChunkEntries,
) -> Result<(), CheckError> {
    for (i, r) in ranges.iter().enumerate() {
        for (side, entries, rows) in [
            ("source", &source[i], r.source_rows),
            ("target", &target[i], r.target_rows),
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
    Ok(())
}

/// The keys one side is asked for rows of (those only it holds, and those
/// both hold with different rows), grouped by range.
fn keys_to_fetch(keyed: &[KeyRange], diffs: &KeyDiffs, only_here: KeyDiff) -> KeyGroups {
    keyed
        .iter()
        .zip(diffs)
        .filter_map(|(r, d)| {
            let keys: Vec<Key> = d
                .iter()
                .filter(|(_, k)| *k == only_here || *k == KeyDiff::Changed)
                .map(|(k, _)| k.clone())
                .collect();
            (!keys.is_empty()).then(|| (r.after.clone(), keys))
        })
        .collect()
}

/// Both sides' rows with the differing keys, dealt to their ranges; `None`
/// when a side holds no rows (a tree file).
fn fetch_rows(
    source: &mut Prepared<'_>,
    target: &mut Prepared<'_>,
    keyed: &[KeyRange],
    diffs: &KeyDiffs,
    outcome: &mut TableOutcome,
) -> Result<Option<RangeRows>, CheckError> {
    let source_keys = keys_to_fetch(keyed, diffs, KeyDiff::SourceOnly);
    let target_keys = keys_to_fetch(keyed, diffs, KeyDiff::TargetOnly);
    let source_rows = match source_keys.is_empty() {
        true => Some(Vec::new()),
        false => source.rows(&source_keys).map_err(CheckError::Source)?,
    };
    let target_rows = match target_keys.is_empty() {
        true => Some(Vec::new()),
        false => target.rows(&target_keys).map_err(CheckError::Target)?,
    };
    let (Some(source_rows), Some(target_rows)) = (source_rows, target_rows) else {
        return Ok(None);
    };
    all_read("source", &source_keys, &source_rows)?;
    all_read("target", &target_keys, &target_rows)?;
    let transfer = &mut outcome.stats.transfer;
    rows_cost(&mut transfer.rows, &source_keys, &source_rows);
    rows_cost(&mut transfer.rows, &target_keys, &target_rows);
    Ok(Some((
        split_by_ranges(source_rows, keyed),
        split_by_ranges(target_rows, keyed),
    )))
}

/// Every key a side was asked for is one its entries hold (see
/// [`keys_to_fetch`]), so its rows must all come back: a row missing from
/// them would otherwise pass for absent on that side, and its difference
/// for none.
fn all_read(side: &str, asked: &KeyGroups, rows: &[KeyedRow]) -> Result<(), CheckError> {
    let keys: usize = asked.iter().map(|g| g.1.len()).sum();
    if rows.len() == keys {
        return Ok(());
    }
    Err(CheckError::Unsure(format!(
        "the {side}'s entries hold {keys} rows whose keys differ, but {} were read back: \
         its data changed during the comparison, or it holds keys its reads cannot reach",
        rows.len()
    )))
}

/// Names each range's differences (by value where rows were read, by key
/// alone otherwise) into the outcome and the sink.
fn emit_differences(
    chunk: &Job<'_>,
    diffs: &KeyDiffs,
    mut rows: Option<RangeRows>,
    (source_entries, target_entries): (&ChunkEntries, &ChunkEntries),
    outcome: &mut TableOutcome,
    found: &mut Found<'_>,
) -> Result<(), CheckError> {
    for (i, r) in chunk.ranges.iter().enumerate() {
        if diffs[i].is_empty() {
            continue;
        }
        let here = match &mut rows {
            Some((source_rows, target_rows)) => compare_rows(
                std::mem::take(&mut source_rows[i]),
                std::mem::take(&mut target_rows[i]),
                chunk.nkey,
                chunk.opts,
            ),
            None => key_differences(&diffs[i]),
        };
        // With --float-digits, a range can hold only tolerated float
        // differences: it is then not drift.
        if here.is_empty() {
            continue;
        }
        let first = [&source_entries[i], &target_entries[i]]
            .into_iter()
            .filter_map(|e| e.first().map(|e| e.key.clone()))
            .min();
        for d in here {
            found.emit(outcome, d).map_err(CheckError::Output)?;
        }
        outcome.ranges.push(range_outcome(r, first));
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
