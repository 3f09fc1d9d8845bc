//! Capacity planning: the fewest replicas (and the TP degree per replica) that hold a rate
//! within latency SLOs, by search over simulations.
//!
//! For each TP degree the model fits at, the replica count doubles from 1 until the SLOs hold
//! at the chosen percentile, then bisects between the last failing and the first passing count
//! (latency falls as replicas are added, so the boundary is found in `O(log r)` runs). Every
//! run replays the same requests (common random numbers), so candidates differ only in the
//! layout. The best plan uses the fewest GPUs; ties go to the lower TTFT percentile. Requests
//! rejected for the context window or KV capacity are counted in each run's report but do not
//! make a layout infeasible; requests left unfinished at the time limit do.

use std::time::Instant;

use bottleneck_core::arch::ModelArch;
use bottleneck_core::hardware::Hardware;
use bottleneck_core::lower::{Parallel, Precisions};
use serde::Serialize;

use crate::engine::{simulate, ServeConfig, Simulation};
use crate::workload::RequestSpec;
use crate::{SimError, SimReport};

/// What to plan for.
#[derive(Clone, Debug)]
pub struct PlanRequest {
    /// Offered requests per second (for the report; arrivals are in `requests`).
    pub rate: f64,
    pub percentile: f64,
    pub slo_ttft_s: f64,
    pub slo_tpot_s: f64,
    /// TP degrees to try.
    pub tps: Vec<u32>,
    pub pp: u32,
    /// Expert-parallel degree (MoE models).
    pub ep: u32,
    pub max_replicas: u32,
    pub base: ServeConfig,
    pub seed: u64,
}

/// One evaluated layout.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct PlanCandidate {
    pub tp: u32,
    pub replicas: u32,
    pub gpus: u32,
    pub feasible: bool,
    /// TTFT and TPOT at the requested percentile (seconds).
    pub ttft_s: f64,
    pub tpot_s: f64,
    pub goodput_requests_per_s: f64,
    pub bottleneck: String,
    /// Why the layout fails, when it does.
    pub reason: Option<String>,
}

/// The report of `bottleneck plan` (`"schema": "bottleneck.plan/1"`).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct PlanReport {
    pub schema: &'static str,
    pub model: String,
    pub hardware: String,
    pub rate: f64,
    pub percentile: f64,
    pub slo_ttft_s: f64,
    pub slo_tpot_s: f64,
    pub requests: u64,
    /// The smallest feasible layout per TP degree tried.
    pub candidates: Vec<PlanCandidate>,
    pub best: Option<PlanCandidate>,
    pub simulations: u64,
    pub elapsed_s: f64,
}

fn candidate(tp: u32, replicas: u32, pp: u32, r: &SimReport, req: &PlanRequest) -> PlanCandidate {
    let ttft = r.ttft_s.percentile(req.percentile);
    let tpot = r.tpot_s.percentile(req.percentile);
    let complete = r.completed + r.rejected == r.requests && !r.time_limit_hit;
    let feasible = complete && ttft <= req.slo_ttft_s && tpot <= req.slo_tpot_s;
    let reason = if feasible {
        None
    } else if !complete {
        Some("requests left unfinished at the simulated-time limit".into())
    } else {
        Some(format!(
            "p{} TTFT {:.3} s / TPOT {:.4} s over the SLO",
            req.percentile, ttft, tpot
        ))
    };
    PlanCandidate {
        tp,
        replicas,
        gpus: tp * pp * replicas,
        feasible,
        ttft_s: ttft,
        tpot_s: tpot,
        goodput_requests_per_s: r.slo.goodput_requests_per_s,
        bottleneck: r.bottleneck.resource.clone(),
        reason,
    }
}

