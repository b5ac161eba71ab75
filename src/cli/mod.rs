//! Command-line interface: argument parsing, output and exit codes. No logic
//! of its own: every command calls the library.

mod bench;
mod build;
mod check;
mod demo;
mod diff;
mod history;
mod outpath;
mod progress;
mod rows;
mod secrets;
mod serve;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

// The argument types derive no Debug: they hold database URLs, whose
// passwords a `{:?}` would print.

/// Proves a SQLite replica still matches its source database, finds the rows
/// that drifted, and says where they are.
///
/// Exit codes: 0 in sync, 1 drift found, 2 error.
#[derive(Parser)]
#[command(name = "driftsum", version, about, long_about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    Diff(diff::DiffArgs),
    Build(build::BuildArgs),
    Serve(serve::ServeArgs),
    Bench(bench::BenchArgs),
    Demo(demo::DemoArgs),
    Check(check::CheckArgs),
    History(history::HistoryArgs),
}

/// Runs the command line; errors are printed readably and exit with 2.
pub fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => return usage_error(e),
    };
    let result = match cli.command {
        Command::Diff(args) => diff::run(args),
        Command::Build(args) => build::run(args),
        Command::Serve(args) => serve::run(args),
        Command::Bench(args) => bench::run(args),
        Command::Demo(args) => demo::run(args),
        Command::Check(args) => check::run(args),
        Command::History(args) => history::run(args),
    };
    match result {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            let message = format!("{e:#}");
            let message = secrets::Secrets::of_process().scrub(&message);
            // Error messages quote names and values from the database.
            let message = driftsum::report::text::escape_text(&message);
            eprintln!("driftsum: error: {message}");
            ExitCode::from(2)
        }
    }
}

/// Prints a command-line error as clap would, but with every password on
/// the command line hidden: clap quotes a misplaced or mistyped argument,
/// and a database URL may carry a password.
fn usage_error(e: clap::Error) -> ExitCode {
    if !e.use_stderr() {
        // --help and --version: not errors, and nothing quoted.
        e.exit();
    }
    let message = e.render().to_string();
    eprint!("{}", secrets::Secrets::of_process().scrub(&message));
    ExitCode::from(2)
}
