"""Python bytecodes executed per call of a path: host work the host's speed cannot move.

On a GPU the fast path is host-bound, and extra Python (a check, a loop, a wrapper) is a
regression that adds no aten op and no launch: only time would show it, and time moves with
the host. The count of bytecodes one call executes is an integer, identical between runs of
one build and interpreter (same inputs, same code path), counted with ``sys.settrace``'s
opcode events (before Python 3.12) or ``sys.monitoring``'s instruction events (3.12 on, where
the opcode tracer is built on them and costs about 10 ms a call; both count the same
instructions). C++ work is not counted here (the callgrind counts,
:mod:`mhabench.measure.instructions`, see it on a CPU).
"""
from __future__ import annotations

import dis
import gc
import sys


def _counter():
    by_code: dict = {}

    def local(frame, event, arg):
        if event == "opcode":
            code = frame.f_code
            by_code[code] = by_code.get(code, 0) + 1
        return local

    def start(frame, event, arg):
        frame.f_trace_opcodes = True
        return local
    return by_code, start


def _traced(fn) -> dict:
    """``{code: bytecodes}`` of one call of ``fn``, gc off: by :func:`_monitored` where
    ``sys.monitoring`` exists, else by :func:`_settraced`."""
    return _monitored(fn) if hasattr(sys, "monitoring") else _settraced(fn)


def _settraced(fn) -> dict:
    """``{code: bytecodes}`` of one call of ``fn`` under the opcode tracer, gc off."""
    by_code, start = _counter()
    was = gc.isenabled()
    gc.disable()
    sys.settrace(start)
    try:
        fn()
    finally:
        sys.settrace(None)
        if was:
            gc.enable()
    return by_code


def _body_start(code) -> int:
    """Offset of the instruction that starts a function's frame (``RESUME 0``): the opcode
    tracer sees a frame from its call event on, which comes after it, so the instructions up to
    it (cell set-up, ``RESUME`` itself) are not its to count."""
    for ins in dis.get_instructions(code):
        if ins.opname == "RESUME" and ins.arg == 0:
            return ins.offset
    return -1


def _monitored(fn) -> dict:
    """``{code: bytecodes}`` of one call of ``fn`` from ``sys.monitoring``'s instruction
    events, counting what the opcode tracer counts (:func:`_body_start`), gc off."""
    mon = sys.monitoring
    tool = next((t for t in range(6) if mon.get_tool(t) is None), None)
    if tool is None:
        return _settraced(fn)  # every tool id taken (debuggers, coverage): the tracer still works
    by_code: dict = {}
    starts: dict = {}

    def instruction(code, offset):
        start = starts.get(code)
        if start is None:
            start = starts[code] = _body_start(code)
        if offset > start:
            by_code[code] = by_code.get(code, 0) + 1

    mon.use_tool_id(tool, "mhabench-bytecodes")
    was = gc.isenabled()
    gc.disable()
    try:
        mon.register_callback(tool, mon.events.INSTRUCTION, instruction)
        mon.set_events(tool, mon.events.INSTRUCTION)
        try:
            fn()
        finally:
            mon.set_events(tool, 0)
    finally:
        mon.register_callback(tool, mon.events.INSTRUCTION, None)
        mon.free_tool_id(tool)
        if was:
            gc.enable()
    by_code.pop(_monitored.__code__, None)  # this frame's own instructions around the call
    return by_code


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
            named: dict[str, int] = {}
            for code, n in by_code.items():
                named[function_name(code)] = named.get(function_name(code), 0) + n
            if best is None or sum(named.values()) < sum(best.values()):
                best = named
    return best or {}
