"""Host cost that holds still: exact counts of the work each call does on the host.

The fast path is host-bound at most grid points, and its regressions are host-side (an extra
check, an extra aten op, an extra synchronisation). Wall time moves by tens of percent between
runs on a shared host; these integers move only when the work changes. Read from the profiler
session of each point's device pass (on a CPU, a session of one call per path): aten ops
dispatched, CUDA runtime calls by kind, device activities and bytes copied. Any change is a
change of work: ``mhabench gate`` reports it with the ops that appeared or vanished.
Lower is better; the CUDA counts are n/a on a CPU.
"""
from .common import COUNT, BYTES, SweptPoint, figure


class HostWork(SweptPoint):
    """Per call: exact counts (integers, identical between runs of one build)."""

    track_fast_aten_ops = figure("host_fast_aten_ops", COUNT,
                                 "aten ops dispatched per fast call (nested ops included).")
    track_slow_aten_ops = figure("host_slow_aten_ops", COUNT,
                                 "aten ops dispatched per slow call (nested ops included).")
    track_slow_fair_aten_ops = figure("host_slow_fair_aten_ops", COUNT,
                                      "aten ops dispatched per slow_fair call.")
    track_fast_runtime_calls = figure("host_fast_runtime_calls", COUNT,
                                      "CUDA runtime/driver calls per fast call.", on="cuda")
    track_fast_launches = figure("host_fast_launches", COUNT,
                                 "Kernel launches per fast call.", on="cuda")
    track_fast_syncs = figure("host_fast_syncs", COUNT,
                              "Host-device synchronisations (cuda*Synchronize) per fast call.",
                              on="cuda")
    track_fast_memcpy_calls = figure("host_fast_memcpy_calls", COUNT,
                                     "cudaMemcpy*/cudaMemset* calls per fast call.", on="cuda")
    track_fast_copied_bytes = figure("host_fast_copied_bytes", BYTES,
                                     "Bytes copied host to device and back per fast call.",
                                     on="cuda")
