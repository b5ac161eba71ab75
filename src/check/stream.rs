//! The drifted ranges of two databases read by one scan of each side, when
//! so much drifted that reading range by range would cost more: a thread per
//! side scans its table in key order and streams the rows inside drifted
//! ranges (their wire bytes) through a bounded channel, and the comparison
//! takes them a piece of a range at a time, decoding only rows whose bytes
//! differ. Memory holds a piece and the channels, whatever the table's size
//! and however wide its rows.

use std::collections::VecDeque;
use std::ops::{ControlFlow, Range};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};

use driftsum_core::canon::{self, CanonOptions};
use driftsum_core::diff::DriftRange;
use driftsum_core::key::KeyRange;
use driftsum_core::merge::{merge_by, Paired};
use driftsum_core::protocol::{self as wire, EntriesMeter, RowsMeter};
use driftsum_core::tree::HASH_PREFIX_LEN;
use driftsum_core::{Key, Value};

use super::outcome::TableOutcome;
use super::reconcile::{chunks, range_outcome, Job, CHUNK_ROWS};
use super::sink::Found;
use crate::build::row_hasher;
use crate::error::{CheckError, SourceError};
use crate::reconcile::{Difference, KeyedRow};
use crate::source::{ScanSpec, Source};

/// Rows a scanning thread sends at a time.
const BATCH_ROWS: usize = 1024;
/// Batches in flight per side; the scan waits when the comparison is behind.
/// A piece's worth, so that the scans read the next piece while the
/// comparison works through one (fewer leave a core idle by turns). Rows
/// wait as wire bytes, and [`CHANNEL_BYTES`] bounds them whatever their
/// width.
const BATCHES_AHEAD: usize = PIECE_ROWS / BATCH_ROWS;

/// Bytes of rows a batch holds at most, whatever its number of rows: wide
/// rows make smaller batches.
const BATCH_BYTES: usize = 512 << 10;

/// Bytes of rows waiting in a side's channel at most (or one batch, if
/// bigger): a row wider than [`BATCH_BYTES`] is a batch of its own, so
/// [`BATCHES_AHEAD`] batches alone would hold that many such rows.
const CHANNEL_BYTES: usize = 16 << 20;

/// A streamed row.
pub(super) struct Item {
    key: Key,
    /// The wire bytes of the row's batch (see [`Packer`]), and where the
    /// row's are.
    batch: Arc<[u8]>,
    at: Range<usize>,
}

impl Item {
    /// The row's values as [`wire::encode_row`] writes them: what fetching
    /// it by key would cost.
    fn wire(&self) -> &[u8] {
        &self.batch[self.at.clone()]
    }

    /// What the row holds in memory, as the limits count it: its wire
    /// bytes and its key (held apart, so a wide key counts twice).
    fn bytes(&self) -> usize {
        self.at.len() + self.key.as_bytes().len()
    }

    /// The row's values, from its wire bytes.
    fn row(&self, width: usize) -> Result<KeyedRow, SourceError> {
        let values = wire::decode_row(self.wire(), width)
            .map_err(|e| SourceError::Other(format!("a streamed row did not read back: {e}")))?;
        Ok(KeyedRow {
            key: self.key.clone(),
            values,
        })
    }
}

type Batch = Result<Vec<Item>, SourceError>;

/// The bytes of a batch's rows.
fn bytes_of(items: &[Item]) -> usize {
    items.iter().map(Item::bytes).sum()
}

/// What one side's scan and the comparison share besides the channel.
#[derive(Default)]
struct InFlight {
    /// The bytes of rows sent and not yet taken.
    bytes: Mutex<usize>,
    taken: Condvar,
    /// The comparison has stopped taking rows (it is done, or failed).
    stopped: AtomicBool,
}

impl InFlight {
    fn bytes(&self) -> MutexGuard<'_, usize> {
        self.bytes.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn stopped(&self) -> bool {
        self.stopped.load(Ordering::Relaxed)
    }

    /// Waits until `n` more bytes fit in [`CHANNEL_BYTES`] (or none are in
    /// flight), and counts them; false once the comparison has stopped.
    fn reserve(&self, n: usize) -> bool {
        let mut bytes = self.bytes();
        while !self.stopped() && *bytes > 0 && *bytes + n > CHANNEL_BYTES {
            bytes = self
                .taken
                .wait(bytes)
                .unwrap_or_else(PoisonError::into_inner);
        }
        *bytes += n;
        !self.stopped()
    }

