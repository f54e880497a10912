"""The airspeed-velocity suite (asv.conf.json, benchmarks/, mhabench.suite): the grid selection
from the MHABENCH_* variables, the generated classes and their outcomes per point, and real
``asv machine`` / ``asv run`` / ``asv publish`` on the CPU with an existing environment.

asv itself runs in subprocesses with a temporary config, results and html directory, and HOME
(``asv machine`` writes ~/.asv-machine.json): nothing is written into the repository or the home.
"""
from __future__ import annotations

import glob
import io
import itertools
import json
import math
import os
import pickle
import subprocess
import sys
import tokenize
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # the benchmarks package lives at the repository root

from conftest import ASV_ENV_KEYS, _branch, asv, asv_env, asv_run, repo_config  # noqa: E402
from mhabench import catalogue as cat  # noqa: E402
from mhabench.measure.config import SEED_AXES, SMOKE_AXES, ConfigError, named_grid  # noqa: E402
from mhabench.run.spec import (DEVICE_ENV, DTYPE_ENV, GRID_ENV, INSTRUCTIONS_ENV,  # noqa: E402
                               RECORD_ENV, SUITE_ENV, THREADS_ENV)
from mhabench.suite import common  # noqa: E402
from mhabench.track.asv_results import file_values  # noqa: E402

#: heads=3: the fast path refuses an odd head count (failed); /2 measures every other point of
#: the product, so b=61 is in asv's parameters but not measured (n/a).
PLANTED = "smoke;batch=2;seq=8;embed=12;heads=3,4;b=1,61/2"
ODD, EVEN = ("2", "8", "12", "3", "1"), ("2", "8", "12", "4", "1")
UNMEASURED = [("2", "8", "12", "3", "61"), ("2", "8", "12", "4", "61")]


def _axes_lists(axes):
    return [list(axes.batch_sizes), list(axes.seq_lens), list(axes.embed_dims),
            list(axes.num_heads), list(axes.beta_bs)]


def _names(device: str = "cpu", suite: str = "full", extras: bool | None = None) -> set[str]:
    """The benchmark names the catalogue says ``device``/``suite`` records."""
    extras = (suite == "full") if extras is None else extras
    return {f.asv for f in cat.FIGURES if f.asv and (
        f.exists(device, suite, extras) or (f.family == "instructions" and suite == "host"))}


def _suite(env: dict | None = None) -> dict:
    """``{"module.Class.track_x": (class, method name)}`` as the entry modules would build it."""
    sel = common.selection(env or {})
    base = common.make_base(sel)
    out = {}
    for module in cat.ASV_MODULES:
        for cname, cls in common.classes(module, sel, base).items():
            for n in dir(cls):
                if n.startswith("track_"):
                    out[f"{module}.{cname}.{n}"] = (cls, n)
    return out


# --- grid selection (no asv, no torch) -----------------------------------------------------------
def test_default_selection_is_the_smoke_grid_on_the_cpu_in_fp32():
    sel = common.selection({})
    assert (sel.device, sel.dtype, sel.suite) == ("cpu", "float32", "full")
    assert sel.params == _axes_lists(SMOKE_AXES)
    assert list(sel.points) == named_grid("smoke", "float32", "cpu")
    assert sel.setup_timeout >= common.MIN_SETUP_TIMEOUT


def test_cuda_defaults_to_fp16_and_seed_grid_to_the_seed_axes():
    sel = common.selection({DEVICE_ENV: "cuda", GRID_ENV: "seed"})
    assert (sel.device, sel.dtype) == ("cuda", "float16")
    assert sel.params == _axes_lists(SEED_AXES)
    assert len(sel.points) == 1280
    # the sweep's timeout grows with what it measures
    assert sel.setup_timeout > common.selection({DEVICE_ENV: "cuda", GRID_ENV: "quick"}).setup_timeout
    assert common.selection({DEVICE_ENV: "cuda"}).points == sel.points  # the default
    host = common.selection({DEVICE_ENV: "cuda", GRID_ENV: "seed", SUITE_ENV: "host"})
    assert host.setup_timeout > sel.setup_timeout


