"""Where the backend split's time goes: host seconds per backend call inside a device-time
session, successful and refused, on a strided seed grid (CUDA).

    python bench/probe_split.py [--stride 40]
"""
from __future__ import annotations

import argparse
import sys
import time
import warnings
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from mhabench.measure.config import named_grid, stride  # noqa: E402
from mhabench.measure.inputs import build  # noqa: E402
from mhabench.measure.paths import backend_paths  # noqa: E402
from mhabench.measure.sweep import active_paths  # noqa: E402
from mhabench.measure.timing import Clock, DeviceTimes  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--stride", type=int, default=40)
    args = ap.parse_args()
    spent, outcome = defaultdict(float), defaultdict(lambda: [0, 0])
    plain = defaultdict(float)
    points = stride(named_grid("seed", "fp16", "cuda"), args.stride)
    for p in points:
        inp = build(p)
        paths = active_paths(inp)
        paths["fast"].once()
        plain["fast (one timed call)"] += Clock(p.device).once(paths["fast"]) / 1e6
        with DeviceTimes(p.device) as dt:
            for name, path in backend_paths(paths["fast"]).items():
                t0 = time.perf_counter()
                try:
                    with warnings.catch_warnings():
                        warnings.simplefilter("ignore")
                        dt.record(name, path, 1)
                    outcome[name][0] += 1
                except RuntimeError:
                    outcome[name][1] += 1
                spent[name] += time.perf_counter() - t0
    print(f"{len(points)} points")
    for name, s in spent.items():
        ok, refused = outcome[name]
        print(f"{name:16s} {s * 1e3 / len(points):8.2f} ms/point  served {ok}  refused {refused}")
    for name, s in plain.items():
        print(f"{name:16s} {s * 1e3 / len(points):8.2f} ms/point")
    return 0


if __name__ == "__main__":
    sys.exit(main())
