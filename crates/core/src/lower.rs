//! Lowering: a model architecture, a batch shape and a parallel layout become the operator list
//! one GPU executes for one forward pass.
//!
//! Inference uses [`forward`] for prefill, decode and mixed (chunked-prefill) iterations;
//! training builds its backward pass from the same forward ops.

use serde::Serialize;

use crate::arch::{ModelArch, Moe, PositionKind};
use crate::error::CoreError;
use crate::ir::{Collective, CollectiveKind, Op, OpClass, Scope};
use crate::units::Precision;

/// A parallel layout. Degrees multiply to the GPU count a replica (or job) uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct Parallel {
    /// Tensor parallel degree (Megatron-style: heads and MLP columns split).
    pub tp: u32,
    /// Pipeline stages.
    pub pp: u32,
    /// Expert parallel degree (experts split over this many GPUs).
    pub ep: u32,
    /// Data parallel degree (replicas; inference ignores it).
    pub dp: u32,
    /// Context parallel degree (sequence split, ring attention).
    pub cp: u32,
    /// Megatron sequence parallelism: TP all-reduces become reduce-scatter + all-gather and
    /// norms run on a 1/tp slice of the tokens.
    pub sequence_parallel: bool,
    /// GPUs per intra-node domain, to decide which link a group crosses.
    pub gpus_per_node: u32,
}

impl Parallel {
    /// One GPU.
    pub fn single(gpus_per_node: u32) -> Parallel {
        Parallel {
            tp: 1,
            pp: 1,
            ep: 1,
            dp: 1,
            cp: 1,
            sequence_parallel: false,
            gpus_per_node: gpus_per_node.max(1),
        }
    }

    /// GPUs in one model replica.
    pub fn model_gpus(&self) -> u32 {
        self.tp * self.pp * self.cp
    }

    /// Scope of a group of `size` GPUs placed `stride` GPUs apart.
    pub fn scope(&self, size: u32, stride: u32) -> Scope {
        if size.saturating_mul(stride) <= self.gpus_per_node {
            Scope::IntraNode
        } else {
            Scope::InterNode
        }
    }

    /// Checks the divisibility rules the lowering relies on for `arch`.
    pub fn validate(&self, arch: &ModelArch) -> Result<(), CoreError> {
        let bad = |s: String| Err(CoreError::InvalidParallel(s));
        for (name, v) in [
            ("tp", self.tp),
            ("pp", self.pp),
            ("ep", self.ep),
            ("dp", self.dp),
            ("cp", self.cp),
        ] {
            if v == 0 {
                return bad(format!("--{name} must be at least 1"));
            }
        }
        if arch.heads % u64::from(self.tp) != 0 {
            let near = nearest_divisor(arch.heads, self.tp);
            return bad(format!(
                "--tp {} does not divide the {} attention heads of {}; try --tp {near}",
                self.tp, arch.heads, arch.name
            ));
        }
        if u64::from(self.pp) > arch.layers {
            return bad(format!(
                "--pp {} exceeds the {} layers of {}",
                self.pp, arch.layers, arch.name
            ));
        }
        match &arch.moe {
            Some(m) => {
                if m.experts % u64::from(self.ep) != 0 {
                    let near = nearest_divisor(m.experts, self.ep);
                    return bad(format!(
                        "--ep {} does not divide the {} experts of {}; try --ep {near}",
                        self.ep, m.experts, arch.name
                    ));
                }
            }
            None => {
                if self.ep > 1 {
                    return bad(format!(
                        "--ep {} given but {} has no experts; use --ep 1",
                        self.ep, arch.name
                    ));
                }
            }
        }
        Ok(())
    }

    /// How many ways each expert's MLP is split by tensor parallelism: experts spread over
    /// `ep` GPUs, and any TP degree beyond that splits each expert's columns.
    pub fn expert_tp(&self) -> u32 {
        if self.ep >= self.tp {
            1
        } else {
            (self.tp / self.ep).max(1)
        }
    }
}

/// The divisor of `n` closest to `want` (ties go to the smaller one).
pub fn nearest_divisor(n: u64, want: u32) -> u64 {
    let want = u64::from(want);
    (1..=n.max(1))
        .filter(|d| n % d == 0)
        .min_by_key(|d| (d.abs_diff(want), *d))
        .unwrap_or(1)
}

/// Storage and math precisions.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct Precisions {
    pub weights: Precision,
    pub activations: Precision,
    pub kv: Precision,
}

impl Precisions {
    /// The precision GEMMs run in.
    pub fn gemm(&self) -> Precision {
        self.weights.gemm_precision(self.activations)
    }

