"""The airspeed-velocity suite (asv.conf.json, benchmarks/): grid selection, outcomes per point,
and a real ``asv machine`` / ``asv run`` / ``asv publish`` on the CPU with an existing environment.

asv itself runs in subprocesses with a temporary config, results and html directory, and HOME
(``asv machine`` writes ~/.asv-machine.json): nothing is written into the repository or the home.
"""
from __future__ import annotations

import glob
import itertools
import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # the benchmarks package lives at the repository root

from benchmarks import common  # noqa: E402
from conftest import ASV_ENV_KEYS, asv, asv_env, asv_run, repo_config  # noqa: E402
from mhabench.config import SEED_AXES, SMOKE_AXES, ConfigError, named_grid  # noqa: E402

PLANTED = "custom:batch=2;seq=8;embed=12;heads=3,4;b=1"  # heads=3: the fast path refuses odd heads
WALL = ["track_wall_fast_us", "track_wall_slow_us", "track_wall_slow_fair_us",
        "track_wall_fast_over_slow", "track_wall_fast_over_slow_fair",
        "track_wall_speedup_higher_is_better", "track_wall_speedup_fair_higher_is_better",
        "track_max_abs_err"]
DEVICE = ["track_device_fast_us", "track_device_slow_us", "track_device_slow_fair_us",
          "track_host_share_fast", "track_host_share_slow", "track_host_share_slow_fair",
          "track_device_fast_over_slow", "track_device_fast_over_slow_fair",
          "track_device_speedup_higher_is_better", "track_device_speedup_fair_higher_is_better"]
CLASS = "mha_fastpath.MHAFastPath."


def _axes_lists(axes):
    return [list(axes.batch_sizes), list(axes.seq_lens), list(axes.embed_dims),
            list(axes.num_heads), list(axes.beta_bs)]


# --- grid selection (no asv, no torch) -----------------------------------------------------------
def test_default_selection_is_the_smoke_grid_on_the_cpu_in_fp32():
    sel = common.selection({})
    assert (sel.grid, sel.device, sel.dtype) == ("smoke", "cpu", "float32")
    assert sel.params == _axes_lists(SMOKE_AXES)
    assert list(sel.points) == named_grid("smoke", "float32", "cpu")
    assert sel.setup_timeout == common.SETUP_TIMEOUTS["smoke"]


def test_cuda_defaults_to_fp16_and_seed_grid_to_the_seed_axes():
    sel = common.selection({common.DEVICE_ENV: "cuda", common.GRID_ENV: "seed"})
    assert (sel.device, sel.dtype) == ("cuda", "float16")
    assert sel.params == _axes_lists(SEED_AXES)
    assert len(sel.points) == 1280
    assert sel.setup_timeout == 3600


def test_quick_grid_keeps_the_seed_axes_and_measures_32_of_them():
    sel = common.selection({common.GRID_ENV: "quick", common.DTYPE_ENV: "bf16"})
    assert sel.params == _axes_lists(SEED_AXES)
    assert len(sel.points) == 32
    product = {sel.label(*combo) for combo in itertools.product(*sel.params)}
    assert {p.label for p in sel.points} <= product


def test_label_is_the_points_label():
    for grid in ("smoke", "seed"):
        sel = common.selection({common.GRID_ENV: grid})
        for p in sel.points:
            assert sel.label(p.batch_size, p.seq_len, p.embed_dim, p.num_heads, p.beta_b) == p.label


def test_custom_grid_parses_and_fills_missing_axes_from_smoke():
    sel = common.selection({common.GRID_ENV: PLANTED})
    assert sel.params == [[2], [8], [12], [3, 4], [1]]
    assert [p.num_heads for p in sel.points] == [3, 4]
    sel = common.selection({common.GRID_ENV: "custom:heads=2, 4 ;embed_dim=32"})
    assert sel.params == [list(SMOKE_AXES.batch_sizes), list(SMOKE_AXES.seq_lens), [32], [2, 4],
                          list(SMOKE_AXES.beta_bs)]


def test_custom_grid_leaves_out_shapes_mha_cannot_build():
    sel = common.selection({common.GRID_ENV: "custom:embed=12;heads=4,5"})
    assert sel.params[3] == [4, 5]
    assert {p.num_heads for p in sel.points} == {4}


