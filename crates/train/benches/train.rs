//! Speed of the training analysis: one layout (what `bottleneck train` runs), the evaluator
//! alone on cached per-layer costs, and the full llama-3.1-405b search on 16,384 H100 on one
//! thread (the SPEC target: < 2 s, ≥ 10⁶ layouts/s).

use bottleneck_core::catalog;
use bottleneck_train::costs::{layer_costs, CostKey};
use bottleneck_train::step::{evaluate, evaluate_priced, JobFacts, Prices};
use bottleneck_train::{
    analyze, evaluate_layout, search, AttentionImpl, Job, Layout, Recompute, TrainPrecision,
};
use criterion::{black_box, criterion_group, criterion_main, Criterion};

fn benches(c: &mut Criterion) {
    let arch = bottleneck_models::resolve("llama-3.1-405b").expect("model");
    let hw = catalog::find_hardware("h100-sxm").expect("gpu");
    let job = Job {
        arch: &arch,
        hw,
        gpus: 16384,
        seq: 8192,
        global_batch: 2048,
        precision: TrainPrecision::Bf16,
        attention: AttentionImpl::Fused,
    };
    let lay = Layout {
        tp: 8,
        pp: 16,
        dp: 16,
        cp: 8,
        ep: 1,
        vpp: 1,
        sequence_parallel: true,
        micro_batch: 1,
        zero: 1,
        recompute: Recompute::Selective,
    };
    c.bench_function("train_405b_one_layout_evaluate", |b| {
        b.iter(|| evaluate_layout(black_box(&job), black_box(&lay)).expect("valid"));
    });
    c.bench_function("train_405b_one_layout_report_with_what_ifs", |b| {
        b.iter(|| analyze(black_box(&job), black_box(&lay), true, false).expect("valid"));
    });
    let facts = JobFacts::new(&job);
    c.bench_function("layer_costs_one_key", |b| {
        b.iter(|| layer_costs(black_box(&job), black_box(&CostKey::of(&lay))));
    });
    let costs = layer_costs(&job, &CostKey::of(&lay));
    let prices = Prices::new(&job, &facts, &lay);
    c.bench_function("evaluate_cached_costs_and_prices", |b| {
        b.iter(|| evaluate_priced(black_box(&job), &facts, &costs, &prices, black_box(&lay)));
    });
    c.bench_function("evaluate_cached_costs", |b| {
        b.iter(|| evaluate(black_box(&job), &facts, &costs, black_box(&lay)));
    });
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(1)
        .build()
        .expect("pool");
    let mut g = c.benchmark_group("search");
    g.sample_size(10);
    g.bench_function("search_405b_16384_h100_one_thread", |b| {
        b.iter(|| pool.install(|| search(black_box(&job), 10, &|_, _| {}).expect("search")));
    });
    g.finish();
}

criterion_group!(train, benches);
criterion_main!(train);
