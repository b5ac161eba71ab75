//! `driftsum check`: run the levels of each table's tier (all of them, or
//! with `--due` only those whose interval has passed), record them in the
//! run history, and report.

use std::path::PathBuf;

use anyhow::{anyhow, bail};
use clap::Args;
use serde_json::{json, Value as J};

use driftsum::alert::metrics;
use driftsum::config::{parse_interval, Config};
use driftsum::history::record::LevelResult;
use driftsum::history::{self, History, Status};
use driftsum::plan::autorepair::AutoRepair;
use driftsum::plan::run::{RunError, RunOptions, RunOutcome, Scrub, TableResults};
use driftsum::plan::{self, due, Level};
use driftsum::report::model::{DifferenceReport, TableReport};
use driftsum::report::text::escape_text;

use super::diff::Format;

/// Version of the JSON document `check --format json` prints.
const FORMAT_VERSION: u32 = 1;

/// Check the replica named in a config file against its source, table by
/// table, at the levels of each table's tier (count, keys, full), and record
/// the results in the run history.
///
/// Exit codes: 0 in sync, 1 drift found, 2 error.
#[derive(Args)]
pub struct CheckArgs {
    /// The config file: [source], [replica], [tiers.*], [tables.*]
    /// (see docs/check.md).
    #[arg(long, value_name = "FILE")]
    pub config: PathBuf,
    /// Check only the tables of this tier; repeat for more.
    #[arg(long = "tier", value_name = "NAME")]
    pub tiers: Vec<String>,
    /// Check only this table (its source name); repeat for more.
    #[arg(long = "table", value_name = "NAME")]
    pub tables: Vec<String>,
    /// Run only this level: count, keys or full.
    #[arg(long, value_name = "LEVEL", value_parser = |s: &str| s.parse::<Level>())]
    pub level: Option<Level>,
    /// Run only the (table, level) pairs whose interval has passed since
    /// they last completed, claiming each so that concurrent checkers never
    /// run one twice.
    #[arg(long)]
    pub due: bool,
    /// Read the differing keys of a keys or full level again after this
    /// delay (e.g. 30s): those that agree then are rows in flight, listed
    /// but not counted as drift. Overrides the tiers' recheck_after; "off"
    /// turns rechecks off.
    #[arg(long, value_name = "INTERVAL")]
    pub recheck_after: Option<String>,
    /// Set aside differing rows whose update-time column (updated_column)
    /// is within this interval of now on either side (e.g. 10m): reported
    /// as recent, not judged. Overrides the tiers' min_age; "off" turns it
    /// off.
    #[arg(long, value_name = "INTERVAL")]
    pub min_age: Option<String>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
}

pub fn run(args: CheckArgs) -> anyhow::Result<u8> {
    let config = Config::load(&args.config)?;
    let recheck_after = match &args.recheck_after {
        Some(t) => Some(parse_interval(t).map_err(|e| anyhow!("--recheck-after: {e}"))?),
        None => None,
    };
    let min_age = match &args.min_age {
        Some(a) => Some(parse_interval(a).map_err(|e| anyhow!("--min-age: {e}"))?),
        None => None,
    };
    let opts = RunOptions {
        min_age,
        tiers: args.tiers.clone(),
        tables: args.tables.clone(),
        level: args.level,
        due: args.due,
        recheck_after,
        now: due::now(),
        stop: None,
    };
    let outcome = match plan::run::run(&config, &opts) {
        Ok(o) => o,
        Err(e) => {
            if reached_no_table(&e) {
                driftsum::alert::run_failed(&config, &e.to_string(), due::now());
                write_metrics(&config);
            }
            match e {
                RunError::Url(_) => bail!("config file {}: {e}", args.config.display()),
                e => bail!(e),
            }
        }
    };
    after_run(&config, &outcome);
    let status = outcome.status();
    match args.format {
        Format::Json => emit(&format!(
            "{}\n",
            to_json(outcome.run_id, status, &outcome.tables)
        )),
        Format::Text => emit(&to_text(status, &outcome.tables)),
    }
    Ok(match status {
        Status::Error => 2,
        Status::Drift => 1,
        _ => 0,
    })
}

