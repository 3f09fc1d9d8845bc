//! The built-in hardware catalog: every file parses and carries its sources, names resolve, and
//! the fitted efficiencies are what a re-fit of the public measurements gives (the method of
//! `catalog/hardware/README.md`, also implemented by `scripts/fit_hardware.py`).

use std::collections::{BTreeMap, BTreeSet};

use bottleneck_core::catalog::{find_hardware, hardware};
use bottleneck_core::{price_op, Collective, CollectiveKind, Hardware, Op, Precision, Scope};
use proptest::prelude::*;

const DATA: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../../shared/data/validation"
);

/// The GPUs with microbenchmark rows, and the precision their GEMM rows ran in.
const MEASURED: [(&str, Precision); 3] = [
    ("a100-sxm-80gb", Precision::Fp16),
    ("h100-sxm", Precision::Fp8),
    ("h200-sxm", Precision::Fp8),
];

/// The names the task and the validation data use.
const REQUIRED: [&str; 19] = [
    "a100-sxm-40gb",
    "a100-sxm-80gb",
    "a100-pcie-40gb",
    "a100-pcie-80gb",
    "h100-sxm",
    "h100-pcie",
    "h200-sxm",
    "h800",
    "b200",
    "gb200",
    "l4",
    "l40s",
    "a10g",
    "rtx-4090",
    "rtx-3090",
    "v100-sxm-32gb",
    "mi250x",
    "mi300x",
    "jetson-agx-orin",
];

fn read_csv(file: &str) -> Vec<BTreeMap<String, String>> {
    let path = format!("{DATA}/{file}");
    let mut rdr = csv::Reader::from_path(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let headers = rdr.headers().expect("header row").clone();
    rdr.records()
        .map(|r| {
            let r = r.expect("csv record");
            headers
                .iter()
                .zip(r.iter())
                .map(|(h, v)| (h.to_string(), v.to_string()))
                .collect()
        })
        .collect()
}

fn params(text: &str) -> BTreeMap<String, String> {
    text.split(';')
        .filter_map(|p| p.split_once('='))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect()
}

fn num(s: &str) -> f64 {
    s.parse().unwrap_or_else(|_| panic!("not a number: {s}"))
}

/// Minimises `Σ ((a·x + b − t)/t)²` (relative error) over `(a, b)`.
fn lstsq_rel(pts: &[(f64, f64)]) -> (f64, f64) {
    let (mut sw, mut sx, mut sxx, mut st, mut sxt) = (0.0, 0.0, 0.0, 0.0, 0.0);
    for &(x, t) in pts {
        let w = 1.0 / (t * t);
        sw += w;
        sx += w * x;
        sxx += w * x * x;
        st += w * t;
        sxt += w * x * t;
    }
    let det = sxx * sw - sx * sx;
    ((sxt * sw - sx * st) / det, (sxx * st - sx * sxt) / det)
}

/// Minimises `Σ ((c0 + c1·x + c2·√x − t)/t)²` over `(c0, c1, c2)` (the method of
/// `scripts/fit_hardware.py`'s `lstsq_rel3`: normal equations, Gaussian elimination).
fn lstsq_rel3(pts: &[(f64, f64)]) -> [f64; 3] {
    let mut m = [[0.0_f64; 3]; 3];
    let mut v = [0.0_f64; 3];
    for &(x, t) in pts {
        let f = [1.0, x, x.sqrt()];
        let w = 1.0 / (t * t);
        for i in 0..3 {
            v[i] += w * f[i] * t;
            for j in 0..3 {
                m[i][j] += w * f[i] * f[j];
            }
        }
    }
    for i in 0..3 {
        let p = (i..3)
            .max_by(|&a, &b| m[a][i].abs().total_cmp(&m[b][i].abs()))
            .unwrap();
        m.swap(i, p);
        v.swap(i, p);
        for r in i + 1..3 {
            let k = m[r][i] / m[i][i];
            let pivot = m[i];
            for (a, b) in m[r].iter_mut().zip(pivot) {
                *a -= k * b;
            }
            v[r] -= k * v[i];
        }
    }
    let mut c = [0.0_f64; 3];
    for i in (0..3).rev() {
        let tail: f64 = (i + 1..3).map(|j| m[i][j] * c[j]).sum();
        c[i] = (v[i] - tail) / m[i][i];
    }
    c
}

fn rows_of<'a>(
    rows: &'a [BTreeMap<String, String>],
    gpu: &'a str,
    bench: &'a str,
) -> impl Iterator<Item = &'a BTreeMap<String, String>> {
    rows.iter()
        .filter(move |r| r["gpu"] == gpu && r["benchmark"] == bench)
}

