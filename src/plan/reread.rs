//! Reading the rows of given keys again, on both sides, in fresh snapshots:
//! what a recheck (rows in flight) and `min_age` (rows changed lately) read,
//! never by running the level again. How a side reads its keys (each alone,
//! or through the drifted range that held it in the level's reading) is
//! `check::reread`'s, which a repair shares.

use driftsum_core::Value;

use super::level::Sides;
use crate::check::plan::{plan, Plan};
use crate::check::reread::{key_ranges, read_keys};
use crate::check::{ColumnChoice, RangeOutcome};
use crate::config::Config;
use crate::reconcile::KeyedRow;

/// The keys to read again, and what is known of where they are.
pub struct Wanted<'a> {
    /// The source's name of the table.
    pub table: &'a str,
    /// The columns to read besides the key.
    pub choice: ColumnChoice,
    pub keys: Vec<Vec<Value>>,
    /// The drifted ranges of the reading that found the keys.
    pub ranges: &'a [RangeOutcome],
    /// Whether that reading found both sides' range reads to find every row.
    pub by_range: bool,
}

/// Both sides' rows with the wanted keys (those a side holds), in key
/// order, read by `plan`, and the rows the databases sent.
pub struct Reread {
    pub plan: Plan,
    pub source: Vec<KeyedRow>,
    pub target: Vec<KeyedRow>,
    pub source_read: u64,
    pub target_read: u64,
}

/// Reads the wanted keys on both sides over fresh connections, released
/// afterwards.
pub fn read(sides: &mut Sides, config: &Config, w: &Wanted<'_>) -> Result<Reread, String> {
    sides.release();
    let result = read_open(sides, config, w);
    sides.release();
    result
}

fn read_open(sides: &mut Sides, config: &Config, w: &Wanted<'_>) -> Result<Reread, String> {
    let replica = config.replica_table(w.table);
    let (src, rep) = sides.databases()?;
    let s = src.schema(w.table).map_err(|e| format!("source: {e}"))?;
    let t = rep.schema(&replica).map_err(|e| format!("replica: {e}"))?;
    let plan = plan(&s, &t, &w.choice, config).map_err(|e| e.to_string())?;
    let drifted = key_ranges(w.ranges);
    let (source, source_read) = read_keys(src, &plan.source, &w.keys, w.by_range, &drifted)
        .map_err(|e| format!("source: {e}"))?;
    let (target, target_read) = read_keys(rep, &plan.target, &w.keys, w.by_range, &drifted)
        .map_err(|e| format!("replica: {e}"))?;
    Ok(Reread {
        plan,
        source,
        target,
        source_read,
        target_read,
    })
}