    /// `n` bytes were taken from the channel.
    fn release(&self, n: usize) {
        let mut bytes = self.bytes();
        *bytes = bytes.saturating_sub(n);
        self.taken.notify_one();
    }

    /// The comparison stopped: a scan waiting for room stops too, and a
    /// scan reading rows stops at its next row.
    fn close(&self) {
        // Under the lock, so that a scan about to wait sees it first.
        let _bytes = self.bytes();
        self.stopped.store(true, Ordering::Relaxed);
        self.taken.notify_all();
    }
}

/// A scan's end of its side's stream (see [`channel`]).
pub(super) struct Sending {
    tx: SyncSender<Batch>,
    flight: Arc<InFlight>,
}

impl Sending {
    /// Sends a batch once its bytes fit; false when the comparison has
    /// stopped.
    fn send(&self, batch: Vec<Item>) -> bool {
        self.flight.reserve(bytes_of(&batch)) && self.tx.send(Ok(batch)).is_ok()
    }

    /// Whether the comparison has stopped taking rows.
    fn stopped(&self) -> bool {
        self.flight.stopped()
    }

    /// Sends the scan's failure, its last message.
    fn fail(&self, e: SourceError) {
        let _ = self.tx.send(Err(e));
    }
}

/// Rows packed for sending: their wire bytes in one buffer that the rows
/// of the batch share once sent. A batch is then one allocation, made by
/// the scan and freed by the comparison (on another thread, where freeing
/// many small allocations costs the most), and the rows wait in little
/// memory until compared.
#[derive(Default)]
struct Packer {
    bytes: Vec<u8>,
    rows: Vec<(Key, Range<usize>)>,
    /// The bytes of the rows' keys, held apart (see [`Item::bytes`]).
    key_bytes: usize,
}

impl Packer {
    fn push(&mut self, key: Key, row: &[Value]) {
        let start = self.bytes.len();
        wire::encode_row(&mut self.bytes, row);
        self.key_bytes += key.as_bytes().len();
        self.rows.push((key, start..self.bytes.len()));
    }

    fn full(&self) -> bool {
        self.rows.len() == BATCH_ROWS || self.bytes.len() + self.key_bytes >= BATCH_BYTES
    }

    /// The rows packed so far, as items.
    fn take(&mut self) -> Vec<Item> {
        let batch: Arc<[u8]> = Arc::from(self.bytes.as_slice());
        self.bytes.clear();
        self.key_bytes = 0;
        // Room grown for one huge row is not kept for the rest of the scan.
        if self.bytes.capacity() > 2 * BATCH_BYTES {
            self.bytes = Vec::new();
        }
        self.rows
            .drain(..)
            .map(|(key, at)| Item {
                key,
                batch: Arc::clone(&batch),
                at,
            })
            .collect()
    }
}

/// Whether a drifted range is costed a piece at a time, as its own
/// requests, rather than with the other ranges of its chunk: when it holds
/// more rows than one chunk. Such a range is always a chunk of its own (see
/// [`chunks`]).
fn costed_by_piece(r: &DriftRange) -> bool {
    r.source_rows.max(r.target_rows) > CHUNK_ROWS
}

/// Scans `source` in key order, sending the rows that fall in `ranges`
/// (ascending, disjoint), and stops after the last range. Rows are compared
/// by their values, never hashed a second time (that would be a second hash
/// of every row when most of a table drifted). Returns the rows read. A
/// failure is sent as the last message; a closed channel (the comparison
/// stopped) ends the scan quietly.
pub(super) fn stream_side(
    source: &mut dyn Source,
    spec: &ScanSpec,
    opts: &CanonOptions,
    ranges: &[KeyRange],
    tx: Sending,
) -> u64 {
    let mut hasher = row_hasher(spec, opts);
    let (mut read, mut at) = (0u64, 0usize);
    let mut prev: Vec<u8> = Vec::new();
    let mut packer = Packer::default();
    let (mut closed, mut past_end, mut disorder) = (false, false, false);
    let scanned = source.scan(spec, None, &mut |row| {
        // A comparison that stopped (an error) is not kept waiting for the
        // rest of the table.
        if tx.stopped() {
            closed = true;
            return ControlFlow::Break(());
        }
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
        packer.push(Key::from_bytes(k), row);
        if packer.full() && !tx.send(packer.take()) {
            closed = true;
            return ControlFlow::Break(());
        }
        ControlFlow::Continue(())
    });
    if closed {
        return read;
    }
    match scanned {
        _ if disorder => tx.fail(SourceError::Other(
            "its rows stopped coming back in key order during the comparison".into(),
        )),
        Err(e) if !past_end => tx.fail(e),
        _ => {
            tx.send(packer.take());
        }
    }
    read
}

