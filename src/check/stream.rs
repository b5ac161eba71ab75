//! The drifted ranges of two databases read by one scan of each side, when
//! so much drifted that reading range by range would cost more: a thread per
//! side scans its table in key order and streams the rows inside drifted
//! ranges (with their row hashes) through a bounded channel, and the
//! comparison takes them a piece of a range at a time. Memory holds a piece
//! and the channels, whatever the table's size.

use std::collections::VecDeque;
use std::ops::ControlFlow;
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};

use driftsum_core::canon::{self, CanonOptions};
use driftsum_core::diff::{DriftRange, KeyDiff};
use driftsum_core::key::KeyRange;
use driftsum_core::tree::{Entry, HashPrefix};
use driftsum_core::Key;

use super::outcome::TableOutcome;
use super::reconcile::{
    self, chunks, entries_cost, range_outcome, rows_cost, ChunkSide, Job, CHUNK_ROWS,
};
use super::sink::Found;
use crate::build::row_hasher;
use crate::error::{CheckError, SourceError};
use crate::reconcile::{compare_rows, KeyedRow};
use crate::source::{ScanSpec, Source};
use crate::treefile::TreeFile;

/// Rows a scanning thread sends at a time.
const BATCH_ROWS: usize = 1024;
/// Batches in flight per side; the scan waits when the comparison is behind.
const BATCHES_AHEAD: usize = 8;

type Item = (KeyedRow, HashPrefix);
type Batch = Result<Vec<Item>, SourceError>;

/// Whether a drifted range is compared a piece at a time ([`pieces`]),
/// by its rows' values, rather than with others by their row hashes: when
/// it holds more rows than one chunk. Such a range is always a chunk of its
/// own (see [`chunks`]).
pub(super) fn in_pieces(r: &DriftRange) -> bool {
    r.source_rows.max(r.target_rows) > CHUNK_ROWS
}

/// Scans `source` in key order, sending the rows that fall in `ranges`
/// (ascending, disjoint), and stops after the last range. Rows of ranges
/// compared by hashes carry their hash prefixes; rows of ranges compared
/// [`in_pieces`] (`pieces[i]`) by their values carry none, since hashing
/// them would be a second hash of every row when most of a table drifted.
/// Returns the rows read. A failure is sent as the last message; a closed
/// channel (the comparison stopped) ends the scan quietly.
pub(super) fn stream_side(
    source: &mut dyn Source,
    spec: &ScanSpec,
    opts: &CanonOptions,
    ranges: &[KeyRange],
    pieces: &[bool],
    tx: SyncSender<Batch>,
) -> u64 {
    let mut hasher = row_hasher(spec, opts);
    let (mut read, mut at) = (0u64, 0usize);
    let mut prev: Vec<u8> = Vec::new();
    let mut batch: Vec<Item> = Vec::with_capacity(BATCH_ROWS);
    let (mut closed, mut past_end, mut disorder) = (false, false, false);
    let scanned = source.scan(spec, None, &mut |row| {
        let k = hasher.key(row);
        // The first pass saw this order; a scan that breaks it now cannot
        // be merged (and the range counts would not add up either).
        if read > 0 && k <= prev.as_slice() {
            disorder = true;
            return ControlFlow::Break(());
        }
        read += 1;
        prev.clear();
        prev.extend_from_slice(k);
        while ranges.get(at).is_some_and(|r| r.through.as_bytes() < k) {
            at += 1;
        }
        let Some(range) = ranges.get(at) else {
            past_end = true;
            return ControlFlow::Break(());
        };
        if !range.contains(k) {
            return ControlFlow::Continue(());
        }
        let key = Key::from_bytes(k);
        let hash = match pieces.get(at) {
            Some(true) => HashPrefix::default(),
            _ => HashPrefix::from(&hasher.row_hash(row)),
        };
        batch.push((
            KeyedRow {
                key,
                values: row.to_vec(),
            },
            hash,
        ));
        if batch.len() == BATCH_ROWS
            && tx
                .send(Ok(std::mem::replace(
                    &mut batch,
                    Vec::with_capacity(BATCH_ROWS),
                )))
                .is_err()
        {
            closed = true;
            return ControlFlow::Break(());
        }
        ControlFlow::Continue(())
    });
    if closed {
        return read;
    }
    let last = match scanned {
        _ if disorder => Err(SourceError::Other(
            "its rows stopped coming back in key order during the comparison".into(),
        )),
        Err(e) if !past_end => Err(e),
        _ => Ok(batch),
    };
    let _ = tx.send(last);
    read
}

/// A channel for [`stream_side`].
pub(super) fn channel() -> (SyncSender<Batch>, Receiver<Batch>) {
    sync_channel(BATCHES_AHEAD)
}

/// Rows of each side a piece of a drifted range holds at most: a range can
/// span the whole table (adjacent drifted leaves are one range).
const PIECE_ROWS: usize = CHUNK_ROWS as usize;

/// One side's stream, read range by range, a piece at a time.
pub(super) struct Streamed {
    rx: Receiver<Batch>,
    ahead: VecDeque<Item>,
    ended: bool,
    /// The rows of the chunk last read for its entries, for rows by key.
    cached: Vec<KeyedRow>,
}

