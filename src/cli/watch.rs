//! `driftsum watch`: a long-running scheduler running due checks (the claim
//! protocol of `check --due`, so that watchers and cron lines sharing a
//! history never run one (table, level) twice), serving `/metrics`,
//! `/healthz` and the dashboard at `/` (no login on loopback; on any other
//! address only with the agent's kind of token). SIGTERM/SIGINT stop it after the levels running then are
//! recorded (a second one exits at once); SIGHUP reloads the config.
//!
//! Each table is one run, on a worker thread; at most `--concurrency` run
//! at a time, and a table is never run twice at once.

use std::collections::{HashMap, HashSet};
use std::net::TcpListener;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context};
use clap::Args;
use tracing::{debug, error, info, warn};

use driftsum::agent::http;
use driftsum::agent::tls::Stream;
use driftsum::alert::metrics;
use driftsum::config::{parse_interval, Config};
use driftsum::history::{self, History, Status};
use driftsum::plan::due;
use driftsum::plan::run::{self as plan_run, RunError, RunOptions, RunOutcome, Scrub};
use driftsum::plan::schedule;
use driftsum::plan::tiers::TableTier;
use driftsum::report::{dashboard, html};

use super::check::after_run;

/// Run due checks in a loop, as a service, and serve Prometheus metrics.
///
/// Exits 0 after SIGTERM or SIGINT once the checks running then are
/// recorded; 2 when it cannot start (a bad config, the address taken).
#[derive(Args)]
pub struct WatchArgs {
    /// The config file, as for `check` (see docs/watch.md).
    #[arg(long, value_name = "FILE")]
    pub config: PathBuf,
    /// Where to serve /metrics, /healthz and the dashboard at / (HTTP);
    /// "off" serves nothing.
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:9187")]
    pub listen: String,
    /// A file holding the token (at least 16 characters) the dashboard asks
    /// for (`Authorization: Bearer TOKEN`) when --listen is not loopback;
    /// without one, the dashboard is served on loopback only.
    #[arg(long, value_name = "FILE")]
    pub token_file: Option<PathBuf>,
    /// The environment variable holding that token, instead of --token-file.
    #[arg(long, value_name = "NAME", conflicts_with = "token_file")]
    pub token_env: Option<String>,
    /// How many tables are checked at once (each reads both sides).
    #[arg(long, value_name = "N", default_value_t = 1)]
    pub concurrency: usize,
    /// Wait a random time up to this long (e.g. 30s) before each table's
    /// check, so that watchers and tables do not all start at once.
    #[arg(long, value_name = "INTERVAL", default_value = "off")]
    pub jitter: String,
}

static STOP: AtomicBool = AtomicBool::new(false);
static RELOAD: AtomicBool = AtomicBool::new(false);

extern "C" fn on_signal(sig: libc::c_int) {
    // Only atomics and _exit here: both are async-signal-safe.
    if sig == libc::SIGHUP {
        RELOAD.store(true, Ordering::SeqCst);
    } else if STOP.swap(true, Ordering::SeqCst) {
        // A second SIGTERM/SIGINT: the user will not wait. Claims of a dead
        // process on this host expire at once.
        unsafe { libc::_exit(130) };
    }
}

fn install_signals() {
    for sig in [libc::SIGTERM, libc::SIGINT, libc::SIGHUP] {
        // SAFETY: the handler only touches atomics and calls _exit.
        unsafe {
            libc::signal(sig, on_signal as *const () as libc::sighandler_t);
        }
    }
}

/// How long the loop sleeps between looks at the clock and the signals.
const TICK: Duration = Duration::from_millis(200);

/// How often the source's table list is read again.
const TABLES_EVERY: Duration = Duration::from_secs(60);

/// How long a table waits after a failed or skipped run, at most.
const RETRY_MAX: Duration = Duration::from_secs(60);

/// A table's run, done (`None`: not started, the watcher is stopping).
struct Done {
    table: TableTier,
    result: Option<Result<RunOutcome, RunError>>,
}

/// What the HTTP thread shows.
struct Shared {
    config: Mutex<Config>,
    /// Why the watcher is unhealthy, if it is.
    trouble: Mutex<Option<String>>,
    /// The dashboard's token; `None` on loopback, where none is asked.
    token: Option<String>,
    /// Listening beyond loopback without a token: the dashboard is refused.
    dashboard_off: bool,
}

