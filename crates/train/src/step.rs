//! The one evaluator of a training step: per-layer costs (priced once per
//! [`crate::costs::CostKey`]) composed with the pipeline schedule, data-parallel / ZeRO
//! communication, the optimizer and memory. `train` and `search` both call [`evaluate`] (the
//! search through [`evaluate_priced`] with its [`Prices`] cached per key and pipeline degree).

use bottleneck_core::hardware::Hardware;
use bottleneck_core::ir::{Collective, CollectiveKind, Op, OpClass, Scope};
use bottleneck_core::pricing::{price_collective, price_op};
use bottleneck_core::Precision;
use serde::Serialize;

use crate::costs::{forward_flops_per_sequence, LayerCosts};
use crate::layout::{Job, Layout, Recompute};
use crate::memory::{memory_with, Memory, ModelSizes};

/// Parameters per data-parallel gradient bucket (Megatron-LM `DistributedDataParallel`
/// default `bucket_size` = 40,000,000 elements).
pub const BUCKET_PARAMS: f64 = 40e6;

/// Bytes of one gradient or parameter element on the wire (bf16).
pub const WIRE_BYTES: f64 = 2.0;

/// Device-memory bytes the Adam update moves per parameter: reads fp32 master weight, both
/// moments and the bf16 gradient (4 + 4 + 4 + 2), writes the three fp32 states and the bf16
/// weight (12 + 2).
pub const ADAM_BYTES_PER_PARAM: f64 = 28.0;
/// Arithmetic of one Adam update per parameter (moment updates, bias correction, sqrt,
/// division, weight decay).
pub const ADAM_FLOPS_PER_PARAM: f64 = 12.0;

/// Facts of a job that no layout changes, computed once.
#[derive(Clone, Copy, Debug)]
pub struct JobFacts {
    pub sizes: ModelSizes,
    /// Model FLOPs of one sequence (3 × forward).
    pub model_flops_per_seq: f64,
    /// Dense peak FLOP/s of the GEMM precision.
    pub peak_flops: f64,
}

impl JobFacts {
    pub fn new(job: &Job<'_>) -> JobFacts {
        JobFacts {
            sizes: ModelSizes::new(job.arch, job.attention),
            model_flops_per_seq: 3.0 * forward_flops_per_sequence(job),
            peak_flops: job.hw.peak_flops(job.precision.gemm()).unwrap_or(1.0),
        }
    }
}

/// A communication line of a step.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
pub struct Comm {
    /// What it is, e.g. `tp.all_reduce`, `dp.reduce_scatter`.
    pub collective: &'static str,
    /// Members of the group.
    pub group: u32,
    /// Whether the group leaves the NVLink domain.
    pub inter_node: bool,
    /// Bytes per GPU over the step (buffer sizes as `core::ir::Collective` defines them).
    pub bytes: f64,
    /// Time on the link over the step.
    pub time_s: f64,
    /// Part of `time_s` not hidden behind computation.
    pub exposed_s: f64,
}

/// Where the step's time goes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
pub struct Breakdown {
    pub compute_s: f64,
    pub exposed_communication_s: f64,
    pub pipeline_bubble_s: f64,
    pub overhead_s: f64,
}

/// The binding resource (SPEC vocabulary) and its share of the step.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct Binding {
    pub resource: &'static str,
    pub share: f64,
}

/// Communication slots of an evaluation (fixed, so that evaluation never allocates).
pub const COMM_SLOTS: usize = 8;

/// The evaluation of one layout.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct Evaluation {
    pub layout: Layout,
    /// Micro-batches per step per data-parallel rank.
    pub micro_batches: u64,
    pub step_time_s: f64,
    pub tokens_per_s: f64,
    pub tflops_per_gpu: f64,
    pub mfu: f64,
    pub hfu: f64,
    pub breakdown: Breakdown,
    pub memory: Memory,
    pub bottleneck: Binding,
    /// Layers on the first, a middle and the last pipeline stage.
    pub stage_layers: [u64; 3],
    /// The slowest stage's time per micro-batch.
    pub stage_time_s: f64,
    #[serde(skip)]
    pub comms: [Comm; COMM_SLOTS],
}

impl Evaluation {
    /// The communication lines that exist.
    pub fn communication(&self) -> impl Iterator<Item = &Comm> {
        self.comms.iter().filter(|c| c.group > 1)
    }
}

