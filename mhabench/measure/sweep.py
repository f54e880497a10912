"""Measure points, one at a time, with each point's failure kept to that point."""
from __future__ import annotations

import datetime
import gc
import math
import platform
import sys
import time
import warnings
from dataclasses import asdict
from typing import Callable, Iterable

import torch

from . import compat, host_setup, hostwork
from .availability import how_measured, not_available
from .check import compare
from .config import ConfigError, Point
from .cost import add_seconds
from .inputs import build
from .memory import peak_memory
from .paths import FastPathNotTaken, backend_paths, make_paths, run_fast_checked
from .reference import fp32_reference, max_abs_err
from .results import ERROR, MISMATCH, NO_FASTPATH, Result
from .protocol import Protocol
from .timing import DeviceTimes, wall_rounds


def require_device(device: str) -> None:
    """Fail early, with one line, when the device cannot be used."""
    if device.startswith("cuda"):
        if not compat.cuda_available():
            raise ConfigError(f"device {device!r} requested but CUDA is not available")
        index = int(device.split(":")[1]) if ":" in device else 0
        if index >= torch.cuda.device_count():
            raise ConfigError(f"device {device!r} does not exist ({torch.cuda.device_count()} GPUs)")


def default_device() -> str:
    return "cuda" if compat.cuda_available() else "cpu"


def device_name(device: str) -> str:
    """The GPU's name, or the CPU's model (run metadata)."""
    from .peak import model_name
    return model_name(device)


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}"[:300]


def _recover(device: str) -> None:
    """After a failure (out of memory above all), give cached memory back before the next point."""
    gc.collect()
    if device.startswith("cuda"):
        torch.cuda.empty_cache()


def active_paths(inp):
    paths = make_paths(inp)
    if not compat.can_disable_fastpath(inp.mha):
        paths.pop("slow_fair")
    return paths


def measure(point: Point, proto: Protocol, cost: dict | None = None,
            extras: bool = True, before_rounds: Callable[[], None] | None = None) -> Result:
    """Correctness, wall time and (on CUDA) device time of one point, with the figures beyond
    the reference (``extras``: drift against the fp32 reference, peak memory, the SDPA backend
    split), none of which runs inside the timed rounds.

    Never raises: failures become the Result's status; a failing extra or device-time session
    only leaves its figures NaN and a note. Device time is taken after the wall rounds, on the
    same inputs, in a profiler session of its own: the session records only the labelled
    calls, so opening one per point costs milliseconds and the inputs are built once; peak
    memory is read around the same calls. ``cost``, if given, accumulates seconds:
    ``wall_pass`` (build, check, rounds; ``wall_build_check`` the first two), ``device_pass``
    (of which the profiler's own ``profiler_start``/``profiler_stop``/``profiler_parse``), and
    the extras' ``extra_fp32``,
    ``extra_backends`` (inside the device pass's session, not counted in ``device_pass``) and
    ``extra_memory`` (only where no device pass carried the reading). ``before_rounds`` runs
    once the inputs are built and checked, just before the timed rounds: a supervised worker
    waits there until the point before is fsynced to the journal.

    The passes, in order: :func:`_wall_pass`, then :func:`_device_pass` (CUDA) or
    :func:`_host_counts` (a CPU), then :func:`_extras`; each returns here.
    """
    cost = {} if cost is None else cost
    res = Result(point)
    paths = _wall_pass(res, proto, cost, extras, before_rounds)
    if paths is None or not res.timed:
        return res
    if proto.device_calls and point.device.startswith("cuda"):
        _device_pass(res, paths, proto, cost, extras)
    elif proto.device_calls and proto.host_work:
        _host_counts(res, paths, cost)
    if extras:
        _extras(res, paths, cost)
    return res


