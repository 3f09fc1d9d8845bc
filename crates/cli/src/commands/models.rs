//! `bottleneck models`: the built-in model catalog.

use serde::Serialize;

use crate::output;

/// Arguments of `bottleneck models`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// One JSON document on stdout.
    #[arg(long)]
    pub json: bool,
}

#[derive(Serialize)]
struct Row<'a> {
    name: &'a str,
    family: &'a str,
    hf_repo: &'a str,
    params: u64,
    active_params: u64,
    layers: u64,
    attention: bottleneck_core::AttentionKind,
    experts: u64,
    max_position_embeddings: u64,
}

/// Lists the catalog.
pub fn run(a: Args) -> anyhow::Result<()> {
    let rows: Vec<Row> = bottleneck_models::catalog()
        .iter()
        .map(|e| Row {
            name: &e.name,
            family: &e.arch.family,
            hf_repo: &e.hf_repo,
            params: e.arch.params(),
            active_params: e.arch.active_params(),
            layers: e.arch.layers,
            attention: e.arch.attention_kind(),
            experts: e.arch.moe.as_ref().map_or(0, |m| m.experts),
            max_position_embeddings: e.arch.max_position,
        })
        .collect();
    if a.json {
        #[derive(Serialize)]
        struct Doc<'a> {
            schema: &'static str,
            models: Vec<Row<'a>>,
        }
        return output::json(&Doc {
            schema: "bottleneck.models/1",
            models: rows,
        });
    }
    use bottleneck_report::fmt::{params, table};
    let mut t = table(&[
        "name",
        "family",
        "params",
        "active",
        "layers",
        "attention",
        "experts",
        "context",
    ]);
    for r in &rows {
        t.add_row(vec![
            r.name.to_string(),
            r.family.to_string(),
            params(r.params),
            params(r.active_params),
            r.layers.to_string(),
            format!("{:?}", r.attention).to_lowercase(),
            if r.experts > 0 {
                r.experts.to_string()
            } else {
                "-".into()
            },
            r.max_position_embeddings.to_string(),
        ]);
    }
    output::text(&t.to_string())
}
