"""Reading asv result files: combinations in product order, whole-row failures, plain values; and
whole files through asv's own reader, one environment at a time."""
import itertools
import json
import math

import pytest

from asv_files import LABELS, SMOKE_PARAMS, write_result
from mhabench.measure.config import ConfigError
from mhabench.track.asv_results import file_values, load_record, records, row_values, rows

BENCH = "speedup.FastOverSlow.track_wall"
COMMIT = "c" * 40


def test_row_values_follow_the_product_of_params():
    row = {"params": [["2", "4"], ["8"], ["a", "b"]], "result": [1.0, None, 3.0, math.nan]}
    assert row_values(row) == {("2", "8", "a"): 1.0, ("2", "8", "b"): None,
                               ("4", "8", "a"): 3.0, ("4", "8", "b"): row["result"][3]}


def test_a_failed_row_fails_every_combination_and_a_plain_one_has_one_value():
    assert row_values({"params": [["1", "2"]], "result": None}) == {("1",): None, ("2",): None}
    assert row_values({"params": [], "result": 5.0}) == {(): 5.0}


def test_file_values_read_columns_by_name():
    doc = {"result_columns": ["result", "params", "version"],
           "results": {"m.C.track_x": [[0.5, 0.25], [["16", "32"]], "1"], "odd": "not a row"}}
    assert rows(doc) == {"m.C.track_x": {"result": [0.5, 0.25], "params": [["16", "32"]],
                                         "version": "1"}}
    assert file_values(doc) == {"m.C.track_x": {("16",): 0.5, ("32",): 0.25}}


def test_load_record_reads_through_asv_and_keeps_failures_and_na(tmp_path):
    values = [0.5 + i / 10 for i in range(len(LABELS))]
    values[1], values[2] = None, math.nan
    path = write_result(tmp_path, "box", COMMIT, {BENCH: values})
    rec = load_record(path)
    assert (rec.machine, rec.commit, rec.env_name) == ("box", COMMIT, "virtualenv-py3.11")
    got = rec.values[BENCH]
    assert list(got) == [tuple(c) for c in itertools.product(*SMOKE_PARAMS)]
    first, failed, na = list(got.values())[:3]
    assert first == 0.5 and failed is None and math.isnan(na)


@pytest.mark.parametrize("content, needle", [("", "empty result file"), ("{", "not an asv result"),
                                             ("[]", "not an asv result")])
def test_a_bad_file_is_one_line_naming_it(tmp_path, content, needle):
    path = tmp_path / "box" / "x.json"
    path.parent.mkdir()
    path.write_text(content)
    with pytest.raises(ConfigError, match=needle) as ei:
        load_record(path)
    assert str(path) in str(ei.value) and "\n" not in str(ei.value)


def test_a_non_numeric_value_is_refused(tmp_path):
    path = write_result(tmp_path, "box", COMMIT, {BENCH: 1.0})
    doc = json.loads(path.read_text())
    doc["results"][BENCH][0][0] = "fast"
    path.write_text(json.dumps(doc))
    with pytest.raises(ConfigError, match="non-numeric"):
        load_record(path)


def test_records_of_a_commit_keep_environments_apart(tmp_path):
    write_result(tmp_path, "box", COMMIT, {BENCH: 1.0}, env_name="virtualenv-py3.11")
    write_result(tmp_path, "box", COMMIT, {BENCH: 2.0}, env_name="existing-py3.11")
    write_result(tmp_path, "box", "d" * 40, {BENCH: 3.0})
    with pytest.raises(ConfigError, match="2 environments"):
        records(tmp_path, "box", COMMIT)
    (rec,) = records(tmp_path, "box", COMMIT, "existing-py3.11")
    assert set(rec.values[BENCH].values()) == {2.0}
    assert records(tmp_path, "other", COMMIT) == []
