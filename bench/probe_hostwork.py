"""What the host-work counts say and cost: the same points with and without them, one process.

    python bench/probe_hostwork.py --stride 64 [--device cuda]

Prints, per point, each path's counts per call (aten ops, runtime calls, launches, syncs,
memcpy calls, kernels, copies, bytes each way, and which kinds varied between the profiled
calls), then the device pass's seconds with and without the op records, alternated.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from mhabench.measure.config import named_grid, stride  # noqa: E402
from mhabench.measure.hostwork import KINDS  # noqa: E402
from mhabench.measure.sweep import measure  # noqa: E402
from mhabench.measure.protocol import Protocol  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--stride", type=int, default=64)
    ap.add_argument("--grid", default="seed")
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--dtype", default="float16")
    ap.add_argument("--json", default=None)
    args = ap.parse_args()
    points = stride(named_grid(args.grid, args.dtype, args.device), args.stride)
    with_ops, without = Protocol(target_ms=10.0), Protocol(target_ms=10.0, host_work=False)
    cost = {"with": {}, "without": {}}
    rows = []
    for i, p in enumerate(points):
        for name, proto in (("with", with_ops), ("without", without))[:: 1 if i % 2 else -1]:
            r = measure(p, proto, cost=cost[name], extras=False)
            if name == "with":
                rows.append({"label": p.label, "status": r.status, "message": r.message,
                             "host_work": r.host_work})
    print("kinds:", " ".join(KINDS))
    for row in rows:
        for path, c in row["host_work"].items():
            print(f"{row['label']:40s} {path:9s} " + " ".join(str(c.get(k, '-')) for k in KINDS)
                  + (f" varies={c['varies']}" if c.get("varies") else ""))
        if row["status"] != "ok":
            print(f"{row['label']}: {row['status']} {row['message']}")
    for name in ("with", "without"):
        c = cost[name]
        print(f"{name:8s} ops: device_pass {c.get('device_pass', 0):.3f} s, profiler stop "
              f"{c.get('profiler_stop', 0):.3f} s, parse {c.get('profiler_parse', 0):.3f} s "
              f"over {len(points)} points")
    if args.json:
        Path(args.json).write_text(json.dumps({"rows": rows, "cost": cost}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
