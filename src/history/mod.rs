//! The run history: an SQLite file, or a schema in a PostgreSQL database
//! shared by checkers on several hosts, recording every check run, each
//! (table, level) result with its counts, cost, drifted ranges and
//! differences (capped), incidents and their alerts' deliveries, and the
//! claims through which concurrent checkers split the work. Both stores run
//! the same SQL through [`db`] (values in [`value`], PostgreSQL's connection
//! in [`pg`]). The schema and its migrations are in [`schema`], writing in
//! [`record`], claims in [`claim`], reading in [`query`] (a result as the
//! analyses and the latest state read it in [`observation`]). What is due
//! is `plan`'s business; printing is the CLI's.

#[macro_use]
pub mod value;
pub mod claim;
pub mod db;
pub mod incident;
pub mod latest;
pub mod observation;
pub mod patterns;
pub mod pg;
pub mod query;
pub mod record;
pub mod repair;
pub mod schema;

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use rusqlite::Connection;

use db::{Db, DbError};
use pg::PgStore;

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
    /// A PostgreSQL history (`path`: its URL without the password); the
    /// message has no password either.
    #[error("run history {path}: {message}")]
    Postgres { path: String, message: String },
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

/// Where a history lives.
#[derive(Clone, PartialEq, Eq)]
pub enum Location {
    /// An SQLite file.
    Sqlite(PathBuf),
    /// A schema of a PostgreSQL database (the URL may hold a password).
    Postgres { url: String, schema: String },
}

/// The default schema of a PostgreSQL history.
pub const DEFAULT_SCHEMA: &str = "driftsum";

impl Location {
    /// For messages: the file, or the URL without its password and the
    /// schema.
    pub fn display(&self) -> String {
        match self {
            Location::Sqlite(p) => p.display().to_string(),
            Location::Postgres { url, schema } => {
                format!("{} (schema {schema})", crate::source::url::redact(url))
            }
        }
    }
}

// By hand: the URL may hold a password.
impl std::fmt::Debug for Location {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Location({})", self.display())
    }
}

impl From<&Path> for Location {
    fn from(p: &Path) -> Self {
        Location::Sqlite(p.to_path_buf())
    }
}
impl From<&PathBuf> for Location {
    fn from(p: &PathBuf) -> Self {
        Location::Sqlite(p.clone())
    }
}
impl From<PathBuf> for Location {
    fn from(p: PathBuf) -> Self {
        Location::Sqlite(p)
    }
}
impl From<&Location> for Location {
    fn from(l: &Location) -> Self {
        l.clone()
    }
}

/// The store behind a [`History`].
enum Store {
    Sqlite(Connection),
    // A mutex: readers take `&History`, and a PostgreSQL statement needs
    // the connection mutably.
    Postgres(Mutex<PgStore>),
}

/// An open history store.
pub struct History {
    store: Store,
    location: Location,
}

/// How long a writer waits for another checker's transaction.
const BUSY_TIMEOUT: Duration = Duration::from_secs(60);

impl History {
    /// Opens (creating if need be) the store at `location` (a path is an
    /// SQLite file) and migrates its schema to the current version.
    pub fn open(location: impl Into<Location>) -> Result<History, HistoryError> {
        match location.into() {
            Location::Sqlite(path) => History::open_sqlite(&path),
            l @ Location::Postgres { .. } => {
                Ok(History::open_postgres(l, true)?.expect("a store opened to be created exists"))
            }
        }
    }

    /// Opens the store at `location` if it holds a history already (for
    /// reading it: nothing is created); migrates it as [`History::open`].
    pub fn open_existing(location: impl Into<Location>) -> Result<Option<History>, HistoryError> {
        match location.into() {
            Location::Sqlite(path) if !path.exists() => Ok(None),
            Location::Sqlite(path) => History::open_sqlite(&path).map(Some),
            l @ Location::Postgres { .. } => History::open_postgres(l, false),
        }
    }

