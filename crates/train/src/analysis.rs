//! The `train` analysis of one layout: the `bottleneck.train/1` document with its bottleneck
//! and what-ifs (each a re-run of the same evaluator).

use bottleneck_core::catalog;
use bottleneck_core::pricing::price_op;
pub use bottleneck_infer::ModelInfo;
use serde::Serialize;

use crate::backward::Role;
use crate::costs::{layer_costs, step_ops, CostKey};
use crate::error::TrainError;
use crate::layout::{rule_broken, validate, AttentionImpl, Job, Layout, Recompute, TrainPrecision};
use crate::memory::Memory;
use crate::step::{evaluate, Breakdown, Comm, Evaluation, JobFacts};

/// Evaluates one layout with the same code path as the search.
pub fn evaluate_layout(job: &Job<'_>, lay: &Layout) -> Result<Evaluation, TrainError> {
    validate(job, lay)?;
    let facts = JobFacts::new(job);
    let costs = layer_costs(job, &CostKey::of(lay));
    Ok(evaluate(job, &facts, &costs, lay))
}

/// The `bottleneck.train/1` document.
#[derive(Clone, Debug, Serialize)]
pub struct TrainReport {
    pub schema: &'static str,
    pub model: ModelInfo,
    pub hardware: HardwareInfo,
    pub parallel: ParallelInfo,
    pub micro_batch: u64,
    pub global_batch: u64,
    /// Micro-batches per step per data-parallel rank (gradient accumulation).
    pub micro_batches: u64,
    pub seq: u64,
    pub zero: u8,
    pub recompute: Recompute,
    pub precision: TrainPrecision,
    pub attention: AttentionImpl,
    pub step_time_s: f64,
    pub tokens_per_s: f64,
    /// Model FLOPs (3 × forward, no recompute) per second per GPU, in TFLOP/s.
    pub tflops_per_gpu: f64,
    /// Model FLOPs utilisation against the dense peak of the GEMM precision.
    pub mfu: f64,
    /// Hardware FLOPs utilisation: model FLOPs plus recompute FLOPs.
    pub hfu: f64,
    pub memory: Memory,
    pub breakdown: Breakdown,
    pub communication: Vec<Comm>,
    pub pipeline: PipelineInfo,
    pub bottleneck: Bottleneck,
    pub what_if: Vec<WhatIf>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ops: Option<Vec<OpRow>>,
    pub assumptions: Vec<String>,
}

#[derive(Clone, Debug, Serialize)]
pub struct HardwareInfo {
    pub name: String,
    pub gpus: u64,
}

#[derive(Clone, Copy, Debug, Serialize)]
pub struct ParallelInfo {
    pub tp: u32,
    pub pp: u32,
    pub dp: u32,
    pub cp: u32,
    pub ep: u32,
    pub vpp: u32,
    pub sequence_parallel: bool,
}

impl ParallelInfo {
    pub fn of(l: &Layout) -> ParallelInfo {
        ParallelInfo {
            tp: l.tp,
            pp: l.pp,
            dp: l.dp,
            cp: l.cp,
            ep: l.ep,
            vpp: l.vpp,
            sequence_parallel: l.sequence_parallel && l.tp > 1,
        }
    }
}

#[derive(Clone, Copy, Debug, Serialize)]
pub struct PipelineInfo {
    /// Layers on the first, the busiest middle and the last stage.
    pub stage_layers: [u64; 3],
    /// The slowest stage's forward + backward time per micro-batch.
    pub stage_time_s: f64,
    /// `pipeline_bubble_s / (compute + exposed communication)`: (p − 1)/(v·m) of the ideal.
    pub bubble_fraction: f64,
}

#[derive(Clone, Debug, Serialize)]
pub struct Bottleneck {
    pub resource: &'static str,
    pub share: f64,
    pub explanation: String,
}

#[derive(Clone, Debug, Serialize)]
pub struct WhatIf {
    pub change: String,
    /// Step time before / after.
    pub speedup: f64,
    pub fits: bool,
}

#[derive(Clone, Debug, Serialize)]
pub struct OpRow {
    pub name: &'static str,
    pub role: Role,
    /// Instances per micro-batch (layers).
    pub count: f64,
    pub flops: f64,
    pub bytes: f64,
    pub time_s: f64,
    pub bound: &'static str,
}

