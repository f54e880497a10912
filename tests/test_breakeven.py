"""mhabench.figures.breakeven on hand-made points and documents, and ``mhabench breakeven``."""
from __future__ import annotations

import contextlib
import csv
import io
import json
import math

import pytest

from mhabench import commands
from mhabench.figures.breakeven import (SUMMARY_KEYS, break_even, break_even_table, csv_text,
                                        load_doc, merge_duplicates, summary_table)
from mhabench.measure.config import ConfigError, Point
from mhabench.measure.results import ERROR, Result
from mhabench.run.journal import json_text


def json_doc(results, meta):
    """The run JSON ``mhabench run --json`` writes for ``results``."""
    return json.loads(json_text(results, meta))


# --- break_even ------------------------------------------------------------------------------
def test_crossing_up():
    # 0.8 at 0.2, 1.2 at 0.6: 1.0 is halfway -> 0.4
    assert break_even([(0.0, 0.6), (0.2, 0.8), (0.6, 1.2), (0.9, 2.0)]) == pytest.approx(0.4)


def test_crossing_down():
    # 1.5 at 0.1, 0.5 at 0.5: 1.0 is halfway -> 0.3
    assert break_even([(0.1, 1.5), (0.5, 0.5)]) == pytest.approx(0.3)


def test_interpolation_is_not_the_midpoint():
    # 0.9 at 0.0, 1.3 at 0.4: a quarter of the way -> 0.1
    assert break_even([(0.0, 0.9), (0.4, 1.3)]) == pytest.approx(0.1)


@pytest.mark.parametrize("pts", [
    [(0.0, 1.1), (0.5, 1.5), (0.9, 3.0)],     # all above
    [(0.0, 0.5), (0.5, 0.9), (0.9, 0.99)],    # all below
    [(0.3, 0.7)],
    [],
])
def test_no_crossing_is_none(pts):
    assert break_even(pts) is None


def test_exact_hit():
    assert break_even([(0.0, 0.5), (0.25, 1.0), (0.5, 2.0)]) == 0.25
    assert break_even([(0.0, 1.0), (0.5, 2.0)]) == 0.0
    assert break_even([(0.0, 3.0), (0.5, 1.0)]) == 0.5
    assert break_even([(0.4, 1.0)]) == 0.4


def test_order_of_input_does_not_matter():
    pts = [(0.6, 1.2), (0.0, 0.6), (0.9, 2.0), (0.2, 0.8)]
    assert break_even(pts) == pytest.approx(0.4)


def test_first_crossing_in_padding_order():
    # up between 0.1 and 0.2 (at 0.15), down again between 0.5 and 0.7, up again later
    pts = [(0.1, 0.8), (0.2, 1.2), (0.5, 1.2), (0.7, 0.8), (0.9, 1.4)]
    assert break_even(pts) == pytest.approx(0.15)


def test_duplicate_paddings_are_averaged():
    # at 0.0: 0.7 and 0.9 -> 0.8; at 0.4: 1.1 and 1.3 -> 1.2; halfway -> 0.2
    pts = [(0.0, 0.7), (0.4, 1.1), (0.0, 0.9), (0.4, 1.3)]
    assert merge_duplicates(pts) == [(0.0, pytest.approx(0.8)), (0.4, pytest.approx(1.2))]
    assert break_even(pts) == pytest.approx(0.2)
    # duplicates straddling 1 that average to exactly 1 are an exact hit
    assert break_even([(0.3, 0.5), (0.3, 1.5), (0.8, 2.0)]) == 0.3


def test_non_finite_points_are_ignored():
    pts = [(0.0, 0.8), (0.1, math.nan), (0.2, None), (None, 5.0), (0.4, 1.2)]
    assert break_even(pts) == pytest.approx(0.2)


