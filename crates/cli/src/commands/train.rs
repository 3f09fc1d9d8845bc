//! `bottleneck train`: step time, MFU, memory and bottleneck of one training layout.

use bottleneck_core::arch::ModelArch;
use bottleneck_core::hardware::Hardware;
use bottleneck_train::{analyze, Job, Layout, Recompute, TrainPrecision};

use crate::{output, resolve};

/// Model, hardware and batch shared by `train` and `search`.
#[derive(clap::Args, Debug, Clone)]
pub struct JobArgs {
    /// Built-in model name or path to a Hugging Face config.json (or its folder).
    #[arg(long, default_value = "llama-3.1-8b")]
    pub model: String,
    /// Built-in GPU name or path to a hardware TOML file.
    #[arg(long, default_value = "h100-sxm")]
    pub gpu: String,
    /// GPUs in the job.
    #[arg(long, default_value_t = 8)]
    pub gpus: u64,
    /// Tokens per sequence.
    #[arg(long, default_value_t = 4096)]
    pub seq: u64,
    /// Sequences per optimizer step.
    #[arg(long, default_value_t = 128)]
    pub global_batch: u64,
    /// GEMM precision: bf16 or fp8 (fp8 needs a GPU with fp8 tensor cores).
    #[arg(long, default_value = "bf16")]
    pub precision: String,
    /// Attention core: fused (FlashAttention-2) or unfused (Megatron-LM before FlashAttention:
    /// scores in memory).
    #[arg(long, default_value = "fused")]
    pub attention: String,
    /// One JSON document on stdout.
    #[arg(long)]
    pub json: bool,
}

impl JobArgs {
    /// The job these arguments describe, on a resolved model and GPU.
    pub fn job<'a>(&self, arch: &'a ModelArch, hw: &'a Hardware) -> anyhow::Result<Job<'a>> {
        Ok(Job {
            arch,
            hw,
            gpus: self.gpus,
            seq: self.seq,
            global_batch: self.global_batch,
            precision: self.precision()?,
            attention: self.attention.parse()?,
        })
    }

    pub fn precision(&self) -> anyhow::Result<TrainPrecision> {
        Ok(self.precision.parse()?)
    }
}

/// Arguments of `bottleneck train`.
#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(flatten)]
    pub job: JobArgs,
    /// Tensor-parallel degree.
    #[arg(long, default_value_t = 1)]
    pub tp: u32,
    /// Pipeline stages.
    #[arg(long, default_value_t = 1)]
    pub pp: u32,
    /// Data-parallel degree (default: GPUs / (tp × pp × cp)).
    #[arg(long)]
    pub dp: Option<u32>,
    /// Context-parallel degree (ring attention).
    #[arg(long, default_value_t = 1)]
    pub cp: u32,
    /// Expert-parallel degree (MoE models; over data-parallel ranks).
    #[arg(long, default_value_t = 1)]
    pub ep: u32,
    /// Virtual pipeline stages per GPU (interleaved 1F1B).
    #[arg(long, default_value_t = 1)]
    pub vpp: u32,
    /// ZeRO stage 0-3 (3 = FSDP).
    #[arg(long, default_value_t = 1)]
    pub zero: u8,
    /// Activation recomputation: none, selective or full.
    #[arg(long, default_value = "selective")]
    pub recompute: String,
    /// Sequences per micro-batch.
    #[arg(long, default_value_t = 1)]
    pub micro_batch: u64,
    /// Turn off Megatron sequence parallelism (on by default when tp > 1).
    #[arg(long)]
    pub no_sp: bool,
    /// Per-operator table of one micro-batch.
    #[arg(long)]
    pub ops: bool,
}

/// Runs the analysis and prints it.
pub fn run(a: Args) -> anyhow::Result<()> {
    let arch = resolve::model(&a.job.model)?;
    let hw = resolve::gpu(&a.job.gpu)?;
    let recompute: Recompute = a.recompute.parse()?;
    let model_gpus = u64::from(a.tp.max(1)) * u64::from(a.pp.max(1)) * u64::from(a.cp.max(1));
    let dp = match a.dp {
        Some(d) => d,
        None => u32::try_from((a.job.gpus / model_gpus).max(1)).unwrap_or(u32::MAX),
    };
    let job = a.job.job(&arch, &hw)?;
    let lay = Layout {
        tp: a.tp,
        pp: a.pp,
        dp,
        cp: a.cp,
        ep: a.ep,
        vpp: a.vpp,
        sequence_parallel: !a.no_sp && a.tp > 1,
        micro_batch: a.micro_batch,
        zero: a.zero,
        recompute,
    };
    let report = analyze(&job, &lay, true, a.ops)?;
    if a.job.json {
        output::json(&report)
    } else {
        output::text(&bottleneck_report::train::render(&report))
    }
}