def test_quick_grid_keeps_the_seed_axes_and_measures_32_of_them():
    sel = common.selection({GRID_ENV: "quick", DTYPE_ENV: "bf16"})
    assert sel.params == _axes_lists(SEED_AXES) and sel.dtype == "bfloat16"
    assert len(sel.points) == 32
    product = {sel.label(*combo) for combo in itertools.product(*sel.params)}
    assert {p.label for p in sel.points} <= product


def test_label_is_the_points_label():
    for grid in ("smoke", "seed/7", PLANTED):
        sel = common.selection({GRID_ENV: grid})
        for p in sel.points:
            assert sel.label(p.batch_size, p.seq_len, p.embed_dim, p.num_heads, p.beta_b) == p.label


def test_a_custom_grid_fills_missing_axes_from_its_base():
    sel = common.selection({GRID_ENV: PLANTED})
    assert sel.params == [[2], [8], [12], [3, 4], [1, 61]]
    assert [(p.num_heads, p.beta_b) for p in sel.points] == [(3, 1), (4, 1)]  # every other one
    sel = common.selection({GRID_ENV: "custom:heads=2, 4 ;embed_dim=32"})  # the older spelling
    assert sel.params == [list(SMOKE_AXES.batch_sizes), list(SMOKE_AXES.seq_lens), [32], [2, 4],
                          list(SMOKE_AXES.beta_bs)]
    assert common.selection({GRID_ENV: "smoke;heads=2,4;embed=32"}).params == sel.params


def test_a_custom_grid_leaves_out_shapes_mha_cannot_build():
    sel = common.selection({GRID_ENV: "smoke;embed=12;heads=4,5"})
    assert sel.params[3] == [4, 5]
    assert {p.num_heads for p in sel.points} == {4}


@pytest.mark.parametrize("env, name", [
    ({GRID_ENV: "huge"}, GRID_ENV),
    ({GRID_ENV: "smoke;heads=0"}, GRID_ENV),
    ({GRID_ENV: "smoke;width=3"}, GRID_ENV),
    ({GRID_ENV: "smoke;heads"}, GRID_ENV),
    ({GRID_ENV: "smoke;heads=2;heads=4"}, GRID_ENV),
    ({GRID_ENV: "smoke;embed=12;heads=5"}, GRID_ENV),
    ({GRID_ENV: "smoke/0"}, GRID_ENV),
    ({GRID_ENV: "quick;batch=2"}, GRID_ENV),
    ({DEVICE_ENV: "tpu"}, DEVICE_ENV),
    ({DTYPE_ENV: "int8"}, DTYPE_ENV),
    ({SUITE_ENV: "tiny"}, SUITE_ENV),
    ({THREADS_ENV: "0"}, THREADS_ENV),
    ({THREADS_ENV: "many"}, THREADS_ENV),
    ({INSTRUCTIONS_ENV: "maybe"}, INSTRUCTIONS_ENV),
], ids=lambda v: str(v))
def test_bad_settings_raise_one_line_naming_the_variable(env, name):
    with pytest.raises(ConfigError) as ei:
        common.selection(env)
    assert name in str(ei.value) and "\n" not in str(ei.value)


def test_a_record_dir_that_is_a_file_is_refused(tmp_path):
    (tmp_path / "f").write_text("")
    with pytest.raises(ConfigError, match=RECORD_ENV):
        common.selection({RECORD_ENV: str(tmp_path / "f")})


def test_suites_choose_extras_and_instructions():
    assert common.selection({}).spec.run.extras
    sel = common.selection({SUITE_ENV: " Core "})
    assert (sel.suite, sel.spec.run.extras, sel.spec.run.instructions) == ("core", False, False)
    sel = common.selection({SUITE_ENV: "host"})
    assert sel.spec.run.instructions and not sel.spec.run.extras
    assert common.selection({INSTRUCTIONS_ENV: "1"}).spec.run.instructions


