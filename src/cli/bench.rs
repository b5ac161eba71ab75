//! `driftsum bench`: measure what a comparison costs per table size, and
//! write the results as a table, CSV, JSON and an SVG plot.

use std::path::PathBuf;

use clap::{Args, ValueEnum};

use driftsum::bench::{self, output, plot, BenchOptions, Engine, Event};
use driftsum::report::text::escape_text;

#[derive(Clone, Copy, Debug, ValueEnum, PartialEq, Eq)]
pub enum EngineArg {
    Sqlite,
    Postgres,
    Mysql,
}

impl EngineArg {
    fn engine(self) -> Engine {
        match self {
            EngineArg::Sqlite => Engine::Sqlite,
            EngineArg::Postgres => Engine::Postgres,
            EngineArg::Mysql => Engine::Mysql,
        }
    }

    /// The environment variable the test suite uses for this server.
    fn env(self) -> Option<&'static str> {
        match self {
            EngineArg::Sqlite => None,
            EngineArg::Postgres => Some("DRIFTSUM_TEST_POSTGRES"),
            EngineArg::Mysql => Some("DRIFTSUM_TEST_MYSQL"),
        }
    }
}

/// Measure what a comparison costs per table size: generates source/replica
/// pairs of each size with scattered differences (changed, missing and extra
/// rows), compares them, checks that exactly those differences are found, and
/// reports time per phase, rows/s, bytes exchanged, round trips and peak
/// memory. Writes bench.csv, bench.json, bench.md and bench.svg (cost against
/// size, log-log) to --out; generated SQLite files are kept in --out/data and
/// reused.
#[derive(Args)]
pub struct BenchArgs {
    /// Rows per table: counts with an optional k, M or G suffix.
    #[arg(long, value_name = "N,...", value_delimiter = ',',
          value_parser = bench::parse_count, default_value = "10k,100k,1M")]
    pub sizes: Vec<u64>,
    /// Differences to inject into each replica (one pair per count and
    /// size): a count (`10`, `1k`) or a share of each size's rows (`10%`;
    /// `100%` puts a difference at every source row: a wiped or rewritten
    /// replica).
    #[arg(long, value_name = "N|P%,...", value_delimiter = ',',
          value_parser = bench::data::DriftCount::parse, default_value = "0,10,1000")]
    pub diffs: Vec<bench::data::DriftCount>,
    /// Pathology cases to measure, each beside the plain pair of the same
    /// rows: timestamp-key (keyed by a timestamp: SQLite text, PostgreSQL
    /// timestamptz, MySQL datetime(6)), unordered (the replica's integer ids
    /// stored as text in an untyped key column), renamed (a replica column
    /// renamed and mapped by the config), dense (every row changed in one
    /// column; --diffs does not apply, its plain neighbour is the in-sync
    /// pair).
    #[arg(long = "case", value_name = "CASE,...", value_delimiter = ',',
          value_parser = bench::Case::parse)]
    pub cases: Vec<bench::Case>,
    /// Where the source table lives; the replica is a SQLite file. A server
    /// source is a table this command creates and drops again.
    #[arg(long, value_enum, default_value_t = EngineArg::Sqlite)]
    pub engine: EngineArg,
    /// The server for --engine postgres|mysql (default: $DRIFTSUM_TEST_POSTGRES
    /// or $DRIFTSUM_TEST_MYSQL). Tables are created in a `driftsum_bench`
    /// schema (PostgreSQL) or as `driftsum_bench_*` tables (MySQL).
    #[arg(long, value_name = "URL")]
    pub source_url: Option<String>,
    /// Output directory.
    #[arg(long, value_name = "DIR", default_value = "driftsum-bench")]
    pub out: PathBuf,
    /// Comparisons per pair; the run with the median time is reported.
    #[arg(long, value_name = "N", default_value_t = 1,
          value_parser = clap::value_parser!(u32).range(1..=99))]
    pub runs: u32,
    /// Where the replica lives (for side-by-side runs with other tools).
    #[arg(long, value_enum, default_value_t = EngineArg::Sqlite, hide = true)]
    pub replica_engine: EngineArg,
    /// The replica's server URL, for a server --replica-engine.
    #[arg(long, value_name = "URL", hide = true)]
    pub replica_url: Option<String>,
    /// Only write the pairs and list them (tab-separated), measure nothing.
    #[arg(long, hide = true)]
    pub generate_only: bool,
    /// Leave generated server tables in place.
    #[arg(long, hide = true)]
    pub keep: bool,
    /// Measure the levels of `driftsum check` instead (count, keys, full on
    /// a table with 8 value columns against an identical copy, beside the
    /// engines' own count(*)): time, peak memory, bytes exchanged. Writes
    /// levels.md and levels.json to --out. --engine sqlite or postgres.
    #[arg(long)]
    pub levels: bool,
}

