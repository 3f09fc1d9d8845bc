//! The architecture of a transformer language model: everything the lowering needs, nothing of
//! where it came from. Front-ends (Hugging Face `config.json`, the built-in catalog) fill it in.

use serde::Serialize;

use crate::error::CoreError;
use crate::units::Precision;

/// How attention keys and values are shared across heads.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum AttentionKind {
    /// One KV head per query head.
    Mha,
    /// Grouped-query attention: fewer KV heads than query heads, more than one.
    Gqa,
    /// Multi-query attention: one KV head.
    Mqa,
    /// Multi-head latent attention (DeepSeek-V2/V3): a compressed KV latent is cached.
    Mla,
}

/// Multi-head latent attention dimensions (DeepSeek-V2 §2.1).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Mla {
    /// Rank of the query compression; `None` when queries are projected directly (V2-Lite).
    pub q_lora_rank: Option<u64>,
    /// Rank of the joint KV compression (the cached latent, `d_c`).
    pub kv_lora_rank: u64,
    /// Per-head query/key dimension without rotary position.
    pub qk_nope_head_dim: u64,
    /// Per-head rotary dimension; the rotary key is shared across heads and cached.
    pub qk_rope_head_dim: u64,
    /// Per-head value dimension.
    pub v_head_dim: u64,
}

/// The MLP nonlinearity.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Activation {
    Silu,
    Gelu,
    GeluTanh,
    Relu,
    /// ReLU squared (Primer; Nemotron-4's `relu2`), used in a plain (non-gated) MLP.
    ReluSquared,
}

/// A feed-forward block.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Mlp {
    /// Gated (SwiGLU/GeGLU: gate, up and down projections) or plain (up and down).
    pub gated: bool,
    pub activation: Activation,
    /// Intermediate width.
    pub ffn: u64,
    /// Whether the projections carry biases.
    pub bias: bool,
}

impl Mlp {
    /// Weight (and bias) parameters of one such block at model width `hidden`.
    pub fn params(&self, hidden: u64) -> u64 {
        let mats = if self.gated { 3 } else { 2 };
        let bias = if self.bias {
            if self.gated {
                2 * self.ffn + hidden
            } else {
                self.ffn + hidden
            }
        } else {
            0
        };
        mats * hidden * self.ffn + bias
    }
}

/// A mixture-of-experts block replacing the dense MLP in some layers.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Moe {
    /// Routed experts per MoE layer.
    pub experts: u64,
    /// Routed experts each token is sent to.
    pub top_k: u64,
    /// Each routed expert's MLP.
    pub expert: Mlp,
    /// Always-active shared experts, as one MLP of their combined width (`None` if none).
    pub shared: Option<Mlp>,
    /// Whether the shared expert output is scaled by a sigmoid gate (Qwen2-MoE): one
    /// `hidden`-wide vector of extra parameters.
    pub shared_gate: bool,
    /// How many of the model's layers are MoE layers (the rest use the dense MLP).
    pub moe_layers: u64,
}

/// Normalization layers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum NormKind {
    LayerNorm,
    RmsNorm,
}

/// How position enters the model.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PositionKind {
    Rotary,
    /// A learned absolute position table of `max_position` rows.
    Learned,
    Alibi,
}

/// A decoder-only transformer.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ModelArch {
    /// Catalog name or the name given on the command line.
    pub name: String,
    /// The Hugging Face `model_type` (or "generic").
    pub family: String,
    pub vocab: u64,
    pub hidden: u64,
    pub layers: u64,
    /// Query heads.
    pub heads: u64,
    /// Key/value heads (equal to `heads` for MHA; for MLA, equal to `heads`).
    pub kv_heads: u64,
    /// Per-head dimension of queries/keys/values (for MLA, see [`Mla`]).
    pub head_dim: u64,
    /// Present for multi-head latent attention.
    pub mla: Option<Mla>,
    /// Whether the Q, K and V projections carry biases.
    pub qkv_bias: bool,
    /// Whether the attention output projection carries a bias.
    pub out_bias: bool,
    /// Attention and MLP read the same input and are summed (GPT-J, Falcon, GPT-NeoX with
    /// `use_parallel_residual`): under tensor parallelism they share one all-reduce.
    pub parallel_attn_mlp: bool,
    /// The dense MLP (used by every layer that is not a MoE layer).
    pub mlp: Mlp,
    pub moe: Option<Moe>,
    pub norm: NormKind,
    /// Norm layers per transformer layer (2 for pre-norm; 4 for Gemma-2/3's sandwich norms;
    /// 1 for parallel-block models that share one norm).
    pub norms_per_layer: u64,
    /// Extra per-layer norm parameters not in `norms_per_layer` (e.g. Qwen3/Gemma-3 QK-norm),
    /// counted in parameters.
    pub extra_norm_params_per_layer: u64,
    pub position: PositionKind,
    pub max_position: u64,
    /// Whether the LM head shares the embedding matrix.
    pub tie_embeddings: bool,
    /// Sliding-window attention width, applied to `local_layers` of the layers.
    pub sliding_window: Option<u64>,
    /// Layers that use the sliding window (0 when there is no window).
    pub local_layers: u64,
    /// Assumptions a front-end made to fill gaps, shown to the user.
    pub assumptions: Vec<String>,
}

