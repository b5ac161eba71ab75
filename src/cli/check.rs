//! `driftsum check`: run the levels of each table's tier (all of them, or
//! with `--due` only those whose interval has passed), record them in the
//! run history, and report.

use std::path::PathBuf;

use anyhow::{anyhow, bail, Context};
use clap::Args;
use serde_json::{json, Value as J};

use driftsum::config::{parse_interval, Config};
use driftsum::history::claim::Claim;
use driftsum::history::record::LevelResult;
use driftsum::history::{self, History, Status};
use driftsum::plan::level::{self, Sides};
use driftsum::plan::tiers::{self, TableTier};
use driftsum::plan::{due, recent, recheck, Level};
use driftsum::report::model::{DifferenceReport, TableReport};
use driftsum::report::text::escape_text;
use driftsum::source::url::{redact, secret_spans};

use super::diff::Format;

/// Version of the JSON document `check --format json` prints.
const FORMAT_VERSION: u32 = 1;

/// Differences kept per table and level when the config does not say.
const KEEP_DIFFERENCES: u64 = 10_000;

/// How long a claim holds if its checker dies on another host.
const CLAIM_SECONDS: i64 = 6 * 3600;

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

/// One table's results in this run.
struct Entry {
    table: TableTier,
    results: Vec<LevelResult>,
}

pub fn run(args: CheckArgs) -> anyhow::Result<u8> {
    let config = Config::load(&args.config)?;
    let recheck_after = match &args.recheck_after {
        Some(t) => Some(parse_interval(t).map_err(|e| anyhow!("--recheck-after: {e}"))?),
        None => None,
    };
    if let Some(a) = &args.min_age {
        parse_interval(a).map_err(|e| anyhow!("--min-age: {e}"))?;
    }
    let now = due::now();
    let url = |side: &Option<driftsum::config::SideConfig>, place: &str| {
        side.as_ref()
            .ok_or_else(|| anyhow!("the config has no [{place}] with its url or url_env"))?
            .resolve(place, config.dir.as_deref())
            .map_err(|e| anyhow!("config file {}: {e}", args.config.display()))
    };
    let source_url = url(&config.source, "source")?;
    let replica_url = url(&config.replica, "replica")?;
    let scrub = Scrub::new(&[&source_url, &replica_url]);
    let outcome = (|| {
        let history_path = history::location(&config).map_err(|e| anyhow!(e))?;
        let mut sides = Sides::open(&source_url, &replica_url)
            .map_err(|(side, e)| anyhow!("opening the {side}: {e}"))?;
        let names = sides
            .source_tables()
            .context("listing the source's tables")?;
        let work = select(&config, &names, &args)?;
        let aged: Vec<&TableTier> = work
            .iter()
            .filter(|t| min_age_of(&config, t, &args).is_some())
            .collect();
        recent::check_config(&config, &aged).map_err(|e| anyhow!(e))?;
        let mut hist = History::open(&history_path)?;
        if let Some(keep) = config.history.as_ref().and_then(|h| h.keep.as_deref()) {
            if let Some(keep) = parse_interval(keep).map_err(|e| anyhow!(e))? {
                hist.prune(now - keep.as_secs() as i64)?;
            }
        }
        let run_id = hist.begin_run(now)?;
        let entries = check_all(
            &mut sides,
            &config,
            &mut hist,
            run_id,
            &work,
            &args,
            recheck_after,
            now,
            &scrub,
        )?;
        hist.finish_run(run_id, due::now())?;
        anyhow::Ok((run_id, entries))
    })();
    let (run_id, entries) = outcome.map_err(|e| anyhow!(scrub.apply(&format!("{e:#}"))))?;
    let status = overall(&entries);
    match args.format {
        Format::Json => emit(&format!("{}\n", to_json(run_id, status, &entries))),
        Format::Text => emit(&to_text(status, &entries)),
    }
    Ok(match status {
        Status::Error => 2,
        Status::Drift => 1,
        _ => 0,
    })
}

/// The tables to check, with their tiers, narrowed by `--tier` and `--table`.
fn select(config: &Config, names: &[String], args: &CheckArgs) -> anyhow::Result<Vec<TableTier>> {
    let mut work = tiers::assign(config, names).map_err(|e| anyhow!("{e}"))?;
    for t in &args.tiers {
        if !config.tiers.contains_key(t) {
            bail!("--tier {t:?}: the config defines no such tier");
        }
    }
    for t in &args.tables {
        if !work.iter().any(|w| &w.table == t) {
            bail!("--table {t:?}: the source has no such table, or the config excludes it");
        }
    }
    work.retain(|w| {
        (args.tiers.is_empty() || args.tiers.contains(&w.tier))
            && (args.tables.is_empty() || args.tables.contains(&w.table))
    });
    // A check of nothing must not read as "in sync".
    if work.is_empty() {
        bail!(
            "nothing to check: no table of the source is left once the config's \
             exclude_tables and --tier/--table are applied; name a table or loosen the exclusions"
        );
    }
    Ok(work)
}

