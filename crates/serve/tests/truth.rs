//! Checks of truth for the serving simulator: limits where the answer is known in closed form
//! or from the single-request analysis, and the published direction of known effects.

use bottleneck_core::arch::ModelArch;
use bottleneck_core::catalog::find_hardware;
use bottleneck_core::hardware::Hardware;
use bottleneck_core::lower::{Parallel, Precisions, TokenShape};
use bottleneck_core::Precision;
use bottleneck_infer::{analyze, InferRequest, Replica};
use bottleneck_serve::workload::generate;
use bottleneck_serve::{
    simulate, Arrival, Lengths, Overlong, Preemption, RequestSpec, SchedulerKind, ServeConfig,
    SimError, SimReport, Simulation, StepTimer, StepWork,
};

/// Llama-2-7B as published (meta-llama/Llama-2-7b-hf config.json).
fn llama2_7b() -> ModelArch {
    bottleneck_models::resolve("llama-2-7b").expect("built-in model")
}

fn bf16() -> Precisions {
    Precisions {
        weights: Precision::Bf16,
        activations: Precision::Bf16,
        kv: Precision::Bf16,
    }
}

fn h100() -> &'static Hardware {
    find_hardware("h100-sxm").expect("h100-sxm in the catalog")
}

fn run(arch: &ModelArch, cfg: &ServeConfig, reqs: &[RequestSpec]) -> Result<SimReport, SimError> {
    let hw = h100();
    let sim = Simulation {
        arch,
        hw,
        par: Parallel::single(hw.gpus_per_node()),
        prec: bf16(),
    };
    simulate(&sim, cfg, reqs, 1, None, &mut |_, _| {})
}

fn rel(a: f64, b: f64) -> f64 {
    (a / b - 1.0).abs()
}

/// Interpolated step times stay within 1% of direct pricing of the exact token shape, on a
/// grid of decode and mixed batches off the grid nodes.
#[test]
fn interpolation_within_one_percent_of_direct_pricing() {
    let arch = llama2_7b();
    let hw = h100();
    for tp in [1u32, 2] {
        let mut par = Parallel::single(hw.gpus_per_node());
        par.tp = tp;
        let replica = Replica::new(&arch, hw, par, bf16()).unwrap();
        let mut timer = StepTimer::new(replica.clone());
        let mut worst = (0.0f64, String::new());
        let mut check = |exact: &TokenShape, w: &StepWork, label: String| {
            let direct = replica.step_time(exact);
            let interp = timer.time(w);
            let e = rel(interp, direct);
            if e > worst.0 {
                worst = (e, label);
            }
        };
        for d in [1u64, 3, 17, 63, 65, 100, 131, 250, 511, 1000] {
            for ctx in [0u64, 10, 333, 1000, 1777, 3000, 4000] {
                let mut w = StepWork::default();
                let mut shape = TokenShape::new();
                for _ in 0..d {
                    w.add_decode(ctx);
                }
                shape.add(d as f64, 1, ctx, None);
                check(&shape, &w, format!("tp{tp} decode d={d} ctx={ctx}"));
            }
        }
        for n in [1u64, 2, 5] {
            for len in [7u64, 100, 777, 2000, 4000] {
                for (d, ctx) in [(0u64, 0u64), (7, 500), (120, 1300), (300, 90)] {
                    let mut w = StepWork::default();
                    let mut shape = TokenShape::new();
                    for _ in 0..n {
                        w.add_prefill(len, 0);
                    }
                    shape.add(n as f64, len, 0, None);
                    for _ in 0..d {
                        w.add_decode(ctx);
                    }
                    if d > 0 {
                        shape.add(d as f64, 1, ctx, None);
                    }
                    check(
                        &shape,
                        &w,
                        format!("tp{tp} mixed n={n} len={len} d={d} ctx={ctx}"),
                    );
                }
            }
        }
        // Chunks of a long prompt at a cached context (chunked prefill).
        for (q, c) in [(512u64, 1024u64), (300, 3000), (2048, 100)] {
            let mut w = StepWork::default();
            w.add_prefill(q, c);
            let mut shape = TokenShape::new();
            shape.add(1.0, q, c, None);
            check(&shape, &w, format!("tp{tp} chunk q={q} c={c}"));
        }
        assert!(
            worst.0 <= 0.01,
            "worst interpolation error {:.3}% at {}",
            worst.0 * 100.0,
            worst.1
        );
        eprintln!(
            "tp{tp}: worst interpolation error {:.4}% at {}",
            worst.0 * 100.0,
            worst.1
        );
    }
}

