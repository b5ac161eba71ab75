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
use driftsum_core::hash::row_hash;
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

/// Where a scan hashes its rows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Hashing {
    /// On the thread that reads them: right when another scan already keeps
    /// the other core busy (a diff of two local databases).
    Inline,
    /// On a second thread, fed batches of canonical row bytes, while the
    /// first reads and canonicalizes: a lone scan uses both cores.
    SecondThread,
}

/// One tree to build: what to read and how to hash it.
#[derive(Clone, Copy, Debug)]
pub struct TreeScan<'a> {
    pub spec: &'a ScanSpec,
    pub opts: &'a CanonOptions,
    pub shape: Shape,
    pub side: Side,
    pub hashing: Hashing,
}

/// Scans one side and builds its tree, hashing on a second thread (see
/// [`scan_tree`]).
pub fn build_tree(
    source: &mut dyn Source,
    spec: &ScanSpec,
    opts: &CanonOptions,
    shape: Shape,
    side: Side,
    progress: Progress<'_>,
) -> Result<BuiltTree, SourceError> {
    let job = TreeScan {
        spec,
        opts,
        shape,
        side,
        hashing: Hashing::SecondThread,
    };
    scan_tree(source, &job, progress, None)
}

/// Scans one side and builds its tree, also collecting every row's leaf
/// entry into `log` when given (for a tree file with entries). If the source
/// does not deliver keys in byte order, the scan is repeated collecting
/// `(key, hash)` pairs, which are sorted: slower and proportional to the
/// rows in memory, but right.
pub fn scan_tree(
    source: &mut dyn Source,
    job: &TreeScan<'_>,
    progress: Progress<'_>,
    mut log: Option<&mut EntryLog>,
) -> Result<BuiltTree, SourceError> {
    let spec = job.spec;
    let mut builder = driftsum_core::Builder::new(job.shape);
    let (rows, disorder) = match job.hashing {
        Hashing::Inline => first_pass_inline(source, job, progress, &mut builder, &mut log)?,
        Hashing::SecondThread => {
            first_pass_pipelined(source, job, progress, &mut builder, &mut log)?
        }
    };
    match disorder {
        None => Ok(BuiltTree {
            tree: builder.finish(),
            rows_read: rows,
            ordered: true,
        }),
        Some(OrderError::Duplicate(k)) => Err(duplicate(spec, &k)),
        Some(OrderError::OutOfOrder) => {
            let mut hasher = RowHasher::new(spec, job.opts);
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
            let tree = Tree::from_unsorted(job.shape, entries).map_err(|e| match e {
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

/// The sink's way of stopping a scan once the builder refused a row.
fn stop() -> SourceError {
    SourceError::Other("stop".into())
}

/// Reads, hashes and builds on this thread. Returns the rows read and, if
/// the builder refused a row, why (the scan stopped there).
fn first_pass_inline(
    source: &mut dyn Source,
    job: &TreeScan<'_>,
    progress: Progress<'_>,
    builder: &mut driftsum_core::Builder,
    log: &mut Option<&mut EntryLog>,
) -> Result<(u64, Option<OrderError>), SourceError> {
    let mut hasher = RowHasher::new(job.spec, job.opts);
    let mut disorder: Option<OrderError> = None;
    let mut rows = 0u64;
    source
        .scan(job.spec, None, &mut |row| {
            let (k, h) = hasher.hash(row);
            rows += 1;
            if rows.is_multiple_of(PROGRESS_EVERY) {
                progress(job.side, rows);
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
                    Err(stop())
                }
            }
        })
        .or_else(|e| if disorder.is_some() { Ok(()) } else { Err(e) })?;
    Ok((rows, disorder))
}

/// Rows the reading thread hands the hashing thread at a time.
const BATCH_ROWS: usize = 1024;
/// Full batches in flight; the reader waits when the hasher falls behind.
const BATCHES_IN_FLIGHT: usize = 4;

/// Canonical key and row bytes of up to [`BATCH_ROWS`] rows in one buffer,
/// which goes back to the reader once hashed: no allocation per row.
#[derive(Default)]
struct Batch {
    bytes: Vec<u8>,
    /// Per row: where its key ends and where its row bytes end.
    ends: Vec<(usize, usize)>,
}

/// Reads and canonicalizes on this thread; row hashing, leaf hashing and the
/// builder run on a second thread. Same result as [`first_pass_inline`].
fn first_pass_pipelined(
    source: &mut dyn Source,
    job: &TreeScan<'_>,
    progress: Progress<'_>,
    builder: &mut driftsum_core::Builder,
    log: &mut Option<&mut EntryLog>,
) -> Result<(u64, Option<OrderError>), SourceError> {
    let mut encoder = RowHasher::new(job.spec, job.opts);
    std::thread::scope(|scope| {
        let (full_tx, full_rx) = std::sync::mpsc::sync_channel::<Batch>(BATCHES_IN_FLIGHT);
        let (empty_tx, mut empty_rx) = std::sync::mpsc::channel::<Batch>();
        let hashing = scope.spawn(move || -> Option<OrderError> {
            for mut batch in full_rx {
                let mut start = 0;
                for &(key_end, row_end) in &batch.ends {
                    let key = &batch.bytes[start..key_end];
                    let h = row_hash(&batch.bytes[key_end..row_end]);
                    start = row_end;
                    if let Err(e) = builder.push(key, &h) {
                        return Some(e);
                    }
                    if let Some(log) = log.as_deref_mut() {
                        log.push(key, &h);
                    }
                }
                batch.bytes.clear();
                batch.ends.clear();
                // The reader may have finished; then the buffer is just freed.
                let _ = empty_tx.send(batch);
            }
            None
        });

        let mut rows = 0u64;
        let mut batch = Batch::default();
        // A `move` closure over references: the sink must be `Send`, and a
        // channel receiver may only be shared by `&mut`.
        let (rows_ref, batch_ref, full, empty) = (&mut rows, &mut batch, &full_tx, &mut empty_rx);
        let scanned = source.scan(job.spec, None, &mut move |row| {
            let (k, r) = encoder.encode(row);
            batch_ref.bytes.extend_from_slice(k);
            let key_end = batch_ref.bytes.len();
            batch_ref.bytes.extend_from_slice(r);
            batch_ref.ends.push((key_end, batch_ref.bytes.len()));
            *rows_ref += 1;
            if rows_ref.is_multiple_of(PROGRESS_EVERY) {
                progress(job.side, *rows_ref);
            }
            if batch_ref.ends.len() == BATCH_ROWS {
                let next = empty.try_recv().unwrap_or_default();
                // A closed channel: the hasher refused a row and stopped.
                full.send(std::mem::replace(batch_ref, next))
                    .map_err(|_| stop())?;
            }
            Ok(())
        });
        if scanned.is_ok() && !batch.ends.is_empty() {
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
    // Two scans here already keep both cores busy; a lone one hashes on a
    // second thread.
    let hashing = if source.scans_here() && target.scans_here() {
        Hashing::Inline
    } else {
        Hashing::SecondThread
    };
    let (a, b) = rayon::join(
        || source.prepare(&plan.source, opts, shape, Side::Source, hashing, progress),
        || target.prepare(&plan.target, opts, shape, Side::Target, hashing, progress),
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::check::plan::{plan, ColumnChoice};
    use crate::config::Config;
    use crate::source::sqlite::SqliteSource;

    /// A SQLite file holding `sql`, removed on drop.
    struct Db(std::path::PathBuf);

    impl Db {
        fn new(name: &str, sql: &str) -> Db {
            let path = std::env::temp_dir()
                .join(format!("driftsum-tree-{}-{name}.db", std::process::id()));
            let _ = std::fs::remove_file(&path);
            let conn = rusqlite::Connection::open(&path).expect("create");
            conn.execute_batch(sql).expect("fill");
            Db(path)
        }
    }

    impl Drop for Db {
        fn drop(&mut self) {
            let _ = std::fs::remove_file(&self.0);
        }
    }

    fn build(db: &Db, table: &str, hashing: Hashing) -> Result<(BuiltTree, u64), SourceError> {
        let mut src = SqliteSource::open(&db.0)?;
        let schema = src.schema(table)?;
        let p = plan(
            &schema,
            &schema,
            &ColumnChoice::default(),
            &Config::default(),
        )
        .expect("plan");
        let job = TreeScan {
            spec: &p.source,
            opts: &CanonOptions::default(),
            shape: Shape::default(),
            side: Side::Source,
            hashing,
        };
        let mut log = EntryLog::new();
        let built = scan_tree(&mut src, &job, &|_, _| {}, Some(&mut log))?;
        Ok((built, log.len()))
    }

    /// Hashing on a second thread builds exactly the tree (and entry log)
    /// hashing inline does: over several batches, for a source in key order
    /// and one that is not (integers and reals mixed in an untyped key).
    #[test]
    fn second_thread_builds_the_same_tree() {
        let ordered = Db::new(
            "ordered",
            "CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT, f REAL);
             WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < 4999)
             INSERT INTO t SELECT i, 'row ' || i, i * 0.25 FROM n;",
        );
        let mixed = Db::new(
            "mixed",
            "CREATE TABLE t (k PRIMARY KEY, v TEXT);
             WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < 2999)
             INSERT INTO t SELECT i, 'int' FROM n UNION ALL SELECT i + 0.5, 'real' FROM n;",
        );
        for (db, rows, in_order) in [(&ordered, 5000, true), (&mixed, 6000, false)] {
            let (a, log_a) = build(db, "t", Hashing::Inline).expect("inline");
            let (b, log_b) = build(db, "t", Hashing::SecondThread).expect("second thread");
            assert_eq!(a.tree.rows, rows);
            assert_eq!((a.ordered, b.ordered), (in_order, in_order));
            assert_eq!(a.tree, b.tree);
            assert_eq!((log_a, log_b), (rows, rows));
        }
    }

    /// A key that occurs twice (one UUID stored as text and as a blob) is
    /// refused the same way on either path.
    #[test]
    fn duplicate_keys_are_refused_on_both_paths() {
        let db = Db::new(
            "dup",
            "CREATE TABLE t (u UUID PRIMARY KEY, v TEXT);
             INSERT INTO t VALUES ('00112233-4455-6677-8899-aabbccddeeff', 'text');
             INSERT INTO t VALUES (X'00112233445566778899aabbccddeeff', 'blob');",
        );
        for hashing in [Hashing::Inline, Hashing::SecondThread] {
            let err = build(&db, "t", hashing).err().expect("refused");
            assert!(err.to_string().contains("occurs more than once"), "{err}");
        }
    }
}
