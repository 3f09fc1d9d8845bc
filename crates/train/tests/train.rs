//! Black-box tests of the training analysis: hand-worked formulas, bad input, agreement of
//! `train` and `search`, property tests and a JSON snapshot.

use bottleneck_core::arch::{Activation, Mlp, ModelArch, NormKind, PositionKind};
use bottleneck_core::catalog;
use bottleneck_core::hardware::Hardware;
use bottleneck_core::ir::{Collective, CollectiveKind, Scope};
use bottleneck_core::pricing::{collective_volume, price_collective};
use bottleneck_core::units::GB;
use bottleneck_train::memory::ModelSizes;
use bottleneck_train::step::JobFacts;
use bottleneck_train::{
    analyze, evaluate_layout, search, AttentionImpl, Job, Layout, Recompute, TrainError,
    TrainPrecision,
};
use proptest::prelude::*;

fn gpt(layers: u64, hidden: u64, heads: u64, vocab: u64, seq: u64) -> ModelArch {
    ModelArch {
        name: "gpt-test".into(),
        family: "gpt".into(),
        vocab,
        hidden,
        layers,
        heads,
        kv_heads: heads,
        head_dim: hidden / heads,
        mla: None,
        qkv_bias: true,
        out_bias: true,
        parallel_attn_mlp: false,
        mlp: Mlp {
            gated: false,
            activation: Activation::Gelu,
            ffn: 4 * hidden,
            bias: true,
        },
        moe: None,
        norm: NormKind::LayerNorm,
        norms_per_layer: 2,
        extra_norm_params_per_layer: 0,
        position: PositionKind::Learned,
        max_position: seq,
        tie_embeddings: true,
        sliding_window: None,
        local_layers: 0,
        assumptions: vec![],
    }
}

fn h100() -> &'static Hardware {
    catalog::find_hardware("h100-sxm").expect("h100")
}

fn job<'a>(arch: &'a ModelArch, hw: &'a Hardware, gpus: u64, seq: u64, gb: u64) -> Job<'a> {
    Job {
        arch,
        hw,
        gpus,
        seq,
        global_batch: gb,
        precision: TrainPrecision::Bf16,
        attention: AttentionImpl::Fused,
    }
}

fn lay(tp: u32, pp: u32, dp: u32) -> Layout {
    Layout {
        tp,
        pp,
        dp,
        ..Layout::single()
    }
}

#[test]
fn parameter_count_by_hand() {
    // h = 64, 2 layers, V = 100, 16 positions, tied head.
    // Layer: attention 4h² = 16,384 + biases 3h + h = 256 → 16,640; MLP 8h² = 32,768 + biases
    // 4h + h = 320 → 33,088; two LayerNorms 4h = 256. Layer = 49,984; × 2 = 99,968.
    // Embeddings 100·64 + 16·64 = 7,424; final LayerNorm 128. Total 107,520.
    let arch = gpt(2, 64, 4, 100, 16);
    assert_eq!(arch.params(), 107_520);
    // The per-stage split used for memory adds back up to the model.
    let sizes = ModelSizes::new(&arch, AttentionImpl::Fused);
    assert_eq!(sizes.stage_params_per_gpu(&Layout::single(), 0), 107_520.0);
    let two = lay(1, 2, 1);
    let split = sizes.stage_params_per_gpu(&two, 0) + sizes.stage_params_per_gpu(&two, 2);
    // The last stage keeps a copy of the tied embedding table (6,400) for the LM head.
    assert_eq!(split, 107_520.0 + 6_400.0);
}

#[test]
fn model_flops_are_6n_plus_attention() {
    // Per token: 3 × [2·(12·L·h² + V·h) + L · 4h · (s + 1)/2] (causal pairs s(s+1)/2 per
    // sequence, 2·heads·(2·head_dim) = 4h FLOPs per pair).
    let (l, h, v, s) = (4u64, 256u64, 1000u64, 128u64);
    let arch = gpt(l, h, 8, v, s);
    let hw = h100();
    let j = job(&arch, hw, 1, s, 1);
    let facts = JobFacts::new(&j);
    let (lf, hf, vf, sf) = (l as f64, h as f64, v as f64, s as f64);
    let n = 12.0 * lf * hf * hf + vf * hf;
    let per_token = 6.0 * n + 3.0 * lf * 4.0 * hf * (sf + 1.0) / 2.0;
    let got = facts.model_flops_per_seq / sf;
    assert!(
        (got / per_token - 1.0).abs() < 1e-12,
        "{got} vs {per_token}"
    );
}

