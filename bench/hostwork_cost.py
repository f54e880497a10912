"""What the host-work counts cost in the device pass, and what cheaper sessions would cost.

    python bench/hostwork_cost.py --stride 8          # GPU: seed grid / 8
    python bench/hostwork_cost.py --device cpu --grid smoke

Per point, after the wall-pass warm-up, each variant's session is timed end to end (start, the
calls, stop, reading the records), median over the points:

- ``labels``: the device pass's main session (labels only), ``device_calls - 1`` calls per path;
- ``ops``: today's host-work session, every op and the device activity, one call per path;
- ``ops_cpu``: the same without device activity (no CUPTI: aten-op counts only);
- ``merged``: one session with ops and device activity over all ``device_calls`` calls.

Also the records per session, and whether the variants' aten-op counts agree.
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from mhabench.measure import compat  # noqa: E402
from mhabench.measure.config import canonical_dtype, named_grid, stride  # noqa: E402
from mhabench.measure.inputs import build  # noqa: E402
from mhabench.measure.sweep import active_paths  # noqa: E402
from mhabench.measure.protocol import Protocol  # noqa: E402
from mhabench.measure.timing import DeviceTimes  # noqa: E402


class CpuOnly(compat.KernelRecorder):
    def _acts(self):
        from torch.profiler import ProfilerActivity
        return {ProfilerActivity.CPU}


def session(device, paths, calls, ops, cpu_only=False):
    """(seconds, records, fast aten ops per call) of one session."""
    t0 = time.perf_counter()
    dt = DeviceTimes(device, ops=ops)
    if cpu_only:
        dt.cuda = False
        orig = compat.KernelRecorder
        compat.KernelRecorder = CpuOnly
    try:
        with dt:
            for name, path in paths.items():
                dt.record(name, path, calls)
    finally:
        if cpu_only:
            compat.KernelRecorder = orig
    seconds = time.perf_counter() - t0
    n = len(dt._rec.events()) if dt._rec is not None else 0
    fast = dt.host_work.get("fast", [{}])[0].get("aten_ops") if ops else None
    return seconds, n, fast, dict(dt.overhead_s)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--grid", default="seed")
    ap.add_argument("--stride", type=int, default=8)
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--out", default="")
    args = ap.parse_args()
    dtype = canonical_dtype("float16" if args.device.startswith("cuda") else "float32")
    points = stride(named_grid(args.grid, dtype, args.device), args.stride)
    calls = Protocol().device_calls
    rows = {k: [] for k in ("labels", "ops", "ops_cpu", "merged")}
    records = {k: [] for k in rows}
    parts = {k: [] for k in ("start", "stop", "parse")}
    agree = 0
    for p in points:
        paths = active_paths(build(p))
        for path in paths.values():  # warm, as the wall pass leaves it
            with path.context():
                for _ in range(3):
                    path.call()
        got = {"labels": session(p.device, paths, calls - 1, False),
               "ops": session(p.device, paths, 1, True),
               "ops_cpu": session(p.device, paths, 1, True, cpu_only=True),
               "merged": session(p.device, paths, calls, True)}
        for k, (s, n, _, _) in got.items():
            rows[k].append(s * 1e3)
            records[k].append(n)
        for k in parts:
            parts[k].append(got["ops"][3][k] * 1e3)
        agree += len({got[k][2] for k in ("ops", "ops_cpu", "merged")}) == 1
    med = {k: round(statistics.median(v), 3) for k, v in rows.items()}
    tot = {k: round(sum(v) / 1e3, 2) for k, v in rows.items()}
    rep = {"points": len(points), "device": args.device, "median_ms": med, "total_s": tot,
           "median_records": {k: statistics.median(v) for k, v in records.items()},
           "ops_session_median_ms": {k: round(statistics.median(v), 3) for k, v in parts.items()},
           "aten_ops_agree": [agree, len(points)],
           "today_ms": round(med["labels"] + med["ops"], 3),
           "cpu_only_ops_ms": round(med["labels"] + med["ops_cpu"], 3)}
    text = json.dumps(rep, indent=1)
    print(text)
    if args.out:
        Path(args.out).write_text(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
