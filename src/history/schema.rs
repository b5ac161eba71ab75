//! The history's schema, as a list of migrations: version N of the schema is
//! the first N steps applied in order. `schema_version` holds the version a
//! store is at; opening a store applies the steps it lacks in one
//! transaction, so a store is always at one version or the next.
//!
//! The steps are written for SQLite; a PostgreSQL store applies each one as
//! [`pg_ddl`] translates it, numbered alike, so a new step is written once.

use rusqlite::Connection;

use super::db::{Db, DbError};

/// Each step takes the schema from version `i` to `i + 1`.
pub const MIGRATIONS: &[&str] = &[
    // 1: runs and their per-(table, level) results.
    "CREATE TABLE runs (
        id INTEGER PRIMARY KEY,
        started INTEGER NOT NULL,
        finished INTEGER
    );
    CREATE TABLE results (
        id INTEGER PRIMARY KEY,
        run_id INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
        table_name TEXT NOT NULL,
        level TEXT NOT NULL,
        status TEXT NOT NULL,
        source_rows INTEGER,
        target_rows INTEGER,
        seconds REAL NOT NULL,
        error TEXT
    );",
    // 2: tiers, costs, differences and ranges, claims.
    "ALTER TABLE runs ADD COLUMN host TEXT;
    ALTER TABLE runs ADD COLUMN pid INTEGER;
    ALTER TABLE results ADD COLUMN tier TEXT;
    ALTER TABLE results ADD COLUMN started INTEGER;
    ALTER TABLE results ADD COLUMN escalated INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE results ADD COLUMN missing INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE results ADD COLUMN extra INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE results ADD COLUMN changed INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE results ADD COLUMN differences_kept INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE results ADD COLUMN bytes INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE results ADD COLUMN rows_read INTEGER NOT NULL DEFAULT 0;
    -- Results of version 1 knew no start: their run's.
    UPDATE results SET started = (SELECT started FROM runs WHERE runs.id = results.run_id);
    CREATE INDEX results_by_table ON results (table_name, level, started);
    CREATE TABLE ranges (
        result_id INTEGER NOT NULL REFERENCES results(id) ON DELETE CASCADE,
        first TEXT NOT NULL,
        last TEXT NOT NULL,
        source_rows INTEGER NOT NULL,
        target_rows INTEGER NOT NULL
    );
    CREATE INDEX ranges_by_result ON ranges (result_id);
    CREATE TABLE differences (
        result_id INTEGER NOT NULL REFERENCES results(id) ON DELETE CASCADE,
        kind TEXT NOT NULL,
        key TEXT NOT NULL,
        columns TEXT
    );
    CREATE INDEX differences_by_result ON differences (result_id);
    CREATE TABLE claims (
        table_name TEXT NOT NULL,
        level TEXT NOT NULL,
        run_id INTEGER NOT NULL,
        host TEXT NOT NULL,
        pid INTEGER NOT NULL,
        expires INTEGER NOT NULL,
        PRIMARY KEY (table_name, level)
    );",
    // 3: rows in flight, told from drift by reading them again.
    "ALTER TABLE results ADD COLUMN rechecked INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE results ADD COLUMN in_flight INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE differences ADD COLUMN in_flight INTEGER NOT NULL DEFAULT 0;",
    // 4: rows changed within min_age, listed apart and not judged.
    "ALTER TABLE results ADD COLUMN recent INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE differences ADD COLUMN recent INTEGER NOT NULL DEFAULT 0;",
    // 5: incidents and the deliveries of their alerts (history::incident).
    "CREATE TABLE incidents (
        id INTEGER PRIMARY KEY,
        table_name TEXT NOT NULL,
        tier TEXT,
        level TEXT NOT NULL,
        kind TEXT NOT NULL,
        opened INTEGER NOT NULL,
        opened_run INTEGER,
        closed INTEGER,
        closed_run INTEGER,
        runs INTEGER NOT NULL DEFAULT 1,
        last_run INTEGER,
        detail TEXT NOT NULL DEFAULT '{}'
    );
    CREATE INDEX incidents_open ON incidents (table_name, level, kind) WHERE closed IS NULL;
    CREATE TABLE deliveries (
        id INTEGER PRIMARY KEY,
        incident_id INTEGER NOT NULL REFERENCES incidents(id) ON DELETE CASCADE,
        alert TEXT NOT NULL,
        event TEXT NOT NULL,
        at INTEGER NOT NULL,
        outcome TEXT NOT NULL,
        attempts INTEGER NOT NULL DEFAULT 0,
        seconds REAL NOT NULL DEFAULT 0,
        error TEXT
    );
    CREATE INDEX deliveries_by_incident ON deliveries (incident_id, alert);",
    // 6: repairs, by `check`'s automatic repair or `repair --apply` (history::repair).
    "CREATE TABLE repairs (
        id INTEGER PRIMARY KEY,
        run_id INTEGER REFERENCES runs(id) ON DELETE CASCADE,
        at INTEGER NOT NULL,
        origin TEXT NOT NULL,
        table_name TEXT NOT NULL,
        level TEXT,
        outcome TEXT NOT NULL,
        planned INTEGER NOT NULL DEFAULT 0,
        applied INTEGER NOT NULL DEFAULT 0,
        already_in_sync INTEGER NOT NULL DEFAULT 0,
        changed_since INTEGER NOT NULL DEFAULT 0,
        verified INTEGER NOT NULL DEFAULT 0,
        undo TEXT,
        note TEXT
    );
    CREATE INDEX repairs_by_table ON repairs (table_name, at);",
];

