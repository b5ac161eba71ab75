//! Running one level of one table, through the check API's public entry
//! points: `count` counts each side's rows in one statement (one snapshot),
//! `keys` is a diff over the key columns alone (no value column is read or
//! hashed), `full` is the content diff. Escalation and recording are the
//! caller's; nothing here prints or stores.

use std::time::Instant;

use rusqlite::OpenFlags;

use super::tiers::TableTier;
use super::Level;
use crate::check::endpoint::Endpoint;
use crate::check::{self, ColumnChoice, DiffOptions, TablePair};
use crate::config::Config;
use crate::error::SourceError;
use crate::history::record::LevelResult;
use crate::history::Status;
use crate::source::url::DbUrl;
use crate::source::{quote_ident, ScanSpec, Source};

/// The two sides of a check. Each level reads in its own snapshot: the
/// connections are released after it ([`Sides::release`]), so that a long
/// check never holds the replica's read lock (and its sync) between levels,
/// and a recheck sees what was committed since.
pub struct Sides {
    open: Option<(Endpoint<'static>, Endpoint<'static>)>,
    source_url: String,
    replica_url: String,
}

impl Sides {
    pub fn open(source_url: &str, replica_url: &str) -> Result<Sides, (&'static str, SourceError)> {
        let mut sides = Sides {
            open: None,
            source_url: source_url.to_string(),
            replica_url: replica_url.to_string(),
        };
        sides.both()?;
        Ok(sides)
    }

    /// Both sides' connections, opened again if released.
    fn both(
        &mut self,
    ) -> Result<(&mut Endpoint<'static>, &mut Endpoint<'static>), (&'static str, SourceError)> {
        if self.open.is_none() {
            let s = Endpoint::open(&self.source_url, None).map_err(|e| ("source", e))?;
            let r = Endpoint::open(&self.replica_url, None).map_err(|e| ("replica", e))?;
            self.open = Some((s, r));
        }
        let (s, r) = self.open.as_mut().expect("opened above");
        Ok((s, r))
    }

    /// The source's and the replica's URLs.
    pub fn urls(&self) -> (&str, &str) {
        (&self.source_url, &self.replica_url)
    }

    /// Closes both connections; the next use opens fresh ones.
    pub fn release(&mut self) {
        self.open = None;
    }

    /// Both sides as databases (opened again if released); an error for a
    /// tree file or an agent, which hold no rows to read by key.
    pub fn databases(&mut self) -> Result<(&mut dyn Source, &mut dyn Source), String> {
        let (s, r) = self
            .both()
            .map_err(|(side, e)| format!("opening the {side}: {e}"))?;
        match (s, r) {
            (Endpoint::Db(s), Endpoint::Db(r)) => Ok((&mut **s, &mut **r)),
            _ => Err("reading rows by key needs two databases, not a tree file or an agent".into()),
        }
    }

    /// The names of the source's tables.
    pub fn source_tables(&mut self) -> Result<Vec<String>, SourceError> {
        let (s, _) = self.both().map_err(|(_, e)| e)?;
        s.tables()
    }
}

/// Runs `level` on `t` now; a failure lands in the result's `error`.
/// `keep` caps the differences the result holds (all are counted).
pub fn run(
    sides: &mut Sides,
    config: &Config,
    t: &TableTier,
    level: Level,
    keep: usize,
    started: i64,
) -> LevelResult {
    let clock = Instant::now();
    let mut r = LevelResult::new(&t.table, &t.tier, level.as_str(), started);
    match level {
        Level::Count => match count(sides, config, &t.table) {
            Ok((s, d)) => {
                r.source_rows = Some(s);
                r.target_rows = Some(d);
                r.status = match s == d {
                    true => Status::InSync,
                    false => Status::Drift,
                };
            }
            Err(e) => r.error = Some(e),
        },
        Level::Keys | Level::Full => {
            let columns = choice(level);
            let opts = DiffOptions {
                tables: vec![TablePair {
                    source: t.table.clone(),
                    target: config.replica_table(&t.table),
                }],
                columns,
                config: config.clone(),
                keep_differences: Some(keep),
                ..DiffOptions::default()
            };
            let run = sides
                .both()
                .map_err(|(side, e)| format!("opening the {side}: {e}"))
                .and_then(|(s, r)| {
                    check::diff_endpoints(s, r, &opts, &|_, _| {}).map_err(|e| e.to_string())
                });
            match run.map(|run| run.tables.into_iter().next()) {
                Ok(Some(o)) => {
                    r.source_rows = Some(o.source_rows);
                    r.target_rows = Some(o.target_rows);
                    r.counts = o.counts;
                    r.bytes = o.stats.bytes_exchanged;
                    r.rows_read = o.stats.source_rows_read + o.stats.target_rows_read;
                    r.error = o.error.clone();
                    r.status = match (&o.error, o.in_sync()) {
                        (Some(_), _) => Status::Error,
                        (None, true) => Status::InSync,
                        (None, false) => Status::Drift,
                    };
                    r.outcome = Some(o);
                    r.by_range = ranges_find_every_row(sides, config, &t.table, level);
                }
                Ok(None) => r.error = Some("the comparison returned no table".into()),
                Err(e) => r.error = Some(e),
            }
        }
    }
    sides.release();
    if r.error.is_some() {
        r.status = Status::Error;
    }
    r.seconds = clock.elapsed().as_secs_f64();
    r
}

