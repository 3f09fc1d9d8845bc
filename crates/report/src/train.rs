//! The `train` and `search` reports as text.

use std::fmt::Write as _;

use bottleneck_train::search::SearchReport;
use bottleneck_train::TrainReport;

use crate::fmt::{bytes, flops, params, pct, table, time};

/// Renders a training report: layout, step, memory, breakdown, communication, bottleneck,
/// what-ifs and (optionally) the op table.
pub fn render(r: &TrainReport) -> String {
    let mut s = String::new();
    let p = &r.parallel;
    let _ = writeln!(
        s,
        "{} ({} params) on {} × {}: TP {}{}, PP {} (vpp {}), DP {}, CP {}, EP {}; ZeRO {}, recompute {}, {} GEMMs",
        r.model.name,
        params(r.model.params),
        r.hardware.gpus,
        r.hardware.name,
        p.tp,
        if p.sequence_parallel { " + SP" } else { "" },
        p.pp,
        p.vpp,
        p.dp,
        p.cp,
        p.ep,
        r.zero,
        r.recompute.name(),
        r.precision.name()
    );
    let _ = writeln!(
        s,
        "global batch {} × {} tokens, micro-batch {} ({} micro-batches per step)\n",
        r.global_batch, r.seq, r.micro_batch, r.micro_batches
    );

    let mut t = table(&["metric", "value"]);
    t.add_row(vec!["step time".to_string(), time(r.step_time_s)]);
    t.add_row(vec![
        "throughput".to_string(),
        format!("{:.0} tokens/s", r.tokens_per_s),
    ]);
    t.add_row(vec![
        "model TFLOP/s per GPU".to_string(),
        format!("{:.1}", r.tflops_per_gpu),
    ]);
    t.add_row(vec!["MFU".to_string(), pct(r.mfu)]);
    t.add_row(vec!["HFU (with recompute)".to_string(), pct(r.hfu)]);
    let _ = writeln!(s, "{t}");

    let m = &r.memory;
    let mut t = table(&[&format!("memory per GPU ({} stage)", m.stage), "bytes"]);
    t.add_row(vec!["weights".to_string(), bytes(m.weights_bytes)]);
    t.add_row(vec!["gradients".to_string(), bytes(m.gradients_bytes)]);
    t.add_row(vec![
        "optimizer states".to_string(),
        bytes(m.optimizer_bytes),
    ]);
    t.add_row(vec!["activations".to_string(), bytes(m.activation_bytes)]);
    t.add_row(vec![
        "total / usable".to_string(),
        format!(
            "{} / {} ({})",
            bytes(m.total_bytes_per_gpu),
            bytes(m.usable_bytes_per_gpu),
            if m.fits {
                "fits".to_string()
            } else {
                format!("DOES NOT FIT by {}", bytes(m.overflow_bytes))
            }
        ),
    ]);
    let _ = writeln!(s, "{t}");

    let b = &r.breakdown;
    let step = r.step_time_s.max(f64::MIN_POSITIVE);
    let mut t = table(&["step breakdown", "time", "share"]);
    for (name, v) in [
        ("compute", b.compute_s),
        ("exposed communication", b.exposed_communication_s),
        ("pipeline bubble", b.pipeline_bubble_s),
        ("overhead", b.overhead_s),
    ] {
        t.add_row(vec![name.to_string(), time(v), pct(v / step)]);
    }
    let _ = writeln!(s, "{t}");

    if !r.communication.is_empty() {
        let mut t = table(&["communication", "group", "link", "bytes", "time", "exposed"]);
        for c in &r.communication {
            t.add_row(vec![
                c.collective.to_string(),
                c.group.to_string(),
                if c.inter_node { "inter-node" } else { "NVLink" }.to_string(),
                bytes(c.bytes),
                time(c.time_s),
                time(c.exposed_s),
            ]);
        }
        let _ = writeln!(s, "{t}");
    }

    let _ = writeln!(
        s,
        "bottleneck: {} ({})\n  {}\n",
        r.bottleneck.resource,
        pct(r.bottleneck.share),
        r.bottleneck.explanation
    );

    if !r.what_if.is_empty() {
        let mut t = table(&["what if", "step speedup", "fits"]);
        for w in &r.what_if {
            t.add_row(vec![
                w.change.clone(),
                format!("{:.2}×", w.speedup),
                if w.fits { "yes" } else { "no" }.to_string(),
            ]);
        }
        let _ = writeln!(s, "{t}");
    }

    if let Some(ops) = &r.ops {
        let mut t = table(&["op", "role", "×", "FLOPs", "bytes", "time", "bound"]);
        for o in ops {
            t.add_row(vec![
                o.name.to_string(),
                format!("{:?}", o.role).to_lowercase(),
                format!("{}", o.count),
                flops(o.flops),
                bytes(o.bytes),
                time(o.time_s),
                o.bound.to_string(),
            ]);
        }
        let _ = writeln!(s, "one micro-batch, all layers:\n{t}");
    }
    s
}

/// Renders a search report: the space, then the top layouts.
pub fn render_search(r: &SearchReport) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "{} on {} × {}, seq {}, global batch {}: {} layouts in the space, {} evaluated, {} fit, {:.3} s ({:.2} M layouts/s)\n",
        r.model,
        r.gpus,
        r.hardware,
        r.seq,
        r.global_batch,
        r.space,
        r.evaluated,
        r.feasible,
        r.elapsed_s,
        r.layouts_per_s / 1e6
    );
    if r.top.is_empty() {
        let _ = writeln!(s, "no layout fits in memory");
        return s;
    }
    let mut t = table(&[
        "#",
        "tp",
        "pp",
        "dp",
        "cp",
        "ep",
        "vpp",
        "sp",
        "mb",
        "zero",
        "recompute",
        "step",
        "MFU",
        "mem/GPU",
        "bottleneck",
    ]);
    for (i, e) in r.top.iter().enumerate() {
        let p = &e.parallel;
        t.add_row(vec![
            (i + 1).to_string(),
            p.tp.to_string(),
            p.pp.to_string(),
            p.dp.to_string(),
            p.cp.to_string(),
            p.ep.to_string(),
            p.vpp.to_string(),
            if p.sequence_parallel { "on" } else { "off" }.to_string(),
            e.micro_batch.to_string(),
            e.zero.to_string(),
            e.recompute.name().to_string(),
            time(e.step_time_s),
            pct(e.mfu),
            bytes(e.total_bytes_per_gpu),
            format!("{} {}", e.bottleneck.resource, pct(e.bottleneck.share)),
        ]);
    }
    let _ = writeln!(s, "{t}");
    s
}
