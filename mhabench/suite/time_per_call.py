"""Time per call of each path: wall (what a caller waits) and device (kernels only).

``slow`` is the reference's slow path (padded + mask, grad enabled, fast path refused);
``slow_fair`` the same call in inference mode with the fast path switched off.
All lower is better; device figures are n/a on a CPU. Also: the host share of each path, and
the fast path's kernel time per SDPA backend.
"""
from .common import RATIO, US, SweptPoint, figure


class WallTime(SweptPoint):
    """Median over interleaved rounds of one call's wall time (CUDA events / perf_counter_ns)."""

    track_fast = figure("wall_fast_us", US, "Fast path: nested input, fused SDPA.")
    track_slow = figure("wall_slow_us", US, "Slow path as the reference calls it.")
    track_slow_fair = figure("wall_slow_fair_us", US, "Slow path, inference mode, no fast path.")


class DeviceTime(SweptPoint):
    """Summed kernel time per call, from the profiler: host jitter cannot move it."""

    track_fast = figure("device_fast_us", US, "Fast path kernels per call.", on="cuda")
    track_slow = figure("device_slow_us", US, "Slow path kernels per call.", on="cuda")
    track_slow_fair = figure("device_slow_fair_us", US, "slow_fair kernels per call.", on="cuda")


class HostShare(SweptPoint):
    """1 - device / wall: the share of a call not spent in kernels (launch, Python, syncs)."""

    track_fast = figure("host_share_fast", RATIO, "Fast path host share.", on="cuda")
    track_slow = figure("host_share_slow", RATIO, "Slow path host share.", on="cuda")
    track_slow_fair = figure("host_share_slow_fair", RATIO, "slow_fair host share.", on="cuda")


class SdpaBackend(SweptPoint):
    """Kernel time per call of the fast path with one SDPA backend allowed alone.

    n/a where the backend cannot serve the point (or this torch lacks it), and on a CPU. Which
    backend the default fast path used is in ``mhabench run``'s ``sdpa_backend`` column.
    """

    track_flash = figure("device_fast_flash_us", US, "Fast path, flash attention only.",
                         extra=True, on="cuda")
    track_efficient = figure("device_fast_efficient_us", US,
                             "Fast path, memory-efficient attention only.", extra=True, on="cuda")
    track_cudnn = figure("device_fast_cudnn_us", US, "Fast path, cuDNN attention only.",
                         extra=True, on="cuda")
