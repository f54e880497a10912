"""The two ways of counting a call's Python bytecodes, side by side in one process.

Per point of ``--grid`` and per path, after a warm-up: the per-function counts of one call from
the opcode tracer (``sys.settrace``) and from ``sys.monitoring``'s instruction events, as
:mod:`mhabench.measure.bytecodes` counts them (and ``raw``: every instruction event, the frames'
set-up included), with the milliseconds each took. They must agree exactly for records counted
either way to be compared. Prints a summary (JSON); ``--out`` keeps every point.

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


def _raw(fn) -> dict:
    keep = bytecodes._body_start
    bytecodes._body_start = lambda code: -1
    try:
        return bytecodes._monitored(fn)
    finally:
        bytecodes._body_start = keep


def _named(by_code: dict) -> dict[str, int]:
    out: dict[str, int] = {}
    for code, n in by_code.items():
        name = bytecodes.function_name(code)
        out[name] = out.get(name, 0) + n
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--grid", default="seed;batch=16,256;seq=64,256;b=1,61/2")
    ap.add_argument("--dtype", default="float16")
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--out", default="")
    args = ap.parse_args()
    counters = {"settrace": bytecodes._settraced}
    if hasattr(sys, "monitoring"):
        counters.update(monitored=bytecodes._monitored, raw=_raw)
    for c in counters.values():  # the first tracing of a process may see nothing (3.12)
        for _ in range(3):
            c(bytecodes._probe)
    points = parse_grid(args.grid, args.dtype, args.device).points
    rows = []
    for p in points:
        paths = active_paths(build(p))
        for name, path in paths.items():
            with path.context():
                for _ in range(3):
                    path.call()
                row = {"point": p.label, "path": name}
                for cname, count in counters.items():
                    ms, got = [], None
                    for _ in range(args.reps):
                        t0 = time.perf_counter()
                        got = _named(count(path.call))
                        ms.append((time.perf_counter() - t0) * 1000)
                    row[cname] = {"ms": statistics.median(ms), "total": sum(got.values()),
                                  "functions": got}
            if "monitored" in row:
                a, b = row["settrace"]["functions"], row["monitored"]["functions"]
                row["equal"] = a == b
                row["differs"] = {k: [a.get(k, 0), b.get(k, 0)] for k in set(a) | set(b)
                                  if a.get(k, 0) != b.get(k, 0)}
            rows.append(row)
    summary = {"python": sys.version.split()[0], "rows": len(rows),
               "equal": sum(1 for r in rows if r.get("equal")),
               "ms_median": {c: statistics.median(r[c]["ms"] for r in rows) for c in counters},
               "total_median": {c: statistics.median(r[c]["total"] for r in rows)
                                for c in counters},
               "first_differences": [{"point": r["point"], "path": r["path"],
                                      "differs": dict(list(r["differs"].items())[:6])}
                                     for r in rows if r.get("differs")][:5]}
    if args.out:
        Path(args.out).write_text(json.dumps({"summary": summary, "rows": [
            {k: v for k, v in r.items()} for r in rows]}))
    print(json.dumps(summary, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
