"""What the worker process and the journal cost: the same points swept in one process (the
plain ``mhabench.measure.sweep.sweep``, files written once at the end) against swept by a supervised
worker with every point journaled (fsynced) before the next and the files rebuilt from the
journal, as ``mhabench run`` does. Each sweep runs in a fresh child process of this one, timed
from here (interpreter, torch import and CUDA start-up included, as a ``mhabench run`` pays
them), alternated A B B A ... so that drift of the host hits both alike.

    python bench/supervise_cost.py --stride 8                 # GPU: seed grid, every 8th point
    python bench/supervise_cost.py --device cpu --grid smoke --target-ms 5   # CPU dry run

Prints each sweep's seconds, the medians, and supervised / in-process (target: <= 1.03).
"""
from __future__ import annotations

import argparse
import math
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from mhabench.run import durable  # noqa: E402
from mhabench.measure import sweep as sw
from mhabench.measure.config import canonical_dtype, named_grid, stride  # noqa: E402
from mhabench.run.journal import Outputs  # noqa: E402
from mhabench.measure.results import ResultFiles  # noqa: E402
from mhabench.run.supervise import WorkerSpec  # noqa: E402
from mhabench.measure.timing import Protocol  # noqa: E402


def in_process(points, proto, extras, out: Path) -> float:
    t0 = time.perf_counter()
    meta = {"cost_s": {}}
    results = sw.sweep(points, proto, cost=meta["cost_s"], extras=extras)
    ResultFiles(str(out / "r.csv"), str(out / "e.json"), str(out / "a.json")).write(results, meta)
    return time.perf_counter() - t0


def supervised(points, proto, extras, dtype, out: Path) -> float:
    t0 = time.perf_counter()
    meta = sw.run_meta(points[0].device, proto, "bench")
    files = Outputs(str(out / "r.csv"), str(out / "e.json"), str(out / "a.json"))
    durable.run(points, WorkerSpec(proto, extras=extras), meta, dtype, files, out / "j.jsonl")
    return time.perf_counter() - t0


def one(kind: str, args) -> None:
    """The child: one sweep of ``kind``, files under ``args.out``."""
    device = args.device or sw.default_device()
    dtype = canonical_dtype(args.dtype or ("fp16" if device.startswith("cuda") else "fp32"))
    points = stride(named_grid(args.grid, dtype, device), args.stride)
    proto = Protocol(**({"target_ms": args.target_ms} if args.target_ms else {}))
    out = Path(args.out)
    if kind == "in-process":
        in_process(points, proto, not args.no_extras, out)
    else:
        supervised(points, proto, not args.no_extras, dtype, out)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--grid", default="seed")
    ap.add_argument("--stride", type=int, default=8)
    ap.add_argument("--device", default=None, help="default: cuda if available, else cpu")
    ap.add_argument("--dtype", default=None, help="default: fp16 on CUDA, fp32 on CPU")
    ap.add_argument("--repeats", type=int, default=2, help="A B, then B A, ... (2)")
    ap.add_argument("--target-ms", type=float, default=None, help="protocol (default 50)")
    ap.add_argument("--no-extras", action="store_true")
    ap.add_argument("--one", choices=("in-process", "supervised"), help=argparse.SUPPRESS)
    ap.add_argument("--out", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.one:
        one(args.one, args)
        return 0
    device = args.device or sw.default_device()
    sw.require_device(device)
    n = len(stride(named_grid(args.grid, "float32", device), args.stride))
    print(f"{n} points of {args.grid} (stride {args.stride}) on {device} "
          f"({sw.device_name(device)}), extras {not args.no_extras}", flush=True)
    times = {"in-process": [], "supervised": []}
    passed = [a for a in (argv if argv is not None else sys.argv[1:])]
    with tempfile.TemporaryDirectory(prefix="mhabench-cost-") as tmp:
        for r in range(args.repeats):
            for kind in (("in-process", "supervised") if r % 2 == 0 else
                         ("supervised", "in-process")):
                out = Path(tmp) / f"{kind}-{r}"
                out.mkdir()
                t0 = time.perf_counter()
                subprocess.run([sys.executable, __file__, *passed, "--one", kind, "--out",
                                str(out)], check=True)
                s = time.perf_counter() - t0
                times[kind].append(s)
                print(f"  {kind:>10}: {s:8.2f} s", flush=True)
    a, b = (statistics.median(times[k]) for k in ("in-process", "supervised"))
    ratio = b / a if a else math.nan
    print(f"median in-process {a:.2f} s, supervised + journal {b:.2f} s: ratio {ratio:.4f} "
          f"({(ratio - 1) * 100:+.2f}%; target <= +3%); difference {b - a:+.2f} s, "
          f"{(b - a) / n * 1000:+.1f} ms per point")
    return 0


if __name__ == "__main__":
    sys.exit(main())
