"""The asv suite: the benchmark classes asv discovers, generated from the figure catalogue.

asv reads the suite through thin entry modules (the repository's ``benchmarks/``, or the copy
``mhabench track`` writes when run from an installed wheel), each one line, so that benchmark
names stay ``module.Class.method``. :func:`entry` is what they call: it reads the ``MHABENCH_*``
variables and, on a bad one, ends asv's discovery with one line and exit status 2 (the only
place in mhabench that exits on import of anything).
"""
from __future__ import annotations

import sys
from pathlib import Path

from ..catalogue import ASV_MODULES, asv_classes

_MADE: dict = {}
#: What asv_runner's processes are started as (their first argument): each dies with asv.
ASV_ROLES = ("run_server", "setup_cache", "discover", "run", "timing", "check")


def entry_text(module: str) -> str:
    """The source of asv's entry module ``module``: its classes, from :func:`entry`."""
    names = ", ".join(asv_classes(module))
    return (f'"""asv\'s entry point for the suite\'s {module} figures ({names})."""\n'
            f"from mhabench.suite import entry\n\nglobals().update(entry({module!r}, __file__))\n")


def write_entry(directory: Path) -> Path:
    """Write the entry modules into ``directory`` (a package asv can use as benchmark_dir)."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "__init__.py").write_text("")
    for module in ASV_MODULES:
        (directory / f"{module}.py").write_text(entry_text(module))
    return directory


def entry(module: str, file: str = "") -> dict[str, type]:
    """The benchmark classes of asv entry module ``module``; a bad ``MHABENCH_*`` variable (or
    a grid another results dir holds, or CUDA asked of a host without a GPU) is one line on
    stderr and exit status 2, before asv runs or records anything."""
    from ..measure.config import ConfigError
    from .common import check_results_dir, classes, gpu_present, make_base, selection
    if "selection" not in _MADE:
        if sys.argv[1:2] and sys.argv[1] in ASV_ROLES:  # asv's forkserver, sweep, discovery
            from ..measure.host_setup import die_with_parent
            die_with_parent()
        try:
            sel = selection()
            check_results_dir(sel, Path(file or ".").parent)
            if sel.device.startswith("cuda") and not gpu_present():
                raise ConfigError(f"MHABENCH_DEVICE={sel.device}: this host has no NVIDIA GPU")
        except ConfigError as exc:
            print(f"mhabench: error: {exc}", file=sys.stderr)
            raise SystemExit(2) from None
        _MADE["selection"], _MADE["base"] = sel, make_base(sel)
    return classes(module, _MADE["selection"], _MADE["base"])
