"""Python bytecodes executed per call of a path: host work the host's speed cannot move.

On a GPU the fast path is host-bound, and extra Python (a check, a loop, a wrapper) is a
regression that adds no aten op and no launch: only time would show it, and time moves with
the host. The count of bytecodes one call executes is an integer, identical between runs of
one build and interpreter (same inputs, same code path), counted with ``sys.settrace``'s
opcode events: a few milliseconds for one call, on any device. The counter keys its tally by
the code object's id, not the code object: on Python 3.12 hashing a large code object (torch's
``multi_head_attention_forward``) takes some 6 us, which made a hashed tally cost 4-5x the
tracing itself (docs/lab/2026-12-03.md, round 7). C++ work is not counted here (the callgrind
counts, :mod:`mhabench.measure.instructions`, see it on a CPU).
"""
from __future__ import annotations

import sys

from .host_setup import collector_off


def _counter():
    """The opcode tracer's tally, ``{id(code): bytecodes}``, with ``{id(code): code}`` kept
    beside it so that no id is reused while the tally lives."""
    tally: dict[int, int] = {}
    codes: dict[int, object] = {}

    def local(frame, event, arg):
        if event == "opcode":
            code = frame.f_code
            key = id(code)
            n = tally.get(key)
            if n is None:
                codes[key] = code
                tally[key] = 1
            else:
                tally[key] = n + 1
        return local

    def start(frame, event, arg):
        frame.f_trace_opcodes = True
        return local
    return tally, codes, start


def _traced(fn) -> list[tuple[object, int]]:
    """``(code, bytecodes)`` per code object run in one call of ``fn`` under the opcode tracer,
    gc off (pairs, not a dict: a code object's hash is the cost the tally avoids)."""
    tally, codes, start = _counter()
    with collector_off():
        sys.settrace(start)
        try:
            fn()
        finally:
            sys.settrace(None)
    return [(codes[key], n) for key, n in tally.items()]


def _probe() -> int:
    total = 0
    for i in range(3):
        total += i
    return total


_primed = False


def _prime() -> None:
    """Trace a throwaway call until the tracer counts: on Python 3.12 the first tracing of a
    process sees no opcode event at all, so a path counted first would read 0."""
    global _primed
    for _ in range(3):
        if _primed:
            return
        _primed = bool(_traced(_probe))


def function_name(code) -> str:
    """``MultiheadAttention.forward``: the function's qualified name (its name alone before
    Python 3.11), which a reader finds in torch's source."""
    return getattr(code, "co_qualname", code.co_name)


def by_function(pairs) -> dict[str, int]:
    """``(code, bytecodes)`` pairs summed per function (:func:`function_name`)."""
    named: dict[str, int] = {}
    for code, n in pairs:
        named[function_name(code)] = named.get(function_name(code), 0) + n
    return named


def count(path, calls: int = 2) -> int:
    """Bytecodes one warmed-up call of ``path`` executes: the smallest over ``calls`` calls
    (a first call may still fill a cache), the garbage collector off."""
    return sum(count_by_function(path, calls).values())


def count_by_function(path, calls: int = 2) -> dict[str, int]:
    """Per function (:func:`function_name`), the bytecodes it executed in the warmed-up call of
    ``path`` that executed fewest in all: where a change in the count was made."""
    _prime()
    best = None
    with path.context():
        for _ in range(calls):
            by_code = _traced(path.call)
            if not by_code:  # a call executes at least its own frame: nothing seen is no count
                raise RuntimeError("the opcode tracer saw no bytecode of the call")
            named = by_function(by_code)
            if best is None or sum(named.values()) < sum(best.values()):
                best = named
    return best or {}
