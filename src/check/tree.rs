//! The tree strategy: each side hashes its rows into a Merkle tree, the walk
//! finds the drifted key ranges, and `ranges` names what differs inside
//! them (range reads, or one merged scan per side when most rows drifted).
//!
//! The sides are [`Endpoint`]s (a database, a tree file, an agent); what the
//! check asks of them is counted in the wire encoding whatever they are, so
//! the cost reported for a local diff is what the same diff through agents
//! exchanges.

use std::time::Instant;

use driftsum_core::canon::CanonOptions;
use driftsum_core::diff::DriftRange;
use driftsum_core::tree::file::EntryLog;
use driftsum_core::tree::wire::KeyRange;
use driftsum_core::tree::OrderError;
use driftsum_core::{Hash, Key, Shape, Side, Tree, Walk};

use super::endpoint::{Endpoint, RowHasher};
use super::outcome::TableOutcome;
use super::plan::Plan;
use super::ranges::{self, ByEndpoint, Job};
use super::sink::Found;
use super::{merge, scan, Progress};
use crate::error::{CheckError, SourceError};
use crate::source::{ScanSpec, Source};

/// One side's tree, and how it was read.
pub struct BuiltTree {
    pub tree: Tree,
    pub rows_read: u64,
    /// Whether the scan delivered keys in key-byte order (so range reads can
    /// use the database's own ordering).
    pub ordered: bool,
}

/// How a scan spreads its work over threads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Threads {
    /// Read, canonicalize and hash on one thread: right when another scan
    /// already keeps the other core busy (a diff of two local databases).
    One,
    /// Read and canonicalize on one thread, hash and build on a second, fed
    /// batches of canonical row bytes.
    ReadAndHash,
    /// Key ranges scanned at once over this many connections to one
    /// snapshot, when the source can open them and cut its key (see
    /// [`Source::fork`]); otherwise as [`Threads::ReadAndHash`].
    KeyRanges(usize),
    /// Key ranges over one connection per core (three or four) where
    /// connections are cheap ([`Source::cheap_forks`]: SQLite) and there are
    /// more than two cores, otherwise [`Threads::ReadAndHash`]. On two cores
    /// reading and hashing already fill both, and SQLite's key ranges
    /// measured 15% slower than that; a server's extra connections are
    /// extra server processes, and with the server on the same cores (as on
    /// the development machine) two measured slower than one.
    Auto,
}

impl Threads {
    /// Connections for key ranges: one per core, two to four.
    pub fn per_core() -> usize {
        Threads::cores().clamp(2, 4)
    }

    fn cores() -> usize {
        std::thread::available_parallelism().map_or(2, |n| n.get())
    }
}

/// One tree to build: what to read and how to hash it.
#[derive(Clone, Copy, Debug)]
pub struct TreeScan<'a> {
    pub spec: &'a ScanSpec,
    pub opts: &'a CanonOptions,
    pub shape: Shape,
    pub side: Side,
    pub threads: Threads,
}

