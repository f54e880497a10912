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
from typing import Callable

import torch

from . import bytecodes, compat, hostwork
from .check import compare
from .config import Point
from .cost import add_seconds
from .inputs import build
from .machine import host_probe
from .memory import peak_memory
from .paths import FastPathNotTaken, backend_paths, make_paths, run_fast_checked
from .protocol import Protocol
from .reference import fp32_reference, max_abs_err
from .results import DONE, ERROR, MISMATCH, NO_FASTPATH, WALL, Result
from .timing import DeviceTimes, wall_rounds


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


def wall_pass(point: Point, proto: Protocol, cost: dict | None = None, extras: bool = True,
              before_rounds: Callable[[], None] | None = None) -> Result:
    """Build, check fast against slow, (``extras``) the fp32 drift, then the wall rounds.

    ``before_rounds`` runs once the inputs are built and checked, just before the timed rounds:
    a supervised worker waits there until the point before is fsynced to the journal. Cost keys:
    ``wall_pass`` (``wall_build_check`` the first part), ``extra_fp32``, ``journal_wait``."""
    cost = {} if cost is None else cost
    res = Result(point, stage=WALL)
    t0 = time.perf_counter()
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
        if before_rounds:  # its wait is counted apart, as ``journal_wait``
            t1 = time.perf_counter()
            before_rounds()
            t0 += add_seconds(cost, "journal_wait", time.perf_counter() - t1)
        probe = host_probe()
        res.rounds, res.window_calls = wall_rounds(paths, proto, point.device)
        res.host_probe_us = [probe, host_probe()]
    except FastPathNotTaken as exc:
        res.status, res.message = NO_FASTPATH, str(exc)
    except Exception as exc:  # OOM, kernel refusals, anything: this point fails, the sweep goes on
        res.status, res.message, res.rounds = ERROR, one_line(exc), {}
        _recover(point.device)
    add_seconds(cost, "wall_pass", time.perf_counter() - t0)
    if not res.timed:
        res.stage = DONE  # nothing more to measure at a failed point
    return res


def counts_pass(res: Result, proto: Protocol, cost: dict | None = None,
                extras: bool = True) -> Result:
    """Device time, host-work counts and memory of a point whose wall pass is done (its inputs
    built again); a failure leaves those figures NaN with a note. Returns ``res``, stage done."""
    cost = {} if cost is None else cost
    if res.stage == DONE or not res.timed:
        res.stage = DONE
        return res
    point = res.point
    t0 = time.perf_counter()
    try:
        paths = active_paths(build(point))
    except Exception as exc:
        _note(res, f"counts: {one_line(exc)}")
        _recover(point.device)
        res.stage = DONE
        return res
    add_seconds(cost, "counts_build", time.perf_counter() - t0)
    if proto.device_calls and point.device.startswith("cuda"):
        _device_pass(res, paths, proto, cost, extras)
    elif proto.device_calls and proto.host_work:
        _host_counts(res, paths, cost)
    if proto.host_work and proto.device_calls:
        _bytecodes(res, paths, cost)
    if extras and not res.peak_mem and point.device.startswith("cuda"):
        _extra(res, cost, "memory", _memory, res, paths)
    res.stage = DONE
    return res


def _device_pass(res: Result, paths: dict, proto: Protocol, cost: dict, extras: bool) -> None:
    """Kernel times on CUDA (with the backend split and peak memory when ``extras``); a failure
    leaves them NaN with a note."""
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
    """``device_calls`` labelled calls per path, then (``extras``) one call of the fast path per
    SDPA backend allowed alone (skipped where that backend cannot serve the point, and for the
    backend that serves the default call: see ``_SERVED``), in one session. Kernel time is
    steady enough that one call tells the backends apart, and needs no warm-up: what a first
    call pays (loading a kernel, building a plan) is host time, which this figure does not
    count. Sets ``res.device_calls``, ``res.sdpa_backend`` and (``extras``) the paths'
    ``res.peak_mem``, read around the same calls; returns the session's cost, with the backend
    calls' own seconds as ``backends``.
    """
    p = res.point
    key = (p.device, p.dtype, p.embed_dim // p.num_heads)
    # the host-work counts need the op records, which cost more to stop and read than the
    # calls take: one call per path carries them, in a short session of its own after this one
    counted = 1 if proto.host_work and p.device.startswith("cuda") else 0
    with DeviceTimes(p.device) as dt:
        for name, path in paths.items():
            if proto.device_calls > counted:
                dt.record(name, path, proto.device_calls - counted)
        t0 = time.perf_counter()
        split = backend_paths(paths["fast"]) if extras and dt.cuda else {}
        guess = f"fast@{_SERVED[key]}" if key in _SERVED and f"fast@{_SERVED[key]}" in split else ""
        for name, path in split.items():
            if name != guess:
                _try_record(dt, name, path)
        backends = time.perf_counter() - t0 if split else 0.0
    overhead = dict(dt.overhead_s)
    if counted:
        with DeviceTimes(p.device, ops=True) as hw:
            for name, path in paths.items():
                hw.record(name, path, counted)
        for name, times in hw.per_call.items():
            dt.per_call[name] = dt.per_call.get(name, []) + times
            dt.kernel_names.setdefault(name, set()).update(hw.kernel_names.get(name, ()))
        for k, v in hw.overhead_s.items():
            overhead[k] += v
        res.host_work = {n: hostwork.summary(hw.host_work[n], device=True)
                         for n in paths if n in hw.host_work}
    res.device_calls = dt.per_call
    res.sdpa_backend = compat.sdpa_backend_of(dt.kernel_names.get("fast", ()))
    if res.sdpa_backend:
        _SERVED[key] = res.sdpa_backend
    if guess and guess == f"fast@{res.sdpa_backend}":
        res.device_calls[guess] = list(res.device_calls.get("fast", []))
    elif guess:
        t0 = time.perf_counter()
        with DeviceTimes(p.device) as again:
            _try_record(again, guess, split[guess])
        res.device_calls.update(again.per_call)
        backends += time.perf_counter() - t0
    if extras:
        res.peak_mem = {n: b for n, b in dt.peak_mem.items() if n in paths and not math.isnan(b)}
    return {**overhead, "backends": backends}


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
