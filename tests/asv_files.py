"""asv (0.6, API version 2) result files written by hand, for the gate's and confirm's tests."""
from __future__ import annotations

import itertools
import json
from pathlib import Path

SMOKE_PARAMS = [["2", "4"], ["8", "16"], ["32"], ["4"], ["1", "61"]]
COMBOS = list(itertools.product(*SMOKE_PARAMS))
LABELS = ["-".join(f"{k}{v}" for k, v in zip("BSEHb", c)) for c in COMBOS]


def write_result(results: Path, machine: str, commit: str, values: dict,
                 env_name: str = "virtualenv-py3.11", params=SMOKE_PARAMS) -> Path:
    """``values``: {benchmark: [value per combination] or one value for all}."""
    n = len(list(itertools.product(*params)))
    rows = {name: [v if isinstance(v, list) else [v] * n, params] for name, v in values.items()}
    doc = {"commit_hash": commit, "env_name": env_name, "date": 1_700_000_000_000,
           "params": {"machine": machine, "python": "3.11"}, "python": "3.11",
           "requirements": {}, "env_vars": {}, "result_columns": ["result", "params"],
           "results": rows, "durations": {}, "version": 2}
    path = results / machine / f"{commit[:8]}-{env_name}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    (results / machine / "machine.json").write_text(json.dumps({"machine": machine,
                                                                "version": 1}))
    path.write_text(json.dumps(doc))
    return path
