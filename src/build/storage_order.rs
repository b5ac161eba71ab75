//! A first pass in storage order. Where an engine reads a whole table
//! faster unordered than through its key's index (PostgreSQL: a sequential
//! scan of a table keyed by one integer), the rows are read so and built as
//! they come, through a small window that puts nearby disorder right
//! (`late`). A row that arrives below the greatest row already handed to
//! the builder (a row updated since the table was written sits at its end) is
//! left out and its entry kept. Afterwards the leaves those keys fall in
//! are built again with them: from the entries the builder kept of every
//! leaf ([`Tree::mend`]) while those fit in [`MOST_KEPT`], else from a read
//! of just those leaves' keys, in key order and in the same snapshot
//! ([`Tree::splice`]). Either gives the tree of every row. When too many
//! rows come late, or (reading again) they fall in too many leaves for a
//! query each to pay, the pass gives up and the caller reads in key order
//! as before: at worst one more scan, never a wrong tree.

use std::ops::ControlFlow;

use driftsum_core::row::{RowBatch, RowHasher};
use driftsum_core::tree::{LeafRun, MendError, OrderError};
use driftsum_core::{Builder, Tree};

use super::first_pass::{self, Feed};
use super::job::{duplicate, row_hasher, Progress, Threads, TreeScan};
use super::late::Late;
use super::range::scan_range;
use crate::source::{Source, SourceError};

/// What a pass in storage order ends with.
pub(super) enum Outcome {
    /// The tree of every row, and the rows read for it (those read again
    /// included).
    Built { tree: Tree, rows: u64 },
    /// The table is too far from key order: it must be read in key order.
    /// `rows` were read before giving up.
    Disordered { rows: u64 },
}

/// The most bytes of leaf entries a pass keeps for mending (about 22 a row
/// for an integer key: tables up to about 380,000 rows). Kept on each side
/// of a diff at once, so the bound is on memory a diff did not need before;
/// a larger table's late rows have their leaves read again instead.
const MOST_KEPT: usize = 8 << 20;

/// At most one leaf run (a query) read again per this many rows: beyond
/// that, reading the table again in key order costs less.
const ROWS_PER_RUN: u64 = 2048;
/// Runs always allowed, however small the table.
const FEWEST_RUNS: usize = 64;

/// Builds `job`'s tree from a pass in storage order (see the module's
/// doc); the caller has checked [`Source::reads_faster_unordered`].
pub(super) fn build(
    source: &mut dyn Source,
    job: &TreeScan<'_>,
    progress: Progress<'_>,
) -> Result<Outcome, SourceError> {
    build_keeping(source, job, progress, MOST_KEPT)
}

/// [`build`], keeping at most `most_kept` bytes of leaf entries.
fn build_keeping(
    source: &mut dyn Source,
    job: &TreeScan<'_>,
    progress: Progress<'_>,
    most_kept: usize,
) -> Result<Outcome, SourceError> {
    let mut builder = Builder::keeping_leaves(job.shape, most_kept);
    let mut feed = Feed {
        builder: &mut builder,
        log: None,
        late: Some(Late::default()),
    };
    let (rows, disorder) = match job.threads {
        Threads::One => first_pass::inline(source, job, progress, &mut feed)?,
        _ => first_pass::pipelined(source, job, progress, &mut feed)?,
    };
    let late = feed.late.take().unwrap_or_default();
    let late = match disorder.map_or_else(|| late.finish(&mut builder), Err) {
        Ok(late) => late,
        Err(OrderError::Duplicate(k)) => return Err(duplicate(job.spec, &k)),
        Err(OrderError::OutOfOrder) => return Ok(Outcome::Disordered { rows }),
    };
    let (tree, kept) = builder.finish_keeping();
    if late.is_empty() {
        return Ok(Outcome::Built { tree, rows });
    }
    if let Some(kept) = kept {
        let tree = tree.mend(&kept, &late).map_err(|e| match e {
            MendError::Duplicate(k) => duplicate(job.spec, &k),
            MendError::NotThisTree => {
                SourceError::Other(format!("table {:?}: mending its tree: {e}", job.spec.table))
            }
        })?;
        return Ok(Outcome::Built { tree, rows });
    }
    let runs = tree.runs_of(late.iter().map(|(k, _)| k));
    if runs.len() > FEWEST_RUNS.max((rows / ROWS_PER_RUN) as usize) {
        return Ok(Outcome::Disordered { rows });
    }
    let mut read = rows;
    let mut rebuilt = Vec::with_capacity(runs.len());
    let mut hasher = row_hasher(job.spec, job.opts);
    for run in runs {
        let (leaves, n) = read_run(source, job, &mut hasher, &run)?;
        read += n;
        rebuilt.push((run, leaves));
    }
    let tree = tree.splice(rebuilt).map_err(|e| {
        SourceError::Other(format!(
            "table {:?}: {e}, though both reads were in one snapshot",
            job.spec.table
        ))
    })?;
    Ok(Outcome::Built { tree, rows: read })
}

