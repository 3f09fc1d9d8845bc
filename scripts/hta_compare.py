#!/usr/bin/env python3
"""Prints our `--compat hta` figures next to HTA's reference (crates/trace/tests/data/hta_reference.json).

    python3 scripts/hta_compare.py [path/to/bottleneck]

Standard library only. The Rust test `hta_parity` checks the same figures within 1%.
"""
import json
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TRACES = os.path.join(ROOT, "..", "shared", "data", "traces")
REF = os.path.join(ROOT, "crates", "trace", "tests", "data", "hta_reference.json")


def main():
    exe = sys.argv[1] if len(sys.argv) > 1 else os.path.join(ROOT, "target", "release", "bottleneck")
    ref = json.load(open(REF))
    print(f"HTA {ref['hta_version']}")
    print("| trace | metric | ours | HTA | diff |")
    print("| --- | --- | --- | --- | --- |")
    for name, r in sorted(ref["traces"].items()):
        if "hta_error" in r:
            print(f"| {name} | HTA fails: {r['hta_error'][:60]} | | | |")
            continue
        out = subprocess.run([exe, "trace", os.path.join(TRACES, name), "--compat", "hta", "--json"],
                             capture_output=True, check=True).stdout
        o = json.loads(out)["ranks"][0]
        ours = {
            "kernel_time_us": o["span_s"] * 1e6,
            "idle_us": o["idle_s"] * 1e6,
            "compute_us": o["breakdown"]["computation_s"] * 1e6,
            "non_compute_us": (o["gpu_busy_s"] - o["breakdown"]["computation_s"]) * 1e6,
        }
        ov = o["comm_overlap_fraction"]
        rows = [(k, ours[k], r[k]) for k in ours]
        if r["comm_comp_overlap_pctg"] is not None:
            rows.append(("comm_comp_overlap_pctg", None if ov is None else 100 * ov, r["comm_comp_overlap_pctg"]))
        for k, v in sorted((r.get("kernel_type_us") or {}).items()):
            rows.append((f"kernel_type {k} (us)", (o.get("hta_kernel_types") or {}).get(k, 0.0) * 1e6, v))
        for k, w, h in rows:
            if w is None:
                d = "n/a"
            elif h == 0:
                d = "0" if abs(w) < 1e-9 else "inf"
            else:
                d = f"{100 * (w - h) / h:+.2f}%"
            ws = "null" if w is None else f"{w:.2f}"
            print(f"| {name} | {k} | {ws} | {h:.2f} | {d} |")


if __name__ == "__main__":
    main()
