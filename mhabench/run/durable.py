"""A sweep that loses nothing: supervised points, each journaled before the next (fsynced while
the next one's inputs are built), files rebuilt from the journal at the end, on SIGINT /
SIGTERM / SIGHUP, and on SIGUSR1 (on request)."""
from __future__ import annotations

import os
import signal
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

from ..measure.config import ConfigError, Point
from .journal import Journal, Outputs, header, rebuild
from .supervise import WorkerFailed, WorkerSpec, supervise  # noqa: F401 (WorkerFailed: for callers)


class Stopped(BaseException):
    """A stop signal arrived (SIGTERM, SIGHUP): unwinds like KeyboardInterrupt."""

    def __init__(self, signum: int):
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


@dataclass
class Outcome:
    entries: list[dict]      # journal entries in grid order
    measured: int            # points measured by this call
    skipped: int             # points already in the journal (--resume)
    stopped: int = 0         # the signal that stopped the run (0: it ran to the end)


def default_journal(outputs: Outputs) -> Path:
    """Beside the first output (``NAME.journal.jsonl``), else in the cache folder."""
    for p in (outputs.json, outputs.csv, outputs.errors):
        if p:
            return Path(p).with_name(Path(p).stem + ".journal.jsonl")
    from ..measure.peak import cache_dir
    stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime())
    return cache_dir() / "journals" / f"run-{stamp}-{os.getpid()}.jsonl"


def run(points: Sequence[Point], spec: WorkerSpec, meta: dict, dtype: str, outputs: Outputs,
        journal_path, resume: bool = False,
        on_entry: Callable[[dict], None] | None = None, worker=None,
        sync_ahead: bool = True) -> Outcome:
    """Measure the points of ``points`` not yet in the journal and rebuild ``outputs``.

    ``resume``: reopen ``journal_path`` (refused, ConfigError, if it is from another torch
    build, protocol or grid); else a new journal is started there. ``meta["cost_s"]``
    accumulates the cost split; ``on_entry`` sees each finished point (progress); ``worker``:
    one :func:`mhabench.run.supervise.start_worker` began earlier, to measure with first.
    ``sync_ahead`` false: each line is fsynced before the worker's go-ahead, on the sweep's
    critical path (``bench/supervise_cost.py`` compares the two).
    """
    head = header(meta, list(points), dtype, spec.extras)
    journal = Journal.resume(journal_path, head) if resume else Journal.create(journal_path, head)
    todo = [p for p in points if p.label not in journal.labels]
    skipped = len(points) - len(todo)
    asked = []

    def entry(text: str, parsed: dict) -> None:
        _held(journal.append, text, parsed, not sync_ahead)
        if on_entry:
            on_entry(parsed)
        if asked:
            asked.clear()
            rebuild(journal.ordered(), meta, outputs)

    def stop(signum, frame):
        raise Stopped(signum)

    import threading
    main = threading.current_thread() is threading.main_thread()  # only it may set handlers
    handlers = {s: signal.signal(s, stop) for s in (signal.SIGTERM, getattr(signal, "SIGHUP", 0))
                if s and main}
    if main and hasattr(signal, "SIGUSR1"):
        handlers[signal.SIGUSR1] = signal.signal(signal.SIGUSR1, lambda *_: asked.append(1))
    stopped = 0
    t0 = time.perf_counter()
    try:
        try:
            supervise(todo, spec, entry, cost=meta.setdefault("cost_s", {}), worker=worker,
                      sync=journal.sync if sync_ahead else None)
        except KeyboardInterrupt:
            stopped = signal.SIGINT
        except Stopped as exc:
            stopped = exc.signum
        except WorkerFailed:
            rebuild(journal.ordered(), meta, outputs)
            raise
        finally:
            journal.close()
        meta["seconds"] = round(time.perf_counter() - t0, 2)
        try:
            rebuild(journal.ordered(), meta, outputs)
        except KeyboardInterrupt:  # arrived during the rewrite, delivered once it was done
            stopped = stopped or signal.SIGINT
        except Stopped as exc:
            stopped = stopped or exc.signum
    finally:
        for s, h in handlers.items():
            signal.signal(s, h)
    return Outcome(journal.ordered(), len(journal.entries) - skipped, skipped, int(stopped))


def _held(fn, *args):
    """``fn(*args)`` with the stop signals held off, so a journal line is never half-written by
    an interrupted parent."""
    from .journal import held_signals
    with held_signals():
        return fn(*args)


def check_journal(path, outputs: Outputs, resume: bool) -> None:
    """The journal path before anything runs: writable, none of the outputs; it must exist for
    ``--resume``."""
    from ..measure.fileio import check_output
    check_output(path, "--resume" if resume else "--journal")
    if resume and not Path(path).is_file():
        raise ConfigError(f"--resume {path}: no such journal")
    real = os.path.realpath(path)
    for flag, p in outputs.named().items():
        if p and os.path.realpath(p) == real:
            raise ConfigError(f"{flag} {p} is the journal itself")
