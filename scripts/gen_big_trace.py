#!/usr/bin/env python3
"""Builds a large synthetic Kineto trace by replicating a sample trace in time.

    python3 scripts/gen_big_trace.py SRC.json.gz OUT.json --min-bytes 1100000000

Standard library only. Each copy k of SRC's events is shifted by k × (SRC's time extent + 1 ms)
and its ids (`args.correlation`, `args.External id`, flow `id`, `ProfilerStep#N`) are offset so
that copies never share an id; metadata (`distributedInfo`, `deviceProperties`, ...) is written
once. Copies are written until OUT holds at least --min-bytes of JSON. Used for the reader's
speed and memory figures in docs/trace.md; never write OUT into the repository.
"""
import argparse
import gzip
import json
import re
import sys


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("src")
    ap.add_argument("out")
    ap.add_argument("--min-bytes", type=int, default=1_100_000_000)
    a = ap.parse_args()
    opener = gzip.open if a.src.endswith(".gz") else open
    with opener(a.src, "rt") as f:
        doc = json.load(f)
    events = doc.pop("traceEvents")
    ts = [float(e["ts"]) for e in events if isinstance(e.get("ts"), (int, float))]
    extent = max(ts) - min(ts) + 1000.0
    max_corr = max(
        [int(e.get("args", {}).get("correlation", 0)) for e in events]
        + [int(e["id"]) for e in events if isinstance(e.get("id"), int)]
        + [0]
    ) + 1
    max_ext = max([int(e.get("args", {}).get("External id", 0)) for e in events] + [0]) + 1
    steps = [int(m.group(1)) for e in events for m in [re.match(r"ProfilerStep#(\d+)", e.get("name", ""))] if m]
    step_span = (max(steps) - min(steps) + 1) if steps else 0
    templates = []
    for e in events:
        if e.get("ph") == "M":
            continue
        templates.append(e)
    written = 0
    with open(a.out, "w") as out:
        head = json.dumps(doc)[1:-1]
        out.write("{" + head + (", " if head else "") + '"traceEvents": [\n')
        meta = [json.dumps(e) for e in events if e.get("ph") == "M"]
        out.write(",\n".join(meta))
        first = not meta
        k = 0
        while written < a.min_bytes:
            shift = k * extent
            parts = []
            for e in templates:
                c = dict(e)
                if isinstance(c.get("ts"), (int, float)):
                    c["ts"] = round(c["ts"] + shift, 3)
                if isinstance(c.get("id"), int):
                    c["id"] = c["id"] + k * max_corr
                if "args" in c:
                    args = dict(c["args"])
                    if isinstance(args.get("correlation"), int):
                        args["correlation"] += k * max_corr
                    if isinstance(args.get("External id"), int):
                        args["External id"] += k * max_ext
                    c["args"] = args
                if step_span and c.get("name", "").startswith("ProfilerStep#"):
                    n = int(c["name"].split("#")[1])
                    c["name"] = f"ProfilerStep#{n + k * step_span}"
                parts.append(json.dumps(c))
            chunk = ",\n".join(parts)
            out.write(("" if first else ",\n") + chunk)
            first = False
            written += len(chunk) + 2
            k += 1
            sys.stderr.write(f"\rcopies {k}, {written / 1e6:.0f} MB")
        out.write("\n]}\n")
    sys.stderr.write(f"\n{a.out}: {k} copies of {len(templates)} events\n")


if __name__ == "__main__":
    main()
