"""The passes of one point, each failure kept to that point.

A point is measured in two passes, which a sweep runs in two phases (every point's wall pass,
then every point's counts pass: :mod:`mhabench.run.worker`), so that nothing a profiler session
leaves behind in a process (observers, callbacks, allocator or stream state) can reach a wall
figure:

- :func:`wall_pass`: build the inputs, check fast against slow, the fp32 drift (an extra), then
  the timed wall rounds. Stage ``wall``.
- :func:`counts_pass`: the same inputs built again (seeded: identical), then on CUDA the device
  pass (kernel times from a profiler session; the SDPA backend split and peak memory as
  extras), the exact host-work counts (aten ops, and CUDA runtime calls from their own short
  session; Python bytecodes), and memory where the device pass did not read it. Stage ``done``.

:func:`measure` runs both, in one go, for a caller that measures a single point.
"""
from __future__ import annotations

import gc
import math
import time
import warnings
from typing import Callable, Iterator, Sequence

import torch

from . import bytecodes, compat, hostwork
from .check import compare
from .config import Point
from .cost import add_seconds
from .inputs import build, input_bytes
from .host_setup import collector_off
from .machine import host_probe
from .memory import peak_memory
from .paths import FastPathNotTaken, backend_paths, make_paths, run_fast_checked
from .protocol import Protocol
from .reference import fp32_reference, max_abs_err
from .results import DONE, ERROR, MISMATCH, NO_FASTPATH, WALL, Result
from .retime import RoundKeeper
from .timing import Clock, DeviceTimes, plan_rounds, round_order, wall_rounds


def one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}"[:300]


def _recover(device: str) -> None:
    """After a failure (out of memory above all), give cached memory back before the next point."""
    gc.collect()
    if device.startswith("cuda"):
        torch.cuda.empty_cache()


def _note(res: Result, text: str) -> None:
    res.message = (res.message + "; " if res.message else "") + text


def active_paths(inp):
    paths = make_paths(inp)
    if not compat.can_disable_fastpath(inp.mha):
        paths.pop("slow_fair")
    return paths


def measure(point: Point, proto: Protocol, cost: dict | None = None, extras: bool = True,
            before_rounds: Callable[[], None] | None = None) -> Result:
    """Both passes of one point (see the module docstring). Never raises: failures become the
    Result's status; a failing extra or counts session only leaves its figures NaN and a note.
    ``cost``, if given, accumulates seconds per kind of work."""
    return counts_pass(wall_pass(point, proto, cost, extras, before_rounds), proto, cost, extras)


def wall_prepare(point: Point, proto: Protocol, cost: dict,
                 extras: bool = True) -> tuple[Result, dict | None]:
    """A wall pass up to its rounds: build, check fast against slow, (``extras``) the fp32
    drift. Returns the result and the paths to time, or no paths where the point failed (its
    result then stage done). Cost keys: ``wall_pass`` (``wall_build_check`` its first part),
    ``extra_fp32``."""
    res = Result(point, stage=WALL)
    t0 = time.perf_counter()
    paths = None
    try:
        inp = build(point)
        res.padding, res.lengths = inp.padding, list(inp.lengths)
        paths = active_paths(inp)
        fast_out = run_fast_checked(paths["fast"])
        res.fast_path = True
        chk = compare(fast_out, paths["slow"].once(), inp.mask, point.dtype)
        res.max_abs_err = chk.max_abs_err
        if not chk.ok:
            res.status, res.message = MISMATCH, chk.message
        add_seconds(cost, "wall_build_check", time.perf_counter() - t0)
        if extras:
            t0 += _extra(res, cost, "fp32", _drift, res, inp, fast_out)  # counted apart
        del fast_out
    except FastPathNotTaken as exc:
        res.status, res.message, paths = NO_FASTPATH, str(exc), None
    except Exception as exc:  # OOM, kernel refusals, anything: this point fails, the sweep goes on
        res.status, res.message, paths = ERROR, one_line(exc), None
        _recover(point.device)
    add_seconds(cost, "wall_pass", time.perf_counter() - t0)
    if paths is None:
        res.stage = DONE  # nothing more to measure at a failed point
    return res, paths


