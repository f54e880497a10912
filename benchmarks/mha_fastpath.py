"""torch.nn.MultiheadAttention: fast path (nested input, fused SDPA) against its slow path.

One class, so one sweep: asv runs ``setup_cache`` once per class, in a process of its own, and
hands its (pickled, plain-Python) return value to every (track method x parameter) worker.
The workers only read numbers from it; they import neither torch nor CUDA, so they fork cheaply
under ``launch_method: forkserver`` and never meet a CUDA context.

Outcomes per point, as asv shows them:

* a number      - the point was measured and its fast path was taken and matched the slow path;
* ``n/a``       - the combination is not in the selected grid (``quick``, custom grids), the device
                  is not available on this machine, or the figure does not exist here (device
                  times on a CPU, ``slow_fair`` on a torch that cannot switch the fast path off);
* ``failed``    - the fast path was refused (``no_fastpath``), its output differed from the slow
                  path's (``mismatch``) or the point raised (``error``): never a number.

Orientation: asv flags only increases as regressions, so every figure meant for regression
detection is lower-is-better (times, ``*_fast_over_slow`` ratios, error, host share). The
``*_speedup_higher_is_better`` figures are the same ratios inverted, for reading only: asv does
not flag their drops.

Grid, device and dtype come from environment variables: see :mod:`benchmarks.common`.
"""
import math
import sys

from . import common

SELECTION = common.selection()


def _tracked(unit, version):
    """Give a track_ method its unit and an explicit version (editing code keeps its history)."""
    def mark(func):
        func.unit = unit
        func.version = version
        return func
    return mark


US = "microseconds"
RATIO = "ratio"


class MHAFastPath:
    """Every figure of one point of the grid; the grid is swept once, in ``setup_cache``."""

    params = SELECTION.params
    param_names = common.PARAM_NAMES
    timeout = 300  # a worker only unpickles the cache and reads one number

    def setup_cache(self):
        out = common.run_sweep(SELECTION)
        bad = [f"{k}: {v['status']}" for k, v in out["points"].items() if v["status"] != "ok"]
        print(f"mhabench asv sweep: grid {SELECTION.grid}, {SELECTION.device} {SELECTION.dtype}: "
              f"{len(out['points'])} points, {len(bad)} not ok; {out['meta']}"
              + (f"; unavailable: {out['unavailable']}" if out["unavailable"] else ""),
              file=sys.stderr)
        return out

    setup_cache.timeout = SELECTION.setup_timeout

    def setup(self, cache, batch_size, seq_len, embed_dim, num_heads, beta_b):
        if cache["unavailable"]:
            raise NotImplementedError(cache["unavailable"])
        label = SELECTION.label(batch_size, seq_len, embed_dim, num_heads, beta_b)
        entry = cache["points"].get(label)
        if entry is None:
            raise NotImplementedError(f"{label} is not in grid {SELECTION.grid}")
        if entry["status"] != "ok":
            raise RuntimeError(f"{label}: {entry['status']}: {entry['message']}")
        self.metrics = entry["metrics"]

    def _value(self, name):
        """The figure, or NaN where it was not measured (asv shows NaN as n/a, not failed)."""
        value = self.metrics.get(name, math.nan)
        return float(value)

    def _inverse(self, name):
        """1 / a speedup: the fast path's time over the slow path's (lower is better)."""
        value = self._value(name)
        return 1.0 / value if value and math.isfinite(value) else math.nan

    # --- wall time per call: median over interleaved rounds (lower is better) ----------------
    @_tracked(US, "1")
    def track_wall_fast_us(self, cache, *params):
        return self._value("wall_fast_us")

    @_tracked(US, "1")
    def track_wall_slow_us(self, cache, *params):
        return self._value("wall_slow_us")

    @_tracked(US, "1")
    def track_wall_slow_fair_us(self, cache, *params):
        return self._value("wall_slow_fair_us")

    # --- device (kernel) time per call, from the profiler; n/a on a CPU (lower is better) ----
    @_tracked(US, "1")
    def track_device_fast_us(self, cache, *params):
        return self._value("device_fast_us")

    @_tracked(US, "1")
    def track_device_slow_us(self, cache, *params):
        return self._value("device_slow_us")

    @_tracked(US, "1")
    def track_device_slow_fair_us(self, cache, *params):
        return self._value("device_slow_fair_us")

    # --- host share: 1 - device / wall; n/a on a CPU (lower is better) -----------------------
    @_tracked(RATIO, "1")
    def track_host_share_fast(self, cache, *params):
        return self._value("host_share_fast")

    @_tracked(RATIO, "1")
    def track_host_share_slow(self, cache, *params):
        return self._value("host_share_slow")

    @_tracked(RATIO, "1")
    def track_host_share_slow_fair(self, cache, *params):
        return self._value("host_share_slow_fair")

    # --- correctness: max |fast - slow| over the real tokens (lower is better) --------------
    @_tracked("abs error", "1")
    def track_max_abs_err(self, cache, *params):
        return self._value("max_abs_err")

    # --- fast / slow: 1 / speedup, for regression detection (lower is better) ---------------
    @_tracked(RATIO, "1")
    def track_wall_fast_over_slow(self, cache, *params):
        return self._inverse("speedup")

    @_tracked(RATIO, "1")
    def track_wall_fast_over_slow_fair(self, cache, *params):
        return self._inverse("speedup_fair")

    @_tracked(RATIO, "1")
    def track_device_fast_over_slow(self, cache, *params):
        return self._inverse("device_speedup")

    @_tracked(RATIO, "1")
    def track_device_fast_over_slow_fair(self, cache, *params):
        return self._inverse("device_speedup_fair")

    # --- slow / fast, for reading (higher is better; asv does NOT flag drops) ----------------
    @_tracked(RATIO, "1")
    def track_wall_speedup_higher_is_better(self, cache, *params):
        return self._value("speedup")

    @_tracked(RATIO, "1")
    def track_wall_speedup_fair_higher_is_better(self, cache, *params):
        return self._value("speedup_fair")

    @_tracked(RATIO, "1")
    def track_device_speedup_higher_is_better(self, cache, *params):
        return self._value("device_speedup")

    @_tracked(RATIO, "1")
    def track_device_speedup_fair_higher_is_better(self, cache, *params):
        return self._value("device_speedup_fair")
