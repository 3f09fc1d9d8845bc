//! The `infer` report as text.

use std::fmt::Write as _;

use bottleneck_infer::InferReport;

use crate::fmt::{bytes, flops, params, pct, table, time};

/// Renders an inference report: summary, memory, phases, bottleneck, what-ifs, ops.
pub fn render(r: &InferReport) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "{} ({} params, {} active) on {} × {}  (TP {}, PP {}, EP {})",
        r.model.name,
        params(r.model.params),
        params(r.model.active_params),
        r.hardware.gpus,
        r.hardware.name,
        r.parallel.tp,
        r.parallel.pp,
        r.parallel.ep
    );
    let _ = writeln!(
        s,
        "batch {}, prompt {} tokens, output {} tokens; weights {}, KV {}, activations {}\n",
        r.workload.batch,
        r.workload.prompt,
        r.workload.output,
        r.precision.weights,
        r.precision.kv,
        r.precision.activations
    );

    let mut t = table(&["metric", "value"]);
    t.add_row(vec!["time to first token".to_string(), time(r.ttft_s)]);
    t.add_row(vec!["time per output token".to_string(), time(r.tpot_s)]);
    t.add_row(vec!["end-to-end (batch)".to_string(), time(r.e2e_s)]);
    t.add_row(vec![
        "throughput".to_string(),
        format!(
            "{:.0} tok/s ({:.0} tok/s per GPU)",
            r.throughput_tokens_per_s, r.throughput_tokens_per_s_per_gpu
        ),
    ]);
    let _ = writeln!(s, "{t}");

    let m = &r.memory;
    let mut t = table(&["memory per GPU", "bytes"]);
    t.add_row(vec!["weights".to_string(), bytes(m.weights_bytes)]);
    t.add_row(vec!["KV cache".to_string(), bytes(m.kv_cache_bytes)]);
    t.add_row(vec!["activations".to_string(), bytes(m.activation_bytes)]);
    t.add_row(vec![
        "total / capacity".to_string(),
        format!(
            "{} / {} ({})",
            bytes(m.total_bytes_per_gpu),
            bytes(m.capacity_bytes_per_gpu),
            if m.fits { "fits" } else { "DOES NOT FIT" }
        ),
    ]);
    t.add_row(vec!["max batch".to_string(), m.max_batch.to_string()]);
    let _ = writeln!(s, "{t}");

    let mut t = table(&["phase", "time", "FLOPs/GPU", "bytes/GPU", "bound"]);
    t.add_row(vec![
        "prefill".to_string(),
        time(r.prefill.time_s),
        flops(r.prefill.flops),
        bytes(r.prefill.bytes),
        r.prefill.bound.to_string(),
    ]);
    t.add_row(vec![
        "decode step".to_string(),
        time(r.decode.time_per_token_s),
        flops(r.decode.flops),
        bytes(r.decode.bytes),
        r.decode.bound.to_string(),
    ]);
    let _ = writeln!(s, "{t}");

    let _ = writeln!(
        s,
        "bottleneck: {} in {} ({})\n  {}\n",
        r.bottleneck.resource,
        r.bottleneck.phase,
        pct(r.bottleneck.share),
        r.bottleneck.explanation
    );

    if !r.what_if.is_empty() {
        let mut t = table(&["what if", "latency speedup", "tok/s per GPU", "fits"]);
        for w in &r.what_if {
            t.add_row(vec![
                w.change.clone(),
                format!("{:.2}×", w.speedup),
                format!("{:.2}×", w.throughput_per_gpu_gain),
                if w.fits { "yes" } else { "no" }.to_string(),
            ]);
        }
        let _ = writeln!(s, "{t}");
    }

    if let Some(ops) = &r.ops {
        let mut t = table(&["phase", "op", "×", "FLOPs", "bytes", "time", "bound"]);
        for o in ops {
            t.add_row(vec![
                o.phase.to_string(),
                o.name.to_string(),
                format!("{}", o.count),
                flops(o.flops),
                bytes(o.bytes),
                time(o.time_s),
                o.bound.to_string(),
            ]);
        }
        let _ = writeln!(s, "{t}");
    }
    for w in &r.warnings {
        let _ = writeln!(s, "warning: {w}");
    }
    s
}
