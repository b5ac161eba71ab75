//! One (table, level) result as the history's readers see it: the pattern
//! analyses (`patterns`) and the newest state of each pair (`latest`). The
//! columns it is read from and the row mapper live here, once; `query`'s
//! [`ResultRecord`](super::query::ResultRecord) is the listing's own view,
//! with its NULLs kept and its JSON field order.

use serde::Serialize;

use super::db::{DbError, Row};
use super::Status;

/// One (table, level) result, as the analyses read it.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Observation {
    /// The result's id in the history.
    pub id: i64,
    pub run: i64,
    pub table: String,
    pub tier: String,
    pub level: String,
    pub status: Status,
    /// Unix seconds.
    pub started: i64,
    pub seconds: f64,
    pub source_rows: Option<i64>,
    pub target_rows: Option<i64>,
    pub missing: i64,
    pub extra: i64,
    pub changed: i64,
    /// Differences that agreed when read again.
    pub in_flight: i64,
    pub bytes: i64,
    pub rows_read: i64,
}

impl Observation {
    /// Rows confirmed as drift.
    pub fn drifted(&self) -> i64 {
        self.missing + self.extra + self.changed
    }

    /// In sync or drift: a result that judged the table.
    pub fn completed(&self) -> bool {
        matches!(self.status, Status::InSync | Status::Drift)
    }
}

/// The select list an [`Observation`] is read from, over `results r`; a
/// query may add columns after it ([`COLUMN_COUNT`] is the first of them).
pub(super) const COLUMNS: &str = "r.id, r.run_id, r.table_name, coalesce(r.tier, ''), r.level,
        r.status, coalesce(r.started, 0), r.seconds, r.source_rows, r.target_rows,
        r.missing, r.extra, r.changed, r.in_flight, r.bytes, r.rows_read";

/// How many columns [`COLUMNS`] selects.
pub(super) const COLUMN_COUNT: usize = 16;

/// The observation in a row that starts with [`COLUMNS`].
pub(super) fn read(r: &Row) -> Result<Observation, DbError> {
    Ok(Observation {
        id: r.get(0)?,
        run: r.get(1)?,
        table: r.get(2)?,
        tier: r.get(3)?,
        level: r.get(4)?,
        status: Status::parse(&r.get::<_, String>(5)?),
        started: r.get(6)?,
        seconds: r.get(7)?,
        source_rows: r.get(8)?,
        target_rows: r.get(9)?,
        missing: r.get(10)?,
        extra: r.get(11)?,
        changed: r.get(12)?,
        in_flight: r.get(13)?,
        bytes: r.get(14)?,
        rows_read: r.get(15)?,
    })
}
