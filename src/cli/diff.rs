//! `driftsum diff`: compare tables of two databases.

use std::collections::HashMap;

use anyhow::Context;
use clap::{Args, ValueEnum};

use driftsum::check::endpoint::Endpoint;
use driftsum::check::{self, DiffOptions, DiffSink, Discard, TablePair};
use driftsum::config::Config;
use driftsum::report::model::{now_utc, RunInfo, SideInfo};
use driftsum::report::stream::JsonStream;
use driftsum::report::{text, Report};

use super::background::Background;
use super::progress::{Mode, ScanProgress, Tracking};
use super::rows::RowArgs;
use super::Verbosity;

#[derive(Clone, Copy, Debug, ValueEnum, PartialEq, Eq)]
pub enum Format {
    Text,
    Json,
}

/// Compare tables of a source and a replica; report drifted key ranges and
/// every row that differs (missing, extra, changed).
///
/// Exit codes: 0 in sync, 1 drift found, 2 error (a table that could not be
/// compared is reported, and the others are still compared; 2 wins over 1).
/// Under --format json even an error that stops the run (a side that cannot
/// be opened) prints a JSON document, with `"status": "error"`.
#[derive(Args)]
pub struct DiffArgs {
    /// The source: a database URL (sqlite:PATH, postgres://USER@HOST:PORT/DB
    /// or mysql://USER@HOST:PORT/DB; passwords may be given, and are never
    /// shown), a tree file (tree:PATH or PATH.dstree, from `driftsum build`)
    /// or an agent (driftsum://HOST:PORT, from `driftsum serve`). TLS to a
    /// server: ?sslmode=disable|prefer|require|verify-ca|verify-full and
    /// &sslrootcert=FILE (PostgreSQL), ?ssl-mode=DISABLED|PREFERRED|REQUIRED|
    /// VERIFY_CA|VERIFY_IDENTITY and &ssl-ca=FILE (MySQL); the default is
    /// prefer / PREFERRED, as in psql and mysql (docs/tls.md).
    /// Without it, the --config file's [source].
    #[arg(
        long,
        value_name = "URL",
        required_unless_present = "config",
        default_value = "",
        hide_default_value = true
    )]
    pub source: String,
    /// The replica, in the same forms as --source (without it, the --config
    /// file's [replica]).
    #[arg(
        long,
        value_name = "URL",
        required_unless_present = "config",
        default_value = "",
        hide_default_value = true
    )]
    pub target: String,
    /// A file holding the token of the agent(s) named by --source or
    /// --target (the same token for both; without it, each side's
    /// token_file or token_env in the --config file).
    #[arg(long, value_name = "FILE")]
    pub token_file: Option<std::path::PathBuf>,
    /// The environment variable holding that token, instead of --token-file.
    #[arg(long, value_name = "NAME", conflicts_with = "token_file")]
    pub token_env: Option<String>,
    /// The CA (PEM) that signed the certificate of the agent(s) named by
    /// --source or --target: they are then spoken to over HTTPS, trusting
    /// this CA only (`serve --tls-cert`).
    #[arg(long, value_name = "FILE")]
    pub ca: Option<std::path::PathBuf>,
    /// Talk plain HTTP to an agent on another machine (without --ca the
    /// token would cross the network in clear text, so that is refused
    /// unless this says the network is trusted).
    #[arg(long)]
    pub insecure_plaintext: bool,
    /// A table to compare, or SOURCE_NAME=REPLICA_NAME when the replica names
    /// it differently; repeat for more. Default: every table both sides have
    /// (tables on one side only are reported).
    #[arg(long = "table", value_name = "NAME")]
    pub tables: Vec<String>,
    #[command(flatten)]
    pub rows: RowArgs,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
    /// In the text report, show what every table's comparison exchanged
    /// between the sides, tree level by tree level (JSON always has it).
    #[arg(long)]
    pub costs: bool,
    /// Counts only: a line per table and the run's totals (in JSON, no
    /// lists of ranges or differences).
    #[arg(long)]
    pub summary: bool,
    /// Show progress on stderr even when it is not a terminal: one line per
    /// table as it finishes, for logs. (On a terminal a progress bar shows
    /// unless --quiet.)
    #[arg(long)]
    pub progress: bool,
}

