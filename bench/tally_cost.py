"""What the bytecode tally costs per point, keyed by code object (hashed) and by its id (the
counter's way), and whether the two count the same: on Python 3.12 a large code object's hash
costs microseconds, paid once per bytecode by a hashed tally.

    python bench/tally_cost.py [--grid seed/16] [--device cuda] [--points 40]

Prints JSON: per way, ms per point (three paths, one warmed-up call each), and the points
where the counts differ (none expected).
"""
from __future__ import annotations

import argparse
import gc
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from mhabench.measure import bytecodes  # noqa: E402
from mhabench.measure.config import parse_grid  # noqa: E402
from mhabench.measure.inputs import build  # noqa: E402
from mhabench.measure.passes import active_paths  # noqa: E402


def hashed_count(path) -> dict[str, int]:
    """One call's bytecodes per function, the tally keyed by the code object itself."""
    by_code: dict = {}

    def local(frame, event, arg):
        if event == "opcode":
            code = frame.f_code
            by_code[code] = by_code.get(code, 0) + 1
        return local

    def start(frame, event, arg):
        frame.f_trace_opcodes = True
        return local
    with path.context():
        gc.disable()
        sys.settrace(start)
        try:
            path.call()
        finally:
            sys.settrace(None)
            gc.enable()
    return bytecodes.by_function(by_code.items())


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--grid", default="seed/16")
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--points", type=int, default=40)
    args = ap.parse_args()
    dtype = "fp16" if args.device.startswith("cuda") else "fp32"
    points = parse_grid(args.grid, dtype, args.device).points[:args.points]
    bytecodes._prime()
    seconds = {"hashed": 0.0, "by_id": 0.0}
    differ, counted = [], 0
    for point in points:
        paths = active_paths(build(point))
        for path in paths.values():
            path.once()
            path.once()
        counts = {}
        for way in ("hashed", "by_id", "hashed", "by_id"):  # alternated, the second pair kept
            t0 = time.perf_counter()
            counts[way] = {name: (hashed_count(p) if way == "hashed"
                                  else bytecodes.count_by_function(p, calls=1))
                           for name, p in paths.items()}
            seconds[way] += time.perf_counter() - t0
        counted += 1
        if counts["hashed"] != counts["by_id"]:
            differ.append(point.label())
    print(json.dumps({"python": sys.version.split()[0], "points": counted,
                      "ms_per_point": {k: round(v / counted / 2 * 1e3, 2) for k, v in seconds.items()},
                      "differ": differ}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
