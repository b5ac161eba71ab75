//! Generating source/replica pairs: SQLite files (cached in the data
//! directory, since they are the same every time) and server tables (made
//! fresh by [`super::server`] and dropped after the run).
//!
//! A cached file is written under a temporary name (random, created
//! exclusively) and renamed when complete, so an interrupted run never leaves
//! a half-written file that a later run would trust.

use std::io::Write;
use std::path::{Path, PathBuf};

use crate::treefile::temporary_beside;
use rusqlite::{params, Connection};
use tempfile::NamedTempFile;

use super::case::{self, Case};
use super::data::{self, Drift, Kind, Row, GENERATOR_VERSION, TABLE};
use super::BenchError;

/// One side of a pair: a database URL and the table name to compare there.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Place {
    /// `sqlite:PATH` or a server URL (never shown: use `location`).
    #[serde(skip)]
    pub url: String,
    /// The URL without a password, or the SQLite file's path.
    pub location: String,
    pub table: String,
}

/// A generated source/replica pair and what the comparison must find.
#[derive(Clone, Debug)]
pub struct Pair {
    /// The shape of the pair (the plain one, or a pathology beside it).
    pub case: Case,
    pub rows: u64,
    pub diffs: u64,
    /// How the drift was asked for (`10` or `10%`): one plot line each.
    pub drift_label: String,
    pub source: Place,
    pub target: Place,
    pub drift: Vec<Drift>,
    /// The expected differences as `kind key` lines (see
    /// [`data::expected_lines`]).
    pub expected_file: PathBuf,
}

fn write_err(path: &Path, e: impl std::fmt::Display) -> BenchError {
    BenchError::Write {
        path: path.to_path_buf(),
        message: e.to_string(),
    }
}

/// `sqlite:` URL of a file.
pub fn sqlite_place(path: &Path) -> Place {
    Place {
        url: format!("sqlite:{}", path.display()),
        location: path.display().to_string(),
        table: TABLE.to_string(),
    }
}

const SQLITE_SCHEMA: &str = "CREATE TABLE bench (id INTEGER PRIMARY KEY, name TEXT NOT NULL,
    qty INTEGER NOT NULL, price REAL NOT NULL, amount NUMERIC(12,2) NOT NULL,
    created TIMESTAMP NOT NULL, note TEXT)";

const SQLITE_INSERT: &str = "INSERT OR REPLACE INTO bench VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)";

fn insert(stmt: &mut rusqlite::Statement<'_>, r: &Row) -> rusqlite::Result<usize> {
    // Decimals are stored as text, so no digit depends on REAL rounding.
    stmt.execute(params![
        r.id, r.name, r.qty, r.price, r.amount, r.created, r.note
    ])
}

/// Renames a finished file into place and flushes it to disk, so the
/// kernel's write-back of a freshly generated file does not run during (and
/// slow down) the first comparison that reads it.
fn finish(tmp: NamedTempFile, path: &Path) -> Result<(), BenchError> {
    tmp.as_file().sync_all().map_err(|x| write_err(path, x))?;
    tmp.persist(path).map_err(|x| write_err(path, x.error))?;
    Ok(())
}

/// A new file beside `path`, created exclusively under a random name (so a
/// link planted there is never followed), deleted unless [`finish`]ed.
fn temporary(path: &Path) -> Result<NamedTempFile, BenchError> {
    temporary_beside(path).map_err(|x| write_err(path, x))
}

/// Writes `text` to `path` through a temporary file renamed over it: a link
/// at `path` is replaced, never written through.
pub fn write_file(path: &Path, text: &[u8]) -> Result<(), BenchError> {
    let mut tmp = temporary(path)?;
    tmp.write_all(text).map_err(|x| write_err(path, x))?;
    finish(tmp, path)
}

/// Writes `rows` to a new SQLite file at `path` (replacing any).
fn write_sqlite(path: &Path, rows: impl Iterator<Item = Row>) -> Result<(), BenchError> {
    write_sqlite_as(path, SQLITE_SCHEMA, rows, insert)
}

