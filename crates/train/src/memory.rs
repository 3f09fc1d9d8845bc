//! Device memory per GPU of a training layout: parameters, gradients and optimizer states of
//! mixed-precision Adam (sharded by ZeRO), and activations per Korthikanti et al. 2022
//! ("Reducing Activation Recomputation in Large Transformer Models", §4).

use bottleneck_core::arch::ModelArch;
use serde::Serialize;

use crate::layout::{AttentionImpl, Job, Layout, Recompute};

/// Bytes per parameter of bf16 weights.
pub const WEIGHT_BYTES: f64 = 2.0;
/// Bytes per parameter of bf16 gradients.
pub const GRADIENT_BYTES: f64 = 2.0;
/// Bytes per parameter of Adam state in mixed precision: fp32 master weights and two fp32
/// moments (ZeRO paper, Rajbhandari et al. 2020 §3.1: K = 12; 16 bytes per parameter with the
/// bf16 weights and gradients).
pub const OPTIMIZER_BYTES: f64 = 12.0;

/// Sizes of a model that every layout shares.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct ModelSizes {
    pub layers: u64,
    /// Non-expert parameters of the average layer (attention, norms, dense MLP, router,
    /// shared experts).
    pub layer_params: f64,
    /// Routed-expert parameters of the average layer.
    pub layer_expert_params: f64,
    pub embedding_params: f64,
    /// LM head and final norm.
    pub head_params: f64,
    pub tied_embeddings: bool,
    pub hidden: f64,
    pub heads: f64,
    pub vocab: f64,
    /// Korthikanti's per-layer activation bytes per `s·b·h` that TP splits (24 for GPT).
    pub act_split: f64,
    /// The part TP does not split unless sequence parallel (10 for GPT: norm inputs, block
    /// inputs, dropout masks).
    pub act_replicated: f64,
    /// Whether the attention scores sit in device memory (unfused attention): Korthikanti's
    /// `5as/h` term. FlashAttention keeps only per-row softmax statistics.
    pub stores_scores: bool,
}

impl ModelSizes {
    pub fn new(arch: &ModelArch, attention: AttentionImpl) -> ModelSizes {
        let l = arch.layers as f64;
        let h = arch.hidden as f64;
        let common = (arch.attention_params()
            + arch.norms_per_layer * arch.norm_params()
            + arch.extra_norm_params_per_layer) as f64;
        let dense = arch.dense_layers() as f64 * arch.mlp.params(arch.hidden) as f64;
        let (experts, moe_rest, moe_up, moe_ffn) = match &arch.moe {
            Some(m) => {
                let e = (m.moe_layers * m.experts * m.expert.params(arch.hidden)) as f64;
                let rest = m.moe_layers as f64 * arch.moe_block_params() as f64 - e;
                let k = m.top_k as f64;
                let ffn = m.expert.ffn as f64;
                let up = if m.expert.gated { 2.0 * ffn } else { ffn };
                let (su, sf) = m.shared.as_ref().map_or((0.0, 0.0), |s| {
                    let f = s.ffn as f64;
                    (if s.gated { 2.0 * f } else { f }, f)
                });
                (
                    e,
                    rest,
                    m.moe_layers as f64 * (k * up + su),
                    m.moe_layers as f64 * (k * ffn + sf),
                )
            }
            None => (0.0, 0.0, 0.0, 0.0),
        };
        let dl = arch.dense_layers() as f64;
        let dffn = arch.mlp.ffn as f64;
        let dup = if arch.mlp.gated { 2.0 * dffn } else { dffn };
        let up = (dl * dup + moe_up) / l / h;
        let f = (dl * dffn + moe_ffn) / l / h;
        let q = arch.q_dim() as f64 / h;
        let kv = match &arch.mla {
            Some(_) => q,
            None => (arch.kv_heads * arch.head_dim) as f64 / h,
        };
        ModelSizes {
            layers: arch.layers,
            layer_params: (l * common + dense + moe_rest) / l,
            layer_expert_params: experts / l,
            embedding_params: arch.embedding_params() as f64,
            head_params: (arch.lm_head_params() + arch.norm_params()) as f64,
            tied_embeddings: arch.tie_embeddings,
            hidden: h,
            heads: arch.heads as f64,
            vocab: arch.vocab as f64,
            // Q, K, V (2 bytes each) + attention output + MLP activation input and output.
            act_split: 2.0 * (q + 2.0 * kv) + 2.0 * q + 2.0 * up + 2.0 * f,
            act_replicated: 10.0,
            stores_scores: attention == AttentionImpl::Unfused,
        }
    }

    /// Parameters of one layer on one GPU: TP splits the layer, routed experts split over EP
    /// and, within each expert, over the TP degree beyond EP.
    pub fn layer_params_per_gpu(&self, lay: &Layout) -> f64 {
        let etp = if lay.ep >= lay.tp {
            1.0
        } else {
            f64::from(lay.tp / lay.ep.max(1)).max(1.0)
        };
        self.layer_params / f64::from(lay.tp) + self.layer_expert_params / (f64::from(lay.ep) * etp)
    }

    /// Parameters one GPU of pipeline stage `which` (0 first, 1 middle, 2 last) holds.
    pub fn stage_params_per_gpu(&self, lay: &Layout, which: usize) -> f64 {
        let layers = crate::step::stage_layers(self.layers, lay.pp)[which] as f64;
        let tp = f64::from(lay.tp);
        let mut p = layers * self.layer_params_per_gpu(lay);
        let only = lay.pp == 1;
        if only || which == 0 {
            p += self.embedding_params / tp;
        }
        if only || which == 2 {
            p += self.head_params / tp;
            if self.tied_embeddings && !only {
                // The last stage keeps its own copy of the tied token table for the LM head.
                p += self.vocab * self.hidden / tp;
            }
        }
        p
    }