/// The columns `level` compares: none but the key for `keys`, all for
/// `full` (and `count`, which reads none).
pub fn choice(level: Level) -> ColumnChoice {
    match level {
        Level::Keys => ColumnChoice {
            columns: Some(Vec::new()),
            ..ColumnChoice::default()
        },
        _ => ColumnChoice::default(),
    }
}

/// Whether both sides' range reads of `table` find every row, as the
/// level's scans left them knowing (a SQLite side learns otherwise only by
/// scanning a key stored in another storage class than its column's): a
/// fresh connection cannot tell, so the level's answer is kept for reading
/// its keys again.
fn ranges_find_every_row(sides: &mut Sides, config: &Config, table: &str, level: Level) -> bool {
    let replica = config.replica_table(table);
    let Ok((s, r)) = sides.databases() else {
        return false;
    };
    let (Ok(a), Ok(b)) = (s.schema(table), r.schema(&replica)) else {
        return false;
    };
    check::plan::plan(&a, &b, &choice(level), config)
        .is_ok_and(|p| s.ranges_find_every_row(&p.source) && r.ranges_find_every_row(&p.target))
}

/// Each side's exact row count.
fn count(sides: &mut Sides, config: &Config, table: &str) -> Result<(u64, u64), String> {
    let replica = config.replica_table(table);
    let (source_url, replica_url) = (sides.source_url.clone(), sides.replica_url.clone());
    let (src, rep) = sides
        .both()
        .map_err(|(side, e)| format!("opening the {side}: {e}"))?;
    let s = src.schema(table).map_err(|e| format!("source: {e}"))?;
    let t = rep.schema(&replica).map_err(|e| format!("replica: {e}"))?;
    let keys_only = ColumnChoice {
        columns: Some(Vec::new()),
        ..ColumnChoice::default()
    };
    let plan = check::plan::plan(&s, &t, &keys_only, config).map_err(|e| e.to_string())?;
    let a = count_side(src, &source_url, &plan.source).map_err(|e| format!("source: {e}"))?;
    let b = count_side(rep, &replica_url, &plan.target).map_err(|e| format!("replica: {e}"))?;
    Ok((a, b))
}

/// Each side's engine counts its own rows (`SELECT count(*)`, the SQL
/// filter applied): SQLite on a read-only connection of its own, a server in
/// its session's snapshot. A table with typed ranges (which SQL cannot
/// apply), or a connector that cannot count, is counted by a key-only scan,
/// in one snapshot.
fn count_side(side: &mut Endpoint<'_>, url: &str, spec: &ScanSpec) -> Result<u64, String> {
    if let (Ok(DbUrl::Sqlite(path)), true) = (DbUrl::parse(url), spec.ranges.is_empty()) {
        let conn = rusqlite::Connection::open_with_flags(
            &path,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(|e| e.to_string())?;
        let filter = spec
            .filter
            .as_deref()
            .map_or(String::new(), |f| format!(" WHERE ({f})"));
        let sql = format!("SELECT count(*) FROM {}{filter}", quote_ident(&spec.table));
        let n: i64 = conn
            .query_row(&sql, [], |r| r.get(0))
            .map_err(|e| e.to_string())?;
        return u64::try_from(n).map_err(|_| format!("SQLite counted {n} rows"));
    }
    match side {
        Endpoint::Db(source) => {
            if let Some(n) = source.count(spec).map_err(|e| e.to_string())? {
                return Ok(n);
            }
            let mut n = 0u64;
            source
                .scan(spec, None, &mut |_| {
                    n += 1;
                    std::ops::ControlFlow::Continue(())
                })
                .map_err(|e| e.to_string())?;
            Ok(n)
        }
        _ => Err("the count level needs a database, not a tree file or an agent".into()),
    }
}
