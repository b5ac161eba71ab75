//! The newest result of every (table, level), with when it last completed:
//! the state metrics show. Older results are `query`'s.

use super::db::{DbError, Row};
use super::observation::{self, Observation, COLUMN_COUNT};
use super::{History, HistoryError};

/// The newest recorded result of one (table, level).
#[derive(Clone, Debug, PartialEq)]
pub struct Latest {
    pub result: Observation,
    /// The start of the newest result in sync or with drift (not an error).
    pub last_completed: Option<i64>,
}

impl History {
    /// The newest result of every (table, level) ever recorded, by table
    /// and level.
    pub fn latest(&self) -> Result<Vec<Latest>, HistoryError> {
        self.direct(|db| {
            db.query_map(
                &format!(
                    "SELECT {},
                            (SELECT max(c.started) FROM results c
                              WHERE c.table_name = r.table_name AND c.level = r.level
                                AND c.status IN ('in_sync', 'drift'))
                     FROM results r
                     WHERE r.id IN (SELECT max(id) FROM results GROUP BY table_name, level)
                     ORDER BY r.table_name, r.level",
                    observation::COLUMNS
                ),
                args![],
                row,
            )
        })
    }
}

fn row(r: &Row) -> Result<Latest, DbError> {
    Ok(Latest {
        result: observation::read(r)?,
        last_completed: r.get(COLUMN_COUNT)?,
    })
}
