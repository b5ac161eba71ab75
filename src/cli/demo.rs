//! `driftsum demo`: a source and a drifted replica, compared; then the
//! whole loop on them: a config with two tiers, `check` finding the drift,
//! `repair`, `check` in sync, and the dashboard of that history.

use std::path::PathBuf;

use anyhow::Context;
use clap::Args;

use driftsum::check::{self, DiffOptions};
use driftsum::config::Config;
use driftsum::history::Status;
use driftsum::plan::{self, due};
use driftsum::repair::{self, Guard, RepairOptions};
use driftsum::report::model::{now_utc, RunInfo, SideInfo};
use driftsum::report::text::{self, escape_text};
use driftsum::report::Report;
use driftsum::report::{dashboard, html};
use driftsum::source::sqlite::SqliteSource;

/// Write a small source and replica pair with known drift of every kind to a
/// folder, compare them, and show the result; then write a config with two
/// tiers beside them, check (drift found), repair, check again (in sync)
/// and write the dashboard of that history (status.html) to the folder.
#[derive(Args)]
pub struct DemoArgs {
    /// Where to write source.db and replica.db, and the folder watched/ (a
    /// copy of them, driftsum.toml, its history and status.html); default: a
    /// new folder under the system's temporary directory. Refused if any of
    /// them exists there: the demo never replaces a file it did not create.
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,
}

pub fn run(args: DemoArgs) -> anyhow::Result<u8> {
    let dir = match args.dir {
        Some(d) => {
            std::fs::create_dir_all(&d).with_context(|| format!("creating {}", d.display()))?;
            d
        }
        // A new folder with a random name, created here: nothing in it can
        // have been planted by anyone else.
        None => tempfile::Builder::new()
            .prefix("driftsum-demo-")
            .tempdir()
            .context("creating a folder for the demo")?
            .keep(),
    };
    // The loop runs on a copy of the pair in a folder of its own, so that
    // the pair keeps its drift for the commands the README shows next.
    let watched = dir.join("watched");
    // Refused before anything is written (the pair first, as write_demo
    // would refuse it).
    for p in [
        dir.join("source.db"),
        dir.join("replica.db"),
        watched.clone(),
    ] {
        if std::fs::symlink_metadata(&p).is_ok() {
            anyhow::bail!(
                "{} already exists; the demo writes only new files and never replaces one: \
                 remove it, or give another --dir",
                p.display()
            );
        }
    }
    let (src_path, rep_path) = driftsum::demo::write_demo(&dir)?;
    let show = |p: &std::path::Path| escape_text(&p.display().to_string()).into_owned();
    println!("Wrote a source and a replica with known drift:");
    println!("  {}", show(&src_path));
    println!("  {}", show(&rep_path));
    for d in driftsum::demo::DEMO_DRIFT {
        println!("  - {d}");
    }
    println!(
        "The replica also stores decimals as REAL, timestamps as Unix seconds, booleans as 0/1\n\
         and dates as Julian days: that is not drift.\n"
    );
    println!(
        "$ driftsum diff --source sqlite:{} --target sqlite:{}\n",
        show(&src_path),
        show(&rep_path)
    );
    let mut src = SqliteSource::open(&src_path)?;
    let mut rep = SqliteSource::open(&rep_path)?;
    let started_at = now_utc();
    let run = check::diff(&mut src, &mut rep, &DiffOptions::default(), &|_, _| {})?;
    let info = RunInfo {
        source: SideInfo::new(&format!("sqlite:{}", src_path.display())),
        target: SideInfo::new(&format!("sqlite:{}", rep_path.display())),
        started_at,
        finished_at: now_utc(),
    };
    print!("{}", text::render(&Report::new(&info, &run)));
    println!(
        "\n(exit code would be {}: 0 in sync, 1 drift found, 2 error)",
        run.exit_code()
    );
    // The repair writes the replica: these readers let go of it first.
    drop((src, rep));
    std::fs::create_dir(&watched).with_context(|| format!("creating {}", watched.display()))?;
    let (src_copy, rep_copy) = (watched.join("source.db"), watched.join("replica.db"));
    for (from, to) in [(&src_path, &src_copy), (&rep_path, &rep_copy)] {
        std::fs::copy(from, to).with_context(|| format!("copying to {}", to.display()))?;
    }
    println!(
        "\nThe same pair, watched: a copy in {}, with a config of two tiers.",
        show(&watched)
    );
    the_loop(
        &watched.join("driftsum.toml"),
        &watched.join("status.html"),
        &src_copy,
        &rep_copy,
    )?;
    Ok(0)
}

