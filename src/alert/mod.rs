//! Alerts: after each check run, incidents are brought up to date in the
//! history ([`incident`]), and each `[[alerts]]` entry ([`rule`]) is sent
//! what it is owed ([`payload`]) by webhook ([`webhook`]) or command
//! ([`command`]), with retries and backoff, every delivery recorded in the
//! history. Nothing here can fail or hold up a check for long: failures
//! are logged on stderr and recorded, and all deliveries of one run share
//! a bounded time. The entry point is [`after_run`].

pub mod command;
pub mod incident;
pub mod metrics;
pub mod payload;
pub mod rule;
pub mod webhook;

use std::time::{Duration, Instant};

use crate::config::{AlertConfig, AlertFormat, AlertTarget, Config};
use crate::history::incident::{Event, Incident, Outcome};
use crate::history::record::LevelResult;
use crate::history::{History, HistoryError};

use rule::Rule;

/// Attempts per delivery (the first and two retries).
const ATTEMPTS: u32 = 3;
/// The wait before the first retry; it doubles for each next one.
const BACKOFF: Duration = Duration::from_millis(500);
/// All deliveries of one run end within this; what is left is owed still
/// and sent after the next run.
const BUDGET: Duration = Duration::from_secs(60);
/// A delivery still marked `sending` this long after it began was left by
/// a checker that died: it is sent again.
const STALE_SECONDS: i64 = 600;
/// A recovery whose delivery failed is tried again after later runs for
/// this long.
const RECOVERED_RETRY_SECONDS: i64 = 86_400;

/// Why one attempt failed, and whether another could go better.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    pub message: String,
    pub retry: bool,
}

impl Failure {
    pub fn retry(message: String) -> Failure {
        Failure {
            message,
            retry: true,
        }
    }

    pub fn permanent(message: String) -> Failure {
        Failure {
            message,
            retry: false,
        }
    }
}

/// What [`after_run`] did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct AfterRun {
    pub delivered: usize,
    pub failed: usize,
    /// Owed, but left for the next run (out of time).
    pub postponed: usize,
}

/// After check run `run` has recorded `results`: updates the incidents and
/// sends the alerts owed at `now`. Never fails: a problem is written to
/// stderr (without URLs or header values) and recorded in the history.
pub fn after_run<'a>(
    hist: &mut History,
    config: &Config,
    run: i64,
    source_tables: &[String],
    results: impl IntoIterator<Item = &'a LevelResult>,
    now: i64,
) -> AfterRun {
    if let Err(e) = incident::track(hist, config, run, source_tables, results, now) {
        eprintln!("driftsum: alerts: cannot update the incidents: {e}");
        return AfterRun::default();
    }
    deliver_owed(hist, config, run, now)
}

/// After a check run failed before reaching any table (a source that
/// cannot be reached, credentials refused, a URL variable unset): the run
/// is recorded, the run's `error` incident ([`payload::RUN_TABLE`],
/// [`payload::RUN_LEVEL`]) opens or continues with `error` (already
/// scrubbed of secrets), and the alerts owed are sent. It closes with the
/// next run that reaches a table. Never fails, like [`after_run`].
pub fn run_failed(config: &Config, error: &str, now: i64) -> AfterRun {
    let opened =
        crate::history::location(config).and_then(|p| History::open(&p).map_err(|e| e.to_string()));
    let mut hist = match opened {
        Ok(h) => h,
        Err(e) => {
            eprintln!("driftsum: alerts: cannot open the run history: {e}");
            return AfterRun::default();
        }
    };
    let run = match incident::run_failed(&mut hist, error, now) {
        Ok(run) => run,
        Err(e) => {
            eprintln!("driftsum: alerts: cannot record the failed run: {e}");
            return AfterRun::default();
        }
    };
    deliver_owed(&mut hist, config, run, now)
}