    /// Activation bytes one layer stores for one micro-batch of `micro_batch` sequences of
    /// `seq` tokens (after context parallelism), Korthikanti et al. eqs. 1–5:
    /// `sbh(34 + 5as/h)` without parallelism, the 24 (and score) part split by TP, all of it
    /// split under sequence parallelism; selective recompute drops the `5as/h` scores; full
    /// recompute keeps only the `2sbh` input. Fused attention never stores the scores.
    pub fn layer_activation_bytes(
        &self,
        lay: &Layout,
        seq: f64,
        micro_batch: f64,
        recompute: Recompute,
    ) -> f64 {
        let t = f64::from(lay.tp);
        let sp = if lay.sequence_parallel && lay.tp > 1 {
            t
        } else {
            1.0
        };
        let s = seq / f64::from(lay.cp);
        let sbh = s * micro_batch * self.hidden;
        let coef = match recompute {
            Recompute::None => {
                self.act_replicated / sp
                    + self.act_split / t
                    + if self.stores_scores {
                        5.0 * self.heads * s / self.hidden / t
                    } else {
                        0.0
                    }
            }
            Recompute::Selective => self.act_replicated / sp + self.act_split / t,
            Recompute::Full => 2.0 / sp,
        };
        sbh * coef
    }
}

/// Memory per GPU of the stage that needs the most.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct Memory {
    pub weights_bytes: f64,
    pub gradients_bytes: f64,
    pub optimizer_bytes: f64,
    pub activation_bytes: f64,
    pub total_bytes_per_gpu: f64,
    pub capacity_bytes_per_gpu: f64,
    /// The part of capacity a training process may use ([`bottleneck_infer::USABLE_FRACTION`]).
    pub usable_bytes_per_gpu: f64,
    pub fits: bool,
    /// `total − usable` when it does not fit, else 0.
    pub overflow_bytes: f64,
    /// Which pipeline stage this is: `first`, `last` or `only`.
    pub stage: &'static str,
}

/// Memory of the busiest stage of `lay` with `m` micro-batches per step.
pub fn memory(job: &Job<'_>, sizes: &ModelSizes, lay: &Layout, m: u64) -> Memory {
    let stage_params = [0, 1, 2].map(|w| sizes.stage_params_per_gpu(lay, w));
    memory_with(job, sizes, lay, m, &stage_params)
}

/// [`memory`] with the parameters per GPU of the first, middle and last stage given.
pub fn memory_with(
    job: &Job<'_>,
    sizes: &ModelSizes,
    lay: &Layout,
    m: u64,
    stage_params: &[f64; 3],
) -> Memory {
    let dp = f64::from(lay.dp);
    let p = lay.pp;
    let capacity = job.hw.memory_bytes();
    let usable = capacity * bottleneck_infer::USABLE_FRACTION;
    let seq = job.seq as f64;
    let mb = lay.micro_batch as f64;
    let per_layer = sizes.layer_activation_bytes(lay, seq, mb, lay.recompute);
    // Under full recompute the layer being back-propagated holds its activations again.
    let working = if lay.recompute == Recompute::Full {
        sizes.layer_activation_bytes(lay, seq, mb, Recompute::Selective) - per_layer
    } else {
        0.0
    };
    let logits = 4.0 * seq / f64::from(lay.cp) * mb * sizes.vocab / f64::from(lay.tp);
    let z3_buffers = if lay.zero == 3 {
        2.0 * sizes.layer_params_per_gpu(lay) * WEIGHT_BYTES
    } else {
        0.0
    };
    let layers = crate::step::stage_layers(sizes.layers, p);
    let pf = f64::from(p);
    let v = f64::from(lay.vpp);
    // 1F1B: the first stage holds min(m, p) micro-batches in flight; interleaving adds
    // (p − 1)/(p·v) (Korthikanti §4.2.3).
    let in_flight = if p == 1 {
        1.0
    } else {
        let k = (m as f64).min(pf);
        if lay.vpp > 1 {
            k * (1.0 + (pf - 1.0) / (pf * v))
        } else {
            k
        }
    };
    let build = |which: usize, act: f64, stage: &'static str| -> Memory {
        let params = stage_params[which];
        let w = params * WEIGHT_BYTES / if lay.zero >= 3 { dp } else { 1.0 };
        let g = params * GRADIENT_BYTES / if lay.zero >= 2 { dp } else { 1.0 };
        let o = params * OPTIMIZER_BYTES / if lay.zero >= 1 { dp } else { 1.0 };
        let total = w + g + o + act + z3_buffers;
        Memory {
            weights_bytes: w,
            gradients_bytes: g,
            optimizer_bytes: o,
            activation_bytes: act,
            total_bytes_per_gpu: total,
            capacity_bytes_per_gpu: capacity,
            usable_bytes_per_gpu: usable,
            fits: total <= usable,
            overflow_bytes: (total - usable).max(0.0),
            stage,
        }
    };
    if p == 1 {
        let act = layers[0] as f64 * per_layer + working + logits;
        return build(0, act, "only");
    }
    let first = build(
        0,
        layers[0] as f64 * per_layer * in_flight + working,
        "first",
    );
    let last = build(2, layers[2] as f64 * per_layer + working + logits, "last");
    if last.total_bytes_per_gpu > first.total_bytes_per_gpu {
        last
    } else {
        first
    }
}