/// Writes `rows` to a new SQLite file at `path` (replacing any) with the
/// given schema, each row inserted by `put`.
fn write_sqlite_as(
    path: &Path,
    schema: &str,
    rows: impl Iterator<Item = Row>,
    put: fn(&mut rusqlite::Statement<'_>, &Row) -> rusqlite::Result<usize>,
) -> Result<(), BenchError> {
    let tmp = temporary(path)?;
    let e = |e: rusqlite::Error| write_err(path, e);
    // SQLite takes the new, empty file for an empty database.
    let mut c = Connection::open(tmp.path()).map_err(e)?;
    // Nothing to protect while writing a throwaway file: no journal, no sync.
    c.execute_batch("PRAGMA journal_mode = OFF; PRAGMA synchronous = OFF;")
        .map_err(e)?;
    c.execute_batch(schema).map_err(e)?;
    let tx = c.transaction().map_err(e)?;
    {
        let mut stmt = tx.prepare(SQLITE_INSERT).map_err(e)?;
        for r in rows {
            put(&mut stmt, &r).map_err(e)?;
        }
    }
    tx.commit().map_err(e)?;
    drop(c);
    finish(tmp, path)
}

fn source_path(dir: &Path, rows: u64) -> PathBuf {
    dir.join(format!("src_v{GENERATOR_VERSION}_{rows}.db"))
}

fn replica_path(dir: &Path, rows: u64, diffs: u64) -> PathBuf {
    dir.join(format!("rep_v{GENERATOR_VERSION}_{rows}_{diffs}.db"))
}

/// Whether the SQLite source of this size is already in `dir`.
pub fn sqlite_source_cached(dir: &Path, rows: u64) -> bool {
    source_path(dir, rows).is_file()
}

/// Whether the SQLite replica of this size and drift is already in `dir`.
pub fn sqlite_replica_cached(dir: &Path, rows: u64, diffs: u64) -> bool {
    replica_path(dir, rows, diffs).is_file()
}

/// The cached SQLite source of `rows` rows, written if absent.
pub fn sqlite_source(dir: &Path, rows: u64) -> Result<(PathBuf, bool), BenchError> {
    let path = source_path(dir, rows);
    if path.is_file() {
        return Ok((path, false));
    }
    write_sqlite(&path, (0..rows).map(data::row))?;
    Ok((path, true))
}

/// The cached SQLite replica with `diffs` differences: a copy of the source
/// with the drift applied (much cheaper than writing every row again).
pub fn sqlite_replica(
    dir: &Path,
    source: &Path,
    rows: u64,
    diffs: u64,
    drift: &[Drift],
) -> Result<(PathBuf, bool), BenchError> {
    let path = replica_path(dir, rows, diffs);
    if path.is_file() {
        return Ok((path, false));
    }
    let mut tmp = temporary(&path)?;
    std::fs::File::open(source)
        .and_then(|mut f| std::io::copy(&mut f, &mut tmp))
        .map_err(|x| write_err(&path, x))?;
    let e = |e: rusqlite::Error| write_err(&path, e);
    let mut c = Connection::open(tmp.path()).map_err(e)?;
    c.execute_batch("PRAGMA journal_mode = OFF; PRAGMA synchronous = OFF;")
        .map_err(e)?;
    let tx = c.transaction().map_err(e)?;
    {
        let mut ins = tx.prepare(SQLITE_INSERT).map_err(e)?;
        let mut del = tx.prepare("DELETE FROM bench WHERE id = ?1").map_err(e)?;
        for d in drift {
            match d.kind {
                Kind::Changed => insert(&mut ins, &data::changed(data::row(d.index), d.column)),
                Kind::Extra => insert(&mut ins, &data::extra(d.index)),
                Kind::Missing => del.execute([d.key]),
            }
            .map_err(e)?;
        }
    }
    tx.commit().map_err(e)?;
    drop(c);
    finish(tmp, &path)?;
    Ok((path, true))
}

/// Writes the expected differences of a pair next to its data (keys as the
/// generator's ids, whatever the case stores as key).
pub fn expected_file(
    dir: &Path,
    case: Case,
    rows: u64,
    diffs: u64,
    drift: &[Drift],
) -> Result<PathBuf, BenchError> {
    let name = match case {
        Case::Dense => format!("expected_v{GENERATOR_VERSION}_dense_{rows}.txt"),
        _ => format!("expected_v{GENERATOR_VERSION}_{rows}_{diffs}.txt"),
    };
    let path = dir.join(name);
    write_file(&path, data::expected_lines(drift).as_bytes())?;
    Ok(path)
}

// --- the pathology cases (see `case`) ---------------------------------------

/// The timestamp-keyed table: the same rows, keyed by a `TIMESTAMP` text
/// column derived from the id (which it replaces).
const TS_SCHEMA: &str = "CREATE TABLE bench (ts TIMESTAMP NOT NULL PRIMARY KEY,
    name TEXT NOT NULL, qty INTEGER NOT NULL, price REAL NOT NULL,
    amount NUMERIC(12,2) NOT NULL, created TIMESTAMP NOT NULL, note TEXT)";

