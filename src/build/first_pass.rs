//! The first pass of a tree build: reading a source's rows and feeding the
//! builder, on one thread, on two (reading and canonicalizing on one,
//! hashing and building on the other), or over key ranges scanned by several
//! connections to one snapshot at once. Every way builds the same tree.

use std::ops::ControlFlow;
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};

use driftsum_core::hash::LANES;
use driftsum_core::row::{RowBatch, RowHasher};
use driftsum_core::tree::file::EntryLog;
use driftsum_core::tree::OrderError;
use driftsum_core::{key, Builder, Hash, Key, Value};

use super::job::{row_hasher, Progress, TreeScan};
use super::late::Late;
use super::range::scan_range;
use crate::source::{EncodedSink, Source, SourceError};

/// How often (in rows) a scan reports progress.
const PROGRESS_EVERY: u64 = 1 << 16;

/// What a first pass leaves: rows read and, if the builder refused a row,
/// why (the scan stopped at most a batch of rows later).
pub(super) type Pass = (u64, Option<OrderError>);

/// Where a first pass hands its entries: the builder, the entry log when
/// one is kept, and, for a pass in storage order, the window and late rows.
pub(super) struct Feed<'a> {
    pub(super) builder: &'a mut Builder,
    pub(super) log: Option<&'a mut EntryLog>,
    /// `Some` for a pass that reads rows in storage order
    /// ([`Source::scan_unordered`]): rows go to the builder through its
    /// window, and those that come too late are kept aside (see `late`).
    pub(super) late: Option<Late>,
}

impl<'a> Feed<'a> {
    /// A feed of `builder` and, when given, `log`, for a pass in key order.
    pub(super) fn new(builder: &'a mut Builder, log: Option<&'a mut EntryLog>) -> Feed<'a> {
        Feed {
            builder,
            log,
            late: None,
        }
    }

    /// Hands one row's entry on (in a pass in storage order, through its
    /// window).
    fn add(&mut self, key: &[u8], hash: &Hash) -> Result<(), OrderError> {
        if let Some(late) = self.late.as_mut() {
            return late.take(self.builder, key, hash);
        }
        self.builder.push(key, hash)?;
        if let Some(log) = self.log.as_deref_mut() {
            log.push(key, hash);
        }
        Ok(())
    }
}

/// Scans the whole table of `job`'s spec (in storage order for a pass that
/// keeps late keys, else in key order), handing `row` each row's key bytes
/// and canonical row bytes: encoded by the source where it can (see
/// [`Source::scan_encoded`]), else by `hasher` from the row's values.
fn scan_whole(
    unordered: bool,
    source: &mut dyn Source,
    job: &TreeScan<'_>,
    hasher: &mut RowHasher,
    row: &mut EncodedSink<'_>,
) -> Result<(), SourceError> {
    if source.scan_encoded(job.spec, unordered, job.opts, row)? {
        return Ok(());
    }
    let sink = &mut |values: &[Value]| {
        let (key, bytes) = hasher.encode(values);
        row(key, bytes)
    };
    match unordered {
        true => source.scan_unordered(job.spec, sink),
        false => source.scan(job.spec, None, sink),
    }
}

/// Rows canonicalized before they are hashed side by side (a few times
/// [`LANES`], so the lanes stay full and the rows stay in cache).
pub(super) const SIDE_BY_SIDE: usize = 4 * LANES;

/// Hands a hashed batch's entries to the builder, in order.
pub(super) fn add_batch(feed: &mut Feed<'_>, batch: &mut RowBatch) -> Result<(), OrderError> {
    batch.hash();
    let added = batch
        .entries()
        .try_for_each(|(key, hash)| feed.add(key, hash));
    // Cleared also when the builder refused a row: nothing is handed over
    // twice.
    batch.clear();
    added
}

/// Reads, hashes and builds on this thread. Returns the rows read and, if
/// the builder refused a row, why (the scan stopped within a batch of it).
pub(super) fn inline(
    source: &mut dyn Source,
    job: &TreeScan<'_>,
    progress: Progress<'_>,
    feed: &mut Feed<'_>,
) -> Result<Pass, SourceError> {
    let mut hasher = row_hasher(job.spec, job.opts);
    let mut batch = RowBatch::default();
    let mut disorder: Option<OrderError> = None;
    let mut rows = 0u64;
    let unordered = feed.late.is_some();
    let scanned = scan_whole(unordered, source, job, &mut hasher, &mut |key, row| {
        batch.push(key, row);
        rows += 1;
        if rows.is_multiple_of(PROGRESS_EVERY) {
            progress(job.side, rows);
        }
        if batch.len() < SIDE_BY_SIDE {
            return ControlFlow::Continue(());
        }
        match add_batch(feed, &mut batch) {
            Ok(()) => ControlFlow::Continue(()),
            Err(e) => {
                disorder = Some(e);
                ControlFlow::Break(())
            }
        }
    });
    // The rows read before a failure still go to the builder: a key it
    // refuses among them is what stopped the scan one row at a time, and
    // is what this pass reports (the caller may read again in key order).
    if disorder.is_none() {
        disorder = add_batch(feed, &mut batch).err();
    }
    if let (Err(e), None) = (scanned, &disorder) {
        return Err(e);
    }
    Ok((rows, disorder))
}