#[test]
fn activation_memory_follows_korthikanti() {
    // GPT-175B-like layer: s = 2048, b = 1, h = 12288, a = 96.
    let arch = gpt(96, 12288, 96, 51200, 2048);
    let sizes = ModelSizes::new(&arch, AttentionImpl::Unfused);
    let (s, b, h, a) = (2048.0, 1.0, 12288.0, 96.0);
    let sbh = s * b * h;
    let at = |tp: u32, sp: bool, rc: Recompute| {
        let l = Layout {
            tp,
            sequence_parallel: sp,
            ..Layout::single()
        };
        sizes.layer_activation_bytes(&l, s, b, rc)
    };
    let close = |x: f64, y: f64| assert!((x / y - 1.0).abs() < 1e-12, "{x} vs {y}");
    close(
        at(1, false, Recompute::None),
        sbh * (34.0 + 5.0 * a * s / h),
    );
    let t = 8.0;
    close(
        at(8, false, Recompute::None),
        sbh * (10.0 + 24.0 / t + 5.0 * a * s / (h * t)),
    );
    close(
        at(8, true, Recompute::None),
        sbh / t * (34.0 + 5.0 * a * s / h),
    );
    close(at(8, true, Recompute::Selective), sbh / t * 34.0);
    close(at(8, false, Recompute::Selective), sbh * (10.0 + 24.0 / t));
    close(at(1, false, Recompute::Full), 2.0 * sbh);
    close(at(8, true, Recompute::Full), 2.0 * sbh / t);
    // FlashAttention never stores the scores.
    let fused = ModelSizes::new(&arch, AttentionImpl::Fused);
    close(
        fused.layer_activation_bytes(&Layout::single(), s, b, Recompute::None),
        sbh * 34.0,
    );
}

#[test]
fn bubble_fractions_by_hand() {
    let arch = gpt(32, 4096, 32, 51200, 2048);
    let hw = h100();
    // 64 GPUs = tp 8 × pp 4 × dp 2; global batch 64, micro-batch 1 → m = 32.
    let j = job(&arch, hw, 64, 2048, 64);
    for (vpp, want) in [(1u32, 3.0 / 32.0), (2, 3.0 / 64.0), (4, 3.0 / 128.0)] {
        let l = Layout {
            vpp,
            recompute: Recompute::Selective,
            sequence_parallel: true,
            ..lay(8, 4, 2)
        };
        let e = evaluate_layout(&j, &l).expect("valid");
        let frac = e.breakdown.pipeline_bubble_s / (e.micro_batches as f64 * e.stage_time_s);
        assert!((frac - want).abs() < 1e-12, "vpp {vpp}: {frac} vs {want}");
    }
}

#[test]
fn data_parallel_all_reduce_is_a_ring() {
    // 8 GPUs of one node, DP 8: the gradient all-reduce takes 2(n−1) steps and moves
    // 2(n−1)/n × bytes over NVLink at the fitted bus fraction.
    let arch = gpt(4, 1024, 16, 32000, 1024);
    let hw = h100();
    let j = job(&arch, hw, 8, 1024, 8);
    let e = evaluate_layout(&j, &lay(1, 1, 8)).expect("valid");
    let c = e
        .communication()
        .find(|c| c.collective == "dp.all_reduce")
        .expect("dp all-reduce");
    let n = 8.0;
    let bytes = arch.params() as f64 * 2.0;
    assert!((c.bytes / bytes - 1.0).abs() < 1e-12);
    // Hand-worked ring volume: 2(n−1) steps moving 2(n−1)/n of the buffer.
    assert_eq!(
        collective_volume(CollectiveKind::AllReduce, 8),
        (14.0, 2.0 * 7.0 / 8.0)
    );
    let want = price_collective(
        &Collective {
            kind: CollectiveKind::AllReduce,
            group: 8,
            scope: Scope::IntraNode,
            bytes,
        },
        hw,
    )
    .time_s;
    let eff = &hw.efficiency;
    let floor = 2.0 * (n - 1.0) / n * bytes
        / (hw.interconnect.intra_node.bandwidth_gb_s * GB * eff.intra_node_bus_fraction)
        + 2.0 * (n - 1.0) * eff.intra_node_step_us * 1e-6;
    assert_eq!(c.time_s, want);
    // The ring's bandwidth and latency terms are a lower bound of the priced time.
    assert!(c.time_s >= floor * (1.0 - 1e-12), "{} vs {floor}", c.time_s);
    assert!(!c.inter_node);
}

