//! The `count` level on PostgreSQL: the server's own `SELECT count(*)` of a
//! table (its filter applied, as a scan applies it), in the session's
//! `REPEATABLE READ` snapshot, so counting sends no row to this process.

use super::PgSource;
use crate::error::SourceError;
use crate::source::spec::ScanSpec;

impl PgSource {
    /// The rows a scan of `spec` would return, counted by the server.
    pub(super) fn count_rows(&mut self, spec: &ScanSpec) -> Result<u64, SourceError> {
        let (schema, name) = self.resolve(&spec.table)?;
        // The FROM item a scan reads (`ONLY` a table with inheritance
        // children), so both count the same rows.
        let from = self.relation(&schema, &name);
        let filter = spec
            .filter
            .as_deref()
            .map_or(String::new(), |f| format!(" WHERE ({f})"));
        let sql = format!("SELECT count(*)::text FROM {from}{filter}");
        let context = format!("counting the rows of table {:?}", spec.table);
        let n = match self.run(&[sql], &context) {
            Ok(n) => n,
            Err(e) => {
                self.recover();
                return Err(e);
            }
        };
        n.as_deref()
            .and_then(|n| n.parse().ok())
            .ok_or_else(|| SourceError::Other(format!("{context}: the server gave no count")))
    }
}