fn insert_ts(stmt: &mut rusqlite::Statement<'_>, r: &Row) -> rusqlite::Result<usize> {
    stmt.execute(params![
        case::ts_text(r.id),
        r.name,
        r.qty,
        r.price,
        r.amount,
        r.created,
        r.note
    ])
}

/// The same rows with an untyped key column (no affinity: text stays
/// text), filled with the ids as text.
const UNORDERED_SCHEMA: &str = "CREATE TABLE bench (id PRIMARY KEY, name TEXT NOT NULL,
    qty INTEGER NOT NULL, price REAL NOT NULL, amount NUMERIC(12,2) NOT NULL,
    created TIMESTAMP NOT NULL, note TEXT)";

fn case_path(dir: &Path, case: Case, side: &str, rows: u64, diffs: u64) -> PathBuf {
    dir.join(format!(
        "{side}_v{GENERATOR_VERSION}_{}_{rows}_{diffs}.db",
        case.name()
    ))
}

/// Whether a case's SQLite file (`side` is `src` or `rep`) is in `dir`.
pub fn case_cached(dir: &Path, case: Case, side: &str, rows: u64, diffs: u64) -> bool {
    match (case, side) {
        (Case::Plain, "src") => sqlite_source_cached(dir, rows),
        (Case::Plain, _) => sqlite_replica_cached(dir, rows, diffs),
        (Case::TimestampKey, "src") => case_path(dir, case, side, rows, 0).is_file(),
        (_, "src") => sqlite_source_cached(dir, rows),
        _ => case_path(dir, case, side, rows, diffs).is_file(),
    }
}

/// The SQLite source of a case: the plain source, except for the timestamp
/// key, whose table is written anew (written if absent).
pub fn case_source(dir: &Path, case: Case, rows: u64) -> Result<PathBuf, BenchError> {
    if case != Case::TimestampKey {
        return Ok(sqlite_source(dir, rows)?.0);
    }
    let path = case_path(dir, case, "src", rows, 0);
    if !path.is_file() {
        write_sqlite_as(&path, TS_SCHEMA, (0..rows).map(data::row), insert_ts)?;
    }
    Ok(path)
}

