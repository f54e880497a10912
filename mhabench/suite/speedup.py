"""The fast path's time over the slow path's per point, and its noise: what regressions gate on.

asv flags only increases, so speedups are tracked inverted (fast / slow, lower is better): a
drop in speedup is an increase asv's step detection and ``asv continuous`` see.
"""
from .common import RATIO, SweptPoint, figure

#: The y-axis label asv draws: which way is better.
FAST_OVER_SLOW = "fast/slow time (below 1: fast path wins; lower is better)"


class FastOverSlow(SweptPoint):
    """1 / speedup. Below 1 the fast path wins; ``fair`` compares against ``slow_fair``."""

    track_wall = figure("speedup", FAST_OVER_SLOW,
                        "Wall fast/slow: 1 / median of per-round slow/fast.", invert=True)
    track_wall_fair = figure("speedup_fair", FAST_OVER_SLOW, "Wall fast/slow_fair.", invert=True)
    track_device = figure("device_speedup", FAST_OVER_SLOW, "Kernel-time fast/slow.", invert=True,
                          on="cuda")
    track_device_fair = figure("device_speedup_fair", FAST_OVER_SLOW, "Kernel-time fast/slow_fair.",
                               invert=True, on="cuda")


class Noise(SweptPoint):
    """IQR / median of the per-round (device: per-call) ratios behind each FastOverSlow figure.

    Same method names as :class:`FastOverSlow`, so a gate pairs each figure with its noise.
    """

    track_wall = figure("speedup_rel_iqr", RATIO, "Relative IQR of per-round slow/fast.")
    track_wall_fair = figure("speedup_fair_rel_iqr", RATIO,
                             "Relative IQR of per-round slow_fair/fast.")
    track_device = figure("device_speedup_rel_iqr", RATIO,
                          "Relative IQR of per-call kernel-time slow/fast.", on="cuda")
    track_device_fair = figure("device_speedup_fair_rel_iqr", RATIO,
                               "Relative IQR of per-call kernel-time slow_fair/fast.", on="cuda")


class Rounds(SweptPoint):
    """How many samples each median of one record stands on (interleaved rounds; profiled calls
    per path): with the Noise figures, the standard error of a single record's median."""

    track_wall = figure("wall_rounds", "rounds", "Interleaved wall-time rounds behind the medians.")
    track_device = figure("device_rounds", "calls", "Profiled calls per path behind the device "
                          "medians.", on="cuda")