#[test]
fn search_and_train_agree_exactly() {
    let arch = bottleneck_models::resolve("llama-3.1-8b").expect("model");
    let hw = h100();
    let j = job(&arch, hw, 64, 4096, 256);
    let found = search(&j, 5, &|_, _| {}).expect("search");
    assert!(found.feasible > 0 && found.evaluated >= found.feasible);
    assert!(found.space >= found.evaluated);
    for t in &found.top {
        let e = evaluate_layout(&j, &t.layout).expect("valid");
        assert_eq!(e.step_time_s, t.step_time_s);
        assert_eq!(e.mfu, t.mfu);
        assert_eq!(e.memory.total_bytes_per_gpu, t.total_bytes_per_gpu);
    }
    // Sorted fastest first, and deterministic.
    assert!(found
        .top
        .windows(2)
        .all(|w| w[0].step_time_s <= w[1].step_time_s));
    let again = search(&j, 5, &|_, _| {}).expect("search");
    let key = |r: &bottleneck_train::SearchReport| {
        r.top
            .iter()
            .map(|t| (t.layout.describe(), t.step_time_s.to_bits()))
            .collect::<Vec<_>>()
    };
    assert_eq!(key(&found), key(&again));
}

fn invalid(j: &Job<'_>, l: &Layout) -> String {
    match evaluate_layout(j, l) {
        Err(TrainError::InvalidLayout(m)) => m,
        other => panic!("expected an invalid layout, got {other:?}"),
    }
}

#[test]
fn bad_layouts_name_the_rule_and_a_valid_layout() {
    let arch = bottleneck_models::resolve("llama-3.1-70b").expect("model");
    let hw = h100();
    let j = job(&arch, hw, 64, 4096, 128);
    let cases = [
        (lay(8, 2, 2), "not the --gpus 64"),
        (lay(1, 1, 64), ""),
        (
            Layout {
                micro_batch: 3,
                ..lay(8, 1, 8)
            },
            "not divisible by dp 8 × micro-batch 3",
        ),
    ];
    for (l, want) in cases {
        if want.is_empty() {
            assert!(evaluate_layout(&j, &l).is_ok());
            continue;
        }
        let m = invalid(&j, &l);
        assert!(m.contains(want), "{m}");
        assert!(m.contains("a valid layout nearby: --tp"), "{m}");
    }
    let j48 = job(&arch, hw, 48, 4096, 96);
    let m = invalid(&j48, &lay(3, 1, 16));
    assert!(
        m.contains("--tp 3 does not divide the 64 attention heads"),
        "{m}"
    );
    assert!(m.contains("a valid layout nearby: --tp"), "{m}");
    let small = gpt(4, 256, 4, 1000, 128);
    let js = job(&small, hw, 8, 128, 8);
    let m = invalid(&js, &lay(1, 8, 1));
    assert!(m.contains("--pp 8 exceeds the 4 layers"), "{m}");
    let moe = bottleneck_models::resolve("mixtral-8x7b").expect("model");
    let jm = job(&moe, hw, 48, 4096, 48);
    let m = invalid(
        &jm,
        &Layout {
            ep: 3,
            ..lay(8, 1, 6)
        },
    );
    assert!(m.contains("--ep 3 does not divide the 8 experts"), "{m}");
    // The suggested layout is valid.
    let nearby = bottleneck_train::layout::nearest_valid(
        &jm,
        &Layout {
            ep: 3,
            ..lay(8, 1, 6)
        },
    )
    .expect("some layout");
    assert!(evaluate_layout(&jm, &nearby).is_ok());
}

#[test]
fn expert_parallel_keeps_utilisation_physical() {
    // Experts over EP data-parallel ranks: each GPU computes its share t·k/tp of the routed
    // tokens, so expert FLOPs per GPU do not shrink with EP and MFU stays below 1.
    let moe = bottleneck_models::resolve("mixtral-8x7b").expect("model");
    let hw = h100();
    let j = job(&moe, hw, 64, 4096, 128);
    let one = evaluate_layout(&j, &lay(1, 1, 64)).expect("valid");
    let eight = evaluate_layout(
        &j,
        &Layout {
            ep: 8,
            ..lay(1, 1, 64)
        },
    )
    .expect("valid");
    let found = search(&j, 20, &|_, _| {}).expect("search");
    for e in [one.mfu, eight.mfu]
        .into_iter()
        .chain(found.top.iter().map(|t| t.mfu))
    {
        assert!(e > 0.0 && e < 1.0, "MFU {e}");
    }
    // Same expert math per GPU with or without EP (EP adds all-to-all, drops weight reads).
    assert!(
        eight.breakdown.compute_s > 0.5 * one.breakdown.compute_s,
        "{one:?}\n{eight:?}"
    );
}