impl DiffArgs {
    /// The sides' URLs: as given, else the config file's [source] and
    /// [replica].
    pub fn sides(&self, config: &Config) -> anyhow::Result<(String, String)> {
        let pick = |given: &str, side: &Option<driftsum::config::SideConfig>, place: &str| match (
            given.is_empty(),
            side,
        ) {
            (false, _) => Ok(given.to_string()),
            (true, Some(s)) => s
                .resolve(place, config.dir.as_deref())
                .map_err(anyhow::Error::msg),
            (true, None) => Err(anyhow::anyhow!(
                "give --{} URL, or a [{place}] in the --config file",
                if place == "source" {
                    "source"
                } else {
                    "target"
                }
            )),
        };
        Ok((
            pick(&self.source, &config.source, "source")?,
            pick(&self.target, &config.replica, "replica")?,
        ))
    }

    /// The `--table` pairs: `SOURCE=REPLICA` as written, a bare name paired
    /// with the config's replica name for it.
    pub fn table_pairs(&self, config: &Config) -> Vec<TablePair> {
        self.tables
            .iter()
            .map(|t| match t.contains('=') {
                true => TablePair::parse(t),
                false => TablePair {
                    source: t.clone(),
                    target: config.replica_table(t),
                },
            })
            .collect()
    }
}

/// Both sides opened, and the settings read.
struct Ready {
    config: Config,
    src: Endpoint<'static>,
    tgt: Endpoint<'static>,
}

/// Opens both sides; `info` names them (passwords hidden) as soon as they
/// are known, so that a report of a failed open says what was opened.
fn open(args: &DiffArgs, info: &mut RunInfo) -> anyhow::Result<Ready> {
    let config = args.rows.config()?;
    let (source, target) = args.sides(&config)?;
    info.source = SideInfo::new(&source);
    info.target = SideInfo::new(&target);
    let given = super::serve::token(args.token_file.as_deref(), args.token_env.as_deref())?;
    // The command line's token serves both sides; else each side's own
    // from the config file (never the token itself in argv).
    let token = |side: &Option<driftsum::config::SideConfig>, place: &str| match (&given, side) {
        (Some(t), _) => Ok(Some(t.clone())),
        (None, Some(s)) => s
            .token(place, config.dir.as_deref())
            .map_err(anyhow::Error::msg),
        (None, None) => Ok(None),
    };
    let (src_token, tgt_token) = (
        token(&config.source, "source")?,
        token(&config.replica, "replica")?,
    );
    let mut src = Endpoint::open(&source, src_token.as_deref()).context("opening the source")?;
    let mut tgt = Endpoint::open(&target, tgt_token.as_deref()).context("opening the target")?;
    if let Some(ca) = &args.ca {
        let tls = driftsum::agent::tls::ClientTls::from_ca_file(ca)?;
        let mut agents = 0;
        for side in [&mut src, &mut tgt] {
            if let Endpoint::Agent(client) = side {
                client.use_tls(tls.clone());
                agents += 1;
            }
        }
        anyhow::ensure!(
            agents > 0,
            "--ca is for an agent (driftsum://HOST:PORT), and neither side is one; \
             a database's CA goes in its URL (sslrootcert=FILE, ssl-ca=FILE)"
        );
    }
    // The token goes with every request: never in clear text across a
    // network unless the user says that network is trusted.
    if args.ca.is_none() && !args.insecure_plaintext {
        for side in [&src, &tgt] {
            if let Endpoint::Agent(client) = side {
                anyhow::ensure!(
                    driftsum::agent::tls::is_loopback(client.addr()),
                    "refusing to send the agent token to driftsum://{} in clear text: give \
                     --ca FILE for an agent serving HTTPS (serve --tls-cert/--tls-key), or \
                     --insecure-plaintext on a network you trust",
                    client.addr()
                );
            }
        }
    }
    Ok(Ready { config, src, tgt })
}