/// Whether a run failed for want of its sides (an unset URL variable, a
/// side that cannot be opened or listed): the run's error incident, which
/// alerts announce. A config that cannot say what to run is the invoker's
/// error, and a history that cannot be written cannot hold an incident.
pub fn reached_no_table(e: &RunError) -> bool {
    matches!(
        e,
        RunError::Url(_) | RunError::Open { .. } | RunError::Tables(_)
    )
}

/// What follows every recorded run, of `check` and of `watch` alike: the
/// metrics textfile is rewritten (and alerts go out). Nothing here fails
/// the run: a failure is logged.
pub fn after_run(config: &Config, outcome: &RunOutcome) {
    let opened =
        history::location(config).and_then(|p| History::open(&p).map_err(|e| e.to_string()));
    match opened {
        Ok(mut hist) => {
            driftsum::alert::after_run(
                &mut hist,
                config,
                outcome.run_id,
                &outcome.source_tables,
                outcome.tables.iter().flat_map(|t| &t.results),
                due::now(),
            );
        }
        Err(e) => {
            let e = Scrub::of_config(config).apply(&e);
            eprintln!("driftsum: alerts: cannot open the run history: {e}");
        }
    }
    write_metrics(config);
}

/// Rewrites the metrics textfile; a failure is logged, never fatal.
fn write_metrics(config: &Config) {
    if let Err(e) = metrics::write_configured(config) {
        let e = Scrub::of_config(config).apply(&e.to_string());
        if tracing::enabled!(tracing::Level::ERROR) {
            tracing::error!(error = %e, "writing the metrics textfile");
        } else {
            eprintln!("driftsum: warning: {e}");
        }
    }
}

fn to_json(run_id: i64, status: Status, entries: &[TableResults]) -> String {
    let tables: Vec<J> = entries
        .iter()
        .map(|e| {
            let levels: Vec<J> = e
                .results
                .iter()
                .map(|r| {
                    let mut j = level_json(r);
                    if let Some(a) = e.repairs.iter().find(|a| a.level == r.level) {
                        j["repair"] = repair_json(a);
                    }
                    j
                })
                .collect();
            json!({"table": e.table.table, "tier": e.table.tier, "levels": levels})
        })
        .collect();
    json!({
        "format_version": FORMAT_VERSION,
        "status": status,
        "run_id": run_id,
        "tables": tables,
    })
    .to_string()
}

/// What an automatic repair did, as `check --format json` says it.
fn repair_json(a: &AutoRepair) -> J {
    json!({
        "outcome": a.outcome,
        "planned": a.planned,
        "applied": a.applied,
        "already_in_sync": a.already_in_sync,
        "changed_since": a.changed_since,
        "verified": a.verified,
        "undo": a.undo.as_ref().map(|p| p.display().to_string()),
        "note": a.note,
    })
}

/// One line for people: what an automatic repair did.
fn repair_text(a: &AutoRepair) -> String {
    let mut line = format!(
        "repair: {}; {} planned, {} applied, {} already in sync, {} changed since",
        a.outcome.as_str().replace('_', " "),
        a.planned,
        a.applied,
        a.already_in_sync,
        a.changed_since
    );
    if a.verified {
        line.push_str(", re-verified in sync");
    }
    if let Some(u) = &a.undo {
        line.push_str(&format!(
            "; undo: {}",
            escape_text(&u.display().to_string())
        ));
    }
    if let Some(n) = &a.note {
        line.push_str(&format!("; {}", escape_text(n)));
    }
    line
}

