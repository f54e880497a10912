"""The package layout: stages import only downwards, importing any module has no effect, and the
asv suite keeps its names.

A benchmark's name (``module.Class.method``) and ``version`` key its history in asv's results:
``tests/data/asv_benchmarks.json`` holds what the suite discovered before its classes were
generated from the catalogue, per device and suite selection, and discovery must still give
exactly that (figures added since come on top: ``test_catalogue.NEW``).
"""
from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from mhabench import catalogue as cat
from mhabench.run import spec as run_spec
from mhabench.suite import common

REPO = Path(__file__).resolve().parents[1]
PKG = REPO / "mhabench"
#: Lowest first: a module may import only from its own stage and the ones before it.
#: ``catalogue`` is a module, the others packages; the top-level ``__init__``/``__main__`` are
#: the ``commands`` stage's.
STAGES = ("catalogue", "measure", "figures", "run", "suite", "track", "report", "commands")
NAMES = json.loads((REPO / "tests" / "data" / "asv_benchmarks.json").read_text())
NEW = {f"host.HostWork.track_{p}_bytecodes" for p in cat.PATHS}


def _stage(module: str) -> str:
    parts = module.split(".")
    if len(parts) == 1 or parts[1] in ("__init__", "__main__"):
        return "commands"
    if parts[1] == "catalogue" or (PKG / parts[1]).is_dir():
        return parts[1]
    raise AssertionError(f"{module} belongs to no stage")


def _imports(path: Path) -> set[str]:
    """Every mhabench module ``path`` imports, lazily or not, as a dotted name."""
    rel = path.relative_to(REPO).with_suffix("")
    here = list(rel.parts[:-1] if rel.name != "__init__" else rel.parts)
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                up = here[:len(here) - node.level + 1]
                base = ".".join(up + ([base] if base else []))
            if base.startswith("mhabench"):
                out.add(base)
                out.update(f"{base}.{a.name}" for a in node.names
                           if (PKG.parent / f"{base}.{a.name}".replace(".", "/")).with_suffix(
                               ".py").exists())
        elif isinstance(node, ast.Import):
            out.update(a.name for a in node.names if a.name.startswith("mhabench"))
    return out


def _modules():
    return sorted(p for p in PKG.rglob("*.py") if "__pycache__" not in p.parts)


def test_every_module_lives_in_a_stage():
    top = {p.name for p in PKG.glob("*.py")}
    assert top == {"__init__.py", "__main__.py", "catalogue.py"}
    assert {p.name for p in PKG.iterdir() if p.is_dir() and p.name != "__pycache__"} == \
        set(STAGES) - {"catalogue"}


@pytest.mark.parametrize("path", _modules(), ids=lambda p: str(p.relative_to(PKG)))
def test_imports_point_down_the_stages(path):
    mine = STAGES.index(_stage(".".join(path.relative_to(REPO).with_suffix("").parts)))
    for name in _imports(path):
        if name == "mhabench":
            continue
        assert STAGES.index(_stage(name)) <= mine, f"{path.relative_to(REPO)} imports {name}"


def test_the_catalogue_is_the_bottom_and_imports_nothing_heavy():
    tree = ast.parse((PKG / "catalogue.py").read_text())
    imported = {a.name.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.Import)
                for a in n.names}
    imported |= {n.module.split(".")[0] for n in ast.walk(tree)
                 if isinstance(n, ast.ImportFrom) and n.module and not n.level}
    assert imported <= set(sys.stdlib_module_names) | {"__future__"}, imported
    assert not _imports(PKG / "catalogue.py")


def test_the_commands_package_lists_every_command_module():
    """``mhabench --help`` registers the modules COMMANDS names: none is left out."""
    from mhabench import commands
    files = {p.stem for p in (PKG / "commands").glob("*.py")} - {"__init__"}
    assert files == set(commands.COMMANDS)


# --- importing has no effect ---------------------------------------------------------------------
IMPORT_ALL = r"""
import importlib, json, pkgutil, sys
import mhabench

def fail(name):
    raise RuntimeError(f"cannot import package {name}")

names = [m.name for m in pkgutil.walk_packages(mhabench.__path__, "mhabench.", onerror=fail)
         if not m.name.endswith(".__main__")]  # that one runs the command line
for name in names:
    importlib.import_module(name)
print(json.dumps(names))
"""


def _bad_env(tmp_path) -> dict:
    not_a_folder = tmp_path / "file"
    not_a_folder.write_text("")
    bad = {run_spec.GRID_ENV: "bogus", run_spec.DEVICE_ENV: "tpu", run_spec.DTYPE_ENV: "int8",
           run_spec.SUITE_ENV: "tiny", run_spec.THREADS_ENV: "0",
           run_spec.INSTRUCTIONS_ENV: "maybe", run_spec.RECORD_ENV: str(not_a_folder)}
    assert set(bad) == set(run_spec.ENV_VARS)
    return bad