/// The two ends of one side's stream: [`stream_side`]'s and the
/// comparison's, for rows of `width` values.
pub(super) fn channel(width: usize) -> (Sending, Streamed) {
    let (tx, rx) = sync_channel(BATCHES_AHEAD);
    let flight = Arc::new(InFlight::default());
    let streamed = Streamed {
        rx,
        flight: Arc::clone(&flight),
        width,
        ahead: VecDeque::new(),
        ahead_bytes: 0,
        ended: false,
    };
    (Sending { tx, flight }, streamed)
}

/// Rows of each side a piece of a drifted range holds at most: a range can
/// span the whole table (adjacent drifted leaves are one range). A range
/// wider than a chunk is also costed by its pieces, as though asked of
/// agents, and a chunk's rows are four full pages of entries: other sizes
/// would report other figures for the same drift.
const PIECE_ROWS: usize = CHUNK_ROWS as usize;

/// Bytes of rows a piece holds at most a side, whatever its number of
/// rows: wide rows make smaller pieces, so memory does not grow with the
/// width of a row.
const PIECE_BYTES: usize = 32 << 20;

/// One side's stream, read range by range, a piece at a time.
pub(super) struct Streamed {
    rx: Receiver<Batch>,
    flight: Arc<InFlight>,
    width: usize,
    ahead: VecDeque<Item>,
    /// The bytes of the rows `ahead`.
    ahead_bytes: usize,
    ended: bool,
}

impl Streamed {
    /// Reads ahead until `n` rows wait or the scan has ended.
    fn fill(&mut self, n: usize) -> Result<(), SourceError> {
        while self.ahead.len() < n && self.ahead_bytes < PIECE_BYTES && !self.ended {
            match self.rx.recv() {
                Ok(Ok(batch)) => {
                    let bytes = bytes_of(&batch);
                    self.flight.release(bytes);
                    self.ahead_bytes += bytes;
                    self.ahead.extend(batch);
                }
                Ok(Err(e)) => return Err(e),
                // The scan ended (or its thread died): whatever is missing
                // shows as ranges whose counts do not add up.
                Err(_) => self.ended = true,
            }
        }
        Ok(())
    }

    /// The key of the last row of a piece of this side, if it is still in
    /// `r`: the [`PIECE_ROWS`]th row waiting, or the first that brings the
    /// piece to [`PIECE_BYTES`]. Only rows in `r` are looked at, so many
    /// small ranges cost their rows, not a piece each.
    fn piece_end_in(&mut self, r: &KeyRange) -> Result<Option<Key>, SourceError> {
        self.fill(PIECE_ROWS)?;
        let mut bytes = 0;
        let end = self
            .ahead
            .iter()
            .take(PIECE_ROWS)
            .take_while(|item| item.key <= r.through)
            .enumerate()
            .find(|(i, item)| {
                bytes += item.bytes();
                bytes >= PIECE_BYTES || i + 1 == PIECE_ROWS
            });
        Ok(end.map(|(_, item)| item.key.clone()))
    }

    /// The waiting rows with keys up to `through`.
    fn take_through(&mut self, through: &Key) -> Vec<Item> {
        let n = self
            .ahead
            .iter()
            .position(|item| item.key > *through)
            .unwrap_or(self.ahead.len());
        let taken: Vec<Item> = self.ahead.drain(..n).collect();
        self.ahead_bytes -= bytes_of(&taken);
        taken
    }
}