    /// Bytes per element of the residual stream, norms and collectives: the activation
    /// precision, but never below 16 bits (8-bit activations are GEMM inputs quantized on the
    /// fly).
    pub fn stream_bytes(&self) -> f64 {
        self.activations.bytes().max(2.0)
    }
}

/// The tokens of one forward pass, aggregated over the sequences in the batch.
///
/// Attention work depends on each sequence's new tokens `q` and cached context `c`: it scores
/// `q·c + q(q+1)/2` (query, key) pairs (causal) and reads `c + q` cached tokens. Sums over
/// sequences are kept, split by global and sliding-window layers.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
pub struct TokenShape {
    /// Sequences in the batch.
    pub seqs: f64,
    /// New tokens processed (sum over sequences).
    pub new_tokens: f64,
    /// Causal attention pairs for global-attention layers.
    pub pairs_global: f64,
    /// Causal attention pairs for sliding-window layers.
    pub pairs_local: f64,
    /// Context tokens each global layer's attention reads (sum over sequences).
    pub kv_tokens_global: f64,
    /// Same for sliding-window layers.
    pub kv_tokens_local: f64,
    /// Tokens whose logits are computed (last token per sequence in inference; every token in
    /// training).
    pub logit_tokens: f64,
    /// Whether new K/V are written to a KV cache (inference) rather than kept as activations.
    pub kv_cache_write: bool,
    /// Sequences that are decoding (one new token each); decode attention uses MLA's absorbed
    /// form.
    pub decode_seqs: f64,
}

impl TokenShape {
    /// An empty inference batch.
    pub fn new() -> TokenShape {
        TokenShape {
            kv_cache_write: true,
            ..TokenShape::default()
        }
    }

    /// Adds `count` sequences each processing `q` new tokens after `ctx` cached ones, under a
    /// sliding window `window` for local layers.
    pub fn add(&mut self, count: f64, q: u64, ctx: u64, window: Option<u64>) {
        let qf = q as f64;
        let cf = ctx as f64;
        self.seqs += count;
        self.new_tokens += count * qf;
        self.pairs_global += count * (qf * cf + qf * (qf + 1.0) / 2.0);
        self.kv_tokens_global += count * (cf + qf);
        self.logit_tokens += count;
        if q == 1 {
            self.decode_seqs += count;
        }
        let w = window.map_or(f64::INFINITY, |w| w as f64);
        // Pairs within a window w: each new token at position p attends to min(p + 1, w) keys.
        let total = cf + qf;
        let pairs_local = windowed_pairs(cf, total, w);
        self.pairs_local += count * pairs_local;
        self.kv_tokens_local += count * total.min(w);
    }

    /// `batch` sequences prefilling `prompt` tokens from an empty cache.
    pub fn prefill(batch: u64, prompt: u64, window: Option<u64>) -> TokenShape {
        let mut s = TokenShape::new();
        s.add(batch as f64, prompt, 0, window);
        s
    }

    /// `batch` sequences decoding one token each after `ctx` cached tokens.
    pub fn decode(batch: u64, ctx: u64, window: Option<u64>) -> TokenShape {
        let mut s = TokenShape::new();
        s.add(batch as f64, 1, ctx, window);
        s
    }

    /// A training micro-batch: `batch` sequences of `seq` tokens, logits for every token, no
    /// KV cache.
    pub fn training(batch: u64, seq: u64, window: Option<u64>) -> TokenShape {
        let mut s = TokenShape::prefill(batch, seq, window);
        s.logit_tokens = s.new_tokens;
        s.kv_cache_write = false;
        s
    }
}

/// Sum over positions p in [start, end) of min(p + 1, w).
fn windowed_pairs(start: f64, end: f64, w: f64) -> f64 {
    let full = |n: f64| -> f64 {
        // Sum over p in [0, n) of min(p + 1, w).
        if n <= w {
            n * (n + 1.0) / 2.0
        } else {
            w * (w + 1.0) / 2.0 + (n - w) * w
        }
    };
    full(end) - full(start)
}

/// Expected number of distinct experts, out of `experts`, that `tokens` tokens each routing to
/// `top_k` distinct experts touch, with uniform routing: `E·(1 − (1 − k/E)^T)`.
pub fn expected_experts_touched(experts: u64, top_k: u64, tokens: f64) -> f64 {
    let e = experts as f64;
    let p_miss = 1.0 - top_k as f64 / e;
    e * (1.0 - p_miss.powf(tokens))
}

/// Options for a forward lowering.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LowerOptions {
    /// Emit the embedding gather.
    pub embedding: bool,
    /// Emit the final norm and LM head.
    pub lm_head: bool,
    /// Emit pipeline point-to-point sends (`pp − 1` of them).
    pub pipeline_sends: bool,
    /// Layers lowered (the whole model, or one pipeline stage's share).
    pub layers: LayerRange,
}