/// `(m, n, k, TFLOP/s)` of a GPU's cuBLASLt rows.
fn gemm_rows(rows: &[BTreeMap<String, String>], gpu: &str) -> Vec<(f64, f64, f64, f64)> {
    rows_of(rows, gpu, "gemm_cublaslt")
        .map(|r| {
            let p = params(&r["parameters"]);
            (num(&p["m"]), num(&p["n"]), num(&p["k"]), num(&r["value"]))
        })
        .collect()
}

fn close(what: &str, got: f64, want: f64, rel: f64) {
    assert!(
        (got / want - 1.0).abs() <= rel,
        "{what}: catalog has {want}, re-fit gives {got} (tolerance {:.0}%)",
        rel * 100.0
    );
}

#[test]
fn every_builtin_file_parses_validates_and_has_required_names() {
    let all = hardware();
    assert!(all.len() >= REQUIRED.len());
    for hw in all {
        hw.validate().expect("validated");
    }
    for name in REQUIRED {
        let hw = find_hardware(name).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(hw.name, name);
    }
}

#[test]
fn embedded_json_is_the_toml_file() {
    // The binary deserializes the build-time JSON rendering; the TOML text must say the same.
    for (stem, toml_text, _) in bottleneck_core::catalog::HARDWARE_FILES {
        let from_toml = Hardware::from_toml(toml_text).unwrap_or_else(|e| panic!("{stem}: {e}"));
        let embedded = find_hardware(stem).unwrap();
        assert_eq!(&from_toml, embedded, "{stem}");
    }
}

#[test]
fn names_and_aliases_are_unique_and_resolve() {
    let mut seen = BTreeSet::new();
    for hw in hardware() {
        for n in std::iter::once(&hw.name).chain(&hw.aliases) {
            assert!(
                seen.insert(n.to_ascii_lowercase()),
                "name or alias {n} is used twice"
            );
        }
    }
    for (alias, name) in [
        ("a100-pcie", "a100-pcie-80gb"),
        ("h200", "h200-sxm"),
        ("h800-sxm", "h800"),
        ("v100", "v100-sxm-32gb"),
        ("H100_SXM", "h100-sxm"),
    ] {
        assert_eq!(find_hardware(alias).expect(alias).name, name);
    }
    let err = find_hardware("h10-sxm").unwrap_err().to_string();
    assert!(err.contains("h100-sxm"), "{err}");
}

#[test]
fn every_section_names_its_source() {
    for hw in hardware() {
        for (section, src) in [
            ("memory", &hw.memory.source),
            ("compute", &hw.compute.source),
            (
                "interconnect.intra_node",
                &hw.interconnect.intra_node.source,
            ),
            (
                "interconnect.inter_node",
                &hw.interconnect.inter_node.source,
            ),
            ("efficiency", &hw.efficiency.source),
        ] {
            assert!(
                src.trim().len() >= 20,
                "{}: [{section}] source is empty or too short",
                hw.name
            );
        }
        // Borrowed efficiencies say whose they are.
        let measured = MEASURED.iter().any(|(g, _)| *g == hw.name);
        assert_eq!(
            hw.efficiency.source.starts_with("fitted"),
            measured,
            "{}: efficiency source must say fitted (measured GPUs) or borrowed",
            hw.name
        );
    }
}