#[allow(clippy::too_many_arguments)]
fn check_all(
    sides: &mut Sides,
    config: &Config,
    hist: &mut History,
    run_id: i64,
    work: &[TableTier],
    args: &CheckArgs,
    recheck_after: Option<driftsum::config::Interval>,
    now: i64,
    scrub: &Scrub,
) -> anyhow::Result<Vec<Entry>> {
    let keep = config
        .history
        .as_ref()
        .and_then(|h| h.max_differences)
        .unwrap_or(KEEP_DIFFERENCES) as usize;
    let mut entries = Vec::new();
    for t in work {
        let levels: Vec<Level> = match args.level {
            Some(l) => vec![l],
            None => Level::ALL
                .into_iter()
                .filter(|&l| due::interval(config, &t.tier, l).is_some())
                .collect(),
        };
        let mut results = Vec::new();
        let mut queue: Vec<(Level, bool)> = levels.iter().map(|&l| (l, false)).collect();
        let mut i = 0;
        while i < queue.len() {
            let (level, escalated) = queue[i];
            i += 1;
            if args.due {
                let interval = due::interval(config, &t.tier, level);
                let due_now = |last| escalated || due::is_due(interval, last, now);
                let claim = hist.claim(
                    run_id,
                    &t.table,
                    level.as_str(),
                    now,
                    now + CLAIM_SECONDS,
                    due_now,
                )?;
                match claim {
                    Claim::Taken => {}
                    Claim::NotDue => continue,
                    Claim::Held => {
                        let mut r = LevelResult::new(&t.table, &t.tier, level.as_str(), now);
                        r.status = Status::Skipped;
                        r.escalated = escalated;
                        r.error = Some("another checker is running it".into());
                        results.push(r);
                        continue;
                    }
                }
            }
            let mut r = level::run(sides, config, t, level, keep, due::now());
            let delay = match recheck_after {
                Some(d) => d,
                None => due::recheck_after(config, &t.tier),
            };
            if let Some(delay) = delay.filter(|_| recheck::worth_it(&r)) {
                std::thread::sleep(delay);
                let again = recheck::read_again(sides, config, t, &r, due::now());
                r = recheck::settle(r, again, delay.as_secs_f64());
            }
            if let Some(age) = min_age_of(config, t, args) {
                r = recent::set_aside(sides, config, t, r, age, due::now());
            }
            r.escalated = escalated;
            r.error = r.error.map(|e| scrub.apply(&e));
            hist.record(run_id, &r)?;
            // A count mismatch names no rows: the keys level does, now.
            let ran_keys = queue[..i].iter().any(|(l, _)| *l == Level::Keys);
            if level == Level::Count && r.status == Status::Drift && !ran_keys {
                queue.retain(|(l, _)| *l != Level::Keys);
                queue.insert(i, (Level::Keys, true));
            }
            results.push(r);
        }
        if !results.is_empty() {
            entries.push(Entry {
                table: t.clone(),
                results,
            });
        }
    }
    hist.release_claims(run_id)?;
    Ok(entries)
}

/// The `min_age` of `t`: `--min-age` (validated by `run`), else its tier's.
fn min_age_of(config: &Config, t: &TableTier, args: &CheckArgs) -> Option<std::time::Duration> {
    match &args.min_age {
        Some(a) => parse_interval(a).ok().flatten(),
        None => due::min_age(config, &t.tier),
    }
}

fn overall(entries: &[Entry]) -> Status {
    let all = || entries.iter().flat_map(|e| &e.results);
    if all().any(|r| r.status == Status::Error) {
        Status::Error
    } else if all().any(|r| r.status == Status::Drift) {
        Status::Drift
    } else {
        Status::InSync
    }
}

fn to_json(run_id: i64, status: Status, entries: &[Entry]) -> String {
    let tables: Vec<J> = entries
        .iter()
        .map(|e| {
            let levels: Vec<J> = e.results.iter().map(level_json).collect();
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

fn to_text(status: Status, entries: &[Entry]) -> String {
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

/// Cuts the passwords of the config's URLs out of messages (a URL from the
/// file or its variable is not on the command line, where `secrets` looks).
struct Scrub {
    urls: Vec<String>,
    secrets: Vec<String>,
}

impl Scrub {
    fn new(urls: &[&str]) -> Scrub {
        let mut secrets: Vec<String> = urls
            .iter()
            .flat_map(|u| secret_spans(u).into_iter().map(|s| u[s].to_string()))
            .filter(|s| s.len() >= 3)
            .collect();
        secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
        Scrub {
            urls: urls.iter().map(|u| u.to_string()).collect(),
            secrets,
        }
    }

    fn apply(&self, message: &str) -> String {
        let mut out = message.to_string();
        for u in &self.urls {
            out = out.replace(u.as_str(), &redact(u));
        }
        for s in &self.secrets {
            out = out.replace(s.as_str(), "***");
        }
        out
    }
}

/// Writes the report; a reader that went away (`| head`) is not an error.
pub fn emit(text: &str) {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(text.as_bytes()).and_then(|()| out.flush());
}
