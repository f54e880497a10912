"""Host cost that holds still: exact counts of the work each call does on the host.

The fast path is host-bound at most grid points, and its regressions are host-side (an extra
check, an extra aten op, an extra synchronisation). Wall time moves by tens of percent between
runs on a shared host; these figures move only when the work changes. Lower is better.

- ``HostWork``: exact integers from the profiler session of each point's device pass (on a CPU,
  a session of one call per path): aten ops dispatched, CUDA runtime calls by kind, bytes
  copied. Any change is a change of work: ``mhabench gate`` names the ops that appeared or
  vanished. The CUDA counts are not discovered on a CPU. In every suite.
- ``Instructions`` (``MHABENCH_SUITE=host`` only): callgrind's instruction counts per call
  (:mod:`mhabench.measure.instructions`), one valgrind process for the grid, on the CPU: a change
  beyond their A/A spread (about 0.3% on the smoke grid) is changed host work, Python or C++.
"""
from .common import BYTES, COUNT, SweptPoint, figure

INSTRUCTIONS = "instructions"


class Instructions(SweptPoint):
    """Host instructions per call (callgrind's Ir), counted with collection toggled on around a
    path's calls only, after warm-up calls, one torch thread, the garbage collector off."""

    track_fast = figure("instr_fast", INSTRUCTIONS, "Fast path instructions per call.",
                        host="only")
    track_slow = figure("instr_slow", INSTRUCTIONS, "Slow path instructions per call.",
                        host="only")
    track_slow_fair = figure("instr_slow_fair", INSTRUCTIONS,
                             "slow_fair instructions per call.", host="only")


def _count(key: str, doc: str, unit: str = COUNT, cuda: bool = False):
    """A host-work count: in every suite, the host suite included; a CUDA one only on CUDA."""
    return figure(key, unit, doc, on="cuda" if cuda else "any", host="also")


class HostWork(SweptPoint):
    """Per call: exact counts (integers, identical between runs of one build)."""

    track_fast_aten_ops = _count("host_fast_aten_ops",
                                 "aten ops dispatched per fast call (nested ops included).")
    track_slow_aten_ops = _count("host_slow_aten_ops",
                                 "aten ops dispatched per slow call (nested ops included).")
    track_slow_fair_aten_ops = _count("host_slow_fair_aten_ops",
                                      "aten ops dispatched per slow_fair call.")
    track_fast_runtime_calls = _count("host_fast_runtime_calls",
                                      "CUDA runtime/driver calls per fast call.", cuda=True)
    track_fast_launches = _count("host_fast_launches", "Kernel launches per fast call.",
                                 cuda=True)
    track_fast_syncs = _count("host_fast_syncs",
                              "Host-device synchronisations (cuda*Synchronize) per fast call.",
                              cuda=True)
    track_fast_memcpy_calls = _count("host_fast_memcpy_calls",
                                     "cudaMemcpy*/cudaMemset* calls per fast call.", cuda=True)
    track_fast_copied_bytes = _count("host_fast_copied_bytes",
                                     "Bytes copied host to device and back per fast call.",
                                     unit=BYTES, cuda=True)
