//! `check`'s automatic repair: after a `keys` or `full` level of a table
//! whose tier says `repair = "auto"` finds confirmed drift (neither in
//! flight nor recent), the replica's rows with exactly those keys are put
//! right by the `repair` machinery, with all of its safety (write lock,
//! fresh re-read of both sides, only rows that still differ as planned,
//! re-verification, an undo script). Drift over `max_repair_rows`, or not
//! every drifted key known, is left alone with a note. Recording and
//! reporting are the caller's.

use std::collections::HashSet;
use std::path::PathBuf;
use std::time::Duration;

use driftsum_core::{key, Key};

use super::tiers::TableTier;
use super::Level;
use crate::check::{DiffOptions, TablePair};
use crate::config::{Config, RepairMode};
use crate::history::record::LevelResult;
use crate::history::Status;
use crate::reconcile::DiffKind;
use crate::repair::{self, Guard, RepairError, RepairOptions, RepairPlan};

/// Rows one automatic repair changes in a table when the tier does not say.
pub const MAX_REPAIR_ROWS: u64 = 10_000;

/// How long an automatic repair waits for the replica's write lock (the
/// sync holding it).
const BUSY: Duration = Duration::from_secs(5);

/// How an automatic repair ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// Every planned row was changed or found in sync, and re-verified.
    Repaired,
    /// Some rows were repaired and re-verified; others a writer changed
    /// since the plan, left for the sync and the next check.
    Partial,
    /// Every planned row was in sync when read again: nothing written.
    AlreadyInSync,
    /// Not attempted (see the note): nothing written.
    Skipped,
    /// Could not be done (see the note): nothing written.
    Failed,
    /// Committed, but a fresh diff still finds repaired rows different.
    Unverified,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Repaired => "repaired",
            Outcome::Partial => "partial",
            Outcome::AlreadyInSync => "already_in_sync",
            Outcome::Skipped => "skipped",
            Outcome::Failed => "failed",
            Outcome::Unverified => "unverified",
        }
    }

    /// Whether this leaves the run in error: a repair asked for that went
    /// wrong, or that could not be proven.
    pub fn is_error(self) -> bool {
        matches!(self, Outcome::Failed | Outcome::Unverified)
    }
}

/// What one automatic repair did.
#[derive(Clone, Debug, PartialEq)]
pub struct AutoRepair {
    pub table: String,
    /// The level whose confirmed drift it repaired.
    pub level: String,
    pub outcome: Outcome,
    /// Confirmed drifted rows it set out to repair.
    pub planned: u64,
    pub applied: u64,
    /// Planned rows in sync when read again (the sync caught up).
    pub already_in_sync: u64,
    /// Planned rows a writer changed since: left alone.
    pub changed_since: u64,
    /// Whether a fresh diff found every changed row in sync.
    pub verified: bool,
    pub undo: Option<PathBuf>,
    pub note: Option<String>,
}

impl AutoRepair {
    fn new(r: &LevelResult, outcome: Outcome, note: Option<String>) -> AutoRepair {
        AutoRepair {
            table: r.table.clone(),
            level: r.level.clone(),
            outcome,
            planned: 0,
            applied: 0,
            already_in_sync: 0,
            changed_since: 0,
            verified: false,
            undo: None,
            note,
        }
    }
}

/// The tier's `repair` and `max_repair_rows`.
pub fn mode(config: &Config, tier: &str) -> (RepairMode, u64) {
    let t = config.tiers.get(tier);
    (
        t.and_then(|t| t.repair).unwrap_or_default(),
        t.and_then(|t| t.max_repair_rows).unwrap_or(MAX_REPAIR_ROWS),
    )
}

/// Refuses a config whose tiers repair automatically when the replica is
/// not a SQLite file: driftsum never writes to a server.
pub fn check_config(config: &Config, replica_url: &str) -> Result<(), String> {
    let auto: Vec<&str> = config
        .tiers
        .iter()
        .filter(|(_, t)| t.repair == Some(RepairMode::Auto))
        .map(|(n, _)| n.as_str())
        .collect();
    if auto.is_empty() {
        return Ok(());
    }
    match repair::replica_path(replica_url) {
        Ok(_) => Ok(()),
        Err(_) => Err(format!(
            "[tiers.{}] repair = \"auto\": automatic repair writes only to a SQLite \
             replica (sqlite:PATH), and this replica is {}; driftsum never writes to a \
             server: set repair = \"off\" and use `driftsum repair --sql-out FILE` to \
             get a script to review and apply yourself",
            auto.join("], [tiers."),
            crate::source::url::redact(replica_url)
        )),
    }
}

/// Whether `r` is a result an automatic repair follows.
pub fn wanted(config: &Config, t: &TableTier, level: Level, r: &LevelResult) -> bool {
    mode(config, &t.tier).0 == RepairMode::Auto
        && matches!(level, Level::Keys | Level::Full)
        && r.status == Status::Drift
        && r.outcome.is_some()
}