/// The schema version this build writes.
pub const VERSION: i64 = MIGRATIONS.len() as i64;

#[derive(Debug)]
pub enum MigrateError {
    Db(DbError),
    /// The store is at a version this build does not know.
    TooNew(i64),
}

impl From<DbError> for MigrateError {
    fn from(e: DbError) -> Self {
        MigrateError::Db(e)
    }
}

impl From<rusqlite::Error> for MigrateError {
    fn from(e: rusqlite::Error) -> Self {
        MigrateError::Db(DbError::Sqlite(e))
    }
}

/// Brings an SQLite store to [`VERSION`], applying the missing steps in
/// one immediate transaction (two checkers opening a new store at once:
/// the second finds it migrated).
pub fn migrate(conn: &mut Connection) -> Result<(), MigrateError> {
    migrate_to(conn, VERSION)
}

/// Brings an SQLite store to `target` (tests build older stores with it).
pub fn migrate_to(conn: &mut Connection, target: i64) -> Result<(), MigrateError> {
    conn.execute_batch("BEGIN IMMEDIATE")?;
    let r = steps(&mut Db::Sqlite(conn), target);
    conn.execute_batch(if r.is_ok() { "COMMIT" } else { "ROLLBACK" })?;
    r
}

/// Applies the steps from the store's version to `target`, inside the
/// caller's transaction (on PostgreSQL, the caller has created the schema
/// and holds the migration's lock).
pub fn steps(db: &mut Db<'_>, target: i64) -> Result<(), MigrateError> {
    let int = if db.is_postgres() {
        "BIGINT"
    } else {
        "INTEGER"
    };
    db.execute_batch(&format!(
        "CREATE TABLE IF NOT EXISTS schema_version (version {int} NOT NULL)"
    ))?;
    let current: Option<i64> = db
        .query_row("SELECT max(version) FROM schema_version", args![], |r| {
            r.get(0)
        })
        .unwrap_or(None);
    let current = current.unwrap_or(0);
    if current > VERSION {
        return Err(MigrateError::TooNew(current));
    }
    if current >= target {
        return Ok(());
    }
    for step in &MIGRATIONS[current as usize..target as usize] {
        if db.is_postgres() {
            db.execute_batch(&pg_ddl(step))?;
        } else {
            db.execute_batch(step)?;
        }
    }
    db.execute("DELETE FROM schema_version", args![])?;
    db.execute(
        "INSERT INTO schema_version (version) VALUES ($1)",
        args![target],
    )?;
    Ok(())
}

