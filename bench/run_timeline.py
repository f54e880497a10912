"""Where a ``mhabench run`` spends the seconds outside its points: the run's own steps timed in
its parent process (start of the worker, its readiness, the metadata, the matmul peak, the
sweep, the files), from the interpreter's start to its exit.

    python bench/run_timeline.py TIMELINE.json [mhabench run's arguments: --grid seed/4 -q ...]

Writes TIMELINE.json: seconds from the process's start at which each step began and ended, and the
journal's first and last entries.
"""
from __future__ import annotations

import functools
import json
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def process_age() -> float:
    """Seconds since this process started (Linux ``/proc``), or 0 where that cannot be read."""
    try:
        start_ticks = int(Path("/proc/self/stat").read_text().rsplit(")", 1)[1].split()[19])
        uptime = float(Path("/proc/uptime").read_text().split()[0])
        return uptime - start_ticks / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return 0.0


T0 = time.perf_counter() - process_age()
steps: list[dict] = []
journal = {}


def now() -> float:
    return round(time.perf_counter() - T0, 3)


def timed(owner, name: str, label: str | None = None) -> None:
    fn = getattr(owner, name)

    @functools.wraps(fn)
    def wrapper(*a, **k):
        begin = now()
        try:
            return fn(*a, **k)
        finally:
            steps.append({"step": label or name, "begin": begin, "end": now()})
    setattr(owner, name, wrapper)


def main() -> int:
    steps.append({"step": "interpreter up", "begin": 0.0, "end": now()})
    t = now()
    from mhabench.commands import main as cli
    from mhabench.run import execute, supervise
    from mhabench.run.journal import Journal
    steps.append({"step": "import mhabench", "begin": t, "end": now()})
    start = execute.start_worker

    def start_then_import(*a, **k):
        """As execute does: the worker first, then the parent's own torch import."""
        begin = now()
        worker = start(*a, **k)
        steps.append({"step": "start_worker", "begin": begin, "end": now()})
        begin = now()
        from mhabench.measure import machine
        steps.append({"step": "import torch (parent)", "begin": begin, "end": now()})
        timed(machine, "run_meta")
        return worker
    execute.start_worker = start_then_import
    timed(supervise.Worker, "ready", "worker ready (wait)")
    timed(execute, "_peak")
    timed(execute, "supervise", "sweep")
    timed(execute, "rebuild", "files from the journal")
    timed(execute, "_recheck_peak")
    append = Journal.append

    def counted(self, *a, **k):
        journal.setdefault("first_entry", now())
        journal["last_entry"] = now()
        journal["entries"] = journal.get("entries", 0) + 1
        return append(self, *a, **k)
    Journal.append = counted
    t = now()
    rc = cli(["run", *sys.argv[2:]])
    steps.append({"step": "mhabench run (in all)", "begin": t, "end": now()})
    Path(sys.argv[1]).write_text(json.dumps({"steps": steps, "journal": journal, "exit": rc},
                                            indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
