"""The measuring process a supervisor starts (``python -m mhabench.run.worker``).

Imports torch and the measuring code, reads one JSON line on stdin (``{"spec"}``), applies it
and warms up (one tiny attention call), says ``R``, reads a second (``{"points",
"peak_tflops"}``), then for each point: ``S label``, the point measured by
:func:`mhabench.measure.sweep.measure`, ``C {cost}`` and ``E {journal line}`` on its own copy
of stdout, and waits for the parent's go-ahead (an empty line: the entry is written) before the
next point, and for ``F`` (it is fsynced) before that point's timed rounds. Ends with ``D``.
A point's cost carries the seconds the point before waited for its go-ahead (``handoff``) and
its own rounds for the fsync (``journal_wait``): what supervision adds to a sweep per point.
Anything the measuring code prints goes to stderr. SIGINT is ignored (the parent decides what
an interruption means) and the worker dies with its parent.
"""
from __future__ import annotations

import json
import os
import signal
import sys
import time


def _die_with_parent() -> None:
    try:
        import ctypes
        ctypes.CDLL(None).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG (Linux)
    except (OSError, AttributeError):
        pass


def _import() -> None:
    """Import what a first point would import lazily (scipy's beta law: seconds on a busy
    host), before the spec comes (it needs none)."""
    import scipy.stats  # noqa: F401


def _preload() -> None:
    """One tiny attention call (the attention code's own lazy imports and set-up), with the
    spec's threads, so that the point timer counts measuring only."""
    import torch
    m = torch.nn.MultiheadAttention(8, 2, batch_first=True).eval()
    x = torch.zeros(1, 2, 8)
    with torch.inference_mode():
        m(x, x, x, key_padding_mask=torch.tensor([[False, True]]), need_weights=False)


def main() -> int:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _die_with_parent()
    out = os.fdopen(os.dup(1), "wb", buffering=0)
    os.dup2(2, 1)

    def send(kind: str, text: str = "") -> None:
        out.write(f"{kind} {text}\n".encode())

    # the imports before the spec: a worker spawned early has them done when its spec comes
    from ..measure import sweep
    from ..measure.config import Point
    from ..measure.host_setup import apply
    from .journal import entry_text
    from .supervise import WorkerSpec
    _import()
    line = sys.stdin.readline()
    if not line:
        return 0  # the parent is gone before saying anything
    spec = WorkerSpec.from_json(json.loads(line)["spec"])
    apply(spec.threads, spec.pin_cpu)
    _preload()
    send("R")
    line = sys.stdin.readline()
    if not line:
        return 0  # the parent went on without this worker
    job = json.loads(line)
    points = [Point(**p) for p in job["points"]]
    peak = job.get("peak_tflops")
    peak = float("nan") if peak is None else peak
    owed = False  # an F line due: the entry before is written, not yet fsynced

    def synced() -> None:
        nonlocal owed
        if owed:
            if not sys.stdin.readline():
                sys.exit(0)  # the parent is gone
            owed = False

    handoff = 0.0  # seconds the point before waited for its go-ahead: goes in this point's cost
    for point in points:
        send("S", point.label)
        cost: dict = {"handoff": handoff} if handoff else {}
        result = sweep.measure(point, spec.protocol, cost, spec.extras, before_rounds=synced)
        synced()  # a point that failed before its rounds
        result.peak_tflops = peak
        text = entry_text(result)
        send("C", json.dumps(cost))
        t0 = time.perf_counter()
        send("E", text)
        if not sys.stdin.readline():
            return 0  # the parent is gone
        handoff = time.perf_counter() - t0
        owed = True
    synced()
    send("D")
    # Everything is sent: skip the interpreter's teardown of torch (over a second, which the
    # parent would wait for) by leaving at once.
    sys.stderr.flush()
    os._exit(0)


if __name__ == "__main__":
    sys.exit(main())