/// At very low load a request has the replica to itself: TTFT is `infer`'s prefill time and
/// TPOT its decode time per token (±2%).
#[test]
fn low_load_matches_single_request_analysis() {
    let arch = llama2_7b();
    let hw = h100();
    let (prompt, output) = (512u64, 128u64);
    let reqs = generate(
        200,
        Arrival::Constant { rate: 0.2 },
        &Lengths::Fixed(prompt),
        &Lengths::Fixed(output),
        3,
    )
    .unwrap();
    let r = run(&arch, &ServeConfig::default(), &reqs).unwrap();
    assert_eq!(r.completed, 200);
    let inf = analyze(
        &arch,
        hw,
        &InferRequest {
            batch: 1,
            prompt,
            output,
            par: Parallel::single(hw.gpus_per_node()),
            prec: bf16(),
            ops: false,
            what_ifs: false,
        },
    )
    .unwrap();
    eprintln!(
        "low load: TTFT {:.6} vs infer {:.6}; TPOT {:.6} vs infer {:.6}",
        r.ttft_s.mean, inf.ttft_s, r.tpot_s.mean, inf.tpot_s
    );
    assert!(
        rel(r.ttft_s.mean, inf.ttft_s) <= 0.02,
        "TTFT {} vs {}",
        r.ttft_s.mean,
        inf.ttft_s
    );
    assert!(
        rel(r.tpot_s.mean, inf.tpot_s) <= 0.02,
        "TPOT {} vs {}",
        r.tpot_s.mean,
        inf.tpot_s
    );
    assert!(r.queue_s.p99 < 1e-6, "no queueing at low load");
}

/// With a rate far above capacity the simulator measures saturated throughput; with the batch
/// capped by `max_seqs` and the prompts fitting one step's budget, it equals the analytic
/// maximum `B·O / (prefill(B, L) + Σ_i decode(B, L + i))` (±5%).
#[test]
fn saturated_throughput_matches_analytic_maximum() {
    let arch = llama2_7b();
    let hw = h100();
    let (b, l, o) = (64u64, 128u64, 512u64);
    let reqs = generate(
        1024,
        Arrival::Poisson { rate: 1e6 },
        &Lengths::Fixed(l),
        &Lengths::Fixed(o),
        5,
    )
    .unwrap();
    let cfg = ServeConfig {
        max_seqs: b as u32,
        ..ServeConfig::default()
    };
    let r = run(&arch, &cfg, &reqs).unwrap();
    assert_eq!(r.completed, 1024);
    let replica = Replica::new(&arch, hw, Parallel::single(hw.gpus_per_node()), bf16()).unwrap();
    let cycle = replica.prefill_step(b, l).time_s
        + (0..o - 1)
            .map(|i| replica.decode_step(b, l + i).time_s)
            .sum::<f64>();
    let analytic = (b * o) as f64 / cycle;
    eprintln!(
        "saturated: simulated {:.0} tok/s, analytic {analytic:.0} tok/s",
        r.throughput.output_tokens_per_s
    );
    assert!(
        rel(r.throughput.output_tokens_per_s, analytic) <= 0.05,
        "simulated {} tok/s vs analytic {analytic}",
        r.throughput.output_tokens_per_s
    );
}

