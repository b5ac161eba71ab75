//! `driftsum repair`: put a SQLite replica's drifted rows right (a dry run
//! by default).

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{bail, Context};
use clap::Args;

use driftsum::check::DiffOptions;
use driftsum::config::Config;
use driftsum::history::repair::RepairRecord;
use driftsum::history::{self, History};
use driftsum::plan::due;
use driftsum::plan::run::Scrub;
use driftsum::repair::server::Dialect;
use driftsum::repair::{self, show, Applied, Guard, RepairError, RepairOptions, RepairPlan};

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
    if let Some(dialect) = repair::server_dialect(&target)? {
        return server_replica(&args, &source, &target, &opts, dialect);
    }
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
        write_new(path, &text)?;
    }
    if !args.apply {
        return Ok(u8::from(plan.rows() > 0));
    }
    if plan.rows() == 0 {
        return Ok(0);
    }
    let applied = repair::apply(&source, &target, &plan, &opts);
    let scrub = Scrub::new(&[&source, &target]);
    record(&opts.diff.config, history_rows(&plan, &applied, &scrub));
    let applied = applied?;
    print!("{}", show::applied(&applied));
    Ok(0)
}

/// A PostgreSQL or MySQL/MariaDB replica: never written; its repair is a
/// script in its own dialect, printed (a dry run) or written to --sql-out.
fn server_replica(
    args: &RepairArgs,
    source: &str,
    target: &str,
    opts: &RepairOptions,
    dialect: Dialect,
) -> anyhow::Result<u8> {
    let apply_with = match dialect {
        Dialect::Postgres => "psql -v ON_ERROR_STOP=1 -d REPLICA -f FILE",
        Dialect::Mysql => "mariadb REPLICA < FILE (or mysql)",
    };
    if args.apply {
        bail!(
            "--apply writes only to a SQLite replica, and {} is a server: driftsum never \
             writes to one. Write the repair as a script with --sql-out FILE, review it, \
             and apply it yourself ({apply_with}); nothing was written",
            driftsum::source::url::redact(target)
        );
    }
    let header = format!(
        "driftsum repair script for a server replica; apply with: {apply_with}\n\
         One transaction: an error rolls it all back."
    );
    let (text, rows) = repair::server_script(source, target, opts, &header)?;
    match &args.sql_out {
        Some(path) => {
            write_new(path, &text)?;
            println!(
                "{rows} row(s) to repair; script written to {}",
                path.display()
            );
        }
        None => print!("{text}"),
    }
    Ok(u8::from(rows > 0))
}

/// Writes `text` to `path`, a new file.
fn write_new(path: &std::path::Path, text: &str) -> anyhow::Result<()> {
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)
        .and_then(|mut f| std::io::Write::write_all(&mut f, text.as_bytes()))
        .with_context(|| format!("writing the script {} (a new file)", path.display()))
}

/// What `--apply` did, one history row per planned table.
fn history_rows(
    plan: &RepairPlan,
    applied: &Result<Applied, RepairError>,
    scrub: &Scrub,
) -> Vec<RepairRecord> {
    let row = |table: &str| RepairRecord {
        id: 0,
        run_id: None,
        at: due::now(),
        origin: "repair".into(),
        table: table.into(),
        level: None,
        outcome: String::new(),
        planned: 0,
        applied: 0,
        already_in_sync: 0,
        changed_since: 0,
        verified: false,
        undo: None,
        note: None,
    };
    match applied {
        Ok(a) => a
            .tables
            .iter()
            .map(|t| RepairRecord {
                outcome: match (t.applied, t.changed_since) {
                    (0, 0) => "already_in_sync",
                    (_, 0) => "repaired",
                    _ => "partial",
                }
                .into(),
                planned: t.planned as u64,
                applied: t.applied as u64,
                already_in_sync: t.already_in_sync as u64,
                changed_since: t.changed_since as u64,
                verified: a.undo.is_some(),
                undo: a.undo.as_ref().map(|p| p.display().to_string()),
                ..row(&t.table)
            })
            .collect(),
        Err(e) => plan
            .tables
            .iter()
            .map(|t| {
                // Committed in one transaction: a repair not proven is
                // unproven for every table in it.
                let unverified = matches!(e, RepairError::Unverified { .. });
                RepairRecord {
                    outcome: if unverified { "unverified" } else { "failed" }.into(),
                    planned: t.ops.len() as u64,
                    undo: match e {
                        RepairError::Unverified { undo, .. } => Some(undo.clone()),
                        _ => None,
                    },
                    note: Some(scrub.apply(&e.to_string())),
                    ..row(&t.table)
                }
            })
            .collect(),
    }
}

/// Records a repair in the config's run history, when `--config` names a
/// history that exists: a repair never creates one. A failure to record is
/// said on stderr and does not change the repair's outcome.
fn record(config: &Config, rows: Vec<RepairRecord>) {
    if config.dir.is_none() {
        return;
    }
    let Ok(location) = history::location(config) else {
        return;
    };
    let recorded = match History::open_existing(location) {
        Ok(None) => return,
        Ok(Some(mut h)) => rows.iter().try_for_each(|r| h.record_repair(r).map(|_| ())),
        Err(e) => Err(e),
    };
    if let Err(e) = recorded {
        eprintln!("driftsum: warning: the repair was not recorded in the run history: {e}");
    }
}
