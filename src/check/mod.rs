//! Checks: deciding what to compare and running the comparison, returning
//! outcomes. Nothing here prints or stores anything.

mod compare;
pub mod endpoint;
mod fetch;
pub mod filters;
pub mod outcome;
pub mod plan;
pub mod prepared;
mod reconcile;
pub mod reread;
pub mod sink;
mod stream;

use driftsum_core::{CanonOptions, Shape};

pub use endpoint::Endpoint;
pub use filters::RowFilters;
pub use outcome::{
    ColumnDifference, DiffCounts, PhaseCost, RangeOutcome, RunOutcome, Stats, TableOutcome,
    Transfer,
};
pub use plan::{ColumnChoice, TablePair};
pub use sink::{DiffSink, Discard};

use crate::config::Config;
use crate::error::CheckError;
use crate::source::Source;

pub use crate::build::Progress;

/// Everything a diff run needs besides its two sources.
#[derive(Clone, Debug, Default)]
pub struct DiffOptions {
    /// Tables to compare; empty means every table the sides share.
    pub tables: Vec<TablePair>,
    pub columns: ColumnChoice,
    pub canon: CanonOptions,
    pub shape: Shape,
    /// Replica names and storage conventions.
    pub config: Config,
    /// Differences each table's outcome keeps, the first ones in key order
    /// (all are counted, and all go to the run's [`DiffSink`]); `None`
    /// keeps them all.
    pub keep_differences: Option<usize>,
}

/// Differences an outcome keeps when a report streams the full list: enough
/// for any listing written from the outcome afterwards.
pub const SAMPLE: usize = 1000;

/// The tables to compare, and outcomes for tables only one side has.
fn table_list(
    source: &mut Endpoint<'_>,
    target: &mut Endpoint<'_>,
    opts: &DiffOptions,
) -> Result<(Vec<TablePair>, Vec<TableOutcome>), CheckError> {
    if !opts.tables.is_empty() {
        return Ok((opts.tables.clone(), Vec::new()));
    }
    // A tree file holds one table: that is the one to compare.
    let (sf, tf) = (
        source.file().map(|f| f.meta().table.clone()),
        target.file().map(|f| f.meta().table.clone()),
    );
    if sf.is_some() || tf.is_some() {
        let src = sf.clone().or_else(|| tf.clone()).unwrap_or_default();
        let tgt = tf.unwrap_or_else(|| opts.config.replica_table(&src));
        let src = sf.unwrap_or(src);
        return Ok((
            vec![TablePair {
                source: src,
                target: tgt,
            }],
            Vec::new(),
        ));
    }
    let src = source.tables().map_err(CheckError::Source)?;
    let tgt = target.tables().map_err(CheckError::Target)?;
    // A config section for a table the source lacks is a typo (or a stale
    // config), refused rather than silently unused.
    if let Some(name) = opts.config.tables.keys().find(|n| !src.contains(n)) {
        return Err(CheckError::Invalid(format!(
            "the config's [tables.{name}] names a table the source does not have; \
             its tables: {}",
            src.join(", ")
        )));
    }
    // Against SQLite, names are found as SQLite finds them (any case, no
    // schema); the report's hints say when a pair was made that way.
    let sqlite =
        source.describe().starts_with("sqlite:") || target.describe().starts_with("sqlite:");
    let replica = |t: &str| opts.config.replica_table(t);
    let paired =
        crate::source::names::pair(&src, &tgt, sqlite, &replica).map_err(CheckError::Invalid)?;
    let pairs = paired
        .pairs
        .into_iter()
        .map(|(source, target)| TablePair { source, target })
        .collect();
    let mut lonely = Vec::new();
    for (t, r) in &paired.only_source {
        let e = format!("table {r:?} is missing from the target");
        lonely.push(TableOutcome::failed(t, r, e));
    }
    for t in &paired.only_target {
        let e = format!("table {t:?} is only in the target");
        lonely.push(TableOutcome::failed(t, t, e));
    }
    Ok((pairs, lonely))
}