fn level_json(r: &LevelResult) -> J {
    let mut j = json!({
        "level": r.level,
        "status": r.status,
        "escalated": r.escalated,
        "source_rows": r.source_rows,
        "target_rows": r.target_rows,
        "seconds": (r.seconds * 1000.0).round() / 1000.0,
        "bytes": r.bytes,
        "rows_read": r.rows_read,
    });
    if let Some(o) = &r.outcome {
        let report = TableReport::from_outcome(o);
        j["counts"] = json!({
            "missing": r.counts.missing,
            "extra": r.counts.extra,
            "changed": r.counts.changed,
        });
        j["differences_total"] = json!(r.counts.total());
        j["drifted_ranges"] = json!(report.drifted_ranges);
        j["differences"] = json!(report.differences);
        if r.rechecked {
            j["rechecked"] = json!(true);
            let in_flight: Vec<DifferenceReport> = r
                .in_flight
                .iter()
                .map(|d| DifferenceReport::new(o, d))
                .collect();
            j["in_flight"] = json!(in_flight);
        }
        if !r.recent.is_empty() {
            let recent: Vec<DifferenceReport> = r
                .recent
                .iter()
                .map(|d| DifferenceReport::new(o, d))
                .collect();
            j["recent"] = json!(recent);
        }
    }
    if let Some(e) = &r.error {
        j["error"] = json!(e);
    }
    j
}

fn to_text(status: Status, entries: &[TableResults]) -> String {
    use std::fmt::Write;
    let mut out = String::new();
    let mut tally = [0usize; 4];
    for e in entries {
        let _ = writeln!(
            out,
            "{} (tier {})",
            escape_text(&e.table.table),
            escape_text(&e.table.tier)
        );
        for r in &e.results {
            tally[r.status as usize] += 1;
            let rows = match (r.source_rows, r.target_rows) {
                (Some(s), Some(t)) => format!("source {s} rows, replica {t} rows"),
                _ => String::new(),
            };
            let mut line = format!("  {:<5} {:<8} {rows}", r.level, r.status.as_str());
            if r.outcome.is_some() && r.status == Status::Drift {
                let c = &r.counts;
                let _ = write!(
                    line,
                    "; {} missing, {} extra, {} changed",
                    c.missing, c.extra, c.changed
                );
            }
            if r.escalated {
                line.push_str(" (escalated from count)");
            }
            if r.rechecked {
                let _ = write!(line, " (rechecked: {} in flight)", r.in_flight.len());
            }
            if !r.recent.is_empty() {
                let _ = write!(line, " ({} recent, not judged)", r.recent.len());
            }
            let _ = writeln!(out, "{}  {:.2}s", line.trim_end(), r.seconds);
            if let Some(err) = &r.error {
                let _ = writeln!(out, "        {}", escape_text(err));
            }
            if let Some(a) = e.repairs.iter().find(|a| a.level == r.level) {
                let _ = writeln!(out, "        {}", repair_text(a));
            }
            if let Some(o) = &r.outcome {
                let report = TableReport::from_outcome(o);
                let differences = report.differences.unwrap_or_default();
                for d in differences.iter().take(10) {
                    let key = J::Object(d.key.clone()).to_string();
                    let cols = d
                        .columns
                        .as_ref()
                        .map_or(String::new(), |c| format!(" columns {}", c.join(", ")));
                    let _ = writeln!(out, "        {} {}{}", d.kind, escape_text(&key), cols);
                }
                if differences.len() > 10 {
                    let _ = writeln!(out, "        … {} in all", r.counts.total());
                }
                for d in r.in_flight.iter().take(10) {
                    let d = DifferenceReport::new(o, d);
                    let key = J::Object(d.key).to_string();
                    let _ = writeln!(out, "        in flight: {} {}", d.kind, escape_text(&key));
                }
                for d in r.recent.iter().take(10) {
                    let d = DifferenceReport::new(o, d);
                    let key = J::Object(d.key).to_string();
                    let _ = writeln!(out, "        recent: {} {}", d.kind, escape_text(&key));
                }
            }
        }
    }
    let _ = writeln!(
        out,
        "{}: {} table(s), {} level(s) in sync, {} with drift, {} failed, {} skipped",
        status.as_str(),
        entries.len(),
        tally[Status::InSync as usize],
        tally[Status::Drift as usize],
        tally[Status::Error as usize],
        tally[Status::Skipped as usize],
    );
    out
}

/// Writes the report; a reader that went away (`| head`) is not an error.
pub fn emit(text: &str) {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(text.as_bytes()).and_then(|()| out.flush());
}
