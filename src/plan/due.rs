//! When a level of a table is due: its tier's interval has passed since the
//! level last completed (in sync or drift; an error is retried at once).
//! The history says when that was; time is plain Unix seconds, so that tests
//! can inject it.

use super::Level;
use crate::config::{parse_interval, Config, Interval};

/// How often `level` runs for tables of `tier` (validated on load).
pub fn interval(config: &Config, tier: &str, level: Level) -> Interval {
    let t = config.tiers.get(tier)?;
    let v = match level {
        Level::Count => &t.count,
        Level::Keys => &t.keys,
        Level::Full => &t.full,
    };
    v.as_deref().and_then(|v| parse_interval(v).ok().flatten())
}

/// How long `tier` waits before reading differing keys again (`None`: it
/// does not).
pub fn recheck_after(config: &Config, tier: &str) -> Interval {
    let t = config.tiers.get(tier)?;
    t.recheck_after
        .as_deref()
        .and_then(|v| parse_interval(v).ok().flatten())
}

/// How recently changed a differing row of `tier` may be and still be
/// judged (`None`: any row is).
pub fn min_age(config: &Config, tier: &str) -> Interval {
    let t = config.tiers.get(tier)?;
    t.min_age
        .as_deref()
        .and_then(|v| parse_interval(v).ok().flatten())
}

/// Whether a level last completed at `last` (never: `None`) is due at `now`.
pub fn is_due(interval: Interval, last: Option<i64>, now: i64) -> bool {
    match (interval, last) {
        (None, _) => false,
        (Some(_), None) => true,
        (Some(i), Some(last)) => now.saturating_sub(last) >= i.as_secs() as i64,
    }
}

/// The current time in Unix seconds: `DRIFTSUM_NOW` when set (for tests,
/// which move time instead of sleeping), else the clock.
pub fn now() -> i64 {
    if let Some(t) = std::env::var("DRIFTSUM_NOW")
        .ok()
        .and_then(|v| v.parse().ok())
    {
        return t;
    }
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn due_after_the_interval() {
        let five = Some(Duration::from_secs(300));
        assert!(is_due(five, None, 1000));
        assert!(!is_due(five, Some(1000), 1299));
        assert!(is_due(five, Some(1000), 1300));
        assert!(!is_due(None, None, 1000));
    }
}
