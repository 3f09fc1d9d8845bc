//! The `infer` analysis: latency, throughput, memory, the binding resource and what-ifs.

use bottleneck_core::arch::ModelArch;
use bottleneck_core::hardware::Hardware;
use bottleneck_core::ir::Op;
use bottleneck_core::lower::{Parallel, Precisions};
use bottleneck_core::pricing::{Bound, Cost};
use bottleneck_core::{catalog, CoreError, Precision};
use serde::Serialize;

use crate::memory::{memory_per_gpu, MemoryUse};
use crate::replica::{Replica, StepCost};

/// What to analyse.
#[derive(Clone, Debug, PartialEq)]
pub struct InferRequest {
    pub batch: u64,
    pub prompt: u64,
    pub output: u64,
    pub par: Parallel,
    pub prec: Precisions,
    /// Include the per-operator table.
    pub ops: bool,
    /// Compute what-ifs (each re-runs the analysis).
    pub what_ifs: bool,
}

/// The `bottleneck.infer/1` document.
#[derive(Clone, Debug, Serialize)]
pub struct InferReport {
    pub schema: &'static str,
    pub model: ModelInfo,
    pub hardware: HardwareInfo,
    pub parallel: ParallelInfo,
    pub workload: Workload,
    pub precision: PrecisionInfo,
    pub memory: MemoryUse,
    pub prefill: PrefillInfo,
    pub decode: DecodeInfo,
    pub ttft_s: f64,
    pub tpot_s: f64,
    pub e2e_s: f64,
    /// Output tokens per second over the batch (one replica).
    pub throughput_tokens_per_s: f64,
    /// The same per GPU of the replica.
    pub throughput_tokens_per_s_per_gpu: f64,
    pub bottleneck: Bottleneck,
    pub what_if: Vec<WhatIf>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ops: Option<Vec<OpRow>>,
    /// Assumptions the numbers rest on.
    pub assumptions: Vec<String>,
    /// Inputs outside what the model knows (e.g. prompt past the context window).
    pub warnings: Vec<String>,
}

#[derive(Clone, Debug, Serialize)]
pub struct ModelInfo {
    pub name: String,
    pub params: u64,
    pub active_params: u64,
}

#[derive(Clone, Debug, Serialize)]
pub struct HardwareInfo {
    pub name: String,
    /// GPUs in the replica (tp × pp).
    pub gpus: u32,
}

#[derive(Clone, Debug, Serialize)]
pub struct ParallelInfo {
    pub tp: u32,
    pub pp: u32,
    pub ep: u32,
}

#[derive(Clone, Debug, Serialize)]
pub struct Workload {
    pub batch: u64,
    pub prompt: u64,
    pub output: u64,
}

#[derive(Clone, Debug, Serialize)]
pub struct PrecisionInfo {
    pub weights: Precision,
    pub kv: Precision,
    pub activations: Precision,
}

#[derive(Clone, Debug, Serialize)]
pub struct PrefillInfo {
    pub time_s: f64,
    /// FLOPs per GPU.
    pub flops: f64,
    /// Device-memory bytes per GPU.
    pub bytes: f64,
    pub bound: &'static str,
}

#[derive(Clone, Debug, Serialize)]
pub struct DecodeInfo {
    /// Mean time per output token over the generation.
    pub time_per_token_s: f64,
    /// FLOPs per GPU of one decode step at the mean context.
    pub flops: f64,
    /// Bytes per GPU of one decode step at the mean context.
    pub bytes: f64,
    pub bound: &'static str,
}

#[derive(Clone, Debug, Serialize)]
pub struct Bottleneck {
    /// `prefill` or `decode`: the phase with most of the end-to-end time.
    pub phase: &'static str,
    /// SPEC vocabulary: compute, memory_bandwidth, memory_capacity, interconnect,
    /// host_overhead.
    pub resource: &'static str,
    /// Share of that phase's time the resource accounts for.
    pub share: f64,
    pub explanation: String,
}

#[derive(Clone, Debug, Serialize)]
pub struct WhatIf {
    pub change: String,
    /// End-to-end latency of the batch, before / after.
    pub speedup: f64,
    /// Output tokens/s per GPU, after / before.
    pub throughput_per_gpu_gain: f64,
    /// Whether the changed configuration fits in memory.
    pub fits: bool,
}

#[derive(Clone, Debug, Serialize)]
pub struct OpRow {
    pub name: &'static str,
    pub phase: &'static str,
    /// Instances (layers) of the op.
    pub count: f64,
    /// FLOPs per GPU over all instances.
    pub flops: f64,
    /// Bytes per GPU over all instances.
    pub bytes: f64,
    pub time_s: f64,
    pub bound: &'static str,
}

