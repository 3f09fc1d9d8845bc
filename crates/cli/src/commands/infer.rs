//! `bottleneck infer`: LLM inference latency, throughput, memory and bottleneck.

use bottleneck_core::lower::{Parallel, Precisions};
use bottleneck_core::Precision;
use bottleneck_infer::{analyze, InferRequest};

use crate::{output, resolve};

/// Arguments of `bottleneck infer`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Built-in model name or path to a Hugging Face config.json (or its folder).
    #[arg(long, default_value = "llama-3.1-8b")]
    pub model: String,
    /// Built-in GPU name or path to a hardware TOML file.
    #[arg(long, default_value = "h100-sxm")]
    pub gpu: String,
    /// Tensor-parallel degree.
    #[arg(long, default_value_t = 1, allow_negative_numbers = true, value_parser = count_u32)]
    pub tp: u32,
    /// Pipeline-parallel degree.
    #[arg(long, default_value_t = 1, allow_negative_numbers = true, value_parser = count_u32)]
    pub pp: u32,
    /// Expert-parallel degree (MoE models; within the TP group).
    #[arg(long, default_value_t = 1, allow_negative_numbers = true, value_parser = count_u32)]
    pub ep: u32,
    /// Sequences in the (static) batch.
    #[arg(long, default_value_t = 16, allow_negative_numbers = true, value_parser = count_u64)]
    pub batch: u64,
    /// Prompt tokens per sequence.
    #[arg(long, default_value_t = 2000, allow_negative_numbers = true, value_parser = count_u64)]
    pub prompt: u64,
    /// Output tokens per sequence.
    #[arg(long, default_value_t = 256, allow_negative_numbers = true, value_parser = count_u64)]
    pub output: u64,
    /// Weight precision (fp32 tf32 bf16 fp16 fp8 int8 int4).
    #[arg(long, default_value = "bf16")]
    pub weights: Precision,
    /// KV-cache precision.
    #[arg(long, default_value = "bf16")]
    pub kv: Precision,
    /// Activation precision (default: fp8/int8 with fp8/int8 weights, else 16-bit).
    #[arg(long)]
    pub activations: Option<Precision>,
    /// Per-operator table.
    #[arg(long)]
    pub ops: bool,
    /// One JSON document on stdout.
    #[arg(long)]
    pub json: bool,
}

/// A size given on the command line: a whole number (zero is reported by the analysis, which
/// names the flag and the fix).
fn count(s: &str) -> Result<u64, String> {
    let t = s.trim();
    if let Ok(v) = t.parse::<u64>() {
        return Ok(v);
    }
    match t.parse::<f64>() {
        Ok(v) if v < 0.0 => Err(format!("must be a positive integer, not negative ({t})")),
        Ok(v) if v.is_finite() && v.fract() != 0.0 => {
            Err(format!("must be a whole number ({t} is not)"))
        }
        Ok(v) if v.is_finite() && v < 1.8e19 => Err(format!("write {t} as a plain integer")),
        Ok(_) => Err(format!("{t} is out of range")),
        Err(_) => Err(format!("must be a positive integer, got '{t}'")),
    }
}

fn count_u64(s: &str) -> Result<u64, String> {
    count(s)
}

fn count_u32(s: &str) -> Result<u32, String> {
    count(s).and_then(|v| u32::try_from(v).map_err(|_| format!("{v} is out of range")))
}

/// Runs the analysis and prints it.
pub fn run(a: Args) -> anyhow::Result<()> {
    let arch = resolve::model(&a.model)?;
    let hw = resolve::gpu(&a.gpu)?;
    let mut par = Parallel::single(hw.gpus_per_node());
    par.tp = a.tp;
    par.pp = a.pp;
    par.ep = a.ep;
    let prec = Precisions {
        weights: a.weights,
        activations: a
            .activations
            .unwrap_or_else(|| resolve::default_activations(a.weights)),
        kv: a.kv,
    };
    let req = InferRequest {
        batch: a.batch,
        prompt: a.prompt,
        output: a.output,
        par,
        prec,
        ops: a.ops,
        what_ifs: true,
    };
    let report = analyze(&arch, &hw, &req)?;
    for w in &report.warnings {
        eprintln!("warning: {w}");
    }
    if a.json {
        output::json(&report)
    } else {
        output::text(&bottleneck_report::infer::render(&report))
    }
}
