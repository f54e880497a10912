"""Every figure is measured or n/a with a reason, on whichever torch runs the tests."""
from __future__ import annotations

import math

from mhabench.measure import availability as av
from mhabench.measure import compat
from mhabench.measure.sweep import measure, run_meta


def test_every_figure_of_a_cpu_point_is_measured_or_explained(padded_point, small_proto):
    res = measure(padded_point, small_proto)
    res.peak_tflops = 1.0  # a calibrated peak, as a run passes it
    assert res.status == "ok", res.message
    na = av.not_available("cpu")
    blank = sorted(k for k, v in res.metrics().items()
                   if not math.isfinite(v) and not av.is_not_available(k, na))
    assert blank == []
    # the figures this build can give are there, slow_fair's on every torch
    for key in ("wall_slow_fair_us", "speedup_fair", "wall_slow_fair_tflops", "max_abs_err_fp32"):
        assert math.isfinite(res.metrics()[key]), key
        assert not av.is_not_available(key, na)


def test_device_figures_are_na_on_a_cpu_only():
    cpu = av.not_available("cpu")
    assert av.is_not_available("device_fast_us", cpu)
    assert av.is_not_available("host_share_slow_fair", cpu)
    assert av.is_not_available("peak_mem_slow_bytes", cpu)
    assert not av.is_not_available("wall_fast_us", cpu)
    assert not av.is_not_available("speedup_fair", cpu)


def test_missing_sdpa_backend_is_na_with_its_reason(monkeypatch):
    monkeypatch.setattr(compat, "sdpa_backend_names", lambda api=None: ["flash", "efficient"])
    na = av.not_available("cuda", instructions=True)
    assert list(na) == ["device_fast_cudnn_us"]
    assert "cudnn" in na["device_fast_cudnn_us"] and compat.TORCH_VERSION in na["device_fast_cudnn_us"]
    monkeypatch.setattr(compat, "sdpa_backend_names", lambda api=None: ["flash", "efficient", "cudnn"])
    assert av.not_available("cuda", instructions=True) == {}
    assert list(av.not_available("cuda")) == [av.INSTRUCTIONS], "counted only when asked"


def test_how_measured_names_the_fallbacks_in_use(monkeypatch):
    monkeypatch.setattr(compat, "fastpath_switch", lambda: None)
    monkeypatch.setattr(compat, "profiler_resolution_ns", lambda: 1000)
    lines = av.how_measured("cuda")
    assert len(lines) == 2 and "training flag" in lines[0] and "microseconds" in lines[1]
    assert len(av.how_measured("cpu")) == 1  # no device times on a CPU
    monkeypatch.setattr(compat, "fastpath_switch", lambda: object())
    monkeypatch.setattr(compat, "profiler_resolution_ns", lambda: 1)
    assert av.how_measured("cuda") == []


def test_this_torchs_profiler_resolution():
    v = tuple(int(x) for x in compat.TORCH_VERSION.split("+")[0].split(".")[:2])
    assert compat.profiler_resolution_ns() == (1 if v >= (2, 4) else 1000)


def test_lines_group_patterns_by_reason():
    out = av.lines({"a_*": "why", "b_*": "why", "c": "other"}, ["how"])
    assert out == ["n/a here: a_*, b_*: why", "n/a here: c: other", "note: how"]


def test_run_meta_carries_the_reasons(small_proto):
    meta = run_meta("cpu", small_proto, "smoke")
    assert meta["n/a"] == av.not_available("cpu")
    assert meta["how_measured"] == av.how_measured("cpu")
