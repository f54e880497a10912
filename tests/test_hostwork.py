"""Exact host-work counts: attribution of synthetic records, and real CPU sessions in which a
planted extra aten op must change the count and planted pure-Python work must not."""
from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from mhabench.measure import hostwork
from mhabench.measure.config import Point
from mhabench.measure.passes import measure
from mhabench.measure.protocol import Protocol

sys.path.insert(0, str(Path(__file__).resolve().parent))
import plant  # noqa: E402

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("name, kind", [
    ("cudaLaunchKernel", "launches"), ("cuLaunchKernelEx", "launches"),
    ("cudaLaunchKernelExC", "launches"), ("cudaMemcpyAsync", "memcpy_calls"),
    ("cudaMemsetAsync", "memcpy_calls"), ("cudaStreamSynchronize", "syncs"),
    ("cudaDeviceSynchronize", "syncs"), ("cudaMalloc", "alloc_calls"),
    ("cudaFreeHost", "alloc_calls"), ("cudaEventRecord", ""), ("cudaGetDevice", ""),
])
def test_runtime_calls_are_sorted_by_kind(name, kind):
    assert hostwork.runtime_kind(name) == kind
    assert hostwork.host_kind(name) == "runtime"


def test_host_kinds():
    assert hostwork.host_kind("aten::mm") == "op"
    assert hostwork.host_kind("Activity Buffer Request") == ""


def test_counts_per_range_from_synthetic_records():
    ranges = [(100, 200, "fast"), (300, 400, "fast"), (500, 600, "slow")]
    host = [(110, "aten::linear"), (111, "aten::addmm"), (120, "cudaLaunchKernel"),
            (130, "cudaMemcpyAsync"), (140, "cudaStreamSynchronize"), (150, "cudaEventRecord"),
            (310, "aten::linear"), (311, "aten::addmm"), (320, "cudaLaunchKernel"),
            (330, "cudaMemcpyAsync"), (340, "cudaStreamSynchronize"), (350, "cudaEventRecord"),
            (250, "aten::add"),  # between ranges: nobody's
            (510, "aten::mm"), (520, "cudaLaunchKernel"), (530, "Activity Buffer Request")]
    launches = {1: 120, 2: 130, 3: 320, 4: 330, 5: 520, 6: 250}
    kernels = [(1, 1000, 5, "gemm"), (2, 1010, 5, "Memcpy DtoH (Device -> Pageable)"),
               (3, 2000, 5, "gemm"), (4, 2010, 5, "Memcpy DtoH (Device -> Pageable)"),
               (5, 3000, 5, "gemm"), (5, 3010, 5, "softmax"), (6, 4000, 5, "outside")]
    copies = {(2, 1010): 8, (4, 2010): 8}
    out = hostwork.per_range(ranges, host, launches, kernels, copies)
    assert [c["aten_ops"] for c in out["fast"]] == [2, 2]
    first = out["fast"][0]
    assert (first["runtime_calls"], first["launches"], first["memcpy_calls"], first["syncs"]) \
        == (4, 1, 1, 1)
    assert (first["kernels"], first["copies"], first["d2h_bytes"], first["h2d_bytes"]) \
        == (1, 1, 8, 0)
    assert first["ops"] == {"aten::linear": 1, "aten::addmm": 1}
    slow = out["slow"][0]
    assert (slow["aten_ops"], slow["runtime_calls"], slow["kernels"]) == (1, 1, 2)
    s = hostwork.summary(out["fast"], device=True)
    assert s["varies"] == [] and s["aten_ops"] == 2 and s["d2h_bytes"] == 8


def test_unknown_copy_size_is_unknown_not_zero():
    out = hostwork.per_range([(0, 10, "f")], [(1, "cudaMemcpyAsync")], {7: 1},
                             [(7, 50, 5, "Memcpy HtoD (Pageable -> Device)")], {(7, 50): -1})
    assert out["f"][0]["h2d_bytes"] == -1


