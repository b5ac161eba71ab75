//! `driftsum bench`: synthetic source/replica pairs of several sizes with
//! known drift, the cost of comparing each (through the same library calls
//! as `driftsum diff`), and the results as a table, CSV, JSON and an SVG plot.
//!
//! [`data`] defines the rows and the drift, [`generate`] and [`server`] write
//! them, [`run`] measures one pair, [`output`] and [`plot`] render results,
//! [`memory`] reads peak memory. A comparison that does not find exactly the
//! injected differences is an error, never a number.

pub mod data;
pub mod generate;
pub mod memory;
pub mod output;
pub mod plot;
pub mod run;
pub mod server;

use std::path::{Path, PathBuf};

pub use generate::{Pair, Place};
pub use run::Measurement;

use crate::error::SourceError;

/// Anything that stops a benchmark.
#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    #[error("{0}")]
    Invalid(String),
    #[error("writing {path}: {message}")]
    Write { path: PathBuf, message: String },
    #[error("{location}: {message}")]
    Server { location: String, message: String },
    #[error("opening a generated table: {0}")]
    Open(SourceError),
    #[error("{rows} rows, {diffs} differences: the comparison failed: {message}")]
    Diff {
        rows: u64,
        diffs: u64,
        message: String,
    },
    #[error("{rows} rows, {diffs} differences: the comparison did not find exactly the injected differences: {detail}")]
    Mismatch {
        rows: u64,
        diffs: u64,
        detail: String,
    },
}

/// A database engine that can hold one side of a benchmark pair.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Engine {
    Sqlite,
    Postgres,
    Mysql,
}

impl Engine {
    pub fn name(self) -> &'static str {
        match self {
            Engine::Sqlite => "sqlite",
            Engine::Postgres => "postgres",
            Engine::Mysql => "mysql",
        }
    }

    /// The name people write.
    pub fn title(self) -> &'static str {
        match self {
            Engine::Sqlite => "SQLite",
            Engine::Postgres => "PostgreSQL",
            Engine::Mysql => "MySQL",
        }
    }
}

/// What to benchmark.
#[derive(Clone, Debug)]
pub struct BenchOptions {
    /// Rows per table, one pair set per size.
    pub sizes: Vec<u64>,
    /// Differences injected into the replica, one pair per count and size.
    pub diffs: Vec<data::DriftCount>,
    /// Where the source lives; a server needs `source_url`.
    pub source_engine: Engine,
    pub source_url: Option<String>,
    /// Where the replica lives (SQLite unless comparing server to server).
    pub replica_engine: Engine,
    pub replica_url: Option<String>,
    /// Where SQLite files and expected-difference lists are kept (and reused).
    pub data_dir: PathBuf,
    /// Comparisons per pair; the median is reported.
    pub runs: usize,
    /// Only write the pairs, measure nothing.
    pub generate_only: bool,
    /// Leave the server tables in place afterwards.
    pub keep: bool,
}

