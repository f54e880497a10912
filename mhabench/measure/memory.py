"""Peak GPU memory of a path's call: the most bytes it had asked the caching allocator for at
once, above what was held before it.

The allocator's peak counter is reset, the path called, and the peak read back. Requested
bytes, not the blocks handed out, whose sizes depend on what earlier points left in the cache
(:data:`mhabench.measure.compat.MEMORY_STAT`).
Allocator statistics are kept on the host as allocations are made, so no synchronisation is
needed, and a profiler session does not move them: the device-time calls carry the reading
for free, and one extra call per path is made only where there is no device pass
(``device_calls=0``, or it failed). asv's ``peakmem_`` measures host memory, hence this.
"""
from __future__ import annotations

import math
from typing import Mapping

import torch

from . import compat
from .paths import Path


class PeakTracker:
    """``with PeakTracker(device) as t: <calls>``; then ``t.bytes``: the largest allocation
    above the block's starting point during its calls (NaN on a CPU, which keeps no
    statistics). Each call's output must be dropped before the next for a per-call peak."""

    def __init__(self, device: str):
        self.cuda = device.startswith("cuda")
        self.dev = torch.device(device) if self.cuda else None
        self.bytes = math.nan
        self._base = 0

    def __enter__(self):
        if self.cuda:
            self._base = compat.memory_bytes(self.dev)[0]
            torch.cuda.reset_peak_memory_stats(self.dev)
        return self

    def __exit__(self, *exc):
        if self.cuda and exc[0] is None:
            self.bytes = float(compat.memory_bytes(self.dev)[1] - self._base)
        return False


def peak_memory(paths: Mapping[str, Path], device: str) -> dict[str, float]:
    """``{path: bytes}`` of each path's peak allocation during one call (output included);
    empty on a CPU."""
    if not device.startswith("cuda"):
        return {}
    out = {}
    for name, path in paths.items():
        with path.context(), PeakTracker(device) as t:
            path.call()
        out[name] = t.bytes
    return out