#[test]
fn not_fitting_is_a_result_with_the_overflow() {
    let arch = bottleneck_models::resolve("llama-3.1-405b").expect("model");
    let hw = h100();
    let j = job(&arch, hw, 8, 8192, 8);
    let r = analyze(&j, &lay(8, 1, 1), true, false).expect("valid layout");
    assert!(!r.memory.fits);
    assert!(r.memory.overflow_bytes > 0.0);
    assert_eq!(r.bottleneck.resource, "memory_capacity");
    assert!(
        (r.memory.total_bytes_per_gpu - r.memory.usable_bytes_per_gpu - r.memory.overflow_bytes)
            .abs()
            < 1.0
    );
}

#[test]
fn train_json_snapshot() {
    let arch = bottleneck_models::resolve("llama-3.1-70b").expect("model");
    let hw = h100();
    let j = job(&arch, hw, 64, 4096, 128);
    let l = Layout {
        vpp: 2,
        sequence_parallel: true,
        zero: 1,
        recompute: Recompute::Selective,
        ..lay(8, 4, 2)
    };
    let r = analyze(&j, &l, true, false).expect("valid");
    let mut v = serde_json::to_value(&r).expect("json");
    // Assumptions quote the catalog's efficiency sources, which change with every refit.
    v["assumptions"] = serde_json::Value::Null;
    insta::assert_json_snapshot!("train_llama70b_64xh100", v);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn more_gpus_at_fixed_batch_never_raise_memory(
        tp_log in 0u32..4, pp_log in 0u32..3, dp_log in 0u32..4, zero in 0u8..4,
        rc in 0usize..3, mb_log in 0u32..2,
    ) {
        let arch = gpt(16, 2048, 16, 32000, 2048);
        let hw = h100();
        let (tp, pp, dp) = (1u32 << tp_log, 1u32 << pp_log, 1u32 << dp_log);
        let gb = 256;
        let l = Layout {
            zero,
            recompute: Recompute::ALL[rc],
            micro_batch: 1 << mb_log,
            sequence_parallel: tp > 1,
            ..lay(tp, pp, dp)
        };
        let gpus = u64::from(tp * pp * dp);
        let a = evaluate_layout(&job(&arch, hw, gpus, 2048, gb), &l).expect("valid");
        let l2 = Layout { dp: dp * 2, ..l };
        let b = evaluate_layout(&job(&arch, hw, gpus * 2, 2048, gb), &l2).expect("valid");
        prop_assert!(b.memory.total_bytes_per_gpu <= a.memory.total_bytes_per_gpu * (1.0 + 1e-12));
    }

    #[test]
    fn recompute_trades_time_for_memory(
        tp_log in 0u32..4, pp_log in 0u32..3, dp_log in 0u32..3, zero in 0u8..4,
        mb_log in 0u32..3, unfused in any::<bool>(), vpp in 1u32..3,
    ) {
        let arch = gpt(16, 2048, 16, 32000, 2048);
        let hw = h100();
        let (tp, pp, dp) = (1u32 << tp_log, 1u32 << pp_log, 1u32 << dp_log);
        let gpus = u64::from(tp * pp * dp);
        let mut j = job(&arch, hw, gpus, 2048, 64);
        if unfused {
            j.attention = AttentionImpl::Unfused;
        }
        let vpp = if pp > 1 { vpp } else { 1 };
        let at = |rc| {
            let l = Layout {
                zero,
                vpp,
                recompute: rc,
                micro_batch: 1 << mb_log,
                sequence_parallel: tp > 1,
                ..lay(tp, pp, dp)
            };
            evaluate_layout(&j, &l)
        };
        if let (Ok(none), Ok(sel), Ok(full)) =
            (at(Recompute::None), at(Recompute::Selective), at(Recompute::Full))
        {
            prop_assert!(sel.memory.activation_bytes <= none.memory.activation_bytes);
            prop_assert!(full.memory.activation_bytes <= sel.memory.activation_bytes);
            prop_assert!(sel.step_time_s >= none.step_time_s);
            prop_assert!(full.step_time_s >= sel.step_time_s);
            prop_assert!(full.hfu >= full.mfu && sel.hfu >= sel.mfu);
        }
    }
}
