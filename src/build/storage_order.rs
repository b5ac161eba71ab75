//! A first pass in storage order. Where an engine reads a whole table
//! faster unordered than through its key's index (PostgreSQL: a sequential
//! scan of a table keyed by one integer), the rows are read so and built as
//! they come. A row that arrives below the builder's last key (a row
//! updated since the table was written sits at its end) is left out and
//! its key kept; afterwards the leaves those keys fall in are read again,
//! in key order and in the same snapshot, and spliced in by
//! [`Tree::splice`], which gives the tree of every row. When too many rows
//! come late, or they fall in too many leaves for a query each to pay, the
//! pass gives up and the caller reads in key order as before: at worst one
//! more scan, never a wrong tree.

use std::ops::ControlFlow;

use driftsum_core::row::RowBatch;
use driftsum_core::tree::{LeafRun, OrderError};
use driftsum_core::{Builder, Tree};

use super::first_pass::{self, Feed};
use super::job::{row_hasher, Progress, Threads, TreeScan};
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
    let mut builder = Builder::new(job.shape);
    let mut feed = Feed {
        builder: &mut builder,
        log: None,
        late: Some(Vec::new()),
    };
    let (rows, disorder) = match job.threads {
        Threads::One => first_pass::inline(source, job, progress, &mut feed)?,
        _ => first_pass::pipelined(source, job, progress, &mut feed)?,
    };
    let mut late = feed.late.take().unwrap_or_default();
    match disorder {
        None => {}
        Some(OrderError::Duplicate(k)) => return Err(super::duplicate(job.spec, &k)),
        Some(OrderError::OutOfOrder) => return Ok(Outcome::Disordered { rows }),
    }
    let tree = builder.finish();
    if late.is_empty() {
        return Ok(Outcome::Built { tree, rows });
    }
    late.sort_unstable();
    let runs = tree.runs_of(&late);
    if runs.len() > FEWEST_RUNS.max((rows / ROWS_PER_RUN) as usize) {
        return Ok(Outcome::Disordered { rows });
    }
    let mut read = rows;
    let mut rebuilt = Vec::with_capacity(runs.len());
    for run in runs {
        let (leaves, n) = read_run(source, job, &run)?;
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
    run: &LeafRun,
) -> Result<(Tree, u64), SourceError> {
    let mut hasher = row_hasher(job.spec, job.opts);
    let mut builder = Builder::new(job.shape);
    let mut batch = RowBatch::default();
    let mut refused: Option<OrderError> = None;
    let mut add = |batch: &mut RowBatch| {
        batch.hash();
        let added = batch
            .entries()
            .try_for_each(|(key, hash)| builder.push(key, hash));
        batch.clear();
        added
    };
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
            match add(&mut batch) {
                Ok(()) => ControlFlow::Continue(()),
                Err(e) => {
                    refused = Some(e);
                    ControlFlow::Break(())
                }
            }
        },
    )?;
    if refused.is_none() {
        refused = add(&mut batch).err();
    }
    match refused {
        None => Ok((builder.finish(), sent)),
        Some(OrderError::Duplicate(k)) => Err(super::duplicate(job.spec, &k)),
        Some(OrderError::OutOfOrder) => Err(SourceError::Other(format!(
            "table {:?}: keys after {:?} read in key order came out of order",
            job.spec.table, run.after
        ))),
    }
}
