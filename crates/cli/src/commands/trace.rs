//! `bottleneck trace`: analysis of PyTorch profiler (Kineto) traces.

use std::path::PathBuf;

use bottleneck_trace::{analyse_paths, Compat, Options};

use crate::output;

/// Arguments of `bottleneck trace`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Trace files (`.json` or `.json.gz`) or folders of them; several files are several ranks.
    #[arg(required = true)]
    pub files: Vec<PathBuf>,
    /// Conventions: `native` (docs/trace.md) or `hta` (Holistic Trace Analysis's step window
    /// and kernel classes, to compare one to one).
    #[arg(long, default_value = "native", value_parser = parse_compat)]
    pub compat: Compat,
    /// How many kernels the top-kernel table lists.
    #[arg(long, default_value_t = 10)]
    pub top: usize,
    /// Print one JSON document (`bottleneck.trace/1`).
    #[arg(long)]
    pub json: bool,
}

fn parse_compat(s: &str) -> Result<Compat, String> {
    match s.to_ascii_lowercase().as_str() {
        "native" => Ok(Compat::Native),
        "hta" => Ok(Compat::Hta),
        other => Err(format!("unknown convention '{other}': use native or hta")),
    }
}

/// Reads the traces, analyses them and prints the result.
pub fn run(a: Args) -> anyhow::Result<()> {
    anyhow::ensure!(
        (1..=10_000).contains(&a.top),
        "--top must be in 1..=10000 (got {})",
        a.top
    );
    let opts = Options {
        compat: a.compat,
        top: a.top,
    };
    let report = analyse_paths(&a.files, &opts)?;
    if a.json {
        output::json(&report)
    } else {
        output::text(&bottleneck_report::trace::render(&report))
    }
}
