"""What keeping a sweep's probes in order costs the worker, per sweep: the Retimer fed a
made-up sweep of 1,280 points (the seed grid's), a share of them in the slow state, every try
reading fast. Prints seconds per sweep and the points timed again.

    python bench/retime_cost.py [--points 1280]
"""
from __future__ import annotations

import argparse
import json
import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from mhabench.measure.config import named_grid  # noqa: E402
from mhabench.measure.results import WALL, Result  # noqa: E402
from mhabench.measure.retime import Retimer  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--points", type=int, default=1280)
    args = ap.parse_args()
    point = named_grid("smoke", "fp32", "cpu")[0]

    def result(probe: float) -> Result:
        r = Result(point, stage=WALL)
        r.host_probe_us = [probe, probe]
        return r

    rng, out = random.Random(1), {}
    for share in (0.0, 0.3, 0.8):
        timer = Retimer(1, lambda before: result(60.0), planned=args.points)
        t0, again = time.perf_counter(), 0
        for i in range(args.points):
            probe = 110.0 if rng.random() < share else 60.0 * rng.uniform(0.95, 1.1)
            again += len(list(timer.add(f"p{i}", result(probe))))
        again += len(list(timer.finish()))
        out[f"slow {share:.0%}"] = {"seconds": round(time.perf_counter() - t0, 4),
                                    "timed_again": again}
    print(json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
