//! `driftsum diff`: compare tables of two databases.

use anyhow::{bail, Context};
use clap::{Args, ValueEnum};

use driftsum::check::endpoint::Opened;
use driftsum::check::{self, ColumnChoice, DiffOptions, TablePair};
use driftsum::config::Config;
use driftsum::core::{CanonOptions, Shape};
use driftsum::report::{text, Report};

use super::progress::ScanProgress;

#[derive(Clone, Copy, Debug, ValueEnum, PartialEq, Eq)]
pub enum Format {
    Text,
    Json,
}

/// Compare tables of a source and a replica; report drifted key ranges and
/// every row that differs (missing, extra, changed).
///
/// Exit codes: 0 in sync, 1 drift found, 2 error (a table that could not be
/// compared is reported, and the others are still compared).
#[derive(Args, Debug)]
pub struct DiffArgs {
    /// The source: a database URL (sqlite:PATH, postgres://USER@HOST:PORT/DB
    /// or mysql://USER@HOST:PORT/DB; passwords may be given, and are never
    /// shown), a tree file (tree:PATH or PATH.dstree, from `driftsum build`)
    /// or an agent (driftsum://HOST:PORT, from `driftsum serve`).
    #[arg(long, value_name = "URL")]
    pub source: String,
    /// The replica, in the same forms as --source.
    #[arg(long, value_name = "URL")]
    pub target: String,
    /// A file holding the token of the agent(s) named by --source or
    /// --target (the same token for both).
    #[arg(long, value_name = "FILE")]
    pub token_file: Option<std::path::PathBuf>,
    /// A table to compare, or SOURCE_NAME=REPLICA_NAME when the replica names
    /// it differently; repeat for more. Default: every table both sides have
    /// (tables on one side only are reported).
    #[arg(long = "table", value_name = "NAME")]
    pub tables: Vec<String>,
    /// Key columns to use instead of the primary key (for tables without one).
    #[arg(long, value_name = "COL,...", value_delimiter = ',')]
    pub key: Option<Vec<String>>,
    /// Compare only these columns (besides the key).
    #[arg(long, value_name = "COL,...", value_delimiter = ',')]
    pub columns: Option<Vec<String>>,
    /// Leave these columns out of the comparison.
    #[arg(
        long = "exclude-columns",
        value_name = "COL,...",
        value_delimiter = ','
    )]
    pub exclude_columns: Vec<String>,
    /// An SQL condition that selects the rows to compare on both sides,
    /// e.g. "created_at >= '2026-01-01'".
    #[arg(long = "where", value_name = "SQL")]
    pub filter: Option<String>,
    /// Round floats to N significant digits before comparing, for replicas
    /// known to lose float precision. Default: compare at each column's own
    /// precision, so a one-ulp change is drift.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u8).range(1..=17))]
    pub float_digits: Option<u8>,
    /// A TOML file with per-table and per-column settings: replica table and
    /// column names, key columns, excluded columns, and how the replica
    /// stores timestamps (see the README).
    #[arg(long, value_name = "FILE")]
    pub config: Option<std::path::PathBuf>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
    /// In the text report, show what every table's comparison exchanged
    /// between the sides, tree level by tree level (JSON always has it).
    #[arg(long)]
    pub costs: bool,
    /// Expected rows per tree leaf.
    #[arg(long, value_name = "N", default_value_t = driftsum::core::tree::chunker::DEFAULT_LEAF_TARGET,
          value_parser = clap::value_parser!(u32).range(2..=1_000_000), hide_short_help = true)]
    pub leaf_target: u32,
    /// Expected children per inner tree node.
    #[arg(long, value_name = "N", default_value_t = driftsum::core::tree::chunker::DEFAULT_FANOUT,
          value_parser = clap::value_parser!(u32).range(2..=65_536), hide_short_help = true)]
    pub fanout: u32,
}

pub fn run(args: DiffArgs) -> anyhow::Result<u8> {
    for (flag, list) in [("--key", &args.key), ("--columns", &args.columns)] {
        if list
            .as_ref()
            .is_some_and(|l| l.is_empty() || l.iter().any(|c| c.trim().is_empty()))
        {
            bail!("{flag} needs column names, separated by commas");
        }
    }
    let config = match &args.config {
        Some(path) => Config::load(path)?,
        None => Config::default(),
    };
    let token = match &args.token_file {
        Some(path) => Some(super::serve::read_token(path)?),
        None => None,
    };
    let mut src = Opened::open(&args.source, token.as_deref()).context("opening the source")?;
    let mut tgt = Opened::open(&args.target, token.as_deref()).context("opening the target")?;
    let opts = DiffOptions {
        tables: args
            .tables
            .iter()
            .map(|t| match t.contains('=') {
                true => TablePair::parse(t),
                false => TablePair {
                    source: t.clone(),
                    target: config.replica_table(t),
                },
            })
            .collect(),
        columns: ColumnChoice {
            key: args.key,
            columns: args.columns,
            exclude: args.exclude_columns,
            filter: args.filter,
        },
        canon: CanonOptions {
            float_digits: args.float_digits,
        },
        shape: Shape {
            leaf_target: args.leaf_target,
            fanout: args.fanout,
        },
        config,
    };
    let progress = ScanProgress::new();
    let run = check::diff_endpoints(
        &mut src.endpoint(),
        &mut tgt.endpoint(),
        &opts,
        &|side, rows| progress.update(side, rows),
    );
    progress.finish();
    let run = run?;
    let report = Report::from_outcome(&run);
    match args.format {
        Format::Json => println!("{}", report.to_json()),
        Format::Text if args.costs => print!("{}", text::render_with_costs(&report)),
        Format::Text => print!("{}", text::render(&report)),
    }
    Ok(run.exit_code())
}
