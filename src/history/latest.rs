//! The newest result of every (table, level), with when it last completed:
//! the state metrics show. Older results are `query`'s.

use super::db::{DbError, Row};
use super::{History, HistoryError, Status};

/// The newest recorded result of one (table, level).
#[derive(Clone, Debug, PartialEq)]
pub struct Latest {
    pub table: String,
    pub tier: String,
    pub level: String,
    pub status: Status,
    /// When it started, Unix seconds.
    pub started: i64,
    pub seconds: f64,
    pub source_rows: Option<i64>,
    pub target_rows: Option<i64>,
    pub missing: i64,
    pub extra: i64,
    pub changed: i64,
    pub bytes: i64,
    pub rows_read: i64,
    /// The start of the newest result in sync or with drift (not an error).
    pub last_completed: Option<i64>,
}

impl History {
    /// The newest result of every (table, level) ever recorded, by table
    /// and level.
    pub fn latest(&self) -> Result<Vec<Latest>, HistoryError> {
        self.direct(|db| {
            db.query_map(
                "SELECT r.table_name, coalesce(r.tier, ''), r.level, r.status,
                        coalesce(r.started, 0), r.seconds, r.source_rows, r.target_rows,
                        r.missing, r.extra, r.changed, r.bytes, r.rows_read,
                        (SELECT max(c.started) FROM results c
                          WHERE c.table_name = r.table_name AND c.level = r.level
                            AND c.status IN ('in_sync', 'drift'))
                 FROM results r
                 WHERE r.id IN (SELECT max(id) FROM results GROUP BY table_name, level)
                 ORDER BY r.table_name, r.level",
                args![],
                row,
            )
        })
    }
}

fn row(r: &Row) -> Result<Latest, DbError> {
    Ok(Latest {
        table: r.get(0)?,
        tier: r.get(1)?,
        level: r.get(2)?,
        status: Status::parse(&r.get::<_, String>(3)?),
        started: r.get(4)?,
        seconds: r.get(5)?,
        source_rows: r.get(6)?,
        target_rows: r.get(7)?,
        missing: r.get(8)?,
        extra: r.get(9)?,
        changed: r.get(10)?,
        bytes: r.get(11)?,
        rows_read: r.get(12)?,
        last_completed: r.get(13)?,
    })
}