/// A migration step written for SQLite, in PostgreSQL's words: an
/// `INTEGER PRIMARY KEY` becomes an identity column, every other `INTEGER`
/// a `BIGINT` (so one binding of `i64` fits both), `REAL` a `DOUBLE
/// PRECISION`, `BLOB` a `BYTEA`. Only these upper-case type words change
/// (outside quotes); everything else in the steps is SQL both engines read
/// alike (`ALTER TABLE … ADD COLUMN`, partial indexes, `ON DELETE
/// CASCADE`).
pub fn pg_ddl(step: &str) -> String {
    let mut out = String::with_capacity(step.len() + 64);
    let mut word = String::new();
    let mut quote: Option<char> = None;
    let flush = |word: &mut String, out: &mut String| {
        out.push_str(match word.as_str() {
            "INTEGER" => "BIGINT",
            "REAL" => "DOUBLE PRECISION",
            "BLOB" => "BYTEA",
            w => w,
        });
        word.clear();
    };
    let mut chars = step.chars().peekable();
    while let Some(c) = chars.next() {
        if let Some(q) = quote {
            out.push(c);
            if c == q {
                quote = None;
            }
            continue;
        }
        if c == '-' && chars.peek() == Some(&'-') {
            // A comment, to the end of its line (an apostrophe in it is
            // no quote).
            flush(&mut word, &mut out);
            out.push(c);
            for d in chars.by_ref() {
                out.push(d);
                if d == '\n' {
                    break;
                }
            }
            continue;
        }
        if c.is_ascii_alphanumeric() || c == '_' {
            word.push(c);
            continue;
        }
        flush(&mut word, &mut out);
        if c == '\'' || c == '"' {
            quote = Some(c);
        }
        out.push(c);
    }
    flush(&mut word, &mut out);
    out.replace(
        "BIGINT PRIMARY KEY",
        "BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY",
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn migrates_a_version_1_store() {
        let mut c = Connection::open_in_memory().unwrap();
        migrate_to(&mut c, 1).unwrap();
        c.execute_batch(
            "INSERT INTO runs (id, started, finished) VALUES (1, 100, 110);
             INSERT INTO results (run_id, table_name, level, status, seconds)
             VALUES (1, 't', 'count', 'in_sync', 0.5);",
        )
        .unwrap();
        migrate(&mut c).unwrap();
        let v: i64 = c
            .query_row("SELECT version FROM schema_version", [], |r| r.get(0))
            .unwrap();
        assert_eq!(v, VERSION);
        let started: i64 = c
            .query_row("SELECT started FROM results", [], |r| r.get(0))
            .unwrap();
        assert_eq!(started, 100);
        // Idempotent.
        migrate(&mut c).unwrap();
    }

    #[test]
    fn refuses_a_store_newer_than_this_build() {
        let mut c = Connection::open_in_memory().unwrap();
        migrate(&mut c).unwrap();
        c.execute("UPDATE schema_version SET version = ?1", [VERSION + 1])
            .unwrap();
        assert!(matches!(migrate(&mut c), Err(MigrateError::TooNew(v)) if v == VERSION + 1));
    }

    #[test]
    fn pg_ddl_changes_type_words_only() {
        let sqlite = "CREATE TABLE t (id INTEGER PRIMARY KEY, n INTEGER NOT NULL DEFAULT 0, \
                      s REAL, integer_count INTEGER, note TEXT DEFAULT 'INTEGER')";
        let pg = "CREATE TABLE t (id BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY, \
                  n BIGINT NOT NULL DEFAULT 0, s DOUBLE PRECISION, integer_count BIGINT, \
                  note TEXT DEFAULT 'INTEGER')";
        assert_eq!(pg_ddl(sqlite), pg);
        assert!(MIGRATIONS.iter().all(|m| !pg_ddl(m).contains("INTEGER")));
    }
}
