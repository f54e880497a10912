"""Host instruction counts per call and path, from callgrind: host cost the host's speed cannot move.

One valgrind process measures a whole list of points (starting valgrind and importing torch
under it takes most of a minute, so one per point would dominate). The worker, this module run
as ``python -m mhabench.measure.instructions worker POINTS OUT``, is started under
``valgrind --tool=callgrind --collect-atstart=no``: nothing is counted until it toggles
collection on around a path's measured calls, the way ``torch.utils.benchmark``'s
``collect_callgrind`` does (``torch._C._valgrind_toggle()``, the calls,
``torch._C._valgrind_toggle_and_dump_stats()``), in :data:`DUMPS` runs per path. Each
toggle-and-dump writes ``<callgrind-out-file>.<n>`` (n = 1, 2, ... in the process); its
``totals:`` (or ``summary:``) line over its calls is one per-call count, and the median over
the dumps is the figure. The worker appends one JSON line per point to OUT, naming its dumps,
so a crash keeps the finished points and :func:`sweep` restarts the worker at the next point.

Counts hold still when the process does: one thread in the whole process (every pool capped
before import: callgrind counts all threads), the garbage collector off around the measured
calls, a fixed ``PYTHONHASHSEED``, warm-up calls before collection starts, and a worker that
never reads its own dumps. A dump's text (a few hundred KB, its length set by the counts in
it) read inside the counted process left the C heap laid out by what the counts were, and
the next calls' ``malloc``/``free`` work with it: 3 fresh processes then differed by up to
0.43% at a smoke point, and with the dumps read by the parent by at most 0.13%.
"""
from __future__ import annotations

import glob
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path as FsPath

from .config import ConfigError, Point

#: Measured calls per path: 3 fresh processes agree within 0.13% at every smoke point and path
#: with these (bench/instructions_aa.py, docs/measurements.md).
CALLS = {"fast": 20, "slow": 20, "slow_fair": 20}
#: Dumps a path's calls are split into; the figure is the median of their per-call counts, so
#: one call that meets a slow path of the allocator or the interpreter moves one dump, not the
#: figure (``torch.utils.benchmark``'s ``collect_callgrind`` takes repeats for the same reason).
DUMPS = 4
WARMUP_CALLS = 3
HASH_SEED = "0"
#: What a worker prints on stderr at each stage, with seconds since its start (read by
#: bench/instructions_cuda.py to say how far a run got).
STAGE = "mhabench-instructions"


@dataclass(frozen=True)
class Plan:
    """How a sweep counts: calls per path, warm-up calls, and a wall-clock limit for it all."""

    calls: dict = field(default_factory=lambda: dict(CALLS))
    warmup: int = WARMUP_CALLS
    timeout_s: float | None = None
    allow_cuda: bool = False
    valgrind_args: tuple = ()   # more valgrind options, before the interpreter
    python: str = ""            # the interpreter counted ("": this one)

    def __post_init__(self):
        for path, n in self.calls.items():
            if isinstance(n, bool) or not isinstance(n, int) or n < 1:
                raise ConfigError(f"calls for path {path!r} must be a positive integer, got {n!r}")
        if isinstance(self.warmup, bool) or not isinstance(self.warmup, int) or self.warmup < 0:
            raise ConfigError(f"warm-up calls must be a non-negative integer, got {self.warmup!r}")


# --- the parent side -------------------------------------------------------------------------
def valgrind() -> str:
    """The valgrind executable, or ConfigError (one line) saying how to get it."""
    exe = shutil.which("valgrind")
    if not exe:
        raise ConfigError("valgrind not found (instruction counts need it: "
                          "apt-get install -y valgrind)")
    return exe


def check_points(points, allow_cuda: bool = False) -> None:
    """Instruction counts are a CPU figure: torch with CUDA under callgrind takes minutes to
    reach its first call. ``allow_cuda`` lets a deliberate try through."""
    cuda = [p.label for p in points if p.device.startswith("cuda")]
    if cuda and not allow_cuda:
        raise ConfigError(f"instruction counts run on the CPU only, got device {points[0].device!r}"
                          f" (point {cuda[0]})")


