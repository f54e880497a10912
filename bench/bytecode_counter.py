"""What counting a point's Python bytecodes costs, with the tracer's line events on and off.

Per point of ``--grid``, after a warm-up of its paths: the per-function counts of one call of
each path (:func:`mhabench.measure.bytecodes.count_by_function`), the opcode tracer taking line
events as well (``lines``) or not (``no_lines``, what a run does), with the milliseconds each
took. The counts must agree exactly. Prints a summary (JSON); ``--out`` keeps every point.

    python bench/bytecode_counter.py --device cuda --grid "seed;batch=16,256;seq=64,256/2"
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

from mhabench.measure import bytecodes  # noqa: E402
from mhabench.measure.config import parse_grid  # noqa: E402
from mhabench.measure.inputs import build  # noqa: E402
from mhabench.measure.passes import active_paths  # noqa: E402


def counted(paths: dict, lines: bool) -> dict:
    keep, bytecodes.LINES = bytecodes.LINES, lines
    try:
        return {n: bytecodes.count_by_function(p, calls=1) for n, p in paths.items()}
    finally:
        bytecodes.LINES = keep


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--grid", default="seed;batch=16,256;seq=64,256;b=1,61/2")
    ap.add_argument("--dtype", default="float16")
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--out", default="")
    args = ap.parse_args()
    ways = {"lines": True, "no_lines": False}
    rows = []
    for p in parse_grid(args.grid, args.dtype, args.device).points:
        paths = active_paths(build(p))
        for path in paths.values():
            with path.context():
                for _ in range(3):
                    path.call()
        row = {"point": p.label}
        for way, lines in ways.items():
            ms, got = [], None
            for _ in range(args.reps):
                t0 = time.perf_counter()
                got = counted(paths, lines)
                ms.append((time.perf_counter() - t0) * 1000)
            row[way] = {"ms": statistics.median(ms), "functions": got}
        row["equal"] = row["lines"]["functions"] == row["no_lines"]["functions"]
        rows.append(row)
    summary = {"python": sys.version.split()[0], "points": len(rows),
               "equal": sum(1 for r in rows if r["equal"]),
               "ms_per_point_median": {w: statistics.median(r[w]["ms"] for r in rows)
                                       for w in ways},
               "bytecodes_median": {n: statistics.median(sum(r["lines"]["functions"][n]
                                                             .values()) for r in rows)
                                    for n in rows[0]["lines"]["functions"]} if rows else {},
               "unequal": [r["point"] for r in rows if not r["equal"]][:5]}
    if args.out:
        Path(args.out).write_text(json.dumps({"summary": summary, "rows": rows}))
    print(json.dumps(summary, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
