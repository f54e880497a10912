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
import pickle
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # the benchmarks package lives at the repository root

from mhabench.suite import common  # noqa: E402
from conftest import ASV_ENV_KEYS, _branch, asv, asv_env, asv_run, repo_config  # noqa: E402
from mhabench.track.asv_results import file_values  # noqa: E402
from mhabench.measure.config import SEED_AXES, SMOKE_AXES, ConfigError, named_grid  # noqa: E402

PLANTED = "custom:batch=2;seq=8;embed=12;heads=3,4;b=1"  # heads=3: the fast path refuses odd heads
WALL = ["time_per_call.WallTime.track_fast", "time_per_call.WallTime.track_slow",
        "time_per_call.WallTime.track_slow_fair",
        "speedup.FastOverSlow.track_wall", "speedup.FastOverSlow.track_wall_fair",
        "speedup.Noise.track_wall", "speedup.Noise.track_wall_fair", "speedup.Rounds.track_wall",
        "correctness.MaxAbsError.track_fast_vs_slow", "correctness.MaxAbsError.track_fast_vs_fp32"]
#: exact host-work counts: the aten-op counts exist on a CPU; the CUDA counts are not discovered
HOST = ["host.HostWork.track_fast_aten_ops", "host.HostWork.track_slow_aten_ops",
        "host.HostWork.track_slow_fair_aten_ops"]
HOST_CUDA = ["host.HostWork.track_fast_runtime_calls", "host.HostWork.track_fast_launches",
             "host.HostWork.track_fast_syncs", "host.HostWork.track_fast_memcpy_calls",
             "host.HostWork.track_fast_copied_bytes"]
DEVICE = ["time_per_call.DeviceTime.track_fast", "time_per_call.DeviceTime.track_slow",
          "time_per_call.DeviceTime.track_slow_fair",
          "time_per_call.HostShare.track_fast", "time_per_call.HostShare.track_slow",
          "time_per_call.HostShare.track_slow_fair",
          "speedup.FastOverSlow.track_device", "speedup.FastOverSlow.track_device_fair",
          "speedup.Noise.track_device", "speedup.Noise.track_device_fair",
          "speedup.Rounds.track_device",
          "time_per_call.SdpaBackend.track_flash", "time_per_call.SdpaBackend.track_efficient",
          "time_per_call.SdpaBackend.track_cudnn",
          "efficiency.Efficiency.track_fast_tflops", "efficiency.Efficiency.track_fast_below_peak",
          "memory.GpuMemory.track_fast", "memory.GpuMemory.track_slow",
          "memory.GpuMemory.track_slow_fair"]
#: Discovered on a CPU only: the efficiency figures from wall time, where no kernel time exists.
CPU_ONLY = ["efficiency.Efficiency.track_fast_wall_tflops",
            "efficiency.Efficiency.track_fast_wall_below_peak"]
NON_NEGATIVE = {"correctness.MaxAbsError.track_fast_vs_slow",
                "correctness.MaxAbsError.track_fast_vs_fp32", "speedup.Noise.track_wall",
                "speedup.Noise.track_wall_fair"}  # may be 0; every other wall figure is > 0


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
    {common.SUITE_ENV: "tiny"},
])
def test_bad_settings_raise_config_error(env):
    with pytest.raises(ConfigError):
        common.selection(env)


def test_suite_defaults_to_full_and_core_drops_the_extras():
    assert common.selection({}).extras
    sel = common.selection({common.SUITE_ENV: " Core "})
    assert (sel.suite, sel.extras) == ("core", False)


