//! Command-line interface: argument parsing, output and exit codes. No logic
//! of its own: every command calls the library.

mod bench;
mod build;
mod demo;
mod diff;
mod progress;
mod rows;
mod serve;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Proves a SQLite replica still matches its source database, finds the rows
/// that drifted, and says where they are.
///
/// Exit codes: 0 in sync, 1 drift found, 2 error.
#[derive(Parser, Debug)]
#[command(name = "driftsum", version, about, long_about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    Diff(diff::DiffArgs),
    Build(build::BuildArgs),
    Serve(serve::ServeArgs),
    Bench(bench::BenchArgs),
    Demo(demo::DemoArgs),
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
    };
    match result {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            eprintln!("driftsum: error: {e:#}");
            ExitCode::from(2)
        }
    }
}

/// Prints a command-line error as clap would, but with the password of any
/// URL on the command line hidden: clap quotes a misplaced or mistyped
/// argument, and a database URL may carry a password.
fn usage_error(e: clap::Error) -> ExitCode {
    if !e.use_stderr() {
        // --help and --version: not errors, and nothing quoted.
        e.exit();
    }
    let mut message = e.render().to_string();
    for arg in std::env::args_os().skip(1) {
        let arg = arg.to_string_lossy();
        // clap quotes a whole argument, or the value of `--option=VALUE`.
        let value = arg.split_once('=').map(|(_, v)| v);
        for quoted in std::iter::once(arg.as_ref()).chain(value) {
            if quoted.contains("://") {
                message = message.replace(quoted, &driftsum::source::url::redact(quoted));
            }
        }
    }
    eprint!("{message}");
    ExitCode::from(2)
}
