"""The one way a run is carried out: :func:`execute`, used by ``mhabench run``, the asv suite
(and so ``mhabench track``) and ``mhabench confirm``.

In: a :class:`~mhabench.run.spec.Resolved` run, the files to write, where to journal. Out: an
:class:`Outcome`, every point's result in grid order. On the way: the worker process (its
build is the record's), the journal (every pass of every point, fsynced), the matmul peak, the
instruction counts (one valgrind process after the sweep), the files rebuilt from the journal
(at the end, on SIGINT / SIGTERM / SIGHUP, and on SIGUSR1). What it says goes to a
:class:`Reporter`; a caller that prints nothing passes none.
"""
from __future__ import annotations

import os
import signal
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from ..measure.config import ConfigError
from ..measure.results import DONE, OK, WALL
from .journal import Journal, Outputs, fingerprint, header, rebuild
from .spec import Resolved
from .supervise import Job, Worker, WorkerFailed, WorkerSpec, start_worker, supervise

#: Exit status of a run whose files or journal could not be written (a full disk, a folder
#: made read-only), or whose worker could not start: neither bad input (2) nor failed points (1).
EXIT_IO = 3


class Stopped(BaseException):
    """A stop signal arrived (SIGTERM, SIGHUP): unwinds like KeyboardInterrupt."""

    def __init__(self, signum: int):
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


class Reporter:
    """What a run tells as it goes; every method may be left as it is (silent)."""

    def started(self, meta: dict, run: Resolved, journal: Path, passes: int) -> None:
        """The run begins: ``passes`` passes to measure (two a point: wall, then counts)."""

    def advanced(self, label: str, stage: str) -> None:
        pass

    def note(self, text: str) -> None:
        pass


@dataclass
class Outcome:
    results: list             # every point of the journal, in grid order
    meta: dict
    journal: Path
    measured: int = 0         # passes measured by this call
    skipped: int = 0          # points already done in the journal
    stopped: int = 0          # the signal that stopped the run (0: it ran to its end)
    failure: str = ""         # why the run could not go on (I/O, a worker that cannot start)
    written: list = field(default_factory=list)


def worker_spec(run: Resolved, protocol=None) -> WorkerSpec:
    s = run.spec
    return WorkerSpec(protocol or s.protocol, extras=s.extras, threads=s.threads,
                      point_timeout=s.point_timeout, python=s.python)


