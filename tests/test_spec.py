"""mhabench.run.spec: one frozen RunSpec, validated on construction; its defaults filled in per
device; the asv suite's MHABENCH_* variables parsed by the same rules as ``mhabench run``'s
flags, each error naming the variable (no torch is needed for any of it)."""
from __future__ import annotations

import dataclasses
import math
import os
import stat
import subprocess
import sys

import pytest

from mhabench.measure.config import SEED, SMOKE_AXES, ConfigError, named_grid
from mhabench.measure.protocol import PRESETS
from mhabench.run import spec as sp
from mhabench.run.spec import (MAX_THREADS, POINT_TIMEOUT, RunSpec, SuiteSpec, env_of,
                               parse_threads, suite_of_env)

SMOKE = named_grid("smoke", "fp32", "cpu")


def _one_line(exc) -> str:
    msg = str(exc.value)
    assert "\n" not in msg and msg, msg
    return msg


# --- RunSpec ---------------------------------------------------------------------------------

def test_defaults_leave_device_dtype_and_threads_to_resolve():
    s = RunSpec()
    assert (s.grid, s.points, s.device, s.dtype, s.preset) == ("", (), "", "", "default")
    assert s.threads is None and s.extras and not s.instructions
    assert s.point_timeout == POINT_TIMEOUT and s.python == ""
    assert s.protocol == PRESETS["default"]
    assert RunSpec(preset="check").protocol == PRESETS["check"]


def test_a_spec_is_frozen_and_canonical():
    s = RunSpec(device="CUDA:1", dtype="half", points=["a", "b"], threads="3")
    assert (s.device, s.dtype, s.points, s.threads) == ("cuda:1", "float16", ("a", "b"), 3)
    with pytest.raises(dataclasses.FrozenInstanceError):
        s.device = "cpu"  # type: ignore[misc]


@pytest.mark.parametrize("kwargs, needle", [
    ({"device": "tpu"}, "unknown device 'tpu'"), ({"dtype": "fp8"}, "unknown dtype 'fp8'"),
    ({"preset": "thorough"}, "unknown preset 'thorough'"),
    ({"threads": 0}, "--threads must be from 1 to 1024, got 0"),
    ({"threads": MAX_THREADS + 1}, f"got {MAX_THREADS + 1}"),
    ({"threads": "x"}, "--threads: 'x' is not an integer"),
    ({"threads": "2.5"}, "'2.5' is not an integer"),
    ({"point_timeout": 0}, "--point-timeout"), ({"point_timeout": -1.0}, "--point-timeout"),
    ({"point_timeout": math.nan}, "--point-timeout"), ({"point_timeout": math.inf}, "finite"),
    ({"point_timeout": True}, "--point-timeout"), ({"point_timeout": "5"}, "--point-timeout"),
    ({"python": "/no/such/python"}, "/no/such/python: no such interpreter"),
])
def test_a_bad_spec_is_one_config_error_naming_it(kwargs, needle):
    with pytest.raises(ConfigError) as ei:
        RunSpec(**kwargs)
    assert needle in _one_line(ei)


def test_the_interpreter_must_be_an_executable_file(tmp_path):
    plain = tmp_path / "python"
    plain.write_text("#!/bin/sh\n")
    with pytest.raises(ConfigError, match="no such interpreter"):
        RunSpec(python=str(plain))
    with pytest.raises(ConfigError, match="no such interpreter"):
        RunSpec(python=str(tmp_path))
    plain.chmod(plain.stat().st_mode | stat.S_IXUSR)
    assert RunSpec(python=str(plain)).python == str(plain)


@pytest.mark.parametrize("text, want", [(None, None), ("", None), ("  ", None), ("1", 1),
                                        (" 8 ", 8), (1024, 1024), ("1024", 1024)])
def test_threads_from_1_to_1024(text, want):
    assert parse_threads(text) == want


@pytest.mark.parametrize("text", ["0", "-3", "1025", 10**6, "x", "1e3", "2.0"])
def test_threads_out_of_bounds_or_not_integers_are_refused(text):
    with pytest.raises(ConfigError) as ei:
        parse_threads(text, "MHABENCH_THREADS")
    assert _one_line(ei).startswith("MHABENCH_THREADS")


# --- resolve: the defaults per device ----------------------------------------------------------

