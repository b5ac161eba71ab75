//! One check run, as `check` and `watch` both make it: resolve the two
//! sides, select the tables, begin a run in the history, run each table's
//! levels (claiming each first when only due levels run), escalate a count
//! mismatch to `keys`, recheck differences after a delay, repair confirmed
//! drift where the tier says `repair = "auto"`, record every result (and
//! repair) as it completes, and finish the run. Printing, exit codes and
//! what happens after a run (metrics, alerts) are the caller's.

use std::sync::atomic::{AtomicBool, Ordering};

use tracing::{error, info, warn};

use super::autorepair::{self, AutoRepair};
use super::level::{self, Sides};
use super::tiers::{self, TableTier};
use super::{due, recent, recheck, Level};
use crate::config::{parse_interval, Config, Interval, SideConfig};
use crate::history::claim::Claim;
use crate::history::record::LevelResult;
use crate::history::repair::RepairRecord;
use crate::history::{self, History, HistoryError, Status};
use crate::source::url::{redact, secret_spans};

/// Differences kept per table and level when the config does not say.
const KEEP_DIFFERENCES: u64 = 10_000;

/// How long a claim holds if its checker dies on another host.
const CLAIM_SECONDS: i64 = 6 * 3600;

/// What to run.
#[derive(Default)]
pub struct RunOptions<'a> {
    /// Only the tables of these tiers (none: every tier).
    pub tiers: Vec<String>,
    /// Only these tables, by their source names (none: every table).
    pub tables: Vec<String>,
    /// Only this level (none: every level the tier does not turn off).
    pub level: Option<Level>,
    /// Only the levels whose interval has passed, each claimed first.
    pub due: bool,
    /// Overrides the tiers' `recheck_after` (`Some(None)`: no rechecks).
    pub recheck_after: Option<Interval>,
    /// Overrides the tiers' `min_age` (`Some(None)`: off).
    pub min_age: Option<Interval>,
    /// The run's time, Unix seconds.
    pub now: i64,
    /// Set from outside (a signal) to stop after the level running now:
    /// it is recorded, nothing more is claimed, and the run is finished.
    pub stop: Option<&'a AtomicBool>,
}

/// One table's results in a run.
#[derive(Clone, Debug)]
pub struct TableResults {
    pub table: TableTier,
    pub results: Vec<LevelResult>,
    /// Automatic repairs after its levels (`repair = "auto"`).
    pub repairs: Vec<AutoRepair>,
}

/// What a run did.
#[derive(Debug)]
pub struct RunOutcome {
    /// The run's id in the history.
    pub run_id: i64,
    pub tables: Vec<TableResults>,
    /// Every table of the source, checked or not (incidents and alerts
    /// tell a dropped table from one not checked this run).
    pub source_tables: Vec<String>,
    /// Whether `stop` ended the run before every table was checked.
    pub stopped: bool,
}

impl RunOutcome {
    /// The run's verdict: an error (or a failed repair) wins over drift,
    /// drift over in sync. A repaired table still found drift: the run says
    /// so, and its repair says what was put right.
    pub fn status(&self) -> Status {
        let all = || self.tables.iter().flat_map(|e| &e.results);
        let repairs = || self.tables.iter().flat_map(|e| &e.repairs);
        if all().any(|r| r.status == Status::Error) || repairs().any(|a| a.outcome.is_error()) {
            Status::Error
        } else if all().any(|r| r.status == Status::Drift) {
            Status::Drift
        } else {
            Status::InSync
        }
    }
}

/// A run that could not be made. Messages never hold a password: the
/// config's URLs are cut out of them.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// The config cannot say what to run (a missing side, an unknown tier).
    #[error("{0}")]
    Config(String),
    /// A side's URL cannot be had (`url_env` names an unset variable).
    #[error("{0}")]
    Url(String),
    #[error("opening the {side}: {message}")]
    Open { side: &'static str, message: String },
    #[error("listing the source's tables: {0}")]
    Tables(String),
    #[error("{0}")]
    History(String),
}

