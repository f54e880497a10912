"""Reading asv's (0.6, API version 2) result files: the one place that knows their layout.

A file holds, per benchmark, a row of columns (``result_columns``). A parameterised benchmark's
``result`` lists one value per combination, in ``itertools.product(*params)`` order; ``None``
for the whole list means every combination failed; a plain benchmark has ``params == []`` and
one value.
"""
from __future__ import annotations

import itertools
from typing import Mapping


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
