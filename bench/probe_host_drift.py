"""On what time scale does the host's speed move? Wall time of host-bound points, as a series.

    python bench/probe_host_drift.py [--seconds 20] [--block 5] [--out FILE]

Builds a few points of the seed grid whose fast path is host-bound, then for ``--seconds``
cycles over them, timing ``--block`` interleaved rounds (fast, slow) per visit with the
sweep's own clock. Prints, per point, the median fast and slow time per call over the whole
run and the spread of their medians over 1-second windows and over the run's two halves; the
correlation of the points' fast-time series tells whether they move together (the host) or
apart. After each visit it also times a fixed pure-Python loop (the host CPU's speed) and one
tiny kernel launch with its synchronisation (the launch round trip): the fast time's
correlation with each says which of them it follows. Run it several times in a row to see the
level move between processes.
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from mhabench.measure.config import Point  # noqa: E402
from mhabench.measure.inputs import build  # noqa: E402
from mhabench.measure.stats import spread  # noqa: E402
from mhabench.measure.sweep import active_paths  # noqa: E402
from mhabench.measure.timing import Clock  # noqa: E402

#: Host-bound points of the seed grid (wall speedup moved most between runs on an H100).
POINTS = [(128, 128, 1024, 16, 33), (16, 64, 512, 8, 1), (64, 256, 512, 16, 21),
          (32, 512, 1024, 8, 45)]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=float, default=20.0)
    ap.add_argument("--block", type=int, default=5)
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--out", default=None)
    args = ap.parse_args()
    dtype = "fp16" if args.device.startswith("cuda") else "fp32"
    points = [Point(*p, dtype=dtype, device=args.device) for p in POINTS]
    clock = Clock(args.device)
    paths = {}
    for p in points:
        pa = active_paths(build(p))
        for name in ("fast", "slow"):
            for _ in range(20):
                clock.once(pa[name])
        paths[p.label] = (pa["fast"], pa["slow"])
    series = {k: [] for k in paths}  # (t, fast us, slow us, python loop us, launch us)
    tiny = torch.zeros(1, device=args.device)
    t_start = time.perf_counter()
    while time.perf_counter() - t_start < args.seconds:
        for label, (fast, slow) in paths.items():
            times = clock.calls([fast, slow] * args.block)
            t0 = time.perf_counter()
            sum(range(5000))
            t1 = time.perf_counter()
            tiny.add_(1)
            clock.sync()
            t2 = time.perf_counter()
            series[label].append((t2 - t_start, statistics.median(times[0::2]),
                                  statistics.median(times[1::2]), (t1 - t0) * 1e6,
                                  (t2 - t1) * 1e6))
    report = {}
    for label, rows in series.items():
        t, f, s, loop, launch = (np.array(c) for c in zip(*rows))
        win = [(f[(t >= a) & (t < a + 1)], s[(t >= a) & (t < a + 1)])
               for a in range(int(args.seconds))]
        win = [(np.median(a), np.median(b)) for a, b in win if len(a)]
        half = len(f) // 2
        report[label] = {
            "visits": len(f), "fast_us": float(np.median(f)), "slow_us": float(np.median(s)),
            "fast_1s_spread": spread([w[0] for w in win]),
            "slow_1s_spread": spread([w[1] for w in win]),
            "ratio_1s_spread": spread([w[1] / w[0] for w in win]),
            "fast_halves": [float(np.median(f[:half])), float(np.median(f[half:]))],
            "fast_lag1_autocorr": float(np.corrcoef(f[:-1], f[1:])[0, 1]),
            "loop_us": float(np.median(loop)), "launch_us": float(np.median(launch)),
            "fast_vs_loop_corr": float(np.corrcoef(f, loop)[0, 1]),
            "fast_vs_launch_corr": float(np.corrcoef(f, launch)[0, 1]),
        }
    fast = np.array([[r[1] for r in rows] for rows in series.values()])
    n = min(len(r) for r in fast)
    corr = np.corrcoef(np.array([r[:n] for r in fast]))
    for label, r in report.items():
        print(f"{label:32s} fast {r['fast_us']:8.1f} us  slow {r['slow_us']:8.1f} us  "
              f"1s-window spread fast {r['fast_1s_spread']:6.1%} slow {r['slow_1s_spread']:6.1%} "
              f"ratio {r['ratio_1s_spread']:6.1%}  halves {r['fast_halves'][0]:.1f}/"
              f"{r['fast_halves'][1]:.1f}  lag-1 autocorr {r['fast_lag1_autocorr']:.2f}  "
              f"loop {r['loop_us']:.0f} us (corr {r['fast_vs_loop_corr']:.2f})  launch "
              f"{r['launch_us']:.0f} us (corr {r['fast_vs_launch_corr']:.2f})")
    off = corr[~np.eye(len(corr), dtype=bool)]
    print(f"correlation of the points' fast-time series: median {np.median(off):.2f}")
    if args.out:
        Path(args.out).write_text(json.dumps({"report": report, "series": series}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
