//! Hugging Face `config.json` → [`ModelArch`], one reader per family.
//!
//! Parameter counts follow the Hugging Face implementation of each family (which tensors exist,
//! which carry biases, which are tied), so that `ModelArch::params()` reproduces the published
//! totals. Whatever the architecture type cannot represent is stated in `assumptions`.

use bottleneck_core::arch::{Activation, Mla, Mlp, ModelArch, Moe, NormKind, PositionKind};
use serde_json::{Map, Value};

use crate::error::ModelError;
use crate::fields::Fields;

/// The `model_type` values read by a dedicated family reader.
pub const FAMILIES: &[&str] = &[
    "llama",
    "mistral",
    "mixtral",
    "qwen2",
    "qwen2_moe",
    "qwen3",
    "qwen3_moe",
    "gemma",
    "gemma2",
    "gemma3",
    "gemma3_text",
    "phi3",
    "gpt2",
    "gpt_neox",
    "gptj",
    "falcon",
    "opt",
    "bloom",
    "deepseek_v2",
    "deepseek_v3",
    "nemotron",
    "grok-1",
    "dbrx",
];

/// The fields the generic decoder path needs.
const GENERIC_FIELDS: [&str; 5] = [
    "hidden_size",
    "num_hidden_layers",
    "num_attention_heads",
    "intermediate_size",
    "vocab_size",
];

/// Parses the text of a config.json.
pub fn from_config_json(name: &str, text: &str) -> Result<ModelArch, ModelError> {
    let value: Value = serde_json::from_str(text).map_err(|e| ModelError::Json {
        name: name.to_string(),
        line: e.line(),
        column: e.column(),
        message: json_problem(&e),
    })?;
    let Value::Object(obj) = &value else {
        return Err(ModelError::NotAnObject {
            name: name.to_string(),
            found: kind_of(&value).into(),
        });
    };
    let arch = from_object(name, obj)?;
    let estimate = params_estimate(&arch);
    // NaN cannot arise (finite inputs), but is rejected too.
    if estimate.is_nan() || estimate >= MAX_PARAMS {
        return Err(ModelError::Implausible {
            name: name.to_string(),
            params: estimate,
        });
    }
    arch.validate()?;
    Ok(arch)
}

/// No real model comes near 10^15 parameters; below it every integer product in
/// `ModelArch::params()` and the KV-cache sizes fits in a u64.
const MAX_PARAMS: f64 = 1e15;

/// An upper bound of `ModelArch::params()` in floating point (which cannot overflow), counting
/// every weight matrix, bias and norm generously.
fn params_estimate(a: &ModelArch) -> f64 {
    let h = a.hidden as f64;
    let heads = a.heads as f64;
    let attention = match &a.mla {
        Some(m) => {
            let qk = (m.qk_nope_head_dim + m.qk_rope_head_dim) as f64;
            let q = m
                .q_lora_rank
                .map_or(h * heads * qk, |r| r as f64 * (h + 1.0 + heads * qk));
            let kv_rank = m.kv_lora_rank as f64;
            q + h * (kv_rank + m.qk_rope_head_dim as f64)
                + kv_rank * (1.0 + heads * (m.qk_nope_head_dim + m.v_head_dim) as f64)
                + heads * m.v_head_dim as f64 * h
        }
        None => {
            let q = heads * a.head_dim as f64;
            let kv = a.kv_heads as f64 * a.head_dim as f64;
            (h + 1.0) * (2.0 * q + 2.0 * kv) + h
        }
    };
    let mlp = |m: &Mlp| 3.0 * (h + 1.0) * (m.ffn as f64 + 1.0);
    let ffn = mlp(&a.mlp)
        + a.moe.as_ref().map_or(0.0, |m| {
            m.experts as f64 * (mlp(&m.expert) + h) + m.shared.as_ref().map_or(0.0, mlp) + h
        });
    let norms = (a.norms_per_layer as f64 + 1.0) * 2.0 * h + a.extra_norm_params_per_layer as f64;
    a.layers as f64 * (attention + ffn + norms)
        + h * (2.0 * a.vocab as f64 + a.max_position as f64 + 2.0)
}

fn json_problem(e: &serde_json::Error) -> String {
    // serde_json appends " at line L column C"; the error variant states those separately.
    let s = e.to_string();
    match s.rfind(" at line ") {
        Some(i) => s[..i].to_string(),
        None => s,
    }
}

