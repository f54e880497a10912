"""Keep a tracked history as test data: a ``mhabench track`` directory's records, trimmed to
what the gate reads, under ``tests/data/history`` (or ``--to``).

    mhabench track 2.1.2 2.3.1 2.9.1 2.13.0 2.15.0 --repeats 3 --instructions \\
        --dir /tmp/history --machine cpu-smoke
    python bench/history_data.py /tmp/history --to tests/data/history

Kept: ``builds.json``, ``installed/``, asv's result files of every replicate machine, and each
record file's proof (torch version and git hash, variant, mhabench's source, host calibration)
with its points' host work (ops, functions' bytecodes) and instructions. Timings stay in the asv
results, which the gate reads; the record files' raw rounds are left out.
"""
from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

META = ("torch", "torch_git", "variant", "python", "mhabench", "mhabench_source", "device",
        "host_calibration", "instructions", "threads", "mhabench_grid")
RESULT = ("label", "status", "message", "host_work", "instructions")


def trim_record(doc: dict) -> dict:
    return {"meta": {k: doc["meta"][k] for k in META if k in doc["meta"]},
            "results": [{k: r[k] for k in RESULT if k in r} for r in doc["results"]]}


def copy(src: Path, dst: Path) -> int:
    if dst.exists():
        shutil.rmtree(dst)
    n = 0
    for name in ("builds.json",):
        (dst / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(src / name, dst / name)
    for sub in ("installed", "results"):
        for p in sorted((src / sub).rglob("*.json")):
            target = dst / sub / p.relative_to(src / sub)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(p, target)
    for p in sorted((src / "records").rglob("*.json")):
        target = dst / "records" / p.relative_to(src / "records")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(json.dumps(trim_record(json.loads(p.read_text())), indent=None,
                                     separators=(",", ":")))
        n += 1
    return n


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("track_dir", type=Path)
    ap.add_argument("--to", type=Path, default=Path(__file__).resolve().parents[1]
                    / "tests" / "data" / "history")
    args = ap.parse_args()
    if not (args.track_dir / "builds.json").is_file():
        print(f"{args.track_dir}: not a mhabench track directory (no builds.json)",
              file=sys.stderr)
        return 2
    n = copy(args.track_dir, args.to)
    size = sum(p.stat().st_size for p in args.to.rglob("*") if p.is_file())
    print(f"{n} record files into {args.to} ({size / 1e3:.0f} kB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