impl Streamed {
    pub fn new(rx: Receiver<Batch>) -> Streamed {
        Streamed {
            rx,
            ahead: VecDeque::new(),
            ended: false,
            cached: Vec::new(),
        }
    }

    /// Reads ahead until `n` rows wait or the scan has ended.
    fn fill(&mut self, n: usize) -> Result<(), SourceError> {
        while self.ahead.len() < n && !self.ended {
            match self.rx.recv() {
                Ok(Ok(batch)) => self.ahead.extend(batch),
                Ok(Err(e)) => return Err(e),
                // The scan ended (or its thread died): whatever is missing
                // shows as ranges whose counts do not add up.
                Err(_) => self.ended = true,
            }
        }
        Ok(())
    }

    /// The key of the `n`th row waiting, if it is still in `r`.
    fn nth_in(&mut self, r: &KeyRange, n: usize) -> Result<Option<Key>, SourceError> {
        self.fill(n)?;
        Ok(self
            .ahead
            .get(n - 1)
            .filter(|(row, _)| row.key <= r.through)
            .map(|(row, _)| row.key.clone()))
    }

    /// The rows with keys up to `through`, reading on as far as needed.
    fn take_through_reading(&mut self, through: &Key) -> Result<Vec<Item>, SourceError> {
        let mut out = Vec::new();
        loop {
            out.extend(self.take_through(through));
            if !self.ahead.is_empty() || self.ended {
                return Ok(out);
            }
            self.fill(1)?;
        }
    }

    /// The waiting rows with keys up to `through`.
    fn take_through(&mut self, through: &Key) -> Vec<Item> {
        let n = self
            .ahead
            .iter()
            .position(|(row, _)| row.key > *through)
            .unwrap_or(self.ahead.len());
        self.ahead.drain(..n).collect()
    }
}

/// The keys that differ between two key-ordered pieces, as
/// [`driftsum_core::diff::entry_differences`] names them from row hashes, but from the rows'
/// values: two rows are the same exactly when their row hashes are (every
/// value encodes alike), so no row need be hashed.
fn value_differences(
    source: &[Item],
    target: &[Item],
    nkey: usize,
    opts: &CanonOptions,
) -> Vec<(Key, KeyDiff)> {
    let same = |a: &KeyedRow, b: &KeyedRow| {
        a.values.len() == b.values.len()
            && a.values[nkey..]
                .iter()
                .zip(&b.values[nkey..])
                .all(|(x, y)| canon::values_equal(x, y, opts))
    };
    let mut out = Vec::new();
    let (mut s, mut t) = (source.iter().peekable(), target.iter().peekable());
    loop {
        let order = match (s.peek(), t.peek()) {
            (Some((a, _)), Some((b, _))) => a.key.cmp(&b.key),
            (Some(_), None) => std::cmp::Ordering::Less,
            (None, Some(_)) => std::cmp::Ordering::Greater,
            (None, None) => return out,
        };
        match order {
            std::cmp::Ordering::Less => {
                let (a, _) = s.next().expect("peeked");
                out.push((a.key.clone(), KeyDiff::SourceOnly));
            }
            std::cmp::Ordering::Greater => {
                let (b, _) = t.next().expect("peeked");
                out.push((b.key.clone(), KeyDiff::TargetOnly));
            }
            std::cmp::Ordering::Equal => {
                let ((a, _), (b, _)) = (s.next().expect("peeked"), t.next().expect("peeked"));
                if !same(a, b) {
                    out.push((a.key.clone(), KeyDiff::Changed));
                }
            }
        }
    }
}

/// The rows of `items` whose keys `diffs` names for this side (both in key
/// order: one pass).
fn wanted(items: Vec<Item>, diffs: &[(Key, KeyDiff)], side: KeyDiff) -> Vec<KeyedRow> {
    let mut keys = diffs
        .iter()
        .filter(|(_, d)| *d == side || *d == KeyDiff::Changed)
        .map(|(k, _)| k)
        .peekable();
    let mut out = Vec::new();
    for (row, _) in items {
        while keys.next_if(|k| **k < row.key).is_some() {}
        if keys.next_if(|k| **k == row.key).is_some() {
            out.push(row);
        }
    }
    out
}

impl ChunkSide for Streamed {
    fn entries(&mut self, ranges: &[KeyRange]) -> Result<Option<Vec<Vec<Entry>>>, SourceError> {
        self.cached.clear();
        let mut out = Vec::with_capacity(ranges.len());
        for r in ranges {
            let mut entries = Vec::new();
            for (row, hash) in self.take_through_reading(&r.through)? {
                // Rows are sent only from inside ranges, and ranges are read
                // in order: one before this range belongs to none asked for.
                if r.contains(row.key.as_bytes()) {
                    entries.push(Entry {
                        key: row.key.clone(),
                        hash,
                    });
                    self.cached.push(row);
                }
            }
            out.push(entries);
        }
        Ok(Some(out))
    }