/// Which layers a lowering covers, as counts of dense and MoE layers (and how many of those
/// use the sliding window).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LayerRange {
    pub dense: u64,
    pub moe: u64,
    pub local: u64,
}

impl LayerRange {
    /// Every layer of `arch`.
    pub fn all(arch: &ModelArch) -> LayerRange {
        LayerRange {
            dense: arch.dense_layers(),
            moe: arch.moe.as_ref().map_or(0, |m| m.moe_layers),
            local: arch.local_layers,
        }
    }

    /// Total layers.
    pub fn total(&self) -> u64 {
        self.dense + self.moe
    }
}

impl LowerOptions {
    /// The whole model, as one inference request passes through it.
    pub fn whole(arch: &ModelArch) -> LowerOptions {
        LowerOptions {
            embedding: true,
            lm_head: true,
            pipeline_sends: true,
            layers: LayerRange::all(arch),
        }
    }
}

/// Lowers one forward pass of `arch` over `tokens` to the ops one GPU of the layout executes,
/// appending to `out`. Work is per GPU: TP splits heads and MLP columns, EP splits experts, CP
/// splits the sequence; pipeline stages are covered by `opts.layers`.
pub fn forward(
    arch: &ModelArch,
    tokens: &TokenShape,
    par: &Parallel,
    prec: &Precisions,
    opts: &LowerOptions,
    out: &mut Vec<Op>,
) {
    let tp = f64::from(par.tp);
    let cp = f64::from(par.cp);
    let act = prec.activations.bytes();
    // The residual stream, norms and collectives stay at 16 bits or wider: 8-bit activations
    // are GEMM inputs quantized on the fly (TensorRT-LLM and Transformer Engine FP8).
    let stream = prec.stream_bytes();
    let wb = prec.weights.bytes();
    let g = prec.gemm();
    let h = arch.hidden as f64;
    // Tokens this GPU processes (CP splits the sequence).
    let t = tokens.new_tokens / cp;
    let layers = opts.layers;
    let n_layers = layers.total() as f64;
    let tp_scope = par.scope(par.tp, 1);
    // Norm token count under sequence parallelism.
    let norm_t = if par.sequence_parallel { t / tp } else { t };

    if opts.embedding {
        // Gather one row per token and write it out.
        out.push(Op::memory(
            "embedding",
            OpClass::Embedding,
            prec.activations,
            0.0,
            t * h * (wb.max(act) + act),
            1.0,
        ));
    }

    // ---- attention block (every layer) ----
    let norm_bytes = 2.0 * norm_t * h * stream;
    out.push(Op::memory(
        "attn.norm",
        OpClass::Norm,
        prec.activations,
        5.0 * norm_t * h,
        norm_bytes,
        n_layers,
    ));
    attention_ops(arch, tokens, par, prec, t, layers, out);

    if !arch.parallel_attn_mlp {
        tp_collective(
            out,
            "attn.tp_allreduce",
            par,
            tp_scope,
            t * h * stream,
            n_layers,
            prec,
        );
        out.push(Op::memory(
            "mlp.norm",
            OpClass::Norm,
            prec.activations,
            5.0 * norm_t * h,
            norm_bytes,
            n_layers,
        ));
    }

    // ---- MLP / MoE ----
    if layers.dense > 0 {
        let m = &arch.mlp;
        let ffn = m.ffn as f64 / tp;
        mlp_ops(
            m.gated,
            ffn,
            t,
            h,
            g,
            wb,
            act,
            layers.dense as f64,
            "mlp",
            out,
        );
    }
    if let (Some(moe), true) = (&arch.moe, layers.moe > 0) {
        moe_ops(arch, moe, par, prec, t, layers.moe as f64, out);
    }
    tp_collective(
        out,
        "mlp.tp_allreduce",
        par,
        tp_scope,
        t * h * stream,
        n_layers,
        prec,
    );

    if opts.lm_head {
        let lt = tokens.logit_tokens / cp;
        out.push(Op::memory(
            "final_norm",
            OpClass::Norm,
            prec.activations,
            5.0 * lt * h,
            2.0 * lt * h * stream,
            1.0,
        ));
        // The LM head stays at activation precision under weight quantization (common
        // practice for FP8/AWQ checkpoints).
        let head_prec = prec.activations;
        out.push(gemm_op(
            "lm_head",
            head_prec,
            [lt, arch.vocab as f64 / tp, h],
            head_prec.bytes(),
            act,
            1.0,
        ));
    }
    if opts.pipeline_sends && par.pp > 1 {
        out.push(Op::collective(
            "pp.send_recv",
            prec.activations,
            Collective {
                kind: CollectiveKind::SendRecv,
                group: 2,
                scope: par.scope(2, par.tp),
                bytes: t * h * stream / if par.sequence_parallel { tp } else { 1.0 },
            },
            f64::from(par.pp - 1),
        ));
    }
}

