//! Speed of the `infer` analysis (the target: `bottleneck infer --model deepseek-v3
//! --ops` under 5 ms of process wall time, measured on the release binary; this bench isolates
//! the analysis itself).

use bottleneck_core::catalog::find_hardware;
use bottleneck_core::lower::{Parallel, Precisions};
use bottleneck_core::Precision;
use bottleneck_infer::{analyze, InferRequest};
use criterion::{black_box, criterion_group, criterion_main, Criterion};

fn request(gpus_per_node: u32, tp: u32, ep: u32) -> InferRequest {
    let mut par = Parallel::single(gpus_per_node);
    par.tp = tp;
    par.ep = ep;
    InferRequest {
        batch: 16,
        prompt: 2000,
        output: 256,
        par,
        prec: Precisions {
            weights: Precision::Bf16,
            activations: Precision::Bf16,
            kv: Precision::Bf16,
        },
        ops: true,
        what_ifs: true,
    }
}

fn bench(c: &mut Criterion) {
    let hw = find_hardware("h100-sxm").unwrap();
    let v3 = bottleneck_models::resolve("deepseek-v3").unwrap();
    // The CLI's defaults for deepseek-v3 (one GPU: it does not fit, and the analysis says so).
    c.bench_function("infer deepseek-v3 --ops (h100, tp1)", |b| {
        b.iter(|| analyze(black_box(&v3), hw, &request(hw.gpus_per_node(), 1, 1)).unwrap());
    });
    c.bench_function("infer deepseek-v3 --ops (h100, tp8 ep8)", |b| {
        b.iter(|| analyze(black_box(&v3), hw, &request(hw.gpus_per_node(), 8, 8)).unwrap());
    });
    c.bench_function("resolve + infer deepseek-v3 --ops", |b| {
        b.iter(|| {
            let arch = bottleneck_models::resolve(black_box("deepseek-v3")).unwrap();
            analyze(&arch, hw, &request(hw.gpus_per_node(), 1, 1)).unwrap()
        });
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
