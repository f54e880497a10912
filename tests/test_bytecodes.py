"""mhabench.measure.bytecodes: Python bytecodes per call, an exact count. Identical between calls
and between fresh processes; a planted pure-Python loop in the fast path (tests/plant.py,
``Plant(py_loop=N)``, 7 bytecodes an iteration and no aten op) raises the fast path's count by
the loop's bytecodes and leaves the slow paths' alone, where the aten-op counts see nothing."""
from __future__ import annotations

import contextlib
import gc
import json
import os
import subprocess
import sys
from dataclasses import asdict
from pathlib import Path as FsPath

import pytest
import torch

from mhabench.measure import bytecodes, passes
from mhabench.measure.config import Point
from mhabench.measure.inputs import build
from mhabench.measure.paths import Path
from mhabench.measure.results import Result

sys.path.insert(0, str(FsPath(__file__).resolve().parent))
import plant  # noqa: E402

REPO = FsPath(__file__).resolve().parents[1]
POINT = Point(2, 8, 32, 4, 1, dtype="fp32", device="cpu")
#: Bytecodes of one iteration of the plant's loop (``for i in range(n): acc += i``).
PER_ITERATION = 7
LOOP = 500
#: What the plant's wrapper adds to a fast call besides the loop's iterations (its own calls,
#: tests and the loop's set-up): small next to the loop.
WRAPPER_AT_MOST = 60


def _loop(n):
    acc = 0
    for i in range(n):
        acc += i
    return acc


def _python_path(n) -> Path:
    return Path("py", contextlib.nullcontext, lambda: _loop(n))


def _warm_paths():
    paths = passes.active_paths(build(POINT))
    for p in paths.values():
        p.once()  # a first call may import or fill caches: counts are of warmed-up calls
    return paths


def _counts(paths) -> dict[str, int]:
    return {n: bytecodes.count(p, calls=1) for n, p in paths.items()}


# --- the count itself -----------------------------------------------------------------------------

def test_a_loop_counts_its_bytecodes_exactly():
    base = bytecodes.count(_python_path(0))
    assert base > 0
    assert bytecodes.count(_python_path(100)) - base == 100 * PER_ITERATION
    assert bytecodes.count(_python_path(1000)) - base == 1000 * PER_ITERATION


def test_the_count_says_which_function_executed_the_bytecodes():
    by = bytecodes.count_by_function(_python_path(100))
    base = bytecodes.count_by_function(_python_path(0))
    assert sum(by.values()) == bytecodes.count(_python_path(100))
    assert by["_loop"] - base["_loop"] == 100 * PER_ITERATION
    assert {k: v for k, v in by.items() if k != "_loop"} == \
        {k: v for k, v in base.items() if k != "_loop"}


def test_counts_are_identical_between_calls():
    paths = _warm_paths()
    first = _counts(paths)
    assert all(v > 0 for v in first.values()), first
    assert [_counts(paths) for _ in range(3)] == [first] * 3
    assert _counts(_warm_paths()) == first, "inputs built again: the same count"
    assert {n: bytecodes.count(p, calls=3) for n, p in paths.items()} == first


def test_code_objects_made_and_freed_within_a_call_keep_their_own_counts():
    """The tally is keyed by a code object's id: one freed during the call must not lend its id
    to the next, or two functions' bytecodes would merge under one name."""
    def call():
        for name, n in (("first", 10), ("second", 20), ("third", 30)):
            scope = {}
            exec(compile(f"def {name}():\n    for i in range({n}):\n        pass\n", name,
                         "exec"), scope)
            scope[name]()
            del scope  # the code object dies here, its id free for the next one
    by = bytecodes.count_by_function(Path("p", contextlib.nullcontext, call), calls=1)
    step = by["second"] - by["first"]  # ten more iterations of the same loop
    assert step > 0 and by["third"] - by["second"] == step, by


def test_the_tally_costs_no_hash_of_a_code_object(monkeypatch):
    """Hashing a large code object costs microseconds on Python 3.12, once per bytecode in a
    hashed tally: the tracer keys by id and hashes no code object while it counts."""
    hashed = []

    class Code:  # stands in for a code object, counting the times it is hashed
        def __init__(self, code):
            self.code = code
            self.co_name = self.co_qualname = code.co_qualname if hasattr(code, "co_qualname") \
                else code.co_name

        def __hash__(self):
            hashed.append(1)
            return hash(self.code)

    tally, codes, start = bytecodes._counter()

    class Frame:
        f_code = Code(_loop.__code__)
        f_trace_opcodes = False
    frame = Frame()
    local = start(frame, "call", None)
    for _ in range(100):
        local(frame, "opcode", None)
    assert sum(tally.values()) == 100 and frame.f_trace_opcodes
    assert hashed == []