/// The source's and the replica's URLs, as the config gives them.
pub fn side_urls(config: &Config) -> Result<(String, String), RunError> {
    let url = |side: &Option<SideConfig>, place: &str| {
        side.as_ref()
            .ok_or_else(|| {
                RunError::Url(format!(
                    "the config has no [{place}] with its url or url_env"
                ))
            })?
            .resolve(place, config.dir.as_deref())
            .map_err(RunError::Url)
    };
    Ok((
        url(&config.source, "source")?,
        url(&config.replica, "replica")?,
    ))
}

/// The tables a run with `opts` checks, with their tiers (opens the sides
/// to list the source's tables).
pub fn tables(config: &Config, opts: &RunOptions) -> Result<Vec<TableTier>, RunError> {
    let (source_url, replica_url) = side_urls(config)?;
    let scrub = Scrub::new(&[&source_url, &replica_url]);
    let mut sides = open_sides(&source_url, &replica_url, &scrub)?;
    Ok(select(config, &mut sides, opts, &scrub)?.1)
}

/// Runs the levels `opts` asks for and records them in the config's
/// history.
pub fn run(config: &Config, opts: &RunOptions) -> Result<RunOutcome, RunError> {
    let (source_url, replica_url) = side_urls(config)?;
    autorepair::check_config(config, &replica_url).map_err(RunError::Config)?;
    let scrub = Scrub::new(&[&source_url, &replica_url]);
    let history_path = history::location(config).map_err(RunError::History)?;
    let mut sides = open_sides(&source_url, &replica_url, &scrub)?;
    let (source_tables, work) = select(config, &mut sides, opts, &scrub)?;
    let aged: Vec<&TableTier> = work
        .iter()
        .filter(|t| min_age_of(config, t, opts).is_some())
        .collect();
    recent::check_config(config, &aged).map_err(RunError::Config)?;
    let hist_err = |e: HistoryError| RunError::History(scrub.apply(&e.to_string()));
    let mut hist = History::open(&history_path).map_err(hist_err)?;
    if let Some(keep) = config.history.as_ref().and_then(|h| h.keep.as_deref()) {
        if let Some(keep) = parse_interval(keep).map_err(RunError::Config)? {
            hist.prune(opts.now - keep.as_secs() as i64)
                .map_err(hist_err)?;
        }
    }
    let run_id = hist.begin_run(opts.now).map_err(hist_err)?;
    info!(
        run_id,
        source = %redact(&source_url),
        replica = %redact(&replica_url),
        tables = work.len(),
        "run started"
    );
    let checked = check_all(&mut sides, config, &mut hist, run_id, &work, opts, &scrub);
    // Whatever happened, no claim of this run outlives it.
    let released = hist.release_claims(run_id);
    let (tables, stopped) = checked.map_err(hist_err)?;
    released.map_err(hist_err)?;
    hist.finish_run(run_id, due::now()).map_err(hist_err)?;
    let outcome = RunOutcome {
        run_id,
        tables,
        source_tables,
        stopped,
    };
    info!(
        run_id,
        status = outcome.status().as_str(),
        stopped,
        "run finished"
    );
    Ok(outcome)
}

fn open_sides(source_url: &str, replica_url: &str, scrub: &Scrub) -> Result<Sides, RunError> {
    Sides::open(source_url, replica_url).map_err(|(side, e)| RunError::Open {
        side,
        message: scrub.apply(&error_chain(&e)),
    })
}

/// The tables to check, with their tiers, narrowed by the options.
fn select(
    config: &Config,
    sides: &mut Sides,
    opts: &RunOptions,
    scrub: &Scrub,
) -> Result<(Vec<String>, Vec<TableTier>), RunError> {
    let names = sides
        .source_tables()
        .map_err(|e| RunError::Tables(scrub.apply(&error_chain(&e))))?;
    let mut work = tiers::assign(config, &names).map_err(|e| RunError::Config(e.to_string()))?;
    for t in &opts.tiers {
        if !config.tiers.contains_key(t) {
            return Err(RunError::Config(format!(
                "--tier {t:?}: the config defines no such tier"
            )));
        }
    }
    for t in &opts.tables {
        if !work.iter().any(|w| &w.table == t) {
            return Err(RunError::Config(format!(
                "--table {t:?}: the source has no such table, or the config excludes it"
            )));
        }
    }
    work.retain(|w| {
        (opts.tiers.is_empty() || opts.tiers.contains(&w.tier))
            && (opts.tables.is_empty() || opts.tables.contains(&w.table))
    });
    // A check of nothing must not read as "in sync".
    if work.is_empty() {
        return Err(RunError::Config(
            "nothing to check: no table of the source is left once the config's \
             exclude_tables and --tier/--table are applied; name a table or loosen the exclusions"
                .into(),
        ));
    }
    Ok((names, work))
}