/// Points used to average decode step time over the generated context (trapezoid rule on a
/// cost that is piecewise linear in context).
const DECODE_SAMPLES: u64 = 9;

struct Core {
    memory: MemoryUse,
    prefill: StepCost,
    decode_mid: StepCost,
    tpot_s: f64,
    ttft_s: f64,
    e2e_s: f64,
    throughput: f64,
    gpus: u32,
}

fn evaluate(arch: &ModelArch, hw: &Hardware, req: &InferRequest) -> Result<Core, CoreError> {
    let replica = Replica::new(arch, hw, req.par, req.prec)?;
    let memory = memory_per_gpu(
        arch,
        &req.par,
        &req.prec,
        hw.memory_bytes(),
        req.batch,
        req.prompt,
        req.output,
    );
    let prefill = replica.prefill_step(req.batch, req.prompt);
    let ttft_s = prefill.time_s;
    // Decode steps run at contexts prompt .. prompt + output − 2 (the first token comes from
    // prefill).
    let steps = req.output.saturating_sub(1);
    let mid_ctx = req.prompt + steps / 2;
    let decode_mid = replica.decode_step(req.batch, mid_ctx);
    let tpot_s = if steps == 0 {
        decode_mid.time_s
    } else {
        let n = DECODE_SAMPLES.min(steps);
        let xs: Vec<u64> = (0..n)
            .map(|i| req.prompt + if n == 1 { 0 } else { i * (steps - 1) / (n - 1) })
            .collect();
        let ys: Vec<f64> = xs
            .iter()
            .map(|&c| replica.decode_step(req.batch, c).time_s)
            .collect();
        if n == 1 {
            ys[0]
        } else {
            let span = (xs[n as usize - 1] - xs[0]) as f64;
            let mut area = 0.0;
            for i in 1..n as usize {
                area += (xs[i] - xs[i - 1]) as f64 * (ys[i] + ys[i - 1]) / 2.0;
            }
            if span > 0.0 {
                area / span
            } else {
                ys[0]
            }
        }
    };
    let e2e_s = ttft_s + steps as f64 * tpot_s;
    let throughput = if e2e_s > 0.0 {
        req.batch as f64 * req.output as f64 / e2e_s
    } else {
        0.0
    };
    Ok(Core {
        memory,
        prefill,
        decode_mid,
        tpot_s,
        ttft_s,
        e2e_s,
        throughput,
        gpus: replica.gpus(),
    })
}

/// Dominant resource of a priced step and its share of the step's time (host overhead of the
/// step counted as `host_overhead`).
fn dominant(step: &StepCost) -> (Bound, f64) {
    let mut shares = [
        (Bound::Compute, 0.0),
        (Bound::MemoryBandwidth, 0.0),
        (Bound::Interconnect, 0.0),
        (Bound::Overhead, step.overhead_s),
    ];
    for (op, c) in step.ops.iter().zip(&step.priced.per_op) {
        let b = c.bound();
        if let Some(slot) = shares.iter_mut().find(|(k, _)| *k == b) {
            slot.1 += c.time_s * op.count;
        }
    }
    let total: f64 = shares.iter().map(|s| s.1).sum();
    let best = shares
        .iter()
        .copied()
        .max_by(|a, b| a.1.total_cmp(&b.1))
        .unwrap_or((Bound::Compute, 0.0));
    (best.0, if total > 0.0 { best.1 / total } else { 0.0 })
}

fn op_rows(phase: &'static str, step: &StepCost, out: &mut Vec<OpRow>) {
    for (op, c) in step.ops.iter().zip(&step.priced.per_op) {
        out.push(op_row(phase, op, c));
    }
}

fn op_row(phase: &'static str, op: &Op, c: &Cost) -> OpRow {
    OpRow {
        name: op.name,
        phase,
        count: op.count,
        flops: op.total_flops(),
        bytes: op.total_bytes(),
        time_s: c.time_s * op.count,
        bound: c.bound().resource(),
    }
}

/// Largest batch accepted (beyond any GPU's memory; keeps token counts far from overflow).
const MAX_BATCH: u64 = 1 << 26;
/// Largest prompt or output length accepted.
const MAX_TOKENS: u64 = 1 << 32;

fn validate_request(arch: &ModelArch, req: &InferRequest) -> Result<Vec<String>, CoreError> {
    for (name, v) in [
        ("--batch", req.batch),
        ("--prompt", req.prompt),
        ("--output", req.output),
    ] {
        if v == 0 {
            return Err(CoreError::InvalidWorkload(format!(
                "{name} must be a positive integer (got 0)"
            )));
        }
        let max = if name == "--batch" {
            MAX_BATCH
        } else {
            MAX_TOKENS
        };
        if v > max {
            return Err(CoreError::InvalidWorkload(format!(
                "{name} {v} is implausibly large (at most {max}); use a realistic size"
            )));
        }
    }
    let mut warnings = Vec::new();
    let ctx = req.prompt + req.output;
    if ctx > arch.max_position {
        warnings.push(format!(
            "prompt + output = {ctx} tokens exceeds {}'s max_position_embeddings ({}); results extrapolate past the trained context",
            arch.name, arch.max_position
        ));
    }
    Ok(warnings)
}

