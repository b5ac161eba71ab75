//! Command-line interface: argument parsing, output and exit codes. No logic
//! of its own: every command calls the library.

mod background;
mod bench;
mod build;
mod check;
mod completions;
mod demo;
mod diff;
mod filters;
mod history;
mod logging;
mod outpath;
mod progress;
mod repair;
mod report;
mod rows;
mod secrets;
mod serve;
mod watch;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

// The argument types derive no Debug: they hold database URLs, whose
// passwords a `{:?}` would print.

/// Proves a SQLite replica still matches its source database, finds the rows
/// that drifted, and says where they are.
///
/// Exit codes: 0 in sync, 1 drift found, 2 error (2 wins when a run has
/// both drift and an error).
#[derive(Parser)]
#[command(name = "driftsum", version, long_about)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
    /// Print nothing but the report and errors: no progress, and in the text
    /// report no line for a table in sync.
    #[arg(short, long, global = true)]
    quiet: bool,
    /// Say more on stderr: the sides compared and a line per table as it
    /// finishes (also when stderr is not a terminal).
    #[arg(short, long, global = true, action = clap::ArgAction::Count, conflicts_with = "quiet")]
    verbose: u8,
    /// Log lines on stderr as text or as one JSON object per line; filter
    /// them with DRIFTSUM_LOG (e.g. "driftsum=debug").
    #[arg(long, global = true, value_enum, value_name = "FORMAT")]
    log_format: Option<logging::LogFormat>,
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
    Watch(watch::WatchArgs),
    Completions(completions::CompletionsArgs),
    Man(completions::ManArgs),
    Repair(repair::RepairArgs),
    Report(report::ReportArgs),
}

/// How much the run says besides its report (`-q`, `-v`).
#[derive(Clone, Copy, Debug, Default)]
pub struct Verbosity {
    pub quiet: bool,
    pub verbose: u8,
}

/// Runs the command line; errors are printed readably and exit with 2.
pub fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => return usage_error(e),
    };
    let v = Verbosity {
        quiet: cli.quiet,
        verbose: cli.verbose,
    };
    logging::init(v, cli.log_format, matches!(cli.command, Command::Watch(_)));
    let result = match cli.command {
        Command::Diff(args) => diff::run(args, v),
        Command::Build(args) => build::run(args, v),
        Command::Serve(args) => serve::run(args),
        Command::Bench(args) => bench::run(args),
        Command::Demo(args) => demo::run(args),
        Command::Check(args) => check::run(args),
        Command::History(args) => history::run(args),
        Command::Watch(args) => watch::run(args),
        Command::Completions(args) => completions::completions(args),
        Command::Man(args) => completions::man(args),
        Command::Repair(args) => repair::run(args, v),
        Command::Report(args) => report::run(args),
    };
    match result {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            // Error messages quote names and values from the database.
            let message = error_message(&e);
            let message = driftsum::report::text::escape_text(&message);
            if logging::is_json(cli.log_format) && tracing::enabled!(tracing::Level::ERROR) {
                tracing::error!(error = %message, "driftsum failed");
            } else {
                eprintln!("driftsum: error: {message}");
            }
            ExitCode::from(2)
        }
    }
}

/// An error's whole chain as one line, with every secret of the command
/// line and the password variables cut out.
pub fn error_message(e: &anyhow::Error) -> String {
    secrets::Secrets::of_process().scrub(&format!("{e:#}"))
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