def test_core_suite_is_the_timing_speedup_host_share_and_error_figures(tmp_path):
    """Every extra figure is left undiscovered (no asv worker), every other one stays."""
    env = {k: v for k, v in os.environ.items() if k not in ASV_ENV_KEYS}
    code = ("import sys; from asv_runner.discovery import disc_benchmarks; "
            "print(' '.join(sorted(b.name for b in disc_benchmarks(sys.argv[1]))))")
    names = {}
    for suite in ("full", "core"):
        for device in ("cpu", "cuda"):  # discovery touches no device
            out = subprocess.run([sys.executable, "-c", code, str(REPO / "benchmarks")],
                                 cwd=REPO, capture_output=True, text=True, timeout=120,
                                 env={**env, common.SUITE_ENV: suite, common.DEVICE_ENV: device})
            assert out.returncode == 0, out.stderr
            names[suite, device] = set(out.stdout.split())
    assert names["full", "cuda"] == set(WALL + DEVICE + HOST + HOST_CUDA)
    assert names["full", "cpu"] == set(WALL + CPU_ONLY + HOST)  # nothing that cannot exist on a CPU
    for device in ("cpu", "cuda"):
        extras = {n for n in names["full", device] if n.split(".")[1] in
                  ("SdpaBackend", "Efficiency", "GpuMemory")}
        extras.add("correctness.MaxAbsError.track_fast_vs_fp32")
        assert names["core", device] == names["full", device] - extras
    assert len(names["core", "cuda"]) == 20 + len(HOST + HOST_CUDA)
    assert len(names["core", "cpu"]) == 9 + len(HOST)


def test_core_sweep_runs_no_extras():
    p = common.selection({}).points[0]
    base = {common.GRID_ENV: f"custom:batch={p.batch_size};seq={p.seq_len};"
            f"embed={p.embed_dim};heads={p.num_heads};b={p.beta_b}"}
    full = common.run_sweep(common.selection(base))
    core = common.run_sweep(common.selection({**base, common.SUITE_ENV: "core"}))
    (f,), (c,) = full["points"].values(), core["points"].values()
    assert f["status"] == c["status"] == "ok"
    assert math.isfinite(f["metrics"]["max_abs_err_fp32"])
    assert math.isnan(c["metrics"]["max_abs_err_fp32"])
    assert math.isfinite(c["metrics"]["wall_fast_us"]) and c["metrics"]["max_abs_err"] >= 0
    assert (full["meta"]["suite"], core["meta"]["suite"]) == ("full", "core")
    assert "extra_fp32" in full["meta"]["cost_s"] and "extra_fp32" not in core["meta"]["cost_s"]


def test_setup_timeout_is_env_overridable():
    assert common.selection({common.TIMEOUT_ENV: "90"}).setup_timeout == 90.0


# --- the benchmark class, without asv ------------------------------------------------------------
def _import_check(env_extra: dict) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ASV_ENV_KEYS}
    env.update(env_extra)
    code = ("import json, sys; import benchmarks.speedup, benchmarks.time_per_call, "
            "benchmarks.efficiency, benchmarks.memory, benchmarks.correctness as m; "
            "print(json.dumps({'torch': 'torch' in sys.modules, 'params': m.MaxAbsError.params}))")
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


def _benchmarks() -> dict:
    """{"module.Class.track_x": (class, method name)} over the suite, as asv names them."""
    import importlib
    import inspect
    out = {}
    for path in sorted((REPO / "benchmarks").glob("*.py")):
        mod = importlib.import_module(f"benchmarks.{path.stem}")
        for cname, cls in inspect.getmembers(mod, inspect.isclass):
            if cls.__module__ != f"mhabench.suite.{path.stem}":  # the entry re-exports them
                continue
            for n in dir(cls):
                if n.startswith("track_") and getattr(cls, n) is not None:
                    out[f"{path.stem}.{cname}.{n}"] = (cls, n)
    return out


def test_track_methods_have_units_versions_and_lower_is_better_orientation():
    found = _benchmarks()
    assert sorted(found) == sorted(WALL + CPU_ONLY + HOST)  # imported with the CPU default
    for name, (cls, n) in found.items():
        f = getattr(cls, n)
        assert isinstance(f.unit, str) and f.unit
        assert isinstance(f.version, str) and f.version
        assert "speedup" not in n  # speedups are tracked as fast/slow: drops show as increases
        assert issubclass(cls, common.SweptPoint)


