//! Repair: the only code that writes to a database, and only to a SQLite
//! replica. A diff's differences become a [`RepairPlan`] (rows to delete,
//! insert and update, each value in its column's storage form, see
//! [`form`]); the plan is shown, written as a SQL script ([`script`]), or
//! applied ([`apply`]) in one transaction: under the replica's write lock
//! both sides are read again in fresh snapshots and only the planned rows
//! that still differ as planned (the same columns, the replica holding the
//! same values in them) are changed; the inverse of the change is written
//! beside the replica as an undo script; after the commit a fresh diff must
//! find the repaired keys in sync. A PostgreSQL or MySQL/MariaDB replica is never written: it gets
//! a script in its own dialect ([`server`]) to apply by hand.

pub mod apply;
pub mod form;
pub mod plan;
mod reread;
pub mod script;
pub mod server;
pub mod show;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use driftsum_core::{canon, key, Key, Value};
use rusqlite::{Connection, OpenFlags};

pub use plan::{Guard, Op, RepairPlan, TablePlan};

use crate::check::{self, DiffOptions, RunOutcome, TableOutcome};
use crate::error::{CheckError, SourceError};
use crate::source::url::{DbUrl, SideUrl};
use crate::source::{sqlite::SqliteSource, Source};

/// Why a repair did not happen (nothing was written), or could not be
/// proven.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RepairError {
    #[error(transparent)]
    Check(#[from] CheckError),
    #[error(transparent)]
    Source(#[from] SourceError),
    #[error("{0}")]
    Invalid(String),
    #[error(
        "repair writes only to a SQLite replica (sqlite:PATH), and {0} is not one; \
         driftsum never writes to a server: run `driftsum diff` and let the sync \
         (or your own SQL) put those rows right"
    )]
    NotSqlite(String),
    #[error("table {table:?} could not be compared, so it cannot be repaired: {message}")]
    NotCompared { table: String, message: String },
    #[error(
        "table {table:?}, replica column {column:?}: cannot tell how the replica stores \
         its values ({reason}); say it in the config (--config FILE): \
         [tables.{table}.columns.{column}] stored_as = \"iso8601\", \"unix_seconds\", \
         \"unix_millis\" or \"julian_day\""
    )]
    Form {
        table: String,
        column: String,
        reason: String,
    },
    #[error("table {table:?}, replica column {column:?}: cannot write the value: {reason}")]
    Value {
        table: String,
        column: String,
        reason: String,
    },
    #[error(
        "refusing to repair {rows} rows of table {table:?} ({share:.1}% of it; the limits \
         are --max-rows {max_rows} and --max-share {max_share}%): a full resync of the \
         table may be the better tool; raise the limits to repair anyway"
    )]
    TooMany {
        table: String,
        rows: u64,
        share: f64,
        max_rows: u64,
        max_share: f64,
    },
    #[error(
        "the replica is locked by another writer: waited {waited:?} for its write lock \
         (--busy-timeout) and it was not released; nothing was written, try again \
         when that writer is done"
    )]
    Locked { waited: Duration },
    #[error("{context}: {message}")]
    Sqlite { context: String, message: String },
    #[error("{context}: {message}")]
    Io { context: String, message: String },
    #[error(
        "the repair was committed, but a fresh diff still finds table {table:?} \
         different at key(s) {keys}; the undo script is {undo}"
    )]
    Unverified {
        table: String,
        keys: String,
        undo: String,
    },
}

impl RepairError {
    pub fn sqlite(context: impl Into<String>, e: rusqlite::Error) -> RepairError {
        RepairError::Sqlite {
            context: context.into(),
            message: e.to_string(),
        }
    }

    fn io(context: impl Into<String>, e: std::io::Error) -> RepairError {
        RepairError::Io {
            context: context.into(),
            message: e.to_string(),
        }
    }
}

/// What a repair compares and how far it may go.
#[derive(Clone, Debug)]
pub struct RepairOptions {
    /// The comparison (tables, columns, config).
    pub diff: DiffOptions,
    pub guard: Guard,
    /// How long `--apply` waits for the replica's write lock.
    pub busy: Duration,
}

/// The database URL of a replica side: a tree file or an agent is refused,
/// since repair writes only to a database.
fn replica_database(url: &str) -> Result<String, RepairError> {
    match SideUrl::parse(url)? {
        SideUrl::Database(u) => Ok(u),
        _ => Err(RepairError::NotSqlite(crate::source::url::redact(url))),
    }
}