def test_core_is_full_without_the_extras_and_host_is_the_exact_host_figures():
    for device in ("cpu", "cuda"):
        full, core = _names(device, "full"), _names(device, "core")
        extras = {f.asv for f in cat.FIGURES if f.asv and f.extra}
        assert core == full - extras and core < full
        assert {n.split(".")[1] for n in full - core} >= {"Efficiency"}
        assert "correctness.MaxAbsError.track_fast_vs_fp32" in full - core
        assert {n.split(".")[1] for n in _names(device, "host")} == {"HostWork", "Instructions"}
    assert not {n for n in _names("cpu", "full") if n.split(".")[1] in ("DeviceTime", "GpuMemory",
                                                                        "SdpaBackend")}


def test_the_generated_classes_are_what_the_catalogue_names():
    for env, device, suite in (({}, "cpu", "full"), ({SUITE_ENV: "core"}, "cpu", "core"),
                               ({SUITE_ENV: "host"}, "cpu", "host"),
                               ({DEVICE_ENV: "cuda"}, "cuda", "full")):
        assert set(_suite(env)) == _names(device, suite), env


def test_record_and_journal_paths():
    sel = common.selection({RECORD_ENV: "/r"})
    assert common.record_path(sel, {"ASV_COMMIT": "abc", "ASV_ENV_NAME": "e"}) == "/r/abc-e.json"
    assert common.record_path(sel, {"ASV_ENV_NAME": "e"}) == "/r/existing-e.json"
    assert common.record_path(common.selection({}), {}) is None
    a = common.journal_path(sel, {"ASV_COMMIT": "abc"})
    assert a == common.journal_path(sel, {"ASV_COMMIT": "abc"})  # a rerun finds it
    assert a != common.journal_path(sel, {"ASV_COMMIT": "abd"})
    assert a != common.journal_path(common.selection({RECORD_ENV: "/r", SUITE_ENV: "core"}),
                                    {"ASV_COMMIT": "abc"})


# --- the benchmark classes, without asv ----------------------------------------------------------
IMPORT_CHECK = ("import json, sys; import benchmarks.speedup, benchmarks.time_per_call, "
                "benchmarks.efficiency, benchmarks.memory, benchmarks.host, "
                "benchmarks.correctness as m; "
                "print(json.dumps({'torch': 'torch' in sys.modules, "
                "'params': m.MaxAbsError.params}))")


