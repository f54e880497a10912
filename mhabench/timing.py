"""Wall time by interleaved rounds, and device time from the profiler's kernel records.

Wall time: each path is warmed up for a fixed time, then measured in ``rounds`` rounds; each
round times every path over a window of ``iters`` calls (CUDA events on a GPU, ``perf_counter_ns``
on the CPU), in an order that changes from round to round, so a slow stretch of the host hits
every path alike. Per path we keep every round; the speedup is the median of per-round ratios.

Device time: the summed durations of the kernels each call launched, read from one profiler
session over many calls; host jitter cannot move it.
"""
from __future__ import annotations

import gc
import itertools
import math
import time
from dataclasses import dataclass
from typing import Mapping

import torch
from torch.autograd.profiler import record_function

from . import compat
from .config import ConfigError
from .paths import Path

ORDERS = list(itertools.permutations(range(3)))


@dataclass(frozen=True)
class Protocol:
    """How long and how often to measure. Defaults fit the seed grid within the reference's cost."""

    warmup_ms: float = 4.0      # per path, at least ``min_warmup`` calls
    min_warmup: int = 2
    rounds: int = 10
    target_ms: float = 15.0     # wall time spent measuring one path, across all rounds
    max_iters: int = 50         # calls per window at most
    device_calls: int = 3       # profiled calls per path (0: no device time)
    device_chunk: int = 64      # points per profiler session

    def __post_init__(self):
        for name in ("rounds", "min_warmup", "max_iters"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be >= 1, got {getattr(self, name)}")
        for name in ("warmup_ms", "target_ms"):
            if not getattr(self, name) > 0:
                raise ConfigError(f"{name} must be > 0, got {getattr(self, name)}")
        if self.device_calls < 0 or self.device_chunk < 1:
            raise ConfigError("device_calls must be >= 0 and device_chunk >= 1")


class Clock:
    """Elapsed microseconds of a window of calls on one device."""

    def __init__(self, device: str):
        self.cuda = device.startswith("cuda")

    def sync(self):
        if self.cuda:
            torch.cuda.synchronize()

    def window(self, path: Path, iters: int) -> float:
        """Mean microseconds per call over ``iters`` back-to-back calls."""
        with path.context():
            self.sync()
            if self.cuda:
                start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
                start.record()
                for _ in range(iters):
                    path.call()
                end.record()
                end.synchronize()
                return start.elapsed_time(end) * 1000.0 / iters
            t0 = time.perf_counter_ns()
            for _ in range(iters):
                path.call()
            return (time.perf_counter_ns() - t0) / 1000.0 / iters


def warmup(clock: Clock, path: Path, proto: Protocol) -> float:
    """Run ``path`` for ``warmup_ms`` (at least ``min_warmup`` calls); return its µs per call."""
    calls, spent, per_call = 0, 0.0, math.inf
    while calls < proto.min_warmup or spent < proto.warmup_ms * 1000.0:
        per_call = clock.window(path, 1)
        spent += per_call
        calls += 1
    return per_call


def iters_for(per_call_us: float, proto: Protocol) -> int:
    """Calls per window so that all rounds together take about ``target_ms``."""
    budget_us = proto.target_ms * 1000.0 / proto.rounds
    return int(min(proto.max_iters, max(1, round(budget_us / max(per_call_us, 1e-3)))))


def wall_rounds(paths: Mapping[str, Path], proto: Protocol, device: str) -> dict[str, list[float]]:
    """Warm up, then interleaved rounds; returns µs per call for each path and round."""
    clock = Clock(device)
    names = list(paths)
    iters = {n: iters_for(warmup(clock, paths[n], proto), proto) for n in names}
    out: dict[str, list[float]] = {n: [] for n in names}
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        for r in range(proto.rounds):
            order = ORDERS[r % len(ORDERS)] if len(names) == 3 else range(len(names))
            for i in order:
                n = names[i]
                out[n].append(clock.window(paths[n], iters[n]))
    finally:
        if was_enabled:
            gc.enable()
    return out


LABEL = "mhabench::"


class DeviceTimes:
    """One profiler session over many labelled calls; kernel time per call, per label.

    Use as a context manager; call :meth:`record` inside, read :attr:`per_call` after.
    On a CPU device nothing is recorded (there are no kernels to sum) and every label is absent.
    """

    def __init__(self, device: str):
        self.device = device
        self.cuda = device.startswith("cuda")
        self.per_call: dict[str, list[float]] = {}
        self._prof = None

    def __enter__(self):
        if self.cuda:
            self._prof = compat.profiler(self.device)
            self._prof.__enter__()
        return self

    def record(self, label: str, path: Path, calls: int) -> None:
        if not self.cuda:
            return
        with path.context():
            for _ in range(calls):
                with record_function(LABEL + label):
                    path.call()
        torch.cuda.synchronize()

    def __exit__(self, *exc):
        if self._prof is None:
            return False
        self._prof.__exit__(*exc)
        if exc[0] is None:
            self.per_call = per_label_device_us(self._prof.events())
        return False


def per_label_device_us(events) -> dict[str, list[float]]:
    """For each labelled range, the device time of the kernels launched inside it (µs).

    ``events`` are profiler FunctionEvents; a range's device time is its own kernels plus its
    descendants', found by walking the CPU-side tree.
    """
    out: dict[str, list[float]] = {}
    for evt in events:
        if not evt.name.startswith(LABEL) or evt.cpu_parent is not None and _labelled_ancestor(evt):
            continue
        out.setdefault(evt.name[len(LABEL):], []).append(_subtree_device_us(evt))
    return out


def _labelled_ancestor(evt) -> bool:
    p = evt.cpu_parent
    while p is not None:
        if p.name.startswith(LABEL):
            return True
        p = p.cpu_parent
    return False


def _subtree_device_us(evt) -> float:
    total, stack = 0.0, [evt]
    while stack:
        e = stack.pop()
        total += sum(k.duration for k in getattr(e, "kernels", ()))
        stack.extend(e.cpu_children)
    return total