def execute(run: Resolved, outputs: Outputs, journal_path, resume: bool = False,
            retry_failed: bool = False, reporter: Reporter | None = None,
            worker: Worker | None = None, extra_meta: dict | None = None,
            protocol=None) -> Outcome:
    """Measure ``run``'s points not yet in the journal and rebuild ``outputs`` from it.

    ``resume``: reopen ``journal_path`` (refused, ConfigError naming the first setting that
    differs, if it was written by another run); points it holds finished are kept, points whose
    counts pass is missing get only that, and (``retry_failed``) failed points are measured
    again. ``worker``: one spawned earlier (:func:`mhabench.run.supervise.spawn_worker`), used if
    it suits the run. ``protocol`` replaces the preset's (the measuring scripts' knobs). Raises
    ConfigError before anything is written on bad input."""
    from ..measure import machine
    reporter = reporter or Reporter()
    spec = worker_spec(run, protocol)
    if worker is not None and not worker.suits(spec):
        worker.stop()
        worker = None
    worker = worker.tell(spec) if worker is not None else start_worker(spec)
    try:
        identity = worker.ready()
    except WorkerFailed:
        worker.stop()
        raise
    meta = machine.run_meta(run.spec.device, spec.protocol, run.grid.spec,
                            instructions=run.spec.instructions)
    meta.update(identity)  # the measuring process's build, whichever interpreter it is
    meta.update(extras=run.spec.extras, instructions=run.spec.instructions,
                threads=run.spec.threads, cost_s={}, host_calibration=[], **(extra_meta or {}))
    meta["peak"], peak_line = _peak(run)
    points = list(run.points)
    fp = fingerprint(points, meta, run.spec.threads, run.spec.extras, run.spec.instructions)
    try:
        journal = (Journal.resume if resume else Journal.create)(journal_path, header(fp, meta))
    except BaseException:
        worker.stop()
        raise
    job, skipped = _job(journal, points, retry_failed)
    reporter.started(meta, run, journal.path, 2 * len(job.walls) + len(job.partials))
    for line in peak_line:
        reporter.note(line)
    out = Outcome([], meta, journal.path, skipped=skipped)

    def on_entry(label: str, stage: str, record: dict) -> None:
        from .journal import held_signals
        with held_signals():  # a journal line is never half-written by an interrupted parent
            journal.append(label, stage, record, sync=False)
        out.measured += 1
        if not (stage == WALL and label in walled):  # a point timed again is no step forward
            reporter.advanced(label, stage)
        if stage == WALL:
            walled.add(label)
        if asked:
            asked.clear()
            rebuild(journal.ordered(), meta, outputs)

    asked: list = []
    walled: set = set()
    handlers = _handlers(asked)
    t0 = time.perf_counter()
    try:
        try:
            supervise(job, spec, on_entry, meta["cost_s"], worker, journal.sync,
                      meta["host_calibration"])
            if run.spec.instructions:
                _instructions(run, journal, meta, reporter)
        except KeyboardInterrupt:
            out.stopped = signal.SIGINT
        except Stopped as exc:
            out.stopped = exc.signum
        except WorkerFailed as exc:
            out.failure = str(exc)
        except OSError as exc:
            out.failure = _io(exc)
        finally:
            worker.stop()
            journal.close()
        meta["seconds"] = round(time.perf_counter() - t0, 2)
        meta["journal"] = {"path": str(journal.path), "resumed": resume,
                           "points_kept": skipped, "passes_measured": out.measured}
        try:
            out.results = rebuild(journal.ordered(), meta, outputs)
            out.written = [p for p in (outputs.csv, outputs.breakeven, outputs.errors,
                                       outputs.json) if p]
        except KeyboardInterrupt:  # arrived during the rewrite, delivered once it was done
            out.stopped = out.stopped or signal.SIGINT
        except Stopped as exc:
            out.stopped = out.stopped or exc.signum
        except OSError as exc:
            out.failure = out.failure or _io(exc)
        if not out.results:
            from .journal import results_of
            out.results = results_of(journal.ordered(), meta)
        if not out.stopped and not out.failure and _recheck_peak(out.results, meta, run,
                                                                 reporter):
            try:
                out.results = rebuild(journal.ordered(), meta, outputs)
            except OSError as exc:
                out.failure = _io(exc)
    finally:
        for s, h in handlers.items():
            signal.signal(s, h)
    return out


def _io(exc: OSError) -> str:
    where = f" {exc.filename}" if getattr(exc, "filename", None) else ""
    return f"cannot write{where}: {exc.strerror or exc}"


def _job(journal: Journal, points, retry_failed: bool) -> tuple[Job, int]:
    """What is left to measure: points not in the journal (and, with ``retry_failed``, those
    that failed) get both passes; points whose counts pass is missing get that one."""
    latest = journal.latest()
    walls, partials, skipped = [], {}, 0
    for p in points:
        e = latest.get(p.label)
        if e is None or (retry_failed and e["record"].get("status") != OK):
            walls.append(p)
        elif e["stage"] == WALL:
            partials[p.label] = e["record"]
        else:
            skipped += 1
    return Job(walls, partials), skipped


def _handlers(asked: list) -> dict:
    def stop(signum, frame):
        raise Stopped(signum)

    if threading.current_thread() is not threading.main_thread():  # only it may set handlers
        return {}
    out = {s: signal.signal(s, stop) for s in (signal.SIGTERM, getattr(signal, "SIGHUP", 0)) if s}
    if hasattr(signal, "SIGUSR1"):
        out[signal.SIGUSR1] = signal.signal(signal.SIGUSR1, lambda *_: asked.append(1))
    return out


