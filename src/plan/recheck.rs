//! Telling rows in flight from drift: after a delay, the keys a `keys` or
//! `full` level found differing are read again on both sides, in fresh
//! snapshots, and only they ([`read_again`]; how, in `reread`). A key that
//! differed then and agrees now was in flight (listed, not counted as
//! drift), a key that differs both times is confirmed drift ([`settle`]).
//! Keys that did not differ the first time are not read: anything new is
//! left to the next check.

use std::time::Instant;

use driftsum_core::CanonOptions;

use super::level::{self, Sides};
use super::reread::{self, Wanted};
use super::tiers::TableTier;
use super::Level;
use crate::check::{DiffCounts, Stats};
use crate::config::Config;
use crate::history::record::LevelResult;
use crate::history::Status;
use crate::reconcile::compare_rows;

/// Whether `first` can be rechecked: it found drift and lists every
/// difference (a capped list cannot be matched key by key).
pub fn worth_it(first: &LevelResult) -> bool {
    first.status == Status::Drift
        && first.outcome.as_ref().is_some_and(|o| {
            o.column_differences.is_empty()
                && !o.differences.is_empty()
                && o.differences.len() as u64 == o.counts.total()
        })
}

/// The keys `first` found differing, read again on both sides in fresh
/// snapshots and compared as the level compares them: a result for
/// [`settle`], listing the keys that still differ. A failure lands in its
/// `error`.
pub fn read_again(
    sides: &mut Sides,
    config: &Config,
    t: &TableTier,
    first: &LevelResult,
    started: i64,
) -> LevelResult {
    let clock = Instant::now();
    let mut r = LevelResult::new(&t.table, &t.tier, &first.level, started);
    r.source_rows = first.source_rows;
    r.target_rows = first.target_rows;
    r.by_range = first.by_range;
    match compare_again(sides, config, t, first) {
        Ok((now, read)) => {
            r.counts = now.counts;
            r.rows_read = read;
            r.status = match now.in_sync() {
                true => Status::InSync,
                false => Status::Drift,
            };
            r.outcome = Some(now);
        }
        Err(e) => r.error = Some(e),
    }
    r.seconds = clock.elapsed().as_secs_f64();
    r
}

/// `first`'s outcome as its keys compare now, and the rows read for it.
fn compare_again(
    sides: &mut Sides,
    config: &Config,
    t: &TableTier,
    first: &LevelResult,
) -> Result<(crate::check::TableOutcome, u64), String> {
    let before = first
        .outcome
        .as_ref()
        .ok_or("the level named no rows to read again")?;
    let level: Level = first.level.parse()?;
    let wanted = Wanted {
        table: &t.table,
        choice: level::choice(level),
        keys: before.differences.iter().map(|d| d.key.clone()).collect(),
        ranges: &before.ranges,
        by_range: first.by_range,
    };
    let rows = reread::read(sides, config, &wanted)?;
    let nkey = rows.plan.source.key.len();
    let mut now = before.clone();
    now.differences.clear();
    now.counts = DiffCounts::default();
    for d in compare_rows(rows.source, rows.target, nkey, &CanonOptions::default()) {
        now.record(d, None);
    }
    // The ranges that still hold a difference.
    let holds = |g: &crate::check::RangeOutcome| {
        let (first, last) = (
            driftsum_core::key::encode(&g.first),
            driftsum_core::key::encode(&g.last),
        );
        now.differences.iter().any(|d| {
            let k = driftsum_core::key::encode(&d.key);
            first <= k && k <= last
        })
    };
    let ranges = before.ranges.iter().filter(|g| holds(g)).cloned().collect();
    now.ranges = ranges;
    now.stats = Stats {
        source_rows_read: rows.source_read,
        target_rows_read: rows.target_read,
        ..Stats::default()
    };
    Ok((now, rows.source_read + rows.target_read))
}

/// The verdict of `first` read again as `second`, `delay_secs` later.
pub fn settle(first: LevelResult, second: LevelResult, delay_secs: f64) -> LevelResult {
    let (Some(before), Some(mut now)) = (first.outcome.clone(), second.outcome.clone()) else {
        // The second reading failed: its error is the answer.
        return LevelResult {
            seconds: first.seconds + delay_secs + second.seconds,
            ..second
        };
    };
    // An error, or drift that names no rows (a range of tree files without
    // entries): nothing to match key by key, so the second reading stands.
    if second.status == Status::Error || (now.differences.is_empty() && !now.ranges.is_empty()) {
        return second;
    }
    let differs_now = |k: &Vec<crate::core::Value>| now.differences.iter().any(|d| &d.key == k);
    let in_flight: Vec<_> = before
        .differences
        .iter()
        .filter(|d| !differs_now(&d.key))
        .cloned()
        .collect();
    let confirmed: Vec<_> = now
        .differences
        .iter()
        .filter(|d| before.differences.iter().any(|e| e.key == d.key))
        .cloned()
        .collect();
    let mut counts = DiffCounts::default();
    for d in &confirmed {
        counts.add(d);
    }
    now.differences = confirmed;
    now.counts = counts;
    if counts.is_empty() {
        // Whatever else differs now was not judged: left to the next check.
        now.ranges.clear();
    }
    let status = match counts.is_empty() {
        true => Status::InSync,
        false => Status::Drift,
    };
    LevelResult {
        status,
        counts,
        seconds: first.seconds + delay_secs + second.seconds,
        bytes: first.bytes + second.bytes,
        rows_read: first.rows_read + second.rows_read,
        outcome: Some(now),
        rechecked: true,
        in_flight,
        escalated: first.escalated,
        started: first.started,
        ..second
    }
}
