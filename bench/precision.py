"""Run-to-run precision, agreement with the reference, and cost, on one machine in one go.

    python bench/precision.py --runs 3 --stride 8 --out OUT [--reference path/to/reference.py]

Takes the seed grid with a stride (160 points for stride 8), sweeps it ``--runs`` times with
mhabench, optionally runs the reference script's own ``run`` on the same points as many times,
and prints per figure the spread (max - min) / median across runs at the median point and the
90th percentile. Writes every run's JSON and a summary JSON under ``--out``.
"""
from __future__ import annotations

import argparse
import importlib.util
import json
import math
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from mhabench.measure.config import named_grid, stride  # noqa: E402
from mhabench.measure.results import json_doc  # noqa: E402
from mhabench.measure.stats import spread  # noqa: E402
from mhabench.measure.sweep import run_meta, sweep  # noqa: E402
from mhabench.measure.protocol import Protocol  # noqa: E402

FIGURES = ("speedup", "device_speedup", "speedup_fair", "device_speedup_fair",
           "wall_fast_us", "wall_slow_us", "device_fast_us", "device_slow_us")


def load_reference(path: str):
    spec = importlib.util.spec_from_file_location("mha_reference", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def reference_run(mod, points) -> dict[str, dict[str, float]]:
    """The reference's own measurement of each point: {label: {slow, fast, speedup}}."""
    import torch
    out = {}
    for p in points:
        e = mod.run(p.beta_a, p.beta_b * 0.05, 100, p.batch_size, p.seq_len, p.embed_dim,
                    p.num_heads, "cuda", getattr(torch, p.dtype), p.block_size, p.seed)
        vals = list(e.values())
        out[p.label] = {"wall_slow_us": float(vals[5]), "wall_fast_us": float(vals[6]),
                        "speedup": float(vals[7])}
    return out


def spreads(runs: list[dict[str, dict[str, float]]], figure: str) -> list[float]:
    labels = [k for k in runs[0] if all(k in r for r in runs)]
    out = []
    for k in labels:
        vals = [r[k][figure] for r in runs]
        if all(v is not None and math.isfinite(v) for v in vals):
            out.append(spread(vals))
    return out


def summarise(name: str, values: list[float]) -> dict:
    if not values:
        return {"figure": name, "points": 0}
    return {"figure": name, "points": len(values), "median": float(np.median(values)),
            "p90": float(np.quantile(values, 0.9)), "max": float(np.max(values))}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--stride", type=int, default=8)
    ap.add_argument("--grid", default="seed")
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--dtype", default="float16")
    ap.add_argument("--out", default="precision-out")
    ap.add_argument("--reference", default=None, help="path of the reference script (CUDA only)")
    ap.add_argument("--min-rounds", type=int, default=None)
    ap.add_argument("--target-ms", type=float, default=None)
    ap.add_argument("--device-calls", type=int, default=None)
    ap.add_argument("--pin-cpu", default=None, metavar="CORE[,CORE...]")
    args = ap.parse_args()
    from mhabench.measure import host_setup  # the same process setup as mhabench run
    host_setup.apply(host_setup.default_threads(args.device), args.pin_cpu)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    knobs = {k: v for k, v in (("min_rounds", args.min_rounds), ("target_ms", args.target_ms),
                               ("device_calls", args.device_calls)) if v is not None}
    proto = Protocol(**knobs)
    points = stride(named_grid(args.grid, args.dtype, args.device), args.stride)
    ours, theirs, cost = [], [], {"ours_s": [], "reference_s": []}
    ref = load_reference(args.reference) if args.reference else None
    for i in range(args.runs):
        t0 = time.perf_counter()
        split = {}
        res = sweep(points, proto, cost=split)
        cost["ours_s"].append(time.perf_counter() - t0)
        cost.setdefault("ours_split_s", []).append(split)
        (out / f"ours-{i}.json").write_text(json.dumps(json_doc(res, run_meta(args.device, proto, args.grid))))
        ours.append({r.point.label: r.metrics() for r in res if r.status == "ok"})
        bad = [f"{r.point.label}: {r.status} {r.message}" for r in res if r.status != "ok"]
        print(f"run {i}: {len(points)} points in {cost['ours_s'][-1]:.1f} s {split}; failures: {len(bad)}",
              flush=True)
        for b in bad[:10]:
            print("  ", b)
        if ref is not None:
            t0 = time.perf_counter()
            theirs.append(reference_run(ref, points))
            (out / f"reference-{i}.json").write_text(json.dumps(theirs[-1]))
            cost["reference_s"].append(time.perf_counter() - t0)
            print(f"reference run {i}: {cost['reference_s'][-1]:.1f} s", flush=True)
    rows = [summarise(f, spreads(ours, f)) for f in FIGURES]
    if theirs:
        rows += [summarise(f"reference:{f}", spreads(theirs, f))
                 for f in ("speedup", "wall_fast_us", "wall_slow_us")]
    agreement = {}
    if theirs:
        steady = [k for k in theirs[0] if all(k in r for r in theirs)
                  and spread([r[k]["speedup"] for r in theirs]) < 0.05]
        for fig in ("wall_fast_us", "wall_slow_us"):
            devs = []
            for k in steady:
                if all(k in o for o in ours):
                    mine = float(np.median([o[k][fig] for o in ours]))
                    their = float(np.median([r[k][fig] for r in theirs]))
                    devs.append(abs(mine / their - 1))
            agreement[fig] = {"steady_points": len(steady), "compared": len(devs),
                              "within_10pct": int(sum(d <= 0.10 for d in devs)),
                              "median_dev": float(np.median(devs)) if devs else None,
                              "max_dev": float(np.max(devs)) if devs else None}
    summary = {"points": len(points), "runs": args.runs, "protocol": proto.__dict__,
               "spreads": rows, "agreement": agreement, "cost": cost}
    (out / "summary.json").write_text(json.dumps(summary, indent=1))
    print(f"{'figure':34s} {'points':>6s} {'median':>8s} {'p90':>8s} {'max':>8s}")
    for r in rows:
        if r["points"]:
            print(f"{r['figure']:34s} {r['points']:6d} {r['median']:8.2%} {r['p90']:8.2%} {r['max']:8.2%}")
    print(json.dumps({"agreement": agreement, "cost": cost}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