def _failed(res: Result, exc: BaseException) -> None:
    """A point whose rounds raised: failed, its rounds gone; the sweep goes on."""
    res.status, res.message, res.rounds, res.stage = ERROR, one_line(exc), {}, DONE
    _recover(res.point.device)


def wall_pass(point: Point, proto: Protocol, cost: dict | None = None, extras: bool = True,
              before_rounds: Callable[[], None] | None = None) -> Result:
    """One point's wall pass, its rounds back to back: :func:`wall_prepare`, then the wall
    rounds bracketed by two probes of the host's speed.

    ``before_rounds`` runs once the inputs are built and checked, just before the timed rounds:
    a supervised worker waits there until the point before is fsynced to the journal. Cost keys:
    :func:`wall_prepare`'s, and ``journal_wait``."""
    cost = {} if cost is None else cost
    res, paths = wall_prepare(point, proto, cost, extras)
    if paths is None:
        return res
    if before_rounds:  # its wait is counted apart, as ``journal_wait``
        t1 = time.perf_counter()
        before_rounds()
        add_seconds(cost, "journal_wait", time.perf_counter() - t1)
    t0 = time.perf_counter()
    try:
        probe = host_probe()
        res.rounds, res.window_calls = wall_rounds(paths, proto, point.device)
        res.host_probe_us = [probe, host_probe()]
    except Exception as exc:
        _failed(res, exc)
    add_seconds(cost, "wall_pass", time.perf_counter() - t0)
    return res


def _chunks(items: Sequence, size: int, point_of: Callable = lambda x: x,
            alone: Callable[[Point], bool] = lambda p: False) -> Iterator[list]:
    """Consecutive items in chunks of at most ``size`` and :data:`SESSION_BYTES` of inputs (a
    larger point alone), one device to a chunk; a point for which ``alone`` holds by itself."""
    chunk: list = []
    held = 0
    for item in items:
        p = point_of(item)
        b = input_bytes(p)
        if chunk and (alone(p) or len(chunk) >= size or held + b > SESSION_BYTES
                      or p.device != point_of(chunk[0]).device):
            yield chunk
            chunk, held = [], 0
        chunk.append(item)
        held += b
    if chunk:
        yield chunk


def wall_chunks(points: Sequence[Point], size: int) -> Iterator[list[Point]]:
    """The points whose rounds are interleaved: :func:`_chunks` of at most ``size``."""
    return _chunks(points, size)


def wall_passes(points: Sequence[Point], proto: Protocol, extras: bool = True,
                before_rounds: Callable[[], None] | None = None,
                on_point: Callable[[str], None] | None = None) -> Iterator[tuple[Result, dict]]:
    """Every point's wall pass, yielding each (result, its cost) as it is done.

    With ``proto.interleave`` 1, :func:`wall_pass` point by point. Otherwise in chunks of that
    many points (:func:`wall_chunks`): each point prepared and warmed up, then round 1 of every
    point, round 2..., each round bracketed by its own two probes; a point's rounds whose probes
    read the host's slow state are left out (:class:`mhabench.measure.retime.RoundKeeper`,
    ``rounds_left_out``), so that the slow state takes some of a point's rounds, not all of
    them. A point failing before its rounds is yielded at once; the others once the chunk's
    rounds are done. ``on_point(label)`` is told whenever work moves to a point (a supervisor
    knows which point a crash was in); ``before_rounds`` runs before each chunk's rounds."""
    tell = on_point or (lambda label: None)
    if proto.interleave <= 1:
        for p in points:
            tell(p.label)
            cost: dict = {}
            yield wall_pass(p, proto, cost, extras, before_rounds), cost
        return
    keeper = RoundKeeper()
    for chunk in wall_chunks(points, proto.interleave):
        yield from _interleaved(chunk, proto, extras, before_rounds, tell, keeper)
        if chunk[0].device.startswith("cuda"):
            torch.cuda.empty_cache()