@pytest.mark.parametrize("env", [
    {common.GRID_ENV: "huge"},
    {common.GRID_ENV: "custom:heads=0"},
    {common.GRID_ENV: "custom:width=3"},
    {common.GRID_ENV: "custom:heads"},
    {common.GRID_ENV: "custom:heads=2;heads=4"},
    {common.GRID_ENV: "custom:embed=12;heads=5"},
    {common.DEVICE_ENV: "tpu"},
    {common.DTYPE_ENV: "int8"},
    {common.TIMEOUT_ENV: "soon"},
    {common.TIMEOUT_ENV: "0"},
])
def test_bad_settings_raise_config_error(env):
    with pytest.raises(ConfigError):
        common.selection(env)


def test_setup_timeout_is_env_overridable():
    assert common.selection({common.TIMEOUT_ENV: "90"}).setup_timeout == 90.0


# --- the benchmark class, without asv ------------------------------------------------------------
def _import_check(env_extra: dict) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ASV_ENV_KEYS}
    env.update(env_extra)
    code = ("import json, sys; import benchmarks.mha_fastpath as m; "
            "print(json.dumps({'torch': 'torch' in sys.modules, 'params': m.MHAFastPath.params}))")
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, env=env, capture_output=True,
                         text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


@pytest.mark.parametrize("env", [{}, {common.DEVICE_ENV: "cuda", common.GRID_ENV: "seed"}])
def test_importing_the_suite_imports_no_torch(env):
    """asv forks every worker from a process that imported the suite: no CUDA (not even torch)."""
    got = _import_check(env)
    assert got["torch"] is False
    assert len(got["params"]) == 5


def _suite():
    from benchmarks import mha_fastpath
    return mha_fastpath


def _track_names(cls):
    return sorted(n for n in dir(cls) if n.startswith("track_"))


def test_track_methods_have_units_versions_and_lower_is_better_names():
    cls = _suite().MHAFastPath
    names = _track_names(cls)
    assert sorted(WALL + DEVICE) == names
    for n in names:
        f = getattr(cls, n)
        assert isinstance(f.unit, str) and f.unit
        assert isinstance(f.version, str) and f.version
        if "speedup" in n:
            assert n.endswith("_higher_is_better"), n
    assert isinstance(cls.setup_cache.timeout, (int, float)) and cls.setup_cache.timeout >= 60


def test_every_track_method_reads_a_metric_the_library_produces():
    """Renaming a key of Result.metrics() must not silently turn a figure into n/a."""
    from mhabench.config import Point
    from mhabench.results import Result

    m = _suite()
    keys = Result(Point(2, 8, 32, 4, 1, dtype="fp32", device="cpu")).metrics().keys()
    bench = m.MHAFastPath()
    bench.metrics = {k: 2.0 for k in keys}
    for n in _track_names(m.MHAFastPath):
        value = getattr(bench, n)(None)
        assert isinstance(value, float) and math.isfinite(value), n
    assert bench.track_wall_fast_over_slow(None) == 0.5  # 1 / speedup


def _cache(status="ok", unavailable=""):
    sel = _suite().SELECTION
    p = sel.points[0]
    entry = {"status": status, "message": "why", "metrics": {"wall_fast_us": 3.0}}
    return sel, p, {"points": {p.label: entry}, "unavailable": unavailable, "meta": {}}


def test_setup_outcomes():
    bench = _suite().MHAFastPath()
    sel, p, cache = _cache()
    args = (p.batch_size, p.seq_len, p.embed_dim, p.num_heads, p.beta_b)
    bench.setup(cache, *args)
    assert bench.track_wall_fast_us(cache, *args) == 3.0
    assert math.isnan(bench.track_device_fast_us(cache, *args))  # not measured: n/a, not failed
    with pytest.raises(NotImplementedError):
        bench.setup(cache, 999, *args[1:])  # not in the grid -> n/a
    with pytest.raises(NotImplementedError):
        bench.setup(_cache(unavailable="no CUDA")[2], *args)  # device missing -> n/a
    for status in ("no_fastpath", "mismatch", "error"):
        with pytest.raises(RuntimeError, match=status):
            bench.setup(_cache(status)[2], *args)  # -> failed, never a number


