"""Where a window's time goes on a GPU host: µs per call against calls per window, in one process.

Per point of ``--grid`` (host-bound points by default), after a warm-up of each path:

* ``reference``: the reference script's own timing of the module's call (two calls, a
  synchronisation, 100 calls between two events, a synchronisation), fast then slow;
* ``rotation``: windows of ``n`` calls (``--calls``) of each path in turn, as
  :func:`mhabench.measure.timing.wall_rounds` times them (a synchronisation before and after);
* ``lead_in``: the same windows with one untimed call of the path issued just before the first
  event (the window then starts in the path's steady state, not after an idle device);
* ``per_call``: host µs of each call of a 30-call window after a synchronisation (no
  synchronisation between calls), to see whether the first calls after one are the slow ones.

Per path and window length, the median µs per call over ``--reps`` repetitions; then a line
fit ``n * us_per_call = fixed + n * per_call``, whose ``fixed`` is the cost a window pays once.
Writes ``--out`` (JSON) and prints a summary.
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import torch  # noqa: E402

from mhabench.measure import compat  # noqa: E402
from mhabench.measure.config import parse_grid  # noqa: E402
from mhabench.measure.inputs import build  # noqa: E402
from mhabench.measure.passes import active_paths  # noqa: E402
from mhabench.measure.timing import Clock  # noqa: E402

CLOCK = Clock("cuda")
GRID = "seed;batch=16,64,256;seq=64,256;embed=1024;b=1,61"


def window(path, n: int, lead_in: int = 0) -> tuple[float, float]:
    """(device-timeline µs per call between the events, as the sweep times a window; host µs
    per call of the whole window, synchronisations included)."""
    h0 = time.perf_counter_ns()
    dev_us = CLOCK.window(path, n, lead_in)
    return dev_us, (time.perf_counter_ns() - h0) / 1000.0 / (n + lead_in)


def per_call_host(path, n: int = 30) -> list[float]:
    out = []
    with path.context():
        torch.cuda.synchronize()
        for _ in range(n):
            t0 = time.perf_counter_ns()
            path.call()
            out.append((time.perf_counter_ns() - t0) / 1000.0)
        torch.cuda.synchronize()
    return out


def reference_style(inp) -> dict[str, float]:
    """The reference's timing of the module's own call, fast then slow (100 calls a window)."""
    m, q, p, kpm = inp.mha, inp.nested, inp.padded, ~inp.mask

    def bench(f):
        f()
        f()
        torch.cuda.synchronize()
        s, e = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        s.record()
        for _ in range(100):
            f()
        e.record()
        torch.cuda.synchronize()
        return s.elapsed_time(e) * 1000.0 / 100

    with compat.sdpa_without_math(), torch.inference_mode():
        fast = bench(lambda: m(q, q, q, need_weights=False))
    slow = bench(lambda: m(p, p, p, key_padding_mask=kpm, need_weights=False))
    return {"fast": fast, "slow": slow}


def fit(ns: list[int], us: list[float]) -> dict[str, float]:
    """Least squares of ``n * us = fixed + n * per_call``."""
    tot = [n * u for n, u in zip(ns, us)]
    mn, mt = statistics.fmean(ns), statistics.fmean(tot)
    sxx = sum((n - mn) ** 2 for n in ns)
    slope = sum((n - mn) * (t - mt) for n, t in zip(ns, tot)) / sxx
    return {"fixed_us": mt - slope * mn, "per_call_us": slope}


def probe_point(point, calls: list[int], reps: int) -> dict:
    inp = build(point)
    paths = active_paths(inp)
    for path in paths.values():
        for _ in range(5):
            path.once()
    torch.cuda.synchronize()
    res = {"label": point.label, "reference": [], "rotation": {}, "lead_in": {}, "host": {},
           "per_call": {}}
    for kind, lead in (("rotation", 0), ("lead_in", 1)):
        for n in calls:
            for name in paths:
                res[kind].setdefault(name, {})[str(n)] = []
                res["host"].setdefault(f"{kind}:{name}", {})[str(n)] = []
    for r in range(reps):
        res["reference"].append(reference_style(inp))
        for kind, lead in (("rotation", 0), ("lead_in", 1)):
            for n in calls:
                names = list(paths) if r % 2 == 0 else list(paths)[::-1]
                for name in names:
                    dev_us, host_us = window(paths[name], n, lead)
                    res[kind][name][str(n)].append(dev_us)
                    res["host"][f"{kind}:{name}"][str(n)].append(host_us)
        for name in paths:
            res["per_call"].setdefault(name, []).append(per_call_host(paths[name]))
    return res


def summarise(points: list[dict], calls: list[int]) -> dict:
    med = statistics.median
    out = {}
    for name in ("fast", "slow"):
        row = {}
        for kind in ("rotation", "lead_in"):
            by_n = {n: [] for n in calls}   # ours / reference, per point
            fixed = []
            for p in points:
                ref = med(r[name] for r in p["reference"])
                us = [med(p[kind][name][str(n)]) for n in calls]
                for n, u in zip(calls, us):
                    by_n[n].append(u / ref)
                fixed.append(fit(calls, us)["fixed_us"])
            row[kind] = {"ours_over_reference_by_calls": {n: round(med(v), 3) for n, v in by_n.items()},
                         "fixed_us_per_window_median": round(med(fixed), 1)}
        first = [med(c[0] for c in p["per_call"][name]) for p in points]
        rest = [med(med(c[5:]) for c in p["per_call"][name]) for p in points]
        row["per_call_host_first_over_rest"] = round(med(f / r for f, r in zip(first, rest)), 3)
        row["per_call_host_first_minus_rest_us"] = round(med(f - r for f, r in zip(first, rest)), 1)
        out[name] = row
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--grid", default=GRID)
    ap.add_argument("--calls", default="1,3,10,30,100")
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--out", required=True)
    args = ap.parse_args(argv)
    calls = [int(x) for x in args.calls.split(",")]
    pts = parse_grid(args.grid, "float16", "cuda").points
    t0 = time.perf_counter()
    points = [probe_point(p, calls, args.reps) for p in pts]
    doc = {"grid": args.grid, "calls": calls, "seconds": time.perf_counter() - t0,
           "summary": summarise(points, calls), "points": points}
    Path(args.out).write_text(json.dumps(doc))
    print(json.dumps(doc["summary"], indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
