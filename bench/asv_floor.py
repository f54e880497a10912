"""asv's own cost per (method x point) worker, with nothing measured: the floor under the suite.

    python bench/asv_floor.py [--methods 27] [--out DIR]

Builds a throwaway asv project in a temporary directory whose one class has the seed grid's
parameters (1280 combinations), a ``setup_cache`` returning a small dict and ``--methods``
``track_`` methods that return a constant, runs it with ``asv run -E existing`` (forkserver, as
the suite), and prints the seconds per worker. Multiplied by the suite's worker count it is
what any suite of that many methods pays on top of its sweep on this machine.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from mhabench.measure.config import SEED_AXES  # noqa: E402

CONF = {"version": 1, "project": "floor", "repo": ".", "dvcs": "git", "branches": ["main"],
        "environment_type": "virtualenv", "benchmark_dir": "benchmarks",
        "results_dir": "results", "html_dir": "html", "launch_method": "forkserver"}


def suite_source(methods: int) -> str:
    a = SEED_AXES
    params = [list(a.batch_sizes), list(a.seq_lens), list(a.embed_dims), list(a.num_heads),
              list(a.beta_bs)]
    lines = ["class Floor:", f"    params = {params!r}", "    timeout = 60",
             "    def setup_cache(self):", "        return {'dir': '.'}",
             "    def setup(self, cache, *params):", "        self.x = 1.0"]
    for i in range(methods):
        lines += [f"    def track_m{i:02d}(self, cache, *params):", "        return self.x"]
    return "\n".join(lines) + "\n"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--methods", type=int, default=27)
    ap.add_argument("--out", default=None, help="write the figures as JSON here")
    args = ap.parse_args()
    py = sys.executable
    with tempfile.TemporaryDirectory(prefix="asv-floor-") as tmp:
        root = Path(tmp)
        (root / "benchmarks").mkdir()
        (root / "benchmarks" / "__init__.py").write_text("")
        (root / "benchmarks" / "floor.py").write_text(suite_source(args.methods))
        (root / "asv.conf.json").write_text(json.dumps(CONF))
        env = dict(os.environ, HOME=tmp, GIT_AUTHOR_NAME="floor", GIT_AUTHOR_EMAIL="f@localhost",
                   GIT_COMMITTER_NAME="floor", GIT_COMMITTER_EMAIL="f@localhost")

        def sh(*cmd):
            return subprocess.run(cmd, cwd=root, env=env, check=True, capture_output=True,
                                  text=True)
        sh("git", "init", "-q", "-b", "main")
        sh("git", "add", "-A")
        sh("git", "commit", "-qm", "floor")
        commit = sh("git", "rev-parse", "HEAD").stdout.strip()
        sh("asv", "machine", "--yes", "--machine", "floor")
        t0 = time.perf_counter()
        sh("asv", "run", "-E", f"existing:{py}", "--set-commit-hash", commit,
           "--machine", "floor")
        total = time.perf_counter() - t0
        files = [f for f in (root / "results" / "floor").glob("*.json")
                 if f.name != "machine.json"]
        doc = json.loads(files[0].read_text())
        values = sum(sum(v is not None for v in r[0]) for r in doc["results"].values())
        cache_s = sum(v for k, v in doc.get("durations", {}).items() if "setup_cache" in k)
    workers = values
    per = (total - cache_s) / workers
    fig = {"methods": args.methods, "workers": workers, "asv_run_s": round(total, 2),
           "setup_cache_s": round(cache_s, 2), "per_worker_ms": round(per * 1e3, 3)}
    print(f"asv floor: {workers} workers ({args.methods} trivial track_ methods x seed params) "
          f"in {total:.1f} s: {per * 1e3:.2f} ms per worker")
    if args.out:
        Path(args.out).write_text(json.dumps(fig, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
