"""The package layout: stages import only downwards, and the asv suite keeps its names.

A benchmark's name (``module.Class.method``) and ``version`` key its history in asv's results:
``tests/data/asv_benchmarks.json`` holds what the suite discovered before it moved into the
package, per device and suite selection, and discovery must still give exactly that.
"""
from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PKG = REPO / "mhabench"
#: Lowest first: a module may import only from its own stage and the ones before it.
STAGES = ("measure", "figures", "run", "suite", "track", "report", "")  # "": the CLI
NAMES = json.loads((REPO / "tests" / "data" / "asv_benchmarks.json").read_text())


def _stage(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and (PKG / parts[1]).is_dir() else ""


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


def test_every_module_lives_in_a_stage_but_the_cli():
    top = {p.name for p in PKG.glob("*.py")}
    assert top == {"__init__.py", "__main__.py", "cli.py", "analysis_cli.py"}
    assert {p.name for p in PKG.iterdir() if p.is_dir() and p.name != "__pycache__"} == \
        set(STAGES) - {""}


@pytest.mark.parametrize("path", _modules(), ids=lambda p: str(p.relative_to(PKG)))
def test_imports_point_down_the_stages(path):
    mine = STAGES.index(_stage(".".join(path.relative_to(REPO).with_suffix("").parts)))
    for name in _imports(path):
        if name == "mhabench":
            continue
        assert STAGES.index(_stage(name)) <= mine, f"{path.relative_to(REPO)} imports {name}"


def test_entry_modules_are_the_suites_re_exports():
    from mhabench.suite import ENTRY, entry_text
    files = {p.stem for p in (REPO / "benchmarks").glob("*.py")} - {"__init__"}
    assert files == set(ENTRY)
    for module in ENTRY:
        assert (REPO / "benchmarks" / f"{module}.py").read_text() == entry_text(module)


def _discovered(benchmark_dir: Path, device: str, suite: str) -> list:
    code = ("import sys, json; from asv_runner.discovery import disc_benchmarks; "
            "print(json.dumps(sorted([b.name, b.version, b.unit, list(b.param_names)] "
            "for b in disc_benchmarks(sys.argv[1]))))")
    env = dict(os.environ, MHABENCH_DEVICE=device, MHABENCH_SUITE=suite, MHABENCH_GRID="smoke",
               PYTHONPATH=os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]))
    out = subprocess.run([sys.executable, "-c", code, str(benchmark_dir)], env=env, cwd=REPO,
                         capture_output=True, text=True, check=True)
    return json.loads(out.stdout)


@pytest.mark.parametrize("key", sorted(NAMES))
def test_benchmark_names_versions_and_units_are_those_recorded_before(key):
    device, suite = key.split("/")
    assert _discovered(REPO / "benchmarks", device, suite) == NAMES[key]


def test_an_installed_package_writes_the_same_suite(tmp_path, monkeypatch):
    """Run from a wheel, track installs a copy of the package and reads its entry modules."""
    from mhabench.track import project as pr
    monkeypatch.setattr(pr, "source_tree", lambda: None)
    dest = pr.project(tmp_path)
    assert (dest / "mhabench" / "suite" / "common.py").is_file()
    assert "[project]" in (dest / "pyproject.toml").read_text()
    assert _discovered(dest / "benchmarks", "cuda", "full") == NAMES["cuda/full"]
    assert pr.source_tree() is None and pr.project(tmp_path) == dest  # rewritten, same place
