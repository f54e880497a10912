"""How far the fast path's output is from the slow path's (lower is better).

A point whose error exceeds the dtype's tolerance is failed by the sweep, not recorded: this
figure tracks drift below that line.
"""
from .common import SweptPoint, figure


class MaxAbsError(SweptPoint):
    track_fast_vs_slow = figure("max_abs_err", "abs error",
                                "Largest |fast - slow| over the real (unpadded) tokens.")
