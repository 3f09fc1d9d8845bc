#!/usr/bin/env python3
"""Fit the efficiency constants of catalog/hardware/*.toml to public measurements.

Stdlib only. Reads ../shared/data/validation/hardware_microbench.csv and attention_fa2.csv
(relative to the repository root, or the directory given as the first argument) and prints, per
measured GPU, the constants that `crates/core/src/pricing.rs` consumes, with the residual of every
row. The method is written down in catalog/hardware/README.md; crates/core/tests/catalog.rs
re-implements it in Rust and checks that the catalog files carry what this script prints.

Usage: python3 scripts/fit_hardware.py [DATA_DIR]
"""

import csv
import math
import os
import sys

# Dense peaks (TFLOP/s) and link / memory figures the fits divide by. They are the catalog's
# datasheet numbers (sources in the TOML files); duplicated here so the script stays stdlib-only.
PEAK_TFLOPS = {
    ("a100-sxm-80gb", "fp16"): 312.0,
    ("h100-sxm", "fp8"): 1978.9,
    ("h200-sxm", "fp8"): 1978.9,
}
HBM_GB_S = {"a100-sxm-80gb": 2039.0, "h100-sxm": 3350.0, "h200-sxm": 4800.0}
NVLINK_GB_S = {"a100-sxm-80gb": 300.0, "h100-sxm": 450.0, "h200-sxm": 450.0}
ALLREDUCE_GPUS = 8
SMS = {"a100-sxm-80gb": 108, "h100-sxm": 132, "h200-sxm": 132}
TILE_CANDIDATES = [64.0, 128.0, 256.0]
# Set by main() to the fitted tile before the per-GPU fits print their residuals.
GEMM_TILE = [128.0]


def wave_util(m, n, sms, tile):
    """pricing.rs's wave_utilization: tiles / (ceil(tiles / SMs) * SMs)."""
    tiles = math.ceil(m / tile) * math.ceil(n / tile)
    waves = max(1, math.ceil(tiles / sms))
    return tiles / (waves * sms)


def parse_params(text):
    """`key=value; key=value` -> dict (keys without `=` are dropped)."""
    out = {}
    for part in text.split(";"):
        if "=" in part:
            k, v = part.split("=", 1)
            out[k.strip()] = v.strip()
    return out


def label_bytes(label):
    """nccl-tests size labels (`1K`, `132K`, `33M`, `8G`, decimal-rounded powers of two as
    printed) -> the power of two nearest in log2."""
    label = label.split()[0]
    mult = {"K": 1e3, "M": 1e6, "G": 1e9}[label[-1]]
    approx = float(label[:-1]) * mult
    return 2.0 ** round(math.log2(approx))


def lstsq_rel(xs, ts):
    """Minimise sum(((a*x + b) - t) / t)^2 over (a, b): weighted linear least squares with weights
    1/t^2 (relative error), solved by the 2x2 normal equations."""
    sw = sx = sxx = st = sxt = 0.0
    for x, t in zip(xs, ts):
        w = 1.0 / (t * t)
        sw += w
        sx += w * x
        sxx += w * x * x
        st += w * t
        sxt += w * x * t
    det = sxx * sw - sx * sx
    a = (sxt * sw - sx * st) / det
    b = (sxx * st - sx * sxt) / det
    return a, b


def lstsq_rel3(features, ts):
    """Minimise sum((f . c - t) / t)^2 over c (three unknowns) by the normal equations,
    solved by Gaussian elimination with partial pivoting."""
    m = [[0.0] * 3 for _ in range(3)]
    v = [0.0] * 3
    for f, t in zip(features, ts):
        w = 1.0 / (t * t)
        for i in range(3):
            v[i] += w * f[i] * t
            for j in range(3):
                m[i][j] += w * f[i] * f[j]
    for i in range(3):
        p = max(range(i, 3), key=lambda r: abs(m[r][i]))
        m[i], m[p] = m[p], m[i]
        v[i], v[p] = v[p], v[i]
        for r in range(i + 1, 3):
            k = m[r][i] / m[i][i]
            m[r] = [a - k * b for a, b in zip(m[r], m[i])]
            v[r] -= k * v[i]
    c = [0.0] * 3
    for i in (2, 1, 0):
        c[i] = (v[i] - sum(m[i][j] * c[j] for j in range(i + 1, 3))) / m[i][i]
    return c


