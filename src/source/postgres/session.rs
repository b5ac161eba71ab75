//! Opening a PostgreSQL session the way every scan needs it: settings the
//! decoders rely on, a bounded lock wait, and one `REPEATABLE READ, READ
//! ONLY` transaction (on a shared snapshot for a fork) with a savepoint to
//! fall back to. The connect options themselves are built in
//! `PgSource::connect`.

use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgConnection};
use sqlx::{AssertSqlSafe, Connection};

use crate::error::SourceError;

/// Opens a session the way every scan needs it, inside a `REPEATABLE READ,
/// READ ONLY` transaction, on `snapshot` when given (one exported by
/// another session, so both read the same data).
pub(super) async fn open_session(
    opts: &PgConnectOptions,
    snapshot: Option<&str>,
    lock_timeout: Duration,
    open_err: impl Fn(sqlx::Error) -> SourceError,
) -> Result<PgConnection, SourceError> {
    let mut conn = PgConnection::connect_with(opts).await.map_err(&open_err)?;
    // The URL's `options` may have changed these; the text forms parsed
    // below depend on them.
    let mut stmts = vec![
        "SET TimeZone = 'UTC'".to_string(),
        "SET client_encoding = 'UTF8'".to_string(),
        "SET DateStyle = 'ISO, MDY'".to_string(),
        "SET idle_in_transaction_session_timeout = 0".to_string(),
        // A table another session holds locked (`LOCK TABLE … ACCESS
        // EXCLUSIVE`, an `ALTER TABLE` in an open transaction) would
        // otherwise keep a scan waiting forever; past this the scan fails
        // with 55P03, reported for that table alone (see `db_message`).
        // PostgreSQL reads 0 as "wait forever", so "do not wait" is 1 ms.
        format!("SET lock_timeout = '{}ms'", lock_timeout.as_millis().max(1)),
        "BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY".to_string(),
    ];
    if let Some(id) = snapshot {
        // The server made the id; check it is one before quoting it anyway.
        if !id.chars().all(|c| c.is_ascii_hexdigit() || c == '-') {
            return Err(SourceError::Other(format!("an odd snapshot id {id:?}")));
        }
        stmts.push(format!("SET TRANSACTION SNAPSHOT '{id}'"));
    }
    // A failed query (a table without SELECT privilege, a bad filter)
    // aborts the transaction; rolling back to this keeps the snapshot and
    // lets other tables go on.
    stmts.push("SAVEPOINT driftsum".to_string());
    for stmt in stmts {
        sqlx::raw_sql(AssertSqlSafe(stmt))
            .execute(&mut conn)
            .await
            .map_err(&open_err)?;
    }
    Ok(conn)
}
