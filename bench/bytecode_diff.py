"""Which functions' Python bytecodes changed between two torch builds, per path, at one point:
the explanation of a bytecode count that moved, without recording a history.

    python bench/bytecode_diff.py ENV_A/bin/python ENV_B/bin/python [--point B2-S8-E32-H4-b1]

Each interpreter (a build's environment, e.g. ``mhabench track``'s ``envs/torch-X``) counts one
warmed-up call of each path with this checkout's mhabench on its path.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

CHILD = """
import json, sys
from mhabench.measure.config import Point
from mhabench.measure.inputs import build
from mhabench.measure import bytecodes, passes
import torch
b, s, e, h, beta = (int(x[1:]) for x in sys.argv[1].split("-"))
paths = passes.active_paths(build(Point(b, s, e, h, beta, dtype="fp32", device="cpu")))
out = {"torch": torch.__version__}
for name, path in paths.items():
    path.once()
    out[name] = bytecodes.count_by_function(path, calls=2)
print(json.dumps(out))
"""


def counts(python: str, point: str) -> dict:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.run([python, "-c", CHILD, point], env=env, capture_output=True, text=True)
    if proc.returncode:
        sys.exit(f"{python}: {proc.stderr.strip().splitlines()[-1] if proc.stderr else 'failed'}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("base")
    ap.add_argument("head")
    ap.add_argument("--point", default="B2-S8-E32-H4-b1")
    args = ap.parse_args()
    sys.path.insert(0, str(REPO))
    from mhabench.track.records import op_diff
    a, b = counts(args.base, args.point), counts(args.head, args.point)
    print(f"{a['torch']} -> {b['torch']} at {args.point}")
    for path in ("fast", "slow", "slow_fair"):
        if path in a and path in b:
            print(f"{path}: {sum(a[path].values())} -> {sum(b[path].values())} bytecodes"
                  f" ({op_diff(a[path], b[path], limit=8) or 'unchanged'})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
