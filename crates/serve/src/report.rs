//! The result of a simulation (`bottleneck.simulate/1`) and its per-request records.

use std::io::{self, Write};

use serde::Serialize;

use crate::engine::{Capacity, ServeConfig, Simulation};
use crate::timing::{StepTimer, StepWork};
use crate::workload::NS;

/// Counters the engine keeps while it runs.
#[derive(Clone, Debug, Default)]
pub(crate) struct RunStats {
    pub completed: u64,
    pub events: u64,
    pub preemptions: u64,
    pub prefill_steps: u64,
    pub decode_steps: u64,
    pub prefill_ns: u64,
    pub decode_ns: u64,
    pub prefill_work: StepWork,
    pub decode_work: StepWork,
    pub transfers: u64,
    pub transfer_ns: u64,
    pub rejected: u64,
    pub truncated: u64,
    pub time_limit_hit: bool,
    pub kv_blocks_per_replica: u64,
    pub end_ns: u64,
    pub queue_integral_ns: f64,
    /// Sum over replicas of (used / total blocks) × step time, in ns.
    pub kv_block_ns: f64,
    pub kv_max: f64,
    pub busy_ns: u64,
    pub pricings: u64,
}

/// What the engine knows of one request at the end.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Finished {
    pub arrival_ns: u64,
    pub prompt: u64,
    pub output: u64,
    pub sched_ns: u64,
    pub first_ns: u64,
    pub done_ns: u64,
    pub preemptions: u32,
    pub replica: u32,
    pub rejected: bool,
}

/// Mean and percentiles of a latency in seconds (nearest-rank percentiles; zeros when empty).
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
pub struct LatencyStats {
    pub mean: f64,
    pub p50: f64,
    pub p90: f64,
    pub p99: f64,
    /// Samples behind the figures.
    pub count: u64,
}

impl LatencyStats {
    /// Statistics of `v` (reordered in place; percentiles by selection, O(n)).
    pub fn of(v: &mut [f64]) -> LatencyStats {
        if v.is_empty() {
            return LatencyStats::default();
        }
        let n = v.len();
        let rank = |p: f64| (((p / 100.0) * n as f64).ceil() as usize).clamp(1, n) - 1;
        let (i50, i90, i99) = (rank(50.0), rank(90.0), rank(99.0));
        let p99 = *v.select_nth_unstable_by(i99, f64::total_cmp).1;
        let p90 = *v[..=i99].select_nth_unstable_by(i90, f64::total_cmp).1;
        let p50 = *v[..=i90].select_nth_unstable_by(i50, f64::total_cmp).1;
        LatencyStats {
            mean: v.iter().sum::<f64>() / n as f64,
            p50,
            p90,
            p99,
            count: n as u64,
        }
    }

    /// The `p`-th percentile among 50, 90, 99 (others fall back to the nearest above).
    pub fn percentile(&self, p: f64) -> f64 {
        if p <= 50.0 {
            self.p50
        } else if p <= 90.0 {
            self.p90
        } else {
            self.p99
        }
    }
}

/// Completed work per second of simulated time.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
pub struct Throughput {
    pub requests_per_s: f64,
    pub output_tokens_per_s: f64,
    pub input_tokens_per_s: f64,
    pub output_tokens_per_s_per_gpu: f64,
}

/// Service-level objectives and how often they held.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
pub struct Slo {
    pub ttft_s: f64,
    pub tpot_s: f64,
    /// Fraction of accepted requests that completed within both SLOs.
    pub attainment: f64,
    /// Requests per second that completed within both SLOs.
    pub goodput_requests_per_s: f64,
}

/// Little's law on the admission queue: `mean_queue_length` (time average) should equal
/// `arrival_rate_per_s × mean_wait_s`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
pub struct LittleCheck {
    pub mean_queue_length: f64,
    pub arrival_rate_per_s: f64,
    pub mean_wait_s: f64,
    pub lambda_w: f64,
}

/// What limits the service.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Bottleneck {
    pub phase: String,
    pub resource: String,
    pub share: f64,
    pub explanation: String,
}

/// KV-cache occupancy, as a fraction of each replica's blocks.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
pub struct KvUtilization {
    /// Time average over the run, averaged over replicas.
    pub mean: f64,
    pub max: f64,
}

/// Step counts and the mean decode batch.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
pub struct Steps {
    pub prefill: u64,
    pub decode: u64,
    pub mean_decode_batch: f64,
    pub kv_transfers: u64,
}

