"""How close the fast path comes to the device's matmul peak (kernel time; n/a on a CPU).

Useful FLOPs (real tokens only, :mod:`mhabench.flops`) over the fast path's median kernel
time; the peak is the device's measured matmul rate (:mod:`mhabench.peak`, cached per device,
dtype and torch). Wall-based rates and the slow paths' rates are in ``mhabench run``'s CSV.
"""
from .common import SweptPoint, figure


class Efficiency(SweptPoint):
    track_fast_tflops = figure(
        "device_fast_tflops", "TFLOP/s",
        "Useful TFLOP/s of the fast path (kernel time). For reading: higher is better, so asv "
        "does not flag its drops; gate on track_fast_below_peak.", extra=True)
    track_fast_below_peak = figure(
        "device_fast_peak_fraction", "ratio",
        "Peak / useful TFLOP/s of the fast path: how many times below the device's matmul "
        "peak it runs (lower is better).", invert=True, extra=True)
