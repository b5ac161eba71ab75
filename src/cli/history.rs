//! `driftsum history`: list the runs and results the run history holds,
//! with its open and recently closed incidents; `driftsum history
//! patterns`: what the history shows over time (`history::patterns`).

use std::path::PathBuf;

use anyhow::anyhow;
use clap::{Args, Subcommand};

use driftsum::config::{parse_interval, Config};
use driftsum::history::patterns::{self, PatternOptions, Patterns};
use driftsum::history::{self, History};
use driftsum::plan::due;
use driftsum::report::text::escape_text;

use super::check::emit;
use super::diff::Format;

/// `println!` through [`emit`].
macro_rules! outln {
    ($($t:tt)*) => { emit(&format!("{}\n", format!($($t)*))) };
}

/// List past check runs and their results (per table and level: status,
/// counts, time, and what drifted), newest last.
#[derive(Args)]
#[command(args_conflicts_with_subcommands = true, subcommand_negates_reqs = true)]
pub struct HistoryArgs {
    #[command(subcommand)]
    pub command: Option<HistoryCommand>,
    /// The config file naming the history (see docs/check.md).
    #[arg(long, value_name = "FILE", required = true)]
    pub config: Option<PathBuf>,
    /// Only this table's results.
    #[arg(long, value_name = "NAME")]
    pub table: Option<String>,
    /// Only runs started within this interval (e.g. 1h, 7d), or "off" for all.
    #[arg(long, value_name = "INTERVAL", default_value = "7d")]
    pub since: String,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
}

#[derive(Subcommand)]
pub enum HistoryCommand {
    Patterns(PatternsArgs),
}

/// What the history shows over time: tables ranked by drift, key ranges
/// that drift again and again, when drift is found (hour of day, day of
/// week), drift that grows, how long incidents lasted, rows in flight, and
/// what each level costs per table size (see docs/dashboard.md).
#[derive(Args)]
pub struct PatternsArgs {
    /// The config file naming the history (see docs/check.md).
    #[arg(long, value_name = "FILE")]
    pub config: PathBuf,
    /// Only results started within this interval (e.g. 7d), or "off" for all.
    #[arg(long, value_name = "INTERVAL", default_value = "30d")]
    pub since: String,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
}

/// The history a config names, opened, and the cutoff `since` gives (Unix
/// seconds).
fn open(config: &std::path::Path, since: &str) -> anyhow::Result<(History, i64)> {
    let config = Config::load(config)?;
    let since = parse_interval(since).map_err(|e| anyhow!("--since: {e}"))?;
    let cutoff = since.map_or(i64::MIN, |s| due::now() - s.as_secs() as i64);
    let path = history::location(&config).map_err(|e| anyhow!(e))?;
    let Some(hist) = History::open_existing(&path)? else {
        anyhow::bail!(
            "no run history at {} yet: run driftsum check first",
            path.display()
        );
    };
    Ok((hist, cutoff))
}

pub fn run(args: HistoryArgs) -> anyhow::Result<u8> {
    if let Some(HistoryCommand::Patterns(p)) = args.command {
        return run_patterns(p);
    }
    let config = args
        .config
        .ok_or_else(|| anyhow!("give the config file with --config FILE"))?;
    let (hist, cutoff) = open(&config, &args.since)?;
    let runs = hist.runs(cutoff, args.table.as_deref())?;
    let incidents: Vec<_> = hist
        .incidents(cutoff)?
        .into_iter()
        .filter(|i| args.table.as_ref().is_none_or(|t| *t == i.table))
        .collect();
    match args.format {
        Format::Json => {
            let incidents: Vec<serde_json::Value> = incidents
                .iter()
                .map(|i| {
                    serde_json::json!({
                        "id": i.id,
                        "table": i.table,
                        "tier": i.tier,
                        "level": i.level,
                        "kind": i.kind.as_str(),
                        "opened": i.opened,
                        "closed": i.closed,
                        "runs": i.runs,
                        "detail": i.detail,
                    })
                })
                .collect();
            emit(&format!(
                "{}\n",
                serde_json::json!({ "format_version": 1, "runs": runs, "incidents": incidents })
            ))
        }
        Format::Text => {
            for run in &runs {
                let end = match run.finished {
                    Some(f) => format!("finished {}", time(f)),
                    None => "UNFINISHED".to_string(),
                };
                outln!("run {} started {}, {end}", run.id, time(run.started));
                for r in &run.results {
                    let rows = match (r.source_rows, r.target_rows) {
                        (Some(s), Some(t)) => format!(" source {s}, replica {t} rows"),
                        _ => String::new(),
                    };
                    let drift = match r.missing + r.extra + r.changed {
                        0 => String::new(),
                        _ => format!(
                            "; {} missing, {} extra, {} changed",
                            r.missing, r.extra, r.changed
                        ),
                    };
                    outln!(
                        "  {} {} {}{rows}{drift}  {:.2}s{}",
                        escape_text(&r.table),
                        r.level,
                        r.status,
                        r.seconds,
                        r.error
                            .as_ref()
                            .map_or(String::new(), |e| format!(": {}", escape_text(e)))
                    );
                }
            }
            if runs.is_empty() {
                outln!("no runs since {}", time(cutoff.max(0)));
            }
            let now = due::now();
            for i in &incidents {
                let state = match i.closed {
                    None => format!("OPEN for {}", span(now - i.opened)),
                    Some(c) => format!("closed {} after {}", time(c), span(c - i.opened)),
                };
                outln!(
                    "incident {}: {} {} {} since {}, {} runs, {state}",
                    i.id,
                    escape_text(&i.table),
                    i.level,
                    i.kind.as_str(),
                    time(i.opened),
                    i.runs
                );
            }
        }
    }
    Ok(0)
}

