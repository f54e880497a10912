"""What the worker process and the journal cost: the same points swept in one process (the
plain ``mhabench.measure.sweep.sweep``, files written once at the end) against swept by a supervised
worker with every point journaled (fsynced) before the next and the files rebuilt from the
journal, as ``mhabench run`` does. Each sweep runs in a fresh child process of this one, timed
from here (interpreter, torch import and CUDA start-up included, as a ``mhabench run`` pays
them), alternated A B B A ... so that drift of the host hits both alike.

    python bench/supervise_cost.py --stride 8                 # GPU: seed grid, every 8th point
    python bench/supervise_cost.py --device cpu --grid smoke --target-ms 5   # CPU dry run

Kinds: ``in-process``; ``supervised`` (as ``mhabench run``: each line fsynced while the worker
builds the next point); ``inline`` (each line fsynced before the worker's go-ahead, the design
before). First it times the journal's write + fsync of a seed-sized line where the sweeps write.
Prints each sweep's seconds and the supervised sweeps' own split (worker start wait, handoff,
fsync wait, per point), the medians, and each kind / in-process (target: <= 1.03).
"""
from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from mhabench.run.supervise import WorkerSpec, spawn_worker  # noqa: E402 (no torch yet)

#: A supervised child spawns its worker before it imports torch, as ``mhabench run`` does.
SPARE = spawn_worker() if __name__ == "__main__" and "--one" in sys.argv and \
    sys.argv[sys.argv.index("--one") + 1:][:1] != ["in-process"] else None

from mhabench.run import durable  # noqa: E402
from mhabench.measure import sweep as sw  # noqa: E402
from mhabench.measure.config import canonical_dtype, named_grid, stride  # noqa: E402
from mhabench.run.journal import Outputs  # noqa: E402
from mhabench.measure.results import ResultFiles  # noqa: E402
from mhabench.measure.protocol import Protocol  # noqa: E402


def in_process(points, proto, extras, out: Path) -> float:
    t0 = time.perf_counter()
    meta = {"cost_s": {}}
    results = sw.sweep(points, proto, cost=meta["cost_s"], extras=extras)
    ResultFiles(str(out / "r.csv"), str(out / "e.json"), str(out / "a.json")).write(results, meta)
    return time.perf_counter() - t0


def supervised(points, proto, extras, dtype, out: Path, sync_ahead: bool = True) -> float:
    t0 = time.perf_counter()
    spec = WorkerSpec(proto, extras=extras)
    worker = SPARE.tell(spec)  # spawned first thing, told its spec now, as in ``mhabench run``
    meta = sw.run_meta(points[0].device, proto, "bench")
    files = Outputs(str(out / "r.csv"), str(out / "e.json"), str(out / "a.json"))
    durable.run(points, spec, meta, dtype, files, out / "j.jsonl", worker=worker,
                sync_ahead=sync_ahead)
    (out / "cost.json").write_text(json.dumps(meta.get("cost_s", {})))
    return time.perf_counter() - t0


#: The supervised sweep's own cost keys (seconds over the sweep) that ``split`` prints.
SPLIT = ("worker_ready_wait", "handoff", "journal_wait", "parent_entry", "journal_sync")


def split(out: Path, n: int) -> str:
    try:
        cost = json.loads((out / "cost.json").read_text())
    except (OSError, ValueError):
        return ""
    per_point = (cost.get("handoff", 0) + cost.get("journal_wait", 0)) / n * 1e3
    return "  (" + ", ".join(f"{k} {cost.get(k, 0.0):.2f} s" for k in SPLIT) + \
        f"; per point: handoff + wait {per_point:.2f} ms)"


def fsync_probe(folder: str, lines: int = 200, size: int = 11_400) -> str:
    """Median and p90 ms of one journal-sized line written, flushed and fsynced in ``folder``."""
    text = "x" * size + "\n"
    times = []
    with tempfile.NamedTemporaryFile("w", dir=folder, prefix=".mhabench-fsync-") as fh:
        for _ in range(lines):
            t0 = time.perf_counter()
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
            times.append((time.perf_counter() - t0) * 1e3)
    times.sort()
    return (f"fsync of an {size / 1000:.1f} KB line in {folder}: "
            f"median {statistics.median(times):.2f} ms, p90 {times[int(0.9 * len(times))]:.2f} "
            f"ms, max {times[-1]:.2f} ms ({lines} lines)")


KINDS = ("in-process", "supervised", "inline")


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
        supervised(points, proto, not args.no_extras, dtype, out, sync_ahead=kind == "supervised")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--grid", default="seed")
    ap.add_argument("--stride", type=int, default=8)
    ap.add_argument("--device", default=None, help="default: cuda if available, else cpu")
    ap.add_argument("--dtype", default=None, help="default: fp16 on CUDA, fp32 on CPU")
    ap.add_argument("--repeats", type=int, default=2, help="A B C, then C B A, ... (2)")
    ap.add_argument("--kinds", default="in-process,supervised,inline",
                    help="comma-separated, in-process first (in-process,supervised,inline)")
    ap.add_argument("--target-ms", type=float, default=None, help="protocol (default 50)")
    ap.add_argument("--no-extras", action="store_true")
    ap.add_argument("--one", choices=KINDS, help=argparse.SUPPRESS)
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
    kinds = [k.strip() for k in args.kinds.split(",") if k.strip()]
    bad = [k for k in kinds if k not in KINDS]
    if bad or not kinds or kinds[0] != "in-process":
        ap.error(f"--kinds {args.kinds}: in-process first, then any of {', '.join(KINDS[1:])}")
    times = {k: [] for k in kinds}
    passed = [a for a in (argv if argv is not None else sys.argv[1:])]
    with tempfile.TemporaryDirectory(prefix="mhabench-cost-") as tmp:
        print(fsync_probe(tmp), flush=True)
        print(fsync_probe(os.getcwd()), flush=True)
        for r in range(args.repeats):
            for kind in (kinds if r % 2 == 0 else kinds[::-1]):
                out = Path(tmp) / f"{kind}-{r}"
                out.mkdir()
                t0 = time.perf_counter()
                subprocess.run([sys.executable, __file__, *passed, "--one", kind, "--out",
                                str(out)], check=True)
                s = time.perf_counter() - t0
                times[kind].append(s)
                print(f"  {kind:>10}: {s:8.2f} s{split(out, n)}", flush=True)
    a = statistics.median(times["in-process"])
    for kind in kinds[1:]:
        b = statistics.median(times[kind])
        ratio = b / a if a else math.nan
        print(f"median in-process {a:.2f} s, {kind} {b:.2f} s: ratio {ratio:.4f} "
              f"({(ratio - 1) * 100:+.2f}%; target <= +3%); difference {b - a:+.2f} s, "
              f"{(b - a) / n * 1000:+.1f} ms per point")
    return 0


if __name__ == "__main__":
    sys.exit(main())