/// Compares one table pair, handing its differences to `sink` as they are
/// found; failures land in the outcome's `error`, and only the sink's own
/// failure is an `Err`.
pub fn diff_table_to(
    source: &mut Endpoint<'_>,
    target: &mut Endpoint<'_>,
    pair: &TablePair,
    opts: &DiffOptions,
    progress: Progress<'_>,
    sink: &mut dyn DiffSink,
) -> Result<TableOutcome, CheckError> {
    let mut outcome = TableOutcome::failed(&pair.source, &pair.target, "");
    outcome.error = None;
    sink.table_started(&outcome).map_err(CheckError::Output)?;
    let mut found = sink::Found {
        sink: &mut *sink,
        keep: opts.keep_differences,
    };
    let result = (|| {
        let s = source.schema(&pair.source).map_err(CheckError::Source)?;
        let t = target.schema(&pair.target).map_err(CheckError::Target)?;
        // The replica's own spelling (SQLite: `public.orders` read as `orders`).
        outcome.target_table = t.name.clone();
        let plan = plan::plan(&s, &t, &opts.columns, &opts.config)?;
        outcome.key_columns = plan.source.key.iter().map(|c| c.name.clone()).collect();
        outcome.columns = plan.source.values.iter().map(|c| c.name.clone()).collect();
        outcome.key_types = plan.source.key.iter().map(|c| c.rule.ty).collect();
        outcome.column_types = plan.source.values.iter().map(|c| c.rule.ty).collect();
        outcome.column_differences = plan.column_differences.clone();
        outcome.filters = [plan.source.filter_label(), plan.target.filter_label()];
        compare::compare(
            source,
            target,
            &plan,
            &opts.canon,
            opts.shape,
            progress,
            &mut outcome,
            &mut found,
        )
    })();
    match result {
        Err(CheckError::Output(e)) => return Err(CheckError::Output(e)),
        Err(e) => {
            let mut failed = TableOutcome::failed(&pair.source, &pair.target, e);
            failed.key_columns = outcome.key_columns;
            outcome = failed;
        }
        Ok(()) => {}
    }
    sink.table_finished(&outcome).map_err(CheckError::Output)?;
    Ok(outcome)
}

/// Compares every requested table of two databases; one table's failure
/// does not stop the others.
pub fn diff(
    source: &mut dyn Source,
    target: &mut dyn Source,
    opts: &DiffOptions,
    progress: Progress<'_>,
) -> Result<RunOutcome, CheckError> {
    diff_endpoints(
        &mut Endpoint::database(source),
        &mut Endpoint::database(target),
        opts,
        progress,
    )
}

/// Compares every requested table of two sides, each a database, a tree
/// file or an agent.
pub fn diff_endpoints(
    source: &mut Endpoint<'_>,
    target: &mut Endpoint<'_>,
    opts: &DiffOptions,
    progress: Progress<'_>,
) -> Result<RunOutcome, CheckError> {
    diff_endpoints_to(source, target, opts, progress, &mut Discard)
}

/// Compares every requested table of two sides, in report order (by
/// table name), handing each table and its differences to `sink` as they
/// are found.
pub fn diff_endpoints_to(
    source: &mut Endpoint<'_>,
    target: &mut Endpoint<'_>,
    opts: &DiffOptions,
    progress: Progress<'_>,
    sink: &mut dyn DiffSink,
) -> Result<RunOutcome, CheckError> {
    let (pairs, lonely) = table_list(source, target, opts)?;
    let mut jobs: Vec<Result<TablePair, TableOutcome>> = pairs.into_iter().map(Ok).collect();
    jobs.extend(lonely.into_iter().map(Err));
    // Sorted before they run, so a sink writes each table once it is done.
    jobs.sort_by(|a, b| {
        let name = |j: &Result<TablePair, TableOutcome>| match j {
            Ok(p) => p.source.clone(),
            Err(t) => t.table.clone(),
        };
        name(a).cmp(&name(b))
    });
    let mut tables = Vec::with_capacity(jobs.len());
    for job in jobs {
        tables.push(match job {
            Ok(pair) => diff_table_to(source, target, &pair, opts, progress, sink)?,
            Err(lonely) => {
                sink.table_started(&lonely).map_err(CheckError::Output)?;
                sink.table_finished(&lonely).map_err(CheckError::Output)?;
                lonely
            }
        });
    }
    Ok(RunOutcome { tables })
}
