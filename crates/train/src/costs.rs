//! Per-layer costs of one micro-batch, priced once per (TP, CP, EP, micro-batch, sequence
//! parallelism) and reused by every layout that shares them.
//!
//! The forward ops come from `core::lower::forward`, the backward ops from
//! [`crate::backward::backward_of`]; every second is `core::pricing::price_op`'s.

use bottleneck_core::arch::ModelArch;
use bottleneck_core::hardware::Hardware;
use bottleneck_core::ir::{Collective, CollectiveKind, Op, OpClass};
use bottleneck_core::lower::{forward, LayerRange, LowerOptions, Parallel, Precisions, TokenShape};
use bottleneck_core::pricing::{price_op, Bound};
use bottleneck_core::Precision;
use serde::Serialize;

use crate::backward::{backward_of, Role, TrainOp};
use crate::layout::{AttentionImpl, Job, Layout, TrainPrecision};

/// What the per-layer costs depend on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CostKey {
    pub tp: u32,
    pub cp: u32,
    pub ep: u32,
    pub micro_batch: u64,
    pub sequence_parallel: bool,
}

impl CostKey {
    /// The key of a layout.
    pub fn of(lay: &Layout) -> CostKey {
        CostKey {
            tp: lay.tp,
            cp: lay.cp,
            ep: lay.ep,
            micro_batch: lay.micro_batch,
            sequence_parallel: lay.sequence_parallel && lay.tp > 1,
        }
    }
}

/// The priced time of a group of ops, split by what it is.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
pub struct PassCost {
    /// Kernels (everything but collectives), serial.
    pub compute_s: f64,
    /// Part of `compute_s` in kernels bound by device-memory bandwidth.
    pub memory_bound_s: f64,
    /// Part of `compute_s` in kernels bound by fixed per-kernel costs.
    pub overhead_bound_s: f64,
    /// Part of `compute_s` in fused attention.
    pub attention_s: f64,
    /// Part of `compute_s` in weight-gradient GEMMs (overlaps TP collectives in backward).
    pub wgrad_s: f64,
    /// Tensor-parallel collectives.
    pub tp_s: f64,
    /// Expert-parallel all-to-all.
    pub ep_s: f64,
    /// Context-parallel ring send/recv.
    pub cp_s: f64,
    pub tp_bytes: f64,
    pub ep_bytes: f64,
    pub cp_bytes: f64,
    pub flops: f64,
}

impl PassCost {
    fn add_op(&mut self, role: Role, op: &Op, hw: &Hardware) {
        let c = price_op(op, hw);
        let t = c.time_s * op.count;
        if let Some(col) = &op.collective {
            let bytes = col.bytes * op.count;
            match col.kind {
                CollectiveKind::AllToAll => {
                    self.ep_s += t;
                    self.ep_bytes += bytes;
                }
                CollectiveKind::SendRecv => {
                    self.cp_s += t;
                    self.cp_bytes += bytes;
                }
                _ => {
                    self.tp_s += t;
                    self.tp_bytes += bytes;
                }
            }
            return;
        }
        self.compute_s += t;
        self.flops += op.total_flops();
        match c.bound() {
            Bound::MemoryBandwidth => self.memory_bound_s += t,
            Bound::Overhead => self.overhead_bound_s += t,
            _ => {}
        }
        if is_attention_core(op) {
            self.attention_s += t;
        }
        if role == Role::WeightGrad {
            self.wgrad_s += t;
        }
    }

    fn of(ops: &[TrainOp], hw: &Hardware, scale: f64) -> PassCost {
        let mut p = PassCost::default();
        for o in ops {
            p.add_op(o.role, &o.op, hw);
        }
        p.scaled(scale)
    }

    fn scaled(&self, s: f64) -> PassCost {
        PassCost {
            compute_s: self.compute_s * s,
            memory_bound_s: self.memory_bound_s * s,
            overhead_bound_s: self.overhead_bound_s * s,
            attention_s: self.attention_s * s,
            wgrad_s: self.wgrad_s * s,
            tp_s: self.tp_s * s,
            ep_s: self.ep_s * s,
            cp_s: self.cp_s * s,
            tp_bytes: self.tp_bytes * s,
            ep_bytes: self.ep_bytes * s,
            cp_bytes: self.cp_bytes * s,
            flops: self.flops * s,
        }
    }

    /// Time on the critical path in the forward pass: kernels, TP and EP collectives
    /// (Megatron runs them synchronously), and the part of the ring attention exchange that
    /// the attention kernels do not hide.
    pub fn forward_time(&self) -> f64 {
        self.compute_s + self.exposed_forward_comm()
    }