/// When the KV cache rather than `max_seqs` bounds the batch, static batching reserves
/// `ceil((L + O) / block)` blocks per request, so the batch is `B = blocks / that` and the
/// throughput the analytic `B·O / (prefill(B, L) + Σ_i decode(B, L + i))` (±5%).
#[test]
fn kv_limited_throughput_matches_analytic_maximum() {
    let arch = llama2_7b();
    let hw = h100();
    let (l, o) = (1024u64, 1024u64);
    let reqs = generate(
        2000,
        Arrival::Poisson { rate: 1e6 },
        &Lengths::Fixed(l),
        &Lengths::Fixed(o),
        5,
    )
    .unwrap();
    let cfg = ServeConfig {
        scheduler: SchedulerKind::Static,
        max_seqs: 4096,
        ..ServeConfig::default()
    };
    let r = run(&arch, &cfg, &reqs).unwrap();
    assert_eq!(r.completed, 2000);
    let b = r.kv_blocks_per_replica / (l + o).div_ceil(cfg.block_tokens);
    assert!(b > 8 && b < 1000, "batch {b}");
    let replica = Replica::new(&arch, hw, Parallel::single(hw.gpus_per_node()), bf16()).unwrap();
    let cycle = replica.prefill_step(b, l).time_s
        + (0..o - 1)
            .map(|i| replica.decode_step(b, l + i).time_s)
            .sum::<f64>();
    // Full batches of B, then the remainder.
    let full = 2000 / b;
    let rest = 2000 % b;
    let mut total = full as f64 * cycle;
    if rest > 0 {
        total += replica.prefill_step(rest, l).time_s
            + (0..o - 1)
                .map(|i| replica.decode_step(rest, l + i).time_s)
                .sum::<f64>();
    }
    let analytic = (2000 * o) as f64 / total;
    eprintln!(
        "KV-limited: batch {b}, simulated {:.0} tok/s, analytic {analytic:.0} tok/s",
        r.throughput.output_tokens_per_s
    );
    assert!(
        rel(r.throughput.output_tokens_per_s, analytic) <= 0.05,
        "simulated {} tok/s vs analytic {analytic}",
        r.throughput.output_tokens_per_s
    );
}

/// Little's law L = λW holds on the admission queue of a loaded replica.
#[test]
fn littles_law_on_the_queue() {
    let arch = llama2_7b();
    let reqs = generate(
        20_000,
        Arrival::Gamma {
            rate: 12.0,
            cv: 2.0,
        },
        &Lengths::LogNormal {
            mean: 400.0,
            sigma: 0.8,
        },
        &Lengths::Uniform { lo: 16, hi: 400 },
        9,
    )
    .unwrap();
    let cfg = ServeConfig {
        max_seqs: 32,
        ..ServeConfig::default()
    };
    let r = run(&arch, &cfg, &reqs).unwrap();
    assert_eq!(r.completed + r.rejected, 20_000);
    eprintln!(
        "Little: L = {:.4}, λW = {:.4}",
        r.little.mean_queue_length, r.little.lambda_w
    );
    assert!(
        r.little.mean_queue_length > 0.1,
        "the queue must be non-trivial"
    );
    assert!(
        rel(r.little.mean_queue_length, r.little.lambda_w) < 0.01,
        "L = {} vs λW = {}",
        r.little.mean_queue_length,
        r.little.lambda_w
    );
}