impl Drop for Streamed {
    /// The comparison is done with this side (or stopped): its scan, if
    /// waiting for room, stops too, as it does on the closed channel.
    fn drop(&mut self) {
        self.flight.close();
    }
}

/// Whether two rows of one key are the same: exactly when their row hashes
/// are (every value encodes alike), so no row need be hashed.
fn same_row(a: &KeyedRow, b: &KeyedRow, nkey: usize, opts: &CanonOptions) -> bool {
    a.values.len() == b.values.len()
        && a.values[nkey..]
            .iter()
            .zip(&b.values[nkey..])
            .all(|(x, y)| canon::values_equal(x, y, opts))
}

/// One side of a compared piece: which of its rows (their places in the
/// piece, ascending) the comparison would fetch by key.
#[derive(Default)]
struct PieceSide {
    asked: Vec<usize>,
}

/// Hands every difference between two key-ordered pieces to `emit`, in
/// key order, in one merge: the keys whose rows differ are the ones
/// [`driftsum_core::diff::entry_differences`] names from row hashes, and
/// their rows are compared value by value as fetched rows are. Rows with
/// the same wire bytes hold the same values and are not read further.
/// Returns both sides of the piece, and whether anything was emitted.
fn piece_differences(
    source: &[Item],
    target: &[Item],
    (source_width, target_width): (usize, usize),
    job: &Job<'_>,
    mut emit: impl FnMut(Difference) -> Result<(), CheckError>,
) -> Result<(PieceSide, PieceSide, bool), CheckError> {
    let (nkey, opts) = (job.nkey, job.opts);
    // Floats rounded for the row hash are compared by their digits in a
    // difference (see `Difference::changed`): a row is then the same by
    // its encoding, whatever its columns say.
    let rounded = opts.float_digits.is_some();
    let source_row = |item: &Item| item.row(source_width).map_err(CheckError::Source);
    let target_row = |item: &Item| item.row(target_width).map_err(CheckError::Target);
    let (mut s_side, mut t_side) = (PieceSide::default(), PieceSide::default());
    let mut emitted = false;
    let (source, target) = (source.iter().enumerate(), target.iter().enumerate());
    for pair in merge_by(source, target, |a, b| a.1.key.cmp(&b.1.key)) {
        let d = match pair {
            Paired::Source((i, s)) => {
                s_side.asked.push(i);
                Some(Difference::missing(source_row(s)?, nkey))
            }
            Paired::Target((j, t)) => {
                t_side.asked.push(j);
                Some(Difference::extra(target_row(t)?, nkey))
            }
            Paired::Both((_, s), (_, t)) if s.wire() == t.wire() => None,
            Paired::Both((i, s), (j, t)) => {
                let (s, t) = (source_row(s)?, target_row(t)?);
                if rounded && same_row(&s, &t, nkey, opts) {
                    continue;
                }
                let d = Difference::changed(s, t, nkey, opts);
                // Without rounding, rows are the same exactly when no
                // column differs, which `changed` finds in the same pass.
                if rounded || d.is_some() {
                    s_side.asked.push(i);
                    t_side.asked.push(j);
                }
                d
            }
        };
        if let Some(d) = d {
            emitted = true;
            emit(d)?;
        }
    }
    Ok((s_side, t_side, emitted))
}

/// Names every difference in the job's ranges from the two streams, range
/// by range, a piece of at most [`PIECE_ROWS`] rows (or [`PIECE_BYTES`])
/// per side at a time. What is reported as exchanged is what agents would
/// be asked: a chunk of ranges as range reads ask for it (see
/// `reconcile`), and a range too big for one chunk piece by piece.
pub(super) fn reconcile(
    source: &mut Streamed,
    target: &mut Streamed,
    job: &Job<'_>,
    outcome: &mut TableOutcome,
    found: &mut Found<'_>,
) -> Result<(), CheckError> {
    for span in chunks(job.ranges, false) {
        if span.len() == 1 && costed_by_piece(&job.ranges[span.start]) {
            compare_range(
                source,
                target,
                job,
                span.start,
                outcome,
                found,
                |outcome, piece, read| {
                    let pieces = std::slice::from_ref(piece);
                    for side in read {
                        let mut meters = Meters::new(pieces);
                        meters.range(piece.after.as_ref());
                        meters.read(0, side);
                        meters.finish(outcome);
                    }
                },
            )?;
            continue;
        }
        let keyed = &job.keyed[span.clone()];
        let mut meters = [Meters::new(keyed), Meters::new(keyed)];
        for (n, i) in span.enumerate() {
            for m in &mut meters {
                m.range(keyed[n].after.as_ref());
            }
            compare_range(source, target, job, i, outcome, found, |_, _, read| {
                for (m, side) in meters.iter_mut().zip(read) {
                    m.read(n, side);
                }
            })?;
        }
        for m in meters {
            m.finish(outcome);
        }
    }
    Ok(())
}