class _Timed:
    """A point of an interleaved chunk: its result, paths, windows, rounds and their probes."""

    def __init__(self, res: Result, paths: dict, cost: dict):
        self.res, self.paths, self.cost = res, paths, cost
        self.calls: dict[str, int] = {}
        self.rounds = 0
        self.samples: dict[str, list[float]] = {n: [] for n in paths}
        self.probes: list[list[float]] = []


def _interleaved(chunk: list[Point], proto: Protocol, extras: bool,
                 before_rounds: Callable[[], None] | None, tell: Callable[[str], None],
                 keeper: RoundKeeper) -> Iterator[tuple[Result, dict]]:
    live: list[_Timed] = []
    for p in chunk:
        tell(p.label)
        cost: dict = {}
        res, paths = wall_prepare(p, proto, cost, extras)
        if paths is None:
            yield res, cost
        else:
            live.append(_Timed(res, paths, cost))
    if not live:
        return
    if before_rounds:
        t1 = time.perf_counter()
        before_rounds()
        add_seconds(live[0].cost, "journal_wait", time.perf_counter() - t1)
    clock = Clock(chunk[0].device)
    for t in list(live):
        tell(t.res.point.label)
        t0 = time.perf_counter()
        try:
            t.calls, t.rounds = plan_rounds(clock, t.paths, proto)
        except Exception as exc:
            _failed(t.res, exc)
        add_seconds(t.cost, "wall_pass", time.perf_counter() - t0)
    done = [t for t in live if t.res.stage == DONE]
    live = [t for t in live if t.res.stage != DONE]
    with collector_off():
        for r in range(max((t.rounds for t in live), default=0)):
            for t in live:
                if r >= t.rounds or t.res.stage == DONE:
                    continue
                tell(t.res.point.label)
                t0 = time.perf_counter()
                try:
                    before = host_probe()
                    for n in round_order(r, list(t.paths)):
                        t.samples[n].append(clock.window(t.paths[n], t.calls[n], proto.lead_in))
                    t.probes.append([before, host_probe()])
                except Exception as exc:
                    _failed(t.res, exc)
                add_seconds(t.cost, "wall_pass", time.perf_counter() - t0)
    timed = [t for t in live if t.res.stage != DONE]
    for t in timed:  # every round's probes first: the fast state is the whole chunk's too
        keeper.add(t.res.point.label, t.probes)
    for t in timed:
        kept = keeper.kept(t.probes)
        t.res.rounds = {n: [v[i] for i in kept] for n, v in t.samples.items()}
        t.res.window_calls = t.calls
        t.res.host_probe_us = [x for i in kept for x in t.probes[i]]
        t.res.rounds_left_out = len(t.probes) - len(kept)
    for t in sorted(done + live, key=lambda t: chunk.index(t.res.point)):
        yield t.res, t.cost


def counts_pass(res: Result, proto: Protocol, cost: dict | None = None,
                extras: bool = True) -> Result:
    """Device time, host-work counts and memory of a point whose wall pass is done (its inputs
    built again); a failure leaves those figures NaN with a note. Returns ``res``, stage done."""
    cost = {} if cost is None else cost
    for _, spent in counts_passes([res], proto, extras):
        for k, v in spent.items():
            add_seconds(cost, k, v)
    return res


#: Points whose device calls share one profiler session pair. A session's start and stop cost
#: milliseconds whatever it records: H200, 40 points, 34.5 ms a point with a pair per point,
#: 26 in fours and in tens, 23 all together (``bench/session_cost.py``). A chunk's inputs stay
#: alive together, so it also ends at :data:`SESSION_BYTES` of them (:func:`input_bytes`).
SESSION_POINTS = 16
SESSION_BYTES = 2 << 30


def session_chunks(results: Sequence[Result]) -> Iterator[list[Result]]:
    """Consecutive points in chunks of at most :data:`SESSION_POINTS` and :data:`SESSION_BYTES`
    of inputs (a larger point alone); a point alone on a CPU, which has no device pass."""
    return _chunks(results, SESSION_POINTS, lambda r: r.point,
                   lambda p: not p.device.startswith("cuda"))


