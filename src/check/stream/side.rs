//! One side's stream of the rows in drifted ranges: a thread scans the
//! side's table in key order and sends the rows inside the ranges (their
//! wire bytes, a batch in one buffer) through a channel bounded in batches
//! and in bytes, and the comparison's end takes them a piece of a range at
//! a time, a piece bounded in rows and in bytes.

use std::collections::VecDeque;
use std::ops::{ControlFlow, Range};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};

use driftsum_core::canon::CanonOptions;
use driftsum_core::key::KeyRange;
use driftsum_core::protocol as wire;
use driftsum_core::{Key, Value};

use crate::build::row_hasher;
use crate::check::reconcile::CHUNK_ROWS;
use crate::error::SourceError;
use crate::reconcile::KeyedRow;
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
    pub(super) key: Key,
    /// The wire bytes of the row's batch (see [`Packer`]), and where the
    /// row's are.
    batch: Arc<[u8]>,
    pub(super) at: Range<usize>,
}

impl Item {
    /// The row's values as [`wire::encode_row`] writes them: what fetching
    /// it by key would cost.
    pub(super) fn wire(&self) -> &[u8] {
        &self.batch[self.at.clone()]
    }

    /// What the row holds in memory, as the limits count it: its wire
    /// bytes and its key (held apart, so a wide key counts twice).
    pub(super) fn bytes(&self) -> usize {
        self.at.len() + self.key.as_bytes().len()
    }

    /// The row's values, from its wire bytes.
    pub(super) fn row(&self, width: usize) -> Result<KeyedRow, SourceError> {
        let values = wire::decode_row(self.wire(), width).map_err(unreadable)?;
        Ok(KeyedRow {
            key: self.key.clone(),
            values,
        })
    }
}

/// A streamed row's bytes that do not read back (a bug, not bad data: the
/// scan wrote them).
pub(super) fn unreadable(e: wire::WireError) -> SourceError {
    SourceError::Other(format!("a streamed row did not read back: {e}"))
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
pub(in crate::check) struct Sending {
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
pub(super) struct Packer {
    bytes: Vec<u8>,
    rows: Vec<(Key, Range<usize>)>,
    /// The bytes of the rows' keys, held apart (see [`Item::bytes`]).
    key_bytes: usize,
}

impl Packer {
    pub(super) fn push(&mut self, key: Key, row: &[Value]) {
        let start = self.bytes.len();
        wire::encode_row(&mut self.bytes, row);
        self.key_bytes += key.as_bytes().len();
        self.rows.push((key, start..self.bytes.len()));
    }

    fn full(&self) -> bool {
        self.rows.len() == BATCH_ROWS || self.bytes.len() + self.key_bytes >= BATCH_BYTES
    }

    /// The rows packed so far, as items.
    pub(super) fn take(&mut self) -> Vec<Item> {
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

/// Scans `source` in key order, sending the rows that fall in `ranges`
/// (ascending, disjoint), and stops after the last range. Rows are compared
/// by their values, never hashed a second time (that would be a second hash
/// of every row when most of a table drifted). Returns the rows read. A
/// failure is sent as the last message; a closed channel (the comparison
/// stopped) ends the scan quietly.
pub(in crate::check) fn stream_side(
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
pub(in crate::check) fn channel(width: usize) -> (Sending, Streamed) {
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
pub(super) const PIECE_ROWS: usize = CHUNK_ROWS as usize;

/// Bytes of rows a piece holds at most a side, whatever its number of
/// rows: wide rows make smaller pieces, so memory does not grow with the
/// width of a row.
pub(super) const PIECE_BYTES: usize = 32 << 20;

/// One side's stream, read range by range, a piece at a time.
pub(in crate::check) struct Streamed {
    rx: Receiver<Batch>,
    flight: Arc<InFlight>,
    pub(super) width: usize,
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
    pub(super) fn piece_end_in(&mut self, r: &KeyRange) -> Result<Option<Key>, SourceError> {
        self.fill(PIECE_ROWS)?;
        // Rows wait in key order: the ones in `r` are found by halving.
        let in_r = self.ahead.partition_point(|item| item.key <= r.through);
        let mut bytes = 0;
        let end = self
            .ahead
            .iter()
            .take(in_r.min(PIECE_ROWS))
            .enumerate()
            .find(|(i, item)| {
                bytes += item.bytes();
                bytes >= PIECE_BYTES || i + 1 == PIECE_ROWS
            });
        Ok(end.map(|(_, item)| item.key.clone()))
    }

    /// The waiting rows with keys up to `through`.
    pub(super) fn take_through(&mut self, through: &Key) -> Vec<Item> {
        let n = self.ahead.partition_point(|item| item.key <= *through);
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

#[cfg(test)]
mod tests {
    use super::*;
    use driftsum_core::key;

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
