//! `driftsum demo`: a source and a drifted replica, compared.

use std::path::PathBuf;

use anyhow::Context;
use clap::Args;

use driftsum::check::{self, DiffOptions};
use driftsum::report::model::{now_utc, RunInfo, SideInfo};
use driftsum::report::text::{self, escape_text};
use driftsum::report::Report;
use driftsum::source::sqlite::SqliteSource;

/// Write a small source and replica pair with known drift of every kind to a
/// folder, compare them, and show the result.
#[derive(Args)]
pub struct DemoArgs {
    /// Where to write source.db and replica.db (default: a new folder under
    /// the system's temporary directory). Refused if either file exists
    /// there: the demo never replaces a file it did not create.
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
    Ok(0)
}