/// The `min_age` of `t`: the options' override, else its tier's.
fn min_age_of(config: &Config, t: &TableTier, opts: &RunOptions) -> Option<std::time::Duration> {
    match opts.min_age {
        Some(a) => a,
        None => due::min_age(config, &t.tier),
    }
}

/// Runs every selected table; also says whether `stop` cut the run short.
fn check_all(
    sides: &mut Sides,
    config: &Config,
    hist: &mut History,
    run_id: i64,
    work: &[TableTier],
    opts: &RunOptions,
    scrub: &Scrub,
) -> Result<(Vec<TableResults>, bool), HistoryError> {
    let keep = config
        .history
        .as_ref()
        .and_then(|h| h.max_differences)
        .unwrap_or(KEEP_DIFFERENCES) as usize;
    let stopping = || opts.stop.is_some_and(|s| s.load(Ordering::SeqCst));
    let now = opts.now;
    let mut entries = Vec::new();
    for t in work {
        if stopping() {
            return Ok((entries, true));
        }
        let levels: Vec<Level> = match opts.level {
            Some(l) => vec![l],
            None => Level::ALL
                .into_iter()
                .filter(|&l| due::interval(config, &t.tier, l).is_some())
                .collect(),
        };
        let mut results = Vec::new();
        let mut repairs = Vec::new();
        let mut queue: Vec<(Level, bool)> = levels.iter().map(|&l| (l, false)).collect();
        let mut i = 0;
        let mut stopped = false;
        while i < queue.len() {
            if stopping() {
                stopped = true;
                break;
            }
            let (level, escalated) = queue[i];
            i += 1;
            if opts.due {
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
                        info!(run_id, table = %t.table, check_level = %level, "skipped: another checker holds it");
                        results.push(r);
                        continue;
                    }
                }
            }
            info!(run_id, table = %t.table, tier = %t.tier, check_level = %level, escalated, "level started");
            let mut r = level::run(sides, config, t, level, keep, due::now());
            let delay = match opts.recheck_after {
                Some(d) => d,
                None => due::recheck_after(config, &t.tier),
            };
            if let Some(delay) = delay.filter(|_| recheck::worth_it(&r)) {
                info!(run_id, table = %t.table, check_level = %level, seconds = delay.as_secs_f64(), "rechecking differences after a delay");
                std::thread::sleep(delay);
                let again = recheck::read_again(sides, config, t, &r, due::now());
                r = recheck::settle(r, again, delay.as_secs_f64());
            }
            if let Some(age) = min_age_of(config, t, opts) {
                r = recent::set_aside(sides, config, t, r, age, due::now());
            }
            r.escalated = escalated;
            r.error = r.error.map(|e| scrub.apply(&e));
            hist.record(run_id, &r)?;
            log_result(run_id, &r);
            if autorepair::wanted(config, t, level, &r) {
                repairs.push(repair_now(sides, config, hist, run_id, t, &r, scrub)?);
            }
            // A count mismatch names no rows: the keys level does, now.
            let ran_keys = queue[..i].iter().any(|(l, _)| *l == Level::Keys);
            if level == Level::Count && r.status == Status::Drift && !ran_keys {
                queue.retain(|(l, _)| *l != Level::Keys);
                queue.insert(i, (Level::Keys, true));
            }
            results.push(r);
        }
        if !results.is_empty() {
            entries.push(TableResults {
                table: t.clone(),
                results,
                repairs,
            });
        }
        if stopped {
            return Ok((entries, true));
        }
    }
    Ok((entries, false))
}

