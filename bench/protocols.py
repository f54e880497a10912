"""Wall-time protocols compared by A/A evidence: each candidate records the grid in fresh
processes, interleaved with the other candidates and the reference script, in one go.

    python bench/protocols.py --stride 8 --runs 3 --reference REF --out OUT [--candidates a,d,e]

Candidates (mhabench.measure.protocol.MODES; docs/protocols.md has the figures):
  a     rotation: one call of each path per round, rotating order, one sync at the end (50 ms)
  a40   as a with 40 ms per point and 10 rounds at least (15 for a)
  lean  as a with 10 rounds at least and one 5 ms warm-up for the paths together, taken in turn
  b     blocks of 5 synchronised calls of one path, blocks interleaved (50 ms)
  c     windows of 10 calls between two events, windows interleaved (50 ms)
  d     long: 2 rounds of one window per path (>= 20 calls), order reversed in round 2 (50 ms)
  d100  as d with 100 ms per point
  e     as d, replicated over 3 fresh processes of 17 ms each, per-point medians pooled

Per candidate: the spread (max - min) / median between its records at the median point and
p90, for the wall speedup, wall_fast_us, wall_slow_us and the device speedup; how many points
gave identical host-work counts in every record; agreement of fast and slow wall times with the
reference's median at the points where the reference's own speedup spread is under 5%; seconds
per record; and whether the warm-up was long enough, from each record's own rounds: per point
and path, the median of its first 5 rounds over the median of the rest, minus 1 (``early``: a
warm-up too short leaves the first rounds slower; the median and p90 over every point, path
and record). Every record's JSON and a summary JSON go under --out.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

from mhabench.measure.config import named_grid, stride  # noqa: E402
from mhabench.measure.stats import spread  # noqa: E402

CANDIDATES = {
    "a": ({"mode": "rotation", "target_ms": 50.0, "min_rounds": 15}, 1),
    "a40": ({"mode": "rotation", "target_ms": 40.0, "min_rounds": 10}, 1),
    "lean": ({"mode": "rotation", "target_ms": 50.0, "min_rounds": 10, "warmup_shared": True}, 1),
    "b": ({"mode": "blocks"}, 1),
    "c": ({"mode": "windows"}, 1),
    "d": ({"mode": "long"}, 1),
    "d100": ({"mode": "long", "target_ms": 100.0}, 1),
    "e": ({"mode": "long", "target_ms": 50.0 / 3}, 3),
}
FIGURES = ("speedup", "wall_fast_us", "wall_slow_us", "device_speedup", "speedup_fair")


def worker(args) -> int:
    """One fresh process: sweep the points with one protocol, write the JSON."""
    import torch

    from mhabench.measure.results import json_doc
    from mhabench.measure.sweep import run_meta, sweep
    from mhabench.measure.protocol import Protocol
    points = stride(named_grid(args.grid, args.dtype, args.device), args.stride)
    t0 = time.perf_counter()
    if args.reference:
        from precision import load_reference, reference_run
        doc = {"reference": reference_run(load_reference(args.reference), points)}
    else:
        knobs = json.loads(args.protocol)
        proto = Protocol(**knobs)
        res = sweep(points, proto, extras=False)
        meta = run_meta(args.device, proto, args.grid)
        meta.update(threads=torch.get_num_threads(), affinity=sorted(os.sched_getaffinity(0)),
                    loadavg=os.getloadavg())
        doc = json_doc(res, meta)
    doc["seconds"] = time.perf_counter() - t0
    Path(args.out).write_text(json.dumps(doc))
    return 0


def run_worker(extra: list[str], out: Path, base: list[str]) -> float:
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, __file__, "--worker", "--out", str(out), *base, *extra],
                          capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"worker failed: {proc.stderr[-2000:]}")
    return time.perf_counter() - t0


EARLY = 5


def early_excess(doc: dict) -> list[float]:
    """Per point and path of one record: median(first EARLY rounds) / median(the rest) - 1."""
    out = []
    for r in doc["results"]:
        for samples in (r.get("rounds_us") or {}).values():
            if len(samples) >= 2 * EARLY:
                out.append(float(np.median(samples[:EARLY]) / np.median(samples[EARLY:]) - 1))
    return out


def metrics_of(doc: dict) -> dict[str, dict]:
    return {r["label"]: {**r["metrics"], "_host": r.get("host_work", {})}
            for r in doc["results"] if r["status"] == "ok"}


def pooled(docs: list[dict]) -> dict[str, dict]:
    """One record from several processes: per point, the median of each figure."""
    parts = [metrics_of(d) for d in docs]
    out = {}
    for k in parts[0]:
        if all(k in p for p in parts):
            out[k] = {f: float(np.median([p[k][f] for p in parts
                                          if p[k].get(f) is not None]))
                      if any(p[k].get(f) is not None for p in parts) else math.nan
                      for f in FIGURES}
            out[k]["_host"] = parts[0][k]["_host"]
    return out


def spreads_of(records: list[dict], fig: str) -> list[float]:
    out = []
    for k in records[0]:
        vals = [r[k].get(fig) for r in records if k in r]
        if len(vals) == len(records) and all(v is not None and math.isfinite(v) for v in vals):
            out.append(spread(vals))
    return out


def q(values, p):
    return float(np.quantile(values, p)) if values else math.nan


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--protocol", default="{}", help=argparse.SUPPRESS)
    ap.add_argument("--reference", default=None, help="the reference script (CUDA only)")
    ap.add_argument("--stride", type=int, default=8)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--grid", default="seed")
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--dtype", default="float16")
    ap.add_argument("--candidates", default="a,c,d,d100,e")
    ap.add_argument("--out", default="protocols-out")
    args = ap.parse_args()
    if args.worker:
        return worker(args)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    base = ["--stride", str(args.stride), "--grid", args.grid, "--device", args.device,
            "--dtype", args.dtype]
    names = [c for c in args.candidates.split(",") if c]
    records: dict[str, list[dict]] = {c: [] for c in names}
    cost: dict[str, list[float]] = {c: [] for c in names}
    early: dict[str, list[float]] = {c: [] for c in names}
    refs, ref_cost = [], []
    for i in range(args.runs):
        for c in names:
            knobs, procs = CANDIDATES[c]
            docs, seconds = [], 0.0
            for j in range(procs):
                f = out / f"{c}-{i}-{j}.json"
                seconds += run_worker(["--protocol", json.dumps(knobs)], f, base)
                docs.append(json.loads(f.read_text()))
                early[c] += early_excess(docs[-1])
            records[c].append(pooled(docs) if procs > 1 else metrics_of(docs[0]))
            cost[c].append(seconds)
            print(f"run {i} {c}: {seconds:.1f} s", flush=True)
        if args.reference:
            f = out / f"reference-{i}.json"
            ref_cost.append(run_worker(["--reference", args.reference], f, base))
            refs.append(json.loads(f.read_text())["reference"])
            print(f"run {i} reference: {ref_cost[-1]:.1f} s", flush=True)
    summary = {"points": len(stride(named_grid(args.grid, args.dtype, args.device), args.stride)),
               "runs": args.runs, "candidates": {}}
    steady = []
    if refs:
        steady = [k for k in refs[0] if all(k in r for r in refs)
                  and spread([r[k]["speedup"] for r in refs]) < 0.05]
        summary["reference"] = {f: [q(spreads_of(refs, f), 0.5), q(spreads_of(refs, f), 0.9)]
                                for f in ("speedup", "wall_fast_us", "wall_slow_us")}
        summary["reference"]["steady_points"] = len(steady)
        summary["reference"]["seconds"] = ref_cost
    for c in names:
        recs = records[c]
        row = {f: [q(spreads_of(recs, f), 0.5), q(spreads_of(recs, f), 0.9)] for f in FIGURES}
        labels = [k for k in recs[0] if all(k in r for r in recs)]
        row["host_work_identical"] = [sum(all(r[k]["_host"] == recs[0][k]["_host"] for r in recs)
                                          for k in labels), len(labels)]
        for fig in ("wall_fast_us", "wall_slow_us"):
            devs = []
            for k in steady:
                if all(k in r for r in recs):
                    mine = float(np.median([r[k][fig] for r in recs]))
                    theirs = float(np.median([r[k][fig] for r in refs]))
                    devs.append(abs(mine / theirs - 1))
            row[f"agree_{fig}"] = [int(sum(d <= 0.10 for d in devs)), len(devs)]
        row["seconds"] = cost[c]
        row["early"] = [q(early[c], 0.5), q(early[c], 0.9)]
        summary["candidates"][c] = row
    (out / "summary.json").write_text(json.dumps(summary, indent=1))
    head = f"{'cand':5s} " + " ".join(f"{f[:14]:>15s}" for f in FIGURES)
    print(head + "   host=  agree_fast agree_slow  s/record  early")
    for c, row in summary["candidates"].items():
        cells = " ".join(f"{row[f][0]:6.1%}/{row[f][1]:6.1%}"[:15].rjust(15) for f in FIGURES)
        print(f"{c:5s} {cells}   {row['host_work_identical'][0]}/{row['host_work_identical'][1]}"
              f"  {row['agree_wall_fast_us'][0]}/{row['agree_wall_fast_us'][1]}"
              f"  {row['agree_wall_slow_us'][0]}/{row['agree_wall_slow_us'][1]}"
              f"  {np.mean(row['seconds']):.1f}  {row['early'][0]:+.1%}/{row['early'][1]:+.1%}")
    if refs:
        r = summary["reference"]
        print(f"ref   {r['speedup'][0]:.1%}/{r['speedup'][1]:.1%} fast {r['wall_fast_us'][0]:.1%}/"
              f"{r['wall_fast_us'][1]:.1%} slow {r['wall_slow_us'][0]:.1%}/{r['wall_slow_us'][1]:.1%}"
              f" steady {r['steady_points']}  {np.mean(r['seconds']):.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
