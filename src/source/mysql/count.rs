//! The `count` level on MySQL / MariaDB: the server's own `SELECT count(*)`
//! of a table (its filter applied, as a scan applies it), inside the
//! session's consistent-snapshot transaction, so counting sends no row to
//! this process.

use sqlx::mysql::MySql;
use sqlx::AssertSqlSafe;

use super::{query_error, quote_ident, MySqlSource};
use crate::error::SourceError;
use crate::source::spec::ScanSpec;

impl MySqlSource {
    /// The rows a scan of `spec` would return, counted by the server.
    pub(super) fn count_rows(&mut self, spec: &ScanSpec) -> Result<u64, SourceError> {
        // A missing table is the same clear error a scan gives.
        self.table_info(&spec.table)?;
        let filter = spec
            .filter
            .as_deref()
            .map_or(String::new(), |f| format!(" WHERE ({f})"));
        let sql = format!("SELECT count(*) FROM {}{filter}", quote_ident(&spec.table));
        let context = format!(
            "counting the rows of table {:?} in {}",
            spec.table, self.location
        );
        let lock_timeout = self.lock_timeout;
        let (conn, rt) = self.session.open()?;
        let n: i64 = rt
            .block_on(sqlx::query_scalar::<MySql, i64>(AssertSqlSafe(sql)).fetch_one(conn))
            .map_err(|e| query_error(&context, e, lock_timeout))?;
        u64::try_from(n)
            .map_err(|_| SourceError::Other(format!("{context}: the server counted {n} rows")))
    }
}
