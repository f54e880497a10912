"""Whether measuring a sweep's counts passes in chunks (several points' device calls in one
profiler session pair) gives the figures one point a session gives, and what it saves.

    python bench/chunk_check.py [--grid seed/16] [--device cuda] [--points 48]

The points' wall passes run once; their counts passes then run four times on copies of the
same records, alternated: one point a session, chunks of ``SESSION_POINTS``, again each, then
each once more with peaks read off the allocated bytes (``/allocated``, against each other).
Prints JSON: per way against the first (``1/0``; ``1/1`` is the A/A): seconds; the points whose
host-work counts or SDPA backend differ (none expected); the paths whose peak memory differs;
the median signed and absolute change of each path's median device time per call.
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from mhabench.measure import compat, passes  # noqa: E402
from mhabench.measure.config import parse_grid  # noqa: E402
from mhabench.measure.protocol import PRESETS  # noqa: E402
from mhabench.measure.results import Result  # noqa: E402


def figures(results: list[Result]) -> dict[str, dict]:
    out = {}
    for r in results:
        out[r.point.label] = {
            "work": {p: {k: v for k, v in c.items() if k != "functions"}
                     for p, c in r.host_work.items()},
            "backend": r.sdpa_backend, "peak": dict(r.peak_mem),
            "device": {p: statistics.median(v) for p, v in r.device_calls.items() if v},
            "message": r.message}
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--grid", default="seed/16")
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--points", type=int, default=48)
    args = ap.parse_args()
    dtype = "fp16" if args.device.startswith("cuda") else "fp32"
    points = parse_grid(args.grid, dtype, args.device).points[:args.points]
    proto = PRESETS["default"]
    records = [passes.wall_pass(p, proto, extras=False).record() for p in points]
    chunk = passes.SESSION_POINTS
    stat = compat.MEMORY_STAT
    ways = [(1, 0), (chunk, 0), (1, 1), (chunk, 1), (1, "allocated"), (chunk, "allocated")]
    got, seconds = {}, {}
    for size, trial in ways:
        passes.SESSION_POINTS = size
        compat.MEMORY_STAT = "allocated_bytes" if trial == "allocated" else stat
        passes._SERVED.clear()  # each way guesses the backends from its own points
        results = [Result.of_record(r) for r in records]
        t0 = time.perf_counter()
        for _ in passes.counts_passes(results, proto):
            pass
        seconds[(size, trial)] = time.perf_counter() - t0
        got[(size, trial)] = figures(results)
    passes.SESSION_POINTS, compat.MEMORY_STAT = chunk, stat
    out = {"python": sys.version.split()[0], "points": len(points), "chunk": chunk,
           "memory_stat": stat, "ways": {}}
    for way in ways:
        fig = got[way]
        base = got[(1, way[1] if way[1] == "allocated" else 0)]
        changes = [fig[lab]["device"][p] / v - 1 for lab, b in base.items()
                   for p, v in b["device"].items() if v > 0 and p in fig[lab]["device"]]
        out["ways"][f"{way[0]}/{way[1]}"] = {
            "seconds": round(seconds[way], 2),
            "work_differs": [lab for lab in base if fig[lab]["work"] != base[lab]["work"]],
            "backend_differs": [lab for lab in base if fig[lab]["backend"] != base[lab]["backend"]],
            "peak_differs": sum(fig[lab]["peak"].get(p) != v for lab, b in base.items()
                                for p, v in b["peak"].items()),
            "peaks": sum(len(b["peak"]) for b in base.values()),
            "device_change_median": round(statistics.median(changes), 4) if changes else None,
            "device_abs_change_median": round(statistics.median(map(abs, changes)), 4)
            if changes else None,
            "messages": sorted({f["message"] for f in fig.values() if f["message"]}),
        }
    print(json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
