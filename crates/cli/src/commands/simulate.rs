//! `bottleneck simulate`: discrete-event simulation of LLM serving.

use std::io::IsTerminal as _;
use std::path::PathBuf;

use anyhow::Context as _;
use bottleneck_core::lower::{Parallel, Precisions};
use bottleneck_core::Precision;
use bottleneck_serve::{
    simulate, Arrival, Lengths, Overlong, Preemption, RequestSpec, Router, SchedulerKind,
    ServeConfig, Simulation, WorkloadFile,
};

use crate::{output, resolve};

/// Workload and engine options shared by `simulate` and `plan`.
#[derive(clap::Args, Debug, Clone)]
pub struct ServeArgs {
    /// Built-in model name or path to a Hugging Face config.json (or its folder).
    #[arg(long, default_value = "llama-3.1-8b")]
    pub model: String,
    /// Built-in GPU name or path to a hardware TOML file.
    #[arg(long, default_value = "h100-sxm")]
    pub gpu: String,
    /// Pipeline-parallel degree per replica.
    #[arg(long, default_value_t = 1)]
    pub pp: u32,
    /// Expert-parallel degree (MoE models; within the TP group).
    #[arg(long, default_value_t = 1)]
    pub ep: u32,
    /// Requests to simulate (default: 1000 for simulate, 2000 for plan, or the workload file's rows).
    #[arg(long)]
    pub requests: Option<u64>,
    /// Prompt tokens: N (fixed), uniform:LO:HI or lognormal:MEAN:SIGMA.
    #[arg(long, default_value = "lognormal:512:0.8")]
    pub prompt: Lengths,
    /// Output tokens: N (fixed), uniform:LO:HI or lognormal:MEAN:SIGMA.
    #[arg(long, default_value = "lognormal:256:0.8")]
    pub output: Lengths,
    /// Arrival process: poisson, gamma:CV (burstiness CV > 1) or constant.
    #[arg(long, default_value = "poisson")]
    pub arrival: String,
    /// Workload file (CSV or JSONL of arrival_s, prompt_tokens, output_tokens; see docs/workload-format.md).
    #[arg(long)]
    pub workload: Option<PathBuf>,
    /// Scheduler per replica: static, continuous, chunked or disaggregated.
    #[arg(long, default_value = "continuous")]
    pub scheduler: SchedulerKind,
    /// What happens to a sequence preempted for KV blocks: recompute or swap.
    #[arg(long, default_value = "recompute")]
    pub preemption: Preemption,
    /// Router: round-robin or least-work (fewest outstanding tokens).
    #[arg(long, default_value = "least-work")]
    pub router: Router,
    /// Most sequences a replica runs at once (vLLM max_num_seqs).
    #[arg(long, default_value_t = 256)]
    pub max_seqs: u32,
    /// Token budget per step (vLLM max_num_batched_tokens; default 8192, 512 for chunked).
    #[arg(long)]
    pub max_batched_tokens: Option<u64>,
    /// Tokens per KV block.
    #[arg(long, default_value_t = 16)]
    pub block_tokens: u64,
    /// Tokens of a system prompt shared by every request.
    #[arg(long, default_value_t = 0)]
    pub prefix_tokens: u64,
    /// Keep the shared prefix's KV resident and skip its prefill.
    #[arg(long)]
    pub prefix_caching: bool,
    /// Prompts longer than the context window: reject or truncate.
    #[arg(long, default_value = "reject")]
    pub overlong: Overlong,
    /// Simulated-time limit in seconds (the run stops there and says so).
    #[arg(long, default_value_t = 86_400.0)]
    pub max_sim_time: f64,
    /// Seed of the ChaCha8 streams that draw arrivals and lengths.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Weight precision (fp32 tf32 bf16 fp16 fp8 int8 int4).
    #[arg(long, default_value = "bf16")]
    pub weights: Precision,
    /// KV-cache precision.
    #[arg(long, default_value = "bf16")]
    pub kv: Precision,
    /// Activation precision (default: fp8/int8 with fp8/int8 weights, else 16-bit).
    #[arg(long)]
    pub activations: Option<Precision>,
    /// One JSON document on stdout.
    #[arg(long)]
    pub json: bool,
}

impl ServeArgs {
    pub fn precisions(&self) -> Precisions {
        Precisions {
            weights: self.weights,
            activations: self
                .activations
                .unwrap_or_else(|| resolve::default_activations(self.weights)),
            kv: self.kv,
        }
    }

    /// The engine options (replica count and SLOs filled by the caller).
    pub fn config(&self) -> ServeConfig {
        let chunked = self.scheduler == SchedulerKind::Chunked;
        ServeConfig {
            scheduler: self.scheduler,
            preemption: self.preemption,
            router: self.router,
            max_seqs: self.max_seqs,
            max_batched_tokens: self
                .max_batched_tokens
                .unwrap_or(if chunked { 512 } else { 8192 }),
            block_tokens: self.block_tokens,
            prefix_tokens: self.prefix_tokens,
            prefix_caching: self.prefix_caching,
            overlong: self.overlong,
            max_sim_time_s: self.max_sim_time,
            ..ServeConfig::default()
        }
    }

