//! Comparing one planned table, top-down in phases: `prepare` both sides'
//! trees (at once), `walk` them to the drifted key ranges, then name the
//! differing keys and fetch and compare their rows (`reconcile`) — range
//! by range through the prepared sides, or by one streaming scan per side
//! when most rows drifted.
//!
//! What the check asks of the sides is counted in the wire encoding
//! whatever they are, so the cost reported for a local diff is what the
//! same diff through agents exchanges.

use std::time::Instant;

use driftsum_core::canon::CanonOptions;
use driftsum_core::diff::DriftRange;
use driftsum_core::key::KeyRange;
use driftsum_core::{Shape, Side, Walk};

use super::endpoint::Endpoint;
use super::outcome::TableOutcome;
use super::plan::Plan;
use super::prepared::Prepared;
use super::reconcile::{self as by_range, Job};
use super::sink::Found;
use super::stream;
use crate::build::{Progress, Threads};
use crate::error::CheckError;

/// When the drifted ranges hold at least one row in this many of both
/// sides' rows, two databases are read by one scan each (see `stream`)
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
    files_comparable(source, target)?;
    let started = Instant::now();
    let (mut source, mut target) = prepare(source, target, plan, opts, shape, progress)?;
    outcome.stats.scan_seconds = started.elapsed().as_secs_f64();
    outcome.source_rows = source.rows;
    outcome.target_rows = target.rows;

    let drifted = walk(&mut source, &mut target, outcome)?;

    let fetch_started = Instant::now();
    if !drifted.is_empty() {
        let keyed: Vec<KeyRange> = drifted.iter().map(|r| r.range.clone()).collect();
        let ordered = (source.ordered(), target.ordered());
        let job = Job {
            ranges: &drifted,
            keyed: &keyed,
            nkey: plan.source.key.len(),
            opts,
            // A side read whole for each chunk is read once.
            whole: source.reads_ranges_whole() || target.reads_ranges_whole(),
        };
        let rows_drifted: u64 = drifted.iter().map(|r| r.source_rows + r.target_rows).sum();
        let dense = rows_drifted.saturating_mul(DENSE_SHARE) >= source.rows + target.rows;
        if dense && ordered == (Some(true), Some(true)) {
            reconcile_streamed(&mut source, &mut target, plan, &job, outcome, found)?;
        } else {
            by_range::reconcile(&mut source, &mut target, &job, outcome, found)?;
        }
    }
    let read = (source.rows_read, target.rows_read);
    finish_stats(outcome, read, fetch_started, started);
    Ok(())
}

/// Two tree files must have been built alike to be compared at all.
fn files_comparable(source: &Endpoint<'_>, target: &Endpoint<'_>) -> Result<(), CheckError> {
    if let (Some(a), Some(b)) = (source.file(), target.file()) {
        let (na, nb) = (a.path().display(), b.path().display());
        a.meta()
            .comparable(b.meta(), &na.to_string(), &nb.to_string())
            .map_err(|m| CheckError::Invalid(m.0))?;
    }
    Ok(())
}

/// Both sides' trees, prepared at once.
fn prepare<'s, 't>(
    source: &'s mut Endpoint<'_>,
    target: &'t mut Endpoint<'_>,
    plan: &Plan,
    opts: &CanonOptions,
    shape: Shape,
    progress: Progress<'_>,
) -> Result<(Prepared<'s>, Prepared<'t>), CheckError> {
    // Two scans here already keep both cores busy; a lone one hashes on a
    // second thread.
    let threads = if source.scans_here() && target.scans_here() {
        Threads::One
    } else {
        Threads::Auto
    };
    let (s, t) = rayon::join(
        || source.prepare(&plan.source, opts, shape, Side::Source, threads, progress),
        || target.prepare(&plan.target, opts, shape, Side::Target, threads, progress),
    );
    Ok((
        s.map_err(CheckError::Source)?,
        t.map_err(CheckError::Target)?,
    ))
}

/// The drifted key ranges, found by walking both trees top-down.
fn walk(
    source: &mut Prepared<'_>,
    target: &mut Prepared<'_>,
    outcome: &mut TableOutcome,
) -> Result<Vec<DriftRange>, CheckError> {
    let started = Instant::now();
    let mut walk = Walk::new(source, target);
    let drifted: Vec<DriftRange> = walk.by_ref().collect::<Result<_, _>>()?;
    let stats = walk.stats();
    outcome.stats.nodes_compared = stats.nodes_compared;
    outcome.stats.transfer.levels = stats.levels.clone();
    outcome.stats.walk_seconds = started.elapsed().as_secs_f64();
    Ok(drifted)
}

/// Names the differences by one key-ordered scan of each database, the
/// two streamed side by side.
fn reconcile_streamed(
    source: &mut Prepared<'_>,
    target: &mut Prepared<'_>,
    plan: &Plan,
    job: &Job<'_>,
    outcome: &mut TableOutcome,
    found: &mut Found<'_>,
) -> Result<(), CheckError> {
    let (Some(source_db), Some(target_db)) = (source.ordered_database(), target.ordered_database())
    else {
        return by_range::reconcile(source, target, job, outcome, found);
    };
    let (opts, keyed) = (job.opts, job.keyed);
    let (result, source_read, target_read) = std::thread::scope(|scope| {
        let (source_tx, mut source_rows) = stream::channel(plan.source.width());
        let (target_tx, mut target_rows) = stream::channel(plan.target.width());
        let source_scan = scope
            .spawn(move || stream::stream_side(source_db, &plan.source, opts, keyed, source_tx));
        let target_scan = scope
            .spawn(move || stream::stream_side(target_db, &plan.target, opts, keyed, target_tx));
        let result = stream::reconcile(&mut source_rows, &mut target_rows, job, outcome, found);
        // Closing the streams stops a scan still going.
        drop((source_rows, target_rows));
        (result, source_scan.join(), target_scan.join())
    });
    source.rows_read += source_read.unwrap_or(0);
    target.rows_read += target_read.unwrap_or(0);
    result
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
