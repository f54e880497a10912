"""``mhabench run --points``: a list of points by label (what confirm re-measures).
(point_of_label itself: tests/test_config.py.)"""
from __future__ import annotations

import json

import pytest

from mhabench.commands import main
from mhabench.run import execute as ex
from mhabench.run import supervise as sv


@pytest.mark.slow
def test_run_points_measures_exactly_those(tmp_path):
    labels = ["B4-S16-E32-H4-b61-float32-cpu", "B2-S8-E32-H4-b1-float32-cpu"]
    rc = main(["run", "--device", "cpu", "--points", ",".join(labels), "-q", "--preset",
               "check", "--no-extras", "--json", str(tmp_path / "a.json")])
    assert rc == 0
    doc = json.loads((tmp_path / "a.json").read_text())
    assert [r["label"] for r in doc["results"]] == labels
    assert doc["meta"]["mhabench_grid"] == "points"
    head = json.loads((tmp_path / "a.journal.jsonl").read_text().splitlines()[0])
    assert head["grid"] == labels


class _Spare:
    """Stands in for the worker ``run`` spawns ahead: no process here."""
    stopped = 0

    def stop(self):
        _Spare.stopped += 1


@pytest.mark.parametrize("points, named", [
    ("B2-S8-E32-H4-b1-float16-cuda", "give labels of float32 on cpu"),
    ("B2-S8-E32-H5-b1-float32-cpu", "divisible"), ("nonsense", "'nonsense'"),
    (",", "--points is empty"), ("B2-S8-E32-H4-b1-float32-cpu,B2-S8", "'B2-S8'")])
def test_bad_points_exit_2_before_measuring(tmp_path, monkeypatch, capsys, points, named):
    monkeypatch.setattr(ex, "execute", lambda *a, **k: pytest.fail("measured"))
    monkeypatch.setattr(sv, "spawn_worker", _Spare)
    _Spare.stopped = 0
    rc = main(["run", "--device", "cpu", "--points", points, "--json", str(tmp_path / "a.json")])
    err = capsys.readouterr().err
    assert rc == 2 and err.count("\n") == 1 and err.startswith("mhabench: error: ") and \
        named in err, err
    assert not list(tmp_path.iterdir()), "nothing written"
    assert _Spare.stopped <= 1