/// Reads the rows of one run again, in key order, and builds them into a
/// tree whose leaves replace the run's; with the rows the database sent.
fn read_run(
    source: &mut dyn Source,
    job: &TreeScan<'_>,
    hasher: &mut RowHasher,
    run: &LeafRun,
) -> Result<(Tree, u64), SourceError> {
    let mut builder = Builder::new(job.shape);
    let mut feed = Feed::new(&mut builder, None);
    let mut batch = RowBatch::default();
    let mut refused: Option<OrderError> = None;
    let sent = scan_range(
        source,
        job.spec,
        run.after.as_ref(),
        &run.through,
        &mut |key, row| {
            hasher.push_keyed(key, row, &mut batch);
            if batch.len() < first_pass::SIDE_BY_SIDE {
                return ControlFlow::Continue(());
            }
            match first_pass::add_batch(&mut feed, &mut batch) {
                Ok(()) => ControlFlow::Continue(()),
                Err(e) => {
                    refused = Some(e);
                    ControlFlow::Break(())
                }
            }
        },
    )?;
    if refused.is_none() {
        refused = first_pass::add_batch(&mut feed, &mut batch).err();
    }
    match refused {
        None => Ok((builder.finish(), sent)),
        Some(OrderError::Duplicate(k)) => Err(duplicate(job.spec, &k)),
        Some(OrderError::OutOfOrder) => Err(SourceError::Other(format!(
            "table {:?}: keys after {:?} read in key order came out of order",
            job.spec.table, run.after
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source::postgres::test_writer::TestWriter;
    use crate::source::postgres::PgSource;
    use crate::source::{ColumnSpec, ScanSpec};
    use driftsum_core::canon::CanonOptions;
    use driftsum_core::coerce::ColumnRule;
    use driftsum_core::{LogicalType, Shape, Side};

    /// Against the test server (`DRIFTSUM_TEST_POSTGRES`; skipped without
    /// it): a table whose updated rows sit at its end is built in storage
    /// order into the tree a build in key order makes, both from the kept
    /// leaves (no row read twice) and, keeping none, by reading the late
    /// rows' leaves again (those, not the table); late rows in more leaf
    /// runs than a query each pays for give up after the one pass.
    #[test]
    fn kept_leaves_and_leaves_read_again_give_the_key_order_tree() {
        let Some(writer) = TestWriter::connect() else {
            return;
        };
        let url = &writer.url;
        let table = format!("driftsum_storage_order_{}", std::process::id());
        let exec = |sql: String| writer.exec(sql);
        let rows = 5_000u64;
        exec(format!(
            "DROP TABLE IF EXISTS {table};
             CREATE TABLE {table} (id bigint PRIMARY KEY, v text);
             INSERT INTO {table} SELECT g, 'row ' || g FROM generate_series(1, {rows}) g;
             UPDATE {table} SET v = v WHERE id % 97 = 3;"
        ));
        let column = |name: &str, ty| ColumnSpec {
            name: name.into(),
            rule: ColumnRule::new(ty),
        };
        let spec = ScanSpec {
            table: table.clone(),
            key: vec![column("id", LogicalType::Integer)],
            values: vec![column("v", LogicalType::Text)],
            filter: None,
            ranges: Vec::new(),
        };
        let opts = CanonOptions { float_digits: None };
        let job = TreeScan {
            spec: &spec,
            opts: &opts,
            shape: Shape {
                leaf_target: 4,
                fanout: 4,
            },
            side: Side::Source,
            threads: Threads::ReadAndHash,
        };
        let key_order = |src: &mut PgSource| {
            let mut builder = Builder::new(job.shape);
            let mut feed = Feed::new(&mut builder, None);
            let (read, disorder) =
                first_pass::pipelined(src, &job, &|_, _| {}, &mut feed).expect("pass");
            assert_eq!((read, disorder), (rows, None));
            builder.finish()
        };
        let mut src = PgSource::connect(url).expect("source");
        let in_key_order = key_order(&mut src);
        let built =
            |src: &mut PgSource, most_kept| match build_keeping(src, &job, &|_, _| {}, most_kept)
                .expect("storage order")
            {
                Outcome::Built { tree, rows } => Some((tree, rows)),
                Outcome::Disordered { .. } => None,
            };
        let (tree, read) = built(&mut src, MOST_KEPT).expect("built from kept leaves");
        assert_eq!((&tree, read), (&in_key_order, rows));
        let (tree, read) = built(&mut src, 0).expect("built reading leaves again");
        assert_eq!(tree, in_key_order);
        // 52 late rows, each in a run of a leaf or two (about 4 rows each).
        assert!(read > rows && read < rows + 52 * 40, "{read} rows read");

        // Late rows in about 700 leaf runs: more than a query each pays for.
        // (A new session, for a new snapshot; the old one's lock would hold
        // off the DROP.)
        drop(src);
        exec(format!("UPDATE {table} SET v = v WHERE id % 7 = 1"));
        let mut src = PgSource::connect(url).expect("source");
        let in_key_order = key_order(&mut src);
        assert!(built(&mut src, 0).is_none(), "gave up");
        let (tree, read) = built(&mut src, MOST_KEPT).expect("kept leaves still mend");
        assert_eq!((&tree, read), (&in_key_order, rows));
        drop(src);
        exec(format!("DROP TABLE {table}"));
    }
}
