//! `driftsum bench`: synthetic source/replica pairs of several sizes with
//! known drift, the cost of comparing each (through the same library calls
//! as `driftsum diff`), and the results as a table, CSV, JSON and an SVG plot.
//!
//! [`data`] defines the rows and the drift, [`generate`] and [`server`] write
//! them, [`run`] measures one pair, [`output`] and [`plot`] render results,
//! [`memory`] reads peak memory. A comparison that does not find exactly the
//! injected differences is an error, never a number.

pub mod case;
pub mod data;
pub mod generate;
pub mod levels;
pub mod memory;
pub mod output;
pub mod plot;
pub mod run;
pub mod server;

use std::path::{Path, PathBuf};

pub use case::Case;
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
    #[error("{case} case, {rows} rows, {diffs} differences: the comparison failed: {message}")]
    Diff {
        case: &'static str,
        rows: u64,
        diffs: u64,
        message: String,
    },
    #[error("{case} case, {rows} rows, {diffs} differences: the comparison did not find exactly the injected differences: {detail}")]
    Mismatch {
        case: &'static str,
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
    /// Pathology cases to measure beside the plain pairs (see [`case`]).
    pub cases: Vec<Case>,
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
    if opts.replica_engine != Engine::Sqlite {
        if let Some(c) = opts.cases.iter().find(|c| !c.server_replica()) {
            return Err(BenchError::Invalid(format!(
                "the {} case needs a SQLite replica (its replica is made from the SQLite files)",
                c.name()
            )));
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

/// The cases to run: plain first (every other case is shown beside it), then
/// the others in the order of [`case::ALL`].
fn cases(opts: &BenchOptions) -> Vec<Case> {
    case::ALL
        .into_iter()
        .filter(|c| *c == Case::Plain || opts.cases.contains(c))
        .collect()
}

/// The difference counts of a case: dense drift is one pair (every row
/// changed); its plain neighbour needs the in-sync pair.
fn counts(opts: &BenchOptions, case: Case) -> Vec<data::DriftCount> {
    match case {
        Case::Dense => vec![data::DriftCount::Percent(100)],
        Case::Plain => {
            let mut v = opts.diffs.clone();
            let zero = |d: &data::DriftCount| d.of(1) == 0 && d.of(1_000_000_000) == 0;
            if opts.cases.contains(&Case::Dense) && !v.iter().any(zero) {
                v.insert(0, data::DriftCount::Rows(0));
            }
            v
        }
        _ => opts.diffs.clone(),
    }
}

/// Writes the pairs of one size: for each case, a source and one replica
/// per difference count.
fn pairs_of_size(
    opts: &BenchOptions,
    rows: u64,
    src_server: &mut Option<server::ServerWriter>,
    rep_server: &mut Option<server::ServerWriter>,
    on_event: &mut dyn FnMut(Event<'_>),
) -> Result<Vec<Pair>, BenchError> {
    let dir = &opts.data_dir;
    let n = output::thousands(rows);
    // A SQLite replica is made from the SQLite source file, also when the
    // source is on a server.
    let need_file = opts.replica_engine == Engine::Sqlite;
    // Server source tables, written once per key shape (integer, timestamp).
    let mut server_sources: Vec<(bool, Place)> = Vec::new();
    let mut pairs = Vec::new();
    for case in cases(opts) {
        let ts_key = case == Case::TimestampKey;
        let label = match case {
            Case::Plain => String::new(),
            c => format!(" ({})", c.name()),
        };
        let source = match src_server.as_mut() {
            Some(w) => match server_sources.iter().find(|(k, _)| *k == ts_key) {
                Some((_, p)) => p.clone(),
                None => {
                    let base = match ts_key {
                        true => format!("src_ts_{rows}"),
                        false => format!("src_{rows}"),
                    };
                    let table = w.table_name(&base);
                    on_event(Event::Writing(format!(
                        "{n}-row source table {table} on {}",
                        w.location()
                    )));
                    w.write(&table, ts_key, (0..rows).map(data::row))?;
                    let p = server_place(opts.source_url.as_deref(), w, table);
                    server_sources.push((ts_key, p.clone()));
                    p
                }
            },
            None => {
                if !generate::case_cached(dir, case, "src", rows, 0) {
                    on_event(Event::Writing(format!("{n}-row SQLite source{label}")));
                }
                generate::sqlite_place(&generate::case_source(dir, case, rows)?)
            }
        };
        if need_file && !generate::sqlite_source_cached(dir, rows) {
            on_event(Event::Writing(format!("{n}-row SQLite source")));
            generate::sqlite_source(dir, rows)?;
        }
        for count in counts(opts, case) {
            let diffs = count.of(rows);
            let drift = generate::case_drift(case, rows, diffs);
            let target = match rep_server.as_mut() {
                Some(w) => {
                    let base = match ts_key {
                        true => format!("rep_ts_{rows}_{diffs}"),
                        false => format!("rep_{rows}_{diffs}"),
                    };
                    let table = w.table_name(&base);
                    on_event(Event::Writing(format!(
                        "{n}-row replica table {table} on {}",
                        w.location()
                    )));
                    w.write(&table, ts_key, data::replica_rows(rows, &drift))?;
                    server_place(opts.replica_url.as_deref(), w, table)
                }
                None => {
                    if !generate::case_cached(dir, case, "rep", rows, diffs) {
                        on_event(Event::Writing(format!(
                            "{n}-row SQLite replica with {diffs} differences{label}"
                        )));
                    }
                    generate::sqlite_place(&generate::case_replica(dir, case, rows, diffs, &drift)?)
                }
            };
            let drift_label = match case {
                Case::Dense => "every row".to_string(),
                _ => count.label(),
            };
            pairs.push(Pair {
                case,
                rows,
                diffs,
                drift_label,
                source: source.clone(),
                target,
                expected_file: generate::expected_file(dir, case, rows, diffs, &drift)?,
                drift,
            });
        }
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

#[cfg(test)]
mod tests {
    use super::*;
    use data::DriftCount;

    /// Every case through the real library on real SQLite files: exactly the
    /// injected differences (a mismatch is an error), and the renamed pair
    /// in sync costs what the plain one does (no rows exchanged).
    #[test]
    fn every_case_finds_exactly_its_drift_beside_the_plain_pair() {
        let dir = tempfile::tempdir().unwrap();
        let opts = BenchOptions {
            sizes: vec![600],
            diffs: vec![DriftCount::Rows(0), DriftCount::Rows(12)],
            source_engine: Engine::Sqlite,
            source_url: None,
            replica_engine: Engine::Sqlite,
            replica_url: None,
            cases: case::ALL.to_vec(),
            data_dir: dir.path().join("data"),
            runs: 1,
            generate_only: false,
            keep: false,
        };
        let ms = run(&opts, &mut |_| {}).unwrap();
        let names: Vec<(&str, u64)> = ms.iter().map(|m| (m.case.as_str(), m.diffs)).collect();
        assert_eq!(
            names,
            [
                ("plain", 0),
                ("plain", 12),
                ("timestamp-key", 0),
                ("timestamp-key", 12),
                ("unordered", 0),
                ("unordered", 12),
                ("renamed", 0),
                ("renamed", 12),
                ("dense", 600),
            ]
        );
        assert!(ms.iter().all(|m| m.found == m.diffs));
        let get = |case: &str, diffs: u64| {
            ms.iter()
                .find(|m| m.case == case && m.diffs == diffs)
                .unwrap()
        };
        let (plain, renamed) = (get("plain", 0), get("renamed", 0));
        assert_eq!(renamed.bytes_exchanged, plain.bytes_exchanged);
        assert_eq!(renamed.source_rows_read, plain.source_rows_read);
        // Dense drift is shown beside the in-sync plain pair.
        assert_eq!(
            output::plain_of(get("dense", 600), &ms).map(|p| p.diffs),
            Some(0)
        );
        let csv = output::csv(&ms);
        assert!(csv.lines().nth(9).unwrap().contains(",dense,"), "{csv}");
    }

    #[test]
    fn a_derived_case_needs_a_sqlite_replica() {
        let opts = BenchOptions {
            sizes: vec![10],
            diffs: vec![DriftCount::Rows(1)],
            source_engine: Engine::Sqlite,
            source_url: None,
            replica_engine: Engine::Postgres,
            replica_url: Some("postgres://nowhere/x".into()),
            cases: vec![Case::Renamed],
            data_dir: PathBuf::from("unused"),
            runs: 1,
            generate_only: true,
            keep: false,
        };
        let e = check_options(&opts).unwrap_err().to_string();
        assert!(e.contains("renamed case needs a SQLite replica"), "{e}");
    }
}
