//! The `bottleneck` binary: parses arguments, runs one analysis, prints the result.
//!
//! Exit codes: 0 on success (including a valid analysis that does not fit), 2 on bad input
//! with one line on stderr, 0 on a broken pipe.

use std::io::{self, Write};
use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod commands;
mod output;

/// What limits this deep-learning workload, by how much, and what would move it.
#[derive(Parser, Debug)]
#[command(name = "bottleneck", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    // Each command's arguments and runner live in `commands/<name>.rs`.
    // (commands are registered below; keep one line per command)
}

fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {}
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            // clap prints help/version to stdout with exit 0 and usage errors with exit 2.
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() { 2 } else { 0 });
        }
    };
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            if is_broken_pipe(&e) {
                return ExitCode::SUCCESS;
            }
            let chain: Vec<String> = e.chain().map(ToString::to_string).collect();
            let _ = writeln!(io::stderr(), "error: {}", chain.join(": "));
            ExitCode::from(2)
        }
    }
}

fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<io::Error>()
            .is_some_and(|io| io.kind() == io::ErrorKind::BrokenPipe)
    })
}