/// Two tiers: `orders` is critical (checked often, to the row), the rest
/// standard.
const CONFIG: &str = r#"# Written by driftsum demo: the source and replica beside this file.
[source]
url = "sqlite:source.db"
[replica]
url = "sqlite:replica.db"
# The run history defaults to driftsum-history.sqlite beside this file.

[tiers.critical]
count = "5m"
keys = "15m"
full = "6h"

[tiers.standard]
count = "1h"
keys = "1d"
full = "7d"

[defaults]
tier = "standard"

[tables.orders]
tier = "critical"
"#;

/// The config, check, repair, check again, the dashboard.
fn the_loop(
    config_path: &std::path::Path,
    page_path: &std::path::Path,
    src_path: &std::path::Path,
    rep_path: &std::path::Path,
) -> anyhow::Result<()> {
    let show = |p: &std::path::Path| escape_text(&p.display().to_string()).into_owned();
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(config_path)
        .and_then(|mut f| std::io::Write::write_all(&mut f, CONFIG.as_bytes()))
        .with_context(|| format!("writing {}", config_path.display()))?;
    println!(
        "{} puts orders in a critical tier and the rest in a standard one.",
        show(config_path)
    );
    let config = Config::load(config_path)?;
    println!("\n$ driftsum check --config {}", show(config_path));
    check_once(&config)?;
    let (src_url, rep_url) = (
        format!("sqlite:{}", src_path.display()),
        format!("sqlite:{}", rep_path.display()),
    );
    println!(
        "\n$ driftsum repair --source sqlite:{} --target sqlite:{} --apply",
        show(src_path),
        show(rep_path)
    );
    let opts = RepairOptions {
        diff: DiffOptions::default(),
        guard: Guard {
            max_rows: 10_000,
            max_share: 10.0,
        },
        busy: std::time::Duration::from_secs(5),
    };
    let planned = repair::plan(&src_url, &rep_url, &opts)?;
    let applied = repair::apply(&src_url, &rep_url, &planned, &opts)?;
    print!("{}", repair::show::applied(&applied));
    println!("\n$ driftsum check --config {}", show(config_path));
    check_once(&config)?;
    let now = due::now();
    let page = dashboard::gather(&config, now, i64::MIN)?;
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(page_path)
        .and_then(|mut f| std::io::Write::write_all(&mut f, html::render(&page).as_bytes()))
        .with_context(|| format!("writing {}", page_path.display()))?;
    println!(
        "\n$ driftsum report --config {} --out {}",
        show(config_path),
        show(page_path)
    );
    let abs = std::fs::canonicalize(page_path).unwrap_or_else(|_| page_path.to_path_buf());
    println!("Open the dashboard: file://{}", show(&abs));
    Ok(())
}

/// One `check` of every level, recorded, its incidents opened or closed,
/// and a line per (table, level).
fn check_once(config: &Config) -> anyhow::Result<()> {
    let opts = plan::run::RunOptions {
        now: due::now(),
        ..plan::run::RunOptions::default()
    };
    let outcome = plan::run::run(config, &opts)?;
    super::check::after_run(config, &outcome);
    for t in &outcome.tables {
        for r in &t.results {
            let c = &r.counts;
            let what = match r.status {
                Status::Drift if r.outcome.is_some() => format!(
                    ": {} missing, {} extra, {} changed",
                    c.missing, c.extra, c.changed
                ),
                _ => String::new(),
            };
            println!(
                "  {:<10} {:<9} {:<5} {}{what}",
                escape_text(&t.table.table),
                escape_text(&t.table.tier),
                r.level,
                r.status.as_str()
            );
        }
    }
    println!("  {}", outcome.status().as_str());
    Ok(())
}
