//! When incidents open and close, from one run's results and the config:
//! a level in sync closes its (table, level)'s incidents; drift closes an
//! error or overdue incident and opens or continues a drift one; an error
//! opens or continues an error one; and a level whose tier runs it that
//! has not completed within twice its interval (counted from its last
//! completion, or from the history's first run if it never completed) is
//! overdue. A run that fails before reaching any table opens (or
//! continues) the run's own error incident, closed by the next run that
//! reaches a table. Storing is `history::incident`'s; announcing is
//! [`super`]'s.

use crate::config::Config;
use crate::history::incident::{Kind, Sighting};
use crate::history::record::LevelResult;
use crate::history::{History, HistoryError, Status};
use crate::plan::{due, tiers, Level};

use super::payload::{self, RUN_LEVEL, RUN_TABLE};

/// Records a run at `now` that failed before reaching any table with
/// `error`, and opens or continues the run's error incident; returns the
/// run's id.
pub fn run_failed(hist: &mut History, error: &str, now: i64) -> Result<i64, HistoryError> {
    let run = hist.begin_run(now)?;
    hist.finish_run(run, now)?;
    hist.sighted(&Sighting {
        table: RUN_TABLE,
        tier: "",
        level: RUN_LEVEL,
        kind: Kind::Error,
        run,
        at: now,
        detail: payload::run_detail(error),
    })?;
    Ok(run)
}

/// Brings the incidents up to date with run `run`'s results, and with what
/// is overdue at `now` among the tables of the source (`source_tables`).
pub fn track<'a>(
    hist: &mut History,
    config: &Config,
    run: i64,
    source_tables: &[String],
    results: impl IntoIterator<Item = &'a LevelResult>,
    now: i64,
) -> Result<(), HistoryError> {
    let results: Vec<&LevelResult> = results.into_iter().collect();
    // This run reached a table: the sides opened again.
    if !results.is_empty() {
        hist.close_incidents(RUN_TABLE, RUN_LEVEL, &[Kind::Error], run, now)?;
    }
    for r in results {
        let closing: &[Kind] = match r.status {
            Status::InSync => &[Kind::Drift, Kind::Error, Kind::Overdue],
            Status::Drift => &[Kind::Error, Kind::Overdue],
            Status::Error | Status::Skipped => &[],
        };
        if !closing.is_empty() {
            hist.close_incidents(&r.table, &r.level, closing, run, now)?;
        }
        let kind = match r.status {
            Status::Drift => Kind::Drift,
            Status::Error => Kind::Error,
            Status::InSync | Status::Skipped => continue,
        };
        hist.sighted(&Sighting {
            table: &r.table,
            tier: &r.tier,
            level: &r.level,
            kind,
            run,
            at: r.started,
            detail: payload::detail(r),
        })?;
    }
    // Tables the config cannot place are the check's error to report.
    let Ok(tables) = tiers::assign(config, source_tables) else {
        return Ok(());
    };
    let Some(first) = hist.first_run()? else {
        return Ok(());
    };
    for t in &tables {
        for level in Level::ALL {
            let Some(every) = due::interval(config, &t.tier, level) else {
                continue;
            };
            let last = hist.last_completed(&t.table, level.as_str())?;
            let late_at = last.unwrap_or(first) + 2 * every.as_secs() as i64;
            if now <= late_at {
                continue;
            }
            hist.sighted(&Sighting {
                table: &t.table,
                tier: &t.tier,
                level: level.as_str(),
                kind: Kind::Overdue,
                run,
                at: late_at,
                detail: payload::overdue_detail(last, every.as_secs()),
            })?;
        }
    }
    Ok(())
}