fn collective(kind: CollectiveKind, group: u32, scope: Scope, bytes: f64, hw: &Hardware) -> f64 {
    price_collective(
        &Collective {
            kind,
            group,
            scope,
            bytes,
        },
        hw,
    )
    .time_s
}

/// Layers on the first, busiest middle and last stage: `L / p` each, the remainder spread over
/// the stages after the first (which also holds the embedding).
pub fn stage_layers(layers: u64, pp: u32) -> [u64; 3] {
    let p = u64::from(pp);
    if p <= 1 {
        return [layers; 3];
    }
    let base = layers / p;
    let r = layers % p;
    let last = base + u64::from(r >= p - 1);
    let mid = if p > 2 {
        base + u64::from(r >= 1)
    } else {
        last
    };
    [base, mid, last]
}

/// Collective, optimizer and parameter figures that depend on the cost key and the pipeline
/// and data-parallel degrees but not on virtual stages, ZeRO stage or recompute: the search
/// computes them once per (key, pp), `train` once per layout.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Prices {
    /// Parameters per GPU of the first, busiest middle and last stage.
    pub stage_params: [f64; 3],
    /// ZeRO-3 per-layer parameter all-gather and gradient reduce-scatter.
    pub z3_all_gather_s: f64,
    pub z3_reduce_scatter_s: f64,
    /// One pipeline send of a micro-batch's activations, and its bytes.
    pub p2p_s: f64,
    pub p2p_bytes: f64,
    /// Gradient all-reduce, reduce-scatter and parameter all-gather per stage.
    pub dp_all_reduce_s: [f64; 3],
    pub dp_reduce_scatter_s: [f64; 3],
    pub dp_all_gather_s: [f64; 3],
    /// The optimizer update per stage, unsharded and sharded over DP.
    pub optimizer_s: [f64; 3],
    pub optimizer_sharded_s: [f64; 3],
}

impl Prices {
    /// Prices the collectives and the optimizer of `lay` (its vpp, ZeRO stage and recompute
    /// are ignored).
    pub fn new(job: &Job<'_>, facts: &JobFacts, lay: &Layout) -> Prices {
        let hw = job.hw;
        let dp = lay.dp;
        let sizes = &facts.sizes;
        let dp_scope = scope(hw, dp, lay.tp * lay.cp);
        let layer_param_bytes = sizes.layer_params_per_gpu(lay) * WIRE_BYTES;
        let stage_params = [0, 1, 2].map(|w| sizes.stage_params_per_gpu(lay, w));
        let t = (lay.micro_batch * job.seq) as f64 / f64::from(lay.cp);
        let sp = if lay.sequence_parallel && lay.tp > 1 {
            f64::from(lay.tp)
        } else {
            1.0
        };
        let p2p_bytes = t * job.arch.hidden as f64 * Precision::Bf16.bytes() / sp;
        let p2p_s = price_op(
            &Op::collective(
                "pp.send_recv",
                Precision::Bf16,
                Collective {
                    kind: CollectiveKind::SendRecv,
                    group: 2,
                    scope: scope(hw, 2, lay.tp * lay.cp * dp),
                    bytes: p2p_bytes,
                },
                1.0,
            ),
            hw,
        )
        .time_s;
        let dp_c = |kind, params: f64| collective(kind, dp, dp_scope, params * WIRE_BYTES, hw);
        let opt = |params: f64| {
            price_op(
                &Op::memory(
                    "optimizer.adam",
                    OpClass::Optimizer,
                    Precision::Fp32,
                    ADAM_FLOPS_PER_PARAM * params,
                    ADAM_BYTES_PER_PARAM * params,
                    1.0,
                ),
                hw,
            )
            .time_s
        };
        Prices {
            stage_params,
            z3_all_gather_s: collective(
                CollectiveKind::AllGather,
                dp,
                dp_scope,
                layer_param_bytes,
                hw,
            ),
            z3_reduce_scatter_s: collective(
                CollectiveKind::ReduceScatter,
                dp,
                dp_scope,
                layer_param_bytes,
                hw,
            ),
            p2p_s,
            p2p_bytes,
            dp_all_reduce_s: stage_params.map(|p| dp_c(CollectiveKind::AllReduce, p)),
            dp_reduce_scatter_s: stage_params.map(|p| dp_c(CollectiveKind::ReduceScatter, p)),
            dp_all_gather_s: stage_params.map(|p| dp_c(CollectiveKind::AllGather, p)),
            optimizer_s: stage_params.map(opt),
            optimizer_sharded_s: stage_params.map(|p| opt(p / f64::from(dp))),
        }
    }
}