/// What one side's reads of a chunk of ranges (or of one piece) cost, as
/// agents would be asked for them, counted as the pieces go by: a chunk
/// keeps no key it read.
struct Meters<'r> {
    entries: EntriesMeter<'r>,
    rows: RowsMeter,
}

impl<'r> Meters<'r> {
    fn new(ranges: &'r [KeyRange]) -> Meters<'r> {
        Meters {
            entries: EntriesMeter::new(ranges),
            rows: RowsMeter::new(),
        }
    }

    /// The next range starts: its rows are asked for after its start.
    fn range(&mut self, after: Option<&Key>) {
        self.rows.group(after);
    }

    /// A piece of range `i` (of the meters' ranges) was read: its rows
    /// (each an entry), and of those the ones asked for by key.
    fn read(&mut self, i: usize, (items, asked): (&[Item], PieceSide)) {
        for item in items {
            self.entries.entry(i, &item.key, HASH_PREFIX_LEN);
        }
        for &j in &asked.asked {
            self.rows.key(&items[j].key, items[j].wire().len());
        }
    }

    fn finish(self, outcome: &mut TableOutcome) {
        let transfer = &mut outcome.stats.transfer;
        for (cost, pages) in [
            (&mut transfer.entries, self.entries.finish()),
            (&mut transfer.rows, self.rows.finish()),
        ] {
            cost.round_trips += pages.requests;
            cost.items += pages.items;
            cost.bytes += pages.bytes;
        }
    }
}

/// Compares range `i` of the job a piece at a time, handing each piece
/// (and what was read of it) to `costed`.
fn compare_range(
    source: &mut Streamed,
    target: &mut Streamed,
    job: &Job<'_>,
    i: usize,
    outcome: &mut TableOutcome,
    found: &mut Found<'_>,
    mut costed: impl FnMut(&mut TableOutcome, &KeyRange, [(&[Item], PieceSide); 2]),
) -> Result<(), CheckError> {
    let (r, k) = (&job.ranges[i], &job.keyed[i]);
    let (mut source_read, mut target_read) = (0u64, 0u64);
    let mut first: Option<Key> = None;
    let mut drifted = false;
    let mut after = k.after.clone();
    loop {
        let cut = [
            source.piece_end_in(k).map_err(CheckError::Source)?,
            target.piece_end_in(k).map_err(CheckError::Target)?,
        ]
        .into_iter()
        .flatten()
        .min();
        let through = cut.unwrap_or_else(|| k.through.clone());
        let (source_items, target_items) =
            (source.take_through(&through), target.take_through(&through));
        source_read += source_items.len() as u64;
        target_read += target_items.len() as u64;
        let piece_first = [source_items.first(), target_items.first()]
            .into_iter()
            .flatten()
            .map(|item| item.key.clone())
            .min();
        first = first.into_iter().chain(piece_first).min();
        let widths = (source.width, target.width);
        let (source_asked, target_asked, emitted) =
            piece_differences(&source_items, &target_items, widths, job, |d| {
                found.emit(outcome, d).map_err(CheckError::Output)
            })?;
        drifted |= emitted;
        let piece = KeyRange {
            after: after.clone(),
            through: through.clone(),
        };
        let read = [
            (&source_items[..], source_asked),
            (&target_items[..], target_asked),
        ];
        costed(outcome, &piece, read);
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
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reconcile::DiffKind;
    use driftsum_core::key;

    fn item(id: i64, f: f64, text: &str) -> Item {
        let values = vec![
            Value::Int(id.into()),
            Value::Float(f),
            Value::Text(text.into()),
        ];
        let mut packer = Packer::default();
        packer.push(key::encode(&values[..1]), &values);
        packer.take().pop().expect("one row")
    }

    /// A job over no ranges, for one key column.
    fn job(opts: &CanonOptions) -> Job<'_> {
        Job {
            ranges: &[],
            keyed: &[],
            nkey: 1,
            opts,
            whole: false,
        }
    }

    /// One merge names what the row hashes would, and fetches what a
    /// comparison by range would: a float one ulp apart is a difference
    /// at the float's own precision and none once rounded (the row then
    /// not even asked for), whatever else changed in the row.
    #[test]
    fn piece_differences_are_the_rows_that_differ() {
        let third = 1.0f64 / 3.0;
        let ulp = f64::from_bits(third.to_bits() + 1);
        // Each key's row on either side, if it has one.
        type Side<'a> = Option<(f64, &'a str)>;
        let rows: [(i64, Side, Side); 6] = [
            (1, Some((third, "a")), Some((ulp, "a"))),
            (2, Some((2.0, "b")), Some((2.0, "b "))),
            (3, Some((3.0, "only in the source")), None),
            (4, None, Some((4.0, "only in the target"))),
            (5, Some((5.0, "same")), Some((5.0, "same"))),
            (6, Some((third, "x")), Some((ulp, "y"))),
        ];
        let side = |target: bool| -> Vec<Item> {
            rows.iter()
                .filter_map(|&(id, s, t)| if target { t } else { s }.map(|(f, x)| item(id, f, x)))
                .collect()
        };
        let (source, target) = (|| side(false), || side(true));
        // (rounding, differences as (kind, id, changed columns), ids
        // asked of the source, ids asked of the target)
        type Case = (
            Option<u8>,
            Vec<(DiffKind, i64, Vec<usize>)>,
            Vec<i64>,
            Vec<i64>,
        );
        let cases: [Case; 2] = [
            (
                None,
                vec![
                    (DiffKind::Changed, 1, vec![0]),
                    (DiffKind::Changed, 2, vec![1]),
                    (DiffKind::Missing, 3, vec![]),
                    (DiffKind::Extra, 4, vec![]),
                    (DiffKind::Changed, 6, vec![0, 1]),
                ],
                vec![1, 2, 3, 6],
                vec![1, 2, 4, 6],
            ),
            (
                Some(10),
                vec![
                    (DiffKind::Changed, 2, vec![1]),
                    (DiffKind::Missing, 3, vec![]),
                    (DiffKind::Extra, 4, vec![]),
                    (DiffKind::Changed, 6, vec![1]),
                ],
                vec![2, 3, 6],
                vec![2, 4, 6],
            ),
        ];
        for (float_digits, want, source_asked, target_asked) in cases {
            let opts = CanonOptions { float_digits };
            let job = job(&opts);
            let mut got = Vec::new();
            let (s, t, emitted) = piece_differences(&source(), &target(), (3, 3), &job, |d| {
                let Value::Int(id) = d.key[0] else {
                    panic!("key {:?}", d.key)
                };
                got.push((d.kind, id as i64, d.changed));
                Ok(())
            })
            .expect("compared");
            assert_eq!(got, want, "digits {float_digits:?}");
            assert!(emitted);
            for (side, ids, rows) in [(s, source_asked, source()), (t, target_asked, target())] {
                let keys: Vec<Key> = ids
                    .iter()
                    .map(|&i| key::encode(&[Value::Int(i.into())]))
                    .collect();
                let asked: Vec<Key> = side.asked.iter().map(|&j| rows[j].key.clone()).collect();
                assert_eq!(asked, keys, "digits {float_digits:?}");
            }
        }
        let opts = CanonOptions::default();
        let job = job(&opts);
        // Different wire bytes, the same row: the zeros decode, and
        // compare, as one float.
        let same = |zero: f64| vec![item(5, 5.0, "same"), item(6, zero, "zero")];
        let (s, t, emitted) =
            piece_differences(&same(-0.0), &same(0.0), (3, 3), &job, |_| Ok(())).expect("compared");
        assert!(!emitted && s.asked.is_empty() && t.asked.is_empty());
        // A row that does not read back is an error of its side, not a
        // difference or a row passed over.
        let mut cut = item(7, 7.0, "cut short");
        cut.at.end -= 1;
        let err = piece_differences(&[cut], &[item(7, 7.5, "x")], (3, 3), &job, |_| Ok(())).err();
        assert!(matches!(err, Some(CheckError::Source(_))), "{err:?}");
    }

