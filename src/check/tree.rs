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
use driftsum_core::tree::wire::KeyRange;
use driftsum_core::{Shape, Side, Walk};

use super::endpoint::Endpoint;
use super::outcome::TableOutcome;
use super::plan::Plan;
use super::ranges::{self, ByEndpoint, Job};
use super::sink::Found;
use super::{merge, Progress};
use crate::build::Threads;
use crate::error::CheckError;

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
