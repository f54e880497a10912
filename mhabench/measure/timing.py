"""Wall time in interleaved rounds, and device time from the profiler's kernel records.

Wall time: the paths are warmed up in turn for a fixed time, then measured in rounds; a round
times one window of back-to-back calls of every path (as the reference script times a path),
in an order that changes from round to round. Rounds go on until ``target_ms`` is spent
(within ``min_rounds``..``max_rounds``). A slow stretch of the host then hits every path alike,
and the speedup is the median of per-round ratios; every sample is kept.

Device time: the summed durations of the device activity (kernels, copies) each call launched,
read from a profiler session that records only the labelled calls and the device side; host
jitter cannot move it.
"""
from __future__ import annotations

import bisect
import itertools
import statistics
import time
from typing import Mapping

import torch
from torch.autograd.profiler import record_function

from . import compat, hostwork
from .host_setup import collector_off
from .memory import PeakTracker
from .paths import Path
from .protocol import Protocol

ORDERS = list(itertools.permutations(range(3)))


class Clock:
    """Times single calls on one device: CUDA events on a GPU, ``perf_counter_ns`` on a CPU."""

    def __init__(self, device: str):
        self.cuda = device.startswith("cuda")

    def sync(self):
        if self.cuda:
            torch.cuda.synchronize()

    def once(self, path: Path) -> float:
        """Microseconds of one synchronised call (used for warm-up and estimates)."""
        return self.calls([path])[0]

    def window(self, path: Path, n: int, lead_in: int = 0) -> float:
        """µs per call of ``n`` back-to-back calls of ``path`` between two events, with a
        synchronisation before and after (none inside), as the reference times a path.
        ``lead_in`` untimed calls go just before the first event, so that the window starts
        in the path's stream of calls rather than on an idle device."""
        with path.context():
            if self.cuda:
                s, e = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
                self.sync()
                for _ in range(lead_in):
                    path.call()
                s.record()
                for _ in range(n):
                    path.call()
                e.record()
                self.sync()
                return s.elapsed_time(e) * 1000.0 / n
            for _ in range(lead_in):
                path.call()
            t0 = time.perf_counter_ns()
            for _ in range(n):
                path.call()
            return (time.perf_counter_ns() - t0) / 1000.0 / n

    def calls(self, seq: list[Path]) -> list[float]:
        """Call each path of ``seq`` once, in order; µs per call, one synchronisation at the end."""
        if self.cuda:
            marks = []
            self.sync()
            for path in seq:
                s, e = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
                with path.context():
                    s.record()
                    path.call()
                    e.record()
                marks.append((s, e))
            self.sync()
            return [s.elapsed_time(e) * 1000.0 for s, e in marks]
        out = []
        for path in seq:
            with path.context():
                t0 = time.perf_counter_ns()
                path.call()
                out.append((time.perf_counter_ns() - t0) / 1000.0)
        return out


