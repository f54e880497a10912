"""Run a sweep's points in a worker process, so that a crash or a hang costs one point.

The parent starts ``python -m mhabench.run.worker`` (:func:`worker_command`), sends it a
:class:`WorkerSpec` (the worker then imports torch and warms up) and, on a second line, the
points, and reads one line per event back: ``R`` (ready), ``S label``
(a point started), ``C {cost}`` and ``E {entry}`` (a point finished: its journal line). Each
entry is handed to ``on_entry`` (which writes it to the journal) before the worker is told to
go on (an empty line), so a finished point is written before the next one starts; then
``sync`` (the journal's fsync) runs while the worker builds the next point's inputs, and an
``F`` line tells it that it may start that point's timed rounds. If the worker dies (abort,
segfault, ``os._exit``, the kernel's out-of-memory kill) or sends nothing for
``point_timeout`` seconds while a point runs, that point is recorded as failed with the reason
and a new worker starts at the next point.
"""
from __future__ import annotations

import json
import math
import os
import select
import signal
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Callable, Sequence

from ..measure.config import Point
from ..measure.cost import add_seconds
from ..measure.protocol import Protocol

#: Seconds a point may run before its worker is killed as hung (``--point-timeout``).
POINT_TIMEOUT = 900.0
#: Seconds a fresh worker may take to import torch and say it is ready.
START_TIMEOUT = 300.0


@dataclass(frozen=True)
class WorkerSpec:
    """Everything a worker process needs to measure points as the parent was asked to.

    ``threads`` and ``pin_cpu`` are per-process settings, applied in the worker before it
    measures; ``prefix`` goes before the interpreter on the worker's command line (a tool such
    as ``valgrind --tool=callgrind`` that runs the worker under it).
    """

    protocol: Protocol = field(default_factory=Protocol)
    extras: bool = True
    peak_tflops: float = math.nan
    threads: int | None = None
    pin_cpu: int | str | None = None  # a core or cores (host_setup.parse_cores)
    prefix: tuple[str, ...] = ()
    point_timeout: float = POINT_TIMEOUT
    start_timeout: float = START_TIMEOUT

    def to_json(self) -> dict:
        d = asdict(self)
        d["peak_tflops"] = None if math.isnan(self.peak_tflops) else self.peak_tflops
        return d

    @classmethod
    def from_json(cls, d: dict) -> "WorkerSpec":
        d = dict(d)
        d["protocol"] = Protocol(**d["protocol"])
        d["prefix"] = tuple(d.get("prefix", ()))
        d["peak_tflops"] = math.nan if d.get("peak_tflops") is None else d["peak_tflops"]
        return cls(**d)


def worker_command(spec: WorkerSpec) -> tuple[list[str], dict[str, str]]:
    """The worker's argv and environment: the one place they are built. The worker imports this
    same mhabench (its source folder first on PYTHONPATH) and gets ``spec``'s per-process
    settings that must be in place before torch is imported."""
    root = str(Path(__file__).resolve().parents[2])
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([root] + [p for p in env.get("PYTHONPATH", "").split(
        os.pathsep) if p and p != root])
    if spec.threads:
        env["OMP_NUM_THREADS"] = str(spec.threads)
    argv = [*spec.prefix, sys.executable, "-m", "mhabench.run.worker"]
    return argv, env


class WorkerFailed(RuntimeError):
    """The worker could not start at all (so no point can be measured)."""


def describe_exit(code: int | None) -> str:
    """Why a worker ended, in words."""
    if code is None:
        return "worker still running"
    if code < 0:
        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = f"signal {-code}"
        why = {"SIGKILL": " (out of memory?)", "SIGSEGV": " (segmentation fault)",
               "SIGABRT": " (aborted)", "SIGBUS": " (bus error)"}.get(name, "")
        return f"worker killed by {name}{why}"
    return f"worker exited with status {code}"


class _Lines:
    """Lines from a pipe, each read with a deadline."""

    def __init__(self, fd: int):
        self.fd, self.buf = fd, b""

    def next(self, timeout: float) -> bytes | None:
        """The next line (without its newline); b"" at end of file; None on timeout."""
        end = time.monotonic() + timeout
        while b"\n" not in self.buf:
            left = end - time.monotonic()
            if left <= 0:
                return None
            ready, _, _ = select.select([self.fd], [], [], left)
            if not ready:
                return None
            chunk = os.read(self.fd, 1 << 16)
            if not chunk:
                return b""
            self.buf += chunk
        line, _, self.buf = self.buf.partition(b"\n")
        return line


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.kill()
    proc.wait()
    for f in (proc.stdin, proc.stdout):
        try:
            f.close()
        except OSError:
            pass


