//! Repairs in the history: what each automatic repair of `check` and each
//! `repair --apply` planned, applied, skipped and re-verified, one row per
//! table (migration 6), written once the repair is over, and read back
//! newest first.

use serde::Serialize;

use super::db::DbError;
use super::value::Row;
use super::{History, HistoryError};

/// One table's repair, as recorded.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct RepairRecord {
    /// Its row id (ignored when recording).
    pub id: i64,
    /// The check run it followed; `None` for `driftsum repair --apply`.
    pub run_id: Option<i64>,
    /// Unix seconds: when it ended.
    pub at: i64,
    /// `check` (automatic) or `repair` (the command).
    pub origin: String,
    /// The table, by its source name.
    pub table: String,
    /// The level whose confirmed drift it repaired (`check` only).
    pub level: Option<String>,
    /// `repaired`, `partial`, `already_in_sync`, `skipped`, `failed` or
    /// `unverified`.
    pub outcome: String,
    /// Rows it set out to change.
    pub planned: u64,
    /// Rows changed.
    pub applied: u64,
    /// Planned rows found in sync when read again under the lock.
    pub already_in_sync: u64,
    /// Planned rows a writer changed since the plan: left alone.
    pub changed_since: u64,
    /// Whether a fresh diff found every changed row in sync.
    pub verified: bool,
    /// The undo script, when rows were changed.
    pub undo: Option<String>,
    /// Why it did not happen, or what went wrong.
    pub note: Option<String>,
}

const COLUMNS: &str = "id, run_id, at, origin, table_name, level, outcome, planned, applied, \
                       already_in_sync, changed_since, verified, undo, note";

fn count(n: i64) -> u64 {
    u64::try_from(n).unwrap_or(0)
}

fn record(r: &Row) -> Result<RepairRecord, DbError> {
    Ok(RepairRecord {
        id: r.get(0)?,
        run_id: r.get(1)?,
        at: r.get(2)?,
        origin: r.get(3)?,
        table: r.get(4)?,
        level: r.get(5)?,
        outcome: r.get(6)?,
        planned: count(r.get(7)?),
        applied: count(r.get(8)?),
        already_in_sync: count(r.get(9)?),
        changed_since: count(r.get(10)?),
        verified: r.get(11)?,
        undo: r.get(12)?,
        note: r.get(13)?,
    })
}

/// A count as SQLite stores it (counts of rows never reach `i64::MAX`).
fn stored(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

impl History {
    /// Records one table's repair; returns its id.
    pub fn record_repair(&mut self, r: &RepairRecord) -> Result<i64, HistoryError> {
        self.direct(|db| {
            db.query_row(
                "INSERT INTO repairs (run_id, at, origin, table_name, level, outcome, planned,
                     applied, already_in_sync, changed_since, verified, undo, note)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)
                 RETURNING id",
                args![
                    r.run_id,
                    r.at,
                    r.origin,
                    r.table,
                    r.level,
                    r.outcome,
                    stored(r.planned),
                    stored(r.applied),
                    stored(r.already_in_sync),
                    stored(r.changed_since),
                    r.verified,
                    r.undo,
                    r.note,
                ],
                |row| row.get(0),
            )
        })
    }

    /// The repairs that ended at or after `since` (Unix seconds), of one
    /// table or of all, newest first.
    pub fn repairs(
        &self,
        since: i64,
        table: Option<&str>,
    ) -> Result<Vec<RepairRecord>, HistoryError> {
        self.direct(|db| {
            db.query_map(
                &format!(
                    "SELECT {COLUMNS} FROM repairs
                     WHERE at >= $1 AND ($2 IS NULL OR table_name = $2)
                     ORDER BY at DESC, id DESC"
                ),
                args![since, table],
                record,
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repairs_are_recorded_and_read_back_newest_first() {
        let dir = tempfile::tempdir().unwrap();
        let mut h = History::open(dir.path().join("h.sqlite")).unwrap();
        let run = h.begin_run(100).unwrap();
        let mut a = RepairRecord {
            id: 0,
            run_id: Some(run),
            at: 110,
            origin: "check".into(),
            table: "orders".into(),
            level: Some("full".into()),
            outcome: "repaired".into(),
            planned: 3,
            applied: 2,
            already_in_sync: 1,
            changed_since: 0,
            verified: true,
            undo: Some("/tmp/x.undo.sql".into()),
            note: None,
        };
        a.id = h.record_repair(&a).unwrap();
        let mut b = RepairRecord {
            run_id: None,
            at: 120,
            origin: "repair".into(),
            table: "users".into(),
            level: None,
            outcome: "skipped".into(),
            verified: false,
            undo: None,
            note: Some("too many".into()),
            ..a.clone()
        };
        b.id = h.record_repair(&b).unwrap();
        assert_eq!(h.repairs(0, None).unwrap(), vec![b.clone(), a.clone()]);
        assert_eq!(h.repairs(0, Some("orders")).unwrap(), vec![a]);
        assert_eq!(h.repairs(115, None).unwrap(), vec![b]);
    }
}
