"""Run a sweep's points in a worker process, so that a crash or a hang costs one point.

The parent starts ``python -m mhabench.run.worker`` (:func:`worker_command`), sends it a
:class:`WorkerSpec` (the worker then imports torch and warms up) and, on a second line, the job:
the points whose wall pass is to be measured and the records (``partials``) whose counts pass
is. The worker measures every wall pass first, then every counts pass (nothing of a profiler
session then runs in the process before the last timed round), and reads one line per event
back: ``R`` (ready), ``K {calibration}`` (the host's state, before and after), ``S label`` /
``T label`` (a wall / counts pass started), ``C {cost}``, ``W {record}`` / ``E {record}`` (a
pass finished), ``D`` (done). Each record is handed to ``on_entry`` (which journals it) before
the worker is told to go on (an empty line); then ``sync`` (the journal's fsync) runs while the
worker builds the next point's inputs, and an ``F`` line tells it that the line is on disk.

If the worker dies (abort, segfault, ``os._exit``, the kernel's out-of-memory kill) or sends
nothing for ``point_timeout`` seconds while a point runs, that point's pass is recorded as
failed with the reason (a counts pass that fails keeps the point's wall figures), and a new
worker goes on with the rest.
"""
from __future__ import annotations

import json
import os
import select
import signal
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

from ..measure.config import Point
from ..measure.cost import add_seconds
from ..measure.protocol import Protocol

#: Seconds a fresh worker may take to import torch and say it is ready.
START_TIMEOUT = 300.0


@dataclass(frozen=True)
class WorkerSpec:
    """Everything a worker process needs to measure points as the parent was asked to.

    ``threads`` is a per-process setting, applied in the worker before it measures; ``prefix``
    goes before the interpreter on the worker's command line (a tool that runs the worker
    under it); ``python`` is the interpreter ("": this one), whose torch is the one measured.
    """

    protocol: Protocol = field(default_factory=Protocol)
    extras: bool = True
    threads: int | None = None
    prefix: tuple[str, ...] = ()
    point_timeout: float = 900.0
    start_timeout: float = START_TIMEOUT
    python: str = ""

    def to_json(self) -> dict:
        return asdict(self)

    @classmethod
    def from_json(cls, d: dict) -> "WorkerSpec":
        d = dict(d)
        d["protocol"] = Protocol(**d["protocol"])
        d["prefix"] = tuple(d.get("prefix", ()))
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
    argv = [*spec.prefix, spec.python or sys.executable, "-m", "mhabench.run.worker"]
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
    identity: dict | None = None

    def suits(self, spec: WorkerSpec) -> bool:
        """Alive and told ``spec``, or not told any yet and started as ``spec`` needs (this
        interpreter, no prefix)."""
        if self.proc.poll() is not None:
            return False
        if self.spec is None:
            return not spec.prefix and not spec.python
        return self.spec == spec

    def tell(self, spec: WorkerSpec) -> "Worker":
        """Send ``spec`` to a worker that has none yet: it applies it and warms up."""
        if self.spec is None:
            _send(self.proc, {"spec": spec.to_json()})
            self.spec = spec
        return self

    def ready(self) -> dict:
        """Wait until the worker has imported torch and applied its spec; what it measures
        with (:func:`mhabench.measure.machine.build_identity`). WorkerFailed if it cannot start."""
        if self.identity is None:
            line = _Lines(self.proc.stdout.fileno()).next(self.spec.start_timeout)
            if not line or not line.startswith(b"R"):
                self.stop()
                why = (f"did not start within {self.spec.start_timeout:g} s" if line is None
                       else describe_exit(self.proc.returncode))
                raise WorkerFailed(f"the measuring worker could not start: {why} "
                                   f"({' '.join(worker_command(self.spec)[0])})")
            self.identity = json.loads(line[2:] or b"{}")
        return self.identity

    def stop(self) -> None:
        _stop(self.proc)


