#!/usr/bin/env python3
"""Reference numbers from Holistic Trace Analysis (HTA) for `bottleneck trace --compat hta`.

HTA is a test-data tool here, never a project dependency. Run it in a throwaway virtualenv:

    python3 -m venv /work/venv-hta && /work/venv-hta/bin/pip install holistictraceanalysis
    /work/venv-hta/bin/python scripts/hta_reference.py \
        > crates/trace/tests/data/hta_reference.json

For every sample trace in ../shared/data/traces/ it records HTA's temporal breakdown
(idle, compute, non-compute, kernel time in microseconds; HTA's default step window, which
drops the last ProfilerStep), its communication/computation overlap percentage and its
kernel-type breakdown (`get_gpu_kernel_breakdown(include_memory_kernels=True)`, µs per label),
plus HTA's version; where HTA raises, the error. The Rust test `tests/hta_parity.rs` compares
`bottleneck trace --compat hta` to this file; `scripts/hta_compare.py` prints the table. With `--time FILE` it instead times HTA's load + temporal breakdown + overlap on FILE
(used for the side-by-side speed comparison in docs/trace.md).
"""
import json
import math
import os
import shutil
import sys
import tempfile
import time
import logging

logging.disable(logging.CRITICAL)

from hta.trace_analysis import TraceAnalysis  # noqa: E402
from importlib.metadata import version  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TRACES = os.path.join(ROOT, "..", "shared", "data", "traces")


def analyse(path):
    d = tempfile.mkdtemp(prefix="hta-ref-")
    try:
        shutil.copy(path, d)
        t0 = time.perf_counter()
        ta = TraceAnalysis(trace_dir=d)
        t1 = time.perf_counter()
        tb = ta.get_temporal_breakdown(visualize=False)
        t2 = time.perf_counter()
        try:
            ov = ta.get_comm_comp_overlap(visualize=False)
            # HTA 0.5 returns only the rounded percentage (two decimals).
            overlap = float(ov["comp_comm_overlap_pctg"].iloc[0])
        except Exception as e:  # HTA raises on traces without communication kernels
            overlap = None
            sys.stderr.write(f"{os.path.basename(path)}: overlap failed: {e!r}\n")
        t3 = time.perf_counter()
        try:
            kt, _ = ta.get_gpu_kernel_breakdown(
                visualize=False, include_memory_kernels=True
            )
            kernel_types = {
                str(r["kernel_type"]): float(r["sum"]) for _, r in kt.iterrows()
            }
        except Exception as e:
            kernel_types = None
            sys.stderr.write(f"{os.path.basename(path)}: kernel breakdown failed: {e!r}\n")
        row = tb.iloc[0]
        if overlap is not None and math.isnan(overlap):
            overlap = None
        return {
            "idle_us": float(row["idle_time(us)"]),
            "compute_us": float(row["compute_time(us)"]),
            "non_compute_us": float(row["non_compute_time(us)"]),
            "kernel_time_us": float(row["kernel_time(us)"]),
            "comm_comp_overlap_pctg": overlap,
            "kernel_type_us": kernel_types,
            "hta_seconds": {"load": t1 - t0, "temporal": t2 - t1, "overlap": t3 - t2},
        }
    finally:
        shutil.rmtree(d, ignore_errors=True)


def main():
    if len(sys.argv) == 3 and sys.argv[1] == "--time":
        r = analyse(sys.argv[2])
        json.dump({"hta_version": version("HolisticTraceAnalysis"), **r}, sys.stdout, indent=1)
        print()
        return
    out = {
        "hta_version": version("HolisticTraceAnalysis"),
        "command": "/work/venv-hta/bin/python scripts/hta_reference.py > crates/trace/tests/data/hta_reference.json",
        "traces": {},
    }
    for name in sorted(os.listdir(TRACES)):
        if not name.endswith(".json.gz"):
            continue
        try:
            r = analyse(os.path.join(TRACES, name))
        except Exception as e:  # record HTA's failures too: they are part of the comparison
            sys.stderr.write(f"{name}: HTA failed: {e!r}\n")
            out["traces"][name] = {"hta_error": repr(e)[:200]}
            continue
        r.pop("hta_seconds")
        out["traces"][name] = r
    json.dump(out, sys.stdout, indent=1, sort_keys=True)
    print()


if __name__ == "__main__":
    main()
