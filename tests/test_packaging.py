"""Every third-party module the package and the suite import is declared in pyproject.toml."""
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


def _declared() -> set[str]:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    specs = list(project["dependencies"])
    for extra in project["optional-dependencies"].values():
        specs += extra
    return {re.split(r"[\s<>=!~\[;]", s, maxsplit=1)[0].lower() for s in specs}


def test_every_imported_distribution_is_declared():
    third_party = {n for n in _imports(REPO / "mhabench") | _imports(REPO / "benchmarks")
                   if n not in sys.stdlib_module_names and n not in LOCAL}
    assert "packaging" in third_party  # the check sees what the code imports
    missing = {DISTRIBUTIONS.get(n, n).lower() for n in third_party} - _declared()
    assert not missing, f"imported but not declared in pyproject.toml: {sorted(missing)}"