# --- documents -------------------------------------------------------------------------------
def _result(B, S, E, H, b, padding, speedup, dtype="fp32"):
    """A Result whose metrics are exactly (padding, speedup): one round, fast 1 µs, slow ``speedup``."""
    r = Result(Point(B, S, E, H, b, dtype=dtype, device="cpu"), padding=padding)
    if speedup is None:
        r.status, r.message = ERROR, "boom"
    else:
        r.rounds = {"fast": [1.0], "slow": [speedup]}
    return r


SPEC = [  # B, S, E, H, beta b, padding, speedup
    (2, 8, 32, 4, 1, 0.0, 0.8), (2, 8, 32, 4, 21, 0.2, 0.9), (2, 8, 32, 4, 61, 0.6, 1.3),
    (4, 8, 32, 4, 1, 0.0, 1.5), (4, 8, 32, 4, 21, 0.5, 2.0),
    (4, 16, 32, 4, 1, 0.0, None), (4, 16, 32, 4, 61, 0.3, None),
]


@pytest.fixture
def doc():
    return json_doc([_result(*s) for s in SPEC], {"device": "cpu"})


def test_table(doc):
    table = break_even_table(doc["results"])
    assert [(r["batch_size"], r["seq_len"]) for r in table] == [(2, 8), (4, 8), (4, 16)]
    a, b, c = table
    assert a["break_even_padding"] == pytest.approx(0.2 + 0.1 / 0.4 * 0.4)  # 0.9 -> 1.3 over 0.4
    assert (a["min_speedup"], a["max_speedup"], a["n_points"]) == (pytest.approx(0.8), pytest.approx(1.3), 3)
    assert b["break_even_padding"] is None and b["min_speedup"] == pytest.approx(1.5)
    assert c == {"batch_size": 4, "seq_len": 16, "embed_dim": 32, "num_heads": 4, "dtype": "float32",
                 "n_points": 0, "break_even_padding": None, "min_speedup": None, "max_speedup": None}
    assert break_even_table(doc) == table  # the whole document works too


def test_table_splits_dtypes(doc):
    extra = json_doc([_result(2, 8, 32, 4, 1, 0.0, 3.0, dtype="bf16")], {})["results"]
    table = break_even_table(doc["results"] + extra)
    assert [(r["batch_size"], r["seq_len"], r["dtype"]) for r in table][-1] == (2, 8, "bfloat16")
    assert len(table) == 4


def test_table_other_metric(doc):
    for r in doc["results"]:
        r["metrics"]["speedup_fair"] = (r["metrics"]["speedup"] or 0) * 2
    assert break_even_table(doc, "speedup_fair")[0]["break_even_padding"] is None  # 1.6 .. 2.6


def test_summary_table_has_a_break_even_per_speedup_figure(doc):
    for r in doc["results"]:
        s = r["metrics"]["speedup"]
        r["metrics"]["device_speedup"] = None if s is None else s + 0.15  # (2, 8): 0.95 .. 1.45
    rows = summary_table(doc)
    assert [tuple(r) for r in rows] == [SUMMARY_KEYS] * 3
    a, b, c = rows
    assert a["break_even_padding"] == pytest.approx(0.3)
    assert a["break_even_padding_device"] == pytest.approx(0.05 / 0.1 * 0.2)  # 0.95 -> 1.05
    assert a["break_even_padding_fair"] is None and a["break_even_padding_device_fair"] is None
    assert (a["min_speedup"], a["max_speedup"]) == (pytest.approx(0.8), pytest.approx(1.3))
    assert b["break_even_padding"] is None and b["break_even_padding_device"] is None
    assert c["n_points"] == 0 and c["break_even_padding"] is None


def test_load_doc_errors(tmp_path):
    with pytest.raises(ConfigError, match="no such file"):
        load_doc(tmp_path / "nope.json")
    (tmp_path / "bad.json").write_text("{")
    with pytest.raises(ConfigError, match="not JSON"):
        load_doc(tmp_path / "bad.json")
    for other in ({"a": 1}, [1, 2], {"results": [{"point": {}}]}, {"results": [{"point": {}, "metrics": {}}]}):
        (tmp_path / "other.json").write_text(json.dumps(other))
        with pytest.raises(ConfigError, match="not an mhabench results JSON"):
            load_doc(tmp_path / "other.json")


