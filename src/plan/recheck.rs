//! Telling rows in flight from drift: a `keys` or `full` level that found
//! differences runs again after a delay, in fresh snapshots; a key that
//! differed then and agrees now was in flight (listed, not counted as
//! drift), a key that differs both times is confirmed drift. Keys that
//! differ only the second time were not read the first: they are left to
//! the next check, as a re-read of the first keys alone would.

use crate::check::DiffCounts;
use crate::history::record::LevelResult;
use crate::history::Status;

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
