"""Where a point's passes spend their time, function by function: the wall pass and the counts
pass of the first points of a grid, in this process, under ``cProfile``.

    python bench/pass_profile.py OUT_DIR [--grid seed/8] [--device cuda] [--points 40]

Writes OUT_DIR/pass-profile.txt (the functions by cumulative and by own time) and prints JSON:
the passes' cost split (``mhabench.measure.passes``' own keys) and seconds a point.
"""
from __future__ import annotations

import argparse
import cProfile
import io
import json
import pstats
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from mhabench.measure import passes  # noqa: E402
from mhabench.measure.config import parse_grid  # noqa: E402
from mhabench.measure.protocol import PRESETS  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("out")
    ap.add_argument("--grid", default="seed/8")
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--points", type=int, default=40)
    args = ap.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    dtype = "fp16" if args.device.startswith("cuda") else "fp32"
    points = parse_grid(args.grid, dtype, args.device).points[:args.points]
    proto = PRESETS["default"]
    passes.measure(points[0], proto)  # the process's first point: lazy loading, kept apart
    cost: dict = {}
    prof = cProfile.Profile()
    t0 = time.perf_counter()
    prof.enable()
    walls = [passes.wall_pass(p, proto, cost) for p in points]
    for _, spent in passes.counts_passes(walls, proto):  # in chunks, as a sweep runs them
        for k, v in spent.items():
            cost[k] = cost.get(k, 0.0) + v
    prof.disable()
    seconds = time.perf_counter() - t0
    text = io.StringIO()
    for order in ("cumulative", "tottime"):
        pstats.Stats(prof, stream=text).sort_stats(order).print_stats(45)
    (out / "pass-profile.txt").write_text(text.getvalue())
    print(json.dumps({"points": len(points), "seconds": round(seconds, 2),
                      "ms_per_point": round(seconds / len(points) * 1e3, 1),
                      "cost_s": cost}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
