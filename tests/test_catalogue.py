"""The figure catalogue (mhabench.catalogue) against everything generated from it: the asv suite,
both feeds' settings in asv.conf.json, the metrics a Result computes, the gate's families, the
run table, the CSV and the n/a reasons; and a figure added to it reaching all of them."""
from __future__ import annotations

import json
import math
import re
import sys
from dataclasses import replace
from pathlib import Path

import pytest
from asv import util

from mhabench import catalogue as cat
from mhabench.measure.config import Point
from mhabench.measure.results import Result
from mhabench.run import spec as run_spec
from mhabench.suite import common

REPO = Path(__file__).resolve().parents[1]
#: What asv discovered per device/suite before the catalogue existed: names, versions, units.
NAMES = json.loads((REPO / "tests" / "data" / "asv_benchmarks.json").read_text())
#: Figures the catalogue records that the file above predates (new names, never renamed ones).
NEW = {f"host.HostWork.track_{p}_bytecodes" for p in cat.PATHS}


def generated(device: str, suite: str, grid: str = "smoke") -> list:
    """``[name, version, unit, param_names]`` of every benchmark the suite's classes hold for
    ``device``/``suite``, as asv's discovery lists them (sorted)."""
    sel = common.selection({run_spec.GRID_ENV: grid, run_spec.DEVICE_ENV: device,
                            run_spec.SUITE_ENV: suite})
    base = common.make_base(sel)
    out = []
    for module in cat.ASV_MODULES:
        for cname, cls in common.classes(module, sel, base).items():
            for attr in dir(cls):
                if attr.startswith("track_"):
                    fn = getattr(cls, attr)
                    out.append([f"{module}.{cname}.{attr}", fn.version, fn.unit,
                                list(cls.param_names)])
    return sorted(out)


# --- the asv suite -------------------------------------------------------------------------------
@pytest.mark.parametrize("key", sorted(NAMES))
def test_the_catalogue_generates_exactly_the_recorded_benchmarks(key):
    device, suite = key.split("/")
    got = generated(device, suite)
    recorded = NAMES[key]
    missing = [r for r in recorded if r not in got]
    assert not missing, f"renamed, re-versioned or dropped: {missing}"
    extra = {g[0] for g in got if g not in recorded}
    assert extra <= NEW, sorted(extra - NEW)


def test_every_recorded_figure_has_one_catalogue_entry_and_module():
    names = [f.asv for f in cat.FIGURES if f.asv]
    assert len(names) == len(set(names))
    assert set(cat.ASV_MODULES) == {n.split(".")[0] for n in names}
    assert {n for key in NAMES for n, *_ in NAMES[key]} | NEW <= set(cat.BY_ASV)
    for f in cat.FIGURES:
        if f.asv:
            assert f.asv_unit, f.key
            assert len(f.asv_unit) <= cat.UNIT_MAX, (f.asv, f.asv_unit)  # the graph's y label
            assert f"{f.module}.{f.cls}" in cat.CLASS_DOCS, f.asv


# --- the regressions feed ------------------------------------------------------------------------
def test_the_repository_config_carries_exactly_the_generated_feed():
    conf = util.load_json(str(REPO / "asv.conf.json"), js_comments=True)
    for key, value in cat.feed_settings().items():
        assert conf[key] == value, key
    assert conf["show_commit_url"]


def _feed_patterns() -> list[str]:
    s = cat.feed_settings()
    return list(s["regressions_thresholds"]) + list(s["regressions_first_commits"])


def _entries(name: str) -> list[str]:
    """What asv matches the feed's patterns against (asv.plugins.regressions): a parameterised
    benchmark's ``name(param, ...)``, with ``@branch`` where the graph has a branch."""
    return [f"{name}(2, 8, 32, 4, 1)@main", f"{name}(2, 8, 32, 4, 1)", f"{name}@main", name]


def _pattern_of(name: str, where: str = "regressions_thresholds") -> str:
    (p,) = [p for p in cat.feed_settings()[where] if re.match(p, _entries(name)[0])]
    return p


def test_feed_patterns_match_recorded_benchmarks_and_do_not_overlap():
    """asv applies the largest threshold among the matching patterns (``re.match`` against
    each point's entry name): an overlap would widen one silently; a pattern matching nothing
    is a renamed figure's leftover, or one asv never applies."""
    names = sorted(cat.BY_ASV)
    pats = _feed_patterns()
    assert len(pats) == len(set(pats))
    for p in pats:
        assert any(re.match(p, e) for n in names for e in _entries(n)[:1]), p
    for n in names:
        for entry in _entries(n):
            assert sum(bool(re.match(p, entry)) for p in pats) == 1, entry
    thresholds = cat.feed_settings()["regressions_thresholds"]
    assert all(t >= 0 for t in thresholds.values())
    # the host-work counts are exact: any rise is flagged
    assert thresholds[_pattern_of("host.HostWork.track_fast_aten_ops")] == 0.0
    off = cat.feed_settings()["regressions_first_commits"]
    assert all(v is None for v in off.values())
    assert _pattern_of("time_per_call.WallTime.track_fast", "regressions_first_commits")