@pytest.mark.parametrize("env", [{}, {GRID_ENV: "seed", DTYPE_ENV: "bf16"}, {SUITE_ENV: "host"}])
def test_importing_the_suite_imports_no_torch(env):
    """asv forks every worker from a process that imported the suite: no CUDA (not even torch)."""
    full = {k: v for k, v in os.environ.items() if k not in ASV_ENV_KEYS}
    full.update(env)
    out = subprocess.run([sys.executable, "-c", IMPORT_CHECK], cwd=REPO, env=full,
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    got = json.loads(out.stdout)
    assert got["torch"] is False
    assert len(got["params"]) == 5


def test_track_methods_have_units_versions_and_lower_is_better_orientation():
    found = _suite()
    assert set(found) == _names("cpu", "full")
    for name, (cls, n) in found.items():
        f = getattr(cls, n)
        assert isinstance(f.unit, str) and f.unit
        assert isinstance(f.version, str) and f.version
        assert "speedup" not in n  # speedups are tracked as fast/slow: drops show as increases
        assert cls.__module__ == f"benchmarks.{name.split('.')[0]}"


def test_every_class_shares_one_setup_cache():
    """asv keys setup_cache by its definition site: one definition, one sweep per run."""
    classes = {cls for cls, _ in _suite().values()}
    assert len(classes) >= 5
    assert len({cls.setup_cache for cls in classes}) == 1
    assert next(iter(classes)).setup_cache.timeout >= 60


def test_worker_source_stays_short():
    """asv_runner reads and tokenizes each benchmark's track, setup and setup_cache source in
    every (method x point) worker: keep it small."""
    from asv_runner.benchmarks._base import get_source_code
    for name, (cls, n) in _suite().items():
        code = get_source_code([getattr(cls, n), cls.setup, cls.setup_cache])
        tokens = list(tokenize.generate_tokens(io.StringIO(code).readline))
        assert len(tokens) <= 100, (name, len(tokens))


def test_every_track_method_reads_a_metric_the_library_produces():
    """Renaming a key of Result.metrics() must not silently turn a figure into n/a."""
    from mhabench.measure.config import Point
    from mhabench.measure.results import Result
    keys = Result(Point(2, 8, 32, 4, 1, dtype="fp32", device="cpu")).metrics().keys()
    suite = {**_suite(), **_suite({DEVICE_ENV: "cuda"}), **_suite({SUITE_ENV: "host"})}
    for name, (cls, n) in suite.items():
        assert getattr(cls, n).metric in keys, name
        bench = cls()
        bench.metrics = {k: 2.0 for k in keys}
        value = getattr(bench, n)(None)
        assert isinstance(value, float) and math.isfinite(value), name
    bench = suite["speedup.FastOverSlow.track_wall"][0]()
    bench.metrics = {"speedup": 4.0}
    assert bench.track_wall(None) == 0.25  # 1 / speedup


def _cache(tmp_path, status="ok", unavailable=""):
    p = common.selection({}).points[0]
    entry = {"status": status, "message": "why", "metrics": {"wall_fast_us": 3.0}}
    out = {"points": {p.label: entry}, "unavailable": unavailable, "meta": {}}
    return p, common.write_points(out, str(tmp_path / f"{status}-{bool(unavailable)}"))


def test_setup_outcomes(tmp_path):
    suite = _suite()
    WallTime = suite["time_per_call.WallTime.track_fast"][0]
    MaxAbsError = suite["correctness.MaxAbsError.track_fast_vs_fp32"][0]
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
    with pytest.raises(RuntimeError, match="no CUDA"):  # no device: every benchmark fails
        bench.setup(_cache(tmp_path, unavailable="no CUDA")[1], *args)
    for status in ("no_fastpath", "mismatch", "error"):
        with pytest.raises(RuntimeError, match=status):
            bench.setup(_cache(tmp_path, status)[1], *args)  # -> failed, never a number


def test_a_results_dir_of_another_grid_is_refused_at_discovery(tmp_path):
    """asv would replace the recorded parameters: its report would draw only the new grid."""
    (tmp_path / "benchmarks").mkdir()
    (tmp_path / "asv.conf.json").write_text('// a comment\n{"benchmark_dir": "benchmarks", '
                                            '"results_dir": "res"}\n')
    sel = common.selection({})
    common.check_results_dir(sel, tmp_path / "benchmarks")  # no results yet
    (tmp_path / "res").mkdir()
    info = {"param_names": common.PARAM_NAMES, "params": [[repr(v) for v in axis]
                                                          for axis in sel.params]}
    (tmp_path / "res" / "benchmarks.json").write_text(json.dumps({"speedup.X.track_y": info}))
    common.check_results_dir(sel, tmp_path / "benchmarks")  # the same grid
    with pytest.raises(ConfigError, match="another grid"):
        common.check_results_dir(common.selection({GRID_ENV: "smoke;batch=8"}),
                                 tmp_path / "benchmarks")


@pytest.mark.slow
def test_a_core_sweep_runs_no_extras():
    p = common.selection({}).points[0]
    base = {GRID_ENV: f"smoke;batch={p.batch_size};seq={p.seq_len};embed={p.embed_dim};"
                      f"heads={p.num_heads};b={p.beta_b}"}
    full = common.run_sweep(common.selection(base))
    core = common.run_sweep(common.selection({**base, SUITE_ENV: "core"}))
    (f,), (c,) = full["points"].values(), core["points"].values()
    assert f["status"] == c["status"] == "ok"
    assert math.isfinite(f["metrics"]["max_abs_err_fp32"])
    assert math.isnan(c["metrics"]["max_abs_err_fp32"])
    assert math.isfinite(c["metrics"]["wall_fast_us"]) and c["metrics"]["max_abs_err"] >= 0
    assert (full["meta"]["suite"], core["meta"]["suite"]) == ("full", "core")
    assert "extra_fp32" in full["meta"]["cost_s"] and "extra_fp32" not in core["meta"]["cost_s"]


# --- discovery -----------------------------------------------------------------------------------
DISCOVER = ("import sys; from asv_runner._aux import update_sys_path; "
            "from asv_runner.discovery import disc_benchmarks; update_sys_path(sys.argv[1]); "
            "print(len(list(disc_benchmarks(sys.argv[1]))))")


@pytest.mark.parametrize("env, needle", [({GRID_ENV: "bogus"}, "'bogus'"),
                                         ({SUITE_ENV: "tiny", GRID_ENV: "smoke"}, SUITE_ENV)])
def test_a_bad_variable_ends_discovery_with_one_line_and_exit_2(env, needle):
    full = {k: v for k, v in os.environ.items() if k not in ASV_ENV_KEYS}
    full.update(env)
    proc = subprocess.run([sys.executable, "-c", DISCOVER, str(REPO / "benchmarks")], env=full,
                          cwd=REPO, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    (line,) = proc.stderr.strip().splitlines()
    assert line.startswith("mhabench: error:") and needle in line, line
    assert proc.stdout == ""


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


@pytest.mark.slow
def test_asv_check_passes(tmp_path):
    proc = asv(["check", "--config", str(REPO / "asv.conf.json"), "-E",
                f"existing:{sys.executable}"], cwd=REPO, env=asv_env(tmp_path))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "No problems found" in proc.stdout


def _result_file(d: Path, machine: str, commit: str) -> Path:
    files = glob.glob(str(d / "results" / machine / f"{commit[:8]}-*.json"))
    assert len(files) == 1, files
    return Path(files[0])


def _results(d: Path, machine: str, commit: str) -> dict:
    """{benchmark: {param tuple: value}} from asv's result file (null: failed, NaN: n/a)."""
    doc = json.loads(_result_file(d, machine, commit).read_text())
    out = file_values(doc)
    out["__durations__"] = doc.get("durations", {})
    return out


@pytest.mark.slow
def test_asv_run_and_publish_smoke_grid_on_cpu(smoke_report):
    """Every figure the catalogue records on a CPU is a number at every point, nothing that
    cannot exist on a CPU is recorded, and publish draws a graph of each."""
    d, head, proc = smoke_report.dir, smoke_report.commit, smoke_report.run
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    res = _results(d, smoke_report.machine, head)
    combos = sorted(tuple(str(v) for v in c) for c in itertools.product(*_axes_lists(SMOKE_AXES)))
    assert len(combos) == 8
    expected = _names("cpu", "full")
    assert set(res) - {"__durations__"} == expected
    for name in expected:
        f = cat.BY_ASV[name]
        values = res[name]
        assert sorted(values) == combos, name
        for combo, v in values.items():
            if name == "efficiency.Efficiency.track_fast_wall_below_peak":
                assert v is not None and (math.isnan(v) or v >= 1.0), (combo, v)  # never above
                continue
            assert isinstance(v, float) and math.isfinite(v), (name, combo, v)
            may_be_zero = f.role == "noise" or f.module == "correctness"
            assert v > 0 or (may_be_zero and v == 0), (name, combo, v)
            if f.role == "work":  # exact counts: whole numbers
                assert v == int(v), (name, combo, v)
    aten = [res[f"host.HostWork.track_{p}_aten_ops"] for p in cat.PATHS]
    for combo in combos:  # the fast path dispatches more ops; slow and slow_fair the same ones
        assert aten[0][combo] > aten[1][combo] == aten[2][combo], combo
    caches = [k for k in res["__durations__"] if k.startswith("<setup_cache")]
    assert len(caches) == 1, caches  # one sweep shared by every class

    proc = smoke_report.publish
    assert proc.returncode == 0, proc.stdout + proc.stderr
    index = json.loads((d / "html" / "index.json").read_text())
    assert set(index["benchmarks"]) == expected
    assert smoke_report.machine in index["machines"]
    for name in expected:
        graphs = glob.glob(str(d / "html" / "graphs" / f"branch-{_branch()}" /
                               f"machine-{smoke_report.machine}" / "*" / f"{name}.json"))
        assert len(graphs) == 1, name
        series = json.loads(Path(graphs[0]).read_text())
        assert series and all(v is not None for v in series[0][1]), (name, series)


@pytest.mark.slow
def test_asv_run_shows_failed_points_as_failed_and_unmeasured_ones_as_na(tmp_path, head):
    """A custom grid with an odd head count (the fast path refuses it: failed, asv's exit status
    2) measured every other point (the rest: n/a); the sweep's run JSON goes to
    MHABENCH_RECORD_DIR under an existing environment's name."""
    d, records = tmp_path / "planted", tmp_path / "records"
    env = asv_env(tmp_path, **{GRID_ENV: PLANTED, DEVICE_ENV: "cpu", RECORD_ENV: str(records)})
    _, proc = asv_run(d, env, "ci-cpu-planted", head)
    assert proc.returncode == 2, proc.stdout[-4000:] + proc.stderr[-4000:]
    assert "self.num_heads is not even" in proc.stdout + proc.stderr

    res = _results(d, "ci-cpu-planted", head)
    expected = _names("cpu", "full")
    assert set(res) - {"__durations__"} == expected
    for name in expected:
        assert res[name][ODD] is None, name  # failed, never a number
        for combo in UNMEASURED:
            v = res[name][combo]
            assert v is not None and math.isnan(v), (name, combo, v)  # n/a, not failed
    for f in cat.FIGURES:
        if f.asv in expected and f.family == "wall":
            v = res[f.asv][EVEN]
            assert isinstance(v, float) and math.isfinite(v) and v > 0, (f.asv, v)

    assert "existing" in _result_file(d, "ci-cpu-planted", head).name
    # asv 0.6.6 gives the benchmark processes no ASV_* names: an existing environment's record
    # is existing-<env>.json, <env> the suite's fallback (mhabench track renames it)
    want = common.record_path(common.selection({GRID_ENV: PLANTED, RECORD_ENV: str(records)}), {})
    assert Path(want).name.startswith("existing-")
    assert [p.name for p in records.iterdir()] == [Path(want).name]
    doc = json.loads(Path(want).read_text())
    assert [(r["label"], r["status"]) for r in doc["results"]] == [
        ("B2-S8-E12-H3-b1-float32-cpu", "no_fastpath"), ("B2-S8-E12-H4-b1-float32-cpu", "ok")]
    assert doc["meta"]["suite"] == "full" and doc["meta"]["mhabench_grid"] == PLANTED


@pytest.mark.slow
@pytest.mark.parametrize("env, needle", [
    ({GRID_ENV: "bogus"}, f"{GRID_ENV}: unknown grid 'bogus'"),
    pytest.param({DEVICE_ENV: "cuda"}, f"{DEVICE_ENV}=cuda: this host has no NVIDIA GPU",
                 marks=pytest.mark.skipif(common.gpu_present(), reason="this host has a GPU")),
], ids=["bad-grid", "cuda-without-gpu"])
def test_asv_run_is_refused_at_discovery_before_anything_is_recorded(tmp_path, head, env,
                                                                     needle):
    d = tmp_path / "refused"
    _, proc = asv_run(d, asv_env(tmp_path, **env), "ci-refused", head, timeout=300)
    assert proc.returncode != 0
    text = proc.stdout + proc.stderr
    mine = [ln.strip() for ln in text.splitlines() if "mhabench: error:" in ln]
    assert len(mine) == 1 and mine[0].startswith(f"mhabench: error: {needle}"), text[-3000:]
    assert [p.name for p in (d / "results" / "ci-refused").iterdir()] == ["machine.json"]
    assert not (d / "results" / "benchmarks.json").exists()