def test_every_class_shares_one_setup_cache():
    """asv keys setup_cache by its definition site: one definition, one sweep per run."""
    classes = {cls for cls, _ in _benchmarks().values()}
    assert len(classes) >= 5
    assert {cls.setup_cache for cls in classes} == {common.SweptPoint.setup_cache}
    assert common.SweptPoint.setup_cache.timeout >= 60


def test_worker_source_stays_short():
    """asv_runner reads and tokenizes each benchmark's track, setup and setup_cache source in
    every (method x point) worker; setup_cache's body kept inline doubled it (156 tokens)."""
    import io
    import tokenize

    from asv_runner.benchmarks._base import get_source_code

    for name, (cls, n) in _benchmarks().items():
        code = get_source_code([getattr(cls, n), cls.setup, cls.setup_cache])
        tokens = list(tokenize.generate_tokens(io.StringIO(code).readline))
        assert len(tokens) <= 100, (name, len(tokens))


def test_every_track_method_reads_a_metric_the_library_produces():
    """Renaming a key of Result.metrics() must not silently turn a figure into n/a."""
    from mhabench.measure.config import Point
    from mhabench.measure.results import Result

    keys = Result(Point(2, 8, 32, 4, 1, dtype="fp32", device="cpu")).metrics().keys()
    for name, (cls, n) in _benchmarks().items():
        assert getattr(cls, n).metric in keys, name
        bench = cls()
        bench.metrics = {k: 2.0 for k in keys}
        value = getattr(bench, n)(None)
        assert isinstance(value, float) and math.isfinite(value), name
    bench = _benchmarks()["speedup.FastOverSlow.track_wall"][0]()
    bench.metrics = {"speedup": 4.0}
    assert bench.track_wall(None) == 0.25  # 1 / speedup


def _cache(tmp_path, status="ok", unavailable=""):
    sel = common.SELECTION
    p = sel.points[0]
    entry = {"status": status, "message": "why", "metrics": {"wall_fast_us": 3.0}}
    out = {"points": {p.label: entry}, "unavailable": unavailable, "meta": {}}
    return p, common.write_points(out, str(tmp_path / status))


def test_setup_outcomes(tmp_path):
    from benchmarks.correctness import MaxAbsError
    from benchmarks.time_per_call import WallTime
    p, cache = _cache(tmp_path)
    assert len(pickle.dumps(cache)) < 1000  # each worker unpickles it: keep it small
    args = (p.batch_size, p.seq_len, p.embed_dim, p.num_heads, p.beta_b)
    bench = WallTime()
    bench.setup(cache, *args)
    assert bench.track_fast(cache, *args) == 3.0
    err = MaxAbsError()
    err.setup(cache, *args)
    assert math.isnan(err.track_fast_vs_fp32(cache, *args))  # not measured: n/a, not failed
    with pytest.raises(NotImplementedError):
        bench.setup(cache, 999, *args[1:])  # not in the grid -> n/a
    with pytest.raises(NotImplementedError):
        bench.setup(_cache(tmp_path / "u", unavailable="no CUDA")[1], *args)  # no device -> n/a
    for status in ("no_fastpath", "mismatch", "error"):
        with pytest.raises(RuntimeError, match=status):
            bench.setup(_cache(tmp_path, status)[1], *args)  # -> failed, never a number


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
    out = file_values(doc)
    out["__durations__"] = doc.get("durations", {})
    return out


