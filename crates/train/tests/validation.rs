//! Scores `train` against published training measurements
//! (`../shared/data/validation/training_a100.csv`, `training_layer_timing.csv`) and checks that
//! the search rediscovers a layout at least as fast as each PTD-P Table 1 layout.
//!
//! Each source counts FLOPs its own way (`flops_convention`), so the prediction is put in the
//! row's convention: the row's FLOP formula divided by the predicted step time (PTD-P and the
//! 2020 Megatron table count recompute FLOPs; Korthikanti's MFU does not). The error is thus
//! the ratio of measured to predicted step time.
//!
//! Row rules (no per-row constants): the row's TP/PP/DP/VPP/micro-batch where given, else
//! PP 1, DP = GPUs / (TP·PP), VPP 1, micro-batch 1 (for the 2020 Megatron-LM table, which
//! predates gradient accumulation, the replica's whole batch); recompute as given, else full when the
//! FLOP convention counts recompute or is not stated (Megatron-LM's scripts checkpoint
//! activations); sequence parallel when the row says so; ZeRO-3 when the row says so; GPT
//! architecture (4h MLP, GeLU, LayerNorm, learned positions, tied embeddings) from the row's
//! layers, hidden, heads and vocabulary. PTD-P Table 2 rows without a TP × PP split use the
//! split the row's notes name as likely (TP 8 × PP 12 for 175B, Table 1's TP 8 × PP 35 for
//! 530B). Attention runs unfused (scores in memory): every source predates FlashAttention in
//! Megatron-LM.

use std::collections::BTreeMap;

use bottleneck_core::arch::{Activation, Mlp, ModelArch, NormKind, PositionKind};
use bottleneck_core::catalog;
use bottleneck_core::hardware::Hardware;
use bottleneck_train::costs::{layer_costs, CostKey};
use bottleneck_train::search::search;
use bottleneck_train::{evaluate_layout, AttentionImpl, Job, Layout, Recompute, TrainPrecision};

const DATA: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../../shared/data/validation/"
);

fn gpt(name: &str, layers: u64, hidden: u64, heads: u64, vocab: u64, seq: u64) -> ModelArch {
    ModelArch {
        name: name.into(),
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

type Row = BTreeMap<String, String>;

fn rows(file: &str) -> Vec<Row> {
    let mut r = csv::Reader::from_path(format!("{DATA}{file}")).expect("validation csv");
    let headers = r.headers().expect("headers").clone();
    r.records()
        .map(|rec| {
            let rec = rec.expect("record");
            headers
                .iter()
                .zip(rec.iter())
                .map(|(h, v)| (h.to_string(), v.trim().to_string()))
                .collect()
        })
        .collect()
}

fn num(r: &Row, k: &str) -> Option<f64> {
    r.get(k).and_then(|v| v.parse::<f64>().ok())
}

fn int(r: &Row, k: &str) -> Option<u64> {
    num(r, k).map(|v| v as u64)
}

/// The FLOP convention of a row.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Convention {
    /// PTD-P: 96·B·s·l·h²·(1 + s/6h + V/16lh), recompute included.
    Ptdp,
    /// Korthikanti MFU: 72·B·L·s·h²·(1 + s/6h + V/12hL), no recompute.
    KorthikantiMfu,
}

struct Case {
    id: String,
    arch: ModelArch,
    hw: &'static Hardware,
    gpus: u64,
    seq: u64,
    global_batch: u64,
    precision: TrainPrecision,
    layout: Layout,
    convention: Convention,
    /// Measured TFLOP/s per GPU in the row's convention.
    measured_tflops: f64,
    assumed_split: bool,
}

impl Case {
    fn job(&self) -> Job<'_> {
        Job {
            arch: &self.arch,
            hw: self.hw,
            gpus: self.gpus,
            seq: self.seq,
            global_batch: self.global_batch,
            precision: self.precision,
            // Every source here predates FlashAttention in Megatron-LM (2020–2022).
            attention: AttentionImpl::Unfused,
        }
    }

    /// The row's FLOPs per step.
    fn flops(&self) -> f64 {
        let b = self.global_batch as f64;
        let s = self.seq as f64;
        let l = self.arch.layers as f64;
        let h = self.arch.hidden as f64;
        let v = self.arch.vocab as f64;
        match self.convention {
            Convention::Ptdp => {
                96.0 * b * s * l * h * h * (1.0 + s / (6.0 * h) + v / (16.0 * l * h))
            }
            Convention::KorthikantiMfu => {
                72.0 * b * l * s * h * h * (1.0 + s / (6.0 * h) + v / (12.0 * h * l))
            }
        }
    }

    fn predicted_tflops(&self, step_s: f64) -> f64 {
        self.flops() / step_s / self.gpus as f64 / 1e12
    }
}

