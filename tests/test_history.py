"""The gate on real history: records of five torch releases (CPU, smoke grid, three records
each, with instruction counts; ``tests/data/history``, kept by ``bench/history_data.py`` from
``mhabench track 2.1.2 2.3.1 2.9.1 2.13.0 2.15.0 --repeats 3 --instructions``), and builds
planted on top of the real 2.15.0 records: its asv results and record files copied under a
commit of their own, with one figure changed by a known amount."""
from __future__ import annotations

import hashlib
import json
import shutil
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from test_gate import run_gate  # noqa: E402

DATA = Path(__file__).resolve().parent / "data" / "history"
RELEASES = ["2.1.2", "2.3.1", "2.9.1", "2.13.0", "2.15.0"]

pytestmark = pytest.mark.skipif(not (DATA / "builds.json").is_file(),
                                reason="tests/data/history not kept")


@pytest.fixture
def history(tmp_path) -> Path:
    d = tmp_path / "history"
    shutil.copytree(DATA, d)
    return d


def _manifest(d: Path) -> dict:
    return json.loads((d / "builds.json").read_text())


def plant(d: Path, name: str, values=None, ops=None, source: str = "2.15.0") -> str:
    """A build ``source-name``: ``source``'s records under a commit of its own, with
    ``values(benchmark, value) -> value`` applied to its asv results and ``ops(path, ops) ->
    ops`` to its record files' op maps. Returns the build's name for the gate."""
    manifest = _manifest(d)
    old = manifest["commits"][f"torch-{source}"]
    new = hashlib.sha1(f"{source}-{name}".encode()).hexdigest()
    for p in list((d / "results").rglob(f"{old[:8]}-*.json")):
        doc = json.loads(p.read_text())
        doc["commit_hash"] = new
        if values:
            for bench, row in doc["results"].items():
                row[0] = [v if v is None else values(bench, v) for v in row[0]]
        p.with_name(p.name.replace(old[:8], new[:8])).write_text(json.dumps(doc))
    for p in list((d / "records").rglob(f"{old}-*.json")):
        doc = json.loads(p.read_text())
        if ops:
            for r in doc["results"]:
                for path, work in (r.get("host_work") or {}).items():
                    work["ops"] = ops(path, dict(work.get("ops") or {}))
        p.with_name(p.name.replace(old, new)).write_text(json.dumps(doc))
    shutil.copy(d / "installed" / f"{old}.json", d / "installed" / f"{new}.json")
    build = next(b for b in manifest["builds"] if b["version"] == source)
    manifest["builds"].append({**build, "variant": name})
    manifest["commits"][f"torch-{source}-{name}"] = new
    (d / "builds.json").write_text(json.dumps(manifest))
    return new[:12]


def gate(d: Path, *builds: str, extra=()) -> tuple[int, str, dict]:
    out = d.parent / "gate.json"
    out.unlink(missing_ok=True)
    rc, text = run_gate(["gate", *builds, "--dir", str(d), "--json", str(out), *extra])
    return rc, text, json.loads(out.read_text()) if out.exists() else {}


def points_failing(doc: dict, step: int = 0) -> set[str]:
    return {f["point"] for f in doc["steps"][step]["failing"]}