/// The path of a SQLite replica URL; any other side is refused.
pub fn replica_path(url: &str) -> Result<PathBuf, RepairError> {
    match DbUrl::parse(&replica_database(url)?)? {
        DbUrl::Sqlite(p) => Ok(p),
        _ => Err(RepairError::NotSqlite(crate::source::url::redact(url))),
    }
}

fn open_source(url: &str) -> Result<Box<dyn Source>, RepairError> {
    match SideUrl::parse(url)? {
        SideUrl::Database(u) => Ok(crate::source::open(&u)?),
        _ => Err(RepairError::Invalid(
            "repair reads the source's rows, so --source must be a database URL \
             (not a tree file or an agent)"
                .into(),
        )),
    }
}

/// The SQLite replica as a side to read, its scans filtered as a source's
/// are (typed ranges).
fn open_replica(path: &Path, busy: Duration) -> Result<Box<dyn Source>, RepairError> {
    let replica = SqliteSource::open_waiting(path, Some(busy))?;
    Ok(crate::source::filter::Filtered::wrap(Box::new(replica)))
}

fn read_only(path: &Path, busy: Duration) -> Result<Connection, RepairError> {
    let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let err = |e| RepairError::sqlite(format!("opening {}", path.display()), e);
    let conn = Connection::open_with_flags(path, flags).map_err(err)?;
    conn.busy_timeout(busy).map_err(err)?;
    Ok(conn)
}

/// A diff listing every difference.
fn diff_all(
    src: &mut dyn Source,
    tgt: &mut dyn Source,
    opts: &DiffOptions,
) -> Result<RunOutcome, RepairError> {
    let mut d = opts.clone();
    d.keep_differences = None;
    Ok(check::diff(src, tgt, &d, &|_, _| {})?)
}

/// The tables of a diff that drifted, in the diff's order; one that could
/// not be compared cannot be repaired.
fn drifted(run: &RunOutcome) -> impl Iterator<Item = Result<&TableOutcome, RepairError>> {
    run.tables
        .iter()
        .filter(|t| !t.in_sync())
        .map(|t| match &t.error {
            Some(e) => Err(RepairError::NotCompared {
                table: t.table.clone(),
                message: e.clone(),
            }),
            None => Ok(t),
        })
}

/// Both sides' scan specs of a diffed table, planned again from their
/// schemas as the diff planned them.
fn replan(
    src: &mut dyn Source,
    tgt: &mut dyn Source,
    t: &TableOutcome,
    diff: &DiffOptions,
) -> Result<check::plan::Plan, RepairError> {
    let s = src.schema(&t.table).map_err(CheckError::Source)?;
    let r = tgt.schema(&t.target_table).map_err(CheckError::Target)?;
    Ok(check::plan::plan(&s, &r, &diff.columns, &diff.config)?)
}

/// Plans from a diff of `src` and `tgt`; `conn` reads the replica's forms.
fn plan_with(
    src: &mut dyn Source,
    tgt: &mut dyn Source,
    conn: &Connection,
    opts: &RepairOptions,
) -> Result<RepairPlan, RepairError> {
    let run = diff_all(src, tgt, &opts.diff)?;
    let mut out = RepairPlan::default();
    for t in drifted(&run) {
        let t = t?;
        let spec = replan(src, tgt, t, &opts.diff)?;
        let mut tp = plan::plan_table(t, &spec.target, conn)?;
        opts.guard.check(&tp)?;
        // As the diff's scans left the sides knowing, and the replica's
        // stored keys say.
        tp.by_range = src.ranges_find_every_row(&spec.source)
            && tgt.ranges_find_every_row(&spec.target)
            && reread::keys_stored_as_declared(conn, &spec.target)?;
        out.tables.push(tp);
    }
    Ok(out)
}

/// Plans the repair of the replica at `replica_url` from `source_url`,
/// writing nothing.
pub fn plan(
    source_url: &str,
    replica_url: &str,
    opts: &RepairOptions,
) -> Result<RepairPlan, RepairError> {
    let path = replica_path(replica_url)?;
    let mut src = open_source(source_url)?;
    let mut tgt = open_replica(&path, opts.busy)?;
    let conn = read_only(&path, opts.busy)?;
    plan_with(src.as_mut(), tgt.as_mut(), &conn, opts)
}

/// The dialect of a server replica URL (`None`: a SQLite file).
pub fn server_dialect(replica_url: &str) -> Result<Option<server::Dialect>, RepairError> {
    Ok(match DbUrl::parse(&replica_database(replica_url)?)? {
        DbUrl::Sqlite(_) => None,
        DbUrl::Postgres(_) => Some(server::Dialect::Postgres),
        DbUrl::Mysql(_) => Some(server::Dialect::Mysql),
    })
}

