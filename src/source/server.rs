//! What the server connectors (PostgreSQL, MySQL) share: a small tokio
//! runtime to drive sqlx from the synchronous [`super::Source`] trait, and
//! bounded waits, so an unreachable server is a clear error, not a hang.

use std::future::Future;
use std::time::Duration;

use super::SourceError;

/// How long connecting to a server may take before it counts as unreachable.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// A single-threaded runtime owned by one connection.
pub fn runtime() -> Result<tokio::runtime::Runtime, SourceError> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| SourceError::Other(format!("cannot start the async runtime: {e}")))
}

/// Runs `fut` on `rt`, failing with a clear message after `limit`.
pub fn block_on_timeout<T>(
    rt: &tokio::runtime::Runtime,
    limit: Duration,
    what: &str,
    fut: impl Future<Output = Result<T, SourceError>>,
) -> Result<T, SourceError> {
    rt.block_on(async {
        match tokio::time::timeout(limit, fut).await {
            Ok(r) => r,
            Err(_) => Err(SourceError::Other(format!(
                "{what}: no answer within {} s",
                limit.as_secs()
            ))),
        }
    })
}