def _settled(times: list[float]) -> float:
    """The median of a warm-up's second half (its first calls pay one-off set-up)."""
    return float(statistics.median(times[len(times) // 2:]))


def warmup_together(clock: Clock, paths: Mapping[str, Path], proto: Protocol) -> dict[str, float]:
    """Warm the paths up in turn, one call of each, until they have spent ``warmup_ms``
    together and each has made ``min_warmup`` calls; per path, the median µs per call of its
    second half. A warm-up is for what first calls pay, which a few calls settle: turn by turn,
    a point pays it once, not once per path."""
    times: dict[str, list[float]] = {n: [] for n in paths}
    spent = 0.0
    while min(map(len, times.values())) < proto.min_warmup or spent < proto.warmup_ms * 1000.0:
        for n, path in paths.items():
            times[n].append(clock.once(path))
            spent += times[n][-1]
    return {n: _settled(t) for n, t in times.items()}


def rounds_for(round_us: float, proto: Protocol) -> int:
    """Rounds that fit ``target_ms`` when one round (a window or call of each path) takes
    ``round_us``."""
    n = round(proto.target_ms * 1000.0 / max(round_us, 1e-3))
    return int(min(proto.max_rounds, max(proto.min_rounds, n)))


#: Calls in one window at most (a path of a fraction of a microsecond).
MAX_WINDOW_CALLS = 10_000


def window_calls(est: Mapping[str, float], proto: Protocol) -> dict[str, int]:
    """Calls per window of each path, so that each window lasts about ``proto.window_us``."""
    return {n: int(max(1, min(MAX_WINDOW_CALLS, round(proto.window_us / max(us, 1e-3)))))
            for n, us in est.items()}


def plan_rounds(clock: Clock, paths: Mapping[str, Path],
                proto: Protocol) -> tuple[dict[str, int], int]:
    """Warm the paths up (:func:`warmup_together`); from its estimates, the calls per window of
    each path and the rounds that fit ``target_ms``."""
    est = warmup_together(clock, paths, proto)
    calls = window_calls(est, proto)
    return calls, rounds_for(sum((calls[n] + proto.lead_in) * est[n] for n in paths), proto)


def round_order(r: int, names: list[str]) -> list[str]:
    """The paths of round ``r``: every permutation of three in turn, else alternating."""
    if len(names) == 3:
        return [names[i] for i in ORDERS[r % len(ORDERS)]]
    return names if r % 2 == 0 else names[::-1]


def wall_rounds(paths: Mapping[str, Path], proto: Protocol,
                device: str) -> tuple[dict[str, list[float]], dict[str, int]]:
    """Warm up, then measure rounds in a rotating order of the paths; returns (µs per call per
    path in round order, one sample per round and path; calls per sample per path).

    A round times one window of back-to-back calls of each path, with a synchronisation
    before and after (none inside): what the reference script times, the throughput of a
    path. ``proto.lead_in`` untimed calls open each window. The calls per window come from the
    warm-up's estimate, so that a window lasts about ``proto.window_us``.
    """
    clock = Clock(device)
    names = list(paths)
    calls, rounds = plan_rounds(clock, paths, proto)
    out: dict[str, list[float]] = {n: [] for n in names}
    with collector_off():
        for r in range(rounds):
            for n in round_order(r, names):
                out[n].append(clock.window(paths[n], calls[n], proto.lead_in))
    return out, calls


LABEL = "mhabench::"


class DeviceTimes:
    """One profiler session over labelled calls: kernel time and host work per call, per label.

    Use as a context manager; call :meth:`record` inside, read :attr:`per_call` (µs of device
    activity per call), :attr:`kernel_names` (what each label launched) and :attr:`host_work`
    (per label, the exact host-work counts of each call: :func:`mhabench.measure.hostwork.per_range`)
    after, and :attr:`peak_mem` (bytes: the largest allocation during one of the label's calls,
    read around them at no cost). With ``ops`` the session also records every dispatched aten
    op, for the counts. On a CPU there are no kernels to sum: a session there exists only for
    the host-work counts (``ops``), and without ``ops`` nothing is recorded.
    :attr:`overhead_s` says what the session itself cost (start, stop, reading the records).
    """

    def __init__(self, device: str, ops: bool = False):
        self.device = device
        self.cuda = device.startswith("cuda")
        self.ops = ops
        self.active = self.cuda or ops
        self.per_call: dict[str, list[float]] = {}
        self.kernel_names: dict[str, set[str]] = {}
        self.host_work: dict[str, list[dict]] = {}
        self.peak_mem: dict[str, float] = {}
        self._dropped: set[str] = set()
        self.overhead_s = {"start": 0.0, "stop": 0.0, "parse": 0.0}
        self._rec = None

    def __enter__(self):
        if self.active:
            t0 = time.perf_counter()
            self._rec = compat.KernelRecorder(self.device, ops=self.ops)
            self._rec.__enter__()
            self.overhead_s["start"] = time.perf_counter() - t0
        return self

    def record(self, label: str, path: Path, calls: int) -> None:
        """``calls`` labelled calls of ``path``. If one raises, the label is dropped from the
        session's figures (what its calls launched is not counted) and the error re-raised."""
        if not self.active:
            return
        try:
            with path.context(), PeakTracker(self.device) as peak:
                for _ in range(calls):
                    with record_function(LABEL + label):
                        path.call()
        except BaseException:
            self._dropped.add(label)
            raise
        self.peak_mem[label] = peak.bytes

    def __exit__(self, *exc):
        if self._rec is None:
            return False
        t0 = time.perf_counter()
        self._rec.__exit__(*exc)
        t1 = time.perf_counter()
        if exc[0] is None:
            prof = compat.raw_profile(self._rec.events(), LABEL)
            ranges = [r for r in prof.ranges if r[2] not in self._dropped]
            if self.cuda:
                self.per_call = attribute_device_time(ranges, prof.launches, prof.kernels)
                self.kernel_names = kernel_names(ranges, prof.launches, prof.kernels)
            if self.ops:
                self.host_work = hostwork.per_range(ranges, prof.host, prof.launches,
                                                    prof.kernels, prof.copy_bytes)
        self.overhead_s["stop"], self.overhead_s["parse"] = t1 - t0, time.perf_counter() - t1
        return False


def _range_of(ranges, starts, t):
    """Index of the range holding host time ``t``, or -1."""
    i = bisect.bisect_right(starts, t) - 1
    return i if i >= 0 and t <= ranges[i][1] else -1


def kernel_names(ranges, ops, kernels) -> dict[str, set[str]]:
    """Per label, the names of the device activities launched in its ranges (see below)."""
    ranges = sorted(ranges)
    starts = [r[0] for r in ranges]
    out: dict[str, set[str]] = {}
    for op_id, _, _, name in kernels:
        t = ops.get(op_id)
        i = -1 if t is None else _range_of(ranges, starts, t)
        if i >= 0:
            out.setdefault(ranges[i][2], set()).add(name)
    return out


def attribute_device_time(ranges, ops, kernels) -> dict[str, list[float]]:
    """Sum device activity per labelled range, in µs; one list entry per range, in time order.

    ``ranges``: ``(start_ns, end_ns, label)`` of the labelled calls (not nested);
    ``ops``: launch id -> host start_ns; ``kernels``: ``(launch id, device start_ns,
    duration_ns[, name])`` (a record that appears twice counts once). A kernel belongs to the
    range its launch started in.
    """
    ranges = sorted(ranges)
    starts = [r[0] for r in ranges]
    totals = [0.0] * len(ranges)
    for op_id, _, dur, *_ in set(kernels):
        t = ops.get(op_id)
        i = -1 if t is None else _range_of(ranges, starts, t)
        if i >= 0:
            totals[i] += dur / 1000.0
    out: dict[str, list[float]] = {}
    for (_, _, label), total in zip(ranges, totals):
        out.setdefault(label, []).append(total)
    return out