    /// The exposed communication of [`PassCost::forward_time`].
    pub fn exposed_forward_comm(&self) -> f64 {
        self.tp_s + self.ep_s + (self.cp_s - self.attention_s).max(0.0)
    }

    /// Time on the critical path in the backward pass: TP collectives overlap the
    /// weight-gradient GEMMs (Megatron's asynchronous TP all-reduce), ring attention overlaps
    /// the attention backward.
    pub fn backward_time(&self) -> f64 {
        self.compute_s + self.exposed_backward_comm()
    }

    /// The exposed communication of [`PassCost::backward_time`].
    pub fn exposed_backward_comm(&self) -> f64 {
        (self.tp_s - self.wgrad_s).max(0.0) + self.ep_s + (self.cp_s - self.attention_s).max(0.0)
    }
}

/// Costs of one micro-batch on one GPU.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
pub struct LayerCosts {
    /// One transformer layer (the model's average layer), forward.
    pub fwd: PassCost,
    /// One layer, backward.
    pub bwd: PassCost,
    /// What selective recompute re-runs in one layer's backward: the attention core forward.
    pub selective: PassCost,
    /// Embedding forward and backward (first stage).
    pub first_fwd: PassCost,
    pub first_bwd: PassCost,
    /// Final norm, LM head and loss, forward and backward (last stage).
    pub last_fwd: PassCost,
    pub last_bwd: PassCost,
}

impl LayerCosts {
    /// One layer forward + backward + `recompute`'s extra forward, on the critical path.
    pub fn layer_time(&self, recompute: crate::layout::Recompute) -> (f64, f64) {
        use crate::layout::Recompute;
        let f = self.fwd.forward_time();
        let b = self.bwd.backward_time();
        let fx = self.fwd.exposed_forward_comm();
        let bx = self.bwd.exposed_backward_comm();
        let (r, rx) = match recompute {
            Recompute::None => (0.0, 0.0),
            Recompute::Selective => (self.selective.compute_s, 0.0),
            Recompute::Full => (f, fx),
        };
        (f + b + r, fx + bx + rx)
    }
}

/// The storage and math precisions of a training job.
pub fn precisions(p: TrainPrecision) -> Precisions {
    let act = if p == TrainPrecision::Fp16 {
        Precision::Fp16
    } else {
        Precision::Bf16
    };
    Precisions {
        weights: p.gemm(),
        activations: act,
        kv: act,
    }
}

/// The lowering's layout for a cost key.
pub fn parallel(key: &CostKey, hw: &Hardware) -> Parallel {
    let mut par = Parallel::single(hw.gpus_per_node());
    par.tp = key.tp;
    par.cp = key.cp;
    par.ep = key.ep;
    par.sequence_parallel = key.sequence_parallel;
    par
}

fn none_layers() -> LayerRange {
    LayerRange {
        dense: 0,
        moe: 0,
        local: 0,
    }
}

/// The forward ops of every layer for one micro-batch (counts are layers), with the ring
/// attention exchange of context parallelism.
pub fn layer_forward_ops(job: &Job<'_>, key: &CostKey) -> Vec<Op> {
    let arch = job.arch;
    let par = parallel(key, job.hw);
    let prec = precisions(job.precision);
    let tokens = TokenShape::training(key.micro_batch, job.seq, arch.sliding_window);
    let mut ops = Vec::with_capacity(32);
    forward(
        arch,
        &tokens,
        &par,
        &prec,
        &LowerOptions {
            embedding: false,
            lm_head: false,
            pipeline_sends: false,
            layers: LayerRange::all(arch),
        },
        &mut ops,
    );
    if key.ep > 1 {
        balance_experts(&mut ops, key, &par);
    }
    // The two residual adds of every layer (read the block output and the residual, write the
    // sum), which the forward lowering folds away; under sequence parallelism they run on
    // 1/tp of the tokens.
    let tokens_here = (key.micro_batch * job.seq) as f64
        / f64::from(key.cp)
        / if key.sequence_parallel {
            f64::from(key.tp)
        } else {
            1.0
        };
    let stream = prec.activations.bytes().max(2.0);
    ops.push(Op::memory(
        "residual.add",
        OpClass::Elementwise,
        prec.activations,
        tokens_here * arch.hidden as f64,
        3.0 * tokens_here * arch.hidden as f64 * stream,
        2.0 * arch.layers as f64,
    ));
    if job.attention == AttentionImpl::Unfused && arch.mla.is_none() {
        ops = unfuse_attention(arch, job, key, &prec, ops);
    }
    if key.cp > 1 {
        ops.push(ring_attention_op(arch, job, key, &par));
    }
    ops
}

