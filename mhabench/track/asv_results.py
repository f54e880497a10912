"""Reading asv's (0.6, API version 2) result files: the one place that knows their layout.

:func:`records` / :func:`load_record` read through asv's own ``asv.results`` and keep each
file's environment (a virtualenv result and an ``existing`` one of the same commit never mix);
the dict readers below serve code that already holds a parsed file.

A file holds, per benchmark, a row of columns (``result_columns``). A parameterised benchmark's
``result`` lists one value per combination, in ``itertools.product(*params)`` order; ``None``
for the whole list means every combination failed; a plain benchmark has ``params == []`` and
one value.
"""
from __future__ import annotations

import glob
import itertools
import os
from dataclasses import dataclass
from typing import Mapping

from ..measure.config import ConfigError


def row_values(row: Mapping) -> dict[tuple, object]:
    """``{param combination: value}`` of one benchmark's row (a column -> value mapping)."""
    combos = list(itertools.product(*(row.get("params") or [])))
    values = row.get("result")
    if values is None:
        values = [None] * len(combos)
    elif not isinstance(values, list):
        values = [values]
    return dict(zip(combos, values))


def rows(doc: Mapping) -> dict[str, dict]:
    """``{benchmark: {column: value}}`` of a parsed result file."""
    cols = doc["result_columns"]
    return {name: dict(zip(cols, row)) for name, row in doc["results"].items()
            if isinstance(row, list)}


def file_values(doc: Mapping) -> dict[str, dict[tuple, object]]:
    """``{benchmark: {param combination: value}}`` of a parsed result file (None: failed,
    NaN: n/a)."""
    return {name: row_values(row) for name, row in rows(doc).items()}


# --- records through asv's own API ---------------------------------------------------------------
@dataclass(frozen=True)
class Record:
    """One asv result file of one commit, machine and environment, read by ``asv.results``."""

    path: str
    machine: str
    commit: str
    env_name: str
    values: dict  # {benchmark: {param combination: float | None (failed) | NaN (n/a)}}
    date: int = 0


def _bad(path, why: str) -> ConfigError:
    return ConfigError(f"{path}: {why}")


def _number(path, name: str, v):
    """A stored value: None (failed), a finite or NaN float; anything else is bad input."""
    if v is None:
        return None
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        raise _bad(path, f"benchmark {name} holds a non-numeric value {v!r}")
    return float(v)


def load_record(path) -> Record:
    """Read one result file through ``asv.results.Results.load``; ConfigError naming the file
    when it is empty, corrupt, of another format or holds non-numeric values."""
    from asv import util
    from asv.results import Results
    path = str(path)
    if os.path.getsize(path) == 0:  # outside the try: a ConfigError is a ValueError too
        raise _bad(path, "empty result file")
    try:
        res = Results.load(path)
    except util.UserError as exc:
        raise _bad(path, f"not an asv result file ({str(exc).replace(path, '').strip(' :')})"
                   ) from None
    except (TypeError, AttributeError, ValueError) as exc:
        raise _bad(path, f"not an asv result file ({type(exc).__name__})") from None
    if not isinstance(res.commit_hash, str) or not isinstance(res.params, dict):
        raise _bad(path, "not an asv result file (no commit_hash or params)")
    values = {}
    for name in res.get_all_result_keys():
        params = res.get_result_params(name) or []
        if not isinstance(params, list) or not all(isinstance(p, list) for p in params):
            raise _bad(path, f"benchmark {name} has malformed params")
        combos = list(itertools.product(*params))
        raw = res.get_result_value(name, params)
        if raw is None:
            raw = [None] * len(combos)
        elif not isinstance(raw, list):
            raw = [raw]
        if len(raw) != len(combos):
            raise _bad(path, f"benchmark {name} has {len(raw)} values for {len(combos)} points")
        values[name] = {c: _number(path, name, v) for c, v in zip(combos, raw)}
    date = res.date if isinstance(res.date, (int, float)) else 0
    return Record(path, str(res.params.get("machine", "")), res.commit_hash, res.env_name, values,
                  int(date))


def records(results_dir, machine: str, commit: str, env_name: str = "") -> list[Record]:
    """The result files of ``commit`` on ``machine`` (one per environment).

    With ``env_name`` only that environment's; without it, several environments of one commit
    are an error: a virtualenv and an ``existing`` interpreter measured different installs.
    """
    found = []
    for path in sorted(glob.glob(os.path.join(str(results_dir), machine, f"{commit[:8]}-*.json"))):
        rec = load_record(path)
        if rec.commit == commit and (not env_name or rec.env_name == env_name):
            found.append(rec)
    envs = sorted({r.env_name for r in found})
    if len(envs) > 1:
        raise ConfigError(f"commit {commit[:8]} on machine {machine!r} has results of "
                          f"{len(envs)} environments ({', '.join(envs)}): pick one with --env")
    return found