def test_the_smallest_count_over_the_calls_is_taken():
    """A first call that fills a cache runs more code than the calls after it."""
    made = []

    def call():
        if not made:
            _loop(1000)
        made.append(1)
    path = Path("p", contextlib.nullcontext, call)
    assert bytecodes.count(path, calls=2) < 1000 * PER_ITERATION
    made.clear()
    assert bytecodes.count(path, calls=1) > 1000 * PER_ITERATION


def test_the_context_is_entered_once_and_not_counted():
    entered = []

    @contextlib.contextmanager
    def ctx():
        entered.append(1)
        _loop(1000)
        yield
    path = Path("p", ctx, lambda: _loop(10))
    assert bytecodes.count(path, calls=3) == bytecodes.count(_python_path(10))
    assert entered == [1]


def test_the_tracer_and_the_collector_are_given_back_even_when_a_call_raises():
    def boom():
        raise RuntimeError("boom")
    assert sys.gettrace() is None and gc.isenabled()
    with pytest.raises(RuntimeError):
        bytecodes.count(Path("p", contextlib.nullcontext, boom))
    assert sys.gettrace() is None and gc.isenabled()
    gc.disable()
    try:
        bytecodes.count(_python_path(3))
        assert not gc.isenabled()
    finally:
        gc.enable()


def test_a_tracer_blind_to_its_first_session_is_primed_before_any_path_is_counted(monkeypatch):
    """Python 3.12 sees no opcode event in a process's first tracing session: the first path
    counted read 0 (the first grid point's fast path, in every GPU record of 3 December)."""
    real, sessions = bytecodes._traced, []

    def blind_first(fn):
        sessions.append(fn)
        return {} if len(sessions) == 1 else real(fn)
    expected = bytecodes.count(_python_path(10), calls=1)
    monkeypatch.setattr(bytecodes, "_primed", False)
    monkeypatch.setattr(bytecodes, "_traced", blind_first)
    assert bytecodes.count(_python_path(10), calls=1) == expected
    assert sessions[0] is bytecodes._probe, "the blind session was the probe's, not the path's"


def test_a_call_the_tracer_did_not_see_is_no_count(monkeypatch):
    """Never a 0: the figure is left unmeasured, with a note saying why."""
    monkeypatch.setattr(bytecodes, "_primed", True)
    monkeypatch.setattr(bytecodes, "_traced", lambda fn: {})
    with pytest.raises(RuntimeError, match="saw no bytecode"):
        bytecodes.count(_python_path(3))
    walled = passes.wall_pass(POINT, passes.Protocol(warmup_ms=0.5, min_rounds=2, max_rounds=2,
                                                     target_ms=1.0))
    res = passes.counts_pass(walled, passes.Protocol())
    m = res.metrics()
    assert m["host_fast_bytecodes"] != m["host_fast_bytecodes"], m["host_fast_bytecodes"]  # NaN
    assert m["host_fast_aten_ops"] > 0, "the other counts are still there"
    assert "saw no bytecode" in json.dumps(res.record())


