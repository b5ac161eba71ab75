//! Row-count estimates from each engine's own statistics, for progress: how
//! many rows a scan will read, known before it starts and at next to no cost.
//! Never used to decide anything: an estimate may be stale, and a count
//! that matters is the scan's own. The connectors run these queries (see
//! [`Source::estimate_rows`](super::Source::estimate_rows)).

/// PostgreSQL: the planner's row count of a table (`reltuples`), `NULL`
/// when the table was never vacuumed or analyzed (`-1` since PostgreSQL 14).
pub const POSTGRES: &str = "SELECT CASE WHEN c.reltuples < 0 THEN NULL \
     ELSE c.reltuples::bigint::text END \
     FROM pg_catalog.pg_class c \
     JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace \
     WHERE n.nspname = $1 AND c.relname = $2";

/// MySQL and MariaDB: `information_schema`'s estimate (InnoDB samples it;
/// it may be off by tens of percent).
pub const MYSQL: &str = "SELECT CAST(TABLE_ROWS AS CHAR) FROM information_schema.TABLES \
     WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = ?";

/// SQLite: the table's greatest rowid, found through the b-tree in a few
/// page reads (rows deleted below it make it an overestimate). `None` for a
/// `WITHOUT ROWID` table or a view, which have no rowid.
pub fn sqlite(conn: &rusqlite::Connection, table: &str) -> Option<u64> {
    let sql = format!("SELECT max(rowid) FROM {}", super::quote_ident(table));
    let max: Option<i64> = conn.query_row(&sql, [], |r| r.get(0)).ok()?;
    max.and_then(|m| u64::try_from(m).ok())
}

/// An estimate as a server returned it (text): a count, or `None` when it
/// is missing or not a count.
pub fn parse(text: Option<&str>) -> Option<u64> {
    text?.trim().parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sqlite_estimates_by_rowid() {
        let conn = rusqlite::Connection::open_in_memory().expect("memory db");
        conn.execute_batch(
            "CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT);
             CREATE TABLE w (k TEXT PRIMARY KEY, v TEXT) WITHOUT ROWID;
             CREATE TABLE e (v TEXT);
             WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 1500)
             INSERT INTO t SELECT i, 'x' FROM n;
             INSERT INTO w VALUES ('a', 'b');",
        )
        .expect("schema");
        assert_eq!(sqlite(&conn, "t"), Some(1500));
        assert_eq!(sqlite(&conn, "e"), None, "empty: max(rowid) is NULL");
        assert_eq!(sqlite(&conn, "w"), None, "no rowid");
        assert_eq!(sqlite(&conn, "nope"), None);
    }

    #[test]
    fn server_text_parses() {
        assert_eq!(parse(Some("200000")), Some(200_000));
        assert_eq!(parse(Some(" 7 ")), Some(7));
        assert_eq!(parse(Some("-1")), None);
        assert_eq!(parse(None), None);
    }
}