/// The repair of a PostgreSQL or MySQL/MariaDB replica as a script in its
/// dialect (one transaction), and how many rows it changes; reads both
/// sides, writes nothing.
pub fn server_script(
    source_url: &str,
    replica_url: &str,
    opts: &RepairOptions,
    header: &str,
) -> Result<(String, usize), RepairError> {
    let Some(dialect) = server_dialect(replica_url)? else {
        return Err(RepairError::Invalid(
            "a SQLite replica's script is written by the plan itself".into(),
        ));
    };
    let mut src = open_source(source_url)?;
    let mut tgt = crate::source::open(&replica_database(replica_url)?)?;
    let run = diff_all(src.as_mut(), tgt.as_mut(), &opts.diff)?;
    let mut tables = Vec::new();
    for t in drifted(&run) {
        let t = t?;
        if !t.column_differences.is_empty() {
            return Err(RepairError::Invalid(format!(
                "table {:?}: the sides' columns differ; repair writes rows, not schemas: \
                 fix the replica's schema, or leave those columns out with --exclude-columns",
                t.table
            )));
        }
        let spec = replan(src.as_mut(), tgt.as_mut(), t, &opts.diff)?.target;
        tables.push((t, spec));
    }
    server::script(dialect, &tables, &opts.guard, header)
}

/// What applying a plan did to one table.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TableApplied {
    pub table: String,
    pub planned: usize,
    pub applied: usize,
    /// Planned rows already in sync when read again under the lock.
    pub already_in_sync: usize,
    /// Planned rows that now differ otherwise than planned (other columns,
    /// or other replica values in them): left alone.
    pub changed_since: usize,
}

/// What applying a plan did.
#[derive(Clone, Debug, Default)]
pub struct Applied {
    pub tables: Vec<TableApplied>,
    /// The script undoing the repair, when anything was changed.
    pub undo: Option<PathBuf>,
}

/// Whether a row differs now as it did when planned: the same columns
/// set, from the same replica values.
fn same_change(now: &Op, planned: &Op) -> bool {
    now.set
        .iter()
        .map(|(c, _)| c)
        .eq(planned.set.iter().map(|(c, _)| c))
        && same_values(&now.target, &planned.target)
}

fn same_values(a: &Option<Vec<Value>>, b: &Option<Vec<Value>>) -> bool {
    match (a, b) {
        (None, None) => true,
        (Some(a), Some(b)) => {
            a.len() == b.len()
                && a.iter()
                    .zip(b)
                    .all(|(x, y)| canon::values_equal(x, y, &Default::default()))
        }
        _ => false,
    }
}

/// The planned rows that still differ as they did when planned, with the
/// source's values as read again now.
fn still_differing(planned: &RepairPlan, fresh: &RepairPlan) -> (RepairPlan, Vec<TableApplied>) {
    let mut out = RepairPlan::default();
    let mut counts = Vec::new();
    for p in &planned.tables {
        let mut c = TableApplied {
            table: p.table.clone(),
            planned: p.ops.len(),
            ..TableApplied::default()
        };
        let now = fresh.tables.iter().find(|f| f.table == p.table);
        let by_key: std::collections::HashMap<Key, &Op> = now
            .iter()
            .flat_map(|f| &f.ops)
            .map(|o| (key::encode(&o.key), o))
            .collect();
        let mut kept = Vec::new();
        for op in &p.ops {
            match by_key.get(&key::encode(&op.key)) {
                None => c.already_in_sync += 1,
                Some(f) if f.kind == op.kind && same_change(f, op) => kept.push((*f).clone()),
                Some(_) => c.changed_since += 1,
            }
        }
        c.applied = kept.len();
        if let (Some(now), false) = (now, kept.is_empty()) {
            let mut t = now.clone();
            t.ops = kept;
            out.tables.push(t);
        }
        counts.push(c);
    }
    (out, counts)
}

/// Takes the write lock, or says who holds it.
fn begin_immediate(conn: &Connection, busy: Duration) -> Result<(), RepairError> {
    match conn.execute_batch("BEGIN IMMEDIATE") {
        Ok(()) => Ok(()),
        Err(e) if e.sqlite_error_code() == Some(rusqlite::ErrorCode::DatabaseBusy) => {
            Err(RepairError::Locked { waited: busy })
        }
        Err(e) => Err(RepairError::sqlite("locking the replica for writing", e)),
    }
}