fn kind_of(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

fn from_object(name: &str, obj: &Map<String, Value>) -> Result<ModelArch, ModelError> {
    let model_type = match obj.get("model_type") {
        None | Some(Value::Null) => "",
        Some(Value::String(s)) => s.as_str(),
        Some(other) => {
            return Err(ModelError::BadField {
                name: name.into(),
                field: "model_type".into(),
                problem: format!("must be a string (got {other}): fix the value"),
            })
        }
    };
    // Multimodal wrappers keep the language model under `text_config`.
    if let Some(Value::Object(text)) = obj.get("text_config") {
        if !obj.contains_key("hidden_size") {
            let inner = match text.get("model_type").and_then(Value::as_str) {
                Some(t) if !t.is_empty() => t.to_string(),
                _ if model_type == "gemma3" => "gemma3_text".to_string(),
                _ => String::new(),
            };
            let mut arch = parse_family(name, &inner, text)?;
            arch.assumptions.insert(
                0,
                format!(
                    "language model read from text_config of the '{model_type}' config; the vision tower is not counted"
                ),
            );
            return Ok(arch);
        }
    }
    parse_family(name, model_type, obj)
}

fn parse_family(
    name: &str,
    model_type: &str,
    obj: &Map<String, Value>,
) -> Result<ModelArch, ModelError> {
    let mut f = Fields::new(name, model_type, obj);
    let arch = match model_type {
        "gpt2" => gpt2(&mut f),
        "gpt_neox" => gpt_neox(&mut f),
        "gptj" => gptj(&mut f),
        "falcon" | "RefinedWeb" | "RefinedWebModel" => falcon(&mut f),
        "opt" => opt(&mut f),
        "bloom" => bloom(&mut f),
        "dbrx" => dbrx(&mut f),
        "deepseek_v2" | "deepseek_v3" => deepseek(&mut f),
        _ => {
            let family = Family::of(model_type);
            if family.generic {
                let missing: Vec<String> = GENERIC_FIELDS
                    .iter()
                    .filter(|k| f.raw(k).is_none())
                    .map(|k| (*k).to_string())
                    .collect();
                if !missing.is_empty() {
                    return Err(ModelError::UnknownModelType {
                        name: name.into(),
                        model_type: if model_type.is_empty() {
                            "(none)".into()
                        } else {
                            model_type.into()
                        },
                        fields: missing,
                    });
                }
            }
            decoder(&mut f, &family)
        }
    };
    let assumptions = f.finish()?;
    Ok(ModelArch {
        assumptions,
        ..arch
    })
}

/// Switches of the llama-like families.
struct Family {
    name: &'static str,
    generic: bool,
    tie_default: bool,
    /// Q/K/V biases: `Some(v)` fixed, `None` read from `attention_bias`.
    qkv_bias: Option<bool>,
    qk_norm: bool,
    norms_per_layer: u64,
    gated: bool,
    norm: NormKind,
    default_act: Activation,
    /// How the sliding window applies.
    window: Window,
    moe: MoeStyle,
    /// Defaults of the family's config class for fields its published files omit.
    default_vocab: Option<u64>,
    default_max_position: Option<u64>,
    default_head_dim: Option<u64>,
}

#[derive(Clone, Copy, PartialEq)]
enum Window {
    None,
    /// `sliding_window` applies to every layer when set.
    All,
    /// Qwen2/3: only when `use_sliding_window`, for layers at or past `max_window_layers`.
    Qwen,
    /// Gemma-2: every other layer (even indices) is local.
    Alternate,
    /// Gemma-3: `layer_types`, else every `sliding_window_pattern`-th layer is global.
    Pattern,
}

#[derive(Clone, Copy, PartialEq)]
enum MoeStyle {
    None,
    /// Mixtral/Grok: `num_local_experts` (or `num_experts`) experts of `intermediate_size`.
    Mixtral,
    /// Qwen MoE: `num_experts` of `moe_intermediate_size`, `decoder_sparse_step`,
    /// `mlp_only_layers`, optional gated shared expert.
    Qwen,
}

impl Family {
    fn of(model_type: &str) -> Family {
        let base = Family {
            name: "llama",
            generic: false,
            tie_default: false,
            qkv_bias: None,
            qk_norm: false,
            norms_per_layer: 2,
            gated: true,
            norm: NormKind::RmsNorm,
            default_act: Activation::Silu,
            window: Window::None,
            moe: MoeStyle::None,
            default_vocab: None,
            default_max_position: None,
            default_head_dim: None,
        };
        match model_type {
            "llama" => base,
            "mistral" => Family {
                name: "mistral",
                qkv_bias: Some(false),
                window: Window::All,
                ..base
            },
            "mixtral" => Family {
                name: "mixtral",
                qkv_bias: Some(false),
                window: Window::All,
                moe: MoeStyle::Mixtral,
                ..base
            },
            "qwen2" => Family {
                name: "qwen2",
                qkv_bias: Some(true),
                window: Window::Qwen,
                ..base
            },
            "qwen2_moe" => Family {
                name: "qwen2_moe",
                qkv_bias: Some(true),
                window: Window::Qwen,
                moe: MoeStyle::Qwen,
                ..base
            },
            "qwen3" => Family {
                name: "qwen3",
                qk_norm: true,
                window: Window::Qwen,
                ..base
            },
            "qwen3_moe" => Family {
                name: "qwen3_moe",
                qk_norm: true,
                window: Window::Qwen,
                moe: MoeStyle::Qwen,
                ..base
            },
            "gemma" => Family {
                name: "gemma",
                tie_default: true,
                default_act: Activation::GeluTanh,
                default_head_dim: Some(256),
                ..base
            },
            "gemma2" => Family {
                name: "gemma2",
                tie_default: true,
                norms_per_layer: 4,
                default_act: Activation::GeluTanh,
                window: Window::Alternate,
                default_head_dim: Some(256),
                ..base
            },
            "gemma3_text" | "gemma3" => Family {
                name: "gemma3",
                tie_default: true,
                qk_norm: true,
                norms_per_layer: 4,
                default_act: Activation::GeluTanh,
                window: Window::Pattern,
                // transformers Gemma3TextConfig defaults.
                default_vocab: Some(262_208),
                default_max_position: Some(131_072),
                default_head_dim: Some(256),
                ..base
            },
            "phi3" => Family {
                name: "phi3",
                qkv_bias: Some(false),
                window: Window::All,
                ..base
            },
            "nemotron" => Family {
                name: "nemotron",
                gated: false,
                norm: NormKind::LayerNorm,
                default_act: Activation::ReluSquared,
                ..base
            },
            "grok-1" | "grok1" | "grok" => Family {
                name: "grok-1",
                tie_default: true,
                qkv_bias: Some(false),
                norms_per_layer: 4,
                default_act: Activation::Gelu,
                moe: MoeStyle::Mixtral,
                ..base
            },
            _ => Family {
                name: "generic",
                generic: true,
                moe: MoeStyle::Mixtral,
                ..base
            },
        }
    }
}

fn activation(f: &mut Fields, keys: &[&str], default: Activation) -> Activation {
    let Some(s) = f.string(keys) else {
        return default;
    };
    match s {
        "silu" | "swish" | "swiglu" => Activation::Silu,
        "gelu" | "gelu_python" | "gelu_exact" => Activation::Gelu,
        "gelu_new" | "gelu_fast" | "gelu_pytorch_tanh" | "gelu_tanh" | "gelu_accurate" => {
            Activation::GeluTanh
        }
        "relu" => Activation::Relu,
        "relu2" | "relu_squared" | "squared_relu" => Activation::ReluSquared,
        other => {
            f.assume(format!(
                "activation '{other}' is not modelled: costed as {default:?}"
            ));
            default
        }
    }
}

/// `hidden / heads`, or a problem when it does not divide.
fn split_heads(f: &mut Fields, hidden: u64, heads: u64, field: &str) -> u64 {
    if heads == 0 || hidden % heads != 0 {
        f.problem(
            field,
            format!(
                "({heads}) does not divide the hidden size ({hidden}): fix it or give head_dim"
            ),
        );
        return 1;
    }
    hidden / heads
}

fn max_position(f: &mut Fields, keys: &[&str], default: Option<u64>) -> u64 {
    match default {
        Some(d) => f.size_or(keys, d, Some("the config class default")),
        None => f.size_or(keys, 2048, Some("not stated in the config")),
    }
}

/// Llama-style pre-norm decoders (and the generic path).
fn decoder(f: &mut Fields, fam: &Family) -> ModelArch {
    if fam.generic {
        f.assume(format!(
            "model_type '{}' is not a known family: read as a llama-style pre-norm decoder (RMSNorm, gated SiLU MLP, rotary positions, no biases unless attention_bias/mlp_bias say so)",
            f.model_type
        ));
    }
    let hidden = f.size(&["hidden_size"]);
    let layers = f.size(&["num_hidden_layers"]);
    let heads = f.size(&["num_attention_heads"]);
    let kv_heads = f.size_or(&["num_key_value_heads"], heads, None);
    let vocab = match fam.default_vocab {
        Some(d) => f.size_or(&["vocab_size"], d, Some("the config class default")),
        None => f.size(&["vocab_size"]),
    };
    let ffn = f.size(&["intermediate_size"]);
    let head_dim = match f.size_opt(&["head_dim", "kv_channels"]) {
        Some(d) => d,
        None => match fam.default_head_dim {
            Some(d) => {
                f.assume(format!(
                    "head_dim absent: {d} assumed (the config class default)"
                ));
                d
            }
            None => split_heads(f, hidden, heads, "num_attention_heads"),
        },
    };
    let max_position = max_position(f, &["max_position_embeddings"], fam.default_max_position);
    let tie = f.flag("tie_word_embeddings", fam.tie_default);
    // Gemma's modelling code ignores `hidden_act` and uses `hidden_activation`, else tanh GELU.
    let act_keys: &[&str] = if fam.name.starts_with("gemma") {
        &["hidden_activation"]
    } else {
        &["hidden_act"]
    };
    let act = activation(f, act_keys, fam.default_act);
    let attention_bias = f.flag("attention_bias", false);
    let qkv_bias = fam.qkv_bias.unwrap_or(attention_bias);
    // Llama, Nemotron and the generic path put the same bias flag on o_proj; Qwen2 has
    // biases on Q/K/V only.
    let out_bias = fam.qkv_bias.is_none() && attention_bias;
    let mlp_bias = f.flag("mlp_bias", false);
    let mlp = Mlp {
        gated: fam.gated,
        activation: act,
        ffn,
        bias: mlp_bias,
    };

    let (sliding_window, local_layers) = window(f, fam.window, layers);

    let moe = match fam.moe {
        MoeStyle::None => None,
        MoeStyle::Mixtral => {
            let experts = f.size_opt(&["num_local_experts", "num_experts"]);
            match experts {
                None if fam.generic => None,
                None => {
                    f.size(&["num_local_experts"]);
                    None
                }
                Some(experts) => {
                    let top_k = f.size(&["num_experts_per_tok"]);
                    if fam.generic {
                        f.assume(format!(
                            "num_experts ({experts}) read as a Mixtral-style MoE in every layer, experts of intermediate_size"
                        ));
                    }
                    Some(Moe {
                        experts,
                        top_k,
                        expert: mlp.clone(),
                        shared: None,
                        shared_gate: false,
                        moe_layers: layers,
                    })
                }
            }
        }
        MoeStyle::Qwen => {
            let experts = f.size(&["num_experts"]);
            let top_k = f.size(&["num_experts_per_tok"]);
            let expert_ffn = f.size(&["moe_intermediate_size"]);
            let step = f.size_or(&["decoder_sparse_step"], 1, None);
            let dense_only = f.indices("mlp_only_layers");
            let shared_ffn = f.count_or(&["shared_expert_intermediate_size"], 0);
            // Layers with (i + 1) % step == 0, less the dense-only ones among them (counted
            // arithmetically: a hostile layer count must not become a long loop).
            let mut dense_sparse: Vec<u64> = dense_only
                .into_iter()
                .filter(|&i| i < layers && (i + 1) % step == 0)
                .collect();
            dense_sparse.sort_unstable();
            dense_sparse.dedup();
            let moe_layers = layers / step - dense_sparse.len() as u64;
            let expert = Mlp {
                ffn: expert_ffn,
                ..mlp.clone()
            };
            (moe_layers > 0).then(|| Moe {
                experts,
                top_k,
                expert: expert.clone(),
                shared: (shared_ffn > 0).then_some(Mlp {
                    ffn: shared_ffn,
                    ..expert
                }),
                shared_gate: shared_ffn > 0,
                moe_layers,
            })
        }
    };

    if fam.name == "nemotron" {
        if let Some(p) = f.fraction("partial_rotary_factor") {
            if p < 1.0 {
                f.assume(format!(
                    "rotary on {:.0}% of each head (no parameter or cost effect)",
                    p * 100.0
                ));
            }
        }
        f.assume("layernorm1p (weight + 1) counted as LayerNorm with weight and bias");
    }

    ModelArch {
        name: f.name.to_string(),
        family: if fam.generic && !f.model_type.is_empty() {
            f.model_type.clone()
        } else {
            fam.name.to_string()
        },
        vocab,
        hidden,
        layers,
        heads,
        kv_heads,
        head_dim,
        mla: None,
        qkv_bias,
        out_bias,
        parallel_attn_mlp: false,
        mlp,
        moe,
        norm: fam.norm,
        norms_per_layer: fam.norms_per_layer,
        extra_norm_params_per_layer: if fam.qk_norm { 2 * head_dim } else { 0 },
        position: PositionKind::Rotary,
        max_position,
        tie_embeddings: tie,
        sliding_window,
        local_layers,
        assumptions: Vec::new(),
    }
}

fn window(f: &mut Fields, style: Window, layers: u64) -> (Option<u64>, u64) {
    match style {
        Window::None => (None, 0),
        Window::All => match f.size_opt(&["sliding_window"]) {
            Some(w) => (Some(w), layers),
            None => (None, 0),
        },
        Window::Qwen => {
            let w = f.size_opt(&["sliding_window"]);
            let on = f.flag("use_sliding_window", false);
            let full = f.count_or(&["max_window_layers"], layers).min(layers);
            match w {
                Some(w) if on && full < layers => (Some(w), layers - full),
                _ => (None, 0),
            }
        }
        Window::Alternate => match f.size_opt(&["sliding_window"]) {
            Some(w) => (Some(w), layers.div_ceil(2)),
            None => (None, 0),
        },
        Window::Pattern => {
            let Some(w) = f.size_opt(&["sliding_window"]) else {
                return (None, 0);
            };
            if let Some(Value::Array(types)) = f.raw("layer_types") {
                let local = types
                    .iter()
                    .filter(|t| t.as_str() == Some("sliding_attention"))
                    .count() as u64;
                return (Some(w), local.min(layers));
            }
            let pattern = f.size_or(&["sliding_window_pattern"], 6, None);
            (Some(w), layers - layers / pattern)
        }
    }
}

/// DeepSeek-V2/V3: multi-head latent attention, shared + routed experts, dense first layers.
fn deepseek(f: &mut Fields) -> ModelArch {
    let hidden = f.size(&["hidden_size"]);
    let layers = f.size(&["num_hidden_layers"]);
    let heads = f.size(&["num_attention_heads"]);
    let vocab = f.size(&["vocab_size"]);
    let ffn = f.size(&["intermediate_size"]);
    let max_position = max_position(f, &["max_position_embeddings"], None);
    let tie = f.flag("tie_word_embeddings", false);
    let act = activation(f, &["hidden_act"], Activation::Silu);
    let attention_bias = f.flag("attention_bias", false);
    let mla = Mla {
        q_lora_rank: f.size_opt(&["q_lora_rank"]),
        kv_lora_rank: f.size(&["kv_lora_rank"]),
        qk_nope_head_dim: f.size(&["qk_nope_head_dim"]),
        qk_rope_head_dim: f.size(&["qk_rope_head_dim"]),
        v_head_dim: f.size(&["v_head_dim"]),
    };
    let mlp = Mlp {
        gated: true,
        activation: act,
        ffn,
        bias: false,
    };
    let moe = match f.size_opt(&["n_routed_experts"]) {
        None => None,
        Some(experts) => {
            let top_k = f.size(&["num_experts_per_tok"]);
            let expert_ffn = f.size(&["moe_intermediate_size"]);
            let shared = f.count_or(&["n_shared_experts"], 0);
            let first_dense = f.count_or(&["first_k_dense_replace"], 0);
            let freq = f.size_or(&["moe_layer_freq"], 1, None);
            // Layers i in [first_dense, layers) with i % freq == 0.
            let moe_layers = if first_dense >= layers {
                0
            } else {
                (layers - 1) / freq + 1 - first_dense.div_ceil(freq)
            };
            let expert = Mlp {
                ffn: expert_ffn,
                ..mlp.clone()
            };
            if f.string(&["topk_method"]) == Some("noaux_tc") {
                f.assume(format!(
                    "the router's score-correction bias ({experts} values per MoE layer) is not counted"
                ));
            }
            (moe_layers > 0).then(|| Moe {
                experts,
                top_k,
                expert: expert.clone(),
                shared: (shared > 0).then(|| Mlp {
                    ffn: shared.saturating_mul(expert_ffn),
                    ..expert
                }),
                shared_gate: false,
                moe_layers,
            })
        }
    };
    let mtp = f.count_or(&["num_nextn_predict_layers"], 0);
    if mtp > 0 {
        f.assume(format!(
            "the multi-token-prediction module ({mtp} extra layer(s), used only for speculative decoding) is excluded, as DeepSeek's 671B/37B counts exclude it"
        ));
    }
    if attention_bias {
        f.assume("attention_bias ignored: MLA projections are modelled without biases");
    }
    ModelArch {
        name: f.name.to_string(),
        family: f.model_type.clone(),
        vocab,
        hidden,
        layers,
        heads,
        kv_heads: heads,
        head_dim: mla.qk_nope_head_dim + mla.qk_rope_head_dim,
        mla: Some(mla),
        qkv_bias: false,
        out_bias: false,
        parallel_attn_mlp: false,
        mlp,
        moe,
        norm: NormKind::RmsNorm,
        norms_per_layer: 2,
        extra_norm_params_per_layer: 0,
        position: PositionKind::Rotary,
        max_position,
        tie_embeddings: tie,
        sliding_window: None,
        local_layers: 0,
        assumptions: Vec::new(),
    }
}

/// A plain (non-llama) decoder assembled from its parts.
struct Plain {
    family: &'static str,
    vocab: u64,
    hidden: u64,
    layers: u64,
    heads: u64,
    kv_heads: u64,
    ffn: u64,
    act: Activation,
    qkv_bias: bool,
    out_bias: bool,
    mlp_bias: bool,
    parallel: bool,
    norms_per_layer: u64,
    position: PositionKind,
    max_position: u64,
    tie: bool,
}

impl Plain {
    fn build(self, f: &mut Fields) -> ModelArch {
        let head_dim = split_heads(f, self.hidden, self.heads, "num_attention_heads");
        ModelArch {
            name: f.name.to_string(),
            family: self.family.to_string(),
            vocab: self.vocab,
            hidden: self.hidden,
            layers: self.layers,
            heads: self.heads,
            kv_heads: self.kv_heads,
            head_dim,
            mla: None,
            qkv_bias: self.qkv_bias,
            out_bias: self.out_bias,
            parallel_attn_mlp: self.parallel,
            mlp: Mlp {
                gated: false,
                activation: self.act,
                ffn: self.ffn,
                bias: self.mlp_bias,
            },
            moe: None,
            norm: NormKind::LayerNorm,
            norms_per_layer: self.norms_per_layer,
            extra_norm_params_per_layer: 0,
            position: self.position,
            max_position: self.max_position,
            tie_embeddings: self.tie,
            sliding_window: None,
            local_layers: 0,
            assumptions: Vec::new(),
        }
    }
}

/// GPT-2 (and GPT-3-shaped configs in its schema): learned positions, Conv1D with biases, tied.
fn gpt2(f: &mut Fields) -> ModelArch {
    let hidden = f.size(&["n_embd", "hidden_size"]);
    let heads = f.size(&["n_head", "num_attention_heads"]);
    let p = Plain {
        family: "gpt2",
        vocab: f.size(&["vocab_size"]),
        hidden,
        layers: f.size(&["n_layer", "num_hidden_layers"]),
        heads,
        kv_heads: heads,
        ffn: f.size_or(&["n_inner"], 4 * hidden, None),
        act: activation(f, &["activation_function"], Activation::GeluTanh),
        qkv_bias: true,
        out_bias: true,
        mlp_bias: true,
        parallel: false,
        norms_per_layer: 2,
        position: PositionKind::Learned,
        max_position: f.size(&["n_positions", "max_position_embeddings", "n_ctx"]),
        tie: f.flag("tie_word_embeddings", true),
    };
    p.build(f)
}

/// GPT-NeoX: parallel residual, partial rotary, biases everywhere, untied head.
fn gpt_neox(f: &mut Fields) -> ModelArch {
    let heads = f.size(&["num_attention_heads"]);
    if let Some(p) = f.fraction("rotary_pct") {
        if p < 1.0 {
            f.assume(format!(
                "rotary on {:.0}% of each head (no parameter or cost effect)",
                p * 100.0
            ));
        }
    }
    let bias = f.flag("attention_bias", true);
    let p = Plain {
        family: "gpt_neox",
        vocab: f.size(&["vocab_size"]),
        hidden: f.size(&["hidden_size"]),
        layers: f.size(&["num_hidden_layers"]),
        heads,
        kv_heads: heads,
        ffn: f.size(&["intermediate_size"]),
        act: activation(f, &["hidden_act"], Activation::Gelu),
        qkv_bias: bias,
        out_bias: bias,
        mlp_bias: true,
        parallel: f.flag("use_parallel_residual", true),
        // input_layernorm and post_attention_layernorm exist in both residual layouts.
        norms_per_layer: 2,
        position: PositionKind::Rotary,
        max_position: f.size(&["max_position_embeddings"]),
        tie: f.flag("tie_word_embeddings", false),
    };
    p.build(f)
}

/// GPT-J: one LayerNorm feeding attention and MLP in parallel; biases only in the MLP and on
/// the LM head.
fn gptj(f: &mut Fields) -> ModelArch {
    let hidden = f.size(&["n_embd", "hidden_size"]);
    let heads = f.size(&["n_head", "num_attention_heads"]);
    let vocab = f.size(&["vocab_size"]);
    f.size_opt(&["rotary_dim"]);
    f.assume(format!(
        "the LM head's bias ({vocab} parameters) is not counted"
    ));
    let p = Plain {
        family: "gptj",
        vocab,
        hidden,
        layers: f.size(&["n_layer", "num_hidden_layers"]),
        heads,
        kv_heads: heads,
        ffn: f.size_or(&["n_inner"], 4 * hidden, None),
        act: activation(f, &["activation_function"], Activation::GeluTanh),
        qkv_bias: false,
        out_bias: false,
        mlp_bias: true,
        parallel: true,
        norms_per_layer: 1,
        position: PositionKind::Rotary,
        max_position: f.size(&["n_positions", "max_position_embeddings"]),
        tie: f.flag("tie_word_embeddings", false),
    };
    p.build(f)
}

/// Falcon: parallel attention/MLP, multi-query or grouped KV (new decoder architecture),
/// rotary or ALiBi, tied head.
fn falcon(f: &mut Fields) -> ModelArch {
    let hidden = f.size(&["hidden_size", "n_embed"]);
    let heads = f.size(&["num_attention_heads", "n_head"]);
    let new_arch = f.flag("new_decoder_architecture", false);
    let multi_query = f.flag("multi_query", true);
    let parallel = f.flag("parallel_attn", true);
    let kv_heads = if new_arch {
        f.size_or(&["num_kv_heads"], heads, None)
    } else if multi_query {
        1
    } else {
        heads
    };
    let norms = if new_arch {
        f.size_or(&["num_ln_in_parallel_attn"], 2, None)
    } else if parallel {
        1
    } else {
        2
    };
    let bias = f.flag("bias", false);
    let alibi = f.flag("alibi", false);
    let p = Plain {
        family: "falcon",
        vocab: f.size(&["vocab_size"]),
        hidden,
        layers: f.size(&["num_hidden_layers", "n_layer"]),
        heads,
        kv_heads,
        ffn: f.size_or(&["ffn_hidden_size"], 4 * hidden, None),
        act: activation(f, &["activation"], Activation::Gelu),
        qkv_bias: bias,
        out_bias: bias,
        mlp_bias: bias,
        parallel,
        norms_per_layer: norms,
        position: if alibi {
            PositionKind::Alibi
        } else {
            PositionKind::Rotary
        },
        max_position: f.size_or(
            &["max_position_embeddings"],
            2048,
            Some("FalconConfig default; Falcon was trained at 2048 tokens"),
        ),
        tie: f.flag("tie_word_embeddings", true),
    };
    p.build(f)
}

/// OPT: learned positions with an offset of 2, ReLU MLP, biases, tied head.
fn opt(f: &mut Fields) -> ModelArch {
    let hidden = f.size(&["hidden_size"]);
    let heads = f.size(&["num_attention_heads"]);
    let bias = f.flag("enable_bias", true);
    let mpe = f.size(&["max_position_embeddings"]);
    f.assume(format!(
        "the learned position table's 2 offset rows beyond max_position_embeddings ({} parameters) are not counted",
        2 * hidden
    ));
    if let Some(proj) = f.size_opt(&["word_embed_proj_dim"]) {
        if proj != hidden {
            f.assume(format!(
                "word_embed_proj_dim ({proj}) differs from hidden_size: project_in/project_out are not counted and the embedding is costed at hidden_size"
            ));
        }
    }
    let p = Plain {
        family: "opt",
        vocab: f.size(&["vocab_size"]),
        hidden,
        layers: f.size(&["num_hidden_layers"]),
        heads,
        kv_heads: heads,
        ffn: f.size(&["ffn_dim"]),
        act: activation(f, &["activation_function"], Activation::Relu),
        qkv_bias: bias,
        out_bias: bias,
        mlp_bias: bias,
        parallel: false,
        norms_per_layer: 2,
        position: PositionKind::Learned,
        max_position: mpe,
        tie: f.flag("tie_word_embeddings", true),
    };
    p.build(f)
}

/// BLOOM: ALiBi, biases everywhere, LayerNorm on the embeddings, tied head.
fn bloom(f: &mut Fields) -> ModelArch {
    let hidden = f.size(&["hidden_size", "n_embed"]);
    let heads = f.size(&["n_head", "num_attention_heads"]);
    f.assume(format!(
        "the embedding LayerNorm ({} parameters) is not counted",
        2 * hidden
    ));
    let p = Plain {
        family: "bloom",
        vocab: f.size(&["vocab_size"]),
        hidden,
        layers: f.size(&["n_layer", "num_hidden_layers"]),
        heads,
        kv_heads: heads,
        ffn: f.size_or(&["n_inner"], 4 * hidden, None),
        act: Activation::GeluTanh,
        qkv_bias: true,
        out_bias: true,
        mlp_bias: true,
        parallel: false,
        norms_per_layer: 2,
        position: PositionKind::Alibi,
        max_position: f.size_or(
            &["seq_length", "max_position_embeddings"],
            2048,
            Some("BLOOM was trained at 2048 tokens; ALiBi has no hard limit"),
        ),
        tie: f.flag("tie_word_embeddings", true),
    };
    p.build(f)
}

/// DBRX: fine-grained MoE (16 experts, top-4) with nested `attn_config`/`ffn_config`.
fn dbrx(f: &mut Fields) -> ModelArch {
    let hidden = f.size(&["d_model"]);
    let heads = f.size(&["n_heads"]);
    let layers = f.size(&["n_layers"]);
    let kv_heads = f.size_or(&["attn_config.kv_n_heads"], 1, None);
    let ffn = f.size(&["ffn_config.ffn_hidden_size"]);
    let experts = f.size(&["ffn_config.moe_num_experts"]);
    let top_k = f.size(&["ffn_config.moe_top_k"]);
    let vocab = f.size(&["vocab_size"]);
    let max_position = f.size(&["max_seq_len"]);
    let tie = f.flag("tie_word_embeddings", false);
    let head_dim = split_heads(f, hidden, heads, "n_heads");
    f.assume("DBRX's bias-free LayerNorms are counted with a bias (2 x d_model per norm)");
    let mlp = Mlp {
        gated: true,
        activation: Activation::Silu,
        ffn,
        bias: false,
    };
    ModelArch {
        name: f.name.to_string(),
        family: "dbrx".into(),
        vocab,
        hidden,
        layers,
        heads,
        kv_heads,
        head_dim,
        mla: None,
        qkv_bias: false,
        out_bias: false,
        parallel_attn_mlp: false,
        mlp: mlp.clone(),
        moe: Some(Moe {
            experts,
            top_k,
            expert: mlp,
            shared: None,
            shared_gate: false,
            moe_layers: layers,
        }),
        norm: NormKind::LayerNorm,
        norms_per_layer: 2,
        extra_norm_params_per_layer: 0,
        position: PositionKind::Rotary,
        max_position,
        tie_embeddings: tie,
        sliding_window: None,
        local_layers: 0,
        assumptions: Vec::new(),
    }
}
