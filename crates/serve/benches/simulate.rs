//! Simulator speed: 10⁶ requests with continuous batching on one replica (Llama-2-7B shape,
//! H100 SXM, BF16), saturated and at 80% load, plus the chunked-prefill scheduler. Requests are
//! generated outside the timed region; each run prints its events per second.
//!
//! `cargo bench -p bottleneck-serve --bench simulate`

use std::time::Duration;

use bottleneck_core::arch::ModelArch;
use bottleneck_core::catalog::find_hardware;
use bottleneck_core::lower::{Parallel, Precisions};
use bottleneck_core::Precision;
use bottleneck_serve::workload::generate;
use bottleneck_serve::{simulate, Arrival, Lengths, SchedulerKind, ServeConfig, Simulation};
use criterion::{criterion_group, criterion_main, Criterion};

fn llama2_7b() -> ModelArch {
    bottleneck_models::resolve("llama-2-7b").expect("built-in model")
}

fn bench(c: &mut Criterion) {
    let arch = llama2_7b();
    let hw = find_hardware("h100-sxm").expect("catalog");
    let sim = Simulation {
        arch: &arch,
        hw,
        par: Parallel::single(hw.gpus_per_node()),
        prec: Precisions {
            weights: Precision::Bf16,
            activations: Precision::Bf16,
            kv: Precision::Bf16,
        },
    };
    let prompt = Lengths::LogNormal {
        mean: 512.0,
        sigma: 0.8,
    };
    let output = Lengths::LogNormal {
        mean: 128.0,
        sigma: 0.8,
    };
    let mut g = c.benchmark_group("simulate_1e6");
    g.sample_size(10).measurement_time(Duration::from_secs(20));
    for (label, rate, scheduler) in [
        ("continuous_saturated", 1e6, SchedulerKind::Continuous),
        ("continuous_rate_30", 30.0, SchedulerKind::Continuous),
        ("chunked_saturated", 1e6, SchedulerKind::Chunked),
    ] {
        let reqs =
            generate(1_000_000, Arrival::Poisson { rate }, &prompt, &output, 1).expect("requests");
        let cfg = ServeConfig {
            scheduler,
            max_sim_time_s: 1e7,
            max_batched_tokens: if scheduler == SchedulerKind::Chunked {
                2048
            } else {
                8192
            },
            ..ServeConfig::default()
        };
        let r = simulate(&sim, &cfg, &reqs, 1, Some(rate), &mut |_, _| {}).expect("simulate");
        eprintln!(
            "{label}: {} completed in {:.3} s wall, {} events, {:.2e} events/s, {} grid pricings, {:.1} simulated s, mean decode batch {:.1}",
            r.completed,
            r.sim_wall_s,
            r.events,
            r.events_per_s,
            r.grid_pricings,
            r.duration_s,
            r.steps.mean_decode_batch
        );
        g.bench_function(label, |b| {
            b.iter(|| {
                simulate(&sim, &cfg, &reqs, 1, Some(rate), &mut |_, _| {}).expect("simulate")
            });
        });
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