def load(path):
    with open(path, newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def square_sse(rows, fits):
    """Squared relative time error of the square GEMM rows as priced."""
    tot = 0.0
    for r in rows:
        if r["benchmark"] != "gemm_cublaslt" or r["gpu"] not in fits:
            continue
        q = parse_params(r["parameters"])
        m, n, k = int(q["m"]), int(q["n"]), int(q["k"])
        if not m == n == k:
            continue
        gpu = r["gpu"]
        elem = 1.0 if r["precision"] in ("fp8", "int8") else 2.0
        t = 2.0 * m * n * k / (float(r["value"]) * 1e12)
        frac, peak, t0_us, mem_frac = fits[gpu]
        u = wave_util(m, n, SMS[gpu], GEMM_TILE[0])
        pred = gemm_time(m, n, k, elem, frac, peak, t0_us, mem_frac, HBM_GB_S[gpu],
                         ROOFLINE_P[0], u)
        tot += ((pred - t) / t) ** 2
    return tot


def fit_gemm(rows, gpu, quiet=False):
    shapes = []
    prec = None
    for r in rows:
        if r["gpu"] != gpu or r["benchmark"] != "gemm_cublaslt":
            continue
        p = parse_params(r["parameters"])
        m, n, k = int(p["m"]), int(p["n"]), int(p["k"])
        prec = r["precision"]
        shapes.append((m, n, k, float(r["value"])))
    peak = PEAK_TFLOPS[(gpu, prec)] * 1e12
    square = [(m, n, k, v) for m, n, k, v in shapes if m == n == k]
    tile = GEMM_TILE[0]
    # x = F / wave utilization: the math a full machine would do in the same time.
    flops = [2.0 * m * n * k / wave_util(m, n, SMS[gpu], tile) for m, n, k, _ in square]
    times = [2.0 * m * n * k / (v * 1e12) for m, n, k, v in square]
    a, b = lstsq_rel(flops, times)
    frac = 1.0 / (a * peak)
    t0_us = b * 1e6
    if quiet:
        return frac, t0_us
    print(f"  gemm ({prec}, peak {peak / 1e12:.1f} TFLOP/s, tile {tile:.0f}): "
          f"gemm_peak_fraction = {frac:.4f}, gemm_fixed_us = {t0_us:.3f}")
    elem = 1.0 if prec in ("fp8", "int8") else 2.0
    mem_frac = fit_hbm_fraction(rows, gpu)
    for m, n, k, v in shapes:
        f = 2.0 * m * n * k
        u = wave_util(m, n, SMS[gpu], tile)
        pred = f / (f / u / (frac * peak) + t0_us * 1e-6) / 1e12
        # As pricing.rs prices Op::gemm: smooth roofline of compute (wave-quantized) and memory
        # plus fixed, with the weight (n x k), input (m x k) and output (m x n) all in the GEMM's
        # precision.
        t_roof = gemm_time(m, n, k, elem, frac, peak, t0_us, mem_frac, HBM_GB_S[gpu],
                           ROOFLINE_P[0], u)
        roof = f / t_roof / 1e12
        tag = "square" if m == n == k else "not fitted"
        print(f"    m={m} n={n} k={k}: measured {v:.1f}, model {pred:.1f} TFLOP/s "
              f"({(pred / v - 1) * 100:+.1f}%), as priced {roof:.1f} "
              f"({(roof / v - 1) * 100:+.1f}%) [{tag}, wave utilization {u:.3f}]")
    return frac, t0_us


def gemm_time(m, n, k, elem, frac, peak, t0_us, mem_frac, hbm_gb_s, p, util):
    """pricing.rs's GEMM time: smooth roofline (c^p + m^p)^(1/p) + fixed, c wave-quantized."""
    c = 2.0 * m * n * k / util / (frac * peak)
    mem = (n * k + m * k + m * n) * elem / (mem_frac * hbm_gb_s * 1e9)
    hi, lo = max(c, mem), min(c, mem)
    return hi * (1.0 + (lo / hi) ** p) ** (1.0 / p) + t0_us * 1e-6


ROOFLINE_P_GRID = [1.0 + 0.01 * i for i in range(0, 701)]
ROOFLINE_P = [1.0]


def fit_roofline_exponent(rows, fits):
    """One exponent p for every GPU: the grid value (1.00, 1.01, ..., 8.00) minimising the
    relative squared time error of the non-square GEMM rows of all measured GPUs, with each GPU's
    (gemm_peak_fraction, gemm_fixed_us, memory_bandwidth_fraction) as fitted above."""
    pts = []
    for r in rows:
        if r["benchmark"] != "gemm_cublaslt" or r["gpu"] not in fits:
            continue
        q = parse_params(r["parameters"])
        m, n, k = int(q["m"]), int(q["n"]), int(q["k"])
        if m == n == k:
            continue
        elem = 1.0 if r["precision"] in ("fp8", "int8") else 2.0
        t = 2.0 * m * n * k / (float(r["value"]) * 1e12)
        pts.append((r["gpu"], m, n, k, elem, t))

    tile = GEMM_TILE[0]

    def sse(p):
        tot = 0.0
        for gpu, m, n, k, elem, t in pts:
            frac, peak, t0_us, mem_frac = fits[gpu]
            u = wave_util(m, n, SMS[gpu], tile)
            pred = gemm_time(m, n, k, elem, frac, peak, t0_us, mem_frac, HBM_GB_S[gpu], p, u)
            tot += ((pred - t) / t) ** 2
        return tot

    best = min(ROOFLINE_P_GRID, key=sse)
    return best, sse(best), pts


def report_roofline(fits, best, pts):
    tile = GEMM_TILE[0]
    print(f"roofline_exponent = {best:.2f} (over {len(pts)} non-square GEMM rows, tile {tile:.0f})")
    for gpu, m, n, k, elem, t in pts:
        frac, peak, t0_us, mem_frac = fits[gpu]
        u = wave_util(m, n, SMS[gpu], tile)
        for p, tag in ((best, "smooth"), (1e9, "max")):
            pred = gemm_time(m, n, k, elem, frac, peak, t0_us, mem_frac, HBM_GB_S[gpu], p, u)
            print(f"    {gpu} m={m} n={n} k={k} [{tag}]: time {(pred / t - 1) * 100:+.1f}%")


def fit_hbm_fraction(rows, gpu):
    vals = {}
    for r in rows:
        if r["gpu"] == gpu and r["benchmark"] == "hbm_bandwidth":
            vals[parse_params(r["parameters"])["kernel"]] = float(r["value"]) * 1000.0
    return (vals["copy"] + vals["triad"]) / 2.0 / HBM_GB_S[gpu]


def fit_hbm(rows, gpu):
    vals = {}
    for r in rows:
        if r["gpu"] == gpu and r["benchmark"] == "hbm_bandwidth":
            vals[parse_params(r["parameters"])["kernel"]] = float(r["value"]) * 1000.0
    achieved = (vals["copy"] + vals["triad"]) / 2.0
    frac = achieved / HBM_GB_S[gpu]
    print(f"  hbm (datasheet {HBM_GB_S[gpu]:.0f} GB/s): memory_bandwidth_fraction = {frac:.4f} "
          f"({achieved:.0f} GB/s)")
    for k, v in vals.items():
        print(f"    {k}: measured {v:.0f} GB/s, model {achieved:.0f} ({(achieved / v - 1) * 100:+.1f}%)")
    return frac


def fit_allreduce(rows, gpu):
    n = ALLREDUCE_GPUS
    steps = 2.0 * (n - 1)
    factor = 2.0 * (n - 1) / n
    pts = []
    for r in rows:
        if r["gpu"] == gpu and r["benchmark"] == "nccl_allreduce_busbw":
            size = label_bytes(parse_params(r["parameters"])["message_size"])
            busbw = float(r["value"]) * 1e9
            # nccl-tests: busbw = algbw * 2(n-1)/n, algbw = S / t.
            pts.append((size, factor * size / busbw, float(r["value"])))
    # t = steps * step + x / (frac * link) + 2 * sqrt(chunk * x / (frac * link)), x = factor*S:
    # latency, bandwidth and the cross term of a pipelined (chunked) ring. Linear in
    # (1, x, sqrt(x)) with coefficients (steps*step, 1/(frac*link), 2*sqrt(chunk/(frac*link)));
    # relative-error least squares (weights 1/t^2) by the 3x3 normal equations.
    xs = [factor * s for s, _, _ in pts]
    ts = [t for _, t, _ in pts]
    c0, c1, c2 = lstsq_rel3([(1.0, x, math.sqrt(x)) for x in xs], ts)
    link = NVLINK_GB_S[gpu] * 1e9
    frac = 1.0 / (c1 * link)
    step_us = c0 / steps * 1e6
    chunk_us = (c2 / 2.0) ** 2 / c1 * 1e6
    print(f"  all-reduce n={n} (link {NVLINK_GB_S[gpu]:.0f} GB/s): intra_node_bus_fraction = "
          f"{frac:.4f}, intra_node_step_us = {step_us:.4f}, intra_node_chunk_us = {chunk_us:.4f}")
    errs = []
    for s, t, v in pts:
        x = factor * s
        pred_t = c0 + c1 * x + c2 * math.sqrt(x)
        pred_bw = factor * s / pred_t / 1e9
        errs.append(abs(pred_t / t - 1))
        print(f"    {int(s)} B: measured busbw {v:.2f}, model {pred_bw:.2f} GB/s "
              f"(time {(pred_t / t - 1) * 100:+.1f}%)")
    errs.sort()
    print(f"    |time error| median {errs[len(errs) // 2] * 100:.1f}%, max {errs[-1] * 100:.1f}%")
    return frac, step_us, chunk_us


def fit_attention(rows, gpu, t0_us, fwd_over_fwdbwd=None):
    """Forward-kernel fraction. Pricing counts causal pairs exactly (q(q+1)/2 per sequence); the
    paper counts s^2/2, so each causal row's time is F_paper/value and its FLOPs in the pricing
    convention are F_paper*(s+1)/s."""
    pts = []
    for r in rows:
        if r["benchmark"] != "attention_kernel" or r["gpu"] != gpu:
            continue
        s, d, h, batch = (int(r[k]) for k in ("seq", "head_dim", "n_heads", "batch"))
        causal = r["causal"] == "yes"
        f_paper = 4.0 * s * s * d * h * batch * (0.5 if causal else 1.0)
        f_priced = f_paper * ((s + 1) / s if causal else 1.0)
        value = float(r["value"])
        if r["pass"] == "fwd":
            pts.append((f_priced, f_paper / (value * 1e12), r))
        elif r["pass"] == "fwd+bwd" and fwd_over_fwdbwd is not None:
            key = (r["causal"], d, s)
            fwd_value = value * fwd_over_fwdbwd[key]
            pts.append((f_priced, f_paper / (fwd_value * 1e12), r))
    if not pts:
        return None
    peak = PEAK_TFLOPS[("a100-sxm-80gb", "fp16")] if gpu.startswith("a100") else 989.4
    peak *= 1e12
    t0 = t0_us * 1e-6
    # Minimise sum(((F*a + t0) - t)/t)^2 over a with t0 fixed: a = sum(F/t (1 - t0/t)) / sum((F/t)^2).
    num = sum(f / t * (1 - t0 / t) for f, t, _ in pts)
    den = sum((f / t) ** 2 for f, t, _ in pts)
    frac = 1.0 / ((num / den) * peak)
    errs = sorted(abs((f / (frac * peak) + t0) / t - 1) for f, t, _ in pts)
    print(f"  attention fwd (peak {peak / 1e12:.1f}, t0 {t0_us:.2f} us, {len(pts)} rows"
          f"{', fwd derived from fwd+bwd' if fwd_over_fwdbwd else ''}): attention_peak_fraction = "
          f"{frac:.4f}; |time error| median {errs[len(errs) // 2] * 100:.1f}%, "
          f"max {errs[-1] * 100:.1f}%")
    return frac


def fwd_ratio(rows, gpu):
    """fwd TFLOP/s / fwd+bwd TFLOP/s per (causal, head_dim, seq) on `gpu`."""
    by = {}
    for r in rows:
        if r["benchmark"] == "attention_kernel" and r["gpu"] == gpu:
            by[(r["causal"], int(r["head_dim"]), int(r["seq"]), r["pass"])] = float(r["value"])
    return {
        (c, d, s): by[(c, d, s, "fwd")] / by[(c, d, s, "fwd+bwd")]
        for (c, d, s, p) in by
        if p == "fwd"
    }


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    data = sys.argv[1] if len(sys.argv) > 1 else os.path.join(
        here, "..", "..", "shared", "data", "validation")
    micro = load(os.path.join(data, "hardware_microbench.csv"))
    attn = load(os.path.join(data, "attention_fa2.csv"))
    ratio = fwd_ratio(attn, "a100-sxm-80gb")
    gpus = ("a100-sxm-80gb", "h100-sxm", "h200-sxm")

    def gemm_fits(quiet):
        out = {}
        for gpu in gpus:
            frac, t0 = fit_gemm(micro, gpu, quiet)
            prec = "fp16" if gpu.startswith("a100") else "fp8"
            out[gpu] = (frac, PEAK_TFLOPS[(gpu, prec)] * 1e12, t0, fit_hbm_fraction(micro, gpu))
        return out

    # Tile edge and exponent are shared by all GPUs: for each candidate tile, (a, b) per GPU from
    # the square shapes, then p from the non-square ones; keep the tile whose fit leaves the
    # smallest squared relative error over every GEMM row.
    scores = []
    for tile in TILE_CANDIDATES:
        GEMM_TILE[0] = tile
        fits = gemm_fits(True)
        p, sse_nonsq, _ = fit_roofline_exponent(micro, fits)
        ROOFLINE_P[0] = p
        sse_sq = square_sse(micro, fits)
        scores.append((sse_nonsq + sse_sq, tile, p))
        print(f"gemm_tile {tile:.0f}: roofline_exponent {p:.2f}, squared relative error "
              f"{sse_nonsq + sse_sq:.4f}")
    _, tile, p = min(scores)
    GEMM_TILE[0] = tile
    ROOFLINE_P[0] = p
    print(f"gemm_tile = {tile:.0f}")
    fits = {}
    for gpu in gpus:
        print(gpu)
        frac, t0 = fit_gemm(micro, gpu)
        prec = "fp16" if gpu.startswith("a100") else "fp8"
        fits[gpu] = (frac, PEAK_TFLOPS[(gpu, prec)] * 1e12, t0, fit_hbm_fraction(micro, gpu))
        fit_hbm(micro, gpu)
        fit_allreduce(micro, gpu)
        if gpu == "a100-sxm-80gb":
            fit_attention(attn, gpu, t0)
        elif gpu == "h100-sxm":
            fit_attention(attn, gpu, t0, ratio)
    best, _, pts = fit_roofline_exponent(micro, fits)
    report_roofline(fits, best, pts)


if __name__ == "__main__":
    main()
