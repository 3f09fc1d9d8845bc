//! The `simulate` and `plan` reports as text.

use std::fmt::Write as _;

use bottleneck_serve::{LatencyStats, PlanReport, SimReport};

use crate::fmt::{pct, table, time};

fn latency_row(name: &str, l: &LatencyStats) -> Vec<String> {
    vec![
        name.to_string(),
        time(l.mean),
        time(l.p50),
        time(l.p90),
        time(l.p99),
    ]
}

/// Renders a simulation report: setup, throughput, latency percentiles, SLOs, KV cache and
/// the bottleneck.
pub fn render(r: &SimReport) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "{} on {} × {} ({} replica(s) of TP {}, PP {}), {} scheduler, seed {}",
        r.model, r.gpus, r.hardware, r.replicas, r.tp, r.pp, r.scheduler, r.seed
    );
    let rate = r.rate.map_or_else(
        || "replayed arrivals".to_string(),
        |x| format!("{x} req/s offered"),
    );
    let _ = writeln!(
        s,
        "{} requests ({rate}): {} completed, {} rejected, {} truncated over {} simulated\n",
        r.requests,
        r.completed,
        r.rejected,
        r.truncated,
        time(r.duration_s)
    );

    let mut t = table(&["throughput", "value"]);
    t.add_row(vec![
        "requests".to_string(),
        format!("{:.2} req/s", r.throughput.requests_per_s),
    ]);
    t.add_row(vec![
        "output tokens".to_string(),
        format!(
            "{:.0} tok/s ({:.0} per GPU)",
            r.throughput.output_tokens_per_s, r.throughput.output_tokens_per_s_per_gpu
        ),
    ]);
    t.add_row(vec![
        "prompt tokens".to_string(),
        format!("{:.0} tok/s", r.throughput.input_tokens_per_s),
    ]);
    let _ = writeln!(s, "{t}");

    let mut t = table(&["latency", "mean", "p50", "p90", "p99"]);
    t.add_row(latency_row("time to first token", &r.ttft_s));
    t.add_row(latency_row("time per output token", &r.tpot_s));
    t.add_row(latency_row("end to end", &r.e2e_s));
    t.add_row(latency_row("queueing", &r.queue_s));
    let _ = writeln!(s, "{t}");

    let mut t = table(&["service", "value"]);
    t.add_row(vec![
        format!(
            "SLO (TTFT ≤ {}, TPOT ≤ {})",
            time(r.slo.ttft_s),
            time(r.slo.tpot_s)
        ),
        format!(
            "{} attained, goodput {:.2} req/s",
            pct(r.slo.attainment),
            r.slo.goodput_requests_per_s
        ),
    ]);
    t.add_row(vec![
        "KV cache".to_string(),
        format!(
            "{} mean, {} max of {} blocks × {} tokens",
            pct(r.kv_utilization.mean),
            pct(r.kv_utilization.max),
            r.kv_blocks_per_replica,
            r.block_tokens
        ),
    ]);
    t.add_row(vec!["preemptions".to_string(), r.preemptions.to_string()]);
    t.add_row(vec![
        "steps".to_string(),
        format!(
            "{} with prefill, {} decode-only, mean decode batch {:.1}",
            r.steps.prefill, r.steps.decode, r.steps.mean_decode_batch
        ),
    ]);
    t.add_row(vec!["replica busy".to_string(), pct(r.utilization)]);
    t.add_row(vec!["queueing share".to_string(), pct(r.queueing_share)]);
    let _ = writeln!(s, "{t}");

    let _ = writeln!(
        s,
        "bottleneck: {} in {} ({})\n  {}\n",
        r.bottleneck.resource,
        r.bottleneck.phase,
        pct(r.bottleneck.share),
        r.bottleneck.explanation
    );
    let _ = writeln!(
        s,
        "simulated {} events in {} ({:.2e} events/s; {} step shapes priced directly)",
        r.events,
        time(r.sim_wall_s),
        r.events_per_s,
        r.grid_pricings
    );
    for a in &r.assumptions {
        let _ = writeln!(s, "assumption: {a}");
    }
    for w in &r.warnings {
        let _ = writeln!(s, "warning: {w}");
    }
    s
}

/// Renders a capacity plan: the smallest feasible layout per TP degree and the best.
pub fn render_plan(r: &PlanReport) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "{} on {}: {} req/s with p{} TTFT ≤ {} and TPOT ≤ {} ({} requests per simulation)\n",
        r.model,
        r.hardware,
        r.rate,
        r.percentile,
        time(r.slo_ttft_s),
        time(r.slo_tpot_s),
        r.requests
    );
    let mut t = table(&[
        "TP",
        "replicas",
        "GPUs",
        "feasible",
        "TTFT",
        "TPOT",
        "goodput",
        "bottleneck",
    ]);
    for c in &r.candidates {
        t.add_row(vec![
            c.tp.to_string(),
            c.replicas.to_string(),
            c.gpus.to_string(),
            if c.feasible { "yes" } else { "no" }.to_string(),
            time(c.ttft_s),
            time(c.tpot_s),
            format!("{:.2} req/s", c.goodput_requests_per_s),
            c.bottleneck.clone(),
        ]);
    }
    let _ = writeln!(s, "{t}");
    match &r.best {
        Some(b) => {
            let _ = writeln!(
                s,
                "best: {} replica(s) of TP {} = {} GPUs",
                b.replicas, b.tp, b.gpus
            );
        }
        None => {
            let _ = writeln!(
                s,
                "no layout tried holds the SLOs: raise --max-replicas or relax the SLOs"
            );
        }
    }
    for c in r.candidates.iter().filter(|c| !c.feasible) {
        if let Some(why) = &c.reason {
            let _ = writeln!(s, "  TP {} × {}: {why}", c.tp, c.replicas);
        }
    }
    let _ = writeln!(s, "{} simulations in {}", r.simulations, time(r.elapsed_s));
    s
}
