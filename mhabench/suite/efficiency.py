"""How close the fast path comes to the device's matmul peak: kernel time on CUDA, wall time on
a CPU (where no kernel time exists; the CPU's fast path is its own host time).

Useful FLOPs (real tokens only, :mod:`mhabench.measure.flops`) over the fast path's median kernel
time; the peak is the device's measured matmul rate (:mod:`mhabench.measure.peak`, cached per device,
dtype and torch). Wall-based rates and the slow paths' rates are in ``mhabench run``'s CSV.
"""
from .common import SweptPoint, figure


class Efficiency(SweptPoint):
    track_fast_tflops = figure(
        "device_fast_tflops", "TFLOP/s",
        "Useful TFLOP/s of the fast path (kernel time). For reading: higher is better, so asv "
        "does not flag its drops; gate on track_fast_below_peak.", extra=True, on="cuda")
    track_fast_below_peak = figure(
        "device_fast_peak_fraction", "ratio",
        "Peak / useful TFLOP/s of the fast path: how many times below the device's matmul "
        "peak it runs (lower is better).", invert=True, extra=True, on="cuda")
    track_fast_wall_tflops = figure(
        "wall_fast_tflops", "TFLOP/s",
        "Useful TFLOP/s of the fast path (wall time; on a CPU, where no kernel time exists). "
        "For reading: higher is better; gate on track_fast_wall_below_peak.", extra=True,
        on="cpu")
    track_fast_wall_below_peak = figure(
        "wall_fast_peak_fraction", "peak/achieved (lower is better)",
        "Peak / useful TFLOP/s of the fast path (wall time): how many times below the CPU's "
        "matmul peak it runs (lower is better).", invert=True, extra=True, on="cpu")
