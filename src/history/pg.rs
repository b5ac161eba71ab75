//! The run history in a PostgreSQL schema, shared by checkers on several
//! hosts: one connection (sqlx) on a runtime the store owns, like the
//! connectors'. The URL is read by the connectors' own code
//! ([`PgTarget`]: TLS, `.pgpass`, `PGPASSWORD`), the store's tables live in
//! a schema of their own (`search_path` is set to it alone), and a write
//! transaction takes a transaction-scoped advisory lock named after what it
//! changes, so two checkers serialize on one (table, level) and nowhere
//! else (SQLite's `BEGIN IMMEDIATE` serializes every writer).

use std::time::Duration;

use sqlx::postgres::{PgConnection, PgRow};
use sqlx::{AssertSqlSafe, Column, Connection, Row as _, TypeInfo};

use super::value::{Cell, DbError, Param, Row, Ty};
use crate::source::postgres::PgTarget;
use crate::source::quote_ident;
use crate::source::secrets::scrub;
use crate::source::server::{self, Session};

/// How long a statement may take before the server counts as gone (a
/// prune of a large history is the longest).
const STATEMENT_LIMIT: Duration = Duration::from_secs(300);

/// How long a writer waits for another checker's lock, as SQLite's busy
/// timeout.
const LOCK_WAIT: &str = "60s";

/// An open PostgreSQL history.
pub struct PgStore {
    session: Session<PgConnection>,
    /// The URL without its password, for messages.
    location: String,
    secrets: Vec<String>,
    /// The store's schema (unquoted).
    schema: String,
    /// The URL, to connect again after a lost connection (it may hold a
    /// password: never in a message).
    url: String,
    /// Whether the connection was lost or is in doubt.
    broken: bool,
}

impl PgStore {
    /// Connects to the server `url` names, its statements reading and
    /// writing `schema` (which need not exist yet).
    pub fn connect(url: &str, schema: &str) -> Result<PgStore, DbError> {
        let target = PgTarget::from_url(url).map_err(|e| DbError::Postgres(e.to_string()))?;
        let PgTarget {
            opts,
            location,
            secrets,
            ..
        } = target;
        let rt = server::runtime().map_err(|e| DbError::Postgres(e.to_string()))?;
        let conn = server::block_on_timeout(
            &rt,
            server::CONNECT_TIMEOUT,
            &format!("connecting to {location}"),
            async {
                PgConnection::connect_with(&opts).await.map_err(|e| {
                    crate::source::SourceError::Other(crate::source::tls::explain(scrub(
                        error_text(&e),
                        &secrets,
                    )))
                })
            },
        )
        .map_err(|e| DbError::Postgres(e.to_string()))?;
        let mut store = PgStore {
            session: Session::new(conn, rt, location.clone()),
            location,
            secrets,
            schema: schema.to_string(),
            url: url.to_string(),
            broken: false,
        };
        // Only the store's schema: no user table is ever read or written
        // by an unqualified name (pg_catalog is always searched first).
        store.execute_batch(&format!(
            "SET search_path = {}; SET lock_timeout = '{LOCK_WAIT}'; \
             SET client_min_messages = warning; SET TimeZone = 'UTC'",
            quote_ident(schema)
        ))?;
        Ok(store)
    }

    pub fn location(&self) -> &str {
        &self.location
    }

    /// Connects again when the connection was lost (a server restart, a
    /// network cut), so that a long-running `watch` carries on: the
    /// statement that found it lost failed; the next one runs on a new
    /// connection. Never inside a transaction (its statements are gone).
    pub fn revive(&mut self) -> Result<(), DbError> {
        if self.broken {
            *self = PgStore::connect(&self.url, &self.schema)?;
        }
        Ok(())
    }

    /// Whether the store's schema holds a history (its `schema_version`).
    pub fn exists(&mut self) -> Result<bool, DbError> {
        let rows = self.query(
            "SELECT 1::bigint FROM pg_catalog.pg_tables \
             WHERE schemaname = $1 AND tablename = 'schema_version'",
            &[Param::Text(self.schema.clone())],
        )?;
        Ok(!rows.is_empty())
    }

    /// Creates the store's schema when it does not exist yet (looked up
    /// first: `CREATE SCHEMA IF NOT EXISTS` asks for the right to create
    /// one even when it exists). Inside the migration's transaction.
    pub fn ensure_schema(&mut self) -> Result<(), DbError> {
        let found = self.query(
            "SELECT 1::bigint FROM pg_catalog.pg_namespace WHERE nspname = $1",
            &[Param::Text(self.schema.clone())],
        )?;
        if found.is_empty() {
            self.execute_batch(&format!("CREATE SCHEMA {}", quote_ident(&self.schema)))?;
        }
        Ok(())
    }

    /// Begins a write transaction holding the advisory lock `key` (within
    /// this schema) until it ends.
    pub fn begin(&mut self, key: &str) -> Result<(), DbError> {
        self.revive()?;
        self.execute_batch("BEGIN")?;
        let lock = lock_key(&self.schema, key);
        self.execute("SELECT pg_advisory_xact_lock($1)", &[Param::Int(lock)])
            .map(drop)
    }

    /// Ends the transaction [`begin`](Self::begin) started.
    pub fn end(&mut self, commit: bool) -> Result<(), DbError> {
        let r = self.execute_batch(if commit { "COMMIT" } else { "ROLLBACK" });
        if r.is_err() {
            // Its protocol state is unknown: no further statement on it.
            self.session.discard();
            self.broken = true;
        }
        r
    }