/// One server, batch of one, a single output token: deterministic service S at Poisson
/// arrivals is an M/D/1 queue, whose mean wait is ρS / (2(1 − ρ)) (Pollaczek–Khinchine).
#[test]
fn md1_queue_matches_closed_form() {
    let arch = llama2_7b();
    let hw = h100();
    let prompt = 256u64;
    let replica = Replica::new(&arch, hw, Parallel::single(hw.gpus_per_node()), bf16()).unwrap();
    let mut timer = StepTimer::new(replica);
    let mut w = StepWork::default();
    w.add_prefill(prompt, 0);
    let s = ((timer.time(&w) * 1e9).ceil()) / 1e9;
    for rho in [0.5, 0.8] {
        let reqs = generate(
            400_000,
            Arrival::Poisson { rate: rho / s },
            &Lengths::Fixed(prompt),
            &Lengths::Fixed(1),
            11,
        )
        .unwrap();
        let cfg = ServeConfig {
            scheduler: SchedulerKind::Static,
            max_seqs: 1,
            ..ServeConfig::default()
        };
        let r = run(&arch, &cfg, &reqs).unwrap();
        let wq = rho * s / (2.0 * (1.0 - rho));
        eprintln!(
            "M/D/1 ρ={rho}: mean wait {:.6} s vs closed form {wq:.6} s",
            r.queue_s.mean
        );
        assert!(
            rel(r.queue_s.mean, wq) < 0.04,
            "ρ={rho}: mean wait {} vs M/D/1 {wq}",
            r.queue_s.mean
        );
        assert!(rel(r.ttft_s.mean, wq + s) < 0.04);
    }
}

/// Continuous batching beats static batching on throughput when output lengths vary: Orca
/// (OSDI'22) and vLLM (SOSP'23, 2–4× over Orca-style and FasterTransformer baselines) report
/// gains of several times; here the gain must be clearly above 1.5× and below 10×.
#[test]
fn continuous_batching_beats_static_batching() {
    let arch = llama2_7b();
    let reqs = generate(
        3000,
        Arrival::Poisson { rate: 1e6 },
        &Lengths::Uniform { lo: 64, hi: 512 },
        &Lengths::Uniform { lo: 1, hi: 1024 },
        13,
    )
    .unwrap();
    let mut cfg = ServeConfig {
        max_seqs: 128,
        ..ServeConfig::default()
    };
    let cont = run(&arch, &cfg, &reqs).unwrap();
    cfg.scheduler = SchedulerKind::Static;
    let stat = run(&arch, &cfg, &reqs).unwrap();
    let gain = cont.throughput.output_tokens_per_s / stat.throughput.output_tokens_per_s;
    eprintln!("continuous / static throughput = {gain:.2}");
    assert!((1.5..10.0).contains(&gain), "gain {gain}");
    assert!(cont.e2e_s.p50 < stat.e2e_s.p50);
}

#[test]
fn same_seed_same_report() {
    let arch = llama2_7b();
    let reqs = generate(
        3000,
        Arrival::Poisson { rate: 30.0 },
        &Lengths::LogNormal {
            mean: 600.0,
            sigma: 1.0,
        },
        &Lengths::LogNormal {
            mean: 200.0,
            sigma: 1.0,
        },
        21,
    )
    .unwrap();
    let cfg = ServeConfig {
        kv_blocks: Some(2000),
        ..ServeConfig::default()
    };
    let mut a = run(&arch, &cfg, &reqs).unwrap();
    let mut b = run(&arch, &cfg, &reqs).unwrap();
    for r in [&mut a, &mut b] {
        r.sim_wall_s = 0.0;
        r.events_per_s = 0.0;
    }
    assert_eq!(a, b);
    assert!(a.preemptions > 0, "a tight KV cache preempts");
}

