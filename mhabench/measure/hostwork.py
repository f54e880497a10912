"""Exact host-work counts per call: aten ops dispatched, CUDA runtime calls by kind, device
activities and the bytes copied between host and device.

Host time moves with the machine; these integers move only when the work does, so a host-side
regression (an extra check, an extra op, an extra synchronisation) shows as a changed count and
a named op. They are read from the profiler session each point already runs (see
:class:`mhabench.measure.timing.DeviceTimes`): pure functions of its records, no calls of their own.
"""
from __future__ import annotations

import bisect
from collections import Counter
from typing import Iterable

from ..catalogue import PROFILED_KINDS

#: The integer counts per call read from the profiler, in table order. ``runtime_calls`` counts
#: every CUDA runtime or driver call; ``launches``, ``memcpy_calls``, ``syncs`` and
#: ``alloc_calls`` are kinds of it; ``kernels`` and ``copies`` are device activities (kernels,
#: and memory copies or sets). On a CPU only aten ops are counted.
KINDS = PROFILED_KINDS
RUNTIME_PREFIXES = ("cuda", "cu", "hip")


def runtime_kind(name: str) -> str:
    """The kind of a CUDA runtime/driver call by its name ("" for one of no listed kind)."""
    if "LaunchKernel" in name or name.startswith("cuLaunch") or "LaunchCooperative" in name:
        return "launches"
    if "Memcpy" in name or "Memset" in name:
        return "memcpy_calls"
    if name.endswith("Synchronize"):
        return "syncs"
    if any(m in name for m in ("Malloc", "Free", "HostAlloc", "HostRegister", "cuMemCreate",
                               "cuMemMap", "cuMemRelease", "cuMemUnmap")):
        return "alloc_calls"
    return ""


def host_kind(name: str) -> str:
    """``op`` for a dispatched op (``aten::mm``), ``runtime`` for a runtime/driver call, ``""``
    for anything else (the profiler's own bookkeeping)."""
    if "::" in name:
        return "op"
    if name.startswith(RUNTIME_PREFIXES):
        return "runtime"
    return ""


def copy_direction(name: str) -> str:
    """``h2d``/``d2h`` for a device memcpy record's name, ``""`` otherwise."""
    if name.startswith("Memcpy"):
        if "HtoD" in name:
            return "h2d"
        if "DtoH" in name:
            return "d2h"
    return ""


def _empty() -> dict:
    out = {k: 0 for k in KINDS}
    out["ops"] = Counter()
    return out


def per_range(ranges, host, launches, kernels, copy_bytes) -> dict[str, list[dict]]:
    """Host-work counts of each labelled range, per label, in time order.

    ``ranges``: ``(start_ns, end_ns, label)``, not nested; ``host``: ``(start_ns, name)`` host
    records (aten ops, runtime calls), counted in the range their start falls in;
    ``launches``: correlation id -> host start_ns; ``kernels``: ``(id, device start_ns,
    duration_ns, name)``, counted in the range of the runtime call that launched them;
    ``copy_bytes``: ``(id, device start_ns)`` -> bytes of a memcpy record (-1: unknown).
    """
    ranges = sorted(ranges)
    starts = [r[0] for r in ranges]
    counts = [_empty() for _ in ranges]

    def where(t):
        i = bisect.bisect_right(starts, t) - 1
        return i if i >= 0 and t <= ranges[i][1] else -1

    for t, name in host:
        kind = host_kind(name)
        i = where(t) if kind else -1
        if i < 0:
            continue
        c = counts[i]
        if kind == "op":
            c["aten_ops"] += 1
            c["ops"][name] += 1
        else:
            c["runtime_calls"] += 1
            sub = runtime_kind(name)
            if sub:
                c[sub] += 1
    for corr, dev_start, _, name in set(kernels):
        t = launches.get(corr)
        i = -1 if t is None else where(t)
        if i < 0:
            continue
        c = counts[i]
        if name.startswith(("Memcpy", "Memset")):
            c["copies"] += 1
            direction = copy_direction(name)
            if direction:
                n = copy_bytes.get((corr, dev_start), -1)
                key = f"{direction}_bytes"
                c[key] = -1 if n < 0 or c[key] < 0 else c[key] + n
        else:
            c["kernels"] += 1
    out: dict[str, list[dict]] = {}
    for (_, _, label), c in zip(ranges, counts):
        out.setdefault(label, []).append(c)
    return out


def summary(calls: Iterable[dict], device: bool) -> dict:
    """One path's counts per call from its profiled calls: every kind, ``ops`` (op name ->
    count), and ``varies``, the kinds whose count differed between the calls (each kind then
    holds its smallest count). Device kinds are left out where there is no device."""
    calls = list(calls)
    if not calls:
        return {}
    kinds = KINDS if device else ("aten_ops",)
    out: dict = {}
    varies = []
    for k in kinds:
        values = [c[k] for c in calls]
        out[k] = min(values)
        if len(set(values)) > 1:
            varies.append(k)
    first = calls[0]["ops"]
    if any(c["ops"] != first for c in calls[1:]):
        if "aten_ops" not in varies:
            varies.append("ops")
    out["ops"] = dict(sorted(first.items()))
    out["varies"] = varies
    return out


def diff(before: dict[str, int], after: dict[str, int]) -> dict[str, int]:
    """Ops whose count per call changed: name -> after - before (new ops positive)."""
    names = set(before) | set(after)
    return {n: after.get(n, 0) - before.get(n, 0) for n in sorted(names)
            if after.get(n, 0) != before.get(n, 0)}


def diff_text(before: dict[str, int], after: dict[str, int], limit: int = 8) -> str:
    """``+1 aten::neg, -2 aten::view`` (largest changes first), or ``""`` when equal."""
    d = diff(before, after)
    items = sorted(d.items(), key=lambda kv: (-abs(kv[1]), kv[0]))
    text = ", ".join(f"{v:+d} {k}" for k, v in items[:limit])
    return text + (f", ... ({len(items) - limit} more)" if len(items) > limit else "")