    /// The requests to replay and the offered rate (None when the file gives arrival times).
    pub fn requests(
        &self,
        rate: Option<f64>,
        default_n: u64,
    ) -> anyhow::Result<(Vec<RequestSpec>, Option<f64>)> {
        if let Some(path) = &self.workload {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("cannot read workload file {}", path.display()))?;
            let file = WorkloadFile::parse(&text)
                .with_context(|| format!("workload file {}", path.display()))?;
            let arrival = rate.map(|r| Arrival::parse(&self.arrival, r)).transpose()?;
            let reqs = file.requests(self.requests, arrival, self.seed)?;
            let rate = if file.has_arrivals { None } else { rate };
            return Ok((reqs, rate));
        }
        let Some(rate) = rate else {
            anyhow::bail!(
                "give --rate (requests per second) or a --workload file with arrival times"
            );
        };
        let arrival = Arrival::parse(&self.arrival, rate)?;
        let n = self.requests.unwrap_or(default_n);
        anyhow::ensure!(
            (1..=10_000_000).contains(&n),
            "--requests must be in 1..=10000000 (got {n})"
        );
        let reqs = bottleneck_serve::workload::generate(
            n,
            arrival,
            &self.prompt,
            &self.output,
            self.seed,
        )?;
        Ok((reqs, Some(rate)))
    }
}

/// Arguments of `bottleneck simulate`.
#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(flatten)]
    pub serve: ServeArgs,
    /// Tensor-parallel degree per replica.
    #[arg(long, default_value_t = 1)]
    pub tp: u32,
    /// Replicas behind the router.
    #[arg(long, default_value_t = 1)]
    pub replicas: u32,
    /// Replicas in the prefill pool with --scheduler disaggregated (default: half).
    #[arg(long)]
    pub prefill_replicas: Option<u32>,
    /// Offered load in requests per second (1e6 measures saturated throughput).
    #[arg(long, allow_negative_numbers = true)]
    pub rate: Option<f64>,
    /// Time-to-first-token SLO in seconds.
    #[arg(long, default_value_t = 1.0)]
    pub slo_ttft: f64,
    /// Time-per-output-token SLO in seconds.
    #[arg(long, default_value_t = 0.05)]
    pub slo_tpot: f64,
    /// Write one CSV row per request to this file.
    #[arg(long)]
    pub requests_csv: Option<PathBuf>,
    /// No progress bar on stderr.
    #[arg(long)]
    pub no_progress: bool,
}

/// Runs the simulation and prints it.
pub fn run(a: Args) -> anyhow::Result<()> {
    let s = &a.serve;
    let arch = resolve::model(&s.model)?;
    let hw = resolve::gpu(&s.gpu)?;
    let mut par = Parallel::single(hw.gpus_per_node());
    par.tp = a.tp;
    par.pp = s.pp;
    par.ep = s.ep;
    let (reqs, rate) = s.requests(a.rate, 1000)?;
    let mut cfg = s.config();
    cfg.replicas = a.replicas;
    cfg.prefill_replicas = a.prefill_replicas.unwrap_or((a.replicas / 2).max(1));
    cfg.slo_ttft_s = a.slo_ttft;
    cfg.slo_tpot_s = a.slo_tpot;
    cfg.record_requests = a.requests_csv.is_some();
    let sim = Simulation {
        arch: &arch,
        hw: &hw,
        par,
        prec: s.precisions(),
    };
    let total = reqs.len() as u64;
    let bar = (!a.no_progress && total >= 100_000 && std::io::stderr().is_terminal()).then(|| {
        let pb = indicatif::ProgressBar::new(total);
        pb.set_style(
            indicatif::ProgressStyle::with_template(
                "{elapsed} [{bar:40}] {pos}/{len} requests done",
            )
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        );
        pb
    });
    let mut tick = |done: u64, _: u64| {
        if let Some(pb) = &bar {
            pb.set_position(done);
        }
    };
    let report = simulate(&sim, &cfg, &reqs, s.seed, rate, &mut tick)?;
    if let Some(pb) = &bar {
        pb.finish_and_clear();
    }
    if let Some(path) = &a.requests_csv {
        let f = std::fs::File::create(path)
            .with_context(|| format!("cannot create {}", path.display()))?;
        report
            .write_csv(std::io::BufWriter::new(f))
            .with_context(|| format!("cannot write {}", path.display()))?;
    }
    for w in &report.warnings {
        eprintln!("warning: {w}");
    }
    if s.json {
        output::json(&report)
    } else {
        output::text(&bottleneck_report::serve::render(&report))
    }
}