#[test]
fn every_scheduler_completes_every_request() {
    let arch = llama2_7b();
    let reqs = generate(
        2000,
        Arrival::Poisson { rate: 40.0 },
        &Lengths::LogNormal {
            mean: 700.0,
            sigma: 0.9,
        },
        &Lengths::LogNormal {
            mean: 150.0,
            sigma: 0.9,
        },
        4,
    )
    .unwrap();
    for (scheduler, preemption, replicas) in [
        (SchedulerKind::Static, Preemption::Recompute, 2),
        (SchedulerKind::Continuous, Preemption::Recompute, 2),
        (SchedulerKind::Continuous, Preemption::Swap, 2),
        (SchedulerKind::Chunked, Preemption::Recompute, 2),
        (SchedulerKind::Chunked, Preemption::Swap, 2),
        (SchedulerKind::Disaggregated, Preemption::Recompute, 3),
    ] {
        let cfg = ServeConfig {
            scheduler,
            preemption,
            replicas,
            kv_blocks: Some(1500),
            max_batched_tokens: if scheduler == SchedulerKind::Chunked {
                512
            } else {
                8192
            },
            ..ServeConfig::default()
        };
        let r = run(&arch, &cfg, &reqs).unwrap();
        assert_eq!(
            r.completed + r.rejected,
            2000,
            "{scheduler:?}/{preemption:?}: {} completed, {} rejected",
            r.completed,
            r.rejected
        );
        assert!(!r.time_limit_hit);
        assert!(r.ttft_s.p50 > 0.0 && r.tpot_s.p50 > 0.0 && r.e2e_s.p99 >= r.e2e_s.p50);
        assert!(r.kv_utilization.max <= 1.0 + 1e-9);
        if scheduler == SchedulerKind::Disaggregated {
            assert!(r.steps.kv_transfers > 0);
        }
    }
}

/// Chunked prefill keeps decodes flowing while long prompts prefill: p99 TPOT falls relative
/// to prefill-prioritising continuous batching (Sarathi-Serve's result).
#[test]
fn chunked_prefill_lowers_tail_tpot() {
    let arch = llama2_7b();
    let reqs = generate(
        3000,
        Arrival::Poisson { rate: 6.0 },
        &Lengths::Uniform { lo: 1000, hi: 3000 },
        &Lengths::Uniform { lo: 100, hi: 300 },
        8,
    )
    .unwrap();
    let base = ServeConfig::default();
    let cont = run(&arch, &base, &reqs).unwrap();
    let chunked = run(
        &arch,
        &ServeConfig {
            scheduler: SchedulerKind::Chunked,
            max_batched_tokens: 512,
            ..base
        },
        &reqs,
    )
    .unwrap();
    assert!(
        chunked.tpot_s.p99 < cont.tpot_s.p99,
        "chunked p99 TPOT {} vs continuous {}",
        chunked.tpot_s.p99,
        cont.tpot_s.p99
    );
}

#[test]
fn prefix_caching_shortens_time_to_first_token() {
    let arch = llama2_7b();
    let reqs = generate(
        500,
        Arrival::Poisson { rate: 2.0 },
        &Lengths::Fixed(2000),
        &Lengths::Fixed(50),
        2,
    )
    .unwrap();
    let cfg = ServeConfig {
        prefix_tokens: 1500,
        ..ServeConfig::default()
    };
    let cold = run(&arch, &cfg, &reqs).unwrap();
    let warm = run(
        &arch,
        &ServeConfig {
            prefix_caching: true,
            ..cfg
        },
        &reqs,
    )
    .unwrap();
    assert!(warm.ttft_s.mean < 0.5 * cold.ttft_s.mean);
}