/// A TP all-reduce of `bytes` (or reduce-scatter + all-gather under sequence parallelism).
fn tp_collective(
    out: &mut Vec<Op>,
    name: &'static str,
    par: &Parallel,
    scope: Scope,
    bytes: f64,
    count: f64,
    prec: &Precisions,
) {
    if par.tp <= 1 {
        return;
    }
    if par.sequence_parallel {
        for kind in [CollectiveKind::ReduceScatter, CollectiveKind::AllGather] {
            out.push(Op::collective(
                if kind == CollectiveKind::ReduceScatter {
                    "tp.reduce_scatter"
                } else {
                    "tp.all_gather"
                },
                prec.activations,
                Collective {
                    kind,
                    group: par.tp,
                    scope,
                    bytes,
                },
                count,
            ));
        }
    } else {
        out.push(Op::collective(
            name,
            prec.activations,
            Collective {
                kind: CollectiveKind::AllReduce,
                group: par.tp,
                scope,
                bytes,
            },
            count,
        ));
    }
}

#[allow(clippy::too_many_arguments)]
fn mlp_ops(
    gated: bool,
    ffn: f64,
    t: f64,
    h: f64,
    g: Precision,
    wb: f64,
    act: f64,
    count: f64,
    prefix: &'static str,
    out: &mut Vec<Op>,
) {
    let (up, actn, down) = match prefix {
        "mlp" => ("mlp.up_gate_proj", "mlp.activation", "mlp.down_proj"),
        "moe.shared" => (
            "moe.shared.up_gate_proj",
            "moe.shared.activation",
            "moe.shared.down_proj",
        ),
        _ => (
            "moe.experts.up_gate_proj",
            "moe.experts.activation",
            "moe.experts.down_proj",
        ),
    };
    let up_cols = if gated { 2.0 * ffn } else { ffn };
    out.push(gemm_op(up, g, [t, up_cols, h], wb, act, count));
    // The activation (and gate product) reads the up output and writes the hidden.
    out.push(Op::memory(
        actn,
        OpClass::Elementwise,
        g,
        if gated { 6.0 } else { 4.0 } * t * ffn,
        (up_cols * act.max(2.0) + ffn * act) * t,
        count,
    ));
    out.push(gemm_op(down, g, [t, h, ffn], wb, act, count));
}

fn moe_ops(
    arch: &ModelArch,
    moe: &Moe,
    par: &Parallel,
    prec: &Precisions,
    t: f64,
    count: f64,
    out: &mut Vec<Op>,
) {
    let act = prec.activations.bytes();
    let wb = prec.weights.bytes();
    let g = prec.gemm();
    let h = arch.hidden as f64;
    let tp = f64::from(par.tp);
    let ep = f64::from(par.ep);
    let etp = f64::from(par.expert_tp());
    // Router: a tiny GEMM over every token (replicated across TP).
    out.push(gemm_op(
        "moe.router",
        prec.activations,
        [t, moe.experts as f64, h],
        prec.activations.bytes(),
        act,
        count,
    ));
    if par.ep > 1 {
        out.push(Op::collective(
            "moe.dispatch_all_to_all",
            prec.activations,
            Collective {
                kind: CollectiveKind::AllToAll,
                group: par.ep,
                scope: par.scope(par.ep, 1),
                bytes: t * moe.top_k as f64 * h * prec.stream_bytes(),
            },
            count,
        ));
    }
    // Routed experts: tokens this GPU's experts receive, under balanced routing, and the
    // distinct local experts whose weights must be read.
    let routed = t * moe.top_k as f64 / ep * if par.ep > 1 { tp.min(ep) } else { 1.0 };
    let local_experts = moe.experts as f64 / ep;
    let touched = expected_experts_touched(moe.experts, moe.top_k, t * tp.min(ep).max(1.0))
        / moe.experts as f64
        * local_experts;
    let ffn = moe.expert.ffn as f64 / etp;
    let up_cols = if moe.expert.gated { 2.0 * ffn } else { ffn };
    // Weight bytes: the touched experts' matrices; FLOPs: every routed token once. The GEMMs
    // are grouped, so their shape is that of one touched expert with its share of tokens.
    let per_expert_tokens = if touched > 0.0 { routed / touched } else { 0.0 };
    let mut up = gemm_op(
        "moe.experts.up_gate_proj",
        g,
        [per_expert_tokens, up_cols, h],
        wb,
        act,
        count,
    );
    up.flops = 2.0 * routed * up_cols * h;
    up.weight_bytes = touched * up_cols * h * wb;
    up.bytes = up.weight_bytes + routed * (h * act + up_cols * act.max(2.0));
    out.push(up);
    out.push(Op::memory(
        "moe.experts.activation",
        OpClass::Elementwise,
        g,
        6.0 * routed * ffn,
        (up_cols * act.max(2.0) + ffn * act) * routed,
        count,
    ));
    let mut down = gemm_op(
        "moe.experts.down_proj",
        g,
        [per_expert_tokens, h, ffn],
        wb,
        act,
        count,
    );
    down.flops = 2.0 * routed * h * ffn;
    down.weight_bytes = touched * h * ffn * wb;
    down.bytes = down.weight_bytes + routed * (h * act.max(2.0) + ffn * act);
    out.push(down);
    if par.ep > 1 {
        out.push(Op::collective(
            "moe.combine_all_to_all",
            prec.activations,
            Collective {
                kind: CollectiveKind::AllToAll,
                group: par.ep,
                scope: par.scope(par.ep, 1),
                bytes: t * moe.top_k as f64 * h * prec.stream_bytes(),
            },
            count,
        ));
    }
    if let Some(shared) = &moe.shared {
        mlp_ops(
            shared.gated,
            shared.ffn as f64 / tp,
            t,
            h,
            g,
            wb,
            act,
            count,
            "moe.shared",
            out,
        );
    }
}