    fn open_sqlite(path: &Path) -> Result<History, HistoryError> {
        let started = Instant::now();
        loop {
            let conn = Connection::open(path).map_err(|source| HistoryError::Sqlite {
                path: path.display().to_string(),
                source,
            })?;
            let mut h = History {
                store: Store::Sqlite(conn),
                location: Location::Sqlite(path.to_path_buf()),
            };
            match h.setup_sqlite() {
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

    fn setup_sqlite(&mut self) -> Result<(), HistoryError> {
        let Store::Sqlite(conn) = &mut self.store else {
            unreachable!("an SQLite store");
        };
        let result = (|| {
            conn.busy_timeout(BUSY_TIMEOUT)?;
            // WAL: readers (`history`) never block a running check, and a
            // killed writer leaves the last committed state.
            conn.execute_batch("PRAGMA journal_mode = WAL; PRAGMA foreign_keys = ON;")?;
            schema::migrate(conn)
        })();
        result.map_err(|e| self.migrate_err(e))
    }

    /// Connects and migrates; `None` when `create` is false and the schema
    /// holds no history.
    fn open_postgres(location: Location, create: bool) -> Result<Option<History>, HistoryError> {
        let Location::Postgres { url, schema } = &location else {
            unreachable!("a PostgreSQL location");
        };
        let redacted = location.display();
        let mut store = PgStore::connect(url, schema).map_err(|e| HistoryError::Postgres {
            path: redacted.clone(),
            message: e.to_string(),
        })?;
        let found = store.exists().map_err(|e| HistoryError::Postgres {
            path: redacted,
            message: e.to_string(),
        })?;
        if !found && !create {
            return Ok(None);
        }
        let h = History {
            store: Store::Postgres(Mutex::new(store)),
            location,
        };
        // One migrating checker at a time; the others find it done.
        h.write("migrate", |db| {
            if let Db::Postgres(p) = db {
                p.ensure_schema()?;
            }
            match schema::steps(db, schema::VERSION) {
                Ok(()) => Ok(Ok(())),
                Err(schema::MigrateError::Db(e)) => Err(e),
                Err(e) => Ok(Err(e)),
            }
        })?
        .map_err(|e| h.migrate_err(e))?;
        Ok(Some(h))
    }

    fn migrate_err(&self, e: schema::MigrateError) -> HistoryError {
        match e {
            schema::MigrateError::Db(e) => self.err(e),
            schema::MigrateError::TooNew(v) => HistoryError::Invalid {
                path: self.location.display(),
                message: format!(
                    "schema version {v} was written by a newer driftsum (this one knows up to {})",
                    schema::VERSION
                ),
            },
        }
    }

    /// Runs `f` on the store, each statement on its own (reads, and
    /// writes of one statement).
    pub fn direct<T>(
        &self,
        f: impl FnOnce(&mut Db<'_>) -> Result<T, DbError>,
    ) -> Result<T, HistoryError> {
        match &self.store {
            Store::Sqlite(c) => f(&mut Db::Sqlite(c)),
            Store::Postgres(m) => {
                let mut p = lock(m);
                p.revive().and_then(|()| f(&mut Db::Postgres(&mut p)))
            }
        }
        .map_err(|e| self.err(e))
    }

    /// Runs `f` in one write transaction, committed when it returns `Ok`.
    /// SQLite: `BEGIN IMMEDIATE`, one writer at a time. PostgreSQL: the
    /// transaction holds the advisory lock `key` (what it changes, such as
    /// `claim\0TABLE\0LEVEL`), so writers of different things do not
    /// wait for each other.
    pub fn write<T>(
        &self,
        key: &str,
        f: impl FnOnce(&mut Db<'_>) -> Result<T, DbError>,
    ) -> Result<T, HistoryError> {
        let result = match &self.store {
            Store::Sqlite(c) => (|| {
                c.execute_batch("BEGIN IMMEDIATE")?;
                let r = f(&mut Db::Sqlite(c));
                let end = c.execute_batch(if r.is_ok() { "COMMIT" } else { "ROLLBACK" });
                match (r, end) {
                    (Ok(v), Ok(())) => Ok(v),
                    (Err(e), _) => Err(e),
                    (Ok(_), Err(e)) => {
                        let _ = c.execute_batch("ROLLBACK");
                        Err(e.into())
                    }
                }
            })(),
            Store::Postgres(m) => {
                let mut p = lock(m);
                match p.begin(key) {
                    Ok(()) => {
                        let r = f(&mut Db::Postgres(&mut p));
                        let end = p.end(r.is_ok());
                        r.and_then(|v| end.map(|()| v))
                    }
                    Err(e) => {
                        let _ = p.end(false);
                        Err(e)
                    }
                }
            }
        };
        result.map_err(|e| self.err(e))
    }

    fn err(&self, e: DbError) -> HistoryError {
        match e {
            DbError::Sqlite(source) => HistoryError::Sqlite {
                path: self.location.display(),
                source,
            },
            e => HistoryError::Postgres {
                path: self.location.display(),
                message: e.to_string(),
            },
        }
    }

    /// Where the store lives.
    pub fn location(&self) -> &Location {
        &self.location
    }

    pub fn is_postgres(&self) -> bool {
        matches!(self.store, Store::Postgres(_))
    }
}

/// The PostgreSQL lock under which a (table, level)'s claim is taken and
/// its result recorded.
fn claim_key(table: &str, level: &str) -> String {
    format!("claim\0{table}\0{level}")
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// The history a config names: `[history] url` (or `url_env`): an SQLite
/// file (`sqlite:PATH` or a path, relative to the config's directory; by
/// default `driftsum-history.sqlite` beside the config), or a PostgreSQL
/// database (`postgres://…`, its password from the URL, `password_file`,
/// `password_env`, `PGPASSWORD` or `.pgpass`) whose schema `[history]
/// schema` (default `driftsum`) holds the store.
pub fn location(config: &crate::config::Config) -> Result<Location, String> {
    let dir = config.dir.clone().unwrap_or_else(|| PathBuf::from("."));
    let history = config.history.clone().unwrap_or_default();
    if history.url.is_none() && history.url_env.is_none() {
        if history.schema.is_some() {
            return Err(
                "[history] schema is for a PostgreSQL history; give its url (postgres://…) too"
                    .into(),
            );
        }
        return Ok(Location::Sqlite(dir.join("driftsum-history.sqlite")));
    }
    let side = crate::config::SideConfig {
        url: history.url.clone(),
        url_env: history.url_env.clone(),
        password_file: history.password_file.clone(),
        password_env: history.password_env.clone(),
        ..Default::default()
    };
    let url = side.resolve("history", config.dir.as_deref())?;
    let scheme = url
        .split_once(':')
        .map(|(s, _)| s.to_ascii_lowercase())
        .filter(|s| s.len() > 1 && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '+'));
    let postgres = matches!(scheme.as_deref(), Some("postgres" | "postgresql"));
    if history.schema.is_some() && !postgres {
        return Err(
            "[history] schema is for a PostgreSQL history (url = \"postgres://…\"); drop it".into(),
        );
    }
    match scheme.as_deref() {
        Some("postgres" | "postgresql") => {
            let schema = history.schema.unwrap_or_else(|| DEFAULT_SCHEMA.to_string());
            if schema.is_empty() || schema.contains('\0') {
                return Err(format!(
                    "[history] schema {schema:?} is not a schema name; write one such as \"driftsum\""
                ));
            }
            Ok(Location::Postgres { url, schema })
        }
        Some("sqlite" | "sqlite3") | None => {
            let path = match url.split_once(':') {
                Some((_, rest)) if scheme.is_some() => rest.strip_prefix("//").unwrap_or(rest),
                _ => url.as_str(),
            };
            if path.is_empty() {
                return Err("[history] url names no file; write sqlite:PATH".into());
            }
            Ok(Location::Sqlite(dir.join(path)))
        }
        Some(other) => Err(format!(
            "[history] url: a run history cannot be kept in a {other}: database; write \
             sqlite:PATH (a file) or postgres://HOST/DB (a database several checkers share)"
        )),
    }
}
