"""What each build's environment installs: this project, from its source tree or, for an
installed wheel, from a copy of the installed package that ``track`` writes under its dir.

asv installs the project into every build's virtualenv and reads the suite from a
``benchmark_dir``: both need a folder holding the package and a build file. A source tree has
them; an installed package gets them written (the package copied, a ``pyproject.toml`` from its
own metadata, the suite's entry modules), so ``pip install mhabench`` is enough for ``track``.
"""
from __future__ import annotations

import json
import shutil
from importlib import metadata
from pathlib import Path

from ..suite import write_entry

#: Where, under ``track``'s dir, the copy of an installed package goes.
COPY = "project"


def package_dir() -> Path:
    return Path(__file__).resolve().parents[1]


def source_tree() -> Path | None:
    """The checkout this package runs from, if it runs from one (editable or on PYTHONPATH)."""
    root = package_dir().parent
    ok = (root / "pyproject.toml").is_file() and (root / "benchmarks" / "__init__.py").is_file()
    return root if ok else None


def pyproject_text() -> str:
    """A build file for the copy, from the installed distribution's metadata."""
    dist = metadata.distribution("mhabench")
    deps = [r for r in (dist.requires or []) if "extra ==" not in r]
    scripts = {e.name: e.value for e in dist.entry_points if e.group == "console_scripts"}
    lines = ['[build-system]', 'requires = ["setuptools>=68"]',
             'build-backend = "setuptools.build_meta"', '', '[project]', 'name = "mhabench"',
             f'version = {json.dumps(dist.version)}',
             f'dependencies = {json.dumps(deps)}', '', '[project.scripts]']
    lines += [f"{json.dumps(k)} = {json.dumps(v)}" for k, v in sorted(scripts.items())]
    lines += ['', '[tool.setuptools.packages.find]', 'include = ["mhabench*"]', '']
    return "\n".join(lines)


def project(directory: Path) -> Path:
    """The folder each build's environment installs and asv reads the suite from: the source
    tree, else a fresh copy of the installed package under ``directory``."""
    tree = source_tree()
    if tree is not None:
        return tree
    dest = directory / COPY
    if dest.exists():
        shutil.rmtree(dest)
    shutil.copytree(package_dir(), dest / "mhabench",
                    ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    (dest / "pyproject.toml").write_text(pyproject_text())
    write_entry(dest / "benchmarks")
    return dest