def worker_argv(points_file: str, out_file: str, callgrind_out: str,
                python: str | None = None, exe: str = "valgrind",
                valgrind_args: tuple = ()) -> list[str]:
    """The one command line of a sweep's valgrind process.

    ``python`` defaults to ``sys.executable``, the interpreter itself: a launcher script (a
    pyenv shim, say) would have valgrind instrument the shell instead of Python.
    """
    return [exe, "--tool=callgrind", "--collect-atstart=no", "--instr-atstart=yes",
            "--dump-line=no", f"--callgrind-out-file={callgrind_out}", *valgrind_args,
            python or sys.executable, "-m", "mhabench.measure.instructions", "worker",
            points_file, out_file]


#: Thread pools capped at one before anything is imported. ``torch.set_num_threads(1)`` comes too
#: late for numpy's and scipy's BLAS, which start pools of their own at import; callgrind counts
#: every thread's instructions while it collects, idle spinning included.
ONE_THREAD = {"OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


def worker_env(base: dict | None = None) -> dict:
    """The caller's environment, a fixed hash seed, one thread in every pool
    (:data:`ONE_THREAD`), and this mhabench on ``PYTHONPATH`` (after the caller's entries, so a
    directory put first there keeps its ``sitecustomize``)."""
    env = dict(os.environ if base is None else base)
    env["PYTHONHASHSEED"] = HASH_SEED
    env.update(ONE_THREAD)
    root = str(FsPath(__file__).resolve().parents[2])
    parts = [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p]
    env["PYTHONPATH"] = os.pathsep.join(parts + ([root] if root not in parts else []))
    return env


def read_lines(path: str) -> list[dict]:
    """The worker's finished points (a line cut short by a crash is left out)."""
    out = []
    try:
        with open(path, encoding="utf-8") as fh:
            for line in fh:
                try:
                    out.append(json.loads(line))
                except json.JSONDecodeError:
                    break
    except FileNotFoundError:
        pass
    return out


def sweep(points, plan: Plan | None = None, env: dict | None = None,
          on_point=None, workdir: str | None = None) -> dict[str, dict]:
    """Count instructions at every point in one valgrind process; ``{label: entry}``.

    An entry is ``{"status": "ok"|"error", "message", "instructions": {path: per call},
    "totals": {path: count}, "calls": {path: n}}``. A point the worker died at is an error
    entry and the worker restarts at the next point (a worker dead before its first point
    fails them all: that is no point's fault); past ``plan.timeout_s`` the process is killed
    and the points not reached are errors saying so. ``on_point(label, entry)`` sees
    each entry as it is read. Meta of the run is in the entry under ``""``: seconds (wall and
    the valgrind processes' CPU), restarts, calls, the stage lines of the worker's log.
    """
    plan = plan or Plan()
    points = list(points)
    check_points(points, plan.allow_cuda)
    exe = valgrind()
    t0, cpu0 = time.monotonic(), _children_cpu_s()
    own = workdir is None
    work = tempfile.mkdtemp(prefix="mhabench-instr-") if own else workdir
    os.makedirs(work, exist_ok=True)
    prefix = os.path.join(work, "callgrind.out")
    results: dict[str, dict] = {}
    stages: list[str] = []
    restarts = 0
    try:
        todo = points
        while todo:
            pts_file = os.path.join(work, "points.json")
            out_file = os.path.join(work, "counts.jsonl")
            with open(pts_file, "w", encoding="utf-8") as fh:
                json.dump({"plan": {"calls": plan.calls, "warmup": plan.warmup},
                           "points": [asdict(p) for p in todo]}, fh)
            FsPath(out_file).unlink(missing_ok=True)
            log_file = os.path.join(work, "worker.log")
            left = None if plan.timeout_s is None else plan.timeout_s - (time.monotonic() - t0)
            done = 0

            def take() -> None:
                """The points finished so far, their dumps read (and deleted) at once: a long
                sweep keeps a few hundred KB of dumps on disk, not every point's."""
                nonlocal done
                for line in read_lines(out_file)[done:]:
                    done += 1
                    entry = resolve(line, prefix)
                    label = entry.pop("label")
                    results[label] = entry
                    if on_point:
                        on_point(label, entry)

            rc, timed_out = _run_worker(
                worker_argv(pts_file, out_file, prefix, python=plan.python or None, exe=exe,
                            valgrind_args=plan.valgrind_args),
                worker_env(env), log_file, left, take)
            take()
            run_stages = _stage_lines(log_file)
            stages += run_stages
            _remove_dumps(work)  # a restarted worker numbers its dumps from 1 again
            todo = todo[done:]
            if not todo:
                break
            died = f"worker died (exit status {rc}): {_log_tail(log_file)}"
            if timed_out or not any(": point " in line for line in run_stages):
                # out of time, or dead before any point: no point of its own to blame
                why = f"not reached within {plan.timeout_s:g} s" if timed_out else died
                lost, todo = todo, []
            else:
                lost, todo = todo[:1], todo[1:]
                why = died
            for p in lost:
                results[p.label] = _error(why)
                if on_point:
                    on_point(p.label, results[p.label])
            if not todo:
                break
            restarts += 1
        _remove_dumps(work)
    finally:
        if own:
            shutil.rmtree(work, ignore_errors=True)
    results[""] = {"seconds": round(time.monotonic() - t0, 2),
                   "cpu_s": round(_children_cpu_s() - cpu0, 2), "restarts": restarts,
                   "calls": dict(plan.calls), "warmup": plan.warmup, "stages": stages}
    return results


def resolve(entry: dict, prefix: str) -> dict:
    """A worker's line with its dumps read: per path the per-call figure (the median over the
    dumps), the summed count, the calls, and each dump's per-call count; the dump files are
    deleted. A dump that cannot be read makes the point an error entry."""
    dumps = entry.pop("dumps", None)
    if entry.get("status") != "ok" or dumps is None:
        return entry
    figures, totals, used, per_dump = {}, {}, {}, {}
    try:
        for name, parts in dumps.items():
            dumped = []
            for number, size in parts:
                path = f"{prefix}.{number}"
                with open(path, encoding="utf-8", errors="replace") as fh:
                    dumped.append((dump_total(fh.read()), size))
                os.unlink(path)
            figures[name] = median_per_call(dumped)
            totals[name] = sum(t for t, _ in dumped)
            used[name] = sum(n for _, n in dumped)
            per_dump[name] = [round(t / n, 1) for t, n in dumped]
    except (OSError, ValueError) as exc:
        return {"label": entry["label"], **_error(f"callgrind dump unreadable: {exc}")}
    return {**entry, "instructions": figures, "totals": totals, "calls": used,
            "per_dump": per_dump}


def _remove_dumps(work: str) -> None:
    for f in glob.glob(os.path.join(work, "callgrind.out*")):
        os.unlink(f)


def attach(result, entry: dict) -> None:
    """Store one point's :func:`sweep` entry on its :class:`~mhabench.measure.results.Result`;
    a point that could not be counted keeps NaN figures and a note in its message (its other
    figures stand)."""
    if entry["status"] == "ok":
        result.instructions = dict(entry["instructions"])
    else:
        result.message = f"{result.message}; instructions: {entry['message']}".lstrip("; ")


def _children_cpu_s() -> float:
    """CPU seconds of this process's finished children (valgrind's own, on a shared machine
    the figure its wall time hides)."""
    import resource
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    return ru.ru_utime + ru.ru_stime


def _error(message: str) -> dict:
    return {"status": "error", "message": message, "instructions": {}, "totals": {}, "calls": {}}


#: Seconds between the parent's looks at a running worker's finished points.
POLL_S = 1.0


def _run_worker(argv, env, log_file, timeout_s, poll=None):
    """Run the valgrind process, its output to ``log_file``, calling ``poll()`` every
    :data:`POLL_S` while it runs; kill it past ``timeout_s``."""
    end = None if timeout_s is None else time.monotonic() + timeout_s
    with open(log_file, "w", encoding="utf-8") as log:
        proc = subprocess.Popen(argv, env=env, stdout=log, stderr=subprocess.STDOUT)
        try:
            while True:
                wait = POLL_S if end is None else min(POLL_S, max(0.0, end - time.monotonic()))
                try:
                    return proc.wait(timeout=wait), False
                except subprocess.TimeoutExpired:
                    if end is not None and time.monotonic() >= end:
                        proc.kill()
                        proc.wait()
                        return proc.returncode, True
                    if poll:
                        poll()
        except BaseException:  # Ctrl-C: leave no valgrind process behind
            proc.kill()
            proc.wait()
            raise


def _stage_lines(log_file: str) -> list[str]:
    with open(log_file, encoding="utf-8", errors="replace") as fh:
        return [line.strip() for line in fh if line.startswith(STAGE)]


def _log_tail(log_file: str) -> str:
    with open(log_file, encoding="utf-8", errors="replace") as fh:
        lines = [line.strip() for line in fh if line.strip() and not line.startswith("==")]
    return lines[-1][:200] if lines else "no output"


def split_calls(n: int, dumps: int = DUMPS) -> list[int]:
    """``n`` calls in ``min(dumps, n)`` runs of near-equal size (the larger first)."""
    k = max(1, min(dumps, n))
    return [n // k + (i < n % k) for i in range(k)]


def median_per_call(dumped: list[tuple[int, int]]) -> float:
    """The median over dumps of (instructions / calls), from ``[(instructions, calls)]``."""
    from .stats import median
    return median([total / n for total, n in dumped])


def dump_total(text: str) -> int:
    """The event count of a callgrind dump: its ``totals:`` line, else its ``summary:`` line
    (the first event, Ir, where several are collected)."""
    found = {}
    for line in text.splitlines():
        for key in ("totals:", "summary:"):
            if line.startswith(key):
                found[key] = int(line.split()[1])
    for key in ("totals:", "summary:"):
        if key in found:
            return found[key]
    raise ValueError("callgrind dump has no totals: or summary: line")


# --- the worker (runs under valgrind) ---------------------------------------------------------
def _stage(t0: float, what: str) -> None:
    print(f"{STAGE}: {time.monotonic() - t0:.1f} s: {what}", file=sys.stderr, flush=True)


class Dumps:
    """The numbers of the dumps a worker has written: callgrind numbers them 1, 2, ... in the
    process. The worker counts them and never opens one (see the module's docstring)."""

    def __init__(self):
        self.written = 0

    def dump(self) -> int:
        """Stop collecting, write the dump; its number."""
        import torch
        torch._C._valgrind_toggle_and_dump_stats()
        self.written += 1
        return self.written


def count_point(point: Point, calls: dict, warmup: int, dumps: Dumps) -> dict:
    """Warm up every path, then count each path's calls with collection toggled around them;
    the entry names each path's dumps as ``[number, calls]`` (:func:`resolve` reads them)."""
    import gc

    import torch

    from .host_setup import collector_off
    from .inputs import build
    from .paths import run_fast_checked
    from .passes import active_paths

    inp = build(point)
    paths = active_paths(inp)
    run_fast_checked(paths["fast"])  # the fast path must really run
    for path in paths.values():
        with path.context():
            for _ in range(warmup):
                path.call()
    named = {}
    for name, path in paths.items():
        n = calls.get(name)
        if not n:
            continue
        parts = []
        with path.context():
            for size in split_calls(n):
                gc.collect()
                with collector_off():
                    torch._C._valgrind_toggle()
                    for _ in range(size):
                        path.call()
                    number = dumps.dump()
                parts.append([number, size])
        named[name] = parts
    return {"status": "ok", "message": "", "dumps": named}


def worker(points_file: str, out_file: str) -> int:
    t0 = time.monotonic()
    _stage(t0, "started")
    import torch
    torch.set_num_threads(1)
    _stage(t0, f"imported torch {torch.__version__}")
    if not torch._C._valgrind_supported_platform():
        print(f"{STAGE}: this torch build has no valgrind support", file=sys.stderr)
        return 3
    with open(points_file, encoding="utf-8") as fh:
        spec = json.load(fh)
    plan = spec["plan"]
    dumps = Dumps()
    for d in spec["points"]:
        point = Point(**d)
        _stage(t0, f"point {point.label}")
        try:
            entry = count_point(point, plan["calls"], plan["warmup"], dumps)
        except Exception as exc:  # one point's failure is that point's
            entry = _error(f"{type(exc).__name__}: {(str(exc).strip().splitlines() or [''])[0]}")
        with open(out_file, "a", encoding="utf-8") as fh:
            fh.write(json.dumps({"label": point.label, **entry}) + "\n")
        _stage(t0, f"done {point.label}")
    return 0


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "worker":
        sys.exit(worker(*sys.argv[2:]))
    print("usage: python -m mhabench.measure.instructions worker POINTS_JSON OUT_JSONL",
          file=sys.stderr)
    sys.exit(2)