def counts_passes(results: Sequence[Result], proto: Protocol, extras: bool = True,
                  on_point: Callable[[str], None] | None = None) -> Iterator[tuple[Result, dict]]:
    """:func:`counts_pass` over ``results`` in order, yielding each (result, its cost) once its
    chunk (:func:`session_chunks`) is done: the chunk's device calls share a profiler session
    pair. ``on_point(label)`` is told whenever work moves to another point, so that a
    supervisor knows which point a crash was in."""
    told = [""]

    def tell(label: str) -> None:  # once per stretch of work on one point
        if on_point and label != told[0]:
            on_point(label)
        told[0] = label
    for chunk in session_chunks(results):
        yield from _counts_chunk(chunk, proto, extras, tell)


def _counts_chunk(chunk: list[Result], proto: Protocol, extras: bool,
                  tell: Callable[[str], None]) -> Iterator[tuple[Result, dict]]:
    costs: list[dict] = [{} for _ in chunk]
    built = []  # (index in the chunk, result, its paths)
    for i, res in enumerate(chunk):
        if res.stage == DONE or not res.timed:
            res.stage = DONE
            continue
        tell(res.point.label)
        t0 = time.perf_counter()
        try:
            built.append((i, res, active_paths(build(res.point))))
        except Exception as exc:
            _note(res, f"counts: {one_line(exc)}")
            _recover(res.point.device)
            res.stage = DONE
            continue
        add_seconds(costs[i], "counts_build", time.perf_counter() - t0)
    if built and proto.device_calls and built[0][1].point.device.startswith("cuda"):
        _device_pass(built, proto, costs, extras, tell)
    elif built and proto.device_calls and proto.host_work:
        for i, res, paths in built:
            _host_counts(res, paths, costs[i])
    for i, res, paths in built:
        tell(res.point.label)
        if proto.host_work and proto.device_calls:
            _bytecodes(res, paths, costs[i])
        if extras and not res.peak_mem and res.point.device.startswith("cuda"):
            _extra(res, costs[i], "memory", _memory, res, paths)
        res.stage = DONE
    del built  # the chunk's inputs, before the caller goes on
    yield from zip(chunk, costs)


def _device_pass(built: list, proto: Protocol, costs: list[dict], extras: bool,
                 tell: Callable[[str], None]) -> None:
    """Kernel times on CUDA (with the backend split and peak memory when ``extras``) of a
    chunk's points, in shared sessions. If a shared session fails, each point is measured in
    sessions of its own, so that a failure leaves only its own point's figures NaN, with a note."""
    if len(built) > 1:
        t1 = time.perf_counter()
        try:
            overhead = add_device_times_many([(res, paths) for _, res, paths in built], proto,
                                             extras, tell)
        except Exception:
            pass  # each point again, alone
        else:
            share = 1.0 / len(built)
            split = overhead.pop("backends", 0.0)
            seconds = time.perf_counter() - t1 - split
            for i, _, _ in built:
                if extras:
                    add_seconds(costs[i], "extra_backends", split * share)
                for k, v in overhead.items():
                    add_seconds(costs[i], f"profiler_{k}", v * share)
                add_seconds(costs[i], "device_pass", seconds * share)
            return
    for i, res, paths in built:
        tell(res.point.label)
        _device_pass_alone(res, paths, proto, costs[i], extras)


def _device_pass_alone(res: Result, paths: dict, proto: Protocol, cost: dict,
                       extras: bool) -> None:
    t1 = time.perf_counter()
    split = 0.0
    try:
        overhead = add_device_times(res, paths, proto, extras=extras)
        split = overhead.pop("backends", 0.0)
        if extras:
            add_seconds(cost, "extra_backends", split)
        for k, v in overhead.items():
            add_seconds(cost, f"profiler_{k}", v)
    except Exception as exc:
        _note(res, f"device time: {one_line(exc)}")
        _recover(res.point.device)
    add_seconds(cost, "device_pass", time.perf_counter() - t1 - split)


def _host_counts(res: Result, paths: dict, cost: dict) -> None:
    """The host-work counts on a CPU, where no device pass carries them."""
    t1 = time.perf_counter()
    try:
        add_host_work(res, paths)
    except Exception as exc:
        _note(res, f"host work: {one_line(exc)}")
    add_seconds(cost, "host_work_pass", time.perf_counter() - t1)