#[test]
fn a_user_file_needs_no_aliases() {
    let text = include_str!("../../../catalog/hardware/h100-sxm.toml")
        .replace("aliases = [\"h100\"]\n", "")
        .replace("name = \"h100-sxm\"", "name = \"my-gpu\"");
    let hw = Hardware::from_toml(&text).expect("parses without aliases");
    assert!(hw.aliases.is_empty());
    let bad = text.replace("year = 2022", "year = 2022\nalias = [\"x\"]");
    let err = Hardware::from_toml(&bad).unwrap_err().to_string();
    assert!(err.contains("alias"), "{err}");
}

#[test]
fn fp8_is_absent_on_ampere_and_volta() {
    for name in [
        "a100-sxm-40gb",
        "a100-sxm-80gb",
        "a100-pcie-40gb",
        "a100-pcie-80gb",
        "a10g",
        "rtx-3090",
        "v100-sxm-32gb",
        "mi250x",
    ] {
        let hw = find_hardware(name).unwrap();
        assert!(hw.peak_flops(Precision::Fp8).is_none(), "{name} lists fp8");
        let err = hw
            .require_precision(Precision::Fp8)
            .unwrap_err()
            .to_string();
        assert!(err.contains(name) && err.contains("fp8"), "{err}");
    }
    for name in ["h100-sxm", "l4", "l40s", "rtx-4090", "mi300x", "b200"] {
        assert!(find_hardware(name)
            .unwrap()
            .peak_flops(Precision::Fp8)
            .is_some());
    }
    assert!(find_hardware("v100")
        .unwrap()
        .require_precision(Precision::Bf16)
        .is_err());
}

/// `tiles / (ceil(tiles / SMs) · SMs)` for an `m × n` output in `tile × tile` tiles (the method
/// of `pricing::wave_utilization`).
fn wave_util(m: f64, n: f64, sms: f64, tile: f64) -> f64 {
    let tiles = (m / tile).ceil() * (n / tile).ceil();
    tiles / ((tiles / sms).ceil().max(1.0) * sms)
}

/// Per measured GPU `(gemm_peak_fraction, gemm_fixed_us)` from the square shapes at `tile`.
fn gemm_fit(
    rows: &[BTreeMap<String, String>],
    gpu: &str,
    prec: Precision,
    tile: f64,
) -> (f64, f64) {
    let hw = find_hardware(gpu).unwrap();
    let sms = f64::from(hw.compute.sms);
    let square: Vec<(f64, f64)> = gemm_rows(rows, gpu)
        .iter()
        .filter(|(m, n, k, _)| m == n && n == k)
        .map(|&(m, n, k, v)| {
            let f = 2.0 * m * n * k;
            (f / wave_util(m, n, sms, tile), f / (v * 1e12))
        })
        .collect();
    assert!(square.len() >= 5, "{gpu}: square GEMM rows missing");
    let (a, b) = lstsq_rel(&square);
    (1.0 / (a * hw.peak_flops(prec).unwrap()), b * 1e6)
}

/// `hw` with the GEMM constants replaced.
fn with_gemm(gpu: &str, frac: f64, fixed_us: f64, tile: f64, p: f64) -> Hardware {
    let mut hw = find_hardware(gpu).unwrap().clone();
    hw.efficiency.gemm_peak_fraction = frac;
    hw.efficiency.gemm_fixed_us = fixed_us;
    hw.efficiency.gemm_tile = tile;
    hw.efficiency.roofline_exponent = p;
    hw
}

/// Squared relative time error of GEMM rows priced through `pricing.rs` on `hw`.
fn gemm_sse(hw: &Hardware, prec: Precision, shapes: &[(f64, f64, f64, f64)]) -> f64 {
    shapes
        .iter()
        .map(|&(m, n, k, v)| {
            let b = prec.bytes();
            let op = Op::gemm("gemm", prec, [m, n, k], b, b, 1.0);
            let t = op.flops / (v * 1e12);
            (price_op(&op, hw).time_s / t - 1.0).powi(2)
        })
        .sum()
}

