"""How far do callgrind instruction counts get with torch on CUDA, and at what cost?

    python bench/instructions_cuda.py [--limit 240] [--points 2] [--device cuda] [--out FILE]
        [--valgrind-arg=--smc-check=none ...]

One host sweep (:func:`mhabench.measure.instructions.sweep`, one valgrind process) over the first
``--points`` host-bound seed points on ``--device`` (fp16 on CUDA, fp32 on the CPU: run it
with ``--device cpu`` too on the same machine to see what the CUDA build of torch costs
without a GPU context), killed after ``--limit`` seconds. Prints the worker's stages with their
times (torch imported, each point started and done), the counts it got, the seconds and the
peak memory of the valgrind process. Needs valgrind on the machine (``apt-get install -y
valgrind``); without it the script says so and exits 2.
"""
from __future__ import annotations

import argparse
import json
import resource
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from mhabench.measure import instructions as ins  # noqa: E402
from mhabench.measure.config import ConfigError, Point  # noqa: E402

#: Host-bound points of the seed grid (the fast path's host share is highest there).
POINTS = [(16, 64, 512, 8, 1), (128, 128, 1024, 16, 33), (64, 256, 512, 16, 21)]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--limit", type=float, default=240.0, help="seconds before the kill")
    ap.add_argument("--points", type=int, default=2)
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--fast-calls", type=int, default=ins.CALLS["fast"])
    ap.add_argument("--valgrind-arg", action="append", default=[],
                    help="an extra valgrind option (repeatable)")
    ap.add_argument("--out", default=None, help="JSON of the sweep's entries and stages")
    args = ap.parse_args()
    dtype = "fp16" if args.device.startswith("cuda") else "fp32"
    points = [Point(*p, dtype=dtype, device=args.device) for p in POINTS[:args.points]]
    calls = {**ins.CALLS, "fast": args.fast_calls}
    plan = ins.Plan(calls=calls, timeout_s=args.limit, allow_cuda=True,
                    valgrind_args=tuple(args.valgrind_arg))
    print(f"{len(points)} points on {args.device} {dtype}, calls {calls}, limit {args.limit:g} s",
          flush=True)
    t0 = time.monotonic()
    try:
        out = ins.sweep(points, plan, on_point=lambda label, e: print(
            f"  {time.monotonic() - t0:6.1f} s  {label}: {e['status']} "
            f"{json.dumps(e['instructions']) if e['status'] == 'ok' else e['message']}",
            flush=True))
    except ConfigError as exc:
        print(f"instructions_cuda: error: {exc}", file=sys.stderr)
        return 2
    meta = out.pop("")
    print("worker stages (seconds since its start):")
    for line in meta["stages"]:
        print("  " + line.split(": ", 1)[1])
    ok = sum(e["status"] == "ok" for e in out.values())
    peak_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    print(f"counted {ok} of {len(points)} points in {meta['seconds']:.0f} s "
          f"(limit {args.limit:g} s, {meta['restarts']} restarts); valgrind peak RSS "
          f"{peak_mb:.0f} MB")
    if args.out:
        Path(args.out).write_text(json.dumps({"meta": meta, "points": out}, indent=1))
    return 0 if ok == len(points) else 1


if __name__ == "__main__":
    sys.exit(main())
