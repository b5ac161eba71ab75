//! `driftsum build`: write one table's tree to a file.

use anyhow::{bail, Context};
use clap::Args;

use driftsum::check::endpoint::expected_meta;
use driftsum::check::plan::{self, ColumnChoice};
use driftsum::check::tree::build_tree_logged;
use driftsum::config::Config;
use driftsum::core::tree::file::{self, EntryLog};
use driftsum::core::{CanonOptions, Shape, Side};
use driftsum::source;

use super::progress::ScanProgress;

/// Write a table's tree to a file, to compare later (or elsewhere) with
/// `driftsum diff --source tree:FILE` without reading the database again.
///
/// The file records how it was built (columns, key, float options, tree
/// shape, row filter); a diff refuses a file built differently from what it
/// compares.
#[derive(Args, Debug)]
pub struct BuildArgs {
    /// The database URL (the same forms as `diff --source`).
    #[arg(long, value_name = "URL")]
    pub db: String,
    /// The table whose tree to write.
    #[arg(long, value_name = "NAME")]
    pub table: String,
    /// Where to write the tree (conventionally NAME.dstree, which `diff`
    /// recognises without the tree: prefix).
    #[arg(long, value_name = "FILE")]
    pub out: std::path::PathBuf,
    /// Also store every row's key and row-hash prefix, so that a diff of two
    /// files names the differing keys, not only the drifted ranges (about 28
    /// bytes plus the key per row, on disk and in memory while building).
    #[arg(long)]
    pub with_entries: bool,
    /// Key columns to use instead of the primary key.
    #[arg(long, value_name = "COL,...", value_delimiter = ',')]
    pub key: Option<Vec<String>>,
    /// Hash only these columns (besides the key).
    #[arg(long, value_name = "COL,...", value_delimiter = ',')]
    pub columns: Option<Vec<String>>,
    /// Leave these columns out.
    #[arg(
        long = "exclude-columns",
        value_name = "COL,...",
        value_delimiter = ','
    )]
    pub exclude_columns: Vec<String>,
    /// An SQL condition selecting the rows.
    #[arg(long = "where", value_name = "SQL")]
    pub filter: Option<String>,
    /// Round floats to N significant digits before hashing.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u8).range(1..=17))]
    pub float_digits: Option<u8>,
    /// A TOML config file (its key and excluded columns for the table apply).
    #[arg(long, value_name = "FILE")]
    pub config: Option<std::path::PathBuf>,
    /// Expected rows per tree leaf.
    #[arg(long, value_name = "N", default_value_t = driftsum::core::tree::chunker::DEFAULT_LEAF_TARGET,
          value_parser = clap::value_parser!(u32).range(2..=1_000_000), hide_short_help = true)]
    pub leaf_target: u32,
    /// Expected children per inner tree node.
    #[arg(long, value_name = "N", default_value_t = driftsum::core::tree::chunker::DEFAULT_FANOUT,
          value_parser = clap::value_parser!(u32).range(2..=65_536), hide_short_help = true)]
    pub fanout: u32,
}

pub fn run(args: BuildArgs) -> anyhow::Result<u8> {
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
    let mut db = source::open(&args.db).context("opening the database")?;
    let schema = db.schema(&args.table)?;
    let choice = ColumnChoice {
        key: args.key,
        columns: args.columns,
        exclude: args.exclude_columns,
        filter: args.filter,
    };
    // The table planned against itself: the columns and key a diff would
    // read on this side.
    let plan = plan::plan(&schema, &schema, &choice, &config)?;
    let canon = CanonOptions {
        float_digits: args.float_digits,
    };
    let shape = Shape {
        leaf_target: args.leaf_target,
        fanout: args.fanout,
    };
    let mut log = args.with_entries.then(EntryLog::new);
    let progress = ScanProgress::new();
    let built = build_tree_logged(
        db.as_mut(),
        &plan.source,
        &canon,
        shape,
        Side::Source,
        &|side, rows| progress.update(side, rows),
        log.as_mut(),
    );
    progress.finish();
    let built = built?;
    let mut meta = expected_meta(&plan.source, &canon, shape);
    meta.built_from = db.describe();
    file::write(&args.out, &meta, &built.tree, log.as_ref())?;
    let size = std::fs::metadata(&args.out).map(|m| m.len()).unwrap_or(0);
    println!(
        "{}: table {:?}, {} rows, {} tree levels, {} nodes{}, {} bytes",
        args.out.display(),
        args.table,
        built.tree.rows,
        built.tree.levels.len(),
        built.tree.node_count(),
        if args.with_entries {
            ", with entries"
        } else {
            ""
        },
        size
    );
    Ok(0)
}