fn run_patterns(args: PatternsArgs) -> anyhow::Result<u8> {
    let (hist, cutoff) = open(&args.config, &args.since)?;
    let input = hist.pattern_input(cutoff)?;
    let p = patterns::analyze(&input, &PatternOptions::new(due::now()));
    match args.format {
        Format::Json => emit(&format!(
            "{}\n",
            serde_json::json!({
                "format_version": 1,
                "since": cutoff.max(0),
                "results": input.results.len(),
                "patterns": p,
            })
        )),
        Format::Text => print_patterns(&p, input.results.len(), cutoff),
    }
    Ok(0)
}

fn print_patterns(p: &Patterns, results: usize, cutoff: i64) {
    outln!("{results} results since {}", time(cutoff.max(0)));
    outln!("\nTables by drifting checks (table level: drifting/checks; missing, extra, changed; in flight):");
    for t in &p.tables {
        let rate = t.in_flight_rate.map_or(String::new(), |r| {
            format!(" ({:.0}% of differences)", r * 100.0)
        });
        outln!(
            "  {}: {}/{}; {}, {}, {}; {} in flight{rate}: {}",
            pair(&t.table, &t.level),
            t.drifting_runs,
            t.runs,
            t.missing,
            t.extra,
            t.changed,
            t.in_flight_rows,
            t.behaviour.replace('_', " ")
        );
    }
    section("Recurring ranges:", &p.recurring_ranges, |r| {
        let hours: Vec<String> = r.hours.iter().map(|h| format!("{h:02}h")).collect();
        format!(
            "{} {} to {}: {} of the last {} checks, at {} UTC",
            pair(&r.table, &r.level),
            escape_text(&r.first.to_string()),
            escape_text(&r.last.to_string()),
            r.runs,
            r.of_runs,
            hours.join(", ")
        )
    });
    for k in p.recurring_keys.iter().take(20) {
        outln!(
            "  row {} {} drifted again {} times after being in sync",
            escape_text(&k.table),
            escape_text(&k.key.to_string()),
            k.returns
        );
    }
    outln!("\nDrifting checks by hour of day (UTC):");
    let hours: Vec<String> = (0..24)
        .filter(|&h| p.when.drift_by_hour[h] > 0)
        .map(|h| {
            format!(
                "{h:02}h {}/{}",
                p.when.drift_by_hour[h], p.when.checks_by_hour[h]
            )
        })
        .collect();
    outln!(
        "  {}",
        if hours.is_empty() {
            "none".into()
        } else {
            hours.join(", ")
        }
    );
    const DAYS: [&str; 7] = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];
    let days: Vec<String> = (0..7)
        .map(|d| format!("{} {}", DAYS[d], p.when.drift[d].iter().sum::<u32>()))
        .collect();
    outln!("  by day: {}", days.join(", "));
    section("Growing drift:", &p.growing, |g| {
        format!(
            "{}: {} to {} rows over {} checks{}",
            pair(&g.table, &g.level),
            g.from_rows,
            g.to_rows,
            g.runs,
            if g.ongoing { ", still growing" } else { "" }
        )
    });
    section("Incidents (time to recovery):", &p.recovery, |r| {
        format!(
            "{} {}: {} after {} ({} runs)",
            pair(&r.table, &r.level),
            r.kind,
            match r.closed_by {
                "open" => "still open",
                "in_sync" => "in sync again",
                "in_flight" => "found in flight",
                _ => "closed",
            },
            span(r.open_seconds),
            r.runs
        )
    });
    outln!(
        "\nCost per table size (table level: rows, mean seconds, s per million rows, mean bytes):"
    );
    for c in &p.cost {
        outln!(
            "  {}: {} rows, {:.3}s, {}, {:.0} bytes",
            pair(&c.table, &c.level),
            c.rows,
            c.mean_seconds,
            c.seconds_per_million_rows
                .map_or("-".to_string(), |v| format!("{v:.2}")),
            c.mean_bytes
        );
    }
}

/// A section of the patterns text: its heading after a blank line, then
/// one indented line an item, or `none`.
fn section<T>(heading: &str, items: &[T], line: impl Fn(&T) -> String) {
    outln!("\n{heading}");
    for item in items {
        outln!("  {}", line(item));
    }
    if items.is_empty() {
        outln!("  none");
    }
}

/// How the patterns text names a (table, level): the table escaped.
fn pair(table: &str, level: &str) -> String {
    format!("{} {level}", escape_text(table))
}

/// A duration in the largest unit that keeps it readable.
fn span(secs: i64) -> String {
    let secs = secs.max(0);
    match secs {
        0..=119 => format!("{secs}s"),
        120..=7_199 => format!("{}m", secs / 60),
        7_200..=172_799 => format!("{:.1}h", secs as f64 / 3_600.0),
        _ => format!("{:.1}d", secs as f64 / 86_400.0),
    }
}

fn time(unix: i64) -> String {
    format!(
        "{}Z",
        driftsum::core::time::format_timestamp(unix * 1_000_000).replace('T', " ")
    )
}