/// A GEMM of the forward pass: inputs at the activation precision, the output at 16 bits or
/// wider. 8-bit GEMMs (TensorRT-LLM / Transformer Engine FP8, W8A8) accumulate in fp32 and write
/// a 16-bit result: the residual stream, attention and the activation function consume 16-bit
/// tensors, and the next GEMM's 8-bit input is quantized on the fly.
fn gemm_op(
    name: &'static str,
    precision: Precision,
    shape: [f64; 3],
    weight_bytes_per_elem: f64,
    act_bytes: f64,
    count: f64,
) -> Op {
    let mut op = Op::gemm(
        name,
        precision,
        shape,
        weight_bytes_per_elem,
        act_bytes,
        count,
    );
    let [m, n, _] = shape;
    op.bytes += m * n * (act_bytes.max(2.0) - act_bytes);
    op
}

fn attention_ops(
    arch: &ModelArch,
    tokens: &TokenShape,
    par: &Parallel,
    prec: &Precisions,
    t: f64,
    layers: LayerRange,
    out: &mut Vec<Op>,
) {
    let tp = f64::from(par.tp);
    let cp = f64::from(par.cp);
    let act = prec.activations.bytes();
    let wb = prec.weights.bytes();
    let g = prec.gemm();
    let kvb = prec.kv.bytes();
    let h = arch.hidden as f64;
    let n_layers = layers.total() as f64;
    let heads = arch.heads as f64 / tp;
    let local = layers.local as f64;
    let global = n_layers - local;

    // Attention core FLOPs per (query, key) pair per head, and cached elements per token on
    // this GPU.
    let (qk_dim, v_dim, kv_elems);
    match &arch.mla {
        Some(m) => {
            let r = m.kv_lora_rank as f64;
            let rope = m.qk_rope_head_dim as f64;
            let nope = m.qk_nope_head_dim as f64;
            let vd = m.v_head_dim as f64;
            let q_out = heads * (nope + rope);
            // Query path (with optional low-rank compression).
            match m.q_lora_rank {
                Some(qr) => {
                    let qr = qr as f64;
                    out.push(gemm_op("attn.q_a_proj", g, [t, qr, h], wb, act, n_layers));
                    out.push(gemm_op(
                        "attn.q_b_proj",
                        g,
                        [t, q_out, qr],
                        wb,
                        act,
                        n_layers,
                    ));
                }
                None => out.push(gemm_op("attn.q_proj", g, [t, q_out, h], wb, act, n_layers)),
            }
            // Joint KV compression (replicated on every TP rank) and its up-projection.
            out.push(gemm_op(
                "attn.kv_a_proj",
                g,
                [t, r + rope, h],
                wb,
                act,
                n_layers,
            ));
            out.push(gemm_op(
                "attn.kv_b_proj",
                g,
                [t, heads * (nope + vd), r],
                wb,
                act,
                n_layers,
            ));
            // The latent cache is replicated across TP ranks.
            kv_elems = r + rope;
            if tokens.decode_seqs >= tokens.seqs && tokens.seqs > 0.0 {
                // Absorbed form: attention runs in the latent space.
                qk_dim = r + rope;
                v_dim = r;
            } else {
                qk_dim = nope + rope;
                v_dim = vd;
            }
            let o_in = heads * vd;
            attention_core(
                tokens, heads, qk_dim, v_dim, kv_elems, kvb, act, cp, 0.0, global, local, out,
            );
            out.push(gemm_op("attn.o_proj", g, [t, h, o_in], wb, act, n_layers));
        }
        None => {
            let hd = arch.head_dim as f64;
            // KV heads are split across TP ranks, replicated when there are fewer than ranks.
            let kvh = (arch.kv_heads as f64 / tp).max(1.0);
            qk_dim = hd;
            v_dim = hd;
            kv_elems = 2.0 * kvh * hd;
            let qkv_cols = (heads + 2.0 * kvh) * hd;
            out.push(gemm_op(
                "attn.qkv_proj",
                g,
                [t, qkv_cols, h],
                wb,
                act,
                n_layers,
            ));
            // Prefill tokens pass a QKV pre-processing kernel before the fused attention
            // (TensorRT-LLM's context path: `invokeApplyBiasRopeUpdateKVCache`; vLLM:
            // `rotary_embedding` + `reshape_and_cache`): it reads the 16-bit QKV output, writes
            // the rotated Q and K back (rotary models) and K/V into the cache. Decode attention
            // kernels (TensorRT-LLM MMHA/XQA, FlashInfer) do this inside the kernel, and training
            // keeps K/V as activations; neither gets the kernel.
            let prep_t = if tokens.kv_cache_write {
                ((tokens.new_tokens - tokens.decode_seqs) / cp).max(0.0)
            } else {
                0.0
            };
            if prep_t > 0.0 {
                let stream = prec.stream_bytes();
                let rotated = if arch.position == PositionKind::Rotary {
                    (heads + kvh) * hd * stream
                } else {
                    0.0
                };
                out.push(Op::memory(
                    "attn.qkv_prep",
                    OpClass::Elementwise,
                    prec.activations,
                    3.0 * prep_t * (heads + kvh) * hd,
                    prep_t * (qkv_cols * stream + rotated + kv_elems * kvb),
                    n_layers,
                ));
            }
            attention_core(
                tokens, heads, qk_dim, v_dim, kv_elems, kvb, act, cp, prep_t, global, local, out,
            );
            out.push(gemm_op(
                "attn.o_proj",
                g,
                [t, h, heads * hd],
                wb,
                act,
                n_layers,
            ));
        }
    }
}