/// Estimated rows of each table to compare, by source name: the source's
/// statistics, else the replica's.
fn estimates(ready: &mut Ready, pairs: &[TablePair]) -> HashMap<String, u64> {
    let mut out = HashMap::new();
    let names: Vec<TablePair> = match pairs.is_empty() {
        false => pairs.to_vec(),
        true => match &mut ready.src {
            Endpoint::Db(s) => s
                .tables()
                .unwrap_or_default()
                .into_iter()
                .map(|t| TablePair {
                    target: ready.config.replica_table(&t),
                    source: t,
                })
                .collect(),
            _ => Vec::new(),
        },
    };
    for p in names {
        let from_source = match &mut ready.src {
            Endpoint::Db(s) => s.estimate_rows(&p.source),
            _ => None,
        };
        let estimate = from_source.or_else(|| match &mut ready.tgt {
            Endpoint::Db(t) => t.estimate_rows(&p.target),
            _ => None,
        });
        if let Some(e) = estimate {
            out.insert(p.source, e);
        }
    }
    out
}

pub fn run(args: DiffArgs, v: Verbosity) -> anyhow::Result<u8> {
    // Named by `open` once the sides are known (they may come from the
    // config file).
    let mut info = RunInfo {
        source: SideInfo::new(&args.source),
        target: SideInfo::new(&args.target),
        started_at: now_utc(),
        finished_at: String::new(),
    };
    let json = args.format == Format::Json;
    let mut ready = match open(&args, &mut info) {
        Ok(r) => r,
        Err(e) if json => {
            // A JSON reader gets a document saying why; stderr gets the
            // message too.
            info.finished_at = now_utc();
            let out = std::io::BufWriter::new(std::io::stdout().lock());
            let stream = JsonStream::new(out, &info, args.summary)?;
            stream
                .fail(&info, super::error_message(&e))
                .context("writing the report")?;
            return Err(e);
        }
        Err(e) => return Err(e),
    };
    if v.verbose > 0 {
        eprintln!(
            "driftsum: comparing {} with {}",
            text::escape_text(&ready.src.describe()),
            text::escape_text(&ready.tgt.describe())
        );
    }
    let tables = args.table_pairs(&ready.config);
    let mode = Mode::choose(v.quiet, args.progress || v.verbose > 0);
    let estimates = match mode {
        Mode::Off => HashMap::new(),
        _ => estimates(&mut ready, &tables),
    };
    let Ready {
        config,
        mut src,
        mut tgt,
    } = ready;
    let opts = DiffOptions {
        tables,
        columns: args.rows.choice(),
        canon: args.rows.canon(),
        shape: args.rows.shape(),
        config,
        // The full list streams to the JSON report; text lists the first.
        keep_differences: Some(check::SAMPLE),
    };
    let progress = ScanProgress::new(mode, estimates);
    let mut json_out = match json {
        // Formatted here, written on a thread of its own: a report of
        // every row of a table is written while the rows are compared.
        true => Some(JsonStream::new(Background::stdout()?, &info, args.summary)?),
        false => None,
    };
    let mut discard = Discard;
    let mut sink = Tracking {
        inner: match &mut json_out {
            Some(j) => j as &mut dyn DiffSink,
            None => &mut discard,
        },
        progress: &progress,
    };
    let run = check::diff_endpoints_to(
        &mut src,
        &mut tgt,
        &opts,
        &|side, rows| progress.update(side, rows),
        &mut sink,
    );
    progress.finish();
    info.finished_at = now_utc();
    let run = match (run, json_out) {
        (Ok(run), Some(j)) => {
            j.finish(&info, &run).context("writing the report")?;
            run
        }
        (Err(e), Some(j)) => {
            let e = anyhow::Error::from(e);
            // Best effort: the report's own writer may be what failed.
            let _ = j.fail(&info, super::error_message(&e));
            return Err(e);
        }
        (run, None) => {
            let run = run?;
            let report = Report::new(&info, &run);
            let out = match (args.summary, args.costs) {
                (true, _) => text::render_summary(&report),
                (false, true) => text::render_with_costs(&report),
                (false, false) if v.quiet => text::render_drift(&report),
                (false, false) => text::render(&report),
            };
            print!("{out}");
            run
        }
    };
    Ok(run.exit_code())
}