/// The full GEMM fit at `tile`: per-GPU constants, then the exponent on the grid 1.00..8.00
/// minimising the non-square rows' error; returns (per-GPU fits, p, error over all rows).
fn gemm_fit_all(rows: &[BTreeMap<String, String>], tile: f64) -> (Vec<(f64, f64)>, f64, f64) {
    let fits: Vec<(f64, f64)> = MEASURED
        .iter()
        .map(|&(gpu, prec)| gemm_fit(rows, gpu, prec, tile))
        .collect();
    let split = |square: bool| -> Vec<Vec<(f64, f64, f64, f64)>> {
        MEASURED
            .iter()
            .map(|&(gpu, _)| {
                gemm_rows(rows, gpu)
                    .into_iter()
                    .filter(|(m, n, k, _)| (m == n && n == k) == square)
                    .collect()
            })
            .collect()
    };
    let (sq, nonsq) = (split(true), split(false));
    let total = |p: f64, sets: &[Vec<(f64, f64, f64, f64)>]| -> f64 {
        MEASURED
            .iter()
            .zip(&fits)
            .zip(sets)
            .map(|((&(gpu, prec), &(f, b)), shapes)| {
                gemm_sse(&with_gemm(gpu, f, b, tile, p), prec, shapes)
            })
            .sum()
    };
    let mut best = (f64::INFINITY, 1.0);
    for i in 0..=700 {
        let p = 1.0 + 0.01 * f64::from(i);
        let e = total(p, &nonsq);
        if e < best.0 {
            best = (e, p);
        }
    }
    let p = best.1;
    (fits.clone(), p, best.0 + total(p, &sq))
}

#[test]
fn gemm_refit_matches_catalog_and_shapes_as_priced() {
    let rows = read_csv("hardware_microbench.csv");
    let tile = find_hardware("h100-sxm").unwrap().efficiency.gemm_tile;
    let (fits, p, err) = gemm_fit_all(&rows, tile);
    // The catalog's tile is the candidate whose whole fit leaves the least error.
    for other in [64.0, 128.0, 256.0] {
        let (_, _, e) = gemm_fit_all(&rows, other);
        assert!(err <= e + 1e-12, "tile {other} fits better than {tile}");
    }
    for (&(gpu, prec), &(frac, fixed_us)) in MEASURED.iter().zip(&fits) {
        let hw = find_hardware(gpu).unwrap();
        assert!(
            (hw.efficiency.roofline_exponent - p).abs() < 0.015,
            "{gpu}: p re-fit {p}"
        );
        assert_eq!(
            hw.efficiency.gemm_tile, tile,
            "{gpu}: one tile for all GPUs"
        );
        close(
            &format!("{gpu} gemm_peak_fraction"),
            frac,
            hw.efficiency.gemm_peak_fraction,
            0.02,
        );
        close(
            &format!("{gpu} gemm_fixed_us"),
            fixed_us,
            hw.efficiency.gemm_fixed_us,
            0.02,
        );
        // The catalog priced through pricing.rs reproduces every shape: square ones within
        // 17% (A100 2048³ is the worst: cuBLAS picks another tile than 128), the others within
        // 13% (the skinny 802816×192×768 near the ridge included).
        for (m, n, k, v) in gemm_rows(&rows, gpu) {
            let bytes = prec.bytes();
            let op = Op::gemm("gemm", prec, [m, n, k], bytes, bytes, 1.0);
            let modelled = op.flops / price_op(&op, hw).time_s / 1e12;
            let err = modelled / v - 1.0;
            let limit = if m == n && n == k { 0.17 } else { 0.13 };
            assert!(
                err.abs() <= limit,
                "{gpu} {m}x{n}x{k}: measured {v} TFLOP/s, model {modelled:.1} ({:+.1}%)",
                err * 100.0
            );
        }
    }
}

