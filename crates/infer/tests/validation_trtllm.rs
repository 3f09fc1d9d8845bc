//! Scores `infer` against TensorRT-LLM v0.9.0's published static-batch throughput and
//! first-token latency (`../shared/data/validation/inference_trtllm_v09.csv`).
//!
//! Run `cargo test -p bottleneck-infer --test validation_trtllm -- --nocapture` to print the
//! per-row table and the median / p90 |error| by GPU and metric.
//!
//! Conventions, the same for every row: `fp8` rows run FP8 weights, activations and KV cache
//! (the table's "FP8 weights+activations+FP8 KV cache"); `fp16` rows run FP16 throughout;
//! `gpus = tp`, `pp = 1`; throughput is output tokens/s per GPU of a static batch run to
//! completion; first-token latency is the prefill of one prompt.

use std::collections::BTreeMap;
use std::path::PathBuf;

use bottleneck_core::lower::{Parallel, Precisions};
use bottleneck_core::{catalog, Precision};
use bottleneck_infer::{analyze, InferRequest};

fn csv_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/data/validation/inference_trtllm_v09.csv")
}

#[derive(Debug)]
struct Scored {
    id: String,
    model: String,
    gpu: String,
    metric: String,
    tp: u32,
    batch: u64,
    input: u64,
    output: u64,
    measured: f64,
    predicted: f64,
}

impl Scored {
    fn error(&self) -> f64 {
        (self.predicted - self.measured) / self.measured
    }
}

fn percentile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let pos = q * (sorted.len() - 1) as f64;
    let lo = pos.floor() as usize;
    let hi = pos.ceil() as usize;
    sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - lo as f64)
}

fn score() -> Vec<Scored> {
    let mut rdr = csv::Reader::from_path(csv_path()).expect("validation CSV beside the checkout");
    let headers = rdr.headers().expect("header").clone();
    let col = |name: &str| headers.iter().position(|h| h == name).expect(name);
    let (c_id, c_model, c_gpu, c_tp, c_prec, c_batch, c_in, c_out, c_metric, c_value) = (
        col("id"),
        col("model"),
        col("gpu"),
        col("tp"),
        col("precision"),
        col("batch"),
        col("input_len"),
        col("output_len"),
        col("metric"),
        col("value"),
    );
    let mut out = Vec::new();
    for rec in rdr.records() {
        let rec = rec.expect("row");
        let model = rec[c_model].to_string();
        let gpu = rec[c_gpu].to_string();
        let metric = rec[c_metric].to_string();
        let arch = bottleneck_models::resolve(&model).expect("catalog model");
        let hw = catalog::find_hardware(&gpu).expect("catalog GPU");
        let p: Precision = rec[c_prec].parse().expect("precision");
        let prec = Precisions {
            weights: p,
            activations: p,
            kv: p,
        };
        let mut par = Parallel::single(hw.gpus_per_node());
        par.tp = rec[c_tp].parse().expect("tp");
        let batch: u64 = rec[c_batch].parse().expect("batch");
        let input: u64 = rec[c_in].parse().expect("input");
        let output: u64 = rec[c_out].parse().unwrap_or(1);
        let req = InferRequest {
            batch,
            prompt: input,
            output,
            par,
            prec,
            ops: false,
            what_ifs: false,
        };
        let r = analyze(&arch, hw, &req).expect("valid configuration");
        let predicted = match metric.as_str() {
            "output_tokens_per_s_per_gpu" => r.throughput_tokens_per_s_per_gpu,
            "first_token_latency_s" => r.ttft_s,
            other => panic!("unknown metric {other}"),
        };
        out.push(Scored {
            id: rec[c_id].to_string(),
            model,
            gpu,
            metric,
            tp: par.tp,
            batch,
            input,
            output,
            measured: rec[c_value].parse().expect("value"),
            predicted,
        });
    }
    out
}

/// (median, p90) of |error| per (gpu, metric), and per metric over all GPUs.
fn summarize(rows: &[Scored]) -> BTreeMap<(String, String), (usize, f64, f64)> {
    let mut groups: BTreeMap<(String, String), Vec<f64>> = BTreeMap::new();
    for r in rows {
        let e = r.error().abs();
        groups
            .entry((r.gpu.clone(), r.metric.clone()))
            .or_default()
            .push(e);
        groups
            .entry(("all".into(), r.metric.clone()))
            .or_default()
            .push(e);
    }
    groups
        .into_iter()
        .map(|(k, mut v)| {
            v.sort_by(f64::total_cmp);
            (k, (v.len(), percentile(&v, 0.5), percentile(&v, 0.9)))
        })
        .collect()
}

#[test]
fn trtllm_v09_inference_validation() {
    let rows = score();
    assert_eq!(rows.len(), 144, "every row of the table is scored");
    println!(
        "{:<16} {:<13} {:<14} {:>5} {:>2} {:>5} {:>5} {:>5} {:>10} {:>10} {:>7}",
        "id",
        "model",
        "gpu",
        "metric",
        "tp",
        "batch",
        "in",
        "out",
        "measured",
        "predicted",
        "error"
    );
    for r in &rows {
        println!(
            "{:<16} {:<13} {:<14} {:>5} {:>2} {:>5} {:>5} {:>5} {:>10.4} {:>10.4} {:>+6.1}%",
            r.id,
            r.model,
            r.gpu,
            if r.metric.starts_with("output") {
                "tput"
            } else {
                "ttft"
            },
            r.tp,
            r.batch,
            r.input,
            r.output,
            r.measured,
            r.predicted,
            r.error() * 100.0
        );
    }
    let summary = summarize(&rows);
    println!(
        "\n{:<14} {:<28} {:>4} {:>9} {:>9}",
        "gpu", "metric", "n", "median", "p90"
    );
    for ((gpu, metric), (n, med, p90)) in &summary {
        println!(
            "{gpu:<14} {metric:<28} {n:>4} {:>8.1}% {:>8.1}%",
            med * 100.0,
            p90 * 100.0
        );
    }
    let (_, tput_median, _) =
        summary[&("all".to_string(), "output_tokens_per_s_per_gpu".to_string())];
    let (_, ttft_median, _) = summary[&("all".to_string(), "first_token_latency_s".to_string())];
    // Thresholds are the levels this model reaches today (see the closing note of the core
    // issue); they guard against regressions.
    assert!(
        tput_median <= TPUT_MEDIAN_LIMIT,
        "throughput median |error| {tput_median:.3}"
    );
    assert!(
        ttft_median <= TTFT_MEDIAN_LIMIT,
        "TTFT median |error| {ttft_median:.3}"
    );
}

/// Median |error| this model reaches (9.9% throughput, 9.2% first-token latency), held to the
/// issue's 10% target: a regression past it fails.
const TPUT_MEDIAN_LIMIT: f64 = 0.10;
const TTFT_MEDIAN_LIMIT: f64 = 0.095;