#[allow(clippy::too_many_arguments)]
fn attention_core(
    tokens: &TokenShape,
    heads: f64,
    qk_dim: f64,
    v_dim: f64,
    kv_elems: f64,
    kvb: f64,
    act: f64,
    cp: f64,
    prepped: f64,
    global: f64,
    local: f64,
    out: &mut Vec<Op>,
) {
    let t = tokens.new_tokens / cp;
    // Q in, O out; new K/V written to the cache (except for the `prepped` tokens whose K/V a
    // pre-processing kernel wrote); cached K/V read once per sequence (FlashAttention/
    // FlashDecoding keep scores on chip).
    let qo = t * heads * (qk_dim + v_dim) * act.max(2.0);
    let kv_write = if tokens.kv_cache_write {
        (t - prepped).max(0.0) * kv_elems * kvb
    } else {
        0.0
    };
    let flops_per_pair = 2.0 * heads * (qk_dim + v_dim);
    for (name, pairs, kv_tokens, count) in [
        (
            "attn.core",
            tokens.pairs_global,
            tokens.kv_tokens_global,
            global,
        ),
        (
            "attn.core_local",
            tokens.pairs_local,
            tokens.kv_tokens_local,
            local,
        ),
    ] {
        if count <= 0.0 {
            continue;
        }
        // Under context parallelism each rank holds 1/cp of the keys and 1/cp of the queries
        // (ring attention): pairs split cp ways.
        let read = if tokens.kv_cache_write {
            // Inference: cached context plus new tokens, from the cache.
            kv_tokens / cp * kv_elems * kvb
        } else {
            // Training: K and V of the sequence are activations read once.
            t * kv_elems * act
        };
        let precision = if act <= 1.0 {
            crate::units::Precision::Fp8
        } else {
            crate::units::Precision::Bf16
        };
        out.push(Op {
            name,
            class: OpClass::Attention,
            precision,
            flops: pairs / cp * flops_per_pair,
            bytes: qo + kv_write + read,
            weight_bytes: 0.0,
            gemm: None,
            collective: None,
            count,
        });
    }
}

/// Sums of one lowering, for quick checks.
pub fn total_flops(ops: &[Op]) -> f64 {
    ops.iter().map(Op::total_flops).sum()
}

