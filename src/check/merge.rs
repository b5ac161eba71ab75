//! The drifted ranges of two databases read by one scan of each side, when
//! so much drifted that reading range by range would cost more: a thread per
//! side scans its table in key order and streams the rows inside drifted
//! ranges (with their row hashes) through a bounded channel, and the
//! reconciliation takes them a chunk of ranges at a time. Memory holds a
//! chunk and the channels, whatever the table's size.

use std::sync::mpsc::{sync_channel, Receiver, SyncSender};

use driftsum_core::canon::CanonOptions;
use driftsum_core::tree::wire::KeyRange;
use driftsum_core::tree::{Entry, HashPrefix, TreeFile};
use driftsum_core::Key;

use super::endpoint::RowHasher;
use super::ranges::ChunkSide;
use super::scan::stop;
use crate::error::SourceError;
use crate::reconcile::KeyedRow;
use crate::source::{ScanSpec, Source};

/// Rows a scanning thread sends at a time.
const BATCH_ROWS: usize = 1024;
/// Batches in flight per side; the scan waits when the comparison is behind.
const BATCHES_AHEAD: usize = 8;

type Item = (KeyedRow, HashPrefix);
type Batch = Result<Vec<Item>, SourceError>;

/// Scans `source` in key order, sending the rows that fall in `ranges`
/// (ascending, disjoint) with their hash prefixes, and stops after the last
/// range. Returns the rows read. A failure is sent as the last message; a
/// closed channel (the comparison stopped) ends the scan quietly.
pub(super) fn stream_side(
    source: &mut dyn Source,
    spec: &ScanSpec,
    opts: &CanonOptions,
    ranges: &[KeyRange],
    tx: SyncSender<Batch>,
) -> u64 {
    let mut hasher = RowHasher::new(spec, opts);
    let (mut read, mut at) = (0u64, 0usize);
    let mut prev: Vec<u8> = Vec::new();
    let mut batch: Vec<Item> = Vec::with_capacity(BATCH_ROWS);
    let (mut closed, mut past_end, mut disorder) = (false, false, false);
    let scanned = source.scan(spec, None, &mut |row| {
        let (k, h) = hasher.hash(row);
        // The first pass saw this order; a scan that breaks it now cannot
        // be merged (and the range counts would not add up either).
        if read > 0 && k <= prev.as_slice() {
            disorder = true;
            return Err(stop());
        }
        read += 1;
        prev.clear();
        prev.extend_from_slice(k);
        while ranges.get(at).is_some_and(|r| r.through.as_bytes() < k) {
            at += 1;
        }
        let Some(range) = ranges.get(at) else {
            past_end = true;
            return Err(stop());
        };
        if !range.contains(k) {
            return Ok(());
        }
        batch.push((
            KeyedRow {
                key: Key::from_bytes(k),
                values: row.to_vec(),
            },
            HashPrefix::from(&h),
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
            return Err(stop());
        }
        Ok(())
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

/// One side's stream, read range by range.
pub(super) struct Streamed {
    rx: Receiver<Batch>,
    buf: std::vec::IntoIter<Item>,
    next: Option<Item>,
    /// The rows of the chunk last read for its entries, for rows by key.
    cached: Vec<KeyedRow>,
}

impl Streamed {
    pub fn new(rx: Receiver<Batch>) -> Streamed {
        Streamed {
            rx,
            buf: Vec::new().into_iter(),
            next: None,
            cached: Vec::new(),
        }
    }

    /// The next streamed row, left in place; `None` once the scan ended.
    fn peek(&mut self) -> Result<Option<&Item>, SourceError> {
        while self.next.is_none() {
            if let Some(item) = self.buf.next() {
                self.next = Some(item);
                break;
            }
            match self.rx.recv() {
                Ok(Ok(batch)) => self.buf = batch.into_iter(),
                Ok(Err(e)) => return Err(e),
                // The scan ended (or its thread died): whatever is missing
                // shows as ranges whose counts do not add up.
                Err(_) => return Ok(None),
            }
        }
        Ok(self.next.as_ref())
    }
}

impl ChunkSide for Streamed {
    fn entries(&mut self, ranges: &[KeyRange]) -> Result<Option<Vec<Vec<Entry>>>, SourceError> {
        self.cached.clear();
        let mut out = Vec::with_capacity(ranges.len());
        for r in ranges {
            let mut entries = Vec::new();
            while self.peek()?.is_some_and(|(row, _)| row.key <= r.through) {
                let (row, hash) = self.next.take().expect("peeked");
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
        let all: Vec<&Key> = groups.iter().flat_map(|g| &g.1).collect();
        let rows = std::mem::take(&mut self.cached);
        Ok(Some(
            rows.into_iter()
                .filter(|r| all.binary_search(&&r.key).is_ok())
                .collect(),
        ))
    }

    fn file(&self) -> Option<&TreeFile> {
        None
    }
}