    pub fn execute(&mut self, sql: &str, args: &[Param]) -> Result<u64, DbError> {
        let q = bind(sqlx::query(AssertSqlSafe(sql.to_string())), args);
        self.run(async move |conn| q.execute(conn).await.map(|r| r.rows_affected()))
    }

    pub fn execute_batch(&mut self, sql: &str) -> Result<(), DbError> {
        let sql = sql.to_string();
        self.run(async move |conn| {
            sqlx::raw_sql(AssertSqlSafe(sql))
                .execute(conn)
                .await
                .map(drop)
        })
    }

    pub fn query(&mut self, sql: &str, args: &[Param]) -> Result<Vec<Row>, DbError> {
        let q = bind(sqlx::query(AssertSqlSafe(sql.to_string())), args);
        let rows = self.run(async move |conn| q.fetch_all(conn).await)?;
        rows.iter().map(row).collect()
    }

    /// Runs `f` on the connection, bounded by [`STATEMENT_LIMIT`].
    fn run<T>(
        &mut self,
        f: impl AsyncFnOnce(&mut PgConnection) -> Result<T, sqlx::Error>,
    ) -> Result<T, DbError> {
        let (conn, rt) = self
            .session
            .open()
            .map_err(|e| DbError::Postgres(e.to_string()))?;
        let out = rt.block_on(async { tokio::time::timeout(STATEMENT_LIMIT, f(conn)).await });
        match out {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(e)) => {
                // Not the server's answer, or its last one (a shutdown or a
                // terminated backend, 57P…; a connection failure, 08…): the
                // connection is gone or in doubt.
                let lost = match &e {
                    sqlx::Error::Database(d) => d
                        .code()
                        .is_some_and(|c| c.starts_with("57P") || c.starts_with("08")),
                    _ => true,
                };
                if lost {
                    self.session.discard();
                    self.broken = true;
                }
                Err(DbError::Postgres(format!(
                    "{}: {}",
                    self.location,
                    scrub(error_text(&e), &self.secrets)
                )))
            }
            Err(_) => {
                self.session.discard();
                self.broken = true;
                Err(DbError::Postgres(format!(
                    "{}: no answer within {} s",
                    self.location,
                    STATEMENT_LIMIT.as_secs()
                )))
            }
        }
    }
}

type PgQuery<'q> = sqlx::query::Query<'q, sqlx::Postgres, sqlx::postgres::PgArguments>;

fn bind<'q>(mut q: PgQuery<'q>, args: &[Param]) -> PgQuery<'q> {
    for a in args {
        q = match a {
            Param::Int(i) => q.bind(*i),
            Param::Real(f) => q.bind(*f),
            Param::Text(s) => q.bind(s.clone()),
            Param::Null(Ty::Int) => q.bind(None::<i64>),
            Param::Null(Ty::Real) => q.bind(None::<f64>),
            Param::Null(Ty::Text) => q.bind(None::<String>),
        };
    }
    q
}

/// A row as [`Cell`]s, by each column's type (the schema keeps to
/// `BIGINT`, `DOUBLE PRECISION` and `TEXT`; a `count(*)` is a `BIGINT`).
fn row(r: &PgRow) -> Result<Row, DbError> {
    let cells = (0..r.len())
        .map(|i| {
            let name = r.column(i).type_info().name().to_string();
            let dec = |e: sqlx::Error| DbError::Decode(format!("column {i}: {e}"));
            Ok(match name.as_str() {
                "INT8" => r.try_get::<Option<i64>, _>(i).map_err(dec)?.map(Cell::Int),
                "INT4" => r
                    .try_get::<Option<i32>, _>(i)
                    .map_err(dec)?
                    .map(|v| Cell::Int(v.into())),
                "INT2" => r
                    .try_get::<Option<i16>, _>(i)
                    .map_err(dec)?
                    .map(|v| Cell::Int(v.into())),
                "BOOL" => r
                    .try_get::<Option<bool>, _>(i)
                    .map_err(dec)?
                    .map(|v| Cell::Int(v.into())),
                "FLOAT8" => r.try_get::<Option<f64>, _>(i).map_err(dec)?.map(Cell::Real),
                "FLOAT4" => r
                    .try_get::<Option<f32>, _>(i)
                    .map_err(dec)?
                    .map(|v| Cell::Real(v.into())),
                "TEXT" | "VARCHAR" | "NAME" | "BPCHAR" => r
                    .try_get::<Option<String>, _>(i)
                    .map_err(dec)?
                    .map(Cell::Text),
                other => {
                    return Err(DbError::Decode(format!(
                        "column {i} is of type {other}; cast it to bigint, double precision \
                         or text in the query"
                    )))
                }
            }
            .unwrap_or(Cell::Null))
        })
        .collect::<Result<Vec<_>, DbError>>()?;
    Ok(Row(cells))
}

/// The server's message for a database error, else the driver's.
fn error_text(e: &sqlx::Error) -> String {
    match e.as_database_error() {
        Some(d) => d.message().to_string(),
        None => e.to_string(),
    }
}

/// The advisory lock key of `key` in `schema`: 64 bits of FNV-1a (two
/// names sharing a key only wait for each other, never run together).
fn lock_key(schema: &str, key: &str) -> i64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in schema.bytes().chain([0]).chain(key.bytes()) {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h as i64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lock_keys_differ_by_schema_and_name() {
        let a = lock_key("driftsum", "claim\0t\0keys");
        assert_eq!(a, lock_key("driftsum", "claim\0t\0keys"));
        assert_ne!(a, lock_key("other", "claim\0t\0keys"));
        assert_ne!(a, lock_key("driftsum", "claim\0t\0full"));
    }
}