    fn rows(
        &mut self,
        groups: &[(Option<Key>, Vec<Key>)],
    ) -> Result<Option<Vec<KeyedRow>>, SourceError> {
        let mut keys = groups.iter().flat_map(|g| &g.1).peekable();
        let mut out = Vec::new();
        for row in std::mem::take(&mut self.cached) {
            while keys.next_if(|k| **k < row.key).is_some() {}
            if keys.next_if(|k| **k == row.key).is_some() {
                out.push(row);
            }
        }
        Ok(Some(out))
    }

    fn file(&self) -> Option<&TreeFile> {
        None
    }
}

/// Names every difference in the job's ranges from the two streams. Chunks
/// of ranges go through the same reconciliation (and costing) as range
/// reads; a range too big for one chunk is compared a piece of at most
/// [`PIECE_ROWS`] rows per side at a time, costed as those pieces asked of
/// agents would be.
pub(super) fn reconcile(
    source: &mut Streamed,
    target: &mut Streamed,
    job: &Job<'_>,
    outcome: &mut TableOutcome,
    found: &mut Found<'_>,
) -> Result<(), CheckError> {
    for span in chunks(job.ranges, false) {
        let r = &job.ranges[span.start];
        if span.len() > 1 || !in_pieces(r) {
            let chunk = Job {
                ranges: &job.ranges[span.clone()],
                keyed: &job.keyed[span],
                whole: true,
                ..*job
            };
            reconcile::reconcile(source, target, &chunk, outcome, found)?;
        } else {
            pieces(source, target, job, span.start, outcome, found)?;
        }
    }
    Ok(())
}

/// Compares range `i` of the job a piece at a time.
fn pieces(
    source: &mut Streamed,
    target: &mut Streamed,
    job: &Job<'_>,
    i: usize,
    outcome: &mut TableOutcome,
    found: &mut Found<'_>,
) -> Result<(), CheckError> {
    {
        let (r, k) = (&job.ranges[i], &job.keyed[i]);
        let (mut source_read, mut target_read) = (0u64, 0u64);
        let mut first: Option<Key> = None;
        let mut drifted = false;
        let mut after = k.after.clone();
        loop {
            let cut = [
                source.nth_in(k, PIECE_ROWS).map_err(CheckError::Source)?,
                target.nth_in(k, PIECE_ROWS).map_err(CheckError::Target)?,
            ]
            .into_iter()
            .flatten()
            .min();
            let through = cut.unwrap_or_else(|| k.through.clone());
            let piece = [KeyRange {
                after: after.clone(),
                through: through.clone(),
            }];
            let (source_items, target_items) =
                (source.take_through(&through), target.take_through(&through));
            source_read += source_items.len() as u64;
            target_read += target_items.len() as u64;
            let entries = |items: &[Item]| -> Vec<Vec<Entry>> {
                vec![items
                    .iter()
                    .map(|(row, hash)| Entry {
                        key: row.key.clone(),
                        hash: *hash,
                    })
                    .collect()]
            };
            let (source_entries, target_entries) = (entries(&source_items), entries(&target_items));
            let transfer = &mut outcome.stats.transfer;
            entries_cost(&mut transfer.entries, &piece, &source_entries);
            entries_cost(&mut transfer.entries, &piece, &target_entries);
            let piece_first = [&source_entries[0], &target_entries[0]]
                .into_iter()
                .filter_map(|e| e.first().map(|e| e.key.clone()))
                .min();
            first = first.into_iter().chain(piece_first).min();
            let diffs = value_differences(&source_items, &target_items, job.nkey, job.opts);
            if !diffs.is_empty() {
                let (source_rows, target_rows) = (
                    wanted(source_items, &diffs, KeyDiff::SourceOnly),
                    wanted(target_items, &diffs, KeyDiff::TargetOnly),
                );
                for (rows, keys) in [
                    (&source_rows, KeyDiff::SourceOnly),
                    (&target_rows, KeyDiff::TargetOnly),
                ] {
                    let keys: Vec<Key> = diffs
                        .iter()
                        .filter(|(_, d)| *d == keys || *d == KeyDiff::Changed)
                        .map(|(k, _)| k.clone())
                        .collect();
                    if !keys.is_empty() {
                        rows_cost(&mut transfer.rows, &[(after.clone(), keys)], rows);
                    }
                }
                for d in compare_rows(source_rows, target_rows, job.nkey, job.opts) {
                    drifted = true;
                    found.emit(outcome, d).map_err(CheckError::Output)?;
                }
            }
            if through == k.through {
                break;
            }
            after = Some(through);
        }
        // As for range reads: rows the trees hold that the scan did not
        // deliver (or the reverse) make any answer a guess.
        for (side, read, rows) in [
            ("source", source_read, r.source_rows),
            ("target", target_read, r.target_rows),
        ] {
            if read != rows {
                return Err(CheckError::Unsure(format!(
                    "the {side}'s tree holds {rows} rows in a drifted key range, but {read} were read back from it: \
                     its data changed during the comparison, or it holds keys its scan cannot reach"
                )));
            }
        }
        if drifted {
            outcome.ranges.push(range_outcome(r, first));
        }
    }
    Ok(())
}