/// Evaluates `lay` for `job` from the per-layer costs of its [`crate::costs::CostKey`].
/// `lay` must satisfy [`crate::layout::rule_broken`].
pub fn evaluate(job: &Job<'_>, facts: &JobFacts, c: &LayerCosts, lay: &Layout) -> Evaluation {
    evaluate_priced(job, facts, c, &Prices::new(job, facts, lay), lay)
}

/// [`evaluate`] with the [`Prices`] of `lay`'s key, pipeline and data-parallel degrees given.
pub fn evaluate_priced(
    job: &Job<'_>,
    facts: &JobFacts,
    c: &LayerCosts,
    pr: &Prices,
    lay: &Layout,
) -> Evaluation {
    let hw = job.hw;
    let p = lay.pp;
    let pf = f64::from(p);
    let v = f64::from(lay.vpp);
    let dp = lay.dp;
    let m = job.global_batch / (u64::from(dp) * lay.micro_batch);
    let mf = m as f64;
    let layers = stage_layers(job.arch.layers, p);
    let (layer_t, layer_x) = c.layer_time(lay.recompute);
    let first_edge = c.first_fwd.forward_time() + c.first_bwd.backward_time();
    let last_edge = c.last_fwd.forward_time() + c.last_bwd.backward_time();

    // ZeRO-3 / FSDP: each layer's parameters are gathered before its forward and again before
    // its backward, its gradients reduce-scattered after; prefetching hides each behind the
    // neighbouring layer's computation.
    let sizes = &facts.sizes;
    let dp_scope = scope(hw, dp, lay.tp * lay.cp);
    let layer_param_bytes = sizes.layer_params_per_gpu(lay) * WIRE_BYTES;
    let (z3_exposed, z3_time) = if lay.zero == 3 && dp > 1 {
        let ag = pr.z3_all_gather_s;
        let rs = pr.z3_reduce_scatter_s;
        let recompute_ag = if lay.recompute == Recompute::Full {
            ag
        } else {
            0.0
        };
        let fwd = (ag - c.fwd.compute_s).max(0.0);
        let bwd = (ag + recompute_ag + rs - c.bwd.compute_s).max(0.0);
        (fwd + bwd, 2.0 * ag + recompute_ag + rs)
    } else {
        (0.0, 0.0)
    };

    let stage = |n: u64, edge: f64| -> (f64, f64) {
        let nf = n as f64;
        (
            nf * (layer_t + z3_exposed) + edge,
            nf * (layer_x + z3_exposed),
        )
    };
    let (t_stage, x_stage, slow) = if p == 1 {
        let (t, x) = stage(layers[0], first_edge + last_edge);
        (t, x, 0)
    } else {
        let cands = [
            stage(layers[0], first_edge),
            stage(layers[1], 0.0),
            stage(layers[2], last_edge),
        ];
        let mut best = 0;
        for (i, s) in cands.iter().enumerate() {
            if s.0 > cands[best].0 {
                best = i;
            }
        }
        (cands[best].0, cands[best].1, best)
    };
    let bubble = if p > 1 { (pf - 1.0) / v * t_stage } else { 0.0 };

    let mut comms = [Comm::default(); COMM_SLOTS];
    let tp_inter = scope(hw, lay.tp, 1) == Scope::InterNode;
    let layers_slow = layers[slow] as f64;
    let rec_fwd = if lay.recompute == Recompute::Full {
        1.0
    } else {
        0.0
    };
    // TP, EP and CP lines: per micro-batch costs of the slowest stage's layers.
    let tp_time = mf * layers_slow * (c.fwd.tp_s * (1.0 + rec_fwd) + c.bwd.tp_s);
    let tp_exposed =
        mf * layers_slow * (c.fwd.tp_s * (1.0 + rec_fwd) + (c.bwd.tp_s - c.bwd.wgrad_s).max(0.0));
    comms[0] = Comm {
        collective: if lay.sequence_parallel {
            "tp.all_gather+reduce_scatter"
        } else {
            "tp.all_reduce"
        },
        group: lay.tp,
        inter_node: tp_inter,
        bytes: mf * layers_slow * (c.fwd.tp_bytes * (1.0 + rec_fwd) + c.bwd.tp_bytes),
        time_s: tp_time,
        exposed_s: tp_exposed,
    };
    comms[1] = Comm {
        collective: "ep.all_to_all",
        group: lay.ep,
        inter_node: scope(hw, lay.ep, 1) == Scope::InterNode,
        bytes: mf * layers_slow * (c.fwd.ep_bytes * (1.0 + rec_fwd) + c.bwd.ep_bytes),
        time_s: mf * layers_slow * (c.fwd.ep_s * (1.0 + rec_fwd) + c.bwd.ep_s),
        exposed_s: mf * layers_slow * (c.fwd.ep_s * (1.0 + rec_fwd) + c.bwd.ep_s),
    };
    let cp_exp = (c.fwd.cp_s - c.fwd.attention_s).max(0.0) * (1.0 + rec_fwd)
        + (c.bwd.cp_s - c.bwd.attention_s).max(0.0);
    comms[2] = Comm {
        collective: "cp.ring_send_recv",
        group: lay.cp,
        inter_node: scope(hw, lay.cp, lay.tp) == Scope::InterNode,
        bytes: mf * layers_slow * (c.fwd.cp_bytes * (1.0 + rec_fwd) + c.bwd.cp_bytes),
        time_s: mf * layers_slow * (c.fwd.cp_s * (1.0 + rec_fwd) + c.bwd.cp_s),
        exposed_s: mf * layers_slow * cp_exp,
    };

    // Pipeline point-to-point: every micro-batch crosses each chunk boundary forward
    // (activations) and backward (gradients); Megatron's 1F1B waits on them.
    let p2p_exposed = if p > 1 {
        let one = pr.p2p_s;
        let bytes = pr.p2p_bytes;
        let pp_scope = scope(hw, 2, lay.tp * lay.cp * dp);
        let n = 2.0 * mf * v;
        comms[3] = Comm {
            collective: "pp.send_recv",
            group: p,
            inter_node: pp_scope == Scope::InterNode,
            bytes: n * bytes,
            time_s: n * one,
            exposed_s: n * one,
        };
        n * one
    } else {
        0.0
    };

    // Data parallel gradient synchronisation (bucketed, overlapped with the last
    // micro-batch's backward) and, under ZeRO-1/2, the parameter all-gather after the update
    // (overlapped with the next step's first forward).
    let slot = if p == 1 { 0 } else { slow };
    let stage_params = pr.stage_params[slot];
    let grad_bytes = stage_params * WIRE_BYTES;
    let buckets = (stage_params / BUCKET_PARAMS).ceil().max(1.0);
    let bwd_window = layers_slow * (layer_t - c.fwd.forward_time());
    let fwd_window = layers_slow * c.fwd.forward_time();
    let hide = |t: f64, window: f64| -> f64 { (t - window).max(t / buckets) };
    let mut dp_exposed = 0.0;
    if dp > 1 {
        match lay.zero {
            0 => {
                let ar = pr.dp_all_reduce_s[slot];
                let x = hide(ar, bwd_window);
                dp_exposed += x;
                comms[4] = Comm {
                    collective: "dp.all_reduce",
                    group: dp,
                    inter_node: dp_scope == Scope::InterNode,
                    bytes: grad_bytes,
                    time_s: ar,
                    exposed_s: x,
                };
            }
            1 | 2 => {
                let rs = pr.dp_reduce_scatter_s[slot];
                // ZeRO-2 keeps only a shard of the gradients: it reduce-scatters after every
                // micro-batch's backward.
                let times = if lay.zero == 2 { mf } else { 1.0 };
                let x = times * hide(rs, bwd_window);
                dp_exposed += x;
                comms[4] = Comm {
                    collective: "dp.reduce_scatter",
                    group: dp,
                    inter_node: dp_scope == Scope::InterNode,
                    bytes: times * grad_bytes,
                    time_s: times * rs,
                    exposed_s: x,
                };
                let ag = pr.dp_all_gather_s[slot];
                let xa = hide(ag, fwd_window);
                dp_exposed += xa;
                comms[5] = Comm {
                    collective: "dp.all_gather",
                    group: dp,
                    inter_node: dp_scope == Scope::InterNode,
                    bytes: grad_bytes,
                    time_s: ag,
                    exposed_s: xa,
                };
            }
            _ => {
                let per_mb_layers = layers_slow;
                comms[6] = Comm {
                    collective: "zero3.all_gather+reduce_scatter",
                    group: dp,
                    inter_node: dp_scope == Scope::InterNode,
                    bytes: mf
                        * per_mb_layers
                        * layer_param_bytes
                        * if lay.recompute == Recompute::Full {
                            4.0
                        } else {
                            3.0
                        },
                    time_s: mf * per_mb_layers * z3_time,
                    exposed_s: mf * per_mb_layers * z3_exposed,
                };
            }
        }
    }

    // The optimizer update on this GPU's shard of the parameters.
    let opt = if lay.zero >= 1 {
        pr.optimizer_sharded_s[slot]
    } else {
        pr.optimizer_s[slot]
    };
    let overhead = hw.efficiency.step_overhead_us * 1e-6;

    let step = mf * t_stage + bubble + p2p_exposed + dp_exposed + opt + overhead;
    let breakdown = Breakdown {
        compute_s: mf * (t_stage - x_stage) + opt,
        exposed_communication_s: mf * x_stage + p2p_exposed + dp_exposed,
        pipeline_bubble_s: bubble,
        overhead_s: overhead,
    };

    let memory = memory_with(job, sizes, lay, m, &pr.stage_params);
    let gpus = lay.gpus() as f64;
    let model_flops = facts.model_flops_per_seq * job.global_batch as f64;
    let recompute_flops = match lay.recompute {
        Recompute::None => 0.0,
        Recompute::Selective => c.selective.flops,
        Recompute::Full => c.fwd.flops,
    } * job.arch.layers as f64
        * f64::from(lay.tp)
        * f64::from(lay.cp)
        * (mf * f64::from(dp));
    let denom = step * gpus * facts.peak_flops;
    let tokens = (job.global_batch * job.seq) as f64;

    // The binding resource: kernel time split by what bounds each kernel, exposed
    // communication, the bubble and host overhead.
    let k = c.fwd.compute_s + c.bwd.compute_s;
    let (mem_frac, ovh_frac) = if k > 0.0 {
        (
            (c.fwd.memory_bound_s + c.bwd.memory_bound_s) / k,
            (c.fwd.overhead_bound_s + c.bwd.overhead_bound_s) / k,
        )
    } else {
        (0.0, 0.0)
    };
    let cs = breakdown.compute_s;
    let shares = [
        ("compute", cs * (1.0 - mem_frac - ovh_frac)),
        ("memory_bandwidth", cs * mem_frac),
        ("interconnect", breakdown.exposed_communication_s),
        ("pipeline_bubble", bubble),
        ("host_overhead", overhead + cs * ovh_frac),
    ];
    let mut best = shares[0];
    for s in shares {
        if s.1 > best.1 {
            best = s;
        }
    }
    let bottleneck = if memory.fits {
        Binding {
            resource: best.0,
            share: if step > 0.0 { best.1 / step } else { 0.0 },
        }
    } else {
        Binding {
            resource: "memory_capacity",
            share: 1.0,
        }
    };

    Evaluation {
        layout: *lay,
        micro_batches: m,
        step_time_s: step,
        tokens_per_s: tokens / step,
        tflops_per_gpu: model_flops / step / gpus / 1e12,
        mfu: model_flops / denom,
        hfu: (model_flops + recompute_flops) / denom,
        breakdown,
        memory,
        bottleneck,
        stage_layers: layers,
        stage_time_s: t_stage,
        comms,
    }
}

/// Scope of a group of `size` GPUs placed `stride` apart (Megatron's rank order: TP
/// innermost, then CP, then DP, then PP).
pub fn scope(hw: &Hardware, size: u32, stride: u32) -> Scope {
    if u64::from(size) * u64::from(stride) <= u64::from(hw.gpus_per_node()) {
        Scope::IntraNode
    } else {
        Scope::InterNode
    }
}
