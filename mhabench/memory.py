"""Peak GPU memory of one call of each path, above what was allocated before it.

One extra, untimed call per path: the caching allocator's peak counter is reset, the path
called, and the peak read back. Allocator statistics are kept on the host as allocations are
made, so no synchronisation is needed. asv's ``peakmem_`` measures host memory, hence this.
"""
from __future__ import annotations

from typing import Mapping

import torch

from .paths import Path


def peak_memory(paths: Mapping[str, Path], device: str) -> dict[str, float]:
    """``{path: bytes}`` of each path's peak allocation during one call (output included);
    empty on a CPU, which has no allocator statistics."""
    if not device.startswith("cuda"):
        return {}
    dev = torch.device(device)
    out = {}
    for name, path in paths.items():
        base = torch.cuda.memory_allocated(dev)
        torch.cuda.reset_peak_memory_stats(dev)
        with path.context():
            y = path.call()
        out[name] = float(torch.cuda.max_memory_allocated(dev) - base)
        del y
    return out
