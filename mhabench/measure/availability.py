"""Which figures a run cannot give on this device and torch build, and why.

A figure that cannot exist here is n/a with a one-line reason, in the run's output and its
JSON, never a silent blank. The reasons come from what :mod:`mhabench.measure.compat` finds in this
torch; the figures are named by the metric keys of :meth:`mhabench.measure.results.Result.metrics`
(``fnmatch`` patterns).
"""
from __future__ import annotations

import fnmatch

from . import compat
from .paths import BACKENDS

#: Figures that need device kernels or GPU memory.
DEVICE_FIGURES = ("device_*", "host_share_*", "peak_mem_*")
#: Host-work counts of CUDA work (runtime calls, device activities, bytes copied).
CUDA_COUNTS = tuple(f"host_*_{k}" for k in ("runtime_calls", "launches", "memcpy_calls", "syncs",
                                            "alloc_calls", "kernels", "copies", "h2d_bytes",
                                            "d2h_bytes", "copied_bytes"))


#: Host instructions (callgrind) are counted only when asked: they need a valgrind process.
INSTRUCTIONS = "instr_*"
NOT_COUNTED = "counted only with run --instructions or MHABENCH_SUITE=host (callgrind)"


def not_available(device: str, instructions: bool = False) -> dict[str, str]:
    """``{metric pattern: reason}`` for the figures that cannot exist on ``device`` with this
    torch (and the instruction counts, unless this run counts them)."""
    out = {} if instructions else {INSTRUCTIONS: NOT_COUNTED}
    if not device.startswith("cuda"):
        out.update({p: "a CPU has no device kernels or GPU memory to measure"
                    for p in DEVICE_FIGURES + CUDA_COUNTS})
        return out
    have = compat.sdpa_backend_names()
    out.update({f"device_fast_{b}_us": f"torch {compat.TORCH_VERSION} has no {b} SDPA backend"
                for b in BACKENDS if b not in have})
    return out


def how_measured(device: str) -> list[str]:
    """One line per way this torch gives a figure differently from the newest releases."""
    out = []
    if compat.fastpath_switch() is None:
        out.append("slow_fair: the fast path is kept off by the module's training flag (dropout "
                   "0), torch < 2.3 having no torch.backends.mha switch")
    if device.startswith("cuda") and compat.profiler_resolution_ns() > 1:
        out.append("device times: kineto gives whole microseconds per record on torch < 2.4 "
                   "(each kernel's duration truncated)")
    return out


def is_not_available(key: str, na: dict[str, str]) -> bool:
    return any(fnmatch.fnmatchcase(key, p) for p in na)


def lines(na: dict[str, str], how: list[str]) -> list[str]:
    """What ``mhabench run`` prints: the n/a figures grouped by reason, then ``how``."""
    by_reason: dict[str, list[str]] = {}
    for pattern, reason in na.items():
        by_reason.setdefault(reason, []).append(pattern)
    return ([f"n/a here: {', '.join(ps)}: {reason}" for reason, ps in by_reason.items()]
            + [f"note: {h}" for h in how])