def _wall_pass(res: Result, proto: Protocol, cost: dict, extras: bool,
               before_rounds: Callable[[], None] | None = None) -> dict | None:
    """Build, check fast against slow, then the wall rounds; the paths, or None if the point
    failed (its status says why). The fp32 drift (an extra) runs here, between the check and
    the rounds: it needs the fast output, which the rounds do not keep alive."""
    point = res.point
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
        if before_rounds:  # its wait is counted apart, as ``journal_wait``
            t1 = time.perf_counter()
            before_rounds()
            t0 += add_seconds(cost, "journal_wait", time.perf_counter() - t1)
        res.rounds = wall_rounds(paths, proto, point.device)
    except FastPathNotTaken as exc:
        res.status, res.message = NO_FASTPATH, str(exc)
        inp = paths = fast_out = None
    except Exception as exc:  # OOM, kernel refusals, anything: this point fails, the sweep goes on
        res.status, res.message, res.rounds = ERROR, _one_line(exc), {}
        inp = paths = fast_out = None
        _recover(point.device)
    add_seconds(cost, "wall_pass", time.perf_counter() - t0)
    return paths


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
        res.message = (res.message + "; " if res.message else "") + f"device time: {_one_line(exc)}"
        _recover(res.point.device)
    add_seconds(cost, "device_pass", time.perf_counter() - t1 - split)


def _host_counts(res: Result, paths: dict, cost: dict) -> None:
    """The host-work counts on a CPU, where no device pass carries them."""
    t1 = time.perf_counter()
    try:
        add_host_work(res, paths)
    except Exception as exc:
        res.message = (res.message + "; " if res.message else "") + f"host work: {_one_line(exc)}"
    add_seconds(cost, "host_work_pass", time.perf_counter() - t1)


def _extras(res: Result, paths: dict, cost: dict) -> None:
    """The extras after the timed passes: peak memory on CUDA, where the device pass did not
    read it (the fp32 drift ran in the wall pass, the backend split in the device pass)."""
    if not res.peak_mem and res.point.device.startswith("cuda"):
        _extra(res, cost, "memory", _memory, res, paths)


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
        res.message = (res.message + "; " if res.message else "") + f"{label}: {_one_line(exc)}"
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


#: Points between calls of ``sweep``'s ``on_chunk`` (where callers rewrite their files).
CHUNK = 64


def sweep(points: Iterable[Point], proto: Protocol,
          on_point: Callable[[Result], None] | None = None,
          on_chunk: Callable[[list[Result]], None] | None = None,
          cost: dict | None = None, chunk: int = CHUNK,
          peak_tflops: float = math.nan, extras: bool = True) -> list[Result]:
    """Measure every point, in order.

    ``on_point`` sees each result when it is done; ``on_chunk`` all results so far, every
    ``chunk`` points and at the end: callers write their files there, so an interrupted sweep
    keeps finished points and writing stays linear in the grid. ``cost`` as in :func:`measure`.
    ``peak_tflops`` (the device's calibrated matmul peak) is stored on every result for its
    share-of-peak figures. ``extras`` as in :func:`measure`.
    """
    points = list(points)
    results: list[Result] = []
    cost = {} if cost is None else cost
    for i, p in enumerate(points, 1):
        r = measure(p, proto, cost, extras)
        r.peak_tflops = peak_tflops
        results.append(r)
        if on_point:
            on_point(r)
        if on_chunk and (i % chunk == 0 or i == len(points)):
            on_chunk(results)
    return results


def calibrate_peak(device: str, dtype: str, force: bool = False) -> dict:
    """The device's matmul peak for the share-of-peak figures, as run metadata.

    Measured once per (device, dtype, torch) by :func:`mhabench.measure.peak.calibrate` and cached
    (on a CPU at a size that keeps it to about a second); a failure leaves the peak NaN (the share-of-peak figures then too), with the reason.
    """
    from . import peak
    t0 = time.perf_counter()
    entry = {"dtype": dtype, "cache": str(peak.cache_path())}
    try:
        entry.update(peak.device_peak(device, dtype, force))  # checked: see mhabench.measure.peak
    except Exception as exc:
        entry.update(tflops=math.nan, error=_one_line(exc))
    entry["seconds"] = round(time.perf_counter() - t0, 3)
    return entry


def run_meta(device: str, proto: Protocol, grid: str) -> dict:
    """What a result file needs to be read later: versions, device, protocol."""
    return {
        "mhabench_grid": grid,
        "device": device,
        "device_name": device_name(device),
        "torch": compat.TORCH_VERSION,
        "torch_git": compat.TORCH_GIT,
        "cuda": getattr(torch.version, "cuda", None),
        "python": sys.version.split()[0],
        "host": platform.node(),
        "protocol": asdict(proto),
        "host_setup": host_setup.host_meta(),  # threads, cores, load average
        "started": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "n/a": not_available(device),
        "how_measured": how_measured(device),
    }
