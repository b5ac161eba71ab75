//! `driftsum completions SHELL` and `driftsum man`: the command line
//! described for shells and for `man`, generated from the same definitions
//! that parse it, so they never disagree with it.

use std::io::Write;

use clap::{Args, CommandFactory};
use clap_complete::Shell;

use super::Cli;

/// Print a completion script for a shell, e.g.
/// `driftsum completions bash > ~/.local/share/bash-completion/completions/driftsum`.
#[derive(Args)]
pub struct CompletionsArgs {
    /// The shell: bash, zsh, fish, elvish or powershell.
    #[arg(value_enum)]
    pub shell: Shell,
}

/// Print a manual page (roff), e.g. `driftsum man > driftsum.1` or
/// `driftsum man diff > driftsum-diff.1`.
#[derive(Args)]
pub struct ManArgs {
    /// A command's own page (diff, build, serve, ...); default: driftsum's.
    #[arg(value_name = "COMMAND")]
    pub command: Option<String>,
}

pub fn completions(args: CompletionsArgs) -> anyhow::Result<u8> {
    let mut cmd = Cli::command();
    let mut out = std::io::stdout().lock();
    clap_complete::generate(args.shell, &mut cmd, "driftsum", &mut out);
    out.flush()?;
    Ok(0)
}

pub fn man(args: ManArgs) -> anyhow::Result<u8> {
    let mut cmd = Cli::command();
    cmd.build();
    let page = match &args.command {
        None => cmd,
        Some(name) => match cmd.find_subcommand(name) {
            // Built, a command is named `driftsum-NAME` on its page.
            Some(sub) => sub.clone(),
            None => anyhow::bail!("no command {name:?}; see driftsum --help"),
        },
    };
    let mut out = std::io::stdout().lock();
    clap_mangen::Man::new(page).render(&mut out)?;
    out.flush()?;
    Ok(0)
}
