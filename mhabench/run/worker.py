"""The measuring process a supervisor starts (``python -m mhabench.run.worker``).

Imports torch and the measuring code, reads one JSON line on stdin (``{"spec"}``), applies it
and warms up (one tiny attention call), says ``R``, reads the job (``{"points", "partials"}``),
says ``K {host calibration}``, then:

1. the points' wall passes (:func:`mhabench.measure.passes.wall_passes`: a chunk's rounds
   interleaved), ``S label`` whenever work moves to a point, then per point ``C {cost}`` and
   ``W {record}``. A point whose host probe read the slow state
   (:mod:`mhabench.measure.retime`) is timed again after the first point whose probe reads the
   fast state, or after the last point: ``S label``, its wall pass again, ``C``, up to the
   protocol's ``retime`` times, then ``W`` with the timing kept;
2. for the points whose wall pass was measured (this run's and the job's ``partials``), in
   chunks whose device calls share a profiler session
   (:func:`mhabench.measure.passes.counts_passes`): ``T label`` whenever work on a point
   begins, then per point of the chunk ``C`` and ``E {record}``;

then ``K`` again and ``D``. After each record it waits for the parent's go-ahead (an empty line:
the record is written) and, before the next timed rounds, for ``F`` (it is fsynced). Anything
the measuring code prints goes to stderr. SIGINT is ignored (the parent decides what an
interruption means) and the worker dies with its parent.
"""
from __future__ import annotations

import json
import os
import signal
import sys
import time


def _preload() -> None:
    """One tiny attention call (the attention code's own lazy imports and set-up), with the
    spec's threads, so that the point timer counts measuring only."""
    import torch
    m = torch.nn.MultiheadAttention(8, 2, batch_first=True).eval()
    x = torch.zeros(1, 2, 8)
    with torch.inference_mode():
        m(x, x, x, key_padding_mask=torch.tensor([[False, True]]), need_weights=False)


def record_text(result) -> str:
    """A result's record as one JSON line. A failure while deriving or serialising its figures
    marks this point failed, with the reason, instead of ending the sweep."""
    from ..measure.results import ERROR, Result
    try:
        result.metrics()  # the figures must be derivable
        return json.dumps(result.record(), allow_nan=True)
    except Exception as exc:
        failed = Result(result.point, status=ERROR,
                        message=f"serialising the result: {type(exc).__name__}: {exc}"[:300])
        return json.dumps(failed.record())


def main() -> int:
    from ..measure.host_setup import die_with_parent
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    die_with_parent()
    out = os.fdopen(os.dup(1), "wb", buffering=0)
    os.dup2(2, 1)

    def send(kind: str, text: str = "") -> None:
        out.write(f"{kind} {text}\n".encode())

    # the imports before the spec: a worker spawned early has them done when its spec comes
    from ..measure import passes
    from ..measure.config import Point
    from ..measure.host_setup import apply
    from ..measure.machine import build_identity, host_calibration
    from ..measure.retime import Retimer
    from ..measure.results import WALL, Result
    from .supervise import WorkerSpec
    line = sys.stdin.readline()
    if not line:
        return 0  # the parent is gone before saying anything
    spec = WorkerSpec.from_json(json.loads(line)["spec"])
    host = apply(spec.threads)
    _preload()
    send("R", json.dumps({**build_identity(), "host_setup": host}))
    line = sys.stdin.readline()
    if not line:
        return 0  # the parent went on without this worker
    job = json.loads(line)
    send("K", json.dumps(host_calibration()))
    owed = False  # an F line due: the record before is written, not yet fsynced

    def synced() -> None:
        nonlocal owed
        if owed:
            if not sys.stdin.readline():
                sys.exit(0)  # the parent is gone
            owed = False

    def deliver(kind: str, result, cost: dict) -> None:
        nonlocal owed
        send("C", json.dumps(cost))
        send(kind, record_text(result))
        if not sys.stdin.readline():
            sys.exit(0)  # the parent is gone
        owed = True

    def time_again(before: Result) -> Result:
        """The point's wall pass again, without its extra: the fp32 drift of the same seeded
        inputs is the first pass's, which the timing kept carries either way."""
        send("S", before.point.label)
        cost = {}
        again = passes.wall_pass(before.point, spec.protocol, cost, extras=False,
                                 before_rounds=synced)
        if again.stage == WALL:  # timed: its check and its notes are the first pass's
            again.max_abs_err_fp32, again.message = before.max_abs_err_fp32, before.message
        synced()
        send("C", json.dumps({"retime": sum(v for k, v in cost.items()
                                            if k != "wall_build_check")}))
        return again

    retimer = Retimer(spec.protocol.retime, time_again, planned=len(job["points"]),
                      share=spec.protocol.retime_share,
                      time_share=spec.protocol.retime_time_share)
    points = [Point(**d) for d in job["points"]]
    for result, cost in passes.wall_passes(points, spec.protocol, spec.extras,
                                           before_rounds=synced,
                                           on_point=lambda label: send("S", label)):
        synced()  # a point that failed before its rounds
        deliver("W", result, cost)
        if result.stage == WALL:
            for kept in retimer.add(result.point.label, result, cost.get("wall_pass", 0.0)):
                deliver("W", kept, {})  # the point's record again: the timing kept, its tries
    for kept in retimer.finish():
        deliver("W", kept, {})
    measured = retimer.measured
    todo = {label: Result.of_record(r) for label, r in job.get("partials", {}).items()}
    todo.update(measured)
    order = [Point(**d).label for d in job["points"]]

    def counting(label: str) -> None:
        synced()
        send("T", label)

    ordered = [todo[label] for label in sorted(todo, key=lambda x: order.index(x) if x in order
                                               else -1)]
    for result, cost in passes.counts_passes(ordered, spec.protocol, spec.extras, counting):
        synced()
        deliver("E", result, cost)
    synced()
    send("K", json.dumps(host_calibration()))
    send("D")
    # Everything is sent: skip the interpreter's teardown of torch (over a second, which the
    # parent would wait for) by leaving at once.
    sys.stderr.flush()
    os._exit(0)


if __name__ == "__main__":
    sys.exit(main())