/// What the benchmark is doing, for progress output.
#[derive(Debug)]
pub enum Event<'a> {
    /// Writing a table (`what` says which; it takes a while for large sizes).
    Writing(String),
    /// A pair is ready (and, with `generate_only`, all there is to do with it).
    Ready(&'a Pair),
    /// A pair was measured.
    Measured(&'a Measurement),
}

/// Parses a row or difference count: digits with an optional `k`, `M` or
/// `G` suffix (`10k`, `1M`, `2.5M`), underscores allowed (`1_000`).
pub fn parse_count(s: &str) -> Result<u64, String> {
    let t = s.trim().replace('_', "");
    let (num, mult) = match t.char_indices().last() {
        Some((i, 'k' | 'K')) => (&t[..i], 1e3),
        Some((i, 'm' | 'M')) => (&t[..i], 1e6),
        Some((i, 'g' | 'G')) => (&t[..i], 1e9),
        _ => (&t[..], 1.0),
    };
    let bad = || format!("{s:?} is not a count (examples: 0, 500, 10k, 1M, 2.5M)");
    if num.is_empty() || !num.chars().all(|c| c.is_ascii_digit() || c == '.') {
        return Err(bad());
    }
    let v: f64 = num.parse().map_err(|_| bad())?;
    let n = v * mult;
    if n.fract() != 0.0 || n > 1e12 {
        return Err(bad());
    }
    Ok(n as u64)
}

fn check_options(opts: &BenchOptions) -> Result<(), BenchError> {
    if opts.sizes.is_empty() || opts.diffs.is_empty() {
        return Err(BenchError::Invalid(
            "give at least one size and one difference count".into(),
        ));
    }
    for &rows in &opts.sizes {
        if rows == 0 {
            return Err(BenchError::Invalid(
                "a table size must be at least 1 row".into(),
            ));
        }
        for d in &opts.diffs {
            let d = d.of(rows);
            if d > rows {
                return Err(BenchError::Invalid(format!(
                    "{d} differences do not fit in {rows} rows (at most one per row; \
                     100% puts one at every row)"
                )));
            }
        }
    }
    for (engine, url, flag) in [
        (opts.source_engine, &opts.source_url, "source"),
        (opts.replica_engine, &opts.replica_url, "replica"),
    ] {
        if engine != Engine::Sqlite && url.is_none() {
            return Err(BenchError::Invalid(format!(
                "a {} {flag} needs a server URL",
                engine.name()
            )));
        }
    }
    Ok(())
}

fn writer(url: &Option<String>) -> Result<Option<server::ServerWriter>, BenchError> {
    url.as_deref()
        .map(server::ServerWriter::connect)
        .transpose()
}

/// Writes the pairs of one size: a source and one replica per difference count.
fn pairs_of_size(
    opts: &BenchOptions,
    rows: u64,
    src_server: &mut Option<server::ServerWriter>,
    rep_server: &mut Option<server::ServerWriter>,
    on_event: &mut dyn FnMut(Event<'_>),
) -> Result<Vec<Pair>, BenchError> {
    let dir = &opts.data_dir;
    let n = output::thousands(rows);
    // The SQLite source file is needed for a SQLite source, and as the base
    // of SQLite replicas.
    let need_file = opts.source_engine == Engine::Sqlite || opts.replica_engine == Engine::Sqlite;
    let src_file = match need_file {
        true => {
            if !generate::sqlite_source_cached(dir, rows) {
                on_event(Event::Writing(format!("{n}-row SQLite source")));
            }
            Some(generate::sqlite_source(dir, rows)?.0)
        }
        false => None,
    };
    let source = match (src_server.as_mut(), &src_file) {
        (Some(w), _) => {
            let table = w.table_name(&format!("src_{rows}"));
            on_event(Event::Writing(format!(
                "{n}-row source table {table} on {}",
                w.location()
            )));
            w.write(&table, (0..rows).map(data::row))?;
            server_place(opts.source_url.as_deref(), w, table)
        }
        (None, Some(f)) => generate::sqlite_place(f),
        (None, None) => unreachable!("a SQLite source has its file"),
    };
    let mut pairs = Vec::new();
    for count in &opts.diffs {
        let diffs = count.of(rows);
        let drift = data::drift(rows, diffs);
        let target = match (rep_server.as_mut(), &src_file) {
            (Some(w), _) => {
                let table = w.table_name(&format!("rep_{rows}_{diffs}"));
                on_event(Event::Writing(format!(
                    "{n}-row replica table {table} on {}",
                    w.location()
                )));
                w.write(&table, data::replica_rows(rows, &drift))?;
                server_place(opts.replica_url.as_deref(), w, table)
            }
            (None, Some(f)) => {
                if !generate::sqlite_replica_cached(dir, rows, diffs) {
                    on_event(Event::Writing(format!(
                        "{n}-row SQLite replica with {diffs} differences"
                    )));
                }
                generate::sqlite_place(&generate::sqlite_replica(dir, f, rows, diffs, &drift)?.0)
            }
            (None, None) => unreachable!("a SQLite replica has the source file"),
        };
        pairs.push(Pair {
            rows,
            diffs,
            drift_label: count.label(),
            source: source.clone(),
            target,
            expected_file: generate::expected_file(dir, rows, diffs, &drift)?,
            drift,
        });
    }
    Ok(pairs)
}

fn server_place(url: Option<&str>, w: &server::ServerWriter, table: String) -> Place {
    Place {
        url: url.unwrap_or_default().to_string(),
        location: w.location().to_string(),
        table,
    }
}

/// Generates every pair and (unless `generate_only`) measures it, size by
/// size (see [`run::measure_all`] for the order of runs). Server tables are
/// dropped after each size unless `keep` is set.
pub fn run(
    opts: &BenchOptions,
    on_event: &mut dyn FnMut(Event<'_>),
) -> Result<Vec<Measurement>, BenchError> {
    check_options(opts)?;
    std::fs::create_dir_all(&opts.data_dir).map_err(|e| BenchError::Write {
        path: opts.data_dir.clone(),
        message: e.to_string(),
    })?;
    let mut src_server = match opts.source_engine {
        Engine::Sqlite => None,
        _ => writer(&opts.source_url)?,
    };
    let mut rep_server = match opts.replica_engine {
        Engine::Sqlite => None,
        _ => writer(&opts.replica_url)?,
    };
    let mut out = Vec::new();
    let mut sizes = opts.sizes.clone();
    sizes.sort_unstable();
    sizes.dedup();
    for rows in sizes {
        let result = (|| {
            let pairs = pairs_of_size(opts, rows, &mut src_server, &mut rep_server, on_event)?;
            for p in &pairs {
                on_event(Event::Ready(p));
            }
            if !opts.generate_only {
                for m in run::measure_all(&pairs, opts.runs)? {
                    on_event(Event::Measured(&m));
                    out.push(m);
                }
            }
            Ok(())
        })();
        if !opts.keep {
            for w in [&mut src_server, &mut rep_server].into_iter().flatten() {
                w.drop_all()?;
            }
        }
        result?;
    }
    Ok(out)
}

/// The default data directory under an output directory.
pub fn data_dir(out: &Path) -> PathBuf {
    out.join("data")
}
