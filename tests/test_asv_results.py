"""Reading asv result files: combinations in product order, whole-row failures, plain values."""
import math

from mhabench.track.asv_results import file_values, row_values, rows


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