/// One request's outcome (seconds; `None` where it never got that far).
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct RequestRecord {
    pub id: u64,
    pub arrival_s: f64,
    pub prompt_tokens: u64,
    pub output_tokens: u64,
    pub replica: u32,
    pub rejected: bool,
    pub queue_s: Option<f64>,
    pub ttft_s: Option<f64>,
    pub tpot_s: Option<f64>,
    pub e2e_s: Option<f64>,
    pub preemptions: u32,
}

/// The report of `bottleneck simulate` (`"schema": "bottleneck.simulate/1"`).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct SimReport {
    pub schema: &'static str,
    pub model: String,
    pub hardware: String,
    pub tp: u32,
    pub pp: u32,
    pub replicas: u32,
    pub gpus: u32,
    pub scheduler: &'static str,
    pub seed: u64,
    /// Offered rate in requests per second (absent when arrivals were replayed from a file).
    pub rate: Option<f64>,
    pub requests: u64,
    pub completed: u64,
    pub rejected: u64,
    pub truncated: u64,
    pub duration_s: f64,
    pub throughput: Throughput,
    pub ttft_s: LatencyStats,
    pub tpot_s: LatencyStats,
    pub e2e_s: LatencyStats,
    pub queue_s: LatencyStats,
    pub slo: Slo,
    pub preemptions: u64,
    pub kv_utilization: KvUtilization,
    pub kv_blocks_per_replica: u64,
    pub block_tokens: u64,
    /// Share of end-to-end time requests spent waiting for their first step.
    pub queueing_share: f64,
    /// Busy fraction of the replicas over the run.
    pub utilization: f64,
    pub little: LittleCheck,
    pub steps: Steps,
    pub bottleneck: Bottleneck,
    pub time_limit_hit: bool,
    pub events: u64,
    pub events_per_s: f64,
    /// Grid nodes priced directly (the rest of the steps were interpolated).
    pub grid_pricings: u64,
    pub sim_wall_s: f64,
    /// Modelling assumptions behind the figures.
    pub assumptions: Vec<String>,
    pub warnings: Vec<String>,
    /// Per-request outcomes when asked for (`--requests-csv`); not part of the JSON.
    #[serde(skip)]
    pub records: Vec<RequestRecord>,
}

impl SimReport {
    /// Writes the per-request records as CSV with a header.
    pub fn write_csv<W: Write>(&self, mut w: W) -> io::Result<()> {
        writeln!(
            w,
            "id,arrival_s,prompt_tokens,output_tokens,replica,rejected,queue_s,ttft_s,tpot_s,e2e_s,preemptions"
        )?;
        let opt = |v: Option<f64>| v.map_or(String::new(), |x| format!("{x:.9}"));
        for r in &self.records {
            writeln!(
                w,
                "{},{:.9},{},{},{},{},{},{},{},{},{}",
                r.id,
                r.arrival_s,
                r.prompt_tokens,
                r.output_tokens,
                r.replica,
                r.rejected,
                opt(r.queue_s),
                opt(r.ttft_s),
                opt(r.tpot_s),
                opt(r.e2e_s),
                r.preemptions
            )?;
        }
        w.flush()
    }
}

const NONE: u64 = u64::MAX;

fn secs(a: u64, b: u64) -> Option<f64> {
    (a != NONE && b != NONE && b >= a).then(|| (b - a) as f64 / NS)
}