/// Forward FLOPs per token of one sequence decoding at context `ctx` on one GPU (embedding,
/// every layer, LM head), in bf16.
pub fn flops_per_token(arch: &ModelArch, ctx: u64) -> f64 {
    let prec = Precisions {
        weights: Precision::Bf16,
        activations: Precision::Bf16,
        kv: Precision::Bf16,
    };
    let mut ops = Vec::with_capacity(32);
    forward(
        arch,
        &TokenShape::decode(1, ctx, arch.sliding_window),
        &Parallel::single(1),
        &prec,
        &LowerOptions::whole(arch),
        &mut ops,
    );
    total_flops(&ops)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::arch::fixtures::llama2_7b;

    fn bf16() -> Precisions {
        Precisions {
            weights: Precision::Bf16,
            activations: Precision::Bf16,
            kv: Precision::Bf16,
        }
    }

    #[test]
    fn llama2_7b_decode_flops_per_token_by_hand() {
        // One token at context 0: 2 × (matmul params) + attention over 1 pair.
        // Matmul params: 32 × (4·4096² + 3·4096·11008) + 32000·4096 (LM head)
        //   = 32 × 202,375,168 + 131,072,000 = 6,607,077,376 → ×2 = 13,214,154,752.
        // Attention: 1 pair × 2·32·(128+128) × 32 layers = 524,288.
        let arch = llama2_7b();
        let mut ops = Vec::new();
        forward(
            &arch,
            &TokenShape::decode(1, 0, None),
            &Parallel::single(8),
            &bf16(),
            &LowerOptions::whole(&arch),
            &mut ops,
        );
        let matmul: f64 = ops
            .iter()
            .filter(|o| o.class == OpClass::Gemm)
            .map(Op::total_flops)
            .sum();
        assert_eq!(matmul, 13_214_154_752.0);
        let attn: f64 = ops
            .iter()
            .filter(|o| o.class == OpClass::Attention)
            .map(Op::total_flops)
            .sum();
        assert_eq!(attn, 524_288.0);
    }

    #[test]
    fn tp_splits_gemm_flops_evenly() {
        let arch = llama2_7b();
        let shape = TokenShape::prefill(1, 512, None);
        let mut one = Vec::new();
        let mut four = Vec::new();
        let opts = LowerOptions::whole(&arch);
        forward(
            &arch,
            &shape,
            &Parallel::single(8),
            &bf16(),
            &opts,
            &mut one,
        );
        let mut p = Parallel::single(8);
        p.tp = 4;
        forward(&arch, &shape, &p, &bf16(), &opts, &mut four);
        let gemm = |ops: &[Op]| -> f64 {
            ops.iter()
                .filter(|o| o.class == OpClass::Gemm)
                .map(Op::total_flops)
                .sum()
        };
        assert!((gemm(&one) / gemm(&four) - 4.0).abs() < 1e-9);
        assert!(four.iter().any(|o| o.name == "attn.tp_allreduce"));
    }

    #[test]
    fn windowed_pairs_match_brute_force() {
        for (start, end, w) in [(0u64, 10u64, 4u64), (3, 9, 5), (0, 7, 100), (10, 11, 3)] {
            let brute: u64 = (start..end).map(|p| (p + 1).min(w)).sum();
            assert_eq!(
                windowed_pairs(start as f64, end as f64, w as f64),
                brute as f64
            );
        }
    }

    #[test]
    fn experts_touched_limits() {
        assert!((expected_experts_touched(8, 2, 1.0) - 2.0).abs() < 1e-12);
        assert!(expected_experts_touched(8, 2, 1000.0) > 7.999);
        assert!(expected_experts_touched(256, 8, 4.0) < 32.0);
    }

    #[test]
    fn nearest_divisor_suggests_valid_degree() {
        assert_eq!(nearest_divisor(32, 3), 2);
        assert_eq!(nearest_divisor(40, 6), 5);
        assert_eq!(nearest_divisor(8, 8), 8);
    }

    #[test]
    fn fp8_keeps_a_16_bit_residual_stream() {
        // Llama-2-7B, TP2, 100 tokens: each all-reduce carries 100 · 4096 elements at 2 bytes,
        // and each norm reads and writes them at 2 bytes, with fp8 weights and activations.
        let arch = llama2_7b();
        let fp8 = Precisions {
            weights: Precision::Fp8,
            activations: Precision::Fp8,
            kv: Precision::Fp8,
        };
        let mut par = Parallel::single(8);
        par.tp = 2;
        let mut ops = Vec::new();
        forward(
            &arch,
            &TokenShape::prefill(1, 100, None),
            &par,
            &fp8,
            &LowerOptions::whole(&arch),
            &mut ops,
        );
        let ar = ops.iter().find(|o| o.name == "attn.tp_allreduce").unwrap();
        assert_eq!(ar.collective.unwrap().bytes, 100.0 * 4096.0 * 2.0);
        let norm = ops.iter().find(|o| o.name == "attn.norm").unwrap();
        assert_eq!(norm.bytes, 2.0 * 100.0 * 4096.0 * 2.0);
        // The GEMMs still read 8-bit weights.
        let qkv = ops.iter().find(|o| o.name == "attn.qkv_proj").unwrap();
        assert_eq!(qkv.weight_bytes, 4096.0 * 3.0 * 4096.0 / 2.0);
    }

    #[test]
    fn fp8_gemms_write_16_bit_outputs() {
        // Llama-2-7B, TP2, 100 tokens in fp8: the QKV GEMM (16 + 2·16 heads of 128 = 6144
        // columns) reads the 4096 × 6144 weight and the 100 × 4096 input at 1 byte and writes
        // its 100 × 6144 output at 2 bytes.
        let arch = llama2_7b();
        let fp8 = Precisions {
            weights: Precision::Fp8,
            activations: Precision::Fp8,
            kv: Precision::Fp8,
        };
        let mut par = Parallel::single(8);
        par.tp = 2;
        let mut ops = Vec::new();
        forward(
            &arch,
            &TokenShape::prefill(1, 100, None),
            &par,
            &fp8,
            &LowerOptions::whole(&arch),
            &mut ops,
        );
        let qkv = ops.iter().find(|o| o.name == "attn.qkv_proj").unwrap();
        assert_eq!(
            qkv.bytes,
            4096.0 * 6144.0 + 100.0 * 4096.0 + 100.0 * 6144.0 * 2.0
        );
        // SwiGLU reads the 2 × 5504 up/gate columns at 2 bytes and writes 5504 at 1 byte.
        let act = ops.iter().find(|o| o.name == "mlp.activation").unwrap();
        assert_eq!(act.bytes, 100.0 * (2.0 * 5504.0 * 2.0 + 5504.0));
        // In bf16 nothing changes: output at the activation precision.
        let mut ops = Vec::new();
        forward(
            &arch,
            &TokenShape::prefill(1, 100, None),
            &par,
            &bf16(),
            &LowerOptions::whole(&arch),
            &mut ops,
        );
        let qkv = ops.iter().find(|o| o.name == "attn.qkv_proj").unwrap();
        assert_eq!(
            qkv.bytes,
            (4096.0 * 6144.0 + 100.0 * 4096.0 + 100.0 * 6144.0) * 2.0
        );
    }

    #[test]
    fn prefill_runs_a_qkv_prep_kernel_decode_and_training_do_not() {
        // Llama-2-7B, TP2 (16 query and 16 KV heads of 128 per GPU), fp8 KV cache, 100 prompt
        // tokens: the kernel reads the 6144-column QKV output at 2 bytes, writes the rotated Q
        // and K (32 heads) back at 2 bytes and K/V (2 · 16 · 128) into the cache at 1 byte:
        // 100 · (12288 + 8192 + 4096) bytes; the attention kernel then writes no K/V itself.
        let arch = llama2_7b();
        let prec = Precisions {
            weights: Precision::Bf16,
            activations: Precision::Bf16,
            kv: Precision::Fp8,
        };
        let mut par = Parallel::single(8);
        par.tp = 2;
        let lower = |shape: TokenShape| {
            let mut ops = Vec::new();
            forward(
                &arch,
                &shape,
                &par,
                &prec,
                &LowerOptions::whole(&arch),
                &mut ops,
            );
            ops
        };
        let pre = lower(TokenShape::prefill(1, 100, None));
        let prep = pre.iter().find(|o| o.name == "attn.qkv_prep").unwrap();
        assert_eq!(prep.bytes, 100.0 * (12288.0 + 8192.0 + 4096.0));
        assert_eq!(prep.count, 32.0);
        let core = pre.iter().find(|o| o.name == "attn.core").unwrap();
        // Q and O at 2 bytes, the 100 cached tokens read back once at 1 byte.
        let qo = 100.0 * 16.0 * 256.0 * 2.0;
        assert_eq!(core.bytes, qo + 100.0 * 4096.0);
        // Decode: the attention kernel appends K/V itself.
        let dec = lower(TokenShape::decode(4, 50, None));
        assert!(dec.iter().all(|o| o.name != "attn.qkv_prep"));
        let core = dec.iter().find(|o| o.name == "attn.core").unwrap();
        assert_eq!(
            core.bytes,
            4.0 * 16.0 * 256.0 * 2.0 + 4.0 * 4096.0 + 4.0 * 51.0 * 4096.0
        );
        // Training keeps K/V as activations: no cache, no kernel.
        let train = lower(TokenShape::training(1, 100, None));
        assert!(train.iter().all(|o| o.name != "attn.qkv_prep"));
    }
}
