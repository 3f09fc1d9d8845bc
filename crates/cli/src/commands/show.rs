//! `bottleneck show`: architecture summary of a model.

use bottleneck_core::lower::flops_per_token;
use bottleneck_core::{AttentionKind, Precision};
use serde::Serialize;

use crate::{output, resolve};

/// Arguments of `bottleneck show`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Built-in model name or path to a Hugging Face config.json (or its folder).
    pub model: String,
    /// KV-cache precision for `kv_bytes_per_token`.
    #[arg(long, default_value = "bf16")]
    pub kv: Precision,
    /// One JSON document on stdout.
    #[arg(long)]
    pub json: bool,
}

/// The `bottleneck.show/1` document.
#[derive(Serialize, Debug)]
pub struct Show {
    pub schema: &'static str,
    pub name: String,
    pub family: String,
    pub params: u64,
    pub active_params: u64,
    pub layers: u64,
    pub hidden: u64,
    pub heads: u64,
    pub kv_heads: u64,
    pub attention: AttentionKind,
    pub experts: u64,
    pub active_experts: u64,
    /// Forward FLOPs per token at a short context (one token after a 128-token context).
    pub flops_per_token: f64,
    pub kv_bytes_per_token: f64,
    pub kv_precision: Precision,
    pub max_position_embeddings: u64,
    pub vocab: u64,
    pub assumptions: Vec<String>,
}

/// Context used for `flops_per_token`.
pub const SHORT_CONTEXT: u64 = 128;

/// Prints the summary.
pub fn run(a: Args) -> anyhow::Result<()> {
    let arch = resolve::model(&a.model)?;
    let show = Show {
        schema: "bottleneck.show/1",
        name: arch.name.clone(),
        family: arch.family.clone(),
        params: arch.params(),
        active_params: arch.active_params(),
        layers: arch.layers,
        hidden: arch.hidden,
        heads: arch.heads,
        kv_heads: arch.kv_heads,
        attention: arch.attention_kind(),
        experts: arch.moe.as_ref().map_or(0, |m| m.experts),
        active_experts: arch.moe.as_ref().map_or(0, |m| m.top_k),
        flops_per_token: flops_per_token(&arch, SHORT_CONTEXT),
        kv_bytes_per_token: arch.kv_bytes_per_token(a.kv),
        kv_precision: a.kv,
        max_position_embeddings: arch.max_position,
        vocab: arch.vocab,
        assumptions: arch.assumptions.clone(),
    };
    if a.json {
        return output::json(&show);
    }
    use bottleneck_report::fmt::{bytes, flops, params, table};
    let mut t = table(&["field", "value"]);
    let attention = format!("{:?}", show.attention).to_lowercase();
    let rows: Vec<(&str, String)> = vec![
        ("name", show.name.clone()),
        ("family", show.family.clone()),
        ("parameters", params(show.params)),
        ("active parameters", params(show.active_params)),
        ("layers", show.layers.to_string()),
        ("hidden", show.hidden.to_string()),
        (
            "heads / KV heads",
            format!("{} / {}", show.heads, show.kv_heads),
        ),
        ("attention", attention),
        (
            "experts (active)",
            if show.experts > 0 {
                format!("{} ({})", show.experts, show.active_experts)
            } else {
                "dense".into()
            },
        ),
        ("vocabulary", show.vocab.to_string()),
        ("context window", show.max_position_embeddings.to_string()),
        (
            "forward FLOPs per token",
            format!(
                "{} (at context {SHORT_CONTEXT})",
                flops(show.flops_per_token)
            ),
        ),
        (
            "KV cache per token",
            format!("{} ({})", bytes(show.kv_bytes_per_token), show.kv_precision),
        ),
    ];
    for (k, v) in rows {
        t.add_row(vec![k.to_string(), v]);
    }
    let mut s = t.to_string();
    for a in &show.assumptions {
        s.push_str("\nassumption: ");
        s.push_str(a);
    }
    output::text(&s)
}
