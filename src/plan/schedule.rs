//! When each table next needs a check, for a scheduler that stays up
//! (`watch`): the earliest moment one of its tier's levels falls due, from
//! the history. Whether it is still due when the checker gets to it is
//! decided again under its claim (`run`).

use super::tiers::TableTier;
use super::{due, Level};
use crate::config::Config;
use crate::history::{History, HistoryError};

/// When a level of `t` is next due (Unix seconds; at or before `now`: due
/// now), or `None` when its tier turns every level off.
pub fn next_due(
    config: &Config,
    hist: &History,
    t: &TableTier,
    now: i64,
) -> Result<Option<i64>, HistoryError> {
    let mut next: Option<i64> = None;
    for level in Level::ALL {
        let Some(every) = due::interval(config, &t.tier, level) else {
            continue;
        };
        let at = match hist.last_completed(&t.table, level.as_str())? {
            Some(last) => last.saturating_add(every.as_secs() as i64),
            None => now,
        };
        next = Some(next.map_or(at, |n| n.min(at)));
    }
    Ok(next)
}

/// The shortest interval of `tier`'s levels (`None`: all off).
pub fn shortest_interval(config: &Config, tier: &str) -> Option<std::time::Duration> {
    Level::ALL
        .into_iter()
        .filter_map(|l| due::interval(config, tier, l))
        .min()
}
