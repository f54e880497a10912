"""Every third-party module the package, the suite and the tests import is declared in
pyproject.toml (the tests' own in the ``test`` extra)."""
from __future__ import annotations

import ast
import re
import sys
import tomllib
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
#: import name -> distribution name, where they differ
DISTRIBUTIONS = {"PIL": "Pillow", "asv_runner": "asv-runner"}
LOCAL = {"mhabench", "benchmarks"}


def _imports(folder: Path) -> set[str]:
    names = set()
    for path in folder.rglob("*.py"):  # the stage packages too
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                names.update(a.name.split(".")[0] for a in node.names)
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names.add(node.module.split(".")[0])
    return names


def _project() -> dict:
    return tomllib.loads((REPO / "pyproject.toml").read_text())["project"]


def _names(specs) -> set[str]:
    return {re.split(r"[\s<>=!~\[;]", s, maxsplit=1)[0].lower() for s in specs}


def _declared(*extras: str) -> set[str]:
    project = _project()
    specs = list(project["dependencies"])
    for name, extra in project["optional-dependencies"].items():
        if not extras or name in extras:
            specs += extra
    return _names(specs)


def _third_party(names: set[str], local: set[str]) -> set[str]:
    return {DISTRIBUTIONS.get(n, n).lower() for n in names
            if n not in sys.stdlib_module_names and n not in local}


def test_every_distribution_the_package_imports_is_declared():
    third_party = _third_party(_imports(REPO / "mhabench") | _imports(REPO / "benchmarks"), LOCAL)
    assert "packaging" in third_party  # the check sees what the code imports
    missing = third_party - _declared("asv", "plot")
    assert not missing, f"imported but not declared in pyproject.toml: {sorted(missing)}"


def test_every_distribution_the_tests_import_is_in_the_test_extra():
    own = LOCAL | {p.stem for folder in ("tests", "bench") for p in (REPO / folder).rglob("*.py")}
    third_party = _third_party(_imports(REPO / "tests"), own)
    assert {"pytest", "scipy", "playwright"} <= third_party
    missing = third_party - _names(_project()["dependencies"]) - _declared("test")
    assert not missing, f"imported by the tests but not in the test extra: {sorted(missing)}"