# --- asv itself ----------------------------------------------------------------------------------
def test_repo_config_pins_what_the_design_needs():
    conf = repo_config()
    assert conf["version"] == 1 and conf["project"] == "mhabench" and conf["repo"] == "."
    assert conf["branches"] == ["main"]
    assert conf["environment_type"] == "virtualenv"
    assert conf["launch_method"] == "forkserver"
    assert conf["benchmark_dir"] == "benchmarks"
    assert (conf["env_dir"], conf["results_dir"], conf["html_dir"]) == (
        ".asv/env", ".asv/results", ".asv/html")
    assert "/.asv/" in (REPO / ".gitignore").read_text().split()


def test_asv_check_passes(tmp_path):
    proc = asv(["check", "--config", str(REPO / "asv.conf.json"), "-E",
                f"existing:{sys.executable}"], cwd=REPO, env=asv_env(tmp_path))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "No problems found" in proc.stdout


def _results(d: Path, machine: str, commit: str) -> dict:
    """{benchmark: {param tuple: value}} from asv's result file (null: failed, NaN: n/a)."""
    files = glob.glob(str(d / "results" / machine / f"{commit[:8]}-*.json"))
    assert len(files) == 1, files
    doc = json.loads(Path(files[0]).read_text())
    cols = doc["result_columns"]
    out = {}
    for name, row in doc["results"].items():
        values, params = row[cols.index("result")], row[cols.index("params")]
        combos = list(itertools.product(*params))
        values = values if values is not None else [None] * len(combos)
        out[name] = dict(zip(combos, values))
    out["__durations__"] = doc.get("durations", {})
    return out


def test_asv_run_and_publish_smoke_grid_on_cpu(smoke_report):
    """Wall figures are numbers, device figures n/a (not failed), and publish draws graphs."""
    d, head, proc = smoke_report.dir, smoke_report.commit, smoke_report.run
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]

    res = _results(d, "ci-cpu", head)
    combos = list(itertools.product(*_axes_lists(SMOKE_AXES)))
    assert len(combos) == 8
    for name in WALL:
        values = res[CLASS + name]
        assert sorted(values) == sorted(tuple(str(v) for v in c) for c in combos)
        for combo, v in values.items():
            assert isinstance(v, float) and math.isfinite(v), (name, combo, v)
            if name != "track_max_abs_err":
                assert v > 0, (name, combo, v)
    for name in DEVICE:
        for combo, v in res[CLASS + name].items():
            assert v is not None, f"{name} {combo} failed; device figures must be n/a on a CPU"
            assert math.isnan(v), (name, combo, v)
    assert any(k.startswith("<setup_cache") for k in res["__durations__"])

    proc = smoke_report.publish
    assert proc.returncode == 0, proc.stdout + proc.stderr
    index = json.loads((d / "html" / "index.json").read_text())
    assert set(WALL + DEVICE) == {n[len(CLASS):] for n in index["benchmarks"]}
    assert "ci-cpu" in index["machines"]
    for name in WALL:
        graphs = glob.glob(str(d / "html" / "graphs" / "branch-main" / "machine-ci-cpu" / "*"
                               / f"{CLASS}{name}.json"))
        assert len(graphs) == 1, name
        series = json.loads(Path(graphs[0]).read_text())
        assert series and all(v is not None for v in series[0][1]), (name, series)


def test_asv_run_marks_a_point_whose_fast_path_is_refused_as_failed(tmp_path, head):
    """A custom grid with an odd head count: the fast path refuses it -> failed, exit status 2."""
    d = tmp_path / "planted"
    env = asv_env(tmp_path, **{common.GRID_ENV: PLANTED, common.DEVICE_ENV: "cpu"})
    _, proc = asv_run(d, env, "ci-cpu-planted", head)
    assert proc.returncode == 2, proc.stdout[-4000:] + proc.stderr[-4000:]
    assert "self.num_heads is not even" in proc.stdout + proc.stderr

    res = _results(d, "ci-cpu-planted", head)
    odd, even = ("2", "8", "12", "3", "1"), ("2", "8", "12", "4", "1")
    for name in WALL + DEVICE:
        assert res[CLASS + name][odd] is None, name  # failed, never a number
    for name in WALL:
        v = res[CLASS + name][even]
        assert isinstance(v, float) and math.isfinite(v), (name, v)
    for name in DEVICE:
        assert math.isnan(res[CLASS + name][even]), name