fn server_url(
    arg: Option<String>,
    engine: EngineArg,
    flag: &str,
) -> anyhow::Result<Option<String>> {
    let Some(var) = engine.env() else {
        return Ok(None);
    };
    match arg.or_else(|| std::env::var(var).ok().filter(|v| !v.is_empty())) {
        Some(url) => Ok(Some(url)),
        None => anyhow::bail!(
            "--engine {0:?} needs a server: give {flag} URL or set {var}",
            engine.engine().name()
        ),
    }
}

pub fn run(args: BenchArgs) -> anyhow::Result<u8> {
    if args.levels {
        return levels(args);
    }
    let opts = BenchOptions {
        sizes: args.sizes,
        diffs: args.diffs,
        source_engine: args.engine.engine(),
        source_url: server_url(args.source_url, args.engine, "--source-url")?,
        replica_engine: args.replica_engine.engine(),
        replica_url: server_url(args.replica_url, args.replica_engine, "--replica-url")?,
        cases: args.cases,
        data_dir: bench::data_dir(&args.out),
        runs: args.runs as usize,
        generate_only: args.generate_only,
        keep: args.keep,
    };
    if opts.generate_only {
        println!("# rows\tdiffs\tsource\tsource_table\treplica\treplica_table\texpected");
    }
    let results = bench::run(&opts, &mut |e| match e {
        Event::Writing(what) => eprintln!("driftsum bench: writing the {what}"),
        Event::Ready(p) if opts.generate_only => println!(
            "{}\t{}\t{}\t{}\t{}\t{}\t{}",
            p.rows,
            p.diffs,
            escape_text(&p.source.location),
            escape_text(&p.source.table),
            escape_text(&p.target.location),
            escape_text(&p.target.table),
            escape_text(&p.expected_file.display().to_string())
        ),
        Event::Ready(_) => {}
        Event::Measured(m) => eprintln!(
            "driftsum bench: {}{} rows, {} differences: {:.3} s",
            match m.case.as_str() {
                "plain" => String::new(),
                c => format!("{c}, "),
            },
            output::thousands(m.rows),
            output::thousands(m.diffs),
            m.seconds
        ),
    })?;
    if opts.generate_only {
        return Ok(0);
    }

    print!("{}", output::table(&results));
    let out = &args.out;
    let info = output::RunInfo {
        driftsum_version: env!("CARGO_PKG_VERSION"),
        encoding_version: driftsum::core::ENCODING_VERSION,
        source_engine: opts.source_engine.name().into(),
        replica_engine: opts.replica_engine.name().into(),
        cpus: std::thread::available_parallelism().map_or(1, |n| n.get()),
    };
    let runs = match opts.runs {
        1 => "one run each".to_string(),
        n => format!("median of {n} runs"),
    };
    let subtitle = format!(
        "{} source, {} replica; {} CPUs; {runs}; driftsum {}",
        opts.source_engine.title(),
        opts.replica_engine.title(),
        info.cpus,
        info.driftsum_version
    );
    let files = [
        ("bench.csv", output::csv(&results)),
        ("bench.json", output::json(&info, &results)),
        ("bench.md", output::markdown(&results)),
        ("bench.svg", plot::svg(&results, &subtitle)),
    ];
    for (name, text) in files {
        // Replaced through a temporary file: a link planted at a result's
        // name is replaced, never written through.
        driftsum::bench::generate::write_file(&out.join(name), text.as_bytes())?;
    }
    eprintln!(
        "driftsum bench: wrote bench.csv, bench.json, bench.md and bench.svg to {}",
        escape_text(&out.display().to_string())
    );
    Ok(0)
}

/// `bench --levels`: see [`driftsum::bench::levels`].
fn levels(args: BenchArgs) -> anyhow::Result<u8> {
    use driftsum::bench::levels::{self, LevelsOptions};
    if args.engine == EngineArg::Mysql {
        anyhow::bail!("--levels measures a SQLite or a PostgreSQL source");
    }
    let opts = LevelsOptions {
        sizes: args.sizes,
        postgres_url: server_url(args.source_url, args.engine, "--source-url")?,
        dir: bench::data_dir(&args.out),
        exe: std::env::current_exe()?,
        runs: args.runs as usize,
    };
    let results = levels::run(&opts, &mut |e| eprintln!("driftsum bench: {e}"))?;
    let table = levels::markdown(&results);
    print!("{table}");
    let json = serde_json::to_string_pretty(&results)?;
    driftsum::bench::generate::write_file(&args.out.join("levels.md"), table.as_bytes())?;
    driftsum::bench::generate::write_file(&args.out.join("levels.json"), json.as_bytes())?;
    Ok(0)
}