#[allow(clippy::too_many_arguments)]
pub(crate) fn build(
    sim: &Simulation<'_>,
    cfg: &ServeConfig,
    cap: &Capacity,
    timer: &StepTimer<'_>,
    st: &RunStats,
    reqs: &[Finished],
    seed: u64,
    rate: Option<f64>,
    warnings: Vec<String>,
    wall_s: f64,
) -> SimReport {
    let duration_s = st.end_ns as f64 / NS;
    let per_s = |x: f64| {
        if duration_s > 0.0 {
            x / duration_s
        } else {
            0.0
        }
    };
    let mut ttft = Vec::new();
    let mut tpot = Vec::new();
    let mut e2e = Vec::new();
    let mut queue = Vec::new();
    let mut met = 0u64;
    let mut out_tokens = 0u64;
    let mut in_tokens = 0u64;
    let mut wait_sum = 0.0;
    let mut e2e_sum = 0.0;
    let mut records = Vec::new();
    for (i, r) in reqs.iter().enumerate() {
        let q = secs(r.arrival_ns, r.sched_ns);
        let f = secs(r.arrival_ns, r.first_ns);
        let e = secs(r.arrival_ns, r.done_ns);
        let tp = if r.output > 1 {
            secs(r.first_ns, r.done_ns).map(|d| d / (r.output - 1) as f64)
        } else {
            None
        };
        if let Some(q) = q {
            queue.push(q);
            wait_sum += q;
        }
        if let (Some(f), Some(e)) = (f, e) {
            ttft.push(f);
            e2e.push(e);
            e2e_sum += e;
            if let Some(t) = tp {
                tpot.push(t);
            }
            out_tokens += r.output;
            in_tokens += r.prompt;
            if f <= cfg.slo_ttft_s && tp.is_none_or(|t| t <= cfg.slo_tpot_s) {
                met += 1;
            }
        }
        if cfg.record_requests {
            records.push(RequestRecord {
                id: i as u64,
                arrival_s: r.arrival_ns as f64 / NS,
                prompt_tokens: r.prompt,
                output_tokens: r.output,
                replica: r.replica & 0xffff,
                rejected: r.rejected,
                queue_s: q,
                ttft_s: f.filter(|_| e.is_some()),
                tpot_s: tp,
                e2e_s: e,
                preemptions: r.preemptions,
            });
        }
    }
    let requests = reqs.len() as u64;
    let accepted = requests - st.rejected;
    let queue_wait_sum: f64 = queue.iter().sum();
    let scheduled = queue.len() as f64;
    let queueing_share = if e2e_sum > 0.0 {
        // Waits of completed requests over their end-to-end times.
        let completed_wait: f64 = reqs
            .iter()
            .filter(|r| r.done_ns != NONE)
            .filter_map(|r| secs(r.arrival_ns, r.sched_ns))
            .sum();
        completed_wait / e2e_sum
    } else {
        0.0
    };
    let gpus = sim.par.tp * sim.par.pp * cfg.replicas;
    let replica_ns = st.end_ns as f64 * f64::from(cfg.replicas);
    let kv_mean = if replica_ns > 0.0 {
        st.kv_block_ns / replica_ns
    } else {
        0.0
    };
    let utilization = if replica_ns > 0.0 {
        st.busy_ns as f64 / replica_ns
    } else {
        0.0
    };
    let mean_queue_length = if st.end_ns > 0 {
        st.queue_integral_ns / st.end_ns as f64
    } else {
        0.0
    };
    let arrival_rate = per_s(scheduled);
    let mean_wait = if scheduled > 0.0 {
        wait_sum / scheduled
    } else {
        0.0
    };
    let _ = queue_wait_sum;
    let mean_decode_batch = if st.decode_steps > 0 {
        st.decode_work.decode_seqs / st.decode_steps as f64
    } else {
        0.0
    };
    let bottleneck = bottleneck(timer, st, queueing_share, kv_mean, mean_decode_batch);
    SimReport {
        schema: "bottleneck.simulate/1",
        model: sim.arch.name.clone(),
        hardware: sim.hw.name.clone(),
        tp: sim.par.tp,
        pp: sim.par.pp,
        replicas: cfg.replicas,
        gpus,
        scheduler: cfg.scheduler.name(),
        seed,
        rate,
        requests,
        completed: st.completed,
        rejected: st.rejected,
        truncated: st.truncated,
        duration_s,
        throughput: Throughput {
            requests_per_s: per_s(st.completed as f64),
            output_tokens_per_s: per_s(out_tokens as f64),
            input_tokens_per_s: per_s(in_tokens as f64),
            output_tokens_per_s_per_gpu: per_s(out_tokens as f64) / f64::from(gpus.max(1)),
        },
        ttft_s: LatencyStats::of(&mut ttft),
        tpot_s: LatencyStats::of(&mut tpot),
        e2e_s: LatencyStats::of(&mut e2e),
        queue_s: LatencyStats::of(&mut queue),
        slo: Slo {
            ttft_s: cfg.slo_ttft_s,
            tpot_s: cfg.slo_tpot_s,
            attainment: if accepted > 0 {
                met as f64 / accepted as f64
            } else {
                0.0
            },
            goodput_requests_per_s: per_s(met as f64),
        },
        preemptions: st.preemptions,
        kv_utilization: KvUtilization {
            mean: kv_mean,
            max: st.kv_max,
        },
        kv_blocks_per_replica: cap.blocks,
        block_tokens: cap.block_tokens,
        queueing_share,
        utilization,
        little: LittleCheck {
            mean_queue_length,
            arrival_rate_per_s: arrival_rate,
            mean_wait_s: mean_wait,
            lambda_w: arrival_rate * mean_wait,
        },
        steps: Steps {
            prefill: st.prefill_steps,
            decode: st.decode_steps,
            mean_decode_batch,
            kv_transfers: st.transfers,
        },
        bottleneck,
        time_limit_hit: st.time_limit_hit,
        events: st.events,
        events_per_s: if wall_s > 0.0 {
            st.events as f64 / wall_s
        } else {
            0.0
        },
        grid_pricings: st.pricings,
        sim_wall_s: wall_s,
        assumptions: assumptions(sim, cfg),
        warnings,
        records,
    }
}