# --- mhabench breakeven -------------------------------------------------------------------------------------
def _main(argv):
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        rc = commands.main(argv)
    return rc, out.getvalue(), err.getvalue()


def test_breakeven_command_prints_table_and_writes_csv(doc, tmp_path):
    src = tmp_path / "all.json"
    src.write_text(json.dumps(doc))
    rc, out, err = _main(["breakeven", str(src), "--csv", str(tmp_path / "be.csv")])
    assert rc == 0, err
    assert "break_even_padding" in out and "0.300" in out
    rows = list(csv.DictReader(open(tmp_path / "be.csv", encoding="utf-8")))
    assert [r["batch_size"] for r in rows] == ["2", "4", "4"]
    assert float(rows[0]["break_even_padding"]) == pytest.approx(0.3)
    assert rows[1]["break_even_padding"] == "" and rows[2]["min_speedup"] == ""


@pytest.mark.parametrize("content, needle", [(None, "no such file"), ("[1", "not JSON"),
                                             ('{"x": 1}', "not an mhabench results JSON")])
def test_breakeven_command_bad_input_exits_2(tmp_path, content, needle):
    src = tmp_path / "in.json"
    if content is not None:
        src.write_text(content)
    rc, out, err = _main(["breakeven", str(src)])
    assert rc == 2 and out == ""
    assert err.startswith("mhabench: error:") and needle in err and err.count("\n") == 1


def test_breakeven_command_unwritable_csv_exits_2(doc, tmp_path):
    src = tmp_path / "all.json"
    src.write_text(json.dumps(doc))
    (tmp_path / "afile").write_text("")
    rc, _, err = _main(["breakeven", str(src), "--csv", str(tmp_path / "afile" / "be.csv")])
    assert rc == 2 and "cannot write" in err and err.count("\n") == 1


def test_breakeven_command_unknown_metric_exits_2(doc, tmp_path):
    src = tmp_path / "all.json"
    src.write_text(json.dumps(doc))
    rc, _, err = _main(["breakeven", str(src), "--metric", "nope"])
    assert rc == 2 and "unknown metric" in err


def test_breakeven_command_refuses_to_overwrite_its_input(doc, tmp_path):
    src = tmp_path / "all.json"
    src.write_text(json.dumps(doc))
    before = src.read_text()
    rc, out, err = _main(["breakeven", str(src), "--csv", str(src)])
    assert rc == 2 and "input itself" in err and err.count("\n") == 1
    assert src.read_text() == before


def test_breakeven_command_with_no_finite_point_exits_2(doc, tmp_path):
    """A CPU run has no kernel times: asking for their break-even is one line, exit 2."""
    for r in doc["results"]:
        r["metrics"]["device_speedup"] = None
    src = tmp_path / "all.json"
    src.write_text(json.dumps(doc))
    rc, out, err = _main(["breakeven", str(src), "--metric", "device_speedup"])
    assert rc == 2 and out == "" and "device_speedup" in err and err.count("\n") == 1


def test_the_runs_breakeven_csv_is_the_summary_table(doc):
    """What ``mhabench run`` writes beside its CSV (NAME_breakeven.csv)."""
    from mhabench.run.journal import breakeven_text
    results = [_result(*s) for s in SPEC]
    text = breakeven_text(results)
    assert text == csv_text(summary_table(doc), SUMMARY_KEYS)
    rows = list(csv.DictReader(io.StringIO(text)))
    assert [r["batch_size"] for r in rows] == ["2", "4", "4"]
    assert float(rows[0]["break_even_padding"]) == pytest.approx(0.3)
    assert rows[0]["break_even_padding_device"] == ""  # not measured: an empty cell