#[test]
fn bad_input_is_an_error_or_a_counted_rejection() {
    let arch = llama2_7b();
    let reqs = generate(
        100,
        Arrival::Poisson { rate: 5.0 },
        &Lengths::Uniform { lo: 3000, hi: 5000 },
        &Lengths::Fixed(100),
        1,
    )
    .unwrap();
    let over = reqs.iter().filter(|r| r.prompt + 100 > 4096).count() as u64;
    let r = run(&arch, &ServeConfig::default(), &reqs).unwrap();
    assert_eq!(r.rejected, over);
    assert!(r.warnings.iter().any(|w| w.contains("context window")));
    let r = run(
        &arch,
        &ServeConfig {
            overlong: Overlong::Truncate,
            ..ServeConfig::default()
        },
        &reqs,
    )
    .unwrap();
    assert_eq!((r.rejected, r.truncated, r.completed), (0, over, 100));

    // A GPU too small for the weights: the error says by how much.
    let mut small = h100().clone();
    small.memory.capacity_gib = 12.0;
    let sim = Simulation {
        arch: &arch,
        hw: &small,
        par: Parallel::single(8),
        prec: bf16(),
    };
    let e = simulate(
        &sim,
        &ServeConfig::default(),
        &reqs,
        0,
        None,
        &mut |_, _| {},
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("does not fit") && e.contains("by"), "{e}");

    // An overloaded run stops at the simulated-time limit and says so.
    let flood = generate(
        5000,
        Arrival::Poisson { rate: 1e5 },
        &Lengths::Fixed(1000),
        &Lengths::Fixed(1000),
        1,
    )
    .unwrap();
    let r = run(
        &arch,
        &ServeConfig {
            max_sim_time_s: 5.0,
            ..ServeConfig::default()
        },
        &flood,
    )
    .unwrap();
    assert!(r.time_limit_hit && r.completed < 5000);
    assert!(r.warnings.iter().any(|w| w.contains("time limit")));

    for cfg in [
        ServeConfig {
            replicas: 0,
            ..ServeConfig::default()
        },
        ServeConfig {
            scheduler: SchedulerKind::Disaggregated,
            replicas: 1,
            ..ServeConfig::default()
        },
        ServeConfig {
            max_sim_time_s: f64::NAN,
            ..ServeConfig::default()
        },
    ] {
        assert!(run(&arch, &cfg, &reqs).is_err());
    }
    assert!(run(&arch, &ServeConfig::default(), &[]).is_err());
}

/// `plan` returns the fewest replicas that hold the SLOs: one fewer fails them.
#[test]
fn plan_finds_the_smallest_feasible_layout() {
    use bottleneck_serve::{plan, PlanRequest};
    let arch = llama2_7b();
    let hw = h100();
    let reqs = generate(
        1500,
        Arrival::Poisson { rate: 40.0 },
        &Lengths::LogNormal {
            mean: 800.0,
            sigma: 0.7,
        },
        &Lengths::LogNormal {
            mean: 200.0,
            sigma: 0.7,
        },
        17,
    )
    .unwrap();
    let req = PlanRequest {
        rate: 40.0,
        percentile: 99.0,
        slo_ttft_s: 0.5,
        slo_tpot_s: 0.02,
        tps: vec![1, 2],
        pp: 1,
        ep: 1,
        max_replicas: 32,
        base: ServeConfig::default(),
        seed: 17,
    };
    let p = plan(&arch, hw, bf16(), &reqs, &req).unwrap();
    let best = p
        .best
        .clone()
        .unwrap_or_else(|| panic!("no feasible layout: {:?}", p.candidates));
    assert!(best.feasible && best.ttft_s <= 0.5 && best.tpot_s <= 0.02);
    for c in &p.candidates {
        assert!(c.gpus >= best.gpus);
        if c.feasible && c.replicas > 1 {
            let mut par = Parallel::single(hw.gpus_per_node());
            par.tp = c.tp;
            let sim = Simulation {
                arch: &arch,
                hw,
                par,
                prec: bf16(),
            };
            let cfg = ServeConfig {
                replicas: c.replicas - 1,
                ..ServeConfig::default()
            };
            let r = simulate(&sim, &cfg, &reqs, 17, Some(40.0), &mut |_, _| {}).unwrap();
            assert!(
                r.ttft_s.p99 > 0.5 || r.tpot_s.p99 > 0.02,
                "TP {} with {} replicas also holds the SLOs",
                c.tp,
                c.replicas - 1
            );
        }
    }
    let bad = PlanRequest {
        percentile: 95.0,
        ..req
    };
    assert!(plan(&arch, hw, bf16(), &reqs, &bad).is_err());
}

