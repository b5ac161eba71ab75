//! Writing the history: a run is recorded as started before any check, each
//! (table, level) result in its own transaction as it completes (releasing
//! its claim), and the run marked finished at the end. A checker killed
//! mid-way leaves its run unfinished and every completed result readable.
//! Retention (`prune`) deletes old runs and old closed incidents.

use serde_json::{Map, Value as J};

use super::db::{Db, DbError, Param};
use super::{claim_key, History, HistoryError, Status};
use crate::check::{DiffCounts, TableOutcome};
use crate::core::Value;
use crate::reconcile::{DiffKind, Difference};

/// What checking one level of one table found.
#[derive(Clone, Debug)]
pub struct LevelResult {
    pub table: String,
    pub tier: String,
    /// `count`, `keys` or `full`.
    pub level: String,
    pub status: Status,
    /// Run because the count level found a mismatch.
    pub escalated: bool,
    /// Unix seconds.
    pub started: i64,
    pub seconds: f64,
    pub source_rows: Option<u64>,
    pub target_rows: Option<u64>,
    pub counts: DiffCounts,
    pub bytes: u64,
    pub rows_read: u64,
    /// The comparison, for `keys` and `full` (its differences capped).
    pub outcome: Option<TableOutcome>,
    /// Whether the differing keys were read again after a delay.
    pub rechecked: bool,
    /// Differences that agreed when read again: rows in flight, not drift
    /// (their columns are the outcome's).
    pub in_flight: Vec<Difference>,
    /// Differences whose rows changed (on either side) within `min_age`:
    /// not judged, listed apart (their columns are the outcome's).
    pub recent: Vec<Difference>,
    /// Whether the level found that both sides' range reads find every row,
    /// so its keys can be read again range by range (else by a whole scan).
    pub by_range: bool,
    pub error: Option<String>,
}

impl LevelResult {
    pub fn new(table: &str, tier: &str, level: &str, started: i64) -> LevelResult {
        LevelResult {
            table: table.into(),
            tier: tier.into(),
            level: level.into(),
            status: Status::Error,
            escalated: false,
            started,
            seconds: 0.0,
            source_rows: None,
            target_rows: None,
            counts: DiffCounts::default(),
            bytes: 0,
            rows_read: 0,
            outcome: None,
            rechecked: false,
            in_flight: Vec::new(),
            recent: Vec::new(),
            by_range: false,
            error: None,
        }
    }
}

/// This host's name, for claims and runs.
pub fn host_name() -> String {
    let mut buf = [0u8; 256];
    // SAFETY: the buffer is writable for its length.
    let rc = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) };
    if rc != 0 {
        return "unknown".into();
    }
    let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
    String::from_utf8_lossy(&buf[..end]).into_owned()
}

/// Key or row values as a JSON object, by column name.
pub fn object(names: &[String], values: &[Value]) -> Map<String, J> {
    names
        .iter()
        .cloned()
        .zip(values.iter().map(Value::to_json))
        .collect()
}

impl History {
    /// Records a run as started (and unfinished); returns its id.
    pub fn begin_run(&mut self, now: i64) -> Result<i64, HistoryError> {
        self.direct(|db| {
            db.query_row(
                "INSERT INTO runs (started, host, pid) VALUES ($1, $2, $3) RETURNING id",
                args![now, host_name(), std::process::id()],
                |r| r.get(0),
            )
        })
    }

    /// Marks a run finished.
    pub fn finish_run(&mut self, run: i64, now: i64) -> Result<(), HistoryError> {
        self.direct(|db| {
            db.execute(
                "UPDATE runs SET finished = $1 WHERE id = $2",
                args![now, run],
            )
        })
        .map(drop)
    }

    /// Records one result with its ranges and kept differences, and
    /// releases its claim, in one transaction.
    pub fn record(&mut self, run: i64, r: &LevelResult) -> Result<(), HistoryError> {
        self.write(&claim_key(&r.table, &r.level), |db| record_in(db, run, r))
    }

    /// Deletes runs started before `cutoff` (Unix seconds), with their
    /// results, and incidents closed before it, with their deliveries;
    /// returns how many runs.
    pub fn prune(&mut self, cutoff: i64) -> Result<usize, HistoryError> {
        self.write("prune", |db| {
            let runs = db.execute("DELETE FROM runs WHERE started < $1", args![cutoff])?;
            // Deliveries go with their incident (ON DELETE CASCADE); an
            // open incident stays, however old.
            db.execute(
                "DELETE FROM incidents WHERE closed IS NOT NULL AND closed < $1",
                args![cutoff],
            )?;
            Ok(runs as usize)
        })
    }
}

fn record_in(db: &mut Db<'_>, run: i64, r: &LevelResult) -> Result<(), DbError> {
    let kept = r.outcome.as_ref().map_or(0, |o| o.differences.len());
    let id: i64 = db.query_row(
        "INSERT INTO results (run_id, table_name, tier, level, status, escalated,
             started, seconds, source_rows, target_rows, missing, extra, changed,
             differences_kept, bytes, rows_read, error, rechecked, in_flight, recent)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17,
             $18, $19, $20)
         RETURNING id",
        args![
            run,
            r.table,
            r.tier,
            r.level,
            r.status.as_str(),
            r.escalated,
            r.started,
            r.seconds,
            r.source_rows.map(|n| n as i64),
            r.target_rows.map(|n| n as i64),
            r.counts.missing as i64,
            r.counts.extra as i64,
            r.counts.changed as i64,
            kept as i64,
            r.bytes as i64,
            r.rows_read as i64,
            r.error,
            r.rechecked,
            r.in_flight.len() as i64,
            r.recent.len() as i64,
        ],
        |row| row.get(0),
    )?;
    if let Some(o) = &r.outcome {
        let ranges: Vec<Vec<Param>> = o
            .ranges
            .iter()
            .map(|g| {
                args![
                    id,
                    J::Object(object(&o.key_columns, &g.first)).to_string(),
                    J::Object(object(&o.key_columns, &g.last)).to_string(),
                    g.source_rows as i64,
                    g.target_rows as i64,
                ]
                .to_vec()
            })
            .collect();
        db.insert_rows(
            "ranges (result_id, first, last, source_rows, target_rows)",
            &ranges,
        )?;
        let listed = o.differences.iter().map(|d| (d, false, false));
        let in_flight = r.in_flight.iter().map(|d| (d, true, false));
        let recent = r.recent.iter().map(|d| (d, false, true));
        let mut rows = Vec::new();
        for (d, in_flight, recent) in listed.chain(in_flight).chain(recent) {
            let kind = match d.kind {
                DiffKind::Missing => "missing",
                DiffKind::Extra => "extra",
                DiffKind::Changed => "changed",
            };
            let columns = (d.kind == DiffKind::Changed).then(|| {
                let names: Vec<&String> =
                    d.changed.iter().filter_map(|&i| o.columns.get(i)).collect();
                serde_json::to_string(&names).unwrap_or_default()
            });
            rows.push(
                args![
                    id,
                    kind,
                    J::Object(object(&o.key_columns, &d.key)).to_string(),
                    columns,
                    in_flight,
                    recent,
                ]
                .to_vec(),
            );
        }
        db.insert_rows(
            "differences (result_id, kind, key, columns, in_flight, recent)",
            &rows,
        )?;
    }
    db.execute(
        "DELETE FROM claims WHERE table_name = $1 AND level = $2 AND run_id = $3",
        args![r.table, r.level, run],
    )?;
    Ok(())
}
