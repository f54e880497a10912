"""``mhabench run --points``: a list of points by label (what confirm re-measures)."""
from __future__ import annotations

import json

import pytest

from mhabench import cli
from mhabench.measure import sweep
from mhabench.measure.config import ConfigError, point_of_label, named_grid


def test_point_of_label_inverts_point_label():
    for p in named_grid("smoke", "fp32", "cpu") + named_grid("quick", "fp16", "cuda:1"):
        assert point_of_label(p.label) == p
    with pytest.raises(ConfigError, match="B2-S8"):
        point_of_label("B2-S8")


def test_run_points_measures_exactly_those(tmp_path):
    labels = ["B4-S16-E32-H4-b61-float32-cpu", "B2-S8-E32-H4-b1-float32-cpu"]
    rc = cli.main(["run", "--device", "cpu", "--points", ",".join(labels), "--no-table",
                   "--no-progress", "--no-peak", "--no-extras", "--target-ms", "2",
                   "--min-rounds", "3", "--warmup-ms", "1", "--json", str(tmp_path / "a.json")])
    assert rc == 0
    doc = json.loads((tmp_path / "a.json").read_text())
    assert [r["label"] for r in doc["results"]] == labels


@pytest.mark.parametrize("points, named", [("B2-S8-E32-H4-b1-float16-cuda", "float32 on cpu"),
                                           ("B2-S8-E32-H5-b1-float32-cpu", "divisible"),
                                           ("nonsense", "'nonsense'"), (",", "float32 on cpu")])
def test_bad_points_exit_2_before_measuring(tmp_path, monkeypatch, capsys, points, named):
    monkeypatch.setattr(sweep, "sweep", lambda *a, **k: pytest.fail("measured"))
    rc = cli.main(["run", "--device", "cpu", "--points", points, "--json",
                   str(tmp_path / "a.json")])
    err = capsys.readouterr().err
    assert rc == 2 and err.count("\n") == 1 and named in err, err
    assert not (tmp_path / "a.json").exists()