fn assumptions(sim: &Simulation<'_>, cfg: &ServeConfig) -> Vec<String> {
    use crate::engine::{Preemption, SchedulerKind};
    let mut v = vec![
        "step times interpolated on a grid of (prefill tokens, decode sequences, KV tokens, attention pairs) priced by the infer replica model (≤ 1% from direct pricing in tests)".to_string(),
        format!(
            "KV blocks of {} tokens fill the memory left after weights and one full step's activations at {}% of capacity",
            cfg.block_tokens,
            (bottleneck_infer::USABLE_FRACTION * 100.0).round()
        ),
    ];
    if cfg.preemption == Preemption::Swap {
        v.push("KV swaps to host memory are priced on the inter-node link (a PCIe-class NIC path), serialised with the step".into());
    }
    if cfg.scheduler == SchedulerKind::Disaggregated {
        v.push("KV moves from the prefill to the decode pool over the inter-node link, every TP rank sending its shard in parallel".into());
    }
    if cfg.scheduler == SchedulerKind::Static {
        v.push("static batches pad prompts to the longest and return together when the longest output is done".into());
    }
    if cfg.prefix_caching {
        v.push("the shared prefix is resident from the start (a warm cache)".into());
    }
    if sim.arch.sliding_window.is_some() {
        v.push("sliding-window layers' attention at grid nodes uses min(K, S·window) keys (exact when all sequences are on one side of the window)".into());
    }
    if sim.par.pp > 1 {
        v.push(
            "with pipeline stages a step runs as pp micro-batches that keep every stage busy"
                .into(),
        );
    }
    v
}

fn mean_work(w: &StepWork, steps: u64) -> StepWork {
    let n = steps.max(1) as f64;
    StepWork {
        prefill_tokens: w.prefill_tokens / n,
        prefill_seqs: w.prefill_seqs / n,
        decode_seqs: w.decode_seqs / n,
        kv_tokens: w.kv_tokens / n,
        pairs: w.pairs / n,
    }
}

fn bottleneck(
    timer: &StepTimer<'_>,
    st: &RunStats,
    queueing_share: f64,
    kv_mean: f64,
    mean_decode_batch: f64,
) -> Bottleneck {
    let busy = (st.prefill_ns + st.decode_ns) as f64;
    if busy <= 0.0 {
        return Bottleneck {
            phase: "none".into(),
            resource: "idle".into(),
            share: 1.0,
            explanation: "no step ran".into(),
        };
    }
    let (phase, work, phase_share) = if st.prefill_ns >= st.decode_ns {
        (
            "prefill",
            mean_work(&st.prefill_work, st.prefill_steps),
            st.prefill_ns as f64 / busy,
        )
    } else {
        (
            "decode",
            mean_work(&st.decode_work, st.decode_steps),
            st.decode_ns as f64 / busy,
        )
    };
    let (bound, share) = timer.bound(&work);
    let step_note = format!(
        "{phase} steps take {:.0}% of busy time and are {}-bound ({:.0}% of a typical step); the mean decode batch is {:.1} sequences",
        phase_share * 100.0,
        bound.resource(),
        share * 100.0,
        mean_decode_batch
    );
    if queueing_share >= 0.5 {
        return Bottleneck {
            phase: phase.into(),
            resource: "queueing".into(),
            share: queueing_share,
            explanation: format!(
                "requests wait {:.0}% of their end-to-end time before their first step: the offered rate exceeds what the replicas serve; {step_note}",
                queueing_share * 100.0
            ),
        };
    }
    if st.preemptions > 0 || (kv_mean >= 0.8 && st.kv_max >= 0.97) {
        return Bottleneck {
            phase: phase.into(),
            resource: "memory_capacity".into(),
            share: kv_mean,
            explanation: format!(
                "the KV cache is {:.0}% full on average with {} preemptions: free blocks limit the batch; {step_note}",
                kv_mean * 100.0,
                st.preemptions
            ),
        };
    }
    Bottleneck {
        phase: phase.into(),
        resource: bound.resource().into(),
        share,
        explanation: step_note,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        let mut v: Vec<f64> = (1..=100).map(f64::from).collect();
        let s = LatencyStats::of(&mut v);
        assert_eq!((s.p50, s.p90, s.p99), (50.0, 90.0, 99.0));
        assert!((s.mean - 50.5).abs() < 1e-12);
        assert_eq!(LatencyStats::of(&mut []), LatencyStats::default());
    }
}