def test_asv_run_and_publish_smoke_grid_on_cpu(smoke_report, tmp_path):
    """Wall figures are numbers, device figures n/a (not failed), and publish draws graphs."""
    d, head, proc = smoke_report.dir, smoke_report.commit, smoke_report.run
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]

    res = _results(d, "ci-cpu", head)
    combos = list(itertools.product(*_axes_lists(SMOKE_AXES)))
    assert len(combos) == 8
    for name in WALL:
        values = res[name]
        assert sorted(values) == sorted(tuple(str(v) for v in c) for c in combos)
        for combo, v in values.items():
            assert isinstance(v, float) and math.isfinite(v), (name, combo, v)
            assert v > 0 or (name in NON_NEGATIVE and v == 0), (name, combo, v)
    for name in HOST:  # exact counts: whole numbers, the fast path's above the slow path's
        assert all(v == int(v) and v > 0 for v in res[name].values()), (name, res[name])
    for combo in res[HOST[0]]:
        assert res[HOST[0]][combo] > res[HOST[1]][combo] == res[HOST[2]][combo], combo
    for name in DEVICE:
        assert name not in res, f"{name} cannot exist on a CPU: it must not be discovered there"
    for combo, v in res["efficiency.Efficiency.track_fast_wall_tflops"].items():
        assert isinstance(v, float) and math.isfinite(v) and v > 0, (combo, v)
    for combo, v in res["efficiency.Efficiency.track_fast_wall_below_peak"].items():
        assert v is not None and (math.isnan(v) or v >= 1.0), (combo, v)  # never above the peak
    caches = [k for k in res["__durations__"] if k.startswith("<setup_cache")]
    assert len(caches) == 1, caches  # one sweep shared by every class

    proc = smoke_report.publish
    assert proc.returncode == 0, proc.stdout + proc.stderr
    index = json.loads((d / "html" / "index.json").read_text())
    assert set(WALL + CPU_ONLY + HOST) == set(index["benchmarks"])
    assert "ci-cpu" in index["machines"]
    for name in WALL:
        graphs = glob.glob(str(d / "html" / "graphs" / f"branch-{_branch()}" / "machine-ci-cpu" / "*"
                               / f"{name}.json"))
        assert len(graphs) == 1, name
        series = json.loads(Path(graphs[0]).read_text())
        assert series and all(v is not None for v in series[0][1]), (name, series)

    # the suite's own results, drawn across builds by mhabench's asv reader
    from mhabench.report.plot import asv_history, asv_tags, plot_asv_history
    name = "speedup.FastOverSlow.track_wall"
    (h,) = asv_history(d / "results", name, asv_tags(d / "html")).values()
    assert h["builds"] == [head[:8]]
    labels = [", ".join(f"{k}={v}" for k, v in zip(common.PARAM_NAMES, c)) for c in combos]
    assert sorted(h["series"]) == sorted(labels)
    for combo, label in zip(combos, labels):
        assert h["series"][label] == [res[name][tuple(str(v) for v in combo)]]
    written = plot_asv_history(d / "results", tmp_path / "plots", name)
    assert [Path(p).name for p in written] == [f"asv_{name}_ci-cpu.png"]
    from mhabench.report.plot import asv_figures
    (fig,) = asv_figures(d / "results", name).values()
    (ax,) = fig.axes
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert legend and not any("embed_dim" in t or "num_heads" in t for t in legend)  # constant
    assert "embed_dim=32" in ax.get_title() and "lower is better" in ax.get_ylabel()
    assert [ln.get_ydata()[0] for ln in ax.get_lines() if ln.get_gid() == "unity"] == [1.0]


def test_asv_run_marks_a_point_whose_fast_path_is_refused_as_failed(tmp_path, head):
    """A custom grid with an odd head count: the fast path refuses it -> failed, exit status 2."""
    d = tmp_path / "planted"
    env = asv_env(tmp_path, **{common.GRID_ENV: PLANTED, common.DEVICE_ENV: "cpu"})
    _, proc = asv_run(d, env, "ci-cpu-planted", head)
    assert proc.returncode == 2, proc.stdout[-4000:] + proc.stderr[-4000:]
    assert "self.num_heads is not even" in proc.stdout + proc.stderr

    res = _results(d, "ci-cpu-planted", head)
    odd, even = ("2", "8", "12", "3", "1"), ("2", "8", "12", "4", "1")
    for name in WALL + CPU_ONLY + HOST:
        assert res[name][odd] is None, name  # failed, never a number
    for name in WALL:
        v = res[name][even]
        assert isinstance(v, float) and math.isfinite(v), (name, v)
    for name in DEVICE:
        assert name not in res, name
