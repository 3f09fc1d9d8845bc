//! Device memory of an inference replica, per GPU.

use bottleneck_core::arch::ModelArch;
use bottleneck_core::lower::{Parallel, Precisions};
use serde::Serialize;

/// Fraction of device memory an engine may use: vLLM's default `gpu_memory_utilization`
/// (0.9); the rest is the CUDA context, allocator fragmentation and library workspaces.
pub const USABLE_FRACTION: f64 = 0.9;

/// Bytes per GPU.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct MemoryUse {
    pub weights_bytes: f64,
    pub kv_cache_bytes: f64,
    pub activation_bytes: f64,
    pub total_bytes_per_gpu: f64,
    pub capacity_bytes_per_gpu: f64,
    /// `total ≤ usable` where usable is [`USABLE_FRACTION`] of capacity.
    pub fits: bool,
    /// The largest batch of this prompt + output length that fits (0 if not even one).
    pub max_batch: u64,
}

/// Parameter bytes one GPU holds: attention, norms and dense MLPs split `tp` ways, routed
/// experts split `ep × expert_tp` ways, embedding and LM head split `tp` ways (vocabulary
/// parallel) at activation precision, all layers split over `pp` stages.
pub fn weight_bytes_per_gpu(arch: &ModelArch, par: &Parallel, prec: &Precisions) -> f64 {
    let tp = f64::from(par.tp);
    let pp = f64::from(par.pp);
    let wb = prec.weights.bytes();
    let ab = prec.activations.bytes().max(2.0);
    let layer_common = (arch.attention_params()
        + arch.norms_per_layer * arch.norm_params()
        + arch.extra_norm_params_per_layer) as f64;
    let dense = arch.dense_layers() as f64 * arch.mlp.params(arch.hidden) as f64;
    let (experts, moe_rest) = match &arch.moe {
        Some(m) => {
            let experts = (m.moe_layers * m.experts * m.expert.params(arch.hidden)) as f64;
            let rest = m.moe_layers as f64 * arch.moe_block_params() as f64 - experts;
            (experts, rest)
        }
        None => (0.0, 0.0),
    };
    let expert_split = f64::from(par.ep) * f64::from(par.expert_tp());
    let layers =
        (arch.layers as f64 * layer_common + dense + moe_rest) / tp + experts / expert_split;
    let embed = (arch.embedding_params() + arch.lm_head_params() + arch.norm_params()) as f64 / tp;
    (layers * wb + embed * ab) / pp
}

/// KV-cache bytes one GPU holds per sequence at context `tokens`: KV heads split over TP
/// (replicated when fewer than TP ranks), MLA's latent replicated on every TP rank, layers
/// split over PP.
pub fn kv_bytes_per_seq_per_gpu(
    arch: &ModelArch,
    par: &Parallel,
    prec: &Precisions,
    tokens: u64,
) -> f64 {
    let share = if arch.mla.is_some() {
        1.0
    } else {
        let tp = f64::from(par.tp);
        (arch.kv_heads as f64 / tp).max(1.0) / arch.kv_heads as f64
    };
    arch.kv_bytes_for_context(tokens, prec.kv) * share / f64::from(par.pp)
}

/// Transient activation bytes of a forward pass over `tokens` new tokens on one GPU: the
/// widest live set (input and output of the MLP up-projection, the residual stream and the
/// attention Q/K/V), plus fp32 logits of `logit_tokens`.
pub fn activation_bytes_per_gpu(
    arch: &ModelArch,
    par: &Parallel,
    prec: &Precisions,
    tokens: f64,
    logit_tokens: f64,
) -> f64 {
    let tp = f64::from(par.tp);
    let h = arch.hidden as f64;
    let ffn = arch
        .moe
        .as_ref()
        .map_or(arch.mlp.ffn, |m| arch.mlp.ffn.max(m.expert.ffn * m.top_k)) as f64;
    let qkv = (arch.q_dim() + 2 * arch.kv_heads * arch.head_dim) as f64;
    let width = 2.0 * h + (qkv / tp).max(3.0 * ffn / tp);
    tokens * width * prec.activations.bytes().max(2.0) + logit_tokens * arch.vocab as f64 / tp * 4.0
}

/// The memory of a replica serving `batch` sequences of `prompt + output` tokens.
pub fn memory_per_gpu(
    arch: &ModelArch,
    par: &Parallel,
    prec: &Precisions,
    capacity_bytes: f64,
    batch: u64,
    prompt: u64,
    output: u64,
) -> MemoryUse {
    let weights = weight_bytes_per_gpu(arch, par, prec);
    let ctx = prompt + output;
    let kv_seq = kv_bytes_per_seq_per_gpu(arch, par, prec, ctx);
    let act_seq = activation_bytes_per_gpu(arch, par, prec, prompt as f64, 1.0);
    let kv = kv_seq * batch as f64;
    let act = act_seq * batch as f64;
    let total = weights + kv + act;
    let usable = capacity_bytes * USABLE_FRACTION;
    let per_seq = kv_seq + act_seq;
    let max_batch = if usable > weights && per_seq > 0.0 {
        ((usable - weights) / per_seq).floor() as u64
    } else {
        0
    };
    MemoryUse {
        weights_bytes: weights,
        kv_cache_bytes: kv,
        activation_bytes: act,
        total_bytes_per_gpu: total,
        capacity_bytes_per_gpu: capacity_bytes,
        fits: total <= usable,
        max_batch,
    }
}