/// Repairs the confirmed drift `r` found, and records and logs how that
/// went.
fn repair_now(
    sides: &mut Sides,
    config: &Config,
    hist: &mut History,
    run_id: i64,
    t: &TableTier,
    r: &LevelResult,
    scrub: &Scrub,
) -> Result<AutoRepair, HistoryError> {
    // No connection of the check may hold the replica's read lock while
    // the repair waits for its write lock.
    sides.release();
    let (source_url, replica_url) = sides.urls();
    info!(run_id, table = %t.table, check_level = %r.level, rows = r.counts.total(), "repair started");
    let mut a = autorepair::repair(source_url, replica_url, config, t, r);
    a.note = a.note.map(|n| scrub.apply(&n));
    hist.record_repair(&RepairRecord {
        id: 0,
        run_id: Some(run_id),
        at: due::now(),
        origin: "check".into(),
        table: a.table.clone(),
        level: Some(a.level.clone()),
        outcome: a.outcome.as_str().into(),
        planned: a.planned,
        applied: a.applied,
        already_in_sync: a.already_in_sync,
        changed_since: a.changed_since,
        verified: a.verified,
        undo: a.undo.as_ref().map(|p| p.display().to_string()),
        note: a.note.clone(),
    })?;
    let note = a.note.as_deref().unwrap_or("");
    match a.outcome.is_error() {
        true => {
            error!(run_id, table = %a.table, check_level = %a.level, outcome = a.outcome.as_str(), note, "repair failed")
        }
        false => info!(
            run_id,
            table = %a.table,
            check_level = %a.level,
            outcome = a.outcome.as_str(),
            planned = a.planned,
            applied = a.applied,
            already_in_sync = a.already_in_sync,
            changed_since = a.changed_since,
            verified = a.verified,
            note,
            "repair finished"
        ),
    }
    Ok(a)
}

/// The end of one level, as one event.
fn log_result(run_id: i64, r: &LevelResult) {
    let rows = |n: Option<u64>| n.map_or(-1, |n| n as i64);
    macro_rules! event {
        ($lvl:ident) => {
            $lvl!(
                run_id,
                table = %r.table,
                tier = %r.tier,
                check_level = %r.level,
                result = r.status.as_str(),
                escalated = r.escalated,
                source_rows = rows(r.source_rows),
                replica_rows = rows(r.target_rows),
                rows_read = r.rows_read,
                missing = r.counts.missing,
                extra = r.counts.extra,
                changed = r.counts.changed,
                seconds = (r.seconds * 1000.0).round() / 1000.0,
                bytes = r.bytes,
                rechecked = r.rechecked,
                in_flight = r.in_flight.len(),
                error = r.error.as_deref().unwrap_or(""),
                "level finished"
            )
        };
    }
    match r.status {
        Status::Error => error!(
            run_id,
            table = %r.table,
            tier = %r.tier,
            check_level = %r.level,
            result = r.status.as_str(),
            seconds = (r.seconds * 1000.0).round() / 1000.0,
            error = r.error.as_deref().unwrap_or(""),
            "level failed"
        ),
        Status::Drift => event!(warn),
        _ => event!(info),
    }
}

/// An error and its sources, outermost first, as one line.
pub fn error_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut next = e.source();
    while let Some(cause) = next {
        let text = cause.to_string();
        // Many errors already quote their cause in their own message.
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        next = cause.source();
    }
    out
}

/// Cuts the passwords of the config's URLs out of messages (a URL from the
/// file or its variable is not on the command line, where the CLI's own
/// scrubbing looks).
pub struct Scrub {
    urls: Vec<String>,
    secrets: Vec<String>,
}

impl Scrub {
    pub fn new(urls: &[&str]) -> Scrub {
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

    /// The scrubber of a config's two sides (none when they do not
    /// resolve: then no URL was read, and none can be in a message).
    pub fn of_config(config: &Config) -> Scrub {
        match side_urls(config) {
            Ok((s, r)) => Scrub::new(&[&s, &r]),
            Err(_) => Scrub::new(&[]),
        }
    }

    pub fn apply(&self, message: &str) -> String {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scrub_cuts_passwords_and_urls() {
        let url = "postgres://app:Sekr1tPw@db.example/shop";
        let s = Scrub::new(&[url]);
        for message in [
            format!("cannot connect to {url}: refused"),
            "password Sekr1tPw rejected".to_string(),
        ] {
            let out = s.apply(&message);
            assert!(!out.contains("Sekr1tPw"), "{out}");
        }
    }
}