fn explain(job: &Job<'_>, e: &Evaluation) -> String {
    let b = &e.bottleneck;
    let pct = b.share * 100.0;
    let l = &e.layout;
    match b.resource {
        "memory_capacity" => format!(
            "does not fit: {:.1} GB per GPU needed on the {} stage, {:.1} GB usable ({:.1} GB over); more ZeRO sharding, recompute, a smaller micro-batch or more TP/PP reduce it",
            e.memory.total_bytes_per_gpu / 1e9,
            e.memory.stage,
            e.memory.usable_bytes_per_gpu / 1e9,
            e.memory.overflow_bytes / 1e9
        ),
        "compute" => format!(
            "compute bound ({pct:.0}% of the step in math-bound kernels): {:.0} TFLOP/s per GPU of model FLOPs against {:.0} TFLOP/s dense {} peak (MFU {:.1}%)",
            e.tflops_per_gpu,
            job.hw.peak_flops(job.precision.gemm()).unwrap_or(0.0) / 1e12,
            job.precision.gemm(),
            e.mfu * 100.0
        ),
        "memory_bandwidth" => format!(
            "memory-bandwidth bound ({pct:.0}% of the step in bandwidth-bound kernels: norms, activations, small GEMMs); a larger micro-batch or fused kernels help"
        ),
        "interconnect" => {
            let worst = e
                .communication()
                .max_by(|a, b| a.exposed_s.total_cmp(&b.exposed_s))
                .map_or_else(String::new, |c| {
                    format!(
                        "; the largest is {} over {} GPUs ({}), {:.1} ms exposed",
                        c.collective,
                        c.group,
                        if c.inter_node { "inter-node" } else { "NVLink" },
                        c.exposed_s * 1e3
                    )
                });
            format!("interconnect bound ({pct:.0}% of the step is exposed communication){worst}")
        }
        "pipeline_bubble" => format!(
            "pipeline bubble ({pct:.0}% of the step): {} stages, {} micro-batches, {} virtual stages: bubble (p−1)/(v·m) = {:.1}%; more micro-batches or interleaving shrink it",
            l.pp,
            e.micro_batches,
            l.vpp,
            (f64::from(l.pp) - 1.0) / (f64::from(l.vpp) * e.micro_batches as f64) * 100.0
        ),
        _ => format!(
            "host and per-kernel overheads ({pct:.0}% of the step): the work per kernel is too small for {}",
            job.hw.name
        ),
    }
}

fn what_ifs(job: &Job<'_>, base: &Evaluation) -> Vec<WhatIf> {
    let lay = base.layout;
    let mut out = Vec::new();
    let mut push = |change: String, j: &Job<'_>, l: Layout| {
        // A change that breaks a rule is no what-if (and needs no nearby-layout hint).
        if rule_broken(j, &l).is_some() {
            return;
        }
        if let Ok(e) = evaluate_layout(j, &l) {
            out.push(WhatIf {
                change,
                speedup: base.step_time_s / e.step_time_s,
                fits: e.memory.fits,
            });
        }
    };
    match lay.recompute {
        Recompute::Full => push(
            "recompute full → selective".into(),
            job,
            Layout {
                recompute: Recompute::Selective,
                ..lay
            },
        ),
        Recompute::Selective => {
            push(
                "recompute selective → none".into(),
                job,
                Layout {
                    recompute: Recompute::None,
                    ..lay
                },
            );
            if !base.memory.fits {
                push(
                    "recompute selective → full".into(),
                    job,
                    Layout {
                        recompute: Recompute::Full,
                        ..lay
                    },
                );
            }
        }
        Recompute::None => push(
            "recompute none → selective".into(),
            job,
            Layout {
                recompute: Recompute::Selective,
                ..lay
            },
        ),
    }
    push(
        format!("micro-batch {} → {}", lay.micro_batch, lay.micro_batch * 2),
        job,
        Layout {
            micro_batch: lay.micro_batch * 2,
            ..lay
        },
    );
    if lay.micro_batch > 1 {
        push(
            format!("micro-batch {} → {}", lay.micro_batch, lay.micro_batch / 2),
            job,
            Layout {
                micro_batch: lay.micro_batch / 2,
                ..lay
            },
        );
    }
    if lay.pp > 1 {
        push(
            format!("virtual stages {} → {}", lay.vpp, lay.vpp * 2),
            job,
            Layout {
                vpp: lay.vpp * 2,
                ..lay
            },
        );
    }
    if lay.tp > 1 {
        push(
            format!(
                "sequence parallel {} → {}",
                if lay.sequence_parallel { "on" } else { "off" },
                if lay.sequence_parallel { "off" } else { "on" }
            ),
            job,
            Layout {
                sequence_parallel: !lay.sequence_parallel,
                ..lay
            },
        );
    }
    if lay.dp > 1 && lay.zero < 3 {
        push(
            format!("ZeRO {} → {}", lay.zero, lay.zero + 1),
            job,
            Layout {
                zero: lay.zero + 1,
                ..lay
            },
        );
    }
    if job.precision != TrainPrecision::Fp8
        && job.hw.peak_flops(TrainPrecision::Fp8.gemm()).is_some()
    {
        push(
            format!("GEMMs {} → fp8", job.precision.name()),
            &Job {
                precision: TrainPrecision::Fp8,
                ..*job
            },
            lay,
        );
    }
    if base.communication().any(|c| c.inter_node) {
        let mut hw2 = job.hw.clone();
        hw2.interconnect.inter_node.bandwidth_gb_s *= 2.0;
        push("NIC bandwidth ×2".into(), &Job { hw: &hw2, ..*job }, lay);
    }
    if base.communication().any(|c| !c.inter_node) {
        let mut hw2 = job.hw.clone();
        hw2.interconnect.intra_node.bandwidth_gb_s *= 2.0;
        push(
            "intra-node link bandwidth ×2".into(),
            &Job { hw: &hw2, ..*job },
            lay,
        );
    }
    if let Some(next) = catalog::next_gpu(job.hw) {
        let precision = if next.peak_flops(job.precision.gemm()).is_some() {
            job.precision
        } else {
            TrainPrecision::Bf16
        };
        push(
            format!("GPU {} → {}", job.hw.name, next.name),
            &Job {
                hw: next,
                precision,
                ..*job
            },
            lay,
        );
    }
    out
}