/// Searches layouts for the fewest GPUs that serve `requests` within the SLOs.
pub fn plan(
    arch: &ModelArch,
    hw: &Hardware,
    prec: Precisions,
    requests: &[RequestSpec],
    req: &PlanRequest,
) -> Result<PlanReport, SimError> {
    let start = Instant::now();
    if ![50.0, 90.0, 99.0].contains(&req.percentile) {
        return Err(SimError::Input(format!(
            "--percentile must be 50, 90 or 99 (got {})",
            req.percentile
        )));
    }
    if !(req.slo_ttft_s > 0.0 && req.slo_tpot_s > 0.0) {
        return Err(SimError::Input(
            "--slo-ttft and --slo-tpot must be positive seconds".into(),
        ));
    }
    if req.max_replicas == 0 {
        return Err(SimError::Input("--max-replicas must be at least 1".into()));
    }
    let mut sims = 0u64;
    let mut candidates = Vec::new();
    let mut last_err = None;
    for &tp in &req.tps {
        let mut par = Parallel::single(hw.gpus_per_node());
        par.tp = tp;
        par.pp = req.pp.max(1);
        par.ep = req.ep.max(1);
        if let Err(e) = par.validate(arch) {
            last_err = Some(SimError::from(e));
            continue;
        }
        let sim = Simulation {
            arch,
            hw,
            par,
            prec,
        };
        let mut run = |replicas: u32| -> Result<PlanCandidate, SimError> {
            let mut cfg = req.base.clone();
            cfg.replicas = replicas;
            cfg.slo_ttft_s = req.slo_ttft_s;
            cfg.slo_tpot_s = req.slo_tpot_s;
            cfg.record_requests = false;
            if cfg.scheduler == crate::SchedulerKind::Disaggregated {
                cfg.prefill_replicas = (replicas / 2).max(1);
                if replicas < 2 {
                    cfg.replicas = 2;
                }
            }
            sims += 1;
            let r = simulate(
                &sim,
                &cfg,
                requests,
                req.seed,
                Some(req.rate),
                &mut |_, _| {},
            )?;
            Ok(candidate(tp, cfg.replicas, par.pp, &r, req))
        };
        let first = match run(1) {
            Ok(c) => c,
            Err(e @ (SimError::DoesNotFit(_) | SimError::Core(_))) => {
                candidates.push(PlanCandidate {
                    tp,
                    replicas: 0,
                    gpus: 0,
                    feasible: false,
                    ttft_s: 0.0,
                    tpot_s: 0.0,
                    goodput_requests_per_s: 0.0,
                    bottleneck: "memory_capacity".into(),
                    reason: Some(e.to_string()),
                });
                last_err = Some(e);
                continue;
            }
            Err(e) => return Err(e),
        };
        let mut lo = 0u32; // largest count known to fail
        let mut best = first.feasible.then_some(first.clone());
        let mut last = first;
        let mut r = 1u32;
        while best.is_none() {
            lo = r;
            if r >= req.max_replicas {
                break;
            }
            r = (r * 2).min(req.max_replicas);
            let c = run(r)?;
            if c.feasible {
                best = Some(c);
            } else {
                last = c;
            }
        }
        let Some(mut hi) = best else {
            candidates.push(last);
            continue;
        };
        while hi.replicas > lo + 1 {
            let mid = lo + (hi.replicas - lo) / 2;
            let c = run(mid)?;
            if c.feasible {
                hi = c;
            } else {
                lo = mid;
            }
        }
        candidates.push(hi);
    }
    if candidates.iter().all(|c| c.replicas == 0) {
        return Err(last_err
            .unwrap_or_else(|| SimError::Input("no TP degree to try: give --tp values".into())));
    }
    let best = candidates
        .iter()
        .filter(|c| c.feasible)
        .min_by(|a, b| a.gpus.cmp(&b.gpus).then(a.ttft_s.total_cmp(&b.ttft_s)))
        .cloned();
    Ok(PlanReport {
        schema: "bottleneck.plan/1",
        model: arch.name.clone(),
        hardware: hw.name.clone(),
        rate: req.rate,
        percentile: req.percentile,
        slo_ttft_s: req.slo_ttft_s,
        slo_tpot_s: req.slo_tpot_s,
        requests: requests.len() as u64,
        candidates,
        best,
        simulations: sims,
        elapsed_s: start.elapsed().as_secs_f64(),
    })
}
