//! `driftsum diff`: compare tables of two databases.

use anyhow::Context;
use clap::{Args, ValueEnum};

use driftsum::check::endpoint::Opened;
use driftsum::check::{self, DiffOptions, Discard, TablePair};
use driftsum::report::stream::JsonStream;
use driftsum::report::{text, Report};

use super::progress::ScanProgress;
use super::rows::RowArgs;

#[derive(Clone, Copy, Debug, ValueEnum, PartialEq, Eq)]
pub enum Format {
    Text,
    Json,
}

/// Compare tables of a source and a replica; report drifted key ranges and
/// every row that differs (missing, extra, changed).
///
/// Exit codes: 0 in sync, 1 drift found, 2 error (a table that could not be
/// compared is reported, and the others are still compared).
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
    #[arg(long, value_name = "URL")]
    pub source: String,
    /// The replica, in the same forms as --source.
    #[arg(long, value_name = "URL")]
    pub target: String,
    /// A file holding the token of the agent(s) named by --source or
    /// --target (the same token for both).
    #[arg(long, value_name = "FILE")]
    pub token_file: Option<std::path::PathBuf>,
    /// The CA (PEM) that signed the certificate of the agent(s) named by
    /// --source or --target: they are then spoken to over HTTPS, trusting
    /// this CA only (`serve --tls-cert`).
    #[arg(long, value_name = "FILE")]
    pub ca: Option<std::path::PathBuf>,
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
}

pub fn run(args: DiffArgs) -> anyhow::Result<u8> {
    let config = args.rows.config()?;
    let token = match &args.token_file {
        Some(path) => Some(super::serve::read_token(path)?),
        None => None,
    };
    let mut src = Opened::open(&args.source, token.as_deref()).context("opening the source")?;
    let mut tgt = Opened::open(&args.target, token.as_deref()).context("opening the target")?;
    if let Some(ca) = &args.ca {
        let tls = driftsum::agent::tls::ClientTls::from_ca_file(ca)?;
        let mut agents = 0;
        for side in [&mut src, &mut tgt] {
            if let Opened::Agent(client) = side {
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
    let opts = DiffOptions {
        tables: args
            .tables
            .iter()
            .map(|t| match t.contains('=') {
                true => TablePair::parse(t),
                false => TablePair {
                    source: t.clone(),
                    target: config.replica_table(t),
                },
            })
            .collect(),
        columns: args.rows.choice(),
        canon: args.rows.canon(),
        shape: args.rows.shape(),
        config,
        // The full list streams to the JSON report; text lists the first.
        keep_differences: Some(check::SAMPLE),
    };
    let progress = ScanProgress::new();
    let mut json = (args.format == Format::Json)
        .then(|| JsonStream::new(std::io::BufWriter::new(std::io::stdout().lock())));
    let mut discard = Discard;
    let run = check::diff_endpoints_to(
        &mut src.endpoint(),
        &mut tgt.endpoint(),
        &opts,
        &|side, rows| progress.update(side, rows),
        match &mut json {
            Some(j) => j,
            None => &mut discard,
        },
    );
    progress.finish();
    let run = run?;
    match json {
        Some(j) => {
            j.finish().context("writing the report")?;
        }
        None => {
            let report = Report::from_outcome(&run);
            match args.costs {
                true => print!("{}", text::render_with_costs(&report)),
                false => print!("{}", text::render(&report)),
            }
        }
    }
    Ok(run.exit_code())
}