/// Copies `from` to a temporary file beside `path`, runs `sql` on the copy
/// (with `from` attached as `src` when `attach` is set, and the copy left
/// empty) and renames it into place.
fn derive(path: &Path, from: &Path, attach: bool, sql: &str) -> Result<(), BenchError> {
    let mut tmp = temporary(path)?;
    if !attach {
        std::fs::File::open(from)
            .and_then(|mut f| std::io::copy(&mut f, &mut tmp))
            .map_err(|x| write_err(path, x))?;
    }
    let e = |e: rusqlite::Error| write_err(path, e);
    let c = Connection::open(tmp.path()).map_err(e)?;
    c.execute_batch("PRAGMA journal_mode = OFF; PRAGMA synchronous = OFF;")
        .map_err(e)?;
    if attach {
        c.execute("ATTACH DATABASE ?1 AS src", [from.display().to_string()])
            .map_err(e)?;
    }
    c.execute_batch(&format!("BEGIN; {sql}; COMMIT;"))
        .map_err(e)?;
    if attach {
        c.execute_batch("DETACH DATABASE src").map_err(e)?;
    }
    drop(c);
    finish(tmp, path)
}

/// The SQLite replica of a case with its drift (written if absent). The
/// plain replica of the same size and drift is the base of the unordered and
/// renamed ones; the dense one is the source with every `qty` moved by one.
pub fn case_replica(
    dir: &Path,
    case: Case,
    rows: u64,
    diffs: u64,
    drift: &[Drift],
) -> Result<PathBuf, BenchError> {
    let src = sqlite_source(dir, rows)?.0;
    if case == Case::Plain {
        return Ok(sqlite_replica(dir, &src, rows, diffs, drift)?.0);
    }
    let path = case_path(dir, case, "rep", rows, diffs);
    if path.is_file() {
        return Ok(path);
    }
    match case {
        Case::Plain => unreachable!("returned above"),
        Case::TimestampKey => {
            write_sqlite_as(&path, TS_SCHEMA, data::replica_rows(rows, drift), insert_ts)?
        }
        Case::Unordered => {
            let plain = sqlite_replica(dir, &src, rows, diffs, drift)?.0;
            derive(
                &path,
                &plain,
                true,
                &format!(
                    "{UNORDERED_SCHEMA}; INSERT INTO main.bench SELECT CAST(id AS TEXT), name, \
                     qty, price, amount, created, note FROM src.bench"
                ),
            )?
        }
        Case::Renamed => {
            let plain = sqlite_replica(dir, &src, rows, diffs, drift)?.0;
            derive(
                &path,
                &plain,
                false,
                &format!(
                    "ALTER TABLE bench RENAME COLUMN name TO {}",
                    case::RENAMED_TO
                ),
            )?
        }
        Case::Dense => derive(&path, &src, false, "UPDATE bench SET qty = qty + 1")?,
    }
    Ok(path)
}

/// The drift of a case: the one asked for, except for dense drift (every row
/// changed in `qty`).
pub fn case_drift(case: Case, rows: u64, diffs: u64) -> Vec<Drift> {
    match case {
        Case::Dense => (0..rows)
            .map(|i| Drift {
                index: i,
                kind: Kind::Changed,
                key: 2 * i as i64,
                column: 1,
            })
            .collect(),
        _ => data::drift(rows, diffs),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn copy_and_edit_equals_the_replica_stream() {
        let dir = std::env::temp_dir().join(format!("driftsum-gen-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let d = data::drift(300, 9);
        let (src, _) = sqlite_source(&dir, 300).unwrap();
        let (rep, made) = sqlite_replica(&dir, &src, 300, 9, &d).unwrap();
        assert!(made);
        let streamed = dir.join("streamed.db");
        write_sqlite(&streamed, data::replica_rows(300, &d)).unwrap();
        let dump = |p: &Path| -> Vec<String> {
            let c = Connection::open(p).unwrap();
            let mut s = c.prepare("SELECT * FROM bench ORDER BY id").unwrap();
            s.query_map([], |r| {
                Ok((0..7)
                    .map(|i| format!("{:?}", r.get_ref(i).unwrap()))
                    .collect::<Vec<_>>()
                    .join("|"))
            })
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap()
        };
        assert_eq!(dump(&rep), dump(&streamed));
        let (_, again) = sqlite_replica(&dir, &src, 300, 9, &d).unwrap();
        assert!(!again, "cached");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