def _bytecodes(res: Result, paths: dict, cost: dict) -> None:
    """Python bytecodes per call of each path, into its host-work counts."""
    t1 = time.perf_counter()
    try:
        for name, path in paths.items():
            functions = bytecodes.count_by_function(path, calls=1)
            work = res.host_work.setdefault(name, {})
            work["bytecodes"], work["functions"] = sum(functions.values()), functions
    except Exception as exc:
        _note(res, f"bytecodes: {one_line(exc)}")
    add_seconds(cost, "bytecodes", time.perf_counter() - t1)


def _drift(res: Result, inp, fast_out) -> None:
    res.max_abs_err_fp32 = max_abs_err(fast_out, fp32_reference(inp), inp.mask)


def _memory(res: Result, paths) -> None:
    res.peak_mem = peak_memory(paths, res.point.device)


def _extra(res: Result, cost: dict, what: str, fn, *args) -> float:
    """Run an untimed extra (its seconds go to ``cost["extra_<what>"]`` and are returned); its
    failure is noted on the point, which stays measured."""
    t0 = time.perf_counter()
    try:
        fn(*args)
    except Exception as exc:
        label = {"fp32": "fp32 reference", "memory": "peak memory"}.get(what, what)
        _note(res, f"{label}: {one_line(exc)}")
        _recover(res.point.device)
    seconds = time.perf_counter() - t0
    add_seconds(cost, f"extra_{what}", seconds)
    return seconds


#: Profiled calls of the fast path per SDPA backend allowed alone.
BACKEND_CALLS = 1


#: The SDPA backend that last served the fast path, per (device, dtype, head dim). The split
#: skips that backend's own call: with it alone allowed, the fast call runs the kernels the
#: default call ran, so the default's calls stand for it. The guess is checked against the
#: kernels after the session; a wrong one costs a short session for the skipped backend.
_SERVED: dict[tuple, str] = {}


def _try_record(dt: DeviceTimes, name: str, path) -> None:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # SDPA explains why a backend refuses
            dt.record(name, path, BACKEND_CALLS)
    except RuntimeError:
        pass  # this backend cannot serve this point: skipped, not failed


def add_device_times(res: Result, paths: dict, proto: Protocol,
                     extras: bool = True) -> dict[str, float]:
    """:func:`add_device_times_many` for one point."""
    return add_device_times_many([(res, paths)], proto, extras)


def _tag(i: int, name: str) -> str:
    """A call's label in a session shared by several points: the point's place, the path."""
    return f"{i}|{name}"


def _untag(by_label: dict) -> dict[int, dict]:
    out: dict[int, dict] = {}
    for label, value in by_label.items():
        i, _, name = label.partition("|")
        out.setdefault(int(i), {})[name] = value
    return out


