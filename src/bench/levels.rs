//! `driftsum bench --levels`: what each level of `driftsum check` costs on a
//! table with 8 value columns against an identical copy — wall time, peak
//! memory (the resident set's high-water mark of the `check` process, as
//! `/usr/bin/time -v` reports it) and bytes exchanged between the sides —
//! beside the engines' own `SELECT count(*)` of both tables, the floor the
//! `count` level is held to.
//!
//! Each level runs as `driftsum check --level L` in a process of its own,
//! so its memory is its own; a level that does not report the identical
//! tables in sync is an error, never a number. The source is a SQLite file,
//! or a PostgreSQL table (`driftsum_bench_levels_N`, created and dropped
//! here) with the SQLite file as its replica.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::str::FromStr;
use std::time::Instant;

use serde::Serialize;
use sqlx::postgres::{PgConnectOptions, PgConnection};
use sqlx::{AssertSqlSafe, ConnectOptions};

use super::{generate, BenchError};
use crate::source::server;
use crate::source::url::redact;

/// The table's name in the SQLite files.
const TABLE: &str = "levels";

/// The 8 value columns, as SQLite and PostgreSQL compute them from the key
/// `id` alike (integers, text and doubles that are exact in binary).
const VALUES: [(&str, &str, &str, &str); 8] = [
    ("a", "INTEGER", "bigint", "(id * 7919) % 1000003"),
    ("b", "TEXT", "text", "'customer-' || id"),
    ("c", "REAL", "double precision", "id / 4.0"),
    ("d", "INTEGER", "bigint", "id % 1000"),
    ("e", "TEXT", "text", "'ref-' || (id * 13)"),
    ("f", "REAL", "double precision", "(id % 997) * 1.5"),
    ("g", "TEXT", "text", "'note ' || (id % 100)"),
    ("h", "INTEGER", "bigint", "(id * id) % 65536"),
];

/// What to measure.
#[derive(Clone, Debug)]
pub struct LevelsOptions {
    /// Rows per table, one measurement set per size.
    pub sizes: Vec<u64>,
    /// A PostgreSQL source (else the source is a SQLite file too).
    pub postgres_url: Option<String>,
    /// Where the SQLite files, configs and history are kept (files reused).
    pub dir: PathBuf,
    /// The `driftsum` binary that runs each level.
    pub exe: PathBuf,
    /// Runs per level; the median time is reported.
    pub runs: usize,
}

/// One level (or the reference count) at one size.
#[derive(Clone, Debug, Serialize)]
pub struct LevelCost {
    /// `count`, `keys`, `full`, or `count(*)` for the engines' own counts.
    pub level: String,
    pub rows: u64,
    /// Wall time of the whole command (start-up, history included).
    pub seconds: f64,
    /// The level's own time as `check` reports it.
    pub level_seconds: f64,
    /// Peak resident set of the process, bytes.
    pub peak_bytes: u64,
    /// Bytes the sides exchanged, in the agent wire encoding.
    pub bytes: u64,
    pub rows_read: u64,
}

/// The costs at one size.
#[derive(Clone, Debug, Serialize)]
pub struct LevelsResult {
    pub source: String,
    pub rows: u64,
    pub costs: Vec<LevelCost>,
}

fn err(what: impl std::fmt::Display) -> BenchError {
    BenchError::Invalid(what.to_string())
}

