"""Peak GPU memory of one call of each path, above what was allocated before it (n/a on a CPU).

Tracked here rather than with asv's ``peakmem_``, which measures the host process. ``slow``
keeps its autograd graph alive while its output lives, as the reference's caller does.
Lower is better.
"""
from .common import BYTES, SweptPoint, figure


class GpuMemory(SweptPoint):
    track_fast = figure("peak_mem_fast_bytes", BYTES, "Fast path: nested input, fused SDPA.",
                        extra=True, on="cuda")
    track_slow = figure("peak_mem_slow_bytes", BYTES, "Slow path as the reference calls it.",
                        extra=True, on="cuda")
    track_slow_fair = figure("peak_mem_slow_fair_bytes", BYTES,
                             "Slow path, inference mode, no fast path.", extra=True, on="cuda")