    /// A piece ends at its row limit, or sooner at its byte limit, and
    /// what waits is counted down as it is taken.
    #[test]
    fn pieces_end_at_a_row_or_byte_limit() {
        let through = key::encode(&[Value::Int(1_000_000.into())]);
        let whole = KeyRange {
            after: None,
            through: through.clone(),
        };
        let key_of = |id: i64| key::encode(&[Value::Int(id.into())]);
        let row = move |id: i64, text: String| {
            let values = vec![Value::Int(id.into()), Value::Text(text)];
            (key_of(id), values)
        };
        // Narrow rows: the row limit.
        let (tx, mut side) = channel(2);
        let scan = std::thread::spawn(move || {
            let mut packer = Packer::default();
            for id in 1..=(PIECE_ROWS as i64 + 10) {
                let (k, values) = row(id, "narrow".into());
                packer.push(k, &values);
                if packer.full() && !tx.send(packer.take()) {
                    return;
                }
            }
            tx.send(packer.take());
        });
        let end = side.piece_end_in(&whole).expect("read");
        assert_eq!(end, Some(key_of(PIECE_ROWS as i64)));
        assert_eq!(
            side.take_through(&key_of(PIECE_ROWS as i64)).len(),
            PIECE_ROWS
        );
        assert_eq!(side.piece_end_in(&whole).expect("read"), None);
        drop(side);
        scan.join().expect("scan");
        // Rows of a mebibyte: the byte limit, well before the row limit.
        let (tx, mut side) = channel(2);
        let wide = PIECE_BYTES / (1 << 20);
        let scan = std::thread::spawn(move || {
            for id in 1..=(wide as i64 + 8) {
                let mut packer = Packer::default();
                let (k, values) = row(id, "w".repeat(1 << 20));
                packer.push(k, &values);
                assert!(tx.send(packer.take()), "sent");
            }
        });
        let end = side.piece_end_in(&whole).expect("read");
        assert_eq!(end, Some(key_of(wide as i64)));
        let taken = side.take_through(&key_of(wide as i64));
        assert_eq!(taken.len(), wide);
        let waiting: usize = side.ahead.iter().map(Item::bytes).sum();
        assert_eq!(side.ahead_bytes, waiting);
        // The rest is less than a piece either way: no cut in it.
        assert_eq!(side.piece_end_in(&whole).expect("read"), None);
        assert_eq!(side.take_through(&through).len(), 8);
        assert_eq!(side.ahead_bytes, 0);
        scan.join().expect("scan");
    }