/// Measures every size.
pub fn run(
    opts: &LevelsOptions,
    on_event: &mut dyn FnMut(&str),
) -> Result<Vec<LevelsResult>, BenchError> {
    std::fs::create_dir_all(&opts.dir).map_err(|e| BenchError::Write {
        path: opts.dir.clone(),
        message: e.to_string(),
    })?;
    let mut out = Vec::new();
    for &rows in &opts.sizes {
        let file = opts.dir.join(format!("levels-{rows}.db"));
        if !cached(&file, rows) {
            on_event(&format!("writing the {rows}-row SQLite table"));
            write_sqlite(&file, rows)?;
        }
        let copy = opts.dir.join(format!("levels-{rows}-copy.db"));
        if !cached(&copy, rows) {
            std::fs::copy(&file, &copy).map_err(|e| BenchError::Write {
                path: copy.clone(),
                message: e.to_string(),
            })?;
        }
        let result = match &opts.postgres_url {
            None => measure(
                opts,
                rows,
                &format!("sqlite:{}", file.display()),
                &copy,
                TABLE,
            ),
            Some(url) => {
                let table = format!("driftsum_bench_levels_{rows}");
                on_event(&format!("writing the {rows}-row PostgreSQL table {table}"));
                let mut pg = Pg::connect(url)?;
                pg.write(&table, rows)?;
                let r = measure(opts, rows, url, &file, &table);
                pg.exec(&format!("DROP TABLE IF EXISTS {table}"))?;
                r
            }
        }?;
        on_event(&format!("measured {rows} rows"));
        out.push(result);
    }
    Ok(out)
}

/// Measures the reference count and each level of one pair.
fn measure(
    opts: &LevelsOptions,
    rows: u64,
    source_url: &str,
    replica: &Path,
    table: &str,
) -> Result<LevelsResult, BenchError> {
    let config = opts.dir.join(format!("levels-{rows}.toml"));
    let mut text = format!(
        "[source]\nurl = {source_url:?}\n[replica]\nurl = \"sqlite:{}\"\n\
         [history]\nurl = \"sqlite:{}\"\n\
         [tiers.all]\ncount = \"1d\"\nkeys = \"1d\"\nfull = \"1d\"\n\
         [defaults]\ntier = \"all\"\n",
        replica.display(),
        opts.dir.join("levels-history.sqlite").display()
    );
    if table != TABLE {
        text.push_str(&format!("[tables.{table}]\nreplica = \"{TABLE}\"\n"));
    }
    generate::write_file(&config, text.as_bytes())?;
    let mut costs = Vec::new();
    let runs = opts.runs.max(1);
    // The floor: each engine's own count of its table, on fresh connections.
    let mut reference = Vec::new();
    for _ in 0..runs {
        let clock = Instant::now();
        let n = match source_url.strip_prefix("sqlite:") {
            Some(path) => sqlite_count(Path::new(path))?,
            None => Pg::connect(source_url)?.count(table)?,
        };
        let m = sqlite_count(replica)?;
        if n != rows || m != rows {
            return Err(err(format!("the tables hold {n} and {m} rows, not {rows}")));
        }
        reference.push(clock.elapsed().as_secs_f64());
    }
    costs.push(LevelCost {
        level: "count(*)".into(),
        rows,
        seconds: median(&mut reference),
        level_seconds: 0.0,
        peak_bytes: 0,
        bytes: 0,
        rows_read: 0,
    });
    for level in ["count", "keys", "full"] {
        let mut tries = Vec::new();
        for _ in 0..runs {
            tries.push(run_level(opts, &config, table, level, rows)?);
        }
        tries.sort_by(|a, b| a.seconds.total_cmp(&b.seconds));
        let peak = tries.iter().map(|c| c.peak_bytes).max().unwrap_or(0);
        let mut c = tries.swap_remove(tries.len() / 2);
        c.peak_bytes = peak;
        costs.push(c);
    }
    Ok(LevelsResult {
        source: redact(source_url),
        rows,
        costs,
    })
}

