//! The `bottleneck` binary: parses arguments, runs one analysis, prints the result.
//!
//! Exit codes: 0 on success (including a valid analysis that does not fit), 2 on bad input
//! with one line on stderr, 0 on a broken pipe.

use std::io::{self, Write};
use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod commands;
mod output;
mod resolve;

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
    /// List the built-in models.
    Models(commands::models::Args),
    /// List the built-in GPUs.
    Hardware(commands::hardware::Args),
    /// Architecture summary of a model.
    Show(commands::show::Args),
    /// LLM inference latency, throughput, memory and bottleneck.
    Infer(commands::infer::Args),
    /// Discrete-event simulation of LLM serving.
    Simulate(commands::simulate::Args),
    /// Fewest replicas that hold a rate within latency SLOs.
    Plan(commands::plan::Args),
    /// Analysis of PyTorch profiler (Kineto) traces.
    Trace(commands::trace::Args),
    /// Training step time, MFU, memory and bottleneck of a parallel layout.
    Train(commands::train::Args),
    /// The fastest training layouts that fit, out of every TP/PP/DP/CP/EP/vpp/ZeRO/recompute choice.
    Search(commands::search::Args),
}

fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Models(a) => commands::models::run(a),
        Command::Hardware(a) => commands::hardware::run(a),
        Command::Show(a) => commands::show::run(a),
        Command::Infer(a) => commands::infer::run(a),
        Command::Simulate(a) => commands::simulate::run(a),
        Command::Plan(a) => commands::plan::run(a),
        Command::Trace(a) => commands::trace::run(a),
        Command::Train(a) => commands::train::run(a),
        Command::Search(a) => commands::search::run(a),
    }
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            // Help and version go to stdout with exit 0; a usage error is one line on stderr
            // with exit 2.
            if !e.use_stderr() {
                let _ = e.print();
                return ExitCode::SUCCESS;
            }
            let rendered = e.to_string();
            let first = rendered
                .lines()
                .next()
                .unwrap_or("error: invalid arguments");
            let _ = writeln!(io::stderr(), "{first} (see --help)");
            return ExitCode::from(2);
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
