//! The build layer: a database becomes a tree. [`scan_tree`] reads a
//! table's rows in key order and feeds the tree builder, on one thread, on
//! two, or over key ranges scanned at once (`first_pass`); [`scan_range`]
//! reads one key range, for the range workers, the reconciliation and the
//! agent alike. Comparing trees lives in `check`, serving them in `agent`.

mod first_pass;
mod job;
mod late;
mod range;
mod storage_order;

use driftsum_core::canon::CanonOptions;
use driftsum_core::tree::file::{ColumnMeta, EntryLog, TreeMeta};
use driftsum_core::tree::{KeptLeaves, OrderError};
use driftsum_core::{Hash, Key, Shape, Side, Tree, ENCODING_VERSION};

use job::duplicate;
pub use job::{row_hasher, Progress, Threads, TreeScan};
pub use range::{scan_range, KeyedSink};

use crate::source::{ColumnSpec, ScanSpec, Source, SourceError};

/// What a tree built from `spec` with these options must say about itself.
pub fn expected_meta(spec: &ScanSpec, opts: &CanonOptions, shape: Shape) -> TreeMeta {
    let cols = |c: &[ColumnSpec]| -> Vec<ColumnMeta> {
        c.iter()
            .map(|c| ColumnMeta {
                name: c.name.clone(),
                ty: c.rule.ty,
            })
            .collect()
    };
    let mut columns = cols(&spec.values);
    // Rows hash their columns in name order, so the scan order is irrelevant.
    columns.sort_by(|a, b| a.name.cmp(&b.name));
    TreeMeta {
        encoding_version: ENCODING_VERSION,
        canon: *opts,
        shape,
        table: spec.table.clone(),
        key_columns: cols(&spec.key),
        columns,
        filter: spec.filter_label(),
        built_from: String::new(),
    }
}