@pytest.mark.slow
@pytest.mark.parametrize("which", ["grid", "all"])
def test_importing_every_module_with_bad_variables_raises_nothing(tmp_path, which):
    """Only asv's entry modules (benchmarks/) read the MHABENCH_* variables, and they exit 2 on
    a bad one; importing mhabench itself never fails on them."""
    bad = _bad_env(tmp_path)
    if which == "grid":
        bad = {run_spec.GRID_ENV: "bogus"}
    env = {k: v for k, v in os.environ.items() if k not in run_spec.ENV_VARS}
    env.update(bad)
    proc = subprocess.run([sys.executable, "-c", IMPORT_ALL], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    names = json.loads(proc.stdout.splitlines()[-1])
    files = [p for p in _modules() if p.name not in ("__init__.py", "__main__.py")]
    assert len([n for n in names if not n.endswith("__init__")]) >= len(files)
    assert {"mhabench.catalogue", "mhabench.suite.common", "mhabench.commands.run",
            "mhabench.run.worker"} <= set(names)


def test_a_bad_variable_gives_an_empty_lenient_selection():
    sel = common.lenient_selection({run_spec.GRID_ENV: "bogus"})
    assert sel.points == () and "bogus" in sel.error


# --- asv's view of the suite ---------------------------------------------------------------------
def test_entry_modules_are_the_suites_entry_text():
    from mhabench.suite import entry_text
    files = {p.stem for p in (REPO / "benchmarks").glob("*.py")} - {"__init__"}
    assert files == set(cat.ASV_MODULES)
    for module in cat.ASV_MODULES:
        assert (REPO / "benchmarks" / f"{module}.py").read_text() == entry_text(module)


DISCOVER = (
    "import json, sys, mhabench; from asv_runner._aux import update_sys_path; "
    "from asv_runner.discovery import disc_benchmarks; update_sys_path(sys.argv[1]); "
    "print(json.dumps({'mhabench': mhabench.__file__, 'benchmarks': sorted("
    "[b.name, b.version, b.unit, list(b.param_names)] for b in disc_benchmarks(sys.argv[1]))}))")


def _discover(benchmark_dir: Path, env_extra: dict, path_first: Path | None = None):
    """asv's discovery of ``benchmark_dir`` in a fresh interpreter, as asv's ``discover`` runs
    it (the benchmark dir importable by its name)."""
    env = {k: v for k, v in os.environ.items() if k not in run_spec.ENV_VARS}
    env.update(env_extra)
    if path_first is not None:
        env["PYTHONPATH"] = os.pathsep.join([str(path_first), env.get("PYTHONPATH", "")])
    return subprocess.run([sys.executable, "-c", DISCOVER, str(benchmark_dir)], env=env,
                          cwd=benchmark_dir.parent, capture_output=True, text=True, timeout=120)


def _discovered(benchmark_dir: Path, device: str, suite: str, path_first=None) -> dict:
    proc = _discover(benchmark_dir, {run_spec.DEVICE_ENV: device, run_spec.SUITE_ENV: suite,
                                     run_spec.GRID_ENV: "smoke"}, path_first)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout)


def _check_against_recorded(got: list, key: str) -> None:
    recorded = NAMES[key]
    missing = [r for r in recorded if r not in got]
    assert not missing, f"renamed, re-versioned or dropped: {missing}"
    assert {g[0] for g in got if g not in recorded} <= NEW


@pytest.mark.parametrize("key", sorted(k for k in NAMES if k.startswith("cpu/")))
def test_asv_discovers_the_recorded_cpu_benchmarks(key):
    device, suite = key.split("/")
    _check_against_recorded(_discovered(REPO / "benchmarks", device, suite)["benchmarks"], key)


@pytest.mark.parametrize("key", sorted(k for k in NAMES if k.startswith("cuda/")))
def test_the_cuda_suites_classes_keep_the_recorded_names(key):
    """Discovery refuses CUDA on this host (below); the classes it would list are built here."""
    device, suite = key.split("/")
    sel = common.selection({run_spec.DEVICE_ENV: device, run_spec.SUITE_ENV: suite,
                            run_spec.GRID_ENV: "seed"})
    assert sel.device == "cuda" and sel.dtype == "float16"
    base = common.make_base(sel)
    got = []
    for module in cat.ASV_MODULES:
        for name, cls in common.classes(module, sel, base).items():
            assert cls.__module__ == f"benchmarks.{module}"
            got += [[f"{module}.{name}.{m}", getattr(cls, m).version, getattr(cls, m).unit,
                     list(cls.param_names)] for m in dir(cls) if m.startswith("track_")]
    _check_against_recorded(sorted(got), key)


@pytest.mark.skipif(common.gpu_present(), reason="this host has an NVIDIA GPU")
def test_discovery_refuses_cuda_on_a_host_without_a_gpu():
    proc = _discover(REPO / "benchmarks", {run_spec.DEVICE_ENV: "cuda"})
    assert proc.returncode == 2, proc.stdout + proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("mhabench: error:"), proc.stderr
    assert "MHABENCH_DEVICE=cuda" in lines[0] and "GPU" in lines[0]
    assert proc.stdout == ""


def test_an_installed_package_writes_entry_modules_that_discover_the_same_suite(tmp_path,
                                                                               monkeypatch):
    """Run from a wheel, track installs a copy of the package and reads its entry modules."""
    from mhabench.track import project as pr
    monkeypatch.setattr(pr, "source_tree", lambda: None)
    dest = pr.project(tmp_path)
    assert dest == tmp_path / pr.COPY
    assert (dest / "mhabench" / "suite" / "common.py").is_file()
    assert "[project]" in (dest / "pyproject.toml").read_text()
    from mhabench.suite import entry_text
    for module in cat.ASV_MODULES:
        assert (dest / "benchmarks" / f"{module}.py").read_text() == entry_text(module)
    got = _discovered(dest / "benchmarks", "cpu", "full", path_first=dest)
    assert Path(got["mhabench"]).is_relative_to(dest), got["mhabench"]  # the copy was imported
    assert got["benchmarks"] == _discovered(REPO / "benchmarks", "cpu", "full")["benchmarks"]
    assert pr.project(tmp_path) == dest  # rewritten, same place
