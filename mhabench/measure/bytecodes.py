"""Python bytecodes executed per call of a path: host work the host's speed cannot move.

On a GPU the fast path is host-bound, and extra Python (a check, a loop, a wrapper) is a
regression that adds no aten op and no launch: only time would show it, and time moves with
the host. The count of bytecodes one call executes is an integer, identical between runs of
one build and interpreter (same inputs, same code path), counted with ``sys.settrace``'s
opcode events: a few milliseconds for one call, on any device. C++ work is not counted here
(the callgrind counts, :mod:`mhabench.measure.instructions`, see it on a CPU).
"""
from __future__ import annotations

import gc
import sys


def _counter():
    n = [0]

    def local(frame, event, arg):
        if event == "opcode":
            n[0] += 1
        return local

    def start(frame, event, arg):
        frame.f_trace_opcodes = True
        return local
    return n, start


def count(path, calls: int = 2) -> int:
    """Bytecodes one warmed-up call of ``path`` executes: the smallest over ``calls`` calls
    (a first call may still fill a cache), the garbage collector off."""
    counts = []
    with path.context():
        for _ in range(calls):
            n, start = _counter()
            was = gc.isenabled()
            gc.disable()
            sys.settrace(start)
            try:
                path.call()
            finally:
                sys.settrace(None)
                if was:
                    gc.enable()
            counts.append(n[0])
    return min(counts)
