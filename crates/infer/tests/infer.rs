//! Black-box tests of the `infer` analysis: hand-worked figures, invariants, snapshots.

use bottleneck_core::lower::{Parallel, Precisions};
use bottleneck_core::{catalog, Hardware, Precision};
use bottleneck_infer::{analyze, memory_per_gpu, InferReport, InferRequest};
use proptest::prelude::*;

fn prec(p: Precision) -> Precisions {
    Precisions {
        weights: p,
        activations: p,
        kv: p,
    }
}

fn request(batch: u64, prompt: u64, output: u64, tp: u32) -> InferRequest {
    let mut par = Parallel::single(8);
    par.tp = tp;
    InferRequest {
        batch,
        prompt,
        output,
        par,
        prec: prec(Precision::Bf16),
        ops: false,
        what_ifs: false,
    }
}

fn h100() -> &'static Hardware {
    catalog::find_hardware("h100-sxm").expect("h100-sxm in catalog")
}

fn run(model: &str, req: &InferRequest) -> InferReport {
    let arch = bottleneck_models::resolve(model).expect("catalog model");
    analyze(&arch, h100(), req).expect("valid request")
}

#[test]
fn decode_at_batch_one_is_weight_streaming() {
    // Llama-2-7B decode at batch 1 streams all 13.5 GB of bf16 weights per token; the step time
    // is at least that over the peak HBM bandwidth and the step is memory-bandwidth bound.
    let r = run("llama-2-7b", &request(1, 128, 64, 1));
    let weights = 6_738_415_616.0 * 2.0;
    let floor = weights / (h100().memory.bandwidth_gb_s * 1e9);
    assert!(
        r.tpot_s > floor,
        "tpot {} below the bandwidth floor {floor}",
        r.tpot_s
    );
    assert!(
        r.tpot_s < 2.0 * floor,
        "tpot {} far above the floor {floor}",
        r.tpot_s
    );
    assert_eq!(r.decode.bound, "memory_bandwidth");
    assert_eq!(r.bottleneck.resource, "memory_bandwidth");
    // Weights per GPU: 6.48 GB of layers + 2 × 131 MB of embedding and head, all bf16.
    assert!((r.memory.weights_bytes - weights).abs() / weights < 1e-9);
}

#[test]
fn long_prefill_is_compute_bound() {
    // Splitwise's observation: prefill is compute-bound, decode memory-bound.
    let r = run("llama-3.1-8b", &request(1, 8192, 16, 1));
    assert_eq!(r.prefill.bound, "compute");
    assert_eq!(r.decode.bound, "memory_bandwidth");
    // Prefill FLOPs ≥ 2 × params × tokens (the dense part alone).
    let arch = bottleneck_models::resolve("llama-3.1-8b").unwrap();
    assert!(r.prefill.flops > 2.0 * (arch.params() as f64 - 2.0 * 525e6) * 8192.0);
}

#[test]
fn model_too_big_does_not_fit_and_says_so() {
    let r = run("llama-3.1-70b", &request(1, 1024, 128, 1));
    assert!(!r.memory.fits);
    assert_eq!(r.bottleneck.resource, "memory_capacity");
    assert_eq!(r.memory.max_batch, 0);
    let r = run("llama-3.1-70b", &request(1, 1024, 128, 4));
    assert!(r.memory.fits);
}

#[test]
fn tp_that_does_not_divide_heads_is_rejected() {
    let arch = bottleneck_models::resolve("llama-2-7b").unwrap();
    let e = analyze(&arch, h100(), &request(1, 128, 16, 3)).unwrap_err();
    assert!(e.to_string().contains("--tp 3"), "{e}");
}

#[test]
fn zero_sizes_are_rejected() {
    let arch = bottleneck_models::resolve("llama-2-7b").unwrap();
    for req in [
        request(0, 128, 16, 1),
        request(1, 0, 16, 1),
        request(1, 128, 0, 1),
    ] {
        assert!(analyze(&arch, h100(), &req).is_err());
    }
}

#[test]
fn absurd_sizes_are_rejected_not_overflowed() {
    let arch = bottleneck_models::resolve("llama-2-7b").unwrap();
    for req in [
        request(u64::MAX, 128, 16, 1),
        request(1, u64::MAX, 16, 1),
        request(1, 128, u64::MAX, 1),
    ] {
        let err = analyze(&arch, h100(), &req).unwrap_err().to_string();
        assert!(err.contains("implausibly large"), "{err}");
    }
    // The largest accepted sizes still give finite figures.
    let r = analyze(&arch, h100(), &request(1 << 26, 1 << 32, 1 << 32, 1)).unwrap();
    assert!(r.e2e_s.is_finite() && r.throughput_tokens_per_s.is_finite());
}

#[test]
fn what_ifs_rerun_the_model() {
    let mut req = request(8, 1024, 128, 1);
    req.what_ifs = true;
    let r = run("llama-3.1-8b", &req);
    assert!(r.what_if.len() >= 5, "{:?}", r.what_if);
    let fp8 = r
        .what_if
        .iter()
        .find(|w| w.change.starts_with("weights"))
        .expect("weight precision what-if");
    // Decode-bound at batch 8: fp8 weights halve most of the streamed bytes.
    assert!(fp8.speedup > 1.3 && fp8.speedup < 2.0, "{fp8:?}");
    let bw = r
        .what_if
        .iter()
        .find(|w| w.change.starts_with("HBM"))
        .unwrap();
    assert!(bw.speedup > 1.3, "{bw:?}");
}

#[test]
fn json_snapshot() {
    let mut req = request(16, 2000, 256, 4);
    req.what_ifs = true;
    let r = run("llama-3.1-70b", &req);
    // Assumption texts change with every modelling note; the figures are what is pinned.
    let mut v = serde_json::to_value(&r).unwrap();
    if let Some(o) = v.as_object_mut() {
        o.remove("assumptions");
    }
    insta::assert_json_snapshot!("llama-3.1-70b_h100_tp4", v);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn more_bandwidth_is_never_slower(batch in 1u64..64, prompt in 1u64..4096, output in 1u64..512, scale in 1.0f64..4.0) {
        let arch = bottleneck_models::resolve("llama-3.1-8b").unwrap();
        let req = request(batch, prompt, output, 1);
        let base = analyze(&arch, h100(), &req).unwrap();
        let mut hw = h100().clone();
        hw.memory.bandwidth_gb_s *= scale;
        let fast = analyze(&arch, &hw, &req).unwrap();
        prop_assert!(fast.e2e_s <= base.e2e_s * (1.0 + 1e-12));
        prop_assert!(fast.ttft_s <= base.ttft_s * (1.0 + 1e-12));
    }

    #[test]
    fn larger_batch_never_lowers_memory(batch in 1u64..256, extra in 1u64..64, prompt in 1u64..8192, output in 1u64..1024) {
        let arch = bottleneck_models::resolve("mixtral-8x7b").unwrap();
        let par = Parallel::single(8);
        let p = prec(Precision::Bf16);
        let a = memory_per_gpu(&arch, &par, &p, 80e9, batch, prompt, output);
        let b = memory_per_gpu(&arch, &par, &p, 80e9, batch + extra, prompt, output);
        prop_assert!(b.total_bytes_per_gpu >= a.total_bytes_per_gpu);
        prop_assert!(b.kv_cache_bytes >= a.kv_cache_bytes);
    }
}