def test_a_fresh_process_counts_its_first_path(tmp_path):
    code = ("import contextlib, sys\nfrom mhabench.measure import bytecodes\n"
            "from mhabench.measure.paths import Path\n"
            "def f():\n    return sum(i for i in range(3))\n"
            "print(bytecodes.count(Path('f', contextlib.nullcontext, f), calls=1))\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)})
    assert proc.returncode == 0, proc.stderr
    assert int(proc.stdout.split()[-1]) > 0


def test_the_paths_differ_in_their_python_work():
    """The fast call runs less Python than the slow call (one native op instead of the
    functional attention): the counts tell the paths apart."""
    c = _counts(_warm_paths())
    assert c["fast"] < c["slow"] and c["slow_fair"] < c["slow"]


# --- a planted loop in the fast path ---------------------------------------------------------------

@pytest.fixture
def planted(monkeypatch):
    """``install(Plant)``: the plant's wrapper around torch._native_multi_head_attention, put in
    place in this process (the wheel's import hook only acts before torch is imported), and
    taken out again after the test."""
    original = torch._native_multi_head_attention

    def install(p: plant.Plant) -> None:
        assert not p.call_frac, "only the fast kernel is wrapped here"
        monkeypatch.setattr(torch, "_native_multi_head_attention", original)  # one plant at a time
        monkeypatch.setattr(torch, "_mhabench_plant", None, raising=False)
        ns: dict = {}
        exec(compile(plant.HOOK.format(plant=asdict(p)), "mhabench_plant.py", "exec"), ns)
        ns["_plant"](torch)
    return install


def _host_ops(paths) -> dict[str, dict]:
    r = Result(POINT)
    passes.add_host_work(r, paths)
    return {n: c["ops"] for n, c in r.host_work.items()}


def test_a_planted_loop_raises_the_fast_count_by_its_bytecodes_only(planted):
    paths = _warm_paths()
    base, base_ops = _counts(paths), _host_ops(paths)
    planted(plant.Plant(py_loop=LOOP))
    assert torch._mhabench_plant is not None
    looped, looped_ops = _counts(paths), _host_ops(paths)
    assert torch._mhabench_plant.get("hit"), "the plant ran in the fast calls"
    rise = looped["fast"] - base["fast"]
    assert LOOP * PER_ITERATION <= rise <= LOOP * PER_ITERATION + WRAPPER_AT_MOST, rise
    assert looped["slow"] == base["slow"] and looped["slow_fair"] == base["slow_fair"]
    assert looped_ops == base_ops, "no aten op: the op counts cannot see the loop"


def test_the_rise_is_the_loops_own_size(planted):
    """Two plant sizes on the same wrapper: the difference is exactly the iterations'."""
    paths = _warm_paths()
    planted(plant.Plant(py_loop=LOOP))
    small = _counts(paths)["fast"]
    planted(plant.Plant(py_loop=3 * LOOP))
    assert _counts(paths)["fast"] - small == 2 * LOOP * PER_ITERATION


def test_the_counts_pass_carries_the_bytecodes(planted):
    walled = passes.wall_pass(POINT, passes.Protocol(warmup_ms=0.5, min_rounds=2, max_rounds=2,
                                                     target_ms=1.0))
    record = walled.record()
    base = passes.counts_pass(Result.of_record(json.loads(json.dumps(record))),
                              passes.Protocol())
    planted(plant.Plant(py_loop=LOOP))
    looped = passes.counts_pass(Result.of_record(json.loads(json.dumps(record))),
                                passes.Protocol())
    m0, m1 = base.metrics(), looped.metrics()
    assert m1["host_fast_bytecodes"] - m0["host_fast_bytecodes"] >= LOOP * PER_ITERATION
    assert m1["host_slow_bytecodes"] == m0["host_slow_bytecodes"]
    assert m1["host_fast_aten_ops"] == m0["host_fast_aten_ops"]
    from mhabench.track.records import work_diff
    diff = work_diff(base.host_work["fast"], looped.host_work["fast"])
    assert diff.startswith("bytecodes: ") and "planted" in diff, diff
    assert sum(looped.host_work["fast"]["functions"].values()) == m1["host_fast_bytecodes"]


# --- fresh processes -------------------------------------------------------------------------------

COUNT_CODE = """
import json
from mhabench.measure.config import Point
from mhabench.measure.passes import measure
from mhabench.measure.protocol import Protocol
r = measure(Point(2, 8, 32, 4, 1, dtype="fp32", device="cpu"),
            Protocol(warmup_ms=0.5, min_rounds=2, max_rounds=2, target_ms=1.0), extras=False)
print(json.dumps({p: [c["bytecodes"], c["aten_ops"]] for p, c in r.host_work.items()}))
"""


def _fresh(tmp_path: FsPath, p: plant.Plant | None) -> dict:
    return plant.fresh_json(COUNT_CODE, REPO, tmp_path, p)


@pytest.mark.slow
def test_fresh_processes_count_the_same_and_see_a_planted_loop(tmp_path):
    """Fresh processes, as a record of a build and the record of the next build are: the
    unchanged build twice, then a pure-Python loop planted in each fast call."""
    base, again = _fresh(tmp_path, None), _fresh(tmp_path, None)
    looped = _fresh(tmp_path, plant.Plant(py_loop=LOOP))
    assert base == again, "bytecode counts are exact between processes"
    rise = looped["fast"][0] - base["fast"][0]
    assert LOOP * PER_ITERATION <= rise <= LOOP * PER_ITERATION + WRAPPER_AT_MOST, rise
    assert looped["slow"] == base["slow"] and looped["slow_fair"] == base["slow_fair"]
    assert looped["fast"][1] == base["fast"][1], "no aten op"