def add_device_times_many(items: list[tuple[Result, dict]], proto: Protocol, extras: bool = True,
                          tell: Callable[[str], None] | None = None) -> dict[str, float]:
    """Per point (its result and paths): ``device_calls`` labelled calls per path, then
    (``extras``) one call of the fast path per SDPA backend allowed alone (skipped where that
    backend cannot serve the point, and for the backend that serves the default call: see
    ``_SERVED``), all in one session. Kernel time is steady enough that one call tells the
    backends apart, and needs no warm-up: what a first call pays (loading a kernel, building a
    plan) is host time, which this figure does not count. Sets each result's
    ``device_calls``, ``sdpa_backend``, host-work counts and (``extras``) its paths'
    ``peak_mem``, read around the same calls; a point whose calls fail gets a note and none of
    them. Returns the sessions' cost, with the backend calls' own seconds as ``backends``.
    Raises if a session itself fails (the caller measures each point alone then).
    """
    tell = tell or (lambda label: None)
    device = items[0][0].point.device
    # the host-work counts need the op records, which cost more to stop and read than the
    # calls take: one call per path carries them, in a short session of its own after this one
    counted = 1 if proto.host_work and device.startswith("cuda") else 0
    failed: dict[int, BaseException] = {}
    splits: dict[int, dict] = {}
    guesses: dict[int, str] = {}
    backends = 0.0
    with DeviceTimes(device) as dt:
        for i, (res, paths) in enumerate(items):
            tell(res.point.label)
            try:
                for name, path in paths.items():
                    if proto.device_calls > counted:
                        dt.record(_tag(i, name), path, proto.device_calls - counted)
                t0 = time.perf_counter()
                split = backend_paths(paths["fast"]) if extras and dt.cuda else {}
                served = _SERVED.get(_served_key(res.point), "")
                guess = f"fast@{served}" if f"fast@{served}" in split else ""
                for name, path in split.items():
                    if name != guess:
                        _try_record(dt, _tag(i, name), path)
                backends += time.perf_counter() - t0 if split else 0.0
                splits[i], guesses[i] = split, guess
            except Exception as exc:  # this point's calls: the others' stand
                failed[i] = exc
                _recover(device)
    overhead = dict(dt.overhead_s)
    per_call, names, peaks = _untag(dt.per_call), _untag(dt.kernel_names), _untag(dt.peak_mem)
    work: dict[int, dict] = {}
    if counted:
        with DeviceTimes(device, ops=True) as hw:
            for i, (res, paths) in enumerate(items):
                if i in failed:
                    continue
                tell(res.point.label)
                try:
                    for name, path in paths.items():
                        hw.record(_tag(i, name), path, counted)
                except Exception as exc:
                    failed[i] = exc
                    _recover(device)
        for i, by_name in _untag(hw.per_call).items():
            for name, times in by_name.items():
                per_call.setdefault(i, {})[name] = per_call.get(i, {}).get(name, []) + times
        for i, by_name in _untag(hw.kernel_names).items():
            for name, launched in by_name.items():
                names.setdefault(i, {}).setdefault(name, set()).update(launched)
        for k, v in hw.overhead_s.items():
            overhead[k] += v
        work = _untag(hw.host_work)
    again = []  # (point, backend) whose own call the guess skipped wrongly
    for i, (res, paths) in enumerate(items):
        if i in failed:
            _note(res, f"device time: {one_line(failed[i])}")
            continue
        res.device_calls = per_call.get(i, {})
        res.sdpa_backend = compat.sdpa_backend_of(names.get(i, {}).get("fast", ()))
        if res.sdpa_backend:
            _SERVED[_served_key(res.point)] = res.sdpa_backend
        guess = guesses.get(i, "")
        if guess and guess == f"fast@{res.sdpa_backend}":
            res.device_calls[guess] = list(res.device_calls.get("fast", []))
        elif guess:
            again.append((i, guess))
        if counted:
            res.host_work = {n: hostwork.summary(work[i][n], device=True)
                             for n in paths if n in work.get(i, {})}
        if extras:
            res.peak_mem = {n: b for n, b in peaks.get(i, {}).items()
                            if n in paths and not math.isnan(b)}
    if again:
        t0 = time.perf_counter()
        with DeviceTimes(device) as more:
            for i, guess in again:
                _try_record(more, _tag(i, guess), splits[i][guess])
        for i, by_name in _untag(more.per_call).items():
            items[i][0].device_calls.update(by_name)
        backends += time.perf_counter() - t0
    return {**overhead, "backends": backends}


def _served_key(point) -> tuple:
    return (point.device, point.dtype, point.embed_dim // point.num_heads)


#: Calls per path of the host-work session on a CPU (where there is no device pass): the counts
#: are exact, and a CPU call at the larger grid points takes seconds.
HOST_WORK_CALLS = 1


def add_host_work(res: Result, paths: dict) -> None:
    """On a CPU, the exact aten-op counts of each path's call, from a profiler session of its
    own (:data:`HOST_WORK_CALLS` calls per path); on CUDA the device pass carries them."""
    with DeviceTimes(res.point.device, ops=True) as dt:
        for name, path in paths.items():
            dt.record(name, path, HOST_WORK_CALLS)
    res.host_work = {n: hostwork.summary(dt.host_work[n], device=False)
                     for n in paths if n in dt.host_work}
