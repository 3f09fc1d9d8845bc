//! `bottleneck search`: the fastest training layouts that fit.

use std::io::IsTerminal as _;

use bottleneck_train::search;

use crate::commands::train::JobArgs;
use crate::{output, resolve};

/// Arguments of `bottleneck search`.
#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(flatten)]
    pub job: JobArgs,
    /// Layouts to list.
    #[arg(long, default_value_t = 10)]
    pub top: usize,
    /// No progress bar on stderr.
    #[arg(long)]
    pub no_progress: bool,
}

/// Runs the search and prints the top layouts.
pub fn run(a: Args) -> anyhow::Result<()> {
    let arch = resolve::model(&a.job.model)?;
    let hw = resolve::gpu(&a.job.gpu)?;
    anyhow::ensure!(
        (1..=1000).contains(&a.top),
        "--top must be in 1..=1000 (got {})",
        a.top
    );
    let job = a.job.job(&arch, &hw)?;
    let bar = (!a.no_progress && std::io::stderr().is_terminal()).then(|| {
        let pb = indicatif::ProgressBar::new(0);
        pb.set_style(
            indicatif::ProgressStyle::with_template("{elapsed} [{bar:40}] {pos}/{len} cost keys")
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        );
        pb
    });
    let tick = |done: u64, total: u64| {
        if let Some(pb) = &bar {
            pb.set_length(total);
            pb.set_position(done);
        }
    };
    let report = search(&job, a.top, &tick)?;
    if let Some(pb) = &bar {
        pb.finish_and_clear();
    }
    if a.job.json {
        output::json(&report)
    } else {
        output::text(&bottleneck_report::train::render_search(&report))
    }
}
