"""The asv suite: the benchmark classes asv discovers, shipped inside the package.

In: the ``MHABENCH_*`` selection (:mod:`.common`) and one sweep of the grid per asv run
(:mod:`mhabench.run`). Out: one asv figure per ``track_*`` method. asv reads the suite through
thin entry modules (the repository's ``benchmarks/``, or the copy ``mhabench track`` writes when
run from an installed wheel), so benchmark names stay ``module.Class.method``.
"""
from __future__ import annotations

from pathlib import Path

#: asv's entry modules and the classes each shows; their names are the benchmarks' first parts.
ENTRY = {
    "correctness": ("MaxAbsError",),
    "efficiency": ("Efficiency",),
    "host": ("Instructions", "HostWork"),
    "memory": ("GpuMemory",),
    "speedup": ("FastOverSlow", "Noise", "Rounds"),
    "time_per_call": ("WallTime", "DeviceTime", "HostShare", "SdpaBackend"),
}


def entry_text(module: str) -> str:
    """The source of asv's entry module ``module``: a re-export of its classes, nothing else."""
    return (f'"""asv\'s entry point for :mod:`mhabench.suite.{module}` (names: '
            f'{module}.CLASS.METHOD)."""\n'
            f"from mhabench.suite.{module} import {', '.join(ENTRY[module])}  # noqa: F401\n")


def write_entry(directory: Path) -> Path:
    """Write the entry modules into ``directory`` (a package asv can use as benchmark_dir)."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "__init__.py").write_text("")
    for module in ENTRY:
        (directory / f"{module}.py").write_text(entry_text(module))
    return directory
