//! `acl-ipc-guard`: run a program under the shim, list the rules, read the logs back.
//!
//! The command line is declared once, with clap, in [`Cli`]; each command is its own module:
//! - [`run`]: the launcher (sets `LD_PRELOAD`, `LD_AUDIT` and the switches, then execs);
//! - [`rules`]: the shim's rule table, as text or JSON;
//! - [`report`]: reads a job's logs back (ingest → processes → re-check → render).
//!
//! `-v`/`-vv` (any command) turns on the command's own diagnostics on stderr, through
//! `tracing`.
//!
//! Usage errors go to stderr with exit status 2 (clap's convention); `--help` (every
//! command) and `--version` (the top level) go to stdout with 0.

mod report;
mod rules;
mod run;

use clap::{CommandFactory, Parser, Subcommand};
use std::process::exit;

/// Validating, auditing shim for the Ascend runtime's IPC memory API: run a program under
/// it, list its rules, and read its logs back.
#[derive(Parser, Debug)]
#[command(
    name = "acl-ipc-guard",
    version,
    subcommand_required = true,
    arg_required_else_help = true
)]
pub struct Cli {
    /// Say on stderr what the command does: files read, records, time per stage, what
    /// `run` sets (-vv: more detail)
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    pub verbose: u8,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run a program with the library preloaded and the switches set; exit with its status
    ///
    /// The library goes in front of any existing LD_PRELOAD, the audit module beside it in
    /// front of any existing LD_AUDIT (so calls through dlsym are seen too), and each option
    /// given sets the ACL_IPC_GUARD_* variable named in its help; others are left as they are.
    #[command(after_help = run::EXIT_STATUS)]
    Run(run::RunArgs),
    /// Read a job's logs back: one timeline per key, violations by rule, cross-process re-check
    ///
    /// Merges the JSON-lines logs of the processes of a job (any order, one file per process
    /// or shared; processes are told apart by host, pid and start), prints one timeline per
    /// key, the violations by rule, and re-checks the cross-process ordering from the records.
    #[command(after_help = report::EXIT_STATUS)]
    Report(report::ReportArgs),
    /// Print the rule table: id, severity, what it checks, the vendor rule behind it
    Rules(rules::RulesArgs),
    /// Print a completion script for a shell (bash, zsh, fish, elvish, powershell)
    #[command(after_help = COMPLETIONS_HELP)]
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
}

const COMPLETIONS_HELP: &str = "\
Examples:
  bash:  source <(acl-ipc-guard completions bash)
  zsh:   acl-ipc-guard completions zsh > \"${fpath[1]}/_acl-ipc-guard\"
  fish:  acl-ipc-guard completions fish > ~/.config/fish/completions/acl-ipc-guard.fish";

fn main() {
    let cli = Cli::parse();
    diagnostics(cli.verbose);
    let code = match cli.command {
        Command::Run(args) => run::main(args),
        Command::Report(args) => report::main(&args),
        Command::Rules(args) => rules::main(&args),
        Command::Completions { shell } => completions(shell),
    };
    exit(code);
}

/// `-v`: the command's own diagnostics, on stderr (`-vv`: debug detail too). Without it no
/// subscriber is installed and stderr is as it always was.
fn diagnostics(verbose: u8) {
    let level = match verbose {
        0 => return,
        1 => tracing::Level::INFO,
        2 => tracing::Level::DEBUG,
        _ => tracing::Level::TRACE,
    };
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_max_level(level)
        .with_target(false)
        .with_ansi(false)
        .init();
}

fn completions(shell: clap_complete::Shell) -> i32 {
    let mut script = Vec::new();
    clap_complete::generate(shell, &mut Cli::command(), "acl-ipc-guard", &mut script);
    out(&script);
    0
}

/// Writes to stdout; a closed pipe (`| head`) ends the program quietly, as for any filter.
fn out(bytes: &[u8]) {
    use std::io::Write;
    let mut stdout = std::io::stdout().lock();
    if stdout
        .write_all(bytes)
        .and_then(|()| stdout.flush())
        .is_err()
    {
        exit(0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_command_line_is_consistent() {
        Cli::command().debug_assert();
    }
}