/// Runs the `infer` analysis of `arch` on `hw`.
pub fn analyze(
    arch: &ModelArch,
    hw: &Hardware,
    req: &InferRequest,
) -> Result<InferReport, CoreError> {
    let warnings = validate_request(arch, req)?;
    let core = evaluate(arch, hw, req)?;
    let (pre_bound, pre_share) = dominant(&core.prefill);
    let (dec_bound, dec_share) = dominant(&core.decode_mid);
    let decode_total = core.e2e_s - core.ttft_s;
    let (phase, bound, share) = if decode_total >= core.ttft_s {
        ("decode", dec_bound, dec_share)
    } else {
        ("prefill", pre_bound, pre_share)
    };
    let bottleneck = if core.memory.fits {
        Bottleneck {
            phase,
            resource: bound.resource(),
            share,
            explanation: explain(phase, bound, share, &core, hw, req),
        }
    } else {
        let over = core.memory.total_bytes_per_gpu
            - core.memory.capacity_bytes_per_gpu * crate::memory::USABLE_FRACTION;
        Bottleneck {
            phase,
            resource: "memory_capacity",
            share: 1.0,
            explanation: format!(
                "does not fit: {:.1} GB per GPU needed, {:.1} GB usable ({:.1} GB over); the largest batch that fits is {}",
                core.memory.total_bytes_per_gpu / 1e9,
                core.memory.capacity_bytes_per_gpu * crate::memory::USABLE_FRACTION / 1e9,
                over / 1e9,
                core.memory.max_batch
            ),
        }
    };
    let what_if = if req.what_ifs {
        what_ifs(arch, hw, req, &core)
    } else {
        Vec::new()
    };
    let ops = req.ops.then(|| {
        let mut rows = Vec::new();
        op_rows("prefill", &core.prefill, &mut rows);
        op_rows("decode", &core.decode_mid, &mut rows);
        rows
    });
    let mut assumptions = arch.assumptions.clone();
    assumptions.push(format!(
        "static batch of {} run to completion; decode averaged over contexts {}..{}",
        req.batch,
        req.prompt,
        req.prompt + req.output.saturating_sub(1)
    ));
    assumptions.push(format!(
        "efficiencies of {} from {}",
        hw.name, hw.efficiency.source
    ));
    assumptions.push(format!(
        "memory fits when total ≤ {:.0}% of capacity (engine default)",
        crate::memory::USABLE_FRACTION * 100.0
    ));
    if arch.moe.is_some() {
        assumptions.push(
            "MoE routing is uniform: expected distinct experts per step E·(1−(1−k/E)^T)".into(),
        );
    }
    let gpus = core.gpus;
    Ok(InferReport {
        schema: "bottleneck.infer/1",
        model: ModelInfo {
            name: arch.name.clone(),
            params: arch.params(),
            active_params: arch.active_params(),
        },
        hardware: HardwareInfo {
            name: hw.name.clone(),
            gpus,
        },
        parallel: ParallelInfo {
            tp: req.par.tp,
            pp: req.par.pp,
            ep: req.par.ep,
        },
        workload: Workload {
            batch: req.batch,
            prompt: req.prompt,
            output: req.output,
        },
        precision: PrecisionInfo {
            weights: req.prec.weights,
            kv: req.prec.kv,
            activations: req.prec.activations,
        },
        memory: core.memory,
        prefill: PrefillInfo {
            time_s: core.ttft_s,
            flops: core.prefill.priced.flops,
            bytes: core.prefill.priced.bytes,
            bound: pre_bound.resource(),
        },
        decode: DecodeInfo {
            time_per_token_s: core.tpot_s,
            flops: core.decode_mid.priced.flops,
            bytes: core.decode_mid.priced.bytes,
            bound: dec_bound.resource(),
        },
        ttft_s: core.ttft_s,
        tpot_s: core.tpot_s,
        e2e_s: core.e2e_s,
        throughput_tokens_per_s: core.throughput,
        throughput_tokens_per_s_per_gpu: core.throughput / f64::from(gpus),
        bottleneck,
        what_if,
        ops,
        assumptions,
        warnings,
    })
}