/// One side's tree, and how it was read.
pub struct BuiltTree {
    pub tree: Tree,
    pub rows_read: u64,
    /// Whether the scan delivered keys in key-byte order (so range reads can
    /// use the database's own ordering).
    pub ordered: bool,
    /// Every leaf's entries, when the build was asked to keep them
    /// ([`scan_tree_keeping`]), they fit its bound, and the scan came in key
    /// order.
    pub kept: Option<KeptLeaves>,
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
/// entry into `log` when given (for a tree file with entries). Where the
/// source reads faster in storage order, that is tried first
/// (`storage_order`). If the source does not deliver keys in byte order,
/// the scan is repeated (in the order the source reads fastest) collecting
/// `(key, hash)` pairs, which are sorted: proportional to the rows in
/// memory, but right.
pub fn scan_tree(
    source: &mut dyn Source,
    job: &TreeScan<'_>,
    progress: Progress<'_>,
    log: Option<&mut EntryLog>,
) -> Result<BuiltTree, SourceError> {
    scan_tree_with(source, job, progress, log, 0)
}

/// [`scan_tree`], also keeping every leaf's entries in memory up to `most`
/// bytes of them ([`BuiltTree::kept`]; past that none), so that the entries
/// of a drifted range are known without reading it again: for a side whose
/// range reads cannot go through the key's index, whose rows are then read
/// by their exact keys.
pub fn scan_tree_keeping(
    source: &mut dyn Source,
    job: &TreeScan<'_>,
    progress: Progress<'_>,
    most: usize,
) -> Result<BuiltTree, SourceError> {
    scan_tree_with(source, job, progress, None, most)
}

fn scan_tree_with(
    source: &mut dyn Source,
    job: &TreeScan<'_>,
    progress: Progress<'_>,
    mut log: Option<&mut EntryLog>,
    keep: usize,
) -> Result<BuiltTree, SourceError> {
    let spec = job.spec;
    let mut rows = 0;
    let new_builder = || match keep {
        0 => driftsum_core::Builder::new(job.shape),
        most => driftsum_core::Builder::keeping_leaves(job.shape, most),
    };
    // A tree file's entry log is written in key order as the rows come,
    // which a pass in storage order cannot do; nor can it keep leaves.
    if log.is_none()
        && keep == 0
        && job.threads.one_connection(source.cheap_forks())
        && source.reads_faster_unordered(spec)?
    {
        match storage_order::build(source, job, progress)? {
            // Keys that order as their bytes do are the only ones read so.
            storage_order::Outcome::Built { tree, rows } => {
                return Ok(BuiltTree {
                    tree,
                    rows_read: rows,
                    ordered: true,
                    kept: None,
                })
            }
            storage_order::Outcome::Disordered { rows: read } => rows = read,
        }
    }
    let mut builder = new_builder();
    let mut feed = first_pass::Feed::new(&mut builder, log.as_deref_mut());
    let (read, mut disorder) = first_pass_any(source, job, progress, &mut feed)?;
    rows += read;
    if matches!(disorder, Some(OrderError::OutOfOrder)) && source.scans_again_in_key_order(spec) {
        builder = new_builder();
        if let Some(log) = log.as_deref_mut() {
            *log = EntryLog::new();
        }
        let mut feed = first_pass::Feed::new(&mut builder, log.as_deref_mut());
        let (again, order) = first_pass_any(source, job, progress, &mut feed)?;
        rows += again;
        disorder = order;
    }
    match disorder {
        None => {
            let (tree, kept) = builder.finish_keeping();
            Ok(BuiltTree {
                tree,
                rows_read: rows,
                ordered: true,
                kept,
            })
        }
        Some(OrderError::Duplicate(k)) => Err(duplicate(spec, &k)),
        Some(OrderError::OutOfOrder) => {
            let mut hasher = row_hasher(spec, job.opts);
            let mut entries: Vec<(Key, Hash)> = Vec::new();
            // In the order the source reads fastest: the entries are sorted
            // next anyway, and key order is what this source could not give.
            source.scan_unordered(spec, &mut |row| {
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
                kept: None,
            })
        }
    }
}

/// One first pass of `job` with the read set-up its [`Threads`] asks for:
/// the rows read, and the order error that stopped the builder, if any.
fn first_pass_any(
    source: &mut dyn Source,
    job: &TreeScan<'_>,
    progress: Progress<'_>,
    feed: &mut first_pass::Feed<'_>,
) -> Result<(u64, Option<OrderError>), SourceError> {
    Ok(match job.threads {
        Threads::One => first_pass::inline(source, job, progress, feed)?,
        t if t.one_connection(source.cheap_forks()) => {
            first_pass::pipelined(source, job, progress, feed)?
        }
        _ => {
            let n = match job.threads {
                Threads::KeyRanges(n) => n,
                _ => Threads::per_core(),
            };
            let cuts = source.key_cuts(job.spec, first_pass::RANGE_ROWS)?;
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
                first_pass::pipelined(source, job, progress, feed)?
            } else {
                let mut sources: Vec<&mut dyn Source> = vec![&mut *source];
                sources.extend(forks.iter_mut().map(|f| f.as_mut() as &mut dyn Source));
                first_pass::ranges(sources, &cuts, job, progress, feed)?
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source::sqlite::scratch::Db;
    use crate::source::sqlite::SqliteSource;
    use crate::source::{Column, TableSchema};
    use driftsum_core::coerce::ColumnRule;
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
        Ok((src, spec_of(&schema)))
    }

    /// The table's key columns, then every other column, each read by its
    /// own type.
    fn spec_of(schema: &TableSchema) -> ScanSpec {
        let spec = |c: &Column| ColumnSpec {
            name: c.name.clone(),
            rule: ColumnRule {
                trailing_spaces: c.trailing_spaces,
                ..ColumnRule::new(c.ty)
            },
        };
        let is_key = |c: &&Column| schema.primary_key.contains(&c.name);
        ScanSpec {
            table: schema.name.clone(),
            key: schema
                .primary_key
                .iter()
                .filter_map(|k| schema.column(k))
                .map(spec)
                .collect(),
            values: schema
                .columns
                .iter()
                .filter(|c| !is_key(c))
                .map(spec)
                .collect(),
            filter: None,
            ranges: Vec::new(),
        }
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
        let (rows, disorder) = first_pass::ranges(
            vec![&mut src, fork.as_mut()],
            &cuts,
            &job,
            &|_, _| {},
            &mut first_pass::Feed::new(&mut builder, Some(&mut log)),
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
        let err = first_pass::ranges(
            vec![&mut src, fork.as_mut()],
            &cuts,
            &job,
            &|_, _| {},
            &mut first_pass::Feed::new(&mut builder, None),
        )
        .expect_err("the failing range fails the pass");
        assert!(err.to_string().contains("overflow"), "{err}");
    }

    /// A table keyed by text times whose rowids ascend with its keys but
    /// for one row written late with an early key. Written last (as a
    /// repair writes it), a look at the last row sends the scan through the
    /// key's index at once: one scan. Followed by more rows in order, the
    /// first whole scan learns the order is broken only past where it could
    /// take its rows back, and one more scan through the index builds the
    /// tree in order: two scans, no key held in memory. Either way the tree
    /// is the one of the table written in key order.
    #[test]
    fn a_late_row_costs_one_more_scan_at_most_not_a_sort() {
        let rows = |from: i64, to: i64| {
            format!(
                "WITH RECURSIVE n(i) AS (SELECT {from} UNION ALL SELECT i + 1 FROM n WHERE i < {to})
                 INSERT INTO t SELECT strftime('%Y-%m-%d %H:%M:%S', 1700000000 + i * 60, 'unixepoch'),
                                      'row ' || i FROM n;"
            )
        };
        let create = "CREATE TABLE t (k TIMESTAMP PRIMARY KEY, v TEXT);";
        let late = "INSERT INTO t VALUES ('2020-01-01 00:00:00', 'late');";
        let cases = [
            (
                "late-last",
                format!("{create} {} {late}", rows(1, 20_000)),
                20_001..=20_001,
            ),
            (
                "late-middle",
                format!(
                    "{create} {} {late} {}",
                    rows(1, 10_000),
                    rows(10_001, 20_000)
                ),
                20_002..=40_002,
            ),
        ];
        let in_order = Db::with("in-order", &format!("{create} {late} {}", rows(1, 20_000)));
        let (expected, _) = build(&in_order, "t", Threads::ReadAndHash).expect("in order");
        for (name, sql, read) in cases {
            let db = Db::with(name, &sql);
            let (built, log) = build(&db, "t", Threads::ReadAndHash).expect(name);
            assert!(built.ordered, "{name}: built from a scan in key order");
            assert_eq!((built.tree.rows, log), (20_001, 20_001), "{name}");
            assert!(
                read.contains(&built.rows_read),
                "{name}: {} rows read",
                built.rows_read
            );
            assert_eq!(built.tree, expected.tree, "{name}");
        }
    }
}