impl ModelArch {
    /// The attention kind, derived from head counts.
    pub fn attention_kind(&self) -> AttentionKind {
        if self.mla.is_some() {
            AttentionKind::Mla
        } else if self.kv_heads == self.heads {
            AttentionKind::Mha
        } else if self.kv_heads == 1 {
            AttentionKind::Mqa
        } else {
            AttentionKind::Gqa
        }
    }

    /// Checks the invariants the lowering relies on.
    pub fn validate(&self) -> Result<(), CoreError> {
        let bad = |problem: String| CoreError::InvalidModel {
            name: self.name.clone(),
            problem,
        };
        for (field, v) in [
            ("vocab_size", self.vocab),
            ("hidden_size", self.hidden),
            ("num_hidden_layers", self.layers),
            ("num_attention_heads", self.heads),
            ("num_key_value_heads", self.kv_heads),
            ("head_dim", self.head_dim),
            ("intermediate_size", self.mlp.ffn),
        ] {
            if v == 0 {
                return Err(bad(format!("{field} must be positive")));
            }
        }
        if self.heads % self.kv_heads != 0 {
            return Err(bad(format!(
                "num_attention_heads ({}) is not a multiple of num_key_value_heads ({})",
                self.heads, self.kv_heads
            )));
        }
        if let Some(moe) = &self.moe {
            if moe.experts == 0 || moe.top_k == 0 || moe.top_k > moe.experts {
                return Err(bad(format!(
                    "experts per token ({}) must be between 1 and the number of experts ({})",
                    moe.top_k, moe.experts
                )));
            }
            if moe.moe_layers > self.layers {
                return Err(bad("more MoE layers than layers".into()));
            }
        }
        if self.local_layers > self.layers {
            return Err(bad("more sliding-window layers than layers".into()));
        }
        Ok(())
    }

    /// Dense layers (those with the dense MLP).
    pub fn dense_layers(&self) -> u64 {
        self.layers - self.moe.as_ref().map_or(0, |m| m.moe_layers)
    }

    /// Width of the query projection output (all heads).
    pub fn q_dim(&self) -> u64 {
        match &self.mla {
            Some(m) => self.heads * (m.qk_nope_head_dim + m.qk_rope_head_dim),
            None => self.heads * self.head_dim,
        }
    }

    /// Attention parameters of one layer (projections and their biases, MLA's inner norms).
    pub fn attention_params(&self) -> u64 {
        let h = self.hidden;
        match &self.mla {
            Some(m) => {
                let qk = m.qk_nope_head_dim + m.qk_rope_head_dim;
                let q = match m.q_lora_rank {
                    Some(r) => h * r + r + r * self.heads * qk,
                    None => h * self.heads * qk,
                };
                let kv = h * (m.kv_lora_rank + m.qk_rope_head_dim)
                    + m.kv_lora_rank
                    + m.kv_lora_rank * self.heads * (m.qk_nope_head_dim + m.v_head_dim);
                let o = self.heads * m.v_head_dim * h;
                q + kv + o
            }
            None => {
                let q = self.heads * self.head_dim;
                let kv = self.kv_heads * self.head_dim;
                let mut p = h * (q + 2 * kv) + q * h;
                if self.qkv_bias {
                    p += q + 2 * kv;
                }
                if self.out_bias {
                    p += h;
                }
                p
            }
        }
    }

    /// Parameters of one norm layer.
    pub fn norm_params(&self) -> u64 {
        match self.norm {
            NormKind::LayerNorm => 2 * self.hidden,
            NormKind::RmsNorm => self.hidden,
        }
    }

    /// Parameters of one MoE block: routed experts, shared experts, router.
    pub fn moe_block_params(&self) -> u64 {
        self.moe.as_ref().map_or(0, |m| {
            m.experts * m.expert.params(self.hidden)
                + m.shared.as_ref().map_or(0, |s| s.params(self.hidden))
                + u64::from(m.shared_gate) * self.hidden
                + self.hidden * m.experts
        })
    }

    /// Parameters of one MoE block that a single token uses.
    pub fn moe_block_active_params(&self) -> u64 {
        self.moe.as_ref().map_or(0, |m| {
            m.top_k * m.expert.params(self.hidden)
                + m.shared.as_ref().map_or(0, |s| s.params(self.hidden))
                + u64::from(m.shared_gate) * self.hidden
                + self.hidden * m.experts
        })
    }

    /// Embedding parameters (token table plus a learned position table).
    pub fn embedding_params(&self) -> u64 {
        let pos = if self.position == PositionKind::Learned {
            self.max_position * self.hidden
        } else {
            0
        };
        self.vocab * self.hidden + pos
    }