/// Scans one side and builds its tree with the whole machine
/// ([`Threads::Auto`]; see [`scan_tree`]).
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
        threads: Threads::Auto,
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
    let (rows, disorder) = match job.threads {
        Threads::One => scan::first_pass_inline(source, job, progress, &mut builder, &mut log)?,
        Threads::ReadAndHash => {
            scan::first_pass_pipelined(source, job, progress, &mut builder, &mut log)?
        }
        Threads::Auto if !source.cheap_forks() || Threads::cores() <= 2 => {
            scan::first_pass_pipelined(source, job, progress, &mut builder, &mut log)?
        }
        Threads::KeyRanges(_) | Threads::Auto => {
            let n = match job.threads {
                Threads::KeyRanges(n) => n,
                _ => Threads::per_core(),
            };
            let cuts = source.key_cuts(spec, scan::RANGE_ROWS)?;
            let mut forks = Vec::new();
            while !cuts.is_empty() && forks.len() + 1 < n {
                // A connection that cannot be had (a busy file, a server at
                // its connection limit) only means fewer of them.
                match source.fork() {
                    Ok(Some(f)) => forks.push(f),
                    Ok(None) | Err(_) => break,
                }
            }
            if forks.is_empty() {
                scan::first_pass_pipelined(source, job, progress, &mut builder, &mut log)?
            } else {
                let mut sources: Vec<&mut dyn Source> = vec![&mut *source];
                sources.extend(forks.iter_mut().map(|f| f.as_mut() as &mut dyn Source));
                scan::first_pass_ranges(sources, &cuts, job, progress, &mut builder, &mut log)?
            }
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
                std::ops::ControlFlow::Continue(())
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

fn duplicate(spec: &ScanSpec, k: &Key) -> SourceError {
    SourceError::Other(format!(
        "table {:?}: key {k:?} occurs more than once, so ({}) is not a key; name a unique key with --key",
        spec.table,
        spec.key.iter().map(|c| c.name.as_str()).collect::<Vec<_>>().join(", ")
    ))
}

/// When the drifted ranges hold at least one row in this many of both
/// sides' rows, two databases are read by one scan each (see `merge`)
/// rather than range by range: a range read costs a query, and a scan
/// through most of a table in one query is cheaper.
const DENSE_SHARE: u64 = 4;

/// Compares one planned table, handing its differences to `found`.
#[allow(clippy::too_many_arguments)]
pub(super) fn compare(
    source: &mut Endpoint<'_>,
    target: &mut Endpoint<'_>,
    plan: &Plan,
    opts: &CanonOptions,
    shape: Shape,
    progress: Progress<'_>,
    outcome: &mut TableOutcome,
    found: &mut Found<'_>,
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
    let threads = if source.scans_here() && target.scans_here() {
        Threads::One
    } else {
        Threads::Auto
    };
    let (a, b) = rayon::join(
        || source.prepare(&plan.source, opts, shape, Side::Source, threads, progress),
        || target.prepare(&plan.target, opts, shape, Side::Target, threads, progress),
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
    if !ranges.is_empty() {
        let keyed: Vec<KeyRange> = ranges
            .iter()
            .map(|r| KeyRange {
                after: r.after.clone(),
                through: r.through.clone(),
            })
            .collect();
        let ordered = (a.ordered(), b.ordered());
        let job = Job {
            ranges: &ranges,
            keyed: &keyed,
            nkey: plan.source.key.len(),
            opts,
            // A side read whole for each chunk is read once.
            whole: ordered.0 == Some(false) || ordered.1 == Some(false),
        };
        let drifted: u64 = ranges.iter().map(|r| r.source_rows + r.target_rows).sum();
        let dense = drifted.saturating_mul(DENSE_SHARE) >= a.rows + b.rows;
        match (&mut *source, &mut *target) {
            (Endpoint::Db(s), Endpoint::Db(t)) if dense && ordered == (Some(true), Some(true)) => {
                let (result, read_a, read_b) = std::thread::scope(|scope| {
                    let (txa, rxa) = merge::channel();
                    let (txb, rxb) = merge::channel();
                    let (s, t, keyed) = (&mut **s, &mut **t, &keyed);
                    let ha =
                        scope.spawn(move || merge::stream_side(s, &plan.source, opts, keyed, txa));
                    let hb =
                        scope.spawn(move || merge::stream_side(t, &plan.target, opts, keyed, txb));
                    let (mut sa, mut sb) = (merge::Streamed::new(rxa), merge::Streamed::new(rxb));
                    let result = merge::reconcile(&mut sa, &mut sb, &job, outcome, found);
                    // Closing the streams stops a scan still going.
                    drop((sa, sb));
                    (result, ha.join(), hb.join())
                });
                a.rows_read += read_a.unwrap_or(0);
                b.rows_read += read_b.unwrap_or(0);
                result?;
            }
            (source, target) => {
                let mut sa = ByEndpoint {
                    ep: source,
                    prepared: &mut a,
                    spec: &plan.source,
                    opts,
                };
                let mut sb = ByEndpoint {
                    ep: target,
                    prepared: &mut b,
                    spec: &plan.target,
                    opts,
                };
                ranges::reconcile(&mut sa, &mut sb, &job, outcome, found)?;
            }
        }
    }
    finish_stats(outcome, (a.rows_read, b.rows_read), fetch_started, started);
    Ok(())
}

/// The totals a comparison ends with, whichever way it ended.
fn finish_stats(
    outcome: &mut TableOutcome,
    (source_rows_read, target_rows_read): (u64, u64),
    fetch_started: Instant,
    started: Instant,
) {
    let stats = &mut outcome.stats;
    stats.source_rows_read = source_rows_read;
    stats.target_rows_read = target_rows_read;
    stats.bytes_exchanged = stats.transfer.bytes();
    stats.round_trips = stats.transfer.round_trips();
    stats.fetch_seconds = fetch_started.elapsed().as_secs_f64();
    stats.seconds = started.elapsed().as_secs_f64();
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::check::plan::{plan, ColumnChoice};
    use crate::config::Config;
    use crate::source::sqlite::scratch::Db;
    use crate::source::sqlite::SqliteSource;
    use driftsum_core::Value;

    const OPTS: CanonOptions = CanonOptions { float_digits: None };

    /// A build of `spec` with the default tree shape.
    fn job(spec: &ScanSpec, threads: Threads) -> TreeScan<'_> {
        TreeScan {
            spec,
            opts: &OPTS,
            shape: Shape::default(),
            side: Side::Source,
            threads,
        }
    }

    /// The file opened, and what a diff of `table` against itself reads.
    fn open(db: &Db, table: &str) -> Result<(SqliteSource, ScanSpec), SourceError> {
        let mut src = SqliteSource::open(&db.0)?;
        let schema = src.schema(table)?;
        let p = plan(
            &schema,
            &schema,
            &ColumnChoice::default(),
            &Config::default(),
        )
        .expect("plan");
        Ok((src, p.source))
    }

    fn build(db: &Db, table: &str, threads: Threads) -> Result<(BuiltTree, u64), SourceError> {
        let (mut src, spec) = open(db, table)?;
        let job = job(&spec, threads);
        let mut log = EntryLog::new();
        let built = scan_tree(&mut src, &job, &|_, _| {}, Some(&mut log))?;
        Ok((built, log.len()))
    }

    /// Hashing on a second thread builds exactly the tree (and entry log)
    /// hashing inline does: over several batches, for a source in key order
    /// and one that is not (integers and reals mixed in an untyped key).
    #[test]
    fn second_thread_builds_the_same_tree() {
        let ordered = Db::with(
            "ordered",
            "CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT, f REAL);
             WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < 4999)
             INSERT INTO t SELECT i, 'row ' || i, i * 0.25 FROM n;",
        );
        let mixed = Db::with(
            "mixed",
            "CREATE TABLE t (k PRIMARY KEY, v TEXT);
             WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < 2999)
             INSERT INTO t SELECT i, 'int' FROM n UNION ALL SELECT i + 0.5, 'real' FROM n;",
        );
        for (db, rows, in_order) in [(&ordered, 5000, true), (&mixed, 6000, false)] {
            let (a, log_a) = build(db, "t", Threads::One).expect("inline");
            let (b, log_b) = build(db, "t", Threads::ReadAndHash).expect("second thread");
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
        let db = Db::with(
            "dup",
            "CREATE TABLE t (u UUID PRIMARY KEY, v TEXT);
             INSERT INTO t VALUES ('00112233-4455-6677-8899-aabbccddeeff', 'text');
             INSERT INTO t VALUES (X'00112233445566778899aabbccddeeff', 'blob');",
        );
        for threads in [Threads::One, Threads::ReadAndHash] {
            let err = build(&db, "t", threads).err().expect("refused");
            assert!(err.to_string().contains("occurs more than once"), "{err}");
        }
    }

    /// Key ranges over two connections build exactly the one-thread tree,
    /// with sparse and negative ids and ranges that hold no rows at all.
    #[test]
    fn key_ranges_build_the_same_tree() {
        let db = Db::with(
            "ranges",
            "CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT);
             WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < 4999)
             INSERT INTO t SELECT i * 3 - 4000, 'row ' || i FROM n WHERE i % 7 != 3;
             INSERT INTO t VALUES (90000, 'far away');",
        );
        let (one, one_log) = build(&db, "t", Threads::One).expect("one thread");

        let (mut src, spec) = open(&db, "t").expect("open");
        let cuts = src.key_cuts(&spec, 300).expect("cuts");
        assert!(cuts.len() > 50, "{} cuts", cuts.len());
        assert_eq!(cuts.last(), Some(&vec![Value::Int(90000)]));
        let mut fork = src
            .fork()
            .expect("fork")
            .expect("a rollback-journal file forks");
        let job = job(&spec, Threads::KeyRanges(2));
        let mut builder = driftsum_core::Builder::new(job.shape);
        let mut log = EntryLog::new();
        let (rows, disorder) = scan::first_pass_ranges(
            vec![&mut src, fork.as_mut()],
            &cuts,
            &job,
            &|_, _| {},
            &mut builder,
            &mut Some(&mut log),
        )
        .expect("ranges");
        assert!(disorder.is_none());
        assert_eq!(rows, one.tree.rows);
        assert_eq!(builder.finish(), one.tree);
        assert_eq!(log.len(), one_log);
    }

    /// Only a rowid key is cut, and a WAL-mode file does not fork (two
    /// connections there could see different commits).
    #[test]
    fn ranges_only_where_every_row_is_found_in_one_snapshot() {
        let cuts = |sql: &str, name: &str| {
            let db = Db::with(name, sql);
            let (mut src, spec) = open(&db, "t").expect("open");
            src.key_cuts(&spec, 10).expect("cuts").len()
        };
        let fill = "WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < 999)
                    INSERT INTO t SELECT i, 'x' FROM n;";
        assert_eq!(
            cuts(
                &format!("CREATE TABLE t (id INTEGER PRIMARY KEY, v); {fill}"),
                "alias"
            ),
            100
        );
        // Not the rowid: such a column may hold text that no range finds.
        assert_eq!(
            cuts(
                &format!("CREATE TABLE t (id INT PRIMARY KEY, v); {fill}"),
                "int"
            ),
            0
        );
        assert_eq!(
            cuts(
                &format!("CREATE TABLE t (id INTEGER PRIMARY KEY, v) WITHOUT ROWID; {fill}"),
                "norowid"
            ),
            0
        );
        assert_eq!(
            cuts(
                &format!("CREATE TABLE t (id TEXT PRIMARY KEY, v); {fill}"),
                "text"
            ),
            0
        );
        assert_eq!(
            cuts("CREATE TABLE t (id INTEGER PRIMARY KEY, v);", "empty"),
            0
        );

        let wal = Db::with(
            "wal",
            &format!(
                "PRAGMA journal_mode = WAL; CREATE TABLE t (id INTEGER PRIMARY KEY, v); {fill}"
            ),
        );
        let mut src = SqliteSource::open(&wal.0).expect("open");
        assert!(src.fork().expect("fork").is_none());
        assert_eq!(
            build(&wal, "t", Threads::KeyRanges(2))
                .expect("falls back")
                .0
                .tree
                .rows,
            1000
        );
    }

    /// A writer waiting to commit keeps new readers out of a rollback-journal
    /// file: the fork fails at once, and the scan goes on without it.
    #[test]
    fn a_busy_file_scans_on_the_connection_it_has() {
        let db = Db::with(
            "busy",
            "CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT);
             WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < 139999)
             INSERT INTO t SELECT i, 'row ' || i FROM n;",
        );
        let (expected, _) = build(&db, "t", Threads::One).expect("one thread");
        let (mut src, spec) = open(&db, "t").expect("open");
        let path = db.0.clone();
        let writer = std::thread::spawn(move || {
            let w = rusqlite::Connection::open(&path).expect("writer");
            w.busy_timeout(std::time::Duration::from_secs(30))
                .expect("timeout");
            // Waits (holding PENDING) until the reader lets go.
            w.execute_batch("BEGIN IMMEDIATE; INSERT INTO t VALUES (-1, 'late'); COMMIT;")
                .expect("the writer commits once the scan is done");
        });
        let mut refused = false;
        for _ in 0..500 {
            match src.fork() {
                Err(_) => {
                    refused = true;
                    break;
                }
                Ok(_) => std::thread::sleep(std::time::Duration::from_millis(10)),
            }
        }
        assert!(refused, "the waiting writer never blocked a new reader");
        let job = job(&spec, Threads::KeyRanges(2));
        let built = scan_tree(&mut src, &job, &|_, _| {}, None).expect("scans anyway");
        assert_eq!(built.tree, expected.tree);
        drop(src);
        writer.join().expect("writer");
    }

    /// A range whose read fails (here a `--where` that overflows on one
    /// row) fails the key-range pass with that error: no hang, no partial
    /// tree.
    #[test]
    fn a_failing_range_fails_the_scan() {
        let db = Db::with(
            "failing",
            "CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT);
             WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < 4999)
             INSERT INTO t SELECT i, 'row ' || i FROM n;",
        );
        let (mut src, mut spec) = open(&db, "t").expect("open");
        let cuts = src.key_cuts(&spec, 100).expect("cuts");
        assert!(cuts.len() > 10);
        spec.filter =
            Some("CASE WHEN id = 2500 THEN abs(-9223372036854775807 - 1) ELSE 1 END".into());
        let mut fork = src.fork().expect("fork").expect("forks");
        let job = job(&spec, Threads::KeyRanges(2));
        let mut builder = driftsum_core::Builder::new(job.shape);
        let err = scan::first_pass_ranges(
            vec![&mut src, fork.as_mut()],
            &cuts,
            &job,
            &|_, _| {},
            &mut builder,
            &mut None,
        )
        .expect_err("the failing range fails the pass");
        assert!(err.to_string().contains("overflow"), "{err}");
    }
}