def test_the_wall_threshold_moves_only_the_wall_ratios():
    base = cat.feed_settings()["regressions_thresholds"]
    wide = cat.feed_settings(0.2)["regressions_thresholds"]
    changed = {p for p in base if base[p] != wide[p]}
    assert changed == {_pattern_of("speedup.FastOverSlow.track_wall"),
                       _pattern_of("speedup.FastOverSlow.track_wall_fair")}
    assert all(wide[p] == 0.2 for p in changed)


# --- the metrics ---------------------------------------------------------------------------------
POINT = Point(2, 8, 32, 4, 1, dtype="fp32", device="cpu")


def full_result() -> Result:
    """A Result with every sample a CUDA run with the extras and instruction counts holds."""
    r = Result(POINT, padding=0.25, max_abs_err=1e-3, max_abs_err_fp32=2e-3, lengths=[8, 6],
               peak_tflops=10.0)
    r.rounds = {"fast": [10.0, 11.0, 12.0], "slow": [20.0, 21.0, 22.0],
                "slow_fair": [15.0, 16.0, 17.0]}
    r.device_calls = {p: [v / 2 for v in r.rounds[p]] for p in cat.PATHS}
    r.device_calls.update({f"fast@{b}": [4.0, 5.0] for b in cat.BACKENDS})
    r.peak_mem = {p: 1024.0 for p in cat.PATHS}
    r.host_work = {p: {k: 3 for k in cat.PROFILED_KINDS + ("bytecodes",)} for p in cat.PATHS}
    r.instructions = {p: 1e6 for p in cat.PATHS}
    return r


def _computed(result: Result) -> dict:
    """Every figure ``Result._compute_metrics`` computes, before the catalogue filters them:
    the local dict it builds (``m``), caught as the method returns."""
    seen = {}

    def profile(frame, event, arg):
        if event == "return" and frame.f_code.co_name == "_compute_metrics":
            seen.update(frame.f_locals.get("m") or {})

    sys.setprofile(profile)
    try:
        result._compute_metrics()
    finally:
        sys.setprofile(None)
    assert seen, "Result._compute_metrics no longer builds its figures in a local named m"
    return seen


def test_every_catalogue_key_is_a_metric_and_nothing_else_is():
    for r in (Result(POINT), full_result()):
        assert set(r.metrics()) == set(cat.BY_KEY)
    computed = _computed(full_result())
    assert set(computed) - set(cat.BY_KEY) == set(), "computed but not catalogued: dropped"


def test_every_catalogued_figure_is_computed_from_its_samples():
    """With every sample present, no figure stays NaN: a key the code spells differently from
    the catalogue would."""
    m = full_result().metrics()
    blank = sorted(k for k, v in m.items() if not math.isfinite(v))
    assert blank == []
    assert m["speedup"] == pytest.approx(21.0 / 11.0, rel=0.05)
    assert m["host_fast_copied_bytes"] == 6.0  # h2d + d2h


def test_recorded_values_are_the_metrics_inverted_where_asked():
    m = {"speedup": 4.0, "wall_fast_us": 10.0, "host_fast_aten_ops": 3.0}
    assert cat.BY_ASV["speedup.FastOverSlow.track_wall"].value(m) == 0.25
    assert cat.BY_ASV["time_per_call.WallTime.track_fast"].value(m) == 10.0
    assert math.isnan(cat.BY_ASV["speedup.FastOverSlow.track_wall_fair"].value(m))
    assert math.isnan(cat.BY_ASV["speedup.FastOverSlow.track_wall"].value({"speedup": 0.0}))
    for f in cat.FIGURES:  # asv histories read lower as better, whatever the figure
        if f.asv and f.role == "ratio":
            assert f.invert and f.better == "higher", f.key


# --- adding a figure -----------------------------------------------------------------------------
EXTRA_ASV = "host.HostWork.track_fast_extra_ops"