def test_a_cpu_run_is_fp32_on_the_smoke_grid_with_one_thread():
    r = RunSpec().resolve(cuda_available=False)
    assert (r.spec.device, r.spec.dtype, r.spec.threads) == ("cpu", "float32", 1)
    assert r.grid.name == "smoke" and list(r.points) == SMOKE


def test_a_cuda_run_is_fp16_on_the_seed_grid_with_torchs_threads():
    r = RunSpec().resolve(cuda_available=True)
    assert (r.spec.device, r.spec.dtype, r.spec.threads) == ("cuda", "float16", None)
    assert r.grid.name == "seed" and len(r.points) == 1280
    assert {(p.device, p.dtype) for p in r.points} == {("cuda", "float16")}


def test_what_was_asked_wins_over_the_defaults():
    r = RunSpec(device="cpu", dtype="bf16", threads=2, grid="quick").resolve(True)
    assert (r.spec.device, r.spec.dtype, r.spec.threads) == ("cpu", "bfloat16", 2)
    assert r.grid.name == "quick" and {p.dtype for p in r.points} == {"bfloat16"}
    r = RunSpec(device="cuda:1", grid="smoke").resolve(False)  # no check of the device here
    assert r.spec.device == "cuda:1" and {p.device for p in r.points} == {"cuda:1"}


def test_resolve_parses_the_grid_with_its_seed_and_block():
    r = RunSpec(grid="smoke;batch=2;seed=3;block=4/2").resolve(False)
    assert r.grid.name == "custom" and len(r.points) == 2
    assert {(p.batch_size, p.seed, p.block_size) for p in r.points} == {(2, 3, 4)}
    with pytest.raises(ConfigError, match="^--grid"):
        RunSpec(grid="smoke;batch=x").resolve(False)


def test_points_by_label_are_the_points_measured():
    labels = (SMOKE[5].label, SMOKE[0].label)
    r = RunSpec(points=labels).resolve(False)
    assert r.grid.name == "points" and list(r.points) == [SMOKE[5], SMOKE[0]]
    assert r.grid.axes == SMOKE_AXES, "the axes asv's parameters come from: the device's grid"
    assert {p.seed for p in r.points} == {SEED}


@pytest.mark.parametrize("labels, device, needle", [
    (("B2-S8-E32-H4-b1-float16-cuda",), "", "give labels of float32 on cpu"),
    (("B2-S8-E32-H4-b1-float32-cpu",), "cuda", "give labels of float16 on cuda"),
    (("B2-S8-E32-H5-b1-float32-cpu",), "", "not divisible"),
    (("nonsense",), "", "'nonsense' is not a point label"),
])
def test_labels_of_another_run_are_refused_naming_the_flag(labels, device, needle):
    with pytest.raises(ConfigError) as ei:
        RunSpec(points=labels, device=device).resolve(False)
    assert needle in _one_line(ei)


def test_the_matmul_peak_is_for_runs_with_extras_that_are_not_a_check():
    assert RunSpec().resolve(False).peak
    assert not RunSpec(extras=False).resolve(False).peak
    assert not RunSpec(preset="check").resolve(False).peak


def test_nothing_here_imports_torch():
    code = ("import sys; from mhabench.run import spec; "
            "spec.suite_of_env({'MHABENCH_GRID': 'seed/8', 'MHABENCH_DEVICE': 'cuda'}); "
            "spec.RunSpec(grid='quick').resolve(True); "
            "sys.exit(1 if 'torch' in sys.modules else 0)")
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    assert subprocess.run([sys.executable, "-c", code], cwd=root).returncode == 0


# --- the asv suite's variables ------------------------------------------------------------------

def test_no_variables_is_the_full_suite_on_the_cpu():
    s = suite_of_env({})
    assert s == SuiteSpec(RunSpec(device="cpu"), "full", "")
    assert s.run.extras and not s.run.instructions
    assert s.run.resolve(False).grid.name == "smoke"


def test_the_suite_decides_extras_and_instructions():
    assert suite_of_env({sp.SUITE_ENV: "core"}).run.extras is False
    host = suite_of_env({sp.SUITE_ENV: " HOST "})
    assert host.suite == "host" and host.run.instructions and not host.run.extras
    assert suite_of_env({sp.INSTRUCTIONS_ENV: "yes"}).run.instructions
    assert not suite_of_env({sp.INSTRUCTIONS_ENV: "0"}).run.instructions