def test_summary_names_what_varied_between_calls():
    a = {**{k: 1 for k in hostwork.KINDS}, "ops": {"aten::mm": 1}}
    b = {**a, "aten_ops": 2, "ops": {"aten::mm": 2}}
    s = hostwork.summary([a, b], device=True)
    assert s["varies"] == ["aten_ops"] and s["aten_ops"] == 1
    assert set(hostwork.summary([a], device=False)) == {"aten_ops", "ops", "varies"}


def test_diff_names_ops_that_appeared_or_vanished():
    before = {"aten::mm": 2, "aten::view": 3}
    after = {"aten::mm": 2, "aten::view": 1, "aten::neg": 1}
    assert hostwork.diff(before, after) == {"aten::neg": 1, "aten::view": -2}
    assert hostwork.diff_text(before, after) == "-2 aten::view, +1 aten::neg"
    assert hostwork.diff_text(before, before) == ""


POINT = Point(2, 8, 32, 4, 1, dtype="fp32", device="cpu")
PROTO = Protocol(warmup_ms=0.5, min_rounds=3, max_rounds=3, target_ms=1.0)


def test_cpu_point_counts_aten_ops_of_every_path_and_they_repeat():
    """On a CPU the counts pass carries the aten ops (and bytecodes), no device kinds."""
    a, b = measure(POINT, PROTO), measure(POINT, PROTO)
    assert a.status == "ok", a.message
    m = a.metrics()
    assert m["host_fast_aten_ops"] > m["host_slow_aten_ops"] > 0
    assert m["host_slow_aten_ops"] == m["host_slow_fair_aten_ops"]
    assert m["host_fast_launches"] != m["host_fast_launches"], "no CUDA counts on a CPU"
    for p in ("fast", "slow", "slow_fair"):
        assert a.host_work[p]["ops"] == b.host_work[p]["ops"], p
        assert a.host_work[p]["functions"] == b.host_work[p]["functions"], p
        assert sum(a.host_work[p]["ops"].values()) == a.host_work[p]["aten_ops"]
    assert "aten::_native_multi_head_attention" in a.host_work["fast"]["ops"]
    assert all(set(a.host_work[p]) == {"aten_ops", "ops", "varies", "bytecodes", "functions"}
               for p in a.host_work)
    assert a.host_work["fast"]["varies"] == [], "one call per path: nothing can vary"
    assert json.loads(json.dumps(a.doc()))["host_work"]["fast"]["aten_ops"] == m["host_fast_aten_ops"]


def test_no_host_work_when_switched_off():
    r = measure(POINT, Protocol(**{**PROTO.__dict__, "host_work": False}))
    assert r.host_work == {} and r.status == "ok"
    assert all(r.metrics()[f"host_{p}_aten_ops"] != r.metrics()[f"host_{p}_aten_ops"]
               for p in ("fast", "slow", "slow_fair")), "NaN, not 0"


COUNT_CODE = """
import json, sys
from mhabench.measure.config import Point
from mhabench.measure.passes import measure
from mhabench.measure.protocol import Protocol
r = measure(Point(2, 8, 32, 4, 1, dtype="fp32", device="cpu"),
            Protocol(warmup_ms=0.5, min_rounds=3, max_rounds=3, target_ms=1.0))
print(json.dumps({p: r.host_work[p]["ops"] for p in r.host_work}))
"""


def _counts(tmp_path: Path, p: plant.Plant | None) -> dict:
    return plant.fresh_json(COUNT_CODE, REPO, tmp_path, p)


@pytest.mark.slow
def test_planted_aten_op_changes_the_fast_count_and_python_work_does_not(tmp_path):
    """Fresh processes: the unchanged build twice, one extra aten op per fast call, and pure
    Python work per fast call (~200 bytecodes)."""
    base, again = _counts(tmp_path, None), _counts(tmp_path, None)
    op = _counts(tmp_path, plant.Plant(aten_ops=1))
    loop = _counts(tmp_path, plant.Plant(py_loop=30))
    assert base == again, "counts are exact between processes"
    assert hostwork.diff(base["fast"], op["fast"]) == {"aten::neg": 1}
    assert op["slow"] == base["slow"], "the plant is in the fast path only"
    assert loop == base, "pure-Python work dispatches no op"
