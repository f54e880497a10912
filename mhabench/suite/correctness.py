"""How far the fast path's output is from the slow path's, and from an fp32 reference
(lower is better).

A point whose error exceeds the dtype's tolerance is failed by the sweep, not recorded: this
figures track drift below that line.
"""
from .common import SweptPoint, figure


class MaxAbsError(SweptPoint):
    track_fast_vs_slow = figure("max_abs_err", "abs error",
                                "Largest |fast - slow| over the real (unpadded) tokens.")
    track_fast_vs_fp32 = figure(
        "max_abs_err_fp32", "abs error",
        "Largest |fast - fp32 reference| over the real tokens: the attention written out in "
        "fp32 math from the same weights (mhabench.measure.reference). The fast path's own drift.",
        extra=True)