/// Training splits experts over `ep` data-parallel ranks, each of which sends its own tokens:
/// with balanced routing every GPU of a TP × EP domain computes `t·k / tp` routed tokens at
/// full expert width (`t` tokens per TP group, `k` experts per token). The forward lowering
/// places EP inside the TP group (tokens shared by the EP ranks), so its expert FLOPs and
/// activation bytes are rescaled to that share; weight bytes stay those of the local experts.
fn balance_experts(ops: &mut [Op], key: &CostKey, par: &Parallel) {
    let tp = f64::from(key.tp);
    let ep = f64::from(key.ep);
    let etp = f64::from(par.expert_tp());
    let shared = if key.ep > 1 { tp.min(ep) } else { 1.0 };
    let f = etp * ep / (tp * shared);
    for op in ops
        .iter_mut()
        .filter(|o| o.name.starts_with("moe.experts."))
    {
        op.flops *= f;
        op.bytes = op.weight_bytes + (op.bytes - op.weight_bytes) * f;
        if let Some(g) = op.gemm.as_mut() {
            g[0] *= f;
        }
    }
}

/// Whether `op` belongs to the attention core (what selective recompute re-runs and what ring
/// attention overlaps).
pub fn is_attention_core(op: &Op) -> bool {
    op.class == OpClass::Attention
        || matches!(
            op.name,
            "attn.scores_bmm" | "attn.softmax" | "attn.dropout" | "attn.context_bmm"
        )
}

/// Replaces each fused attention op by Megatron-LM's unfused core: `QKᵀ` over the full
/// `s_q × s_k` scores (the causal mask is applied after the product), scale-mask-softmax,
/// dropout (probabilities and a one-byte mask), and `probabilities · V`.
fn unfuse_attention(
    arch: &ModelArch,
    job: &Job<'_>,
    key: &CostKey,
    prec: &Precisions,
    ops: Vec<Op>,
) -> Vec<Op> {
    let act = prec.activations.bytes();
    let p = prec.activations;
    let b = key.micro_batch as f64;
    let sq = job.seq as f64 / f64::from(key.cp);
    let window = arch.sliding_window.map_or(f64::INFINITY, |w| w as f64);
    let heads = arch.heads as f64 / f64::from(key.tp);
    let hd = arch.head_dim as f64;
    let mut out = Vec::with_capacity(ops.len() + 8);
    for op in ops {
        if op.class != OpClass::Attention {
            out.push(op);
            continue;
        }
        let sk = if op.name == "attn.core_local" {
            (job.seq as f64).min(window)
        } else {
            job.seq as f64
        };
        let scores = b * heads * sq * sk;
        let q_bytes = b * heads * sq * hd * act;
        let k_bytes = b * heads * sk * hd * act;
        let mut bmm1 = Op::gemm("attn.scores_bmm", p, [sq, sk, hd], act, act, op.count);
        bmm1.flops = 2.0 * scores * hd;
        bmm1.weight_bytes = 0.0;
        bmm1.bytes = q_bytes + k_bytes + scores * act;
        out.push(bmm1);
        out.push(Op::memory(
            "attn.softmax",
            OpClass::Elementwise,
            p,
            5.0 * scores,
            2.0 * scores * act,
            op.count,
        ));
        out.push(Op::memory(
            "attn.dropout",
            OpClass::Elementwise,
            p,
            2.0 * scores,
            scores * (2.0 * act + 1.0),
            op.count,
        ));
        let mut bmm2 = Op::gemm("attn.context_bmm", p, [sq, hd, sk], act, act, op.count);
        bmm2.flops = 2.0 * scores * hd;
        bmm2.weight_bytes = 0.0;
        bmm2.bytes = scores * act + k_bytes + q_bytes;
        out.push(bmm2);
    }
    out
}

/// Ring attention (Liu et al. 2023): each of the `cp − 1` steps passes this rank's K and V
/// block to the next rank while attention runs on the current block.
fn ring_attention_op(arch: &ModelArch, job: &Job<'_>, key: &CostKey, par: &Parallel) -> Op {
    let t = (key.micro_batch * job.seq) as f64 / f64::from(key.cp);
    let tp = f64::from(key.tp);
    let kv_elems = match &arch.mla {
        Some(m) => (m.kv_lora_rank + m.qk_rope_head_dim) as f64,
        None => 2.0 * (arch.kv_heads as f64 / tp).max(1.0) * arch.head_dim as f64,
    };
    Op::collective(
        "cp.ring_send_recv",
        Precision::Bf16,
        Collective {
            kind: CollectiveKind::SendRecv,
            group: 2,
            scope: par.scope(key.cp, key.tp),
            bytes: t * kv_elems * Precision::Bf16.bytes(),
        },
        arch.layers as f64 * f64::from(key.cp - 1),
    )
}