/// Sends every alert what it is owed at `now`, after run `run`.
fn deliver_owed(hist: &mut History, config: &Config, run: i64, now: i64) -> AfterRun {
    let mut done = AfterRun::default();
    if config.alerts.is_empty() {
        return done;
    }
    let incidents = match hist.incidents(now - RECOVERED_RETRY_SECONDS) {
        Ok(i) => i,
        Err(e) => {
            eprintln!("driftsum: alerts: cannot read the incidents: {e}");
            return done;
        }
    };
    let deadline = Instant::now() + BUDGET;
    for (index, c) in config.alerts.iter().enumerate() {
        let rule = Rule::new(index, c);
        for i in &incidents {
            match deliver(hist, config, c, &rule, i, run, now, deadline) {
                Ok(Some(Outcome::Delivered)) => done.delivered += 1,
                Ok(Some(Outcome::Failed)) => done.failed += 1,
                Ok(Some(Outcome::Sending)) => done.postponed += 1,
                Ok(None) => {}
                Err(e) => {
                    eprintln!("driftsum: alerts: {}: {e}", rule.name);
                    done.failed += 1;
                }
            }
        }
    }
    if done.postponed > 0 {
        eprintln!(
            "driftsum: alerts: {} alert(s) left for the next run: the {}s for sending them ran out",
            done.postponed,
            BUDGET.as_secs()
        );
    }
    done
}

/// Sends one incident to one alert if it is owed something; returns how
/// that went (`Sending`: not attempted, out of time).
#[allow(clippy::too_many_arguments)]
fn deliver(
    hist: &mut History,
    config: &Config,
    c: &AlertConfig,
    rule: &Rule,
    i: &Incident,
    run: i64,
    now: i64,
    deadline: Instant,
) -> Result<Option<Outcome>, HistoryError> {
    // A read first: most incidents are owed nothing, and a claim writes.
    let so_far = hist.deliveries(i.id, &rule.name)?;
    if rule.next(i, &so_far, now).is_none() {
        return Ok(None);
    }
    if Instant::now() >= deadline {
        return Ok(Some(Outcome::Sending));
    }
    let claimed = hist.claim_delivery(i.id, &rule.name, now, now - STALE_SECONDS, |d| {
        rule.next(i, d, now)
    })?;
    let Some((id, event)) = claimed else {
        return Ok(None);
    };
    let started = Instant::now();
    let (attempts, result) = send(config, c, rule, i, event, run, now, deadline);
    let seconds = started.elapsed().as_secs_f64();
    let (outcome, error) = match &result {
        Ok(()) => (Outcome::Delivered, None),
        Err(f) => {
            eprintln!(
                "driftsum: alerts: {} ({}) could not be sent the {} of incident {} ({} {}): {} \
                 after {attempts} attempt(s); it is tried again after the next run",
                rule.name,
                target_name(c),
                event.as_str(),
                i.id,
                i.table,
                i.level,
                f.message
            );
            (Outcome::Failed, Some(f.message.as_str()))
        }
    };
    hist.finish_delivery(id, outcome, attempts, seconds, error)?;
    Ok(Some(outcome))
}

fn target_name(c: &AlertConfig) -> &'static str {
    match c.to {
        AlertTarget::Webhook => "webhook",
        AlertTarget::Command => "command",
    }
}

/// Attempts the delivery up to [`ATTEMPTS`] times, backing off between
/// them, never past `deadline`; returns the attempts made and the result.
#[allow(clippy::too_many_arguments)]
fn send(
    config: &Config,
    c: &AlertConfig,
    rule: &Rule,
    i: &Incident,
    event: Event,
    run: i64,
    now: i64,
    deadline: Instant,
) -> (u32, Result<(), Failure>) {
    let dir = config.dir.as_deref();
    let body = match (c.to, c.format) {
        (AlertTarget::Webhook, AlertFormat::Slack) => payload::slack(i, event, now),
        _ => payload::document(i, event, run, now),
    }
    .to_string();
    let hook = match c.to {
        AlertTarget::Webhook => match webhook::Webhook::new(c, dir) {
            Ok(h) => Some(h),
            Err(f) => return (0, Err(f)),
        },
        AlertTarget::Command => None,
    };
    let mut wait = BACKOFF;
    let mut attempt = 0;
    loop {
        attempt += 1;
        let left = deadline.saturating_duration_since(Instant::now());
        let timeout = rule.timeout.min(left);
        let result = match &hook {
            Some(h) => h.post(body.as_bytes(), timeout),
            None => command::run(
                c.run.as_deref().unwrap_or_default(),
                dir,
                body.as_bytes(),
                timeout,
            ),
        };
        match result {
            Err(f) if f.retry && attempt < ATTEMPTS => {
                if Instant::now() + wait + Duration::from_millis(100) >= deadline {
                    return (attempt, Err(f));
                }
                std::thread::sleep(wait);
                wait *= 2;
            }
            other => return (attempt, other),
        }
    }
}