def _peak(run: Resolved) -> tuple[dict, list[str]]:
    """The device's matmul peak (cached), for the share-of-peak figures, and the lines that say
    so; skipped for a check and where the measuring interpreter is another one (its torch is
    not this process's)."""
    import math
    if not run.peak or run.spec.python:
        return {"tflops": math.nan, "skipped": True}, []
    from ..measure.peak import peak_entry
    lines: list[str] = []
    entry = peak_entry(run.spec.device, run.spec.dtype, on_warning=lines.append)
    how = "cached" if entry.get("cached") else f"measured in {entry.get('seconds', 0):.1f} s"
    lines.append(f"peak: {entry['error']}" if "error" in entry else
                 f"peak: {entry['tflops']:.4g} TFLOP/s matmul ({how})")
    return entry, lines


def _recheck_peak(results, meta: dict, run: Resolved, reporter: Reporter) -> bool:
    """A rate above the peak proves the peak wrong: measure it again; True if it changed."""
    entry = meta["peak"]
    if entry.get("skipped") or "error" in entry:
        return False
    from ..measure.peak import recheck_entry
    rates = [v for r in results for k, v in r.metrics().items()
             if k.endswith("_tflops") and k != "peak_tflops"]
    new = recheck_entry(rates, entry, run.spec.device, run.spec.dtype, reporter.note)
    if new is entry:
        return False
    meta["peak"] = new
    return True


def _instructions(run: Resolved, journal: Journal, meta: dict, reporter: Reporter) -> None:
    """Instruction counts of the points measured and not yet counted, in one valgrind process
    after the sweep; each counted point is journaled again with its counts."""
    from ..measure import instructions as ins
    from ..measure.results import Result
    todo = [Result.of_record(e["record"]) for e in journal.ordered()
            if e["stage"] == DONE and e["record"].get("status") == OK
            and not e["record"].get("instructions")]
    if not todo:
        return
    reporter.note(f"instructions: one valgrind process over {len(todo)} points...")
    by_label = {r.point.label: r for r in todo}

    def counted(label: str, entry: dict) -> None:
        r = by_label.get(label)
        if r is None:
            return
        ins.attach(r, entry)
        journal.append(label, DONE, r.record())
        reporter.advanced(label, "instructions")

    summary = ins.sweep([r.point for r in todo], ins.Plan(python=run.spec.python),
                        on_point=counted)[""]
    meta["instructions"] = summary
    meta["cost_s"]["instructions"] = summary["seconds"]


def default_journal(outputs: Outputs) -> Path | None:
    """Beside the first output (``NAME.journal.jsonl``); None where no output is named (the
    caller then journals in a folder of its own and removes it when the run ends well)."""
    for p in (outputs.json, outputs.csv, outputs.errors):
        if p:
            return Path(p).with_name(Path(p).stem + ".journal.jsonl")
    return None


def check_resume(path, run: Resolved) -> None:
    """Refuse, before anything starts, to resume a journal of another run: its settings (the
    build that measured it is checked once the worker says which it is)."""
    from ..measure.protocol import Protocol
    from .journal import ASKED, mismatch, read
    from dataclasses import asdict
    old, _, _ = read(path)
    meta = {"protocol": asdict(run.spec.protocol if isinstance(run.spec.protocol, Protocol)
                               else run.spec.protocol)}
    new = fingerprint(list(run.points), meta, run.spec.threads, run.spec.extras,
                      run.spec.instructions)
    why = mismatch(old, new, ASKED)
    if why:
        raise ConfigError(f"{path}: --resume refused, another run: {why}")


def check_journal(path, outputs: Outputs, resume: bool) -> None:
    """The journal path before anything runs: writable, none of the outputs; it must exist for
    ``--resume``."""
    from ..measure.fileio import check_output
    check_output(path, "--resume" if resume else "journal")
    if resume and not Path(path).is_file():
        raise ConfigError(f"--resume {path}: no such journal")
    real = os.path.realpath(path)
    for flag, p in outputs.named().items():
        if p and os.path.realpath(p) == real:
            raise ConfigError(f"{flag} {p} is the journal itself")