    /// The bytes in a channel stay within their limit: a scan waits for
    /// room (but a batch bigger than the limit goes alone), goes on once
    /// the comparison takes some, and stops waiting once it has stopped.
    #[test]
    fn a_scan_waits_for_room_in_its_channel() {
        let flight = Arc::new(InFlight::default());
        assert!(
            flight.reserve(CHANNEL_BYTES + 1),
            "alone, whatever its size"
        );
        flight.release(CHANNEL_BYTES + 1);
        assert!(flight.reserve(CHANNEL_BYTES - 10));
        assert!(flight.reserve(10), "fits exactly");
        for (then, room) in [
            (InFlight::release as fn(&InFlight, usize), true),
            (|f, _| f.close(), false),
        ] {
            let waiting = Arc::clone(&flight);
            let (done, finished) = std::sync::mpsc::channel();
            let scan = std::thread::spawn(move || done.send(waiting.reserve(1)));
            // Full: the scan waits (given time to run, it has not finished).
            let early = finished.recv_timeout(std::time::Duration::from_millis(100));
            assert!(early.is_err(), "did not wait for room: {early:?}");
            then(&flight, 1);
            let got = finished.recv().expect("the scan finished");
            assert_eq!(got, room);
            scan.join().expect("scan").expect("sent");
        }
        assert!(!flight.reserve(1), "stopped");
    }
}