#[test]
fn hbm_rows_within_5_percent() {
    let rows = read_csv("hardware_microbench.csv");
    for (gpu, _) in MEASURED {
        let hw = find_hardware(gpu).unwrap();
        let by: BTreeMap<String, f64> = rows_of(&rows, gpu, "hbm_bandwidth")
            .map(|r| {
                (
                    params(&r["parameters"])["kernel"].clone(),
                    num(&r["value"]) * 1e12,
                )
            })
            .collect();
        let fit = f64::midpoint(by["copy"], by["triad"]) / hw.memory_bandwidth();
        close(
            &format!("{gpu} memory_bandwidth_fraction"),
            fit,
            hw.efficiency.memory_bandwidth_fraction,
            0.01,
        );
        // A 1 GiB streaming kernel priced through pricing.rs; `dot` is a read-only reduction
        // that runs faster than the streaming kernels and is reported, not held to 5%.
        let bytes = 1024.0_f64.powi(3);
        let op = Op::memory(
            "stream",
            bottleneck_core::OpClass::Elementwise,
            Precision::Fp32,
            0.0,
            bytes,
            1.0,
        );
        let modelled = bytes / price_op(&op, hw).time_s;
        for kernel in ["copy", "mul", "add", "triad"] {
            let err = modelled / by[kernel] - 1.0;
            assert!(
                err.abs() <= 0.05,
                "{gpu} {kernel}: measured {:.0} GB/s, model {:.0} ({:+.1}%)",
                by[kernel] / 1e9,
                modelled / 1e9,
                err * 100.0
            );
        }
    }
}

/// nccl-tests size labels (`1K`, `132K`, `8G`: decimal-rounded powers of two) to bytes.
fn label_bytes(label: &str) -> f64 {
    let label = label.split_whitespace().next().expect("label");
    let (digits, unit) = label.split_at(label.len() - 1);
    let mult = match unit {
        "K" => 1e3,
        "M" => 1e6,
        "G" => 1e9,
        other => panic!("unit {other}"),
    };
    (num(digits) * mult).log2().round().exp2()
}

#[test]
fn allreduce_refit_matches_catalog() {
    let rows = read_csv("hardware_microbench.csv");
    let n = 8.0_f64;
    let factor = 2.0 * (n - 1.0) / n;
    for (gpu, _) in MEASURED {
        let hw = find_hardware(gpu).unwrap();
        let pts: Vec<(f64, f64)> = rows_of(&rows, gpu, "nccl_allreduce_busbw")
            .map(|r| {
                let s = label_bytes(&params(&r["parameters"])["message_size"]);
                let busbw = num(&r["value"]) * 1e9;
                (factor * s, factor * s / busbw)
            })
            .collect();
        assert_eq!(pts.len(), 24, "{gpu}");
        let [c0, c1, c2] = lstsq_rel3(&pts);
        let link = hw.interconnect.intra_node.bandwidth_gb_s * 1e9;
        close(
            &format!("{gpu} intra_node_bus_fraction"),
            1.0 / (c1 * link),
            hw.efficiency.intra_node_bus_fraction,
            0.02,
        );
        close(
            &format!("{gpu} intra_node_step_us"),
            c0 / (2.0 * (n - 1.0)) * 1e6,
            hw.efficiency.intra_node_step_us,
            0.02,
        );
        close(
            &format!("{gpu} intra_node_chunk_us"),
            (c2 / 2.0).powi(2) / c1 * 1e6,
            hw.efficiency.intra_node_chunk_us,
            0.02,
        );
        // Priced through pricing.rs: the median relative time error over all 24 sizes stays
        // under 7% (latency, bandwidth and pipelining terms).
        let mut errs: Vec<f64> = pts
            .iter()
            .map(|&(x, t)| {
                let op = Op::collective(
                    "ar",
                    Precision::Bf16,
                    Collective {
                        kind: CollectiveKind::AllReduce,
                        group: 8,
                        scope: Scope::IntraNode,
                        bytes: x / factor,
                    },
                    1.0,
                );
                (price_op(&op, hw).time_s / t - 1.0).abs()
            })
            .collect();
        errs.sort_by(f64::total_cmp);
        assert!(errs[12] < 0.07, "{gpu}: median |error| {:.3}", errs[12]);
    }
}