fn cases() -> Vec<Case> {
    let mut out = Vec::new();
    for r in rows("training_a100.csv") {
        let id = r["id"].clone();
        let (Some(layers), Some(hidden), Some(heads), Some(vocab), Some(seq), Some(gpus)) = (
            int(&r, "layers"),
            int(&r, "hidden"),
            int(&r, "heads"),
            int(&r, "vocab"),
            int(&r, "seq"),
            int(&r, "gpus"),
        ) else {
            println!("skip {id}: architecture or GPU count not given");
            continue;
        };
        let Some(global_batch) = int(&r, "global_batch") else {
            println!("skip {id}: global batch not given");
            continue;
        };
        let Ok(hw) = catalog::find_hardware(&r["gpu"]) else {
            println!("skip {id}: GPU {} not in the catalog", r["gpu"]);
            continue;
        };
        let conv_text = r["flops_convention"].clone();
        let convention = if conv_text.starts_with("MFU: 72") {
            Convention::KorthikantiMfu
        } else {
            Convention::Ptdp
        };
        let peak = 312.0;
        let measured_tflops = match convention {
            Convention::KorthikantiMfu => {
                match (num(&r, "measured_mfu"), num(&r, "measured_step_time_s")) {
                    (Some(mfu), _) => mfu * peak,
                    (None, Some(_)) => f64::NAN,
                    _ => continue,
                }
            }
            Convention::Ptdp => match (num(&r, "measured_tflops_per_gpu"), num(&r, "measured_hfu"))
            {
                (Some(t), _) => t,
                (None, Some(h)) => h * peak,
                _ => continue,
            },
        };
        let (mut tp, mut pp) = (int(&r, "tp"), int(&r, "pp"));
        let mut assumed_split = false;
        if tp.is_none() && pp.is_none() && r["zero_or_fsdp"].is_empty() {
            // PTD-P Table 2 without a split: the notes' likely split.
            assumed_split = true;
            tp = Some(8);
            pp = Some(if layers == 96 { 12 } else { 35 });
        }
        let tp = tp.unwrap_or(1) as u32;
        let pp = pp.unwrap_or(1) as u32;
        let dp = int(&r, "dp").map_or(gpus / u64::from(tp * pp), |d| d) as u32;
        let rc = r["recompute"].as_str();
        let recompute = if rc.starts_with("selective") {
            Recompute::Selective
        } else if rc == "none" {
            Recompute::None
        } else {
            // "full", or not stated under a convention that counts recompute.
            Recompute::Full
        };
        let precision = if hw.peak_flops(bottleneck_core::Precision::Bf16).is_some() {
            TrainPrecision::Bf16
        } else {
            TrainPrecision::Fp16
        };
        let layout = Layout {
            tp,
            pp,
            dp,
            cp: 1,
            ep: 1,
            vpp: int(&r, "vpp").unwrap_or(1) as u32,
            sequence_parallel: rc.contains("sequence-parallel"),
            micro_batch: int(&r, "micro_batch").unwrap_or(
                // Megatron-LM 2020 had no gradient accumulation: each replica ran its whole
                // batch at once.
                if r["id"].starts_with("megatron2020") {
                    global_batch / u64::from(dp)
                } else {
                    1
                },
            ),
            zero: if r["zero_or_fsdp"] == "zero-3" { 3 } else { 0 },
            recompute,
        };
        let mut c = Case {
            id: id.clone(),
            arch: gpt(&r["model"], layers, hidden, heads, vocab, seq),
            hw,
            gpus,
            seq,
            global_batch,
            precision,
            layout,
            convention,
            measured_tflops,
            assumed_split,
        };
        if c.measured_tflops.is_nan() {
            // Only a step time: put it in the row's convention.
            let t = num(&r, "measured_step_time_s").unwrap_or(f64::NAN);
            c.measured_tflops = c.predicted_tflops(t);
        }
        out.push(c);
    }
    out
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

#[test]
fn tflops_per_gpu_against_published_runs() {
    let cases = cases();
    assert!(cases.len() >= 30, "validation rows went missing");
    println!(
        "{:<28} {:>6} {:>4} {:>4} {:>5} {:>4} {:>3} {:>4} {:>9} {:>10} {:>10} {:>8}",
        "row",
        "gpus",
        "tp",
        "pp",
        "dp",
        "mb",
        "v",
        "rc",
        "step_s",
        "measured",
        "predicted",
        "error"
    );
    let mut errors = Vec::new();
    for c in &cases {
        let e =
            evaluate_layout(&c.job(), &c.layout).unwrap_or_else(|err| panic!("{}: {err}", c.id));
        let pred = c.predicted_tflops(e.step_time_s);
        let err = pred / c.measured_tflops - 1.0;
        errors.push(err.abs());
        println!(
            "{:<28} {:>6} {:>4} {:>4} {:>5} {:>4} {:>3} {:>4} {:>9.3} {:>10.1} {:>10.1} {:>+7.1}%{}{}",
            c.id,
            c.gpus,
            c.layout.tp,
            c.layout.pp,
            c.layout.dp,
            c.layout.micro_batch,
            c.layout.vpp,
            &c.layout.recompute.name()[..3],
            e.step_time_s,
            c.measured_tflops,
            pred,
            err * 100.0,
            if c.assumed_split { "  (TP×PP assumed)" } else { "" },
            if e.memory.fits { "" } else { "  (does not fit)" }
        );
    }
    errors.sort_by(f64::total_cmp);
    let median = percentile(&errors, 0.5);
    let p90 = percentile(&errors, 0.9);
    println!(
        "{} rows: median |error| {:.1}%, p90 |error| {:.1}%",
        errors.len(),
        median * 100.0,
        p90 * 100.0
    );
    assert!(
        median <= MEDIAN_LIMIT,
        "median |error| {median:.3} above {MEDIAN_LIMIT}"
    );
    assert!(p90 <= P90_LIMIT, "p90 |error| {p90:.3} above {P90_LIMIT}");
}

/// Thresholds just above what the model reaches today (see the printed table; the median is
/// the 10% target, with room for the pricing refits that land beside this crate).
const MEDIAN_LIMIT: f64 = 0.10;
const P90_LIMIT: f64 = 0.17;

#[test]
fn one_layer_forward_backward_against_korthikanti_table4() {
    // Korthikanti Table 4: one GPT-22B layer (h 6144, 64 heads, TP 8, seq 2048); the
    // micro-batch (4) is the 22B row of training_a100.csv.
    let arch = gpt("gpt-22b", 48, 6144, 64, 51200, 2048);
    let hw = catalog::find_hardware("a100-sxm-80gb").expect("a100");
    let job = Job {
        arch: &arch,
        hw,
        gpus: 8,
        seq: 2048,
        global_batch: 4,
        precision: TrainPrecision::Bf16,
        attention: AttentionImpl::Unfused,
    };
    let mut errs = Vec::new();
    println!(
        "{:<18} {:>10} {:>10} {:>10} {:>10} {:>8}",
        "row", "fwd meas", "fwd pred", "bwd meas", "bwd pred", "error"
    );
    for r in rows("training_layer_timing.csv") {
        let sp = r["sequence_parallel"] == "yes";
        let rc: Recompute = r["recompute"].parse().expect("recompute");
        let c = layer_costs(
            &job,
            &CostKey {
                tp: 8,
                cp: 1,
                ep: 1,
                micro_batch: 4,
                sequence_parallel: sp,
            },
        );
        let fwd = c.fwd.forward_time() * 1e3;
        let (all, _) = c.layer_time(rc);
        let bwd = all * 1e3 - fwd;
        let mf = num(&r, "forward_ms").expect("forward_ms");
        let mb = num(&r, "backward_ms").expect("backward_ms");
        let err = (fwd + bwd) / (mf + mb) - 1.0;
        errs.push(err.abs());
        println!(
            "{:<18} {:>10.2} {:>10.2} {:>10.2} {:>10.2} {:>+7.1}%",
            r["id"],
            mf,
            fwd,
            mb,
            bwd,
            err * 100.0
        );
    }
    errs.sort_by(f64::total_cmp);
    let median = percentile(&errs, 0.5);
    println!("layer time median |error| {:.1}%", median * 100.0);
    assert!(median <= LAYER_LIMIT, "layer median |error| {median:.3}");
}

const LAYER_LIMIT: f64 = 0.05;

#[test]
fn search_rediscovers_ptdp_table1_layouts() {
    for c in cases().iter().filter(|c| c.id.starts_with("ptdp_t1_")) {
        let job = c.job();
        let published = evaluate_layout(&job, &c.layout).expect("published layout is valid");
        let found = search(&job, 1, &|_, _| {}).expect("search");
        let best = found.top.first().expect("some layout fits");
        println!(
            "{:<11} published {} → {:.2} s ({}), search best {} → {:.2} s, {:.0} MB/GPU; {} evaluated in {:.2} s",
            c.id,
            c.layout.describe(),
            published.step_time_s,
            if published.memory.fits { "fits" } else { "does not fit" },
            best.layout.describe(),
            best.step_time_s,
            best.total_bytes_per_gpu / 1e6,
            found.evaluated,
            found.elapsed_s
        );
        if published.memory.fits {
            assert!(
                best.step_time_s <= published.step_time_s,
                "{}: search best {} s slower than the published layout {} s",
                c.id,
                best.step_time_s,
                published.step_time_s
            );
        }
        assert!(
            best.total_bytes_per_gpu <= job.hw.memory_bytes() * bottleneck_infer::USABLE_FRACTION
        );
    }
}