    /// LM head parameters not shared with the embedding.
    pub fn lm_head_params(&self) -> u64 {
        if self.tie_embeddings {
            0
        } else {
            self.vocab * self.hidden
        }
    }

    fn layer_common_params(&self) -> u64 {
        self.attention_params()
            + self.norms_per_layer * self.norm_params()
            + self.extra_norm_params_per_layer
    }

    /// Total parameters.
    pub fn params(&self) -> u64 {
        let common = self.layers * self.layer_common_params();
        let dense = self.dense_layers() * self.mlp.params(self.hidden);
        let moe = self.moe.as_ref().map_or(0, |m| m.moe_layers) * self.moe_block_params();
        self.embedding_params() + common + dense + moe + self.norm_params() + self.lm_head_params()
    }

    /// Parameters one token touches in a forward pass (all of them for dense models).
    pub fn active_params(&self) -> u64 {
        let common = self.layers * self.layer_common_params();
        let dense = self.dense_layers() * self.mlp.params(self.hidden);
        let moe = self.moe.as_ref().map_or(0, |m| m.moe_layers) * self.moe_block_active_params();
        self.embedding_params() + common + dense + moe + self.norm_params() + self.lm_head_params()
    }

    /// Elements cached per token per layer: K and V for each KV head, or MLA's latent plus the
    /// shared rotary key.
    pub fn kv_elements_per_token_per_layer(&self) -> u64 {
        match &self.mla {
            Some(m) => m.kv_lora_rank + m.qk_rope_head_dim,
            None => 2 * self.kv_heads * self.head_dim,
        }
    }

    /// KV-cache bytes per token over all layers at precision `kv` (no sliding-window savings).
    pub fn kv_bytes_per_token(&self, kv: Precision) -> f64 {
        (self.layers * self.kv_elements_per_token_per_layer()) as f64 * kv.bytes()
    }

    /// KV-cache bytes one sequence holds at context `tokens`, with sliding-window layers keeping
    /// at most their window.
    pub fn kv_bytes_for_context(&self, tokens: u64, kv: Precision) -> f64 {
        let per_layer = self.kv_elements_per_token_per_layer() as f64 * kv.bytes();
        let local = self.local_layers;
        let global = self.layers - local;
        let local_tokens = self.sliding_window.map_or(tokens, |w| tokens.min(w));
        per_layer * (global * tokens + local * local_tokens) as f64
    }
}

#[cfg(test)]
pub(crate) mod fixtures {
    use super::*;

    /// Llama-2-7B as published (meta-llama/Llama-2-7b-hf config.json).
    pub fn llama2_7b() -> ModelArch {
        ModelArch {
            name: "llama-2-7b".into(),
            family: "llama".into(),
            vocab: 32000,
            hidden: 4096,
            layers: 32,
            heads: 32,
            kv_heads: 32,
            head_dim: 128,
            mla: None,
            qkv_bias: false,
            out_bias: false,
            parallel_attn_mlp: false,
            mlp: Mlp {
                gated: true,
                activation: Activation::Silu,
                ffn: 11008,
                bias: false,
            },
            moe: None,
            norm: NormKind::RmsNorm,
            norms_per_layer: 2,
            extra_norm_params_per_layer: 0,
            position: PositionKind::Rotary,
            max_position: 4096,
            tie_embeddings: false,
            sliding_window: None,
            local_layers: 0,
            assumptions: vec![],
        }
    }
}

#[cfg(test)]
mod tests {
    use super::fixtures::llama2_7b;
    use super::*;

    #[test]
    fn llama2_7b_parameter_count_by_hand() {
        // embed 32000*4096 = 131,072,000; per layer attn 4*4096^2 = 67,108,864,
        // mlp 3*4096*11008 = 135,266,304, norms 2*4096 = 8,192 → 202,383,360 × 32 =
        // 6,476,267,520; final norm 4,096; head 131,072,000 → 6,738,415,616.
        assert_eq!(llama2_7b().params(), 6_738_415_616);
        assert_eq!(llama2_7b().active_params(), 6_738_415_616);
    }

    #[test]
    fn kv_bytes_per_token_mha() {
        // 2 (K,V) × 32 layers × 32 heads × 128 × 2 B = 524,288 B.
        assert_eq!(llama2_7b().kv_bytes_per_token(Precision::Bf16), 524_288.0);
        assert_eq!(llama2_7b().attention_kind(), AttentionKind::Mha);
    }

    #[test]
    fn validate_rejects_zero_and_bad_grouping() {
        let mut m = llama2_7b();
        m.kv_heads = 5;
        assert!(m.validate().is_err());
        let mut m = llama2_7b();
        m.hidden = 0;
        assert!(m
            .validate()
            .unwrap_err()
            .to_string()
            .contains("hidden_size"));
    }
}
