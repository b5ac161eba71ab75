//! `driftsum build`: write one table's tree to a file.

use anyhow::Context;
use clap::Args;

use driftsum::build::{expected_meta, scan_tree, Threads, TreeScan};
use driftsum::check::plan;
use driftsum::core::tree::file::{self, EntryLog};
use driftsum::core::Side;
use driftsum::report::text::escape_text;
use driftsum::source::{self, DbUrl};
use driftsum::treefile;

use super::outpath::{self, Input};
use super::progress::{Mode, ScanProgress};
use super::rows::RowArgs;

/// Write a table's tree to a file, to compare later (or elsewhere) with
/// `driftsum diff --source tree:FILE` without reading the database again.
///
/// The file records how it was built (columns, key, float options, tree
/// shape, row filter); a diff refuses a file built differently from what it
/// compares.
#[derive(Args)]
pub struct BuildArgs {
    /// The database URL (the same forms as `diff --source`).
    #[arg(long, value_name = "URL")]
    pub db: String,
    /// The table whose tree to write.
    #[arg(long, value_name = "NAME")]
    pub table: String,
    /// Where to write the tree (conventionally NAME.dstree, which `diff`
    /// recognises without the tree: prefix). Written to a temporary file
    /// beside it, then renamed over it. Refused when it is the database (or
    /// a file SQLite keeps beside it) or the config file, a symbolic link, or
    /// an existing file that is not a tree file.
    #[arg(long, value_name = "FILE")]
    pub out: std::path::PathBuf,
    /// Also store every row's key and row-hash prefix, so that a diff of two
    /// files names the differing keys, not only the drifted ranges (about 28
    /// bytes plus the key per row, on disk and in memory while building).
    #[arg(long)]
    pub with_entries: bool,
    /// Scan key ranges at once over N connections that share one snapshot
    /// (SQLite: a rowid key in a file not in WAL mode; PostgreSQL: a single
    /// integer key; otherwise one connection). Default: one per core (3 or
    /// 4) for SQLite on more than two cores; otherwise one, read on one
    /// thread and hashed on another (on two cores that measured faster than
    /// two SQLite connections; a server's every connection is a server
    /// process, and with the server on the same cores two measured slower).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..=64))]
    pub connections: Option<u16>,
    #[command(flatten)]
    pub rows: RowArgs,
}

/// Refuses an --out that is an input of the run (the database, a file
/// SQLite keeps beside it, the config file), a link, or a file other than
/// a tree file, before anything is read.
fn check_out(args: &BuildArgs) -> anyhow::Result<()> {
    let mut inputs = Vec::new();
    if let Ok(DbUrl::Sqlite(path)) = DbUrl::parse(&args.db) {
        inputs.extend(Input::sqlite(&path));
    }
    if let Some(config) = &args.rows.config {
        inputs.push(Input::new("the config file", config));
    }
    outpath::check_output("--out", &args.out, &inputs)?;
    outpath::check_replaceable("--out", &args.out, file::MAGIC, "a driftsum tree file")
}

pub fn run(args: BuildArgs, v: super::Verbosity) -> anyhow::Result<u8> {
    check_out(&args)?;
    let config = args.rows.config()?;
    let mut db = source::open(&args.db).context("opening the database")?;
    let schema = db.schema(&args.table)?;
    let choice = args.rows.choice();
    // The table planned against itself: the columns and key a diff would
    // read on this side.
    let plan = plan::plan(&schema, &schema, &choice, &config)?;
    let canon = args.rows.canon();
    let shape = args.rows.shape();
    let mut log = args.with_entries.then(EntryLog::new);
    let mode = Mode::choose(v.quiet, v.verbose > 0);
    let estimate = match mode {
        Mode::Off => None,
        _ => db.estimate_rows(&args.table),
    };
    let progress = ScanProgress::new(
        mode,
        estimate
            .map(|e| (args.table.clone(), e))
            .into_iter()
            .collect(),
    );
    progress.table_started(&args.table);
    let job = TreeScan {
        spec: &plan.source,
        opts: &canon,
        shape,
        side: Side::Source,
        threads: match args.connections {
            None => Threads::Auto,
            Some(1) => Threads::ReadAndHash,
            Some(n) => Threads::KeyRanges(n.into()),
        },
    };
    let built = scan_tree(
        db.as_mut(),
        &job,
        &|side, rows| progress.update(side, rows),
        log.as_mut(),
    );
    progress.finish();
    let built = built?;
    let mut meta = expected_meta(&plan.source, &canon, shape);
    meta.built_from = db.describe();
    treefile::write(&args.out, &meta, &built.tree, log.as_ref())?;
    let size = std::fs::metadata(&args.out).map(|m| m.len()).unwrap_or(0);
    println!(
        "{}: table {:?}, {} rows, {} tree levels, {} nodes{}, {} bytes",
        escape_text(&args.out.display().to_string()),
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
