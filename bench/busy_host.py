"""Smoke-grid fast/slow on a quiet host against the same runs with every core kept busy.

    python3 bench/busy_host.py [--runs 3] [--threads N] [--out DIR]

Runs ``mhabench run`` (the defaults: smoke grid on a CPU, one thread) ``--runs`` times, then
again while one ``while True: pass`` process per core spins (killed afterwards, by pid). Per
point: the median over runs of fast/slow (1 / speedup) in each condition and their relative
difference; then the median and largest difference over the points. Prints the load average
seen before each condition: the "quiet" runs are only as quiet as the machine was.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path


def run_once(path: Path, threads: str | None) -> dict[str, float]:
    cmd = [sys.executable, "-m", "mhabench", "run", "--no-progress", "--no-table",
           "--json", str(path)] + (["--threads", threads] if threads else [])
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    if proc.returncode != 0:
        raise SystemExit(f"mhabench run failed: {proc.stdout[-2000:]}{proc.stderr[-2000:]}")
    doc = json.loads(path.read_text())
    return {r["label"]: 1.0 / r["metrics"]["speedup"] for r in doc["results"]
            if r["metrics"].get("speedup")}


def condition(n: int, out: Path, tag: str, threads: str | None) -> dict[str, float]:
    runs = [run_once(out / f"{tag}{i}.json", threads) for i in range(n)]
    return {k: statistics.median(r[k] for r in runs) for k in runs[0]}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--threads", default=None, help="passed to mhabench run (default: its own)")
    ap.add_argument("--out", default=None, help="folder for the runs' JSON (default: a temp dir)")
    args = ap.parse_args()
    out = Path(args.out or tempfile.mkdtemp(prefix="mhabench-busy-"))
    out.mkdir(parents=True, exist_ok=True)
    print(f"load before the quiet runs: {os.getloadavg()}")
    quiet = condition(args.runs, out, "quiet", args.threads)
    spinners = [subprocess.Popen([sys.executable, "-c", "while True: pass"])
                for _ in range(os.cpu_count() or 1)]
    try:
        print(f"load before the busy runs ({len(spinners)} spinners): {os.getloadavg()}")
        busy = condition(args.runs, out, "busy", args.threads)
    finally:
        for p in spinners:
            p.kill()
            p.wait()
    print(f"{'point':<28} {'quiet f/s':>9} {'busy f/s':>9} {'diff':>7}")
    diffs = []
    for k in quiet:
        d = busy[k] / quiet[k] - 1.0
        diffs.append(abs(d))
        print(f"{k:<28} {quiet[k]:9.3f} {busy[k]:9.3f} {d:+7.1%}")
    print(f"fast/slow, busy vs quiet: median |diff| {statistics.median(diffs):.1%}, "
          f"largest {max(diffs):.1%} over {len(diffs)} points ({args.runs} runs each); "
          f"JSON in {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
