//! Front-end speed: resolving a built-in (one embedded config parsed) and parsing config text.

use criterion::{black_box, criterion_group, criterion_main, Criterion};

fn bench(c: &mut Criterion) {
    c.bench_function("resolve deepseek-v3", |b| {
        b.iter(|| bottleneck_models::resolve(black_box("deepseek-v3")).unwrap());
    });
    let text = bottleneck_models::catalog()
        .iter()
        .find(|e| e.name == "llama-3.1-8b")
        .unwrap()
        .config_json;
    c.bench_function("from_config_json llama-3.1-8b", |b| {
        b.iter(|| bottleneck_models::from_config_json("x", black_box(text)).unwrap());
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