def _popen(argv: list[str], env: dict[str, str]) -> subprocess.Popen:
    try:
        return subprocess.Popen(argv, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    except OSError as exc:
        raise WorkerFailed(f"the measuring worker could not start: {exc.strerror or exc} "
                           f"({' '.join(argv)})") from None


def spawn_worker() -> Worker:
    """A worker process started before its spec is known: it imports torch and the measuring
    code (seconds) while the caller validates its arguments, reads the peak and so on, then
    waits for :meth:`Worker.tell`."""
    argv, env = worker_command(WorkerSpec())
    return Worker(_popen(argv, env))


def start_worker(spec: WorkerSpec) -> Worker:
    """A worker process, told ``spec`` at once: it imports torch and warms up while the caller
    goes on, and waits for its job (:func:`supervise`)."""
    argv, env = worker_command(spec)
    return Worker(_popen(argv, env)).tell(spec)


#: The line that tells a worker the point before is fsynced: its next timed rounds may start.
SYNCED = "F"


def _send(proc: subprocess.Popen, doc: dict | str | None = None) -> None:
    """One line to the worker: ``doc`` as JSON (a str as it is), or an empty line (the
    go-ahead)."""
    text = "" if doc is None else doc if isinstance(doc, str) else json.dumps(doc)
    try:
        proc.stdin.write(text.encode() + b"\n")
        proc.stdin.flush()
    except (BrokenPipeError, ValueError):
        pass  # it died: its exit is read where its lines are


@dataclass
class Job:
    """What is left of a sweep: points whose wall pass is to come, records awaiting their
    counts pass (label -> record), in grid order."""

    walls: list[Point]
    partials: dict[str, dict]

    def __bool__(self) -> bool:
        return bool(self.walls or self.partials)


#: on_entry(label, stage, record): a pass finished (or failed), to be journaled
OnEntry = Callable[[str, str, dict], None]


def supervise(job: Job, spec: WorkerSpec, on_entry: OnEntry, cost: dict | None = None,
              worker: Worker | None = None, sync: Callable[[], None] | None = None,
              calibration: list | None = None) -> None:
    """Measure ``job`` in worker processes: every point's wall pass, then every counts pass;
    each pass ends as one ``on_entry`` call, measured or failed, followed by one ``sync()``.
    ``cost`` accumulates the workers' cost split, ``calibration`` their host calibrations.
    ``worker``: one began earlier, used first if it suits ``spec``, else stopped."""
    cost = {} if cost is None else cost
    sync = sync or (lambda: None)
    if worker is not None and not (job and worker.suits(spec)):
        worker.stop()
        worker = None
    while job:
        _run_worker(job, spec, on_entry, cost, worker, sync, calibration)
        worker = None


def failed_record(point: Point, reason: str) -> dict:
    from ..measure.results import ERROR, Result
    return Result(point, status=ERROR, message=reason).record()


def _run_worker(job: Job, spec: WorkerSpec, on_entry: OnEntry, cost: dict,
                worker: Worker | None, sync, calibration: list | None) -> None:
    """One worker (``worker``, or a new one) over ``job``, which it shrinks as passes finish;
    the pass a dead or hung worker was in is recorded as failed."""
    worker = worker.tell(spec) if worker else start_worker(spec)
    t0 = time.perf_counter()
    worker.ready()
    add_seconds(cost, "worker_ready_wait", time.perf_counter() - t0)
    proc = worker.proc
    current: tuple[str, str] | None = None   # (kind, label) of the pass under way
    by_label = {p.label: p for p in job.walls}
    finished = 0

    def finish(label: str, stage: str, record: dict) -> None:
        nonlocal finished
        if label in by_label:
            job.walls = [p for p in job.walls if p.label != label]
        if stage == "wall":
            job.partials[label] = record
        else:
            job.partials.pop(label, None)
        on_entry(label, stage, record)
        finished += 1

    def lost(reason: str) -> None:
        if current is None:
            return
        kind, label = current
        if kind == "S" and label in job.partials:
            return  # a point timed again (the host's slow state) keeps the timing it had
        if kind == "S":
            from ..measure.config import point_of_label
            point = by_label.get(label) or point_of_label(label)
            finish(label, "done", failed_record(point, reason))
        else:
            record = dict(job.partials[label])
            record["stage"] = "done"
            record["message"] = "; ".join(filter(None, [record.get("message", ""),
                                                          f"counts: {reason}"]))
            finish(label, "done", record)
        sync()

    try:
        _send(proc, {"points": [asdict(p) for p in job.walls], "partials": job.partials})
        lines = _Lines(proc.stdout.fileno())
        while True:
            line = lines.next(spec.point_timeout)
            if line is None:
                return lost(f"hung: no result within {spec.point_timeout:g} s; worker killed")
            if line == b"":
                proc.wait()
                if current is None and not finished:
                    raise WorkerFailed(f"the measuring worker died before its first point: "
                                       f"{describe_exit(proc.returncode)}")
                return lost(describe_exit(proc.returncode))
            kind, _, payload = line.partition(b" ")
            if kind in (b"S", b"T"):
                current = (kind.decode(), payload.decode())
            elif kind == b"K":
                if calibration is not None:
                    calibration.append(json.loads(payload))
            elif kind == b"C":
                for k, v in json.loads(payload).items():
                    add_seconds(cost, k, v)
            elif kind in (b"W", b"E"):
                t0 = time.perf_counter()
                record = json.loads(payload)
                label = Point(**record["point"]).label
                current = None
                finish(label, record.get("stage", "done"), record)
                _send(proc)
                t1 = time.perf_counter()
                sync()
                _send(proc, SYNCED)
                add_seconds(cost, "parent_entry", t1 - t0)
                add_seconds(cost, "journal_sync", time.perf_counter() - t1)
            elif kind == b"D":
                proc.wait()
                return
    finally:
        _stop(proc)