@pytest.fixture
def extra_figure(monkeypatch):
    """A new exact host-work count, ``extra_ops``, added as the catalogue says a figure is added:
    its kind among the profiled ones (what the measurement fills) and its entries (recorded by
    asv for the fast path only, shown in the run table)."""
    from mhabench.report import run_table  # noqa: F401  (reads the catalogue at call time)
    kinds = cat.PROFILED_KINDS + ("extra_ops",)
    monkeypatch.setattr(cat, "PROFILED_KINDS", kinds)
    monkeypatch.setitem(cat.WORK_DOCS, "extra_ops", "extra ops per call")
    monkeypatch.setitem(cat.ASV_WORK, "fast", cat.ASV_WORK["fast"] + ("extra_ops",))
    new = [cat._work(p, "extra_ops") for p in cat.PATHS]
    new[0] = replace(new[0], table="extra\u2193", fmt="g3")
    figures = cat.FIGURES + tuple(new)
    monkeypatch.setattr(cat, "FIGURES", figures)
    monkeypatch.setattr(cat, "BY_KEY", {f.key: f for f in figures})
    monkeypatch.setattr(cat, "BY_ASV", {f.asv: f for f in figures if f.asv})
    assert new[0].asv == EXTRA_ASV and not new[1].asv
    return new[0]


def _with_extra_ops(n: int) -> Result:
    r = full_result()
    for p in cat.PATHS:
        r.host_work[p]["extra_ops"] = n
    return r


def test_an_added_figure_reaches_the_suite(extra_figure):
    sel = common.selection({run_spec.GRID_ENV: "smoke"})
    base = common.make_base(sel)
    (cls,) = [c for name, c in common.classes("host", sel, base).items() if name == "HostWork"]
    track = cls.track_fast_extra_ops
    assert (track.unit, track.version, track.metric) == ("count", "1", "host_fast_extra_ops")
    assert not hasattr(cls, "track_slow_extra_ops")  # recorded for the fast path only
    bench = cls()
    bench.metrics = _with_extra_ops(7).metrics()
    assert bench.track_fast_extra_ops(None) == 7.0
    names = [n for n, *_ in generated("cpu", "core")]
    assert EXTRA_ASV in names
    assert cat.feed_settings()["regressions_thresholds"][_pattern_of(EXTRA_ASV)] == 0.0


def test_an_added_figure_reaches_the_gate(extra_figure):
    from mhabench.track import rule
    assert cat.family_of(EXTRA_ASV) is cat.FAMILIES["host work"]
    point = "B2-S8-E32-H4-b1"
    before = {EXTRA_ASV: {point: [7.0, 7.0]}}
    (j,) = rule.compare(before, {EXTRA_ASV: {point: [8.0]}})
    assert (j.figure, j.status, j.source) == (EXTRA_ASV, "regressed", "exact")
    (finding,) = rule.findings([j])
    assert (finding.section, finding.fails) == ("fast", True)
    (same,) = rule.compare(before, {EXTRA_ASV: {point: [7.0]}})
    assert same.status == "ok"


def test_an_added_figure_reaches_the_run_table_and_the_csv(extra_figure):
    from mhabench.measure.results import csv_text
    from mhabench.report import run_table
    assert extra_figure in cat.table_figures()
    headers, rows = run_table.columns([_with_extra_ops(5)])
    assert rows[0][headers.index("extra\u2193")] == "5"
    columns = cat.csv_columns()
    assert [c for c in columns if "extra_ops" in c] == [f"host_{p}_extra_ops" for p in cat.PATHS]
    assert columns[:len(cat.CSV_LAYOUT)] == list(cat.CSV_LAYOUT)  # appended: the format holds
    header, row = csv_text([_with_extra_ops(5)]).splitlines()
    cells = dict(zip(header.split(","), row.split(",")))
    assert cells["host_fast_extra_ops"] == "5"


# --- the table and the CSV -----------------------------------------------------------------------
def test_the_csv_starts_with_the_reference_columns_and_names_every_column_once():
    headers = [cat.csv_header(c) for c in cat.csv_columns()]
    assert headers[:9] == ["dtype", "batch_size", "sequence_length", "n_heads", "embed_dim",
                           "time_native_mha_slow(\u00b5s)", "time_native_mha_fast (\u00b5s)",
                           "speedup flash_mha v native_mha", "padding"]
    assert len(headers) == len(set(headers))
    keys = [c for c in cat.csv_columns() if not c.startswith("@")]
    assert set(keys) == {f.key for f in cat.FIGURES if f.in_csv}


def test_table_figures_have_headers_and_formats():
    from mhabench.report.run_table import CELLS
    figs = cat.table_figures()
    assert len(figs) == len({f.key for f in figs}) == len([f for f in cat.FIGURES if f.table])
    for f in figs:
        assert f.table and f.fmt in CELLS, f.key
        assert f.table.endswith((cat.UP, cat.DOWN)), f.table  # says which way is better


