//! The `trace` report as text: per-rank breakdown, idle causes, kernel classes, top kernels,
//! iterations, cross-rank skew and stragglers.

use std::fmt::Write as _;

use bottleneck_trace::TraceReport;

use crate::fmt::{bytes, pct, table, time};

fn share(x: f64, of: f64) -> String {
    if of > 0.0 {
        pct(x / of)
    } else {
        "-".into()
    }
}

/// Renders a trace analysis.
pub fn render(r: &TraceReport) -> String {
    let mut s = String::new();
    let compat = match r.compat {
        bottleneck_trace::Compat::Native => "",
        bottleneck_trace::Compat::Hta => " (HTA conventions)",
    };
    let _ = writeln!(
        s,
        "{} trace file(s), {} rank(s){compat}\n",
        r.files,
        r.ranks.len()
    );

    let mut t = table(&[
        "rank",
        "span",
        "busy",
        "idle",
        "compute",
        "comm (exposed)",
        "memory",
        "other",
        "overlap",
    ]);
    for k in &r.ranks {
        t.add_row(vec![
            k.rank.to_string(),
            time(k.span_s),
            format!("{} {}", time(k.gpu_busy_s), share(k.gpu_busy_s, k.span_s)),
            format!("{} {}", time(k.idle_s), share(k.idle_s, k.span_s)),
            time(k.breakdown.computation_s),
            time(k.breakdown.communication_s),
            time(k.breakdown.memory_s),
            time(k.breakdown.other_s),
            k.comm_overlap_fraction.map_or_else(|| "-".into(), pct),
        ]);
    }
    let _ = writeln!(s, "GPU time\n{t}\n");

    let mut t = table(&[
        "rank",
        "launch-bound",
        "data loader",
        "host sync",
        "stream wait",
        "other",
    ]);
    for k in &r.ranks {
        let c = &k.idle_causes;
        t.add_row(vec![
            k.rank.to_string(),
            time(c.launch_bound_s),
            time(c.data_loader_s),
            time(c.host_sync_s),
            time(c.stream_wait_s),
            time(c.other_s),
        ]);
    }
    let _ = writeln!(s, "Idle time by cause\n{t}\n");

    if let Some(k) = r.ranks.first() {
        let mut t = table(&["class", "time", "share", "count"]);
        for c in &k.classes {
            t.add_row(vec![
                format!("{:?}", c.class).to_lowercase(),
                time(c.time_s),
                pct(c.share),
                c.count.to_string(),
            ]);
        }
        let _ = writeln!(s, "Kernel classes (rank {})\n{t}\n", k.rank);

        let mut t = table(&["kernel", "class", "calls", "total", "mean", "share"]);
        for kk in &k.top_kernels {
            let name: String = if kk.name.chars().count() > 70 {
                kk.name
                    .chars()
                    .take(69)
                    .chain(std::iter::once('…'))
                    .collect()
            } else {
                kk.name.clone()
            };
            t.add_row(vec![
                name,
                format!("{:?}", kk.class).to_lowercase(),
                kk.count.to_string(),
                time(kk.total_s),
                time(kk.mean_s),
                pct(kk.share),
            ]);
        }
        let _ = writeln!(s, "Top kernels (rank {})\n{t}\n", k.rank);

        if !k.iterations.is_empty() {
            let mut t = table(&[
                "step",
                "duration",
                "kernels",
                "GPU busy",
                "compute",
                "comm (exposed)",
            ]);
            for it in &k.iterations {
                t.add_row(vec![
                    it.step.to_string(),
                    time(it.duration_s),
                    it.kernels.to_string(),
                    time(it.gpu_busy_s),
                    time(it.breakdown.computation_s),
                    time(it.breakdown.communication_s),
                ]);
            }
            let _ = writeln!(s, "Iterations (rank {})\n{t}\n", k.rank);
        }
        for m in &k.memory {
            let _ = writeln!(
                s,
                "Memory (rank {}, device {}): peak allocated {}, peak reserved {} over {} samples",
                k.rank,
                m.device,
                bytes(m.peak_allocated_bytes as f64),
                bytes(m.peak_reserved_bytes as f64),
                m.samples
            );
        }
    }
    if let Some(c) = &r.collectives {
        let _ = writeln!(
            s,
            "Collectives across {} ranks: {} matched by {}, {} unmatched; start skew mean {} max {}; end skew mean {} max {}",
            c.ranks,
            c.matched,
            c.matched_by,
            c.unmatched,
            time(c.mean_start_skew_s),
            time(c.max_start_skew_s),
            time(c.mean_end_skew_s),
            time(c.max_end_skew_s)
        );
    }
    for st in &r.stragglers {
        let _ = writeln!(s, "Straggler ({}): {}", st.kind, st.evidence);
    }
    let _ = writeln!(
        s,
        "\nBottleneck: {} ({}) — {}",
        r.bottleneck.resource,
        pct(r.bottleneck.share),
        r.bottleneck.explanation
    );
    if r.warnings.total > 0 {
        let kinds: Vec<String> = r
            .warnings
            .by_kind
            .iter()
            .map(|(k, v)| format!("{k} {v}"))
            .collect();
        let _ = writeln!(s, "Warnings: {} ({})", r.warnings.total, kinds.join(", "));
    }
    s
}
