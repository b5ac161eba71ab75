//! What a `check` runs: which tables fall in which tier ([`tiers`]), which
//! levels are due ([`due`]), running those levels through the check API's
//! public entry points ([`level`]), and telling rows in flight from drift
//! ([`recheck`]), repairing confirmed drift when the tier says so
//! ([`autorepair`]), a whole run of them recorded in the history ([`run`]),
//! as `check` and `watch` make it, and when a table is next due for a
//! scheduler that stays up ([`schedule`]). The config file's format
//! lives in `config`; the run history in `history`.

pub mod autorepair;
pub mod due;
pub mod level;
pub mod recent;
pub mod recheck;
pub mod reread;
pub mod run;
pub mod schedule;
pub mod tiers;

use std::fmt;
use std::str::FromStr;

/// How deep a check goes, each level far cheaper than the next.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Level {
    /// Exact row counts on both sides.
    Count,
    /// A tree over the key columns alone: missing and extra rows.
    Keys,
    /// The content tree: missing, extra and changed rows.
    Full,
}

impl Level {
    pub const ALL: [Level; 3] = [Level::Count, Level::Keys, Level::Full];

    pub fn as_str(self) -> &'static str {
        match self {
            Level::Count => "count",
            Level::Keys => "keys",
            Level::Full => "full",
        }
    }
}

impl fmt::Display for Level {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Level {
    type Err = String;
    fn from_str(s: &str) -> Result<Level, String> {
        Level::ALL
            .into_iter()
            .find(|l| l.as_str() == s)
            .ok_or_else(|| format!("{s:?} is not a level; write count, keys or full"))
    }
}

/// A plan that cannot be made from this config and these tables.
#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    #[error("{0}")]
    Invalid(String),
}