/// Where the undo script of a repair made now goes: beside the replica.
fn undo_path(replica: &Path) -> PathBuf {
    let micros = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as i128);
    let stamp = driftsum_core::time::format_timestamp(micros).replace(':', "-");
    let name = replica
        .file_name()
        .map_or("replica".into(), |n| n.to_string_lossy().into_owned());
    replica.with_file_name(format!("{name}.repair-{stamp}.undo.sql"))
}

/// Writes `text` to `path` (a new file) and flushes it to disk.
fn write_new(path: &Path, text: &str) -> Result<(), RepairError> {
    let err = |e| RepairError::io(format!("writing {}", path.display()), e);
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)
        .map_err(err)?;
    f.write_all(text.as_bytes()).map_err(err)?;
    f.sync_all().map_err(err)
}

/// Applies `planned` to the replica in one transaction, then proves the
/// repaired keys in sync with a fresh diff.
pub fn apply(
    source_url: &str,
    replica_url: &str,
    planned: &RepairPlan,
    opts: &RepairOptions,
) -> Result<Applied, RepairError> {
    let path = replica_path(replica_url)?;
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let open_err = |e| RepairError::sqlite(format!("opening {} for writing", path.display()), e);
    let conn = Connection::open_with_flags(&path, flags).map_err(open_err)?;
    conn.busy_timeout(opts.busy).map_err(open_err)?;
    begin_immediate(&conn, opts.busy)?;
    // Statements run in a fixed order whatever the tables' references:
    // foreign keys are checked once, at the commit.
    conn.execute_batch("PRAGMA defer_foreign_keys = ON")
        .map_err(|e| RepairError::sqlite("deferring foreign keys", e))?;
    // Read the planned keys again, and only they: the source in a fresh
    // snapshot, the replica as committed now, which no other writer can
    // change while the lock is held (the rollback ends the transaction on
    // any error). The readers end before the first write: a reader's
    // shared lock would keep the commit waiting.
    let (todo, counts) = {
        let mut src = open_source(source_url)?;
        let mut tgt = open_replica(&path, opts.busy)?;
        let fresh = reread::replan(planned, src.as_mut(), tgt.as_mut(), &conn, opts)?;
        still_differing(planned, &fresh)
    };
    if todo.rows() == 0 {
        conn.execute_batch("ROLLBACK")
            .map_err(|e| RepairError::sqlite("ending the transaction", e))?;
        return Ok(Applied {
            tables: counts,
            undo: None,
        });
    }
    let undo = apply::run(&conn, &todo)?;
    let final_path = undo_path(&path);
    let pending = PathBuf::from(format!("{}.pending", final_path.display()));
    let header = format!(
        "driftsum repair undo: restores {} as it was before the repair of {} row(s).\n\
         Apply with: sqlite3 -bail REPLICA < THIS_FILE",
        path.display(),
        todo.rows()
    );
    // Written before the commit, renamed after it: a `.pending` file
    // means the process stopped at the commit (see docs/recovery.md).
    write_new(&pending, &apply_undo_text(&undo, &header))?;
    if let Err(e) = conn.execute_batch("COMMIT") {
        let _ = std::fs::remove_file(&pending);
        return Err(RepairError::sqlite(
            "committing the repair (nothing was written)",
            e,
        ));
    }
    std::fs::rename(&pending, &final_path)
        .map_err(|e| RepairError::io(format!("naming {}", final_path.display()), e))?;
    drop(conn);
    verify(source_url, &path, &todo, opts, &final_path)?;
    Ok(Applied {
        tables: counts,
        undo: Some(final_path),
    })
}

fn apply_undo_text(undo: &[script::Statement], header: &str) -> String {
    script::script_of(undo, header)
}

/// Every repaired key, read again on both sides in fresh snapshots, must
/// compare in sync, as a fresh diff would compare it.
fn verify(
    source_url: &str,
    path: &Path,
    done: &RepairPlan,
    opts: &RepairOptions,
    undo: &Path,
) -> Result<(), RepairError> {
    let mut src = open_source(source_url)?;
    let mut tgt = open_replica(path, opts.busy)?;
    for t in &done.tables {
        let bad: Vec<String> = reread::differences(src.as_mut(), tgt.as_mut(), t, opts)
            .map_err(|e| RepairError::NotCompared {
                table: t.table.clone(),
                message: format!("verifying the repair: {e}"),
            })?
            .iter()
            .map(|d| apply::show_key(&d.key))
            .collect();
        if !bad.is_empty() {
            return Err(RepairError::Unverified {
                table: t.table.clone(),
                keys: bad.join("; "),
                undo: undo.display().to_string(),
            });
        }
    }
    Ok(())
}