/// Runs `driftsum check --level LEVEL` on the pair, in its own process.
fn run_level(
    opts: &LevelsOptions,
    config: &Path,
    table: &str,
    level: &str,
    rows: u64,
) -> Result<LevelCost, BenchError> {
    let clock = Instant::now();
    let mut child = Command::new(&opts.exe)
        .args([
            "check", "--format", "json", "--level", level, "--table", table,
        ])
        .arg("--config")
        .arg(config)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| err(format!("running {}: {e}", opts.exe.display())))?;
    let mut out = String::new();
    if let Some(mut so) = child.stdout.take() {
        so.read_to_string(&mut out)
            .map_err(|e| err(format!("reading check's output: {e}")))?;
    }
    let (code, peak_bytes) = wait_with_peak(child.id())?;
    let seconds = clock.elapsed().as_secs_f64();
    let doc: serde_json::Value = serde_json::from_str(&out)
        .map_err(|e| err(format!("{level}: not a JSON report ({e}), exit {code}")))?;
    let entry = doc["tables"][0]["levels"][0].clone();
    if code != 0 || entry["status"] != "in_sync" || entry["level"] != level {
        return Err(err(format!(
            "{level} did not find the identical tables in sync (exit {code}): {doc}"
        )));
    }
    Ok(LevelCost {
        level: level.into(),
        rows,
        seconds,
        level_seconds: entry["seconds"].as_f64().unwrap_or(0.0),
        peak_bytes,
        bytes: entry["bytes"].as_u64().unwrap_or(0),
        rows_read: entry["rows_read"].as_u64().unwrap_or(0),
    })
}

/// Waits for child `pid`: its exit code and peak resident set in bytes.
fn wait_with_peak(pid: u32) -> Result<(i32, u64), BenchError> {
    let mut status = 0;
    // SAFETY: a zeroed rusage is a valid value for wait4 to fill.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: both pointers are to live, writable locals.
    let rc = unsafe { libc::wait4(pid as libc::pid_t, &mut status, 0, &mut usage) };
    if rc < 0 {
        return Err(err(format!(
            "waiting for check: {}",
            std::io::Error::last_os_error()
        )));
    }
    let code = match libc::WIFEXITED(status) {
        true => libc::WEXITSTATUS(status),
        false => -1,
    };
    // Linux reports ru_maxrss in KiB.
    Ok((code, usage.ru_maxrss.max(0) as u64 * 1024))
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    v.get(v.len() / 2).copied().unwrap_or(0.0)
}

/// Whether `path` holds the table with `rows` rows.
fn cached(path: &Path, rows: u64) -> bool {
    path.exists() && sqlite_count(path).is_ok_and(|n| n == rows)
}

