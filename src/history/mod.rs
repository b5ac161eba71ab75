//! The run history: an SQLite file recording every check run, each (table,
//! level) result with its counts, cost, drifted ranges and differences
//! (capped), and the claims through which concurrent checkers split the
//! work. The schema and its migrations are in [`schema`], writing in
//! [`record`], claims in [`claim`], reading in [`query`]. What is due is
//! `plan`'s business; printing is the CLI's.

pub mod claim;
pub mod incident;
pub mod latest;
pub mod patterns;
pub mod query;
pub mod record;
pub mod schema;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use rusqlite::Connection;

/// What a (table, level) check concluded.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    InSync,
    Drift,
    Error,
    /// Not run: another checker holds its claim.
    Skipped,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::InSync => "in_sync",
            Status::Drift => "drift",
            Status::Error => "error",
            Status::Skipped => "skipped",
        }
    }

    pub fn parse(s: &str) -> Status {
        match s {
            "in_sync" => Status::InSync,
            "drift" => Status::Drift,
            "skipped" => Status::Skipped,
            _ => Status::Error,
        }
    }
}

/// A history store that cannot be opened, read or written.
#[derive(Debug, thiserror::Error)]
pub enum HistoryError {
    #[error("run history {path}: {source}")]
    Sqlite {
        path: String,
        source: rusqlite::Error,
    },
    #[error("run history {path}: {message}")]
    Invalid { path: String, message: String },
}

impl HistoryError {
    /// Whether SQLite answered that another connection holds the store.
    fn is_busy(&self) -> bool {
        matches!(
            self,
            HistoryError::Sqlite { source, .. } if matches!(
                source.sqlite_error_code(),
                Some(rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked)
            )
        )
    }
}

/// An open history store.
pub struct History {
    conn: Connection,
    path: PathBuf,
}

/// How long a writer waits for another checker's transaction.
const BUSY_TIMEOUT: Duration = Duration::from_secs(60);

impl History {
    /// Opens (creating if need be) the store at `path` and migrates its
    /// schema to the current version.
    pub fn open(path: &Path) -> Result<History, HistoryError> {
        let started = Instant::now();
        loop {
            let conn = Connection::open(path).map_err(|source| HistoryError::Sqlite {
                path: path.display().to_string(),
                source,
            })?;
            let mut h = History {
                conn,
                path: path.to_path_buf(),
            };
            match h.setup() {
                Ok(()) => return Ok(h),
                // Two checkers creating a new store at once: switching it to
                // WAL answers "busy" at once rather than through the busy
                // handler, so the one that lost waits and tries again.
                Err(e) if e.is_busy() && started.elapsed() < BUSY_TIMEOUT => {
                    drop(h);
                    std::thread::sleep(Duration::from_millis(20));
                }
                Err(e) => return Err(e),
            }
        }
    }

    fn setup(&mut self) -> Result<(), HistoryError> {
        self.conn
            .busy_timeout(BUSY_TIMEOUT)
            .map_err(|e| self.err(e))?;
        // WAL: readers (`history`) never block a running check, and a
        // killed writer leaves the last committed state.
        self.conn
            .execute_batch("PRAGMA journal_mode = WAL; PRAGMA foreign_keys = ON;")
            .map_err(|e| self.err(e))?;
        schema::migrate(&mut self.conn).map_err(|e| match e {
            schema::MigrateError::Sqlite(e) => self.err(e),
            schema::MigrateError::TooNew(v) => HistoryError::Invalid {
                path: self.path.display().to_string(),
                message: format!(
                    "schema version {v} was written by a newer driftsum (this one knows up to {})",
                    schema::VERSION
                ),
            },
        })
    }

    fn err(&self, source: rusqlite::Error) -> HistoryError {
        HistoryError::Sqlite {
            path: self.path.display().to_string(),
            source,
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// The history file a config names: `[history] url` (`sqlite:PATH` or a
/// path, relative to the config's directory), by default
/// `driftsum-history.sqlite` beside the config.
pub fn location(config: &crate::config::Config) -> Result<PathBuf, String> {
    let dir = config.dir.clone().unwrap_or_else(|| PathBuf::from("."));
    let Some(url) = config.history.as_ref().and_then(|h| h.url.as_deref()) else {
        return Ok(dir.join("driftsum-history.sqlite"));
    };
    let path = match url.split_once(':') {
        Some((scheme, rest)) if scheme.eq_ignore_ascii_case("sqlite") => {
            rest.strip_prefix("//").unwrap_or(rest)
        }
        Some((scheme, _)) if scheme.starts_with("postgres") => {
            return Err(
                "[history] url: a PostgreSQL history is not supported yet; use sqlite:PATH".into(),
            )
        }
        _ => url,
    };
    if path.is_empty() {
        return Err("[history] url names no file; write sqlite:PATH".into());
    }
    Ok(dir.join(path))
}