/// Rows the reading thread hands the hashing thread at a time.
const BATCH_ROWS: usize = 1024;
/// Full batches in flight; the reader waits when the hasher falls behind.
const BATCHES_IN_FLIGHT: usize = 4;

/// Reads and canonicalizes on this thread; row hashing, leaf hashing and the
/// builder run on a second thread. Same result as [`inline`].
pub(super) fn pipelined(
    source: &mut dyn Source,
    job: &TreeScan<'_>,
    progress: Progress<'_>,
    feed: &mut Feed<'_>,
) -> Result<Pass, SourceError> {
    let mut encoder = row_hasher(job.spec, job.opts);
    let unordered = feed.late.is_some();
    std::thread::scope(|scope| {
        // Batches of canonical rows (up to BATCH_ROWS), which go back to
        // the reader once hashed: no allocation per row.
        let (full_tx, full_rx) = std::sync::mpsc::sync_channel::<RowBatch>(BATCHES_IN_FLIGHT);
        let (empty_tx, mut empty_rx) = std::sync::mpsc::channel::<RowBatch>();
        let hashing = scope.spawn(move || -> Option<OrderError> {
            for mut batch in full_rx {
                if let Err(e) = add_batch(feed, &mut batch) {
                    return Some(e);
                }
                // The reader may have finished; then the buffer is just freed.
                let _ = empty_tx.send(batch);
            }
            None
        });

        let mut rows = 0u64;
        let mut batch = RowBatch::default();
        // A `move` closure over references: the sink must be `Send`, and a
        // channel receiver may only be shared by `&mut`.
        let (rows_ref, batch_ref, full, empty) = (&mut rows, &mut batch, &full_tx, &mut empty_rx);
        let sink = &mut move |key: &[u8], row: &[u8]| {
            batch_ref.push(key, row);
            *rows_ref += 1;
            if rows_ref.is_multiple_of(PROGRESS_EVERY) {
                progress(job.side, *rows_ref);
            }
            if batch_ref.len() == BATCH_ROWS {
                let next = empty.try_recv().unwrap_or_default();
                // A closed channel: the hasher refused a row and stopped.
                if full.send(std::mem::replace(batch_ref, next)).is_err() {
                    return ControlFlow::Break(());
                }
            }
            ControlFlow::Continue(())
        };
        let scanned = scan_whole(unordered, source, job, &mut encoder, sink);
        if scanned.is_ok() && !batch.is_empty() {
            let _ = full_tx.send(batch);
        }
        drop(full_tx);
        let disorder = hashing
            .join()
            .map_err(|_| SourceError::Other("the hashing thread panicked".into()))?;
        match (scanned, disorder) {
            (_, Some(e)) => Ok((rows, Some(e))),
            (Err(e), None) => Err(e),
            (Ok(()), None) => Ok((rows, None)),
        }
    })
}

/// Rows a key range should hold: few enough that a range scanned ahead of
/// the builder waits in memory cheaply (about 3 MiB), many enough that a
/// query per range costs nothing.
pub(super) const RANGE_ROWS: u64 = 65_536;

/// Key ranges scanned ahead of the builder, per worker.
const RANGES_AHEAD: usize = 2;

/// What a worker sends the builder: hashed rows of one range, then the
/// range's end.
enum Msg {
    Rows(Hashed),
    End,
}

/// Keys and row hashes of up to [`BATCH_ROWS`] consecutive rows.
#[derive(Default)]
struct Hashed {
    keys: Vec<u8>,
    key_ends: Vec<usize>,
    hashes: Vec<Hash>,
}

impl Hashed {
    /// Hashes `rows` and moves their entries here, emptying `rows`.
    fn take(&mut self, rows: &mut RowBatch) {
        rows.hash();
        for (key, hash) in rows.entries() {
            self.keys.extend_from_slice(key);
            self.key_ends.push(self.keys.len());
            self.hashes.push(*hash);
        }
        rows.clear();
    }
}