/// Forward attention rows as `(FLOPs in the pricing convention, seconds)`. Pricing counts
/// causal pairs exactly, `q(q+1)/2` per sequence; the paper counts `s²/2`.
fn attention_points(gpu: &str) -> Vec<(f64, f64)> {
    let rows = read_csv("attention_fa2.csv");
    let kernel = |r: &&BTreeMap<String, String>| r["benchmark"] == "attention_kernel";
    let key = |r: &BTreeMap<String, String>| {
        (r["causal"].clone(), r["head_dim"].clone(), r["seq"].clone())
    };
    // fwd / (fwd+bwd) on A100, to turn the H100 fwd+bwd rows into forward rates.
    let mut a100: BTreeMap<(String, String, String, String), f64> = BTreeMap::new();
    for r in rows
        .iter()
        .filter(kernel)
        .filter(|r| r["gpu"] == "a100-sxm-80gb")
    {
        let (c, d, s) = key(r);
        a100.insert((c, d, s, r["pass"].clone()), num(&r["value"]));
    }
    let own_fwd = rows
        .iter()
        .filter(kernel)
        .any(|r| r["gpu"] == gpu && r["pass"] == "fwd");
    rows.iter()
        .filter(kernel)
        .filter(|r| r["gpu"] == gpu)
        .filter_map(|r| {
            let s = num(&r["seq"]);
            let causal = r["causal"] == "yes";
            let f_paper = 4.0
                * s
                * s
                * num(&r["head_dim"])
                * num(&r["n_heads"])
                * num(&r["batch"])
                * if causal { 0.5 } else { 1.0 };
            let f_priced = f_paper * if causal { (s + 1.0) / s } else { 1.0 };
            let value = match (r["pass"].as_str(), own_fwd) {
                ("fwd", true) => num(&r["value"]),
                ("fwd+bwd", false) => {
                    let (c, d, sq) = key(r);
                    let fwd = a100[&(c.clone(), d.clone(), sq.clone(), "fwd".to_string())];
                    let both = a100[&(c, d, sq, "fwd+bwd".to_string())];
                    num(&r["value"]) * fwd / both
                }
                _ => return None,
            };
            Some((f_priced, f_paper / (value * 1e12)))
        })
        .collect()
}

#[test]
fn attention_refit_matches_catalog() {
    for gpu in ["a100-sxm-80gb", "h100-sxm"] {
        let hw = find_hardware(gpu).unwrap();
        let pts = attention_points(gpu);
        assert_eq!(pts.len(), 24, "{gpu}");
        let peak = hw.peak_flops(Precision::Fp16).unwrap();
        let t0 = hw.efficiency.gemm_fixed_us * 1e-6;
        let num_: f64 = pts.iter().map(|&(f, t)| f / t * (1.0 - t0 / t)).sum();
        let den: f64 = pts.iter().map(|&(f, t)| (f / t).powi(2)).sum();
        close(
            &format!("{gpu} attention_peak_fraction"),
            den / num_ / peak,
            hw.efficiency.attention_peak_fraction,
            0.02,
        );
    }
}

fn h100_with(peak_scale: f64, bw_scale: f64) -> Hardware {
    let mut hw = find_hardware("h100-sxm").unwrap().clone();
    for v in hw.compute.dense_tflops.values_mut() {
        *v *= peak_scale;
    }
    hw.memory.bandwidth_gb_s *= bw_scale;
    hw
}

proptest! {
    #[test]
    fn gemm_never_faster_with_less_peak_or_bandwidth(
        m in 1.0f64..65536.0,
        n in 1.0f64..32768.0,
        k in 1.0f64..32768.0,
        peak_cut in 0.05f64..1.0,
        bw_cut in 0.05f64..1.0,
    ) {
        let (m, n, k) = (m.round(), n.round(), k.round());
        let op = Op::gemm("g", Precision::Bf16, [m, n, k], 2.0, 2.0, 1.0);
        let base = price_op(&op, &h100_with(1.0, 1.0)).time_s;
        let less_peak = price_op(&op, &h100_with(peak_cut, 1.0)).time_s;
        let less_bw = price_op(&op, &h100_with(1.0, bw_cut)).time_s;
        let less_both = price_op(&op, &h100_with(peak_cut, bw_cut)).time_s;
        prop_assert!(less_peak >= base);
        prop_assert!(less_bw >= base);
        prop_assert!(less_both >= less_peak.max(less_bw));
    }
}