/// Repairs the replica's rows `r` found drifted (confirmed drift only).
pub fn repair(
    source_url: &str,
    replica_url: &str,
    config: &Config,
    t: &TableTier,
    r: &LevelResult,
) -> AutoRepair {
    let (_, max_rows) = mode(config, &t.tier);
    let Some(o) = &r.outcome else {
        return AutoRepair::new(r, Outcome::Skipped, Some("the level listed no rows".into()));
    };
    let total = r.counts.total();
    if total > max_rows {
        return AutoRepair::new(
            r,
            Outcome::Skipped,
            Some(format!(
                "{total} rows drifted, more than max_repair_rows = {max_rows}: nothing \
                 repaired; a full resync of the table may be the better tool (or raise \
                 [tiers.{}] max_repair_rows)",
                t.tier
            )),
        );
    }
    if (o.differences.len() as u64) < total {
        return AutoRepair::new(
            r,
            Outcome::Skipped,
            Some(format!(
                "only {} of the {total} drifted rows were kept ([history] \
                 max_differences): nothing repaired; raise max_differences to repair \
                 them automatically",
                o.differences.len()
            )),
        );
    }
    let confirmed: HashSet<(Key, u8)> = o
        .differences
        .iter()
        .map(|d| (key::encode(&d.key), kind(d.kind)))
        .collect();
    let opts = RepairOptions {
        diff: DiffOptions {
            tables: vec![TablePair {
                source: t.table.clone(),
                target: config.replica_table(&t.table),
            }],
            config: config.clone(),
            keep_differences: None,
            ..DiffOptions::default()
        },
        // The limit is on the confirmed rows (above); the fresh plan may
        // hold rows in flight, which are not repaired.
        guard: Guard {
            max_rows: u64::MAX,
            max_share: 100.0,
        },
        busy: BUSY,
    };
    let mut out = AutoRepair::new(r, Outcome::Failed, None);
    out.planned = confirmed.len() as u64;
    let fresh = match repair::plan(source_url, replica_url, &opts) {
        Ok(p) => p,
        Err(e) => {
            out.note = Some(format!("planning: {e}"));
            return out;
        }
    };
    let (todo, gone, moved) = only_confirmed(fresh, &confirmed);
    out.already_in_sync = gone;
    out.changed_since = moved;
    if todo.rows() == 0 {
        out.outcome = match moved {
            0 => Outcome::AlreadyInSync,
            _ => Outcome::Skipped,
        };
        if moved > 0 {
            out.note = Some(format!(
                "{moved} drifted row(s) changed since the check: left for the sync and \
                 the next check"
            ));
        }
        return out;
    }
    match repair::apply(source_url, replica_url, &todo, &opts) {
        Ok(applied) => {
            for c in &applied.tables {
                out.applied += c.applied as u64;
                out.already_in_sync += c.already_in_sync as u64;
                out.changed_since += c.changed_since as u64;
            }
            out.verified = true;
            out.undo = applied.undo;
            out.outcome = match out.changed_since {
                0 if out.applied == 0 => Outcome::AlreadyInSync,
                0 => Outcome::Repaired,
                _ => Outcome::Partial,
            };
            if out.changed_since > 0 {
                out.note = Some(format!(
                    "{} drifted row(s) changed since the check: left for the sync and \
                     the next check",
                    out.changed_since
                ));
            }
        }
        Err(RepairError::Unverified { keys, undo, .. }) => {
            out.outcome = Outcome::Unverified;
            out.undo = Some(PathBuf::from(&undo));
            out.note = Some(format!(
                "the repair was committed, but a fresh diff still finds key(s) {keys} \
                 different; the undo script is {undo}"
            ));
        }
        Err(e) => out.note = Some(e.to_string()),
    }
    out
}

/// A difference's kind as a number, to hash with its key.
fn kind(k: DiffKind) -> u8 {
    match k {
        DiffKind::Missing => 0,
        DiffKind::Extra => 1,
        DiffKind::Changed => 2,
    }
}

/// The fresh plan narrowed to the confirmed (key, kind) pairs; also how
/// many confirmed rows it no longer holds (in sync now) and how many it
/// holds as another kind of difference (changed since).
fn only_confirmed(mut plan: RepairPlan, confirmed: &HashSet<(Key, u8)>) -> (RepairPlan, u64, u64) {
    let mut kept = 0u64;
    let mut moved = 0u64;
    for t in &mut plan.tables {
        t.ops.retain(|op| {
            let k = key::encode(&op.key);
            if confirmed.contains(&(k.clone(), kind(op.kind))) {
                kept += 1;
                return true;
            }
            let other = [DiffKind::Missing, DiffKind::Extra, DiffKind::Changed]
                .into_iter()
                .any(|o| confirmed.contains(&(k.clone(), kind(o))));
            moved += u64::from(other);
            false
        });
    }
    plan.tables.retain(|t| !t.ops.is_empty());
    let gone = (confirmed.len() as u64).saturating_sub(kept + moved);
    (plan, gone, moved)
}
