//! `driftsum repair`: put a SQLite replica's drifted rows right (a dry run
//! by default).

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{bail, Context};
use clap::Args;

use driftsum::check::DiffOptions;
use driftsum::repair::{self, show, Guard, RepairOptions};

use super::diff::DiffArgs;
use super::Verbosity;

/// Repair the replica's drifted rows: delete the extra ones, insert the
/// missing ones, update the changed columns, each value written in the
/// form its column already uses.
///
/// By default a dry run: prints the plan and writes nothing. --sql-out FILE
/// writes it as a SQL script (`sqlite3 -bail replica.db < FILE` applies
/// it); --apply applies it in one transaction, writes an undo script beside
/// the replica, and re-verifies the repaired rows with a fresh diff. Only a
/// SQLite replica is ever written. Exit codes: 0 nothing to repair or
/// repaired and re-verified, 1 a dry run or script with rows to repair,
/// 2 error (nothing written) or a repair that did not verify.
#[derive(Args)]
pub struct RepairArgs {
    #[command(flatten)]
    pub diff: DiffArgs,
    /// Write the plan as a SQL script to FILE (a new file).
    #[arg(long, value_name = "FILE")]
    pub sql_out: Option<PathBuf>,
    /// Apply the plan to the replica.
    #[arg(long)]
    pub apply: bool,
    /// Refuse a plan changing more rows than this in one table.
    #[arg(long, value_name = "N", default_value_t = 10_000)]
    pub max_rows: u64,
    /// Refuse a plan changing more than this percentage of a table's rows
    /// (tables of over 100 rows).
    #[arg(long, value_name = "PERCENT", default_value_t = 10.0)]
    pub max_share: f64,
    /// How long --apply waits for another writer to release the replica.
    #[arg(long, value_name = "SECONDS", default_value_t = 5.0)]
    pub busy_timeout: f64,
}

pub fn run(args: RepairArgs, v: Verbosity) -> anyhow::Result<u8> {
    let d = &args.diff;
    if d.format != super::diff::Format::Text || d.costs || d.summary {
        bail!("repair prints its plan as text: --format, --costs and --summary are diff's");
    }
    if !(args.busy_timeout >= 0.0 && args.busy_timeout < 86_400.0) {
        bail!("--busy-timeout takes seconds, from 0 to 86400");
    }
    if !(0.0..=100.0).contains(&args.max_share) {
        bail!("--max-share is a percentage, from 0 to 100");
    }
    let config = d.rows.config()?;
    let (source, target) = d.sides(&config)?;
    let tables = d.table_pairs(&config);
    let opts = RepairOptions {
        diff: DiffOptions {
            tables,
            columns: d.rows.choice(),
            canon: d.rows.canon(),
            shape: d.rows.shape(),
            config,
            keep_differences: None,
        },
        guard: Guard {
            max_rows: args.max_rows,
            max_share: args.max_share,
        },
        busy: Duration::from_secs_f64(args.busy_timeout),
    };
    let plan = repair::plan(&source, &target, &opts)?;
    if !v.quiet || !args.apply {
        print!("{}", show::plan(&plan));
    }
    if let Some(path) = &args.sql_out {
        let header = format!(
            "driftsum repair of {} row(s); apply with: sqlite3 -bail REPLICA < {}",
            plan.rows(),
            path.display()
        );
        let text = repair::script::script(&plan, &header);
        std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(path)
            .and_then(|mut f| std::io::Write::write_all(&mut f, text.as_bytes()))
            .with_context(|| format!("writing the script {} (a new file)", path.display()))?;
    }
    if !args.apply {
        return Ok(u8::from(plan.rows() > 0));
    }
    if plan.rows() == 0 {
        return Ok(0);
    }
    let applied = repair::apply(&source, &target, &plan, &opts)?;
    print!("{}", show::applied(&applied));
    Ok(0)
}