/// The first-stage (embedding) and last-stage (final norm, LM head, loss) forward ops.
pub fn edge_forward_ops(job: &Job<'_>, key: &CostKey) -> (Vec<Op>, Vec<Op>) {
    let arch = job.arch;
    let par = parallel(key, job.hw);
    let prec = precisions(job.precision);
    let tokens = TokenShape::training(key.micro_batch, job.seq, arch.sliding_window);
    let mut first = Vec::with_capacity(8);
    forward(
        arch,
        &tokens,
        &par,
        &prec,
        &LowerOptions {
            embedding: true,
            lm_head: false,
            pipeline_sends: false,
            layers: none_layers(),
        },
        &mut first,
    );
    first.retain(|o| o.count > 0.0);
    let mut last = Vec::with_capacity(8);
    forward(
        arch,
        &tokens,
        &par,
        &prec,
        &LowerOptions {
            embedding: false,
            lm_head: true,
            pipeline_sends: false,
            layers: none_layers(),
        },
        &mut last,
    );
    last.retain(|o| o.count > 0.0);
    // Vocabulary-parallel cross-entropy on fp32 logits: read the bf16 logits, write and read
    // back fp32 softmax statistics.
    let lt = tokens.logit_tokens / f64::from(key.cp);
    let v = arch.vocab as f64 / f64::from(key.tp);
    last.push(Op::memory(
        "loss.cross_entropy",
        OpClass::Elementwise,
        Precision::Fp32,
        5.0 * lt * v,
        lt * v * (Precision::Bf16.bytes() + Precision::Fp32.bytes()),
        1.0,
    ));
    (first, last)
}

fn forward_as_train(ops: &[Op]) -> Vec<TrainOp> {
    ops.iter()
        .map(|o| TrainOp {
            role: Role::Forward,
            op: o.clone(),
        })
        .collect()
}

/// Every op of one micro-batch's forward and backward through all layers and both pipeline
/// edges, for the op table of `train`.
pub fn step_ops(job: &Job<'_>, key: &CostKey) -> Vec<TrainOp> {
    let layer = layer_forward_ops(job, key);
    let (first, last) = edge_forward_ops(job, key);
    let mut out = forward_as_train(&first);
    out.extend(forward_as_train(&layer));
    out.extend(forward_as_train(&last));
    backward_of(&last, &mut out);
    backward_of(&layer, &mut out);
    backward_of(&first, &mut out);
    out
}

/// Prices the per-layer and edge costs of one micro-batch for `key`.
pub fn layer_costs(job: &Job<'_>, key: &CostKey) -> LayerCosts {
    let hw = job.hw;
    let per_layer = 1.0 / job.arch.layers as f64;
    let fwd_ops = layer_forward_ops(job, key);
    let fwd_t = forward_as_train(&fwd_ops);
    let mut bwd_t = Vec::with_capacity(fwd_ops.len() * 2);
    backward_of(&fwd_ops, &mut bwd_t);
    let sel: Vec<TrainOp> = fwd_t
        .iter()
        .filter(|o| is_attention_core(&o.op))
        .cloned()
        .collect();
    let (first, last) = edge_forward_ops(job, key);
    let mut first_b = Vec::new();
    backward_of(&first, &mut first_b);
    let mut last_b = Vec::new();
    backward_of(&last, &mut last_b);
    LayerCosts {
        fwd: PassCost::of(&fwd_t, hw, per_layer),
        bwd: PassCost::of(&bwd_t, hw, per_layer),
        selective: PassCost::of(&sel, hw, per_layer),
        first_fwd: PassCost::of(&forward_as_train(&first), hw, 1.0),
        first_bwd: PassCost::of(&first_b, hw, 1.0),
        last_fwd: PassCost::of(&forward_as_train(&last), hw, 1.0),
        last_bwd: PassCost::of(&last_b, hw, 1.0),
    }
}

/// Forward matmul and attention FLOPs of one sequence through the whole model on one GPU (no
/// parallelism): the basis of model FLOPs (3× forward per step, PaLM's convention).
pub fn forward_flops_per_sequence(job: &Job<'_>) -> f64 {
    let job = &Job {
        attention: AttentionImpl::Fused,
        ..*job
    };
    let key = CostKey {
        tp: 1,
        cp: 1,
        ep: 1,
        micro_batch: 1,
        sequence_parallel: false,
    };
    let (first, last) = edge_forward_ops(job, &key);
    let layer = layer_forward_ops(job, &key);
    first
        .iter()
        .chain(&layer)
        .chain(&last)
        .filter(|o| matches!(o.class, OpClass::Gemm | OpClass::Attention))
        .map(Op::total_flops)
        .sum()
}
