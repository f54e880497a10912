"""What a profiler session costs per point, one session pair a point against one pair for
several points together, and whether the figures read from them agree.

    python bench/session_cost.py [--grid seed/16] [--device cuda] [--points 40] [--chunks 1,4,10,40]

Each way records, per point, ``calls`` labelled calls of each path in a kernel session and
one call of each in an ops session (the device pass without its extras). The ways are
alternated over two trials. Prints JSON: per chunk size and trial (``1/1``: one point a
session again, the A/A), against one point a session in the first trial: ms per point (both
trials) in all and in the sessions' start, stop and reading; the points whose host-work counts
differ (none expected); the median change and |change| of the median device time per call; how
many paths' peak memory is the same.
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from mhabench.measure import hostwork  # noqa: E402
from mhabench.measure.config import parse_grid  # noqa: E402
from mhabench.measure.inputs import build  # noqa: E402
from mhabench.measure.passes import active_paths  # noqa: E402
from mhabench.measure.timing import DeviceTimes  # noqa: E402


def sessions(device: str, group: list[tuple[int, dict]], calls: int) -> tuple[dict, dict, dict, dict]:
    """One kernel session and one ops session over ``group`` (point index, paths)."""
    with DeviceTimes(device) as dt:
        for i, paths in group:
            for name, path in paths.items():
                dt.record(f"{i}:{name}", path, calls)
    with DeviceTimes(device, ops=True) as hw:
        for i, paths in group:
            for name, path in paths.items():
                hw.record(f"{i}:{name}", path, 1)
    over = {k: dt.overhead_s[k] + hw.overhead_s[k] for k in dt.overhead_s}
    work = {lab: hostwork.summary(v, device=device.startswith("cuda"))
            for lab, v in hw.host_work.items()}
    return dt.per_call, work, over, dt.peak_mem


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--grid", default="seed/16")
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--points", type=int, default=40)
    ap.add_argument("--chunks", default="1,4,10,40")
    ap.add_argument("--calls", type=int, default=3)
    args = ap.parse_args()
    dtype = "fp16" if args.device.startswith("cuda") else "fp32"
    points = parse_grid(args.grid, dtype, args.device).points[:args.points]
    built = []
    for i, point in enumerate(points):
        paths = active_paths(build(point))
        for path in paths.values():
            path.once()
            path.once()
        built.append((i, paths))
    chunks = [int(c) for c in args.chunks.split(",")]
    seconds = {c: 0.0 for c in chunks}
    over = {c: {"start": 0.0, "stop": 0.0, "parse": 0.0} for c in chunks}
    figures: dict[tuple[int, int], tuple[dict, dict, dict]] = {}
    for trial in range(2):
        for c in (chunks if trial == 0 else chunks[::-1]):
            times, work, peaks = {}, {}, {}
            t0 = time.perf_counter()
            for k in range(0, len(built), c):
                t, w, o, m = sessions(args.device, built[k:k + c], args.calls)
                times.update(t)
                work.update(w)
                peaks.update(m)
                for key, v in o.items():
                    over[c][key] += v
            seconds[c] += time.perf_counter() - t0
            figures[(c, trial)] = (times, work, peaks)
    base_times, base_work, base_peaks = figures[(chunks[0], 0)]
    n = len(built) * 2
    out = {"python": sys.version.split()[0], "points": len(built), "calls": args.calls, "ways": {}}
    for c, trial in [(chunks[0], 1)] + [(c, t) for c in chunks[1:] for t in (0, 1)]:
        times, work, peaks = figures[(c, trial)]
        changes = [statistics.median(times[lab]) / statistics.median(v) - 1
                   for lab, v in base_times.items() if lab in times and statistics.median(v) > 0]
        out["ways"][f"{c}/{trial}"] = {
            "peak_equal": sum(peaks.get(lab) == v for lab, v in base_peaks.items()),
            "peaks": len(base_peaks),
            "device_change_signed_median": round(statistics.median(changes), 4) if changes else None,
            "ms_per_point": round(seconds[c] / n * 1e3, 2),  # both trials
            "overhead_ms_per_point": {k: round(v / n * 1e3, 2) for k, v in over[c].items()},
            "work_differs": sorted({lab.split(":")[0] for lab in base_work
                                    if work.get(lab) != base_work[lab]}),
            "device_change_median": round(statistics.median(map(abs, changes)), 4) if changes
            else None,
        }
    print(json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
