//! `bottleneck plan`: the fewest replicas (and TP per replica) that hold a rate within SLOs.

use bottleneck_serve::{plan, PlanRequest};

use super::simulate::ServeArgs;
use crate::{output, resolve};

/// Arguments of `bottleneck plan`.
#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(flatten)]
    pub serve: ServeArgs,
    /// Offered load in requests per second.
    #[arg(long, allow_negative_numbers = true)]
    pub rate: f64,
    /// Time-to-first-token SLO in seconds.
    #[arg(long)]
    pub slo_ttft: f64,
    /// Time-per-output-token SLO in seconds.
    #[arg(long)]
    pub slo_tpot: f64,
    /// Percentile the SLOs apply to: 50, 90 or 99.
    #[arg(long, default_value_t = 99.0)]
    pub percentile: f64,
    /// TP degrees to try, comma-separated (default: 1, 2, 4, ... up to the GPUs per node).
    #[arg(long, value_delimiter = ',')]
    pub tp: Vec<u32>,
    /// Most replicas to try per TP degree.
    #[arg(long, default_value_t = 64)]
    pub max_replicas: u32,
}

/// Runs the search and prints it.
pub fn run(a: Args) -> anyhow::Result<()> {
    let s = &a.serve;
    let arch = resolve::model(&s.model)?;
    let hw = resolve::gpu(&s.gpu)?;
    let tps = if a.tp.is_empty() {
        let mut v = Vec::new();
        let mut t = 1u32;
        while t <= hw.gpus_per_node().max(1) {
            v.push(t);
            t *= 2;
        }
        v
    } else {
        a.tp.clone()
    };
    anyhow::ensure!(
        tps.iter().all(|&t| (1..=1024).contains(&t)),
        "--tp values must be in 1..=1024 (got {tps:?})"
    );
    let (reqs, _) = s.requests(Some(a.rate), 2000)?;
    let req = PlanRequest {
        rate: a.rate,
        percentile: a.percentile,
        slo_ttft_s: a.slo_ttft,
        slo_tpot_s: a.slo_tpot,
        tps,
        pp: s.pp,
        ep: s.ep,
        max_replicas: a.max_replicas,
        base: s.config(),
        seed: s.seed,
    };
    let report = plan(&arch, &hw, s.precisions(), &reqs, &req)?;
    if s.json {
        output::json(&report)
    } else {
        output::text(&bottleneck_report::serve::render_plan(&report))
    }
}
