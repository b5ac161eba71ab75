//! Reading the history: when a (table, level) last completed, and the runs
//! and results since a time, for `driftsum history` and for what is due.

use serde::Serialize;
use serde_json::Value as J;

use super::db::{Db, DbError};
use super::{History, HistoryError};

/// When (table, level) last completed (in sync or drift), as the start of
/// that check in Unix seconds.
pub fn last_completed_in(
    db: &mut Db<'_>,
    table: &str,
    level: &str,
) -> Result<Option<i64>, DbError> {
    db.query_row(
        "SELECT max(started) FROM results
         WHERE table_name = $1 AND level = $2 AND status IN ('in_sync', 'drift')",
        args![table, level],
        |r| r.get(0),
    )
}

/// One run as read back.
#[derive(Clone, Debug, Serialize)]
pub struct RunRecord {
    pub id: i64,
    pub started: i64,
    /// `None`: the run never finished (killed, or still running).
    pub finished: Option<i64>,
    pub host: Option<String>,
    pub results: Vec<ResultRecord>,
}

/// One (table, level) result as read back.
#[derive(Clone, Debug, Serialize)]
pub struct ResultRecord {
    pub table: String,
    pub tier: Option<String>,
    pub level: String,
    pub status: String,
    pub escalated: bool,
    pub started: Option<i64>,
    pub seconds: f64,
    pub source_rows: Option<i64>,
    pub target_rows: Option<i64>,
    pub missing: i64,
    pub extra: i64,
    pub changed: i64,
    /// Differences stored (at most the cap); the counts above are all.
    pub differences_kept: i64,
    pub bytes: i64,
    pub rows_read: i64,
    pub rechecked: bool,
    /// Differences that agreed when read again (listed in `in_flight_rows`).
    pub in_flight: i64,
    /// Differences not judged, their rows changed within `min_age`
    /// (listed in `recent_rows`).
    pub recent: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    pub drifted_ranges: Vec<J>,
    pub differences: Vec<J>,
    pub in_flight_rows: Vec<J>,
    pub recent_rows: Vec<J>,
}

impl History {
    /// When (table, level) last completed.
    pub fn last_completed(&self, table: &str, level: &str) -> Result<Option<i64>, HistoryError> {
        self.direct(|db| last_completed_in(db, table, level))
    }

    /// Runs started at or after `since`, oldest first, with their results
    /// (only `table`'s when given; runs without any are left out then).
    pub fn runs(&self, since: i64, table: Option<&str>) -> Result<Vec<RunRecord>, HistoryError> {
        self.direct(|db| {
            let runs = db.query_map(
                "SELECT id, started, finished, host FROM runs WHERE started >= $1 ORDER BY id",
                args![since],
                |r| {
                    Ok(RunRecord {
                        id: r.get(0)?,
                        started: r.get(1)?,
                        finished: r.get(2)?,
                        host: r.get(3)?,
                        results: Vec::new(),
                    })
                },
            )?;
            let mut out = Vec::new();
            for mut run in runs {
                run.results = results_of(db, run.id, table)?;
                if table.is_none() || !run.results.is_empty() {
                    out.push(run);
                }
            }
            Ok(out)
        })
    }
}

fn results_of(
    db: &mut Db<'_>,
    run: i64,
    table: Option<&str>,
) -> Result<Vec<ResultRecord>, DbError> {
    let rows = db.query_map(
        "SELECT id, table_name, tier, level, status, escalated, started, seconds,
                source_rows, target_rows, missing, extra, changed, differences_kept,
                bytes, rows_read, error, rechecked, in_flight, recent
         FROM results WHERE run_id = $1 AND ($2 IS NULL OR table_name = $2) ORDER BY id",
        args![run, table],
        |r| {
            Ok((
                r.get::<_, i64>(0)?,
                ResultRecord {
                    table: r.get(1)?,
                    tier: r.get(2)?,
                    level: r.get(3)?,
                    status: r.get(4)?,
                    escalated: r.get(5)?,
                    started: r.get(6)?,
                    seconds: r.get(7)?,
                    source_rows: r.get(8)?,
                    target_rows: r.get(9)?,
                    missing: r.get(10)?,
                    extra: r.get(11)?,
                    changed: r.get(12)?,
                    differences_kept: r.get(13)?,
                    bytes: r.get(14)?,
                    rows_read: r.get(15)?,
                    error: r.get(16)?,
                    rechecked: r.get(17)?,
                    in_flight: r.get(18)?,
                    recent: r.get(19)?,
                    drifted_ranges: Vec::new(),
                    differences: Vec::new(),
                    in_flight_rows: Vec::new(),
                    recent_rows: Vec::new(),
                },
            ))
        },
    )?;
    let mut out = Vec::new();
    for (id, mut rec) in rows {
        rec.drifted_ranges = db.query_map(
            "SELECT first, last, source_rows, target_rows FROM ranges WHERE result_id = $1",
            args![id],
            |r| {
                Ok(serde_json::json!({
                    "first": parse(&r.get::<_, String>(0)?),
                    "last": parse(&r.get::<_, String>(1)?),
                    "source_rows": r.get::<_, i64>(2)?,
                    "target_rows": r.get::<_, i64>(3)?,
                }))
            },
        )?;
        let diffs = db.query_map(
            "SELECT kind, key, columns, in_flight, recent FROM differences
             WHERE result_id = $1",
            args![id],
            |r| {
                let mut d = serde_json::json!({
                    "kind": r.get::<_, String>(0)?,
                    "key": parse(&r.get::<_, String>(1)?),
                });
                if let Some(c) = r.get::<_, Option<String>>(2)? {
                    d["columns"] = parse(&c);
                }
                Ok((d, r.get::<_, bool>(3)?, r.get::<_, bool>(4)?))
            },
        )?;
        for d in diffs {
            match d {
                (d, true, _) => rec.in_flight_rows.push(d),
                (d, _, true) => rec.recent_rows.push(d),
                (d, false, false) => rec.differences.push(d),
            }
        }
        out.push(rec);
    }
    Ok(out)
}

/// A key or column list stored as JSON text, parsed; text that is not
/// JSON as a string.
pub(super) fn parse(text: &str) -> J {
    serde_json::from_str(text).unwrap_or_else(|_| J::String(text.to_string()))
}
