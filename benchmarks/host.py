"""Host work per call, in figures the host's speed cannot move (``MHABENCH_SUITE=host`` only).

Lower is better. Instruction counts come from callgrind (:mod:`mhabench.instructions`), one
valgrind process for the grid, on the CPU: a change beyond their A/A spread (about 0.3% on the
smoke grid) is changed host work, Python or C++, of any path.
"""
from .common import SweptPoint, figure

INSTRUCTIONS = "instructions"


class Instructions(SweptPoint):
    """Host instructions per call (callgrind's Ir), counted with collection toggled on around a
    path's calls only, after warm-up calls, one torch thread, the garbage collector off."""

    track_fast = figure("instr_fast", INSTRUCTIONS, "Fast path instructions per call.",
                        host=True)
    track_slow = figure("instr_slow", INSTRUCTIONS, "Slow path instructions per call.",
                        host=True)
    track_slow_fair = figure("instr_slow_fair", INSTRUCTIONS,
                             "slow_fair instructions per call.", host=True)
