//! Rows changed lately are not judged: with `min_age` (per tier, or
//! `--min-age`) and an update-time column (`updated_column`, per table or
//! in `[defaults]`), a difference whose row was updated within `min_age`
//! on either side, by that column, is set aside as `recent` — listed, not
//! counted as drift, like a row in flight — since the sync may simply not
//! have delivered it yet. Its update times are read afresh, for the
//! differing keys only (see `reread`).

use std::time::Duration;

use driftsum_core::{key, Key, LogicalType, Value};

use super::level::Sides;
use super::reread::{self, Wanted};
use super::tiers::TableTier;
use crate::check::{ColumnChoice, DiffCounts};
use crate::config::Config;
use crate::history::record::LevelResult;
use crate::history::Status;

/// The update-time column of `table`: its own `updated_column`, else
/// `[defaults] updated_column`.
pub fn updated_column<'c>(config: &'c Config, table: &str) -> Option<&'c str> {
    config
        .table(table)
        .and_then(|t| t.updated_column.as_deref())
        .or(config.defaults.updated_column.as_deref())
}

/// Refuses, before anything is read, a `min_age` for a table that names no
/// update-time column.
pub fn check_config(config: &Config, tables: &[&TableTier]) -> Result<(), String> {
    let lacking: Vec<&str> = tables
        .iter()
        .filter(|t| updated_column(config, &t.table).is_none())
        .map(|t| t.table.as_str())
        .collect();
    match lacking.is_empty() {
        true => Ok(()),
        false => Err(format!(
            "min_age needs an update-time column, and table(s) {} name none: set \
             updated_column = \"COLUMN\" under [tables.NAME] or [defaults]",
            lacking.join(", ")
        )),
    }
}

/// `r` with its differences whose rows changed at or after `now - min_age`
/// (Unix seconds) moved to `recent`; in sync when no other is left.
pub fn set_aside(
    sides: &mut Sides,
    config: &Config,
    t: &TableTier,
    mut r: LevelResult,
    min_age: Duration,
    now: i64,
) -> LevelResult {
    let listed = r
        .outcome
        .as_ref()
        .is_some_and(|o| !o.differences.is_empty());
    if r.status != Status::Drift || !listed {
        return r;
    }
    match recent_keys(sides, config, t, &r, min_age, now) {
        Ok(recent) => {
            let Some(o) = r.outcome.as_mut() else {
                return r;
            };
            let (old, mut new): (Vec<_>, Vec<_>) = o
                .differences
                .drain(..)
                .partition(|d| recent.contains(&key::encode(&d.key)));
            std::mem::swap(&mut o.differences, &mut new);
            let mut gone = DiffCounts::default();
            for d in &old {
                gone.add(d);
            }
            o.counts.missing = o.counts.missing.saturating_sub(gone.missing);
            o.counts.extra = o.counts.extra.saturating_sub(gone.extra);
            o.counts.changed = o.counts.changed.saturating_sub(gone.changed);
            o.counts.float_only = o.counts.float_only.saturating_sub(gone.float_only);
            if o.counts.is_empty() {
                o.ranges.clear();
            }
            r.counts = o.counts;
            if o.in_sync() {
                r.status = Status::InSync;
            }
            r.recent = old;
        }
        Err(e) => {
            // The differences stay judged (drift), and the failure is said.
            r.error = Some(format!("min_age: {e}"));
            r.status = Status::Error;
        }
    }
    r
}

/// The keys of `r`'s differences whose rows changed lately on either side.
fn recent_keys(
    sides: &mut Sides,
    config: &Config,
    t: &TableTier,
    r: &LevelResult,
    min_age: Duration,
    now: i64,
) -> Result<Vec<Key>, String> {
    let column = updated_column(config, &t.table).ok_or_else(|| {
        format!(
            "table {:?} names no update-time column: set updated_column under \
             [tables.{}] or [defaults]",
            t.table, t.table
        )
    })?;
    let o = r.outcome.as_ref().ok_or("no differences")?;
    let wanted = Wanted {
        table: &t.table,
        choice: ColumnChoice {
            columns: Some(vec![column.to_string()]),
            ..ColumnChoice::default()
        },
        keys: o.differences.iter().map(|d| d.key.clone()).collect(),
        ranges: &o.ranges,
        by_range: r.by_range,
    };
    let rows = reread::read(sides, config, &wanted)?;
    let Some(spec) = rows.plan.source.values.first() else {
        return Err(format!("table {:?} has no column {column:?}", t.table));
    };
    let ty = spec.rule.ty;
    if !matches!(
        ty,
        LogicalType::Timestamp { .. }
            | LogicalType::TimestampNaive { .. }
            | LogicalType::Date
            | LogicalType::Integer
    ) {
        return Err(format!(
            "updated_column {column:?} of table {:?} is of type {ty:?}; min_age needs a \
             timestamp, a date or an integer (Unix seconds) column",
            t.table
        ));
    }
    let cutoff = (now as i128 - min_age.as_secs() as i128) * 1_000_000;
    let nkey = rows.plan.source.key.len();
    let mut recent = Vec::new();
    for row in rows.source.iter().chain(&rows.target) {
        if row
            .values
            .get(nkey)
            .and_then(micros)
            .is_some_and(|m| m >= cutoff)
        {
            recent.push(row.key.clone());
        }
    }
    Ok(recent)
}

/// An update time as Unix microseconds: a timestamp (one without a time zone
/// read as UTC), a date at its midnight, an integer as Unix seconds; `None`
/// for NULL (an unknown time is judged).
fn micros(v: &Value) -> Option<i128> {
    match v {
        Value::Timestamp(us) | Value::TimestampNaive(us) => Some(*us),
        Value::Date(d) => Some(*d as i128 * 86_400_000_000),
        Value::Int(s) => s.checked_mul(1_000_000),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn update_times_in_microseconds() {
        assert_eq!(micros(&Value::Int(2)), Some(2_000_000));
        assert_eq!(micros(&Value::Date(1)), Some(86_400_000_000));
        assert_eq!(micros(&Value::Timestamp(5)), Some(5));
        assert_eq!(micros(&Value::Null), None);
        assert_eq!(micros(&Value::Int(i128::MAX)), None);
    }
}
