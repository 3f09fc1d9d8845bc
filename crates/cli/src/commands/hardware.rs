//! `bottleneck hardware`: the built-in GPU catalog.

use bottleneck_core::{catalog, Precision};
use serde::Serialize;

use crate::output;

/// Arguments of `bottleneck hardware`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// One JSON document on stdout (the full catalog, sources included).
    #[arg(long)]
    pub json: bool,
}

/// Lists the catalog.
pub fn run(a: Args) -> anyhow::Result<()> {
    let all = catalog::hardware();
    if a.json {
        #[derive(Serialize)]
        struct Doc<'a> {
            schema: &'static str,
            hardware: &'a [bottleneck_core::Hardware],
        }
        return output::json(&Doc {
            schema: "bottleneck.hardware/1",
            hardware: all,
        });
    }
    use bottleneck_report::fmt::table;
    let mut t = table(&[
        "name",
        "GPU",
        "memory",
        "bandwidth",
        "bf16/fp16",
        "fp8",
        "link",
        "per node",
    ]);
    let tf = |h: &bottleneck_core::Hardware, p: Precision| {
        h.peak_flops(p)
            .map_or_else(|| "-".to_string(), |f| format!("{:.0} T", f / 1e12))
    };
    for h in all {
        let half = if h.peak_flops(Precision::Bf16).is_some() {
            tf(h, Precision::Bf16)
        } else {
            tf(h, Precision::Fp16)
        };
        t.add_row(vec![
            h.name.clone(),
            h.display_name.clone(),
            format!("{:.0} GiB", h.memory.capacity_gib),
            format!("{:.2} TB/s", h.memory.bandwidth_gb_s / 1000.0),
            half,
            tf(h, Precision::Fp8),
            format!(
                "{} {:.0} GB/s",
                h.interconnect.intra_node.kind, h.interconnect.intra_node.bandwidth_gb_s
            ),
            h.interconnect.gpus_per_node.to_string(),
        ]);
    }
    output::text(&t.to_string())
}