fn sqlite_count(path: &Path) -> Result<u64, BenchError> {
    let conn = rusqlite::Connection::open_with_flags(
        path,
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(|e| err(format!("{}: {e}", path.display())))?;
    let n: i64 = conn
        .query_row(&format!("SELECT count(*) FROM {TABLE}"), [], |r| r.get(0))
        .map_err(|e| err(format!("{}: {e}", path.display())))?;
    Ok(n as u64)
}

/// The column list of `CREATE TABLE`, typed for SQLite or PostgreSQL.
fn columns(postgres: bool) -> String {
    let key = match postgres {
        true => "id bigint PRIMARY KEY",
        false => "id INTEGER PRIMARY KEY",
    };
    let mut cols = vec![key.to_string()];
    for (name, lite, pg, _) in VALUES {
        cols.push(format!("{name} {}", if postgres { pg } else { lite }));
    }
    cols.join(", ")
}

/// The value expressions over `id`, in column order.
fn expressions(postgres: bool) -> String {
    VALUES
        .iter()
        .map(|(_, _, _, e)| match postgres {
            // PostgreSQL divides integers as integers.
            true => e
                .replace("id / 4.0", "id::float8 / 4")
                .replace("1.5", "1.5::float8"),
            false => e.to_string(),
        })
        .collect::<Vec<_>>()
        .join(", ")
}

fn write_sqlite(path: &Path, rows: u64) -> Result<(), BenchError> {
    let werr = |e: rusqlite::Error| BenchError::Write {
        path: path.to_path_buf(),
        message: e.to_string(),
    };
    let _ = std::fs::remove_file(path);
    let conn = rusqlite::Connection::open(path).map_err(werr)?;
    conn.execute_batch(&format!(
        "PRAGMA journal_mode = OFF; PRAGMA synchronous = OFF;
         CREATE TABLE {TABLE} ({});
         WITH RECURSIVE s(id) AS (SELECT 1 UNION ALL SELECT id + 1 FROM s WHERE id < {rows})
         INSERT INTO {TABLE} SELECT id, {} FROM s;",
        columns(false),
        expressions(false)
    ))
    .map_err(werr)
}

/// A PostgreSQL connection writing the benchmark's source table.
struct Pg {
    // Declared before `rt`: the connection must go before its runtime.
    conn: PgConnection,
    rt: tokio::runtime::Runtime,
    location: String,
}

impl Pg {
    fn connect(url: &str) -> Result<Pg, BenchError> {
        let location = redact(url);
        let fail = |e: String| BenchError::Server {
            location: location.clone(),
            message: e,
        };
        let rt = server::runtime().map_err(|e| fail(e.to_string()))?;
        let opts = PgConnectOptions::from_str(url).map_err(|e| fail(e.to_string()))?;
        let conn = rt
            .block_on(opts.connect())
            .map_err(|e| fail(e.to_string()))?;
        Ok(Pg { conn, rt, location })
    }

    fn exec(&mut self, sql: &str) -> Result<(), BenchError> {
        let q = sqlx::raw_sql(AssertSqlSafe(sql.to_string()));
        self.rt
            .block_on(q.execute(&mut self.conn))
            .map(|_| ())
            .map_err(|e| BenchError::Server {
                location: self.location.clone(),
                message: e.to_string(),
            })
    }

    fn count(&mut self, table: &str) -> Result<u64, BenchError> {
        let q =
            sqlx::query_scalar::<_, i64>(AssertSqlSafe(format!("SELECT count(*) FROM {table}")));
        let n = self
            .rt
            .block_on(q.fetch_one(&mut self.conn))
            .map_err(|e| BenchError::Server {
                location: self.location.clone(),
                message: e.to_string(),
            })?;
        Ok(n as u64)
    }

    /// (Re)creates `table` with `rows` rows, and its statistics.
    fn write(&mut self, table: &str, rows: u64) -> Result<(), BenchError> {
        self.exec(&format!("DROP TABLE IF EXISTS {table}"))?;
        self.exec(&format!(
            "CREATE TABLE {table} ({});
             INSERT INTO {table} SELECT id, {} FROM generate_series(1, {rows}::bigint) AS s(id);",
            columns(true),
            expressions(true)
        ))?;
        // VACUUM refuses to run inside the implicit transaction of a
        // several-statement query: a statement of its own.
        self.exec(&format!("VACUUM ANALYZE {table}"))
    }
}

/// The results as a Markdown table, each level beside the reference count.
pub fn markdown(results: &[LevelsResult]) -> String {
    let mut out = String::from(
        "| source | rows | level | seconds | level's own s | peak RSS MiB | bytes exchanged | rows read | vs count(*) | full / this |\n\
         |---|---:|---|---:|---:|---:|---:|---:|---:|---:|\n",
    );
    for r in results {
        let count = r.costs.iter().find(|c| c.level == "count(*)");
        let full = r.costs.iter().find(|c| c.level == "full");
        for c in &r.costs {
            let vs = count
                .filter(|_| c.level == "count")
                .map_or(String::new(), |k| format!("{:.2}x", c.seconds / k.seconds));
            let speedup = full
                .filter(|_| c.level == "keys")
                .map_or(String::new(), |f| format!("{:.2}x", f.seconds / c.seconds));
            out.push_str(&format!(
                "| {} | {} | {} | {:.3} | {:.3} | {} | {} | {} | {vs} | {speedup} |\n",
                r.source,
                r.rows,
                c.level,
                c.seconds,
                c.level_seconds,
                match c.peak_bytes {
                    0 => "-".to_string(),
                    b => format!("{:.1}", b as f64 / (1 << 20) as f64),
                },
                c.bytes,
                c.rows_read
            ));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_engines_compute_the_same_columns() {
        assert_eq!(columns(false).matches(',').count(), 8);
        assert!(expressions(true).contains("id::float8 / 4"));
        assert!(!expressions(false).contains("::"));
    }
}
