//! The tree strategy: each side hashes its rows into a Merkle tree, the walk
//! finds the drifted key ranges, the two sides' leaf entries in those ranges
//! name the keys that differ, and only the rows with those keys are compared
//! value by value.
//!
//! The sides are [`Endpoint`]s (a database, a tree file, an agent); what the
//! check asks of them is counted in the wire encoding whatever they are, so
//! the cost reported for a local diff is what the same diff through agents
//! exchanges.

use std::time::Instant;

use driftsum_core::canon::CanonOptions;
use driftsum_core::diff::{entry_differences, DriftRange, KeyDiff};
use driftsum_core::tree::file::EntryLog;
use driftsum_core::tree::wire::KeyRange;
use driftsum_core::tree::{wire, Entry, OrderError};
use driftsum_core::{key, Hash, Key, Shape, Side, Tree, Value, Walk};

use super::endpoint::{Endpoint, RowHasher};
use super::outcome::{PhaseCost, RangeOutcome, TableOutcome};
use super::plan::Plan;
use super::Progress;
use crate::error::{CheckError, SourceError};
use crate::reconcile::{compare_rows, DiffKind, Difference, KeyedRow};
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
    build_tree_logged(source, spec, opts, shape, side, progress, None)
}

/// [`build_tree`], also collecting every row's leaf entry into `log` (for a
/// tree file with entries).
pub fn build_tree_logged(
    source: &mut dyn Source,
    spec: &ScanSpec,
    opts: &CanonOptions,
    shape: Shape,
    side: Side,
    progress: Progress<'_>,
    mut log: Option<&mut EntryLog>,
) -> Result<BuiltTree, SourceError> {
    let mut hasher = RowHasher::new(spec, opts);
    let mut builder = driftsum_core::Builder::new(shape);
    let mut disorder: Option<OrderError> = None;
    let mut rows = 0u64;
    source
        .scan(spec, None, &mut |row| {
            let (k, h) = hasher.hash(row);
            rows += 1;
            if rows.is_multiple_of(PROGRESS_EVERY) {
                progress(side, rows);
            }
            match builder.push(k, &h) {
                Ok(()) => {
                    if let Some(log) = log.as_deref_mut() {
                        log.push(k, &h);
                    }
                    Ok(())
                }
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
                let (k, h) = hasher.hash(row);
                entries.push((Key::from_bytes(k), h));
                Ok(())
            })?;
            let read = rows + entries.len() as u64;
            entries.sort_unstable_by(|a, b| a.0.cmp(&b.0));
            if let Some(log) = log {
                *log = EntryLog::new();
                for (k, h) in &entries {
                    log.push(k.as_bytes(), h);
                }
            }
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

fn key_values(k: &Key) -> Vec<Value> {
    key::decode(k.as_bytes()).unwrap_or_default()
}

/// What fetching one side's entries of the drifted ranges costs on the
/// wire: the pages an agent sends.
fn entries_cost(cost: &mut PhaseCost, ranges: &[KeyRange], entries: &[Vec<Entry>]) {
    for (req, page, more) in wire::entry_pages(0, ranges, entries) {
        cost.round_trips += 1;
        cost.items += page.iter().map(Vec::len).sum::<usize>() as u64;
        cost.bytes += (req.encode().len() + wire::encode_entries(&page, more).len()) as u64;
    }
}

/// What fetching one side's rows by key costs on the wire.
fn rows_cost(cost: &mut PhaseCost, groups: &[(Option<Key>, Vec<Key>)], rows: &[KeyedRow]) {
    for req in wire::rows_pages(0, groups) {
        let keys: Vec<&Key> = req.groups.iter().flat_map(|g| &g.1).collect();
        let found: Vec<Vec<Value>> = rows
            .iter()
            .filter(|r| keys.binary_search(&&r.key).is_ok())
            .map(|r| r.values.clone())
            .collect();
        cost.round_trips += 1;
        cost.items += found.len() as u64;
        cost.bytes += (req.encode().len() + wire::encode_rows(&found).len()) as u64;
    }
}

/// The rows of `rows` (key-sorted) with keys in `range`.
fn in_range(rows: &[KeyedRow], range: &KeyRange) -> Vec<KeyedRow> {
    let start = rows.partition_point(|r| range.after.as_ref().is_some_and(|a| r.key <= *a));
    rows[start..]
        .iter()
        .take_while(|r| r.key <= range.through)
        .cloned()
        .collect()
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

/// Compares one planned table.
pub fn compare(
    source: &mut Endpoint<'_>,
    target: &mut Endpoint<'_>,
    plan: &Plan,
    opts: &CanonOptions,
    shape: Shape,
    progress: Progress<'_>,
    outcome: &mut TableOutcome,
) -> Result<(), CheckError> {
    if let (Some(a), Some(b)) = (source.file(), target.file()) {
        let (na, nb) = (a.path().display(), b.path().display());
        a.meta()
            .comparable(b.meta(), &na.to_string(), &nb.to_string())
            .map_err(|m| CheckError::Invalid(m.0))?;
    }
    let started = Instant::now();
    let (a, b) = rayon::join(
        || source.prepare(&plan.source, opts, shape, Side::Source, progress),
        || target.prepare(&plan.target, opts, shape, Side::Target, progress),
    );
    let mut a = a.map_err(CheckError::Source)?;
    let mut b = b.map_err(CheckError::Target)?;
    outcome.stats.scan_seconds = started.elapsed().as_secs_f64();
    outcome.source_rows = a.rows;
    outcome.target_rows = b.rows;

    let walk_started = Instant::now();
    let mut walk = Walk::new(
        source.walker(&a).map_err(CheckError::Source)?,
        target.walker(&b).map_err(CheckError::Target)?,
    );
    let ranges: Vec<DriftRange> = walk.by_ref().collect::<Result<_, _>>()?;
    let ws = walk.stats().clone();
    drop(walk);
    outcome.stats.nodes_compared = ws.nodes_compared;
    outcome.stats.transfer.levels = ws.levels;
    outcome.stats.walk_seconds = walk_started.elapsed().as_secs_f64();

    let fetch_started = Instant::now();
    let nkey = plan.source.key.len();
    let transfer = &mut outcome.stats.transfer;
    let keyed: Vec<KeyRange> = ranges
        .iter()
        .map(|r| KeyRange {
            after: r.after.clone(),
            through: r.through.clone(),
        })
        .collect();
    let (ea, eb) = if ranges.is_empty() {
        (Some(Vec::new()), Some(Vec::new()))
    } else {
        let ea = source
            .entries(&mut a, &plan.source, opts, &keyed)
            .map_err(CheckError::Source)?;
        let eb = target
            .entries(&mut b, &plan.target, opts, &keyed)
            .map_err(CheckError::Target)?;
        (ea, eb)
    };
    for e in [&ea, &eb].into_iter().flatten() {
        entries_cost(&mut transfer.entries, &keyed, e);
    }
    let range_outcome = |r: &DriftRange, first: Option<Key>| RangeOutcome {
        first: key_values(first.as_ref().unwrap_or(&r.through)),
        last: key_values(&r.through),
        source_rows: r.source_rows,
        target_rows: r.target_rows,
    };
    let (Some(ea), Some(eb)) = (&ea, &eb) else {
        // A tree file without entries: the ranges are all that is known.
        for (i, r) in ranges.iter().enumerate() {
            let mut first = [&ea, &eb]
                .into_iter()
                .flatten()
                .filter_map(|e| e[i].first().map(|e| e.key.clone()))
                .min();
            for f in [source.file(), target.file()].into_iter().flatten() {
                let k = f.first_key_after(r.after.as_ref()).ok().flatten();
                first = first.into_iter().chain(k).min();
            }
            outcome.ranges.push(range_outcome(r, first));
        }
        outcome.stats.source_rows_read = a.rows_read;
        outcome.stats.target_rows_read = b.rows_read;
        outcome.stats.bytes_exchanged = transfer.bytes();
        outcome.stats.round_trips = transfer.round_trips();
        outcome.stats.fetch_seconds = fetch_started.elapsed().as_secs_f64();
        outcome.stats.seconds = started.elapsed().as_secs_f64();
        return Ok(());
    };
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
        false => source
            .rows(&mut a, &plan.source, &ga)
            .map_err(CheckError::Source)?,
    };
    let rb = match gb.is_empty() {
        true => Some(Vec::new()),
        false => target
            .rows(&mut b, &plan.target, &gb)
            .map_err(CheckError::Target)?,
    };
    if let (Some(ra), Some(rb)) = (&ra, &rb) {
        rows_cost(&mut transfer.rows, &ga, ra);
        rows_cost(&mut transfer.rows, &gb, rb);
    }
    for (i, r) in ranges.iter().enumerate() {
        if diffs[i].is_empty() {
            continue;
        }
        let found = match (&ra, &rb) {
            (Some(ra), Some(rb)) => {
                compare_rows(in_range(ra, &keyed[i]), in_range(rb, &keyed[i]), nkey, opts)
            }
            _ => key_differences(&diffs[i]),
        };
        // With --float-digits, a range can hold only tolerated float
        // differences: it is then not drift.
        if found.is_empty() {
            continue;
        }
        let first = [&ea[i], &eb[i]]
            .into_iter()
            .filter_map(|e| e.first().map(|e| e.key.clone()))
            .min();
        outcome.differences.extend(found);
        outcome.ranges.push(range_outcome(r, first));
    }
    outcome.stats.source_rows_read = a.rows_read;
    outcome.stats.target_rows_read = b.rows_read;
    outcome.stats.bytes_exchanged = transfer.bytes();
    outcome.stats.round_trips = transfer.round_trips();
    outcome.stats.fetch_seconds = fetch_started.elapsed().as_secs_f64();
    outcome.stats.seconds = started.elapsed().as_secs_f64();
    Ok(())
}