@dataclass
class Worker:
    """A started worker process and the spec it was told (:func:`start_worker`), or None while
    it waits for one (:func:`spawn_worker`)."""

    proc: subprocess.Popen
    spec: WorkerSpec | None = None

    def suits(self, spec: WorkerSpec) -> bool:
        """Alive and told ``spec`` (the peak aside: the points' line carries it), or not told
        any yet and started as ``spec`` needs (no prefix)."""
        if self.proc.poll() is not None:
            return False
        if self.spec is None:
            return not spec.prefix
        return replace(self.spec, peak_tflops=0.0) == replace(spec, peak_tflops=0.0)

    def tell(self, spec: WorkerSpec) -> "Worker":
        """Send ``spec`` to a worker that has none yet: it applies it and warms up."""
        if self.spec is None:
            _send(self.proc, {"spec": spec.to_json()})
            self.spec = spec
        return self

    def stop(self) -> None:
        _stop(self.proc)


def _popen(argv: list[str], env: dict[str, str]) -> subprocess.Popen:
    return subprocess.Popen(argv, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            start_new_session=False)


def spawn_worker() -> Worker:
    """A worker process started before its spec is known: it imports torch and the measuring
    code (seconds) while the caller validates its arguments, reads the peak and so on, then
    waits for :meth:`Worker.tell`. ``mhabench run`` starts one first thing, so that a worker's
    start-up costs the run next to nothing."""
    argv, env = worker_command(WorkerSpec())
    return Worker(_popen(argv, env))


def start_worker(spec: WorkerSpec) -> Worker:
    """A worker process, told ``spec`` at once: it imports torch and warms up while the caller
    goes on, and waits for its points (:func:`supervise`)."""
    argv, env = worker_command(spec)
    return Worker(_popen(argv, env)).tell(spec)


#: The line that tells a worker the point before is fsynced: its next point's rounds may start.
SYNCED = "F"


def _send(proc: subprocess.Popen, doc: dict | str | None = None) -> None:
    """One line to the worker: ``doc`` as JSON (a str as it is), or an empty line (the
    go-ahead)."""
    text = "" if doc is None else doc if isinstance(doc, str) else json.dumps(doc)
    try:
        proc.stdin.write(text.encode() + b"\n")
        proc.stdin.flush()
    except BrokenPipeError:
        pass  # it died: its exit is read where its lines are


def supervise(points: Sequence[Point], spec: WorkerSpec,
              on_entry: Callable[[str, dict], None], cost: dict | None = None,
              worker: Worker | None = None, sync: Callable[[], None] | None = None) -> None:
    """Measure ``points`` in order in worker processes; every point ends as one ``on_entry(text,
    parsed)`` call, measured or failed, followed by one ``sync()`` (if given) before the next
    point's timed rounds. ``cost`` accumulates the workers' cost split. ``worker``: one
    :func:`start_worker` began earlier, used first if it was told this spec (the peak aside),
    else stopped."""
    from .journal import failed_text
    todo = list(points)
    cost = {} if cost is None else cost
    if worker is not None and not (todo and worker.suits(spec)):
        worker.stop()
        worker = None
    sync = sync or (lambda: None)
    while todo:
        done, reason = _run_worker(todo, spec, on_entry, cost, worker, sync)
        worker = None
        if done < len(todo) and reason:
            text = failed_text(todo[done], reason)
            on_entry(text, json.loads(text))
            sync()
            done += 1
        todo = todo[done:]


def _run_worker(todo: list[Point], spec: WorkerSpec, on_entry, cost: dict,
                worker: Worker | None, sync: Callable[[], None]) -> tuple[int, str]:
    """One worker (``worker``, or a new one) over ``todo``: (points it finished, why it stopped
    early or "")."""
    argv, _ = worker_command(spec)
    proc = (worker.tell(spec) if worker else start_worker(spec)).proc
    done = 0
    try:
        _send(proc, {"points": [asdict(p) for p in todo],
                     "peak_tflops": None if math.isnan(spec.peak_tflops) else spec.peak_tflops})
        lines = _Lines(proc.stdout.fileno())
        asked = time.perf_counter()
        started = False
        timeout = spec.start_timeout
        while True:
            line = lines.next(timeout)
            if line is None:
                what = f"{spec.point_timeout:g} s" if started else \
                    f"{spec.start_timeout:g} s of starting"
                if not started and done == 0:
                    raise WorkerFailed(f"the measuring worker did not start within {what}")
                return done, f"hung: no result within {what}; worker killed"
            if line == b"":
                proc.wait()
                if not started and done == 0:
                    raise WorkerFailed(f"the measuring worker could not start: "
                                       f"{describe_exit(proc.returncode)} ({' '.join(argv)})")
                return done, describe_exit(proc.returncode)
            kind, _, payload = line.partition(b" ")
            if kind == b"R":
                started, timeout = True, spec.point_timeout
                add_seconds(cost, "worker_ready_wait", time.perf_counter() - asked)
            elif kind == b"S":
                timeout = spec.point_timeout
            elif kind == b"C":
                for k, v in json.loads(payload).items():
                    add_seconds(cost, k, v)
            elif kind == b"E":
                t0 = time.perf_counter()
                text = payload.decode()
                on_entry(text, json.loads(text))
                done += 1
                _send(proc)
                t1 = time.perf_counter()
                sync()
                _send(proc, SYNCED)
                add_seconds(cost, "parent_entry", t1 - t0)
                add_seconds(cost, "journal_sync", time.perf_counter() - t1)
            elif kind == b"D":
                proc.wait()
                return done, ""
    finally:
        _stop(proc)
