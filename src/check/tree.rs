//! The tree strategy: each side hashes its rows into a Merkle tree, the walk
//! finds the drifted key ranges, and only those ranges are re-read and
//! compared row by row.

use std::time::Instant;

use driftsum_core::canon::{self, CanonOptions};
use driftsum_core::diff::DriftRange;
use driftsum_core::hash::row_hash;
use driftsum_core::tree::OrderError;
use driftsum_core::{key, Hash, Key, Shape, Side, Tree, Walk};

use super::outcome::{RangeOutcome, TableOutcome};
use super::plan::Plan;
use super::Progress;
use crate::error::{CheckError, SourceError};
use crate::reconcile::{compare_rows, fetch_range};
use crate::source::{ScanSpec, Source};

/// One side's tree, and how it was read.
pub struct BuiltTree {
    pub tree: Tree,
    pub rows_read: u64,
    /// Whether the scan delivered keys in key-byte order (so range reads can
    /// use the database's own ordering).
    pub ordered: bool,
}

/// How often (in rows) a scan reports progress.
const PROGRESS_EVERY: u64 = 1 << 16;

/// Scans one side and builds its tree. If the source does not deliver keys
/// in byte order, the scan is repeated collecting `(key, hash)` pairs, which
/// are sorted: slower and proportional to the rows in memory, but right.
pub fn build_tree(
    source: &mut dyn Source,
    spec: &ScanSpec,
    opts: &CanonOptions,
    shape: Shape,
    side: Side,
    progress: Progress<'_>,
) -> Result<BuiltTree, SourceError> {
    let nkey = spec.key.len();
    let names: Vec<&str> = spec.values.iter().map(|c| c.name.as_str()).collect();
    let order: Vec<usize> = canon::name_order(&names)
        .into_iter()
        .map(|i| i + nkey)
        .collect();
    let mut kbuf = Vec::with_capacity(64);
    let mut rbuf = Vec::with_capacity(256);
    let mut builder = driftsum_core::Builder::new(shape);
    let mut disorder: Option<OrderError> = None;
    let mut rows = 0u64;
    source
        .scan(spec, None, &mut |row| {
            key::encode_into(&mut kbuf, &row[..nkey]);
            canon::encode_row(&mut rbuf, row, &order, opts);
            let h = row_hash(&kbuf, &rbuf);
            rows += 1;
            if rows.is_multiple_of(PROGRESS_EVERY) {
                progress(side, rows);
            }
            match builder.push(&kbuf, &h) {
                Ok(()) => Ok(()),
                Err(e) => {
                    disorder = Some(e);
                    Err(SourceError::Other("stop".into()))
                }
            }
        })
        .or_else(|e| if disorder.is_some() { Ok(()) } else { Err(e) })?;
    match disorder {
        None => Ok(BuiltTree {
            tree: builder.finish(),
            rows_read: rows,
            ordered: true,
        }),
        Some(OrderError::Duplicate(k)) => Err(duplicate(spec, &k)),
        Some(OrderError::OutOfOrder) => {
            let mut entries: Vec<(Key, Hash)> = Vec::new();
            source.scan(spec, None, &mut |row| {
                key::encode_into(&mut kbuf, &row[..nkey]);
                canon::encode_row(&mut rbuf, row, &order, opts);
                entries.push((Key::from_bytes(&kbuf), row_hash(&kbuf, &rbuf)));
                Ok(())
            })?;
            let read = rows + entries.len() as u64;
            let tree = Tree::from_unsorted(shape, entries).map_err(|e| match e {
                OrderError::Duplicate(k) => duplicate(spec, &k),
                OrderError::OutOfOrder => SourceError::Other("sorted keys out of order".into()),
            })?;
            Ok(BuiltTree {
                tree,
                rows_read: read,
                ordered: false,
            })
        }
    }
}

fn duplicate(spec: &ScanSpec, k: &Key) -> SourceError {
    SourceError::Other(format!(
        "table {:?}: key {k:?} occurs more than once, so ({}) is not a key; name a unique key with --key",
        spec.table,
        spec.key.iter().map(|c| c.name.as_str()).collect::<Vec<_>>().join(", ")
    ))
}

fn key_values(k: &Key) -> Vec<driftsum_core::Value> {
    key::decode(k.as_bytes()).unwrap_or_default()
}

/// Compares one planned table.
pub fn compare(
    source: &mut dyn Source,
    target: &mut dyn Source,
    plan: &Plan,
    opts: &CanonOptions,
    shape: Shape,
    progress: Progress<'_>,
    outcome: &mut TableOutcome,
) -> Result<(), CheckError> {
    let started = Instant::now();
    let (a, b) = rayon::join(
        || build_tree(source, &plan.source, opts, shape, Side::Source, progress),
        || build_tree(target, &plan.target, opts, shape, Side::Target, progress),
    );
    let a = a.map_err(CheckError::Source)?;
    let b = b.map_err(CheckError::Target)?;
    outcome.stats.scan_seconds = started.elapsed().as_secs_f64();
    outcome.source_rows = a.tree.rows;
    outcome.target_rows = b.tree.rows;
    outcome.stats.source_rows_read = a.rows_read;
    outcome.stats.target_rows_read = b.rows_read;

    let walk_started = Instant::now();
    let mut walk = Walk::new(&a.tree, &b.tree);
    let ranges: Vec<DriftRange> = walk.by_ref().collect::<Result<_, _>>()?;
    let ws = walk.stats();
    outcome.stats.nodes_compared = ws.nodes_compared;
    outcome.stats.bytes_exchanged = ws.bytes_exchanged;
    outcome.stats.round_trips = ws.round_trips;
    outcome.stats.walk_seconds = walk_started.elapsed().as_secs_f64();

    let fetch_started = Instant::now();
    let nkey = plan.source.key.len();
    for r in &ranges {
        let src_rows =
            fetch_range(source, &plan.source, r, a.ordered).map_err(CheckError::Source)?;
        let tgt_rows =
            fetch_range(target, &plan.target, r, b.ordered).map_err(CheckError::Target)?;
        outcome.stats.source_rows_read += src_rows.len() as u64;
        outcome.stats.target_rows_read += tgt_rows.len() as u64;
        outcome
            .differences
            .extend(compare_rows(src_rows, tgt_rows, nkey, opts));
        outcome.ranges.push(RangeOutcome {
            first: key_values(&r.first),
            last: key_values(&r.through),
            source_rows: r.source_rows,
            target_rows: r.target_rows,
        });
    }
    outcome.stats.fetch_seconds = fetch_started.elapsed().as_secs_f64();
    // With --float-digits, a range can hold only tolerated float differences.
    outcome.ranges.retain(|r| {
        let first = key::encode(&r.first);
        let last = key::encode(&r.last);
        outcome.differences.iter().any(|d| {
            let k = key::encode(&d.key);
            k >= first && k <= last
        })
    });
    outcome.stats.seconds = started.elapsed().as_secs_f64();
    Ok(())
}