fn explain(
    phase: &str,
    bound: Bound,
    share: f64,
    core: &Core,
    hw: &Hardware,
    req: &InferRequest,
) -> String {
    let pct = share * 100.0;
    match bound {
        Bound::MemoryBandwidth => {
            let step = &core.decode_mid;
            let intensity = step.priced.flops / step.priced.bytes.max(1.0);
            let ridge = hw.ridge_point(req.prec.gemm()).unwrap_or(0.0);
            format!(
                "{phase} is memory-bandwidth bound ({pct:.0}% of its time): {:.1} FLOP per byte moved vs a ridge point of {ridge:.0} on {}; each step streams {:.2} GB of weights and KV cache per GPU",
                intensity,
                hw.name,
                step.priced.bytes / 1e9
            )
        }
        Bound::Compute => format!(
            "{phase} is compute bound ({pct:.0}% of its time): {:.2} TFLOP per GPU at {:.0} TFLOP/s dense {} peak",
            if phase == "prefill" { core.prefill.priced.flops } else { core.decode_mid.priced.flops } / 1e12,
            hw.peak_flops(req.prec.gemm()).unwrap_or(0.0) / 1e12,
            req.prec.gemm()
        ),
        Bound::Interconnect => format!(
            "{phase} is interconnect bound ({pct:.0}% of its time): tensor-parallel collectives over {} ({} GB/s per direction) dominate; a smaller TP degree or a faster link helps",
            hw.interconnect.intra_node.kind, hw.interconnect.intra_node.bandwidth_gb_s
        ),
        Bound::Overhead => format!(
            "{phase} is bound by fixed per-kernel and per-step overheads ({pct:.0}% of its time): the work per step is too small to fill {}; a larger batch amortises it",
            hw.name
        ),
    }
}

fn what_ifs(arch: &ModelArch, hw: &Hardware, req: &InferRequest, base: &Core) -> Vec<WhatIf> {
    let mut out = Vec::new();
    let base_tput_gpu = base.throughput / f64::from(base.gpus);
    let mut push = |change: String, hw2: &Hardware, r: InferRequest| {
        if let Ok(c) = evaluate(arch, hw2, &r) {
            out.push(WhatIf {
                change,
                speedup: base.e2e_s / c.e2e_s,
                throughput_per_gpu_gain: (c.throughput / f64::from(c.gpus)) / base_tput_gpu,
                fits: c.memory.fits,
            });
        }
    };
    // Weight precision: one step narrower that this GPU runs.
    let narrower = |p: Precision| -> Option<Precision> {
        match p {
            Precision::Fp32 | Precision::Tf32 => Some(Precision::Bf16),
            Precision::Bf16 | Precision::Fp16 => {
                if hw.peak_flops(Precision::Fp8).is_some() {
                    Some(Precision::Fp8)
                } else {
                    Some(Precision::Int4)
                }
            }
            Precision::Fp8 | Precision::Int8 => Some(Precision::Int4),
            Precision::Int4 => None,
        }
    };
    if let Some(w) = narrower(req.prec.weights) {
        let mut r = req.clone();
        r.prec.weights = w;
        push(format!("weights {} → {w}", req.prec.weights), hw, r);
    }
    if req.prec.kv.bytes() > 1.0 {
        let mut r = req.clone();
        r.prec.kv = Precision::Fp8;
        push(format!("KV cache {} → fp8", req.prec.kv), hw, r);
    }
    {
        let mut r = req.clone();
        r.batch = req.batch * 2;
        push(format!("batch {} → {}", req.batch, r.batch), hw, r);
    }
    {
        let mut r = req.clone();
        r.par.tp = req.par.tp * 2;
        if r.par.validate(arch).is_ok() && r.par.tp * r.par.pp <= hw.gpus_per_node() {
            push(
                format!("tensor parallel {} → {}", req.par.tp, r.par.tp),
                hw,
                r,
            );
        }
    }
    if req.par.tp > 1 {
        let mut r = req.clone();
        r.par.tp = req.par.tp / 2;
        if r.par.validate(arch).is_ok() {
            push(
                format!("tensor parallel {} → {}", req.par.tp, r.par.tp),
                hw,
                r,
            );
        }
    }
    {
        let mut hw2 = hw.clone();
        hw2.memory.bandwidth_gb_s *= 2.0;
        push("HBM bandwidth ×2".into(), &hw2, req.clone());
    }
    {
        let mut hw2 = hw.clone();
        hw2.interconnect.intra_node.bandwidth_gb_s *= 2.0;
        if req.par.tp * req.par.pp > 1 {
            push("intra-node link bandwidth ×2".into(), &hw2, req.clone());
        }
    }
    if let Some(next) = catalog::next_gpu(hw) {
        let mut r = req.clone();
        if next.peak_flops(r.prec.gemm()).is_none() {
            r.prec.weights = Precision::Bf16;
            r.prec.activations = Precision::Bf16;
        }
        push(format!("GPU {} → {}", hw.name, next.name), next, r);
    }
    out
}