def test_the_variables_are_read_as_the_flags_are(tmp_path):
    s = suite_of_env({sp.GRID_ENV: " seed;batch=16;seed=1/8 ", sp.DEVICE_ENV: "CUDA:0",
                      sp.DTYPE_ENV: "bf16", sp.THREADS_ENV: "4", sp.RECORD_ENV: str(tmp_path)})
    assert s.run == RunSpec(grid="seed;batch=16;seed=1/8", device="cuda:0", dtype="bf16",
                            threads=4)
    assert s.record_dir == str(tmp_path)
    points = s.run.resolve(True).points
    assert len(points) == 16 * 4 * 2 * 2 // 8 and {p.seed for p in points} == {1}


@pytest.mark.parametrize("env, var, flag", [
    ({sp.GRID_ENV: "smoke;batch=x"}, sp.GRID_ENV, {"grid": "smoke;batch=x"}),
    ({sp.GRID_ENV: "huge"}, sp.GRID_ENV, {"grid": "huge"}),
    ({sp.GRID_ENV: "smoke;block=9"}, sp.GRID_ENV, {"grid": "smoke;block=9"}),
    ({sp.DEVICE_ENV: "tpu"}, sp.DEVICE_ENV, {"device": "tpu"}),
    ({sp.DTYPE_ENV: "fp8"}, sp.DTYPE_ENV, {"dtype": "fp8"}),
    ({sp.DTYPE_ENV: "device"}, sp.DTYPE_ENV, {"dtype": "device"}),  # named by variable, not word
    ({sp.THREADS_ENV: "0"}, sp.THREADS_ENV, {"threads": "0"}),
    ({sp.THREADS_ENV: "1025"}, sp.THREADS_ENV, {"threads": "1025"}),
    ({sp.THREADS_ENV: "many"}, sp.THREADS_ENV, {"threads": "many"}),
])
def test_a_bad_variable_is_one_line_naming_it_with_the_flags_reason(env, var, flag):
    with pytest.raises(ConfigError) as ei:
        suite_of_env(env)
    msg = _one_line(ei)
    assert msg.startswith(var), msg
    with pytest.raises(ConfigError) as fi:
        RunSpec(**flag).resolve(False)
    reason = str(fi.value)
    for name in ("--grid: ", "--grid ", "--threads: ", "--threads "):
        reason = reason.removeprefix(name)
    assert msg.endswith(reason), (msg, reason)


@pytest.mark.parametrize("env, var", [({sp.SUITE_ENV: "all"}, sp.SUITE_ENV),
                                      ({sp.INSTRUCTIONS_ENV: "maybe"}, sp.INSTRUCTIONS_ENV)])
def test_a_bad_suite_or_switch_names_its_variable(env, var):
    with pytest.raises(ConfigError) as ei:
        suite_of_env(env)
    assert _one_line(ei).startswith(var)


def test_a_record_dir_that_is_a_file_is_refused(tmp_path):
    f = tmp_path / "f"
    f.write_text("x")
    with pytest.raises(ConfigError) as ei:
        suite_of_env({sp.RECORD_ENV: str(f)})
    assert _one_line(ei).startswith(sp.RECORD_ENV)
    assert suite_of_env({sp.RECORD_ENV: str(tmp_path / "new")}).record_dir == str(tmp_path / "new")


def test_the_grid_is_parsed_for_the_devices_dtype():
    """fp16 labels on CUDA unless told: the variable's grid must parse where it will run."""
    s = suite_of_env({sp.DEVICE_ENV: "cuda", sp.GRID_ENV: "quick"})
    assert s.run.device == "cuda" and s.run.dtype == ""
    assert {p.dtype for p in s.run.resolve(True).points} == {"float16"}


@pytest.mark.parametrize("env", [
    {}, {sp.SUITE_ENV: "core", sp.GRID_ENV: "quick", sp.DEVICE_ENV: "cuda", sp.THREADS_ENV: "2"},
    {sp.SUITE_ENV: "host"}, {sp.INSTRUCTIONS_ENV: "1", sp.DTYPE_ENV: "bf16"},
    {sp.GRID_ENV: "smoke;seed=4/2", sp.RECORD_ENV: "/tmp/records"},
])
def test_env_of_gives_back_the_variables_that_make_the_same_suite(env):
    s = suite_of_env(env)
    back = env_of(s)
    assert set(back) <= set(sp.ENV_VARS) and all(back.values())
    assert suite_of_env(back) == s