# --- where figures cannot exist ------------------------------------------------------------------
def test_on_a_cpu_the_device_figures_and_uncounted_instructions_are_na():
    na = cat.unavailable("cpu")
    device_only = {f.key for f in cat.FIGURES if f.on == "cuda"}
    assert {k for k, why in na.items() if why == cat.NO_DEVICE} == device_only
    assert {"device_fast_us", "host_share_slow_fair", "peak_mem_slow_bytes",
            "host_fast_runtime_calls"} <= device_only
    assert {k for k, why in na.items() if why == cat.NOT_COUNTED} == {f"instr_{p}" for p in
                                                                       cat.PATHS}
    for key in ("wall_fast_us", "speedup_fair", "host_fast_aten_ops", "host_fast_bytecodes"):
        assert key not in na
    assert "instr_fast" not in cat.unavailable("cpu", instructions=True)


def test_on_cuda_only_missing_backends_and_uncounted_instructions_are_na():
    assert cat.unavailable("cuda:1", instructions=True) == {}
    assert set(cat.unavailable("cuda")) == {f"instr_{p}" for p in cat.PATHS}
    na = cat.unavailable("cuda", instructions=True, backends=("flash", "efficient"))
    assert list(na) == ["device_fast_cudnn_us"]
    assert "cudnn" in na["device_fast_cudnn_us"]


def test_na_lines_group_the_figures_by_reason():
    from mhabench.report.run_table import na_lines
    lines = na_lines(cat.unavailable("cpu"))
    assert len(lines) == 2  # one per reason
    assert cat.NO_DEVICE in lines[0] and "device_*_us" in lines[0]
    assert "instr_*" in lines[1]
    assert all(len(ln) <= 160 for text in lines for ln in text.splitlines())
    assert cat.grouped({"a": "x", "b": "y", "c": "x"}) == {"x": ["a", "c"], "y": ["b"]}


def test_every_figure_of_a_measured_cpu_point_is_measured_or_explained(padded_point, small_proto):
    from mhabench.measure.passes import measure
    res = measure(padded_point, small_proto)
    res.peak_tflops = 1.0  # a calibrated peak, as a run passes it
    assert res.status == "ok", res.message
    na = cat.unavailable("cpu")
    blank = sorted(k for k, v in res.metrics().items() if not math.isfinite(v) and k not in na)
    assert blank == []
    for key in ("wall_slow_fair_us", "speedup_fair", "wall_slow_fair_tflops", "max_abs_err_fp32",
                "host_fast_bytecodes"):
        assert math.isfinite(res.metrics()[key]) and key not in na, key


def test_run_meta_carries_the_reasons_for_this_torch(small_proto):
    from mhabench.measure import compat, machine
    meta = machine.run_meta("cpu", small_proto, "smoke")
    assert meta["n/a"] == cat.unavailable("cpu", backends=compat.sdpa_backend_names())
    assert meta["how_measured"] == machine.how_measured("cpu")
    counted = machine.run_meta("cpu", small_proto, "smoke", instructions=True)["n/a"]
    assert set(meta["n/a"]) - set(counted) == {f"instr_{p}" for p in cat.PATHS}


def test_how_measured_names_the_fallbacks_in_use(monkeypatch):
    from mhabench.measure import compat, machine
    monkeypatch.setattr(compat, "fastpath_switch", lambda: None)
    monkeypatch.setattr(compat, "profiler_resolution_ns", lambda: 1000)
    lines = machine.how_measured("cuda")
    assert len(lines) == 2 and "training flag" in lines[0] and "microseconds" in lines[1]
    assert len(machine.how_measured("cpu")) == 1  # no device times on a CPU
    monkeypatch.setattr(compat, "fastpath_switch", lambda: object())
    monkeypatch.setattr(compat, "profiler_resolution_ns", lambda: 1)
    assert machine.how_measured("cuda") == []


def test_this_torchs_profiler_resolution():
    from mhabench.measure import compat
    v = tuple(int(x) for x in compat.TORCH_VERSION.split("+")[0].split(".")[:2])
    assert compat.profiler_resolution_ns() == (1 if v >= (2, 4) else 1000)


# --- one place -----------------------------------------------------------------------------------
def test_the_asv_names_live_in_the_catalogue_not_across_the_package():
    """A figure's asv name is spelled in the catalogue; the commands may name the default one."""
    files = sorted(str(p.relative_to(REPO)) for p in (REPO / "mhabench").rglob("*")
                   if p.is_file() and "__pycache__" not in p.parts
                   and b"FastOverSlow" in p.read_bytes())
    assert "mhabench/catalogue.py" in files
    assert len(files) <= 3, files


def test_the_reference_page_holds_the_catalogues_table():
    from mhabench import catalogue as cat
    page = (Path(__file__).resolve().parents[1] / "docs" / "reference.md").read_text()
    assert cat.markdown() in page, "regenerate docs/reference.md: python -m mhabench.catalogue"