/// Scans consecutive key ranges (cut by `cuts`, see [`Source::key_cuts`])
/// on one worker thread per connection in `sources`, which must all read
/// one snapshot; worker `w` takes ranges `w`, `w + n`, … in order and
/// canonicalizes and hashes their rows, and this thread feeds the builder
/// range by range. A worker runs at most [`RANGES_AHEAD`] ranges ahead of
/// the builder, so memory stays bounded whatever the table's size.
pub(super) fn ranges(
    sources: Vec<&mut dyn Source>,
    cuts: &[Vec<Value>],
    job: &TreeScan<'_>,
    progress: Progress<'_>,
    feed: &mut Feed<'_>,
) -> Result<Pass, SourceError> {
    let workers = sources.len();
    let per_range = (RANGE_ROWS as usize).div_ceil(BATCH_ROWS) + 1;
    // Each range's rows are kept by their key bytes (see [`scan_range`]).
    let cuts: &[Key] = &cuts.iter().map(|c| key::encode(c)).collect::<Vec<_>>();
    std::thread::scope(|scope| {
        let mut inboxes: Vec<Receiver<Msg>> = Vec::with_capacity(workers);
        let mut handles = Vec::with_capacity(workers);
        for (w, source) in sources.into_iter().enumerate() {
            let (tx, rx) = sync_channel::<Msg>(per_range * RANGES_AHEAD);
            inboxes.push(rx);
            handles.push(scope.spawn(move || scan_ranges(source, cuts, w, workers, job, tx)));
        }
        let mut rows = 0u64;
        let mut disorder = None;
        'ranges: for i in 0..cuts.len() {
            loop {
                match inboxes[i % workers].recv() {
                    Ok(Msg::Rows(batch)) => {
                        let mut start = 0;
                        for (&end, h) in batch.key_ends.iter().zip(&batch.hashes) {
                            let key = &batch.keys[start..end];
                            start = end;
                            if let Err(e) = feed.add(key, h) {
                                disorder = Some(e);
                                break 'ranges;
                            }
                            rows += 1;
                            if rows.is_multiple_of(PROGRESS_EVERY) {
                                progress(job.side, rows);
                            }
                        }
                    }
                    Ok(Msg::End) => break,
                    // The worker stopped on an error, reported below.
                    Err(_) => break 'ranges,
                }
            }
        }
        // Closing the inboxes stops any worker still sending.
        drop(inboxes);
        let mut failed = None;
        for h in handles {
            let r = h
                .join()
                .unwrap_or_else(|_| Err(SourceError::Other("a scanning thread panicked".into())));
            if let (Err(e), None) = (r, &failed) {
                failed = Some(e);
            }
        }
        match (disorder, failed) {
            (Some(e), _) => Ok((rows, Some(e))),
            (None, Some(e)) => Err(e),
            (None, None) => Ok((rows, None)),
        }
    })
}

/// One worker: scans its share of the key ranges in order and sends their
/// hashed rows, each range closed by [`Msg::End`].
fn scan_ranges(
    source: &mut dyn Source,
    cuts: &[Key],
    first: usize,
    step: usize,
    job: &TreeScan<'_>,
    tx: SyncSender<Msg>,
) -> Result<(), SourceError> {
    let mut hasher = row_hasher(job.spec, job.opts);
    let mut rows = RowBatch::default();
    for i in (first..cuts.len()).step_by(step) {
        let after = i.checked_sub(1).map(|p| &cuts[p]);
        let mut batch = Hashed::default();
        let mut closed = false;
        let scanned = scan_range(source, job.spec, after, &cuts[i], &mut |k, row| {
            hasher.push_keyed(k, row, &mut rows);
            if rows.len() < SIDE_BY_SIDE {
                return ControlFlow::Continue(());
            }
            batch.take(&mut rows);
            if batch.hashes.len() >= BATCH_ROWS
                && tx.send(Msg::Rows(std::mem::take(&mut batch))).is_err()
            {
                closed = true;
                return ControlFlow::Break(());
            }
            ControlFlow::Continue(())
        });
        // The builder stopped (it refused a row, or another worker failed):
        // not this worker's error.
        if closed {
            return Ok(());
        }
        scanned?;
        batch.take(&mut rows);
        if !batch.hashes.is_empty() && tx.send(Msg::Rows(batch)).is_err() {
            return Ok(());
        }
        if tx.send(Msg::End).is_err() {
            return Ok(());
        }
    }
    Ok(())
}