/// Runs the `train` analysis of `lay`; `what_ifs` re-runs the evaluator for each change,
/// `ops` adds the per-operator table of one micro-batch.
pub fn analyze(
    job: &Job<'_>,
    lay: &Layout,
    what_ifs_on: bool,
    ops: bool,
) -> Result<TrainReport, TrainError> {
    let e = evaluate_layout(job, lay)?;
    let what_if = if what_ifs_on {
        what_ifs(job, &e)
    } else {
        Vec::new()
    };
    let ops = ops.then(|| {
        step_ops(job, &CostKey::of(lay))
            .into_iter()
            .map(|o| {
                let c = price_op(&o.op, job.hw);
                OpRow {
                    name: o.op.name,
                    role: o.role,
                    count: o.op.count,
                    flops: o.op.total_flops(),
                    bytes: o.op.total_bytes(),
                    time_s: c.time_s * o.op.count,
                    bound: c.bound().resource(),
                }
            })
            .collect()
    });
    let ideal = e.breakdown.compute_s + e.breakdown.exposed_communication_s;
    let mut assumptions = job.arch.assumptions.clone();
    assumptions.extend([
        format!(
            "efficiencies of {} from {}",
            job.hw.name, job.hw.efficiency.source
        ),
        "backward = input-gradient + weight-gradient GEMMs (2× forward GEMM FLOPs); fused attention backward 2.5× forward FLOPs (FlashAttention-2)".into(),
        "TP and EP collectives are synchronous; TP backward collectives overlap weight-gradient GEMMs; ring attention overlaps attention kernels".into(),
        "DP gradient sync is bucketed (40M parameters) and overlaps the last micro-batch's backward; ZeRO-1/2 parameter all-gather overlaps the first forward; ZeRO-3 gathers per layer with prefetch".into(),
        "mixed-precision Adam: 16 bytes per parameter (bf16 weights and gradients, fp32 master and two moments); activations per Korthikanti et al. 2022".into(),
        format!(
            "memory fits when total ≤ {:.0}% of capacity",
            bottleneck_infer::USABLE_FRACTION * 100.0
        ),
        "model FLOPs = 3 × forward matmul and attention FLOPs (causal pairs); MFU against the dense peak of the GEMM precision".into(),
    ]);
    if job.arch.moe.is_some() {
        assumptions.push("MoE routing is balanced; experts split over EP ranks".into());
    }
    Ok(TrainReport {
        schema: "bottleneck.train/1",
        model: ModelInfo {
            name: job.arch.name.clone(),
            params: job.arch.params(),
            active_params: job.arch.active_params(),
        },
        hardware: HardwareInfo {
            name: job.hw.name.clone(),
            gpus: job.gpus,
        },
        parallel: ParallelInfo::of(lay),
        micro_batch: lay.micro_batch,
        global_batch: job.global_batch,
        micro_batches: e.micro_batches,
        seq: job.seq,
        zero: lay.zero,
        recompute: lay.recompute,
        precision: job.precision,
        attention: job.attention,
        step_time_s: e.step_time_s,
        tokens_per_s: e.tokens_per_s,
        tflops_per_gpu: e.tflops_per_gpu,
        mfu: e.mfu,
        hfu: e.hfu,
        memory: e.memory,
        breakdown: e.breakdown,
        communication: e.communication().copied().collect(),
        pipeline: PipelineInfo {
            stage_layers: e.stage_layers,
            stage_time_s: e.stage_time_s,
            bubble_fraction: if ideal > 0.0 {
                e.breakdown.pipeline_bubble_s / ideal
            } else {
                0.0
            },
        },
        bottleneck: Bottleneck {
            resource: e.bottleneck.resource,
            share: e.bottleneck.share,
            explanation: explain(job, &e),
        },
        what_if,
        ops,
        assumptions,
    })
}