pub fn run(args: WatchArgs) -> anyhow::Result<u8> {
    if args.concurrency == 0 {
        bail!("--concurrency 0: give at least 1");
    }
    let jitter = parse_interval(&args.jitter)
        .map_err(|e| anyhow!("--jitter: {e}"))?
        .unwrap_or_default();
    let mut config = Config::load(&args.config)?;
    let mut scrub = Scrub::of_config(&config);
    // A config that cannot say what to check is refused now; a source that
    // is down is retried.
    let mut tables = match plan_run::tables(&config, &RunOptions::default()) {
        Ok(t) => Some(t),
        Err(e @ (RunError::Open { .. } | RunError::Tables(_))) => {
            error!(error = %e, "cannot list the source's tables; retrying");
            None
        }
        Err(e @ RunError::Url(_)) => bail!("config file {}: {e}", args.config.display()),
        Err(e) => bail!(e),
    };
    let mut listed = Instant::now();
    let token = super::serve::token(args.token_file.as_deref(), args.token_env.as_deref())?;
    let listener = match args.listen.as_str() {
        "off" => None,
        addr => Some(
            TcpListener::bind(addr)
                .with_context(|| format!("--listen {addr}: cannot listen there"))?,
        ),
    };
    let addr = listener.as_ref().map(TcpListener::local_addr).transpose()?;
    let loopback = addr.is_none_or(|a| a.ip().is_loopback());
    let shared = Arc::new(Shared {
        config: Mutex::new(config.clone()),
        trouble: Mutex::new(None),
        dashboard_off: !loopback && token.is_none(),
        token: token.filter(|_| !loopback),
    });
    if let (Some(listener), Some(addr)) = (listener, addr) {
        if shared.dashboard_off {
            warn!(listen = %addr, "not loopback and no token: the dashboard at / is refused");
        }
        info!(listen = %addr, "serving /, /metrics and /healthz");
        let shared = Arc::clone(&shared);
        std::thread::spawn(move || serve(listener, &shared));
    }
    install_signals();
    info!(config = %args.config.display(), concurrency = args.concurrency, "watch started");
    let (tx, rx) = mpsc::channel::<Done>();
    let mut running: HashSet<String> = HashSet::new();
    let mut not_before: HashMap<String, Instant> = HashMap::new();
    let mut hist: Option<History> = None;
    while !STOP.load(Ordering::SeqCst) {
        if RELOAD.swap(false, Ordering::SeqCst) {
            match Config::load(&args.config) {
                Ok(c) => {
                    info!(config = %args.config.display(), "config reloaded");
                    config = c;
                    scrub = Scrub::of_config(&config);
                    *lock(&shared.config) = config.clone();
                    tables = None;
                    hist = None;
                    not_before.clear();
                }
                Err(e) => error!(error = %e, "config not reloaded; keeping the previous one"),
            }
        }
        if tables.is_none() || listed.elapsed() >= TABLES_EVERY {
            listed = Instant::now();
            match plan_run::tables(&config, &RunOptions::default()) {
                Ok(t) => {
                    tables = Some(t);
                    *lock(&shared.trouble) = None;
                }
                Err(e) => {
                    let e = scrub.apply(&e.to_string());
                    error!(error = %e, "cannot list the source's tables");
                    *lock(&shared.trouble) = Some(e);
                }
            }
        }
        if let Some(work) = &tables {
            if hist.is_none() {
                hist = open_history(&config);
            }
            if let Some(h) = &hist {
                dispatch(
                    &config,
                    h,
                    work,
                    &mut running,
                    &not_before,
                    args.concurrency,
                    jitter,
                    &tx,
                );
            }
        }
        match rx.recv_timeout(TICK) {
            Ok(done) => finished(&config, done, &mut running, &mut not_before),
            Err(mpsc::RecvTimeoutError::Timeout) => {}
            Err(mpsc::RecvTimeoutError::Disconnected) => unreachable!("the loop holds a sender"),
        }
    }
    info!(
        running = running.len(),
        "stopping: waiting for the checks running now"
    );
    while !running.is_empty() {
        match rx.recv() {
            Ok(done) => finished(&config, done, &mut running, &mut not_before),
            Err(_) => break,
        }
    }
    info!("watch stopped");
    Ok(0)
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

fn open_history(config: &Config) -> Option<History> {
    let opened = history::location(config)
        .map_err(|e| anyhow!(e))
        .and_then(|p| History::open(&p).map_err(|e| anyhow!(e)));
    match opened {
        Ok(h) => Some(h),
        Err(e) => {
            error!(error = %format!("{e:#}"), "cannot open the run history");
            None
        }
    }
}

/// Starts a run for each table that is due, not running, not waiting out
/// a failure, while workers are free.
#[allow(clippy::too_many_arguments)]
fn dispatch(
    config: &Config,
    hist: &History,
    work: &[TableTier],
    running: &mut HashSet<String>,
    not_before: &HashMap<String, Instant>,
    concurrency: usize,
    jitter: Duration,
    tx: &mpsc::Sender<Done>,
) {
    let now = due::now();
    for t in work {
        if running.len() >= concurrency {
            return;
        }
        if running.contains(&t.table)
            || not_before
                .get(&t.table)
                .is_some_and(|&i| i > Instant::now())
        {
            continue;
        }
        match schedule::next_due(config, hist, t, now) {
            Ok(Some(at)) if at <= now => {}
            Ok(_) => continue,
            Err(e) => {
                error!(error = %e, "cannot read the run history");
                return;
            }
        }
        running.insert(t.table.clone());
        let (config, t, tx) = (config.clone(), t.clone(), tx.clone());
        let wait = random_below(jitter);
        std::thread::spawn(move || {
            if !wait.is_zero() {
                debug!(table = %t.table, seconds = wait.as_secs_f64(), "jitter");
                let until = Instant::now() + wait;
                while Instant::now() < until && !STOP.load(Ordering::SeqCst) {
                    std::thread::sleep(TICK.min(until.saturating_duration_since(Instant::now())));
                }
            }
            let opts = RunOptions {
                tables: vec![t.table.clone()],
                due: true,
                now: due::now(),
                stop: Some(&STOP),
                ..RunOptions::default()
            };
            let result = match STOP.load(Ordering::SeqCst) {
                true => None,
                false => Some(plan_run::run(&config, &opts)),
            };
            let _ = tx.send(Done { table: t, result });
        });
    }
}

/// Takes a finished run in: metrics (and alerts) after it, and when the
/// table may run again.
fn finished(
    config: &Config,
    done: Done,
    running: &mut HashSet<String>,
    not_before: &mut HashMap<String, Instant>,
) {
    running.remove(&done.table.table);
    let retry = schedule::shortest_interval(config, &done.table.tier)
        .unwrap_or(RETRY_MAX)
        .clamp(Duration::from_secs(1), RETRY_MAX);
    // Even a clean run waits a second: the history, not a busy loop, says
    // when it is due again.
    let mut wait = Duration::from_secs(1);
    match &done.result {
        None => {}
        Some(Ok(outcome)) => {
            after_run(config, outcome);
            let troubled = outcome
                .tables
                .iter()
                .flat_map(|t| &t.results)
                .any(|r| matches!(r.status, Status::Error | Status::Skipped));
            if troubled {
                wait = retry;
            }
        }
        Some(Err(e)) => {
            warn!(table = %done.table.table, error = %e, "check failed");
            if super::check::reached_no_table(e) {
                driftsum::alert::run_failed(config, &e.to_string(), due::now());
            }
            wait = retry;
        }
    }
    not_before.insert(done.table.table, Instant::now() + wait);
}

/// A random duration below `max` (zero for zero): jitter needs no more
/// than std's randomly keyed hasher.
fn random_below(max: Duration) -> Duration {
    use std::hash::BuildHasher;
    let nanos = max.as_nanos().min(u64::MAX as u128) as u64;
    if nanos == 0 {
        return Duration::ZERO;
    }
    let h = std::collections::hash_map::RandomState::new().hash_one(Instant::now());
    Duration::from_nanos(h % nanos)
}

/// Answers /metrics and /healthz, one connection at a time, each under a
/// short deadline.
fn serve(listener: TcpListener, shared: &Shared) {
    for conn in listener.incoming() {
        let Ok(tcp) = conn else { continue };
        let Ok(mut stream) = Stream::accept(tcp, None) else {
            continue;
        };
        let timeout = Duration::from_secs(5);
        let Ok(req) = http::read_request(&mut stream, timeout, 0) else {
            continue;
        };
        let (status, kind, body) = answer(&req, shared);
        let body = if req.method == "HEAD" {
            String::new()
        } else {
            body
        };
        let _ = http::write_response(&mut stream, status, kind, body.as_bytes(), timeout);
    }
}

const TEXT: &str = "text/plain; charset=utf-8";

fn answer(req: &http::Request, shared: &Shared) -> (u16, &'static str, String) {
    if req.method != "GET" && req.method != "HEAD" {
        return (405, TEXT, "only GET\n".into());
    }
    match req.path.as_str() {
        "/" | "/index.html" => dashboard_page(req, shared),
        "/metrics" => {
            let config = lock(&shared.config).clone();
            match metrics::render_config(&config) {
                Ok(text) => (200, "text/plain; version=0.0.4; charset=utf-8", text),
                Err(e) => {
                    let e = Scrub::of_config(&config).apply(&e.to_string());
                    error!(error = %e, "rendering /metrics");
                    (500, TEXT, format!("{e}\n"))
                }
            }
        }
        "/healthz" => match lock(&shared.trouble).clone() {
            None => (200, TEXT, "ok\n".into()),
            Some(e) => (503, TEXT, format!("{e}\n")),
        },
        _ => (404, TEXT, "not found: try /, /metrics or /healthz\n".into()),
    }
}

/// The dashboard, gathered afresh for each request.
fn dashboard_page(req: &http::Request, shared: &Shared) -> (u16, &'static str, String) {
    if shared.dashboard_off {
        return (
            403,
            TEXT,
            "the dashboard is served beyond loopback only with a token: start watch with \
             --token-file FILE (or --token-env NAME) and send Authorization: Bearer TOKEN\n"
                .into(),
        );
    }
    if let Some(token) = &shared.token {
        let given = req.token.as_deref().unwrap_or("");
        if !driftsum::agent::auth::token_matches(given.as_bytes(), token.as_bytes()) {
            return (401, TEXT, "wrong or missing token\n".into());
        }
    }
    let config = lock(&shared.config).clone();
    let now = due::now();
    // The page shows the last 30 days, as `report` does by default.
    match dashboard::gather(&config, now, now - 30 * 86_400) {
        Ok(page) => (200, "text/html; charset=utf-8", html::render(&page)),
        Err(e) => {
            let e = Scrub::of_config(&config).apply(&e.to_string());
            error!(error = %e, "rendering the dashboard");
            (500, TEXT, format!("{e}\n"))
        }
    }
}