/// The JSON document of a small run (wall-clock fields zeroed) is stable.
#[test]
fn simulate_json_snapshot() {
    let arch = llama2_7b();
    let reqs = generate(
        200,
        Arrival::Gamma { rate: 8.0, cv: 2.0 },
        &Lengths::Uniform { lo: 50, hi: 1500 },
        &Lengths::Uniform { lo: 10, hi: 300 },
        42,
    )
    .unwrap();
    let cfg = ServeConfig {
        kv_blocks: Some(600),
        max_seqs: 16,
        ..ServeConfig::default()
    };
    let mut r = run(&arch, &cfg, &reqs).unwrap();
    r.sim_wall_s = 0.0;
    r.events_per_s = 0.0;
    insta::assert_json_snapshot!(r);
}

mod properties {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(24))]

        /// Whatever the workload and scheduler: every request completes or is rejected, the
        /// latencies are ordered (queue ≤ TTFT ≤ E2E), the KV cache never overflows and the
        /// run is reproducible.
        #[test]
        fn conservation_and_order(
            seed in 0u64..1000,
            rate in 0.5f64..200.0,
            n in 1u64..300,
            mean_prompt in 10.0f64..3000.0,
            mean_output in 1.0f64..500.0,
            blocks in 300u64..5000,
            sched in 0usize..4,
            swap in any::<bool>(),
        ) {
            let arch = llama2_7b();
            let reqs = generate(
                n,
                Arrival::Poisson { rate },
                &Lengths::LogNormal { mean: mean_prompt, sigma: 1.0 },
                &Lengths::LogNormal { mean: mean_output, sigma: 1.0 },
                seed,
            ).unwrap();
            let scheduler = [
                SchedulerKind::Static,
                SchedulerKind::Continuous,
                SchedulerKind::Chunked,
                SchedulerKind::Disaggregated,
            ][sched];
            let cfg = ServeConfig {
                scheduler,
                replicas: 2,
                preemption: if swap { Preemption::Swap } else { Preemption::Recompute },
                kv_blocks: Some(blocks),
                max_batched_tokens: if scheduler == SchedulerKind::Chunked { 256 } else { 8192 },
                record_requests: true,
                ..ServeConfig::default()
            };
            let r = run(&arch, &cfg, &reqs).unwrap();
            prop_assert_eq!(r.completed + r.rejected, n);
            prop_assert!(!r.time_limit_hit);
            prop_assert!(r.kv_utilization.max <= 1.0 + 1e-12);
            for rec in &r.records {
                if let (Some(q), Some(t), Some(e)) = (rec.queue_s, rec.ttft_s, rec.e2e_s) {
                    prop_assert!(q <= t + 1e-12 && t <= e + 1e-12, "{:?}", rec);
                } else {
                    prop_assert!(rec.rejected, "{:?}", rec);
                }
            }
            let again = run(&arch, &cfg, &reqs).unwrap();
            prop_assert_eq!(again.records, r.records);
        }
    }
}

/// Long prompts admitted chunk by chunk under a KV cache that holds barely two of them: every
/// request still completes (the scheduler preempts rather than stalls) and no warning is raised.
#[test]
fn chunked_prefill_never_stalls_on_a_full_cache() {
    let arch = llama2_7b();
    let reqs = generate(
        300,
        Arrival::Poisson { rate: 1e4 },
        &Lengths::Uniform { lo: 2000, hi: 3900 },
        &Lengths::Uniform { lo: 1, hi: 150 },
        6,
    )
    .unwrap();
    let cfg = ServeConfig {
        scheduler: SchedulerKind::Chunked,
        max_batched_tokens: 256,
        kv_blocks: Some(400),
        ..ServeConfig::default()
    };
    let r = run(&arch, &cfg, &reqs).unwrap();
    assert_eq!(r.completed + r.rejected, 300, "{:?}", r.warnings);
    assert!(r.warnings.is_empty(), "{:?}", r.warnings);
}
