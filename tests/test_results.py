"""Result: its figures, its versioned record (what a journal line and a worker's message carry)
and what is read off it: the run JSON's entry, the CSV row (its columns from the catalogue),
the errors dictionary; and atomic writes."""
from __future__ import annotations

import csv
import dataclasses
import io
import json
import math
import os

import pytest

from mhabench import catalogue as cat
from mhabench.measure.config import Point
from mhabench.measure.fileio import atomic_write
from mhabench.measure.results import (DONE, ERROR, MISMATCH, NO_FASTPATH, OK, RECORD_VERSION,
                                      WALL, Result, csv_row, csv_text, errors_of)

COLUMNS = [cat.csv_header(c) for c in cat.csv_columns()]
REFERENCE_COLUMNS = COLUMNS[:9]

# The reference's result_entry keys, in its order and spelling (\u00b5 is the micro sign).
REF_HEADER = ["dtype", "batch_size", "sequence_length", "n_heads", "embed_dim",
              "time_native_mha_slow(\u00b5s)", "time_native_mha_fast (\u00b5s)",
              "speedup flash_mha v native_mha", "padding"]


def _point(B=2, S=8, E=32, H=4, b=1):
    return Point(B, S, E, H, b, dtype="fp32", device="cpu")


def _timed():
    r = Result(_point(), padding=0.25, max_abs_err=1e-7, fast_path=True)
    r.rounds = {"fast": [5.0, 5.0, 10.0], "slow": [10.0, 20.0, 30.0],
                "slow_fair": [8.0, 15.0, 10.0]}
    return r


# --- Result ---------------------------------------------------------------------------------

def test_speedup_is_median_of_per_round_ratios():
    m = _timed().metrics()
    # ratios slow/fast: 2, 4, 3 -> median 3 (while median(slow)/median(fast) would be 4)
    assert m["speedup"] == pytest.approx(3.0)
    # fair ratios: 1.6, 3.0, 1.0 -> median 1.6
    assert m["speedup_fair"] == pytest.approx(1.6)


def test_wall_figures_are_medians_and_iqrs():
    m = _timed().metrics()
    assert m["wall_slow_us"] == 20.0
    assert m["wall_fast_us"] == 5.0
    assert m["wall_slow_fair_us"] == 10.0
    assert m["wall_slow_iqr_us"] == pytest.approx(10.0)    # q1 15, q3 25
    assert m["wall_fast_iqr_us"] == pytest.approx(2.5)     # q1 5, q3 7.5
    assert m["padding"] == 0.25 and m["max_abs_err"] == 1e-7


def test_metrics_without_measurements_are_nan():
    m = Result(_point(), status=NO_FASTPATH).metrics()
    for k in ("speedup", "speedup_fair", "wall_fast_us", "wall_slow_us", "device_speedup",
              "host_share_fast", "device_fast_us", "padding", "max_abs_err"):
        assert math.isnan(m[k]), k
    assert all(isinstance(v, float) for v in m.values())


def test_device_figures():
    r = _timed()
    r.device_calls = {"fast": [2.0, 3.0, 4.0], "slow": [9.0, 9.0, 9.0], "slow_fair": [6.0]}
    m = r.metrics()
    assert m["device_fast_us"] == 3.0
    assert m["device_speedup"] == pytest.approx(3.0)
    assert m["device_speedup_fair"] == pytest.approx(2.0)
    assert m["host_share_fast"] == pytest.approx(1 - 3.0 / 5.0)
    assert m["host_share_slow"] == pytest.approx(1 - 9.0 / 20.0)


def test_timed():
    assert _timed().timed
    assert not Result(_point()).timed                   # ok but no rounds
    r = _timed()
    r.status = MISMATCH
    assert r.timed
    for status in (NO_FASTPATH, ERROR):
        r.status = status
        assert not r.timed


def test_doc_is_strict_json_with_raw_rounds():
    r = Result(_point(), status=NO_FASTPATH, message="fast path not taken: x")
    d = json.loads(json.dumps(r.doc(), allow_nan=False))
    assert d["status"] == NO_FASTPATH and d["metrics"]["speedup"] is None
    t = json.loads(json.dumps(_timed().doc(), allow_nan=False))
    assert t["rounds_us"]["slow"] == [10.0, 20.0, 30.0]
    assert t["metrics"]["speedup"] == pytest.approx(3.0)
    assert t["point"]["batch_size"] == 2 and t["label"] == _point().label


# --- CSV --------------------------------------------------------------------------------------

def _parse(text):
    return list(csv.reader(io.StringIO(text)))


def test_reference_columns_are_the_references():
    assert REFERENCE_COLUMNS == REF_HEADER
    assert COLUMNS[:len(REF_HEADER)] == REF_HEADER
    assert len(set(COLUMNS)) == len(COLUMNS)


def test_csv_header_and_one_row_per_result():
    results = [_timed(), Result(_point(4, 16, 32, 4, 61), status=ERROR, message="boom"),
               Result(_point(2, 16), status=NO_FASTPATH)]
    rows = _parse(csv_text(results))
    assert rows[0][:9] == REF_HEADER
    assert rows[0] == COLUMNS
    assert len(rows) == 1 + len(results)
    assert all(len(r) == len(COLUMNS) for r in rows)


def test_csv_row_values():
    rows = _parse(csv_text([_timed()]))
    row = dict(zip(rows[0], rows[1]))
    assert row["dtype"] == "torch.float32"
    assert (row["batch_size"], row["sequence_length"], row["n_heads"], row["embed_dim"]) == \
        ("2", "8", "4", "32")
    assert row["time_native_mha_slow(\u00b5s)"] == "20.000"
    assert row["time_native_mha_fast (\u00b5s)"] == "5.000"
    assert row["speedup flash_mha v native_mha"] == "3.000"
    assert row["padding"] == "0.250"
    assert row["status"] == OK and row["beta_b"] == "1" and row["fast_path"] == "yes"


def test_csv_untimed_row_has_blank_figures():
    rows = _parse(csv_text([Result(_point(), status=NO_FASTPATH)]))
    row = dict(zip(rows[0], rows[1]))
    assert row["time_native_mha_fast (\u00b5s)"] == ""
    assert row["speedup flash_mha v native_mha"] == ""
    assert row["status"] == NO_FASTPATH and row["fast_path"] == "no"


def test_csv_of_nothing_is_just_the_header():
    assert _parse(csv_text([])) == [COLUMNS]


# --- errors -------------------------------------------------------------------------------------

def test_errors_of_counts_failures_per_reference_key():
    results = [
        Result(_point(16, 64, 512, 8, 1), status=MISMATCH),
        Result(_point(16, 64, 512, 8, 5), status=ERROR),
        Result(_point(16, 64, 512, 8, 9), status=OK),
        Result(_point(32, 128, 1024, 16, 1), status=NO_FASTPATH),
        Result(_point(32, 128, 1024, 16, 5), status=OK),
    ]
    assert errors_of(results) == {
        "batch:16_seq_len:64_n_heads:8_embed_dim:512": 2,
        "batch:32_seq_len:128_n_heads:16_embed_dim:1024": 1,
    }


def test_errors_of_all_ok_is_empty():
    assert errors_of([_timed(), _timed()]) == {}


def test_the_run_json_holds_meta_errors_and_one_entry_per_point():
    from mhabench.run.journal import json_text
    doc = json.loads(json_text([_timed(), Result(_point(), status=ERROR)], {"device": "cpu"}))
    assert doc["meta"] == {"device": "cpu"}
    assert doc["errors"] == {"batch:2_seq_len:8_n_heads:4_embed_dim:32": 1}
    assert [r["status"] for r in doc["results"]] == [OK, ERROR]


# --- files --------------------------------------------------------------------------------------

def test_atomic_write_creates_replaces_and_leaves_no_temp(tmp_path):
    target = tmp_path / "sub" / "out.csv"
    atomic_write(target, "first\n")
    assert target.read_text(encoding="utf-8") == "first\n"
    atomic_write(str(target), "second \u00b5\n")
    assert target.read_text(encoding="utf-8") == "second \u00b5\n"
    assert os.listdir(target.parent) == ["out.csv"]


def test_atomic_write_failure_keeps_old_content_and_no_temp(tmp_path):
    target = tmp_path / "out.json"
    atomic_write(target, "old")
    with pytest.raises(TypeError):
        atomic_write(target, 12345)  # type: ignore[arg-type]  # write() refuses a non-str
    assert target.read_text() == "old"
    assert os.listdir(tmp_path) == ["out.json"]


def test_zero_device_time_does_not_crash_metrics_or_csv():
    r = _timed()
    r.device_calls = {"fast": [0.0, 0.0, 0.0], "slow": [3.0, 3.0, 3.0], "slow_fair": [2.0]}
    m = r.metrics()
    assert not math.isfinite(m["device_speedup"])
    rows = _parse(csv_text([r]))
    assert len(rows) == 2


# --- efficiency, memory, drift -----------------------------------------------------------------

def _efficient():
    """fast 5 µs, slow 20 µs (wall); kernels fast 4 µs, slow 10 µs; rows of 8 and 4 tokens."""
    r = _timed()
    r.lengths = [8, 4]
    r.device_calls = {"fast": [4.0], "slow": [10.0]}
    r.peak_tflops = 0.5
    return r


def test_flops_and_tflops_by_hand():
    # E=32: a row of L tokens costs 2*L*32*96 + 2*L*32*32 + 4*L*L*32 FLOPs
    useful = (2 * 8 * 32 * 96 + 2 * 8 * 32 * 32 + 4 * 64 * 32) + (2 * 4 * 32 * 96 + 2 * 4 * 32 * 32
                                                                  + 4 * 16 * 32)
    m = _efficient().metrics()
    assert m["useful_flops"] == useful == 108544
    assert m["padded_flops"] == 2 * (2 * 8 * 32 * 96 + 2 * 8 * 32 * 32 + 4 * 64 * 32)
    assert m["wall_fast_tflops"] == pytest.approx(useful / 5e-6 / 1e12)
    assert m["wall_slow_tflops"] == pytest.approx(useful / 20e-6 / 1e12)   # useful, not padded
    assert m["device_fast_tflops"] == pytest.approx(useful / 4e-6 / 1e12)
    assert m["device_slow_tflops"] == pytest.approx(useful / 10e-6 / 1e12)
    assert m["device_fast_peak_fraction"] == pytest.approx(useful / 4e-6 / 1e12 / 0.5)
    assert m["wall_fast_peak_fraction"] == pytest.approx(useful / 5e-6 / 1e12 / 0.5)
    assert m["peak_tflops"] == 0.5


def test_efficiency_figures_are_nan_where_not_measured():
    m = _timed().metrics()  # no lengths, no device times, no peak, no memory, no reference
    for k in ("useful_flops", "wall_fast_tflops", "device_fast_tflops", "wall_fast_peak_fraction",
              "device_slow_peak_fraction", "peak_tflops", "peak_mem_fast_bytes", "max_abs_err_fp32"):
        assert math.isnan(m[k]), k
    r = _efficient()
    r.peak_tflops = math.nan
    m = r.metrics()
    assert math.isfinite(m["device_fast_tflops"]) and math.isnan(m["device_fast_peak_fraction"])


def test_memory_and_fp32_error_reach_the_metrics_and_the_cache_sees_them():
    r = _efficient()
    assert math.isnan(r.metrics()["peak_mem_slow_bytes"])
    r.peak_mem = {"fast": 1024.0, "slow": 4096.0, "slow_fair": 2048.0}
    r.max_abs_err_fp32 = 3e-4
    m = r.metrics()
    assert (m["peak_mem_fast_bytes"], m["peak_mem_slow_bytes"], m["peak_mem_slow_fair_bytes"]) == \
        (1024.0, 4096.0, 2048.0)
    assert m["max_abs_err_fp32"] == 3e-4
    r.peak_tflops = 1.0
    assert r.metrics()["device_fast_peak_fraction"] == pytest.approx(m["device_fast_peak_fraction"] / 2)


def test_csv_and_json_carry_the_efficiency_figures():
    r = _efficient()
    r.peak_mem = {"fast": 1024.0}
    rows = _parse(csv_text([r]))
    row = dict(zip(rows[0], rows[1]))
    assert row["useful_flops"] == "108544"
    assert float(row["device_fast_tflops"]) == pytest.approx(108544 / 4e-6 / 1e12, rel=1e-3)
    assert row["peak_mem_fast_bytes"] == "1024" and row["peak_mem_slow_bytes"] == ""
    d = json.loads(json.dumps(r.doc(), allow_nan=False))
    assert d["lengths"] == [8, 4] and d["metrics"]["useful_flops"] == 108544


# --- every catalogued figure, and the host-work counts -----------------------------------------

def test_metrics_hold_every_catalogued_figure_as_a_float():
    m = _efficient().metrics()
    assert list(m) == list(cat.BY_KEY)
    assert all(isinstance(v, float) for v in m.values())


def test_the_sample_counts_behind_the_medians():
    r = _timed()
    assert r.metrics()["wall_rounds"] == 3.0 and math.isnan(r.metrics()["device_rounds"])
    r.device_calls = {"fast": [1.0, 2.0], "slow": [3.0, 3.0]}
    assert r.metrics()["device_rounds"] == 2.0


def test_the_noise_of_a_speedup_is_the_relative_iqr_of_its_per_round_ratios():
    m = _timed().metrics()
    # ratios 2, 4, 3: IQR 1 (2.5 to 3.5), median 3
    assert m["speedup_rel_iqr"] == pytest.approx(1 / 3)
    r = _timed()
    r.device_calls = {"fast": [1.0, 1.0, 1.0], "slow": [2.0, 2.0, 2.0]}
    assert r.metrics()["device_speedup_rel_iqr"] == 0.0
    assert math.isnan(Result(_point()).metrics()["speedup_rel_iqr"])


def test_host_work_counts_reach_the_metrics_and_unknown_bytes_are_nan():
    r = _timed()
    r.host_work = {"fast": {"aten_ops": 12, "bytecodes": 958, "h2d_bytes": 8, "d2h_bytes": 4,
                            "launches": 3, "ops": {"aten::mm": 12}, "varies": []},
                   "slow": {"aten_ops": 20, "bytecodes": 1640, "h2d_bytes": -1, "d2h_bytes": 0}}
    m = r.metrics()
    assert (m["host_fast_aten_ops"], m["host_fast_bytecodes"], m["host_fast_launches"]) == \
        (12.0, 958.0, 3.0)
    assert m["host_fast_copied_bytes"] == 12.0
    assert math.isnan(m["host_slow_h2d_bytes"]) and math.isnan(m["host_slow_copied_bytes"])
    assert math.isnan(m["host_slow_fair_aten_ops"]) and math.isnan(m["host_fast_syncs"])


def test_host_work_reaches_the_csv_and_the_json():
    r = _timed()
    r.host_work = {"fast": {"aten_ops": 12, "bytecodes": 958}}
    row = dict(zip(COLUMNS, csv_row(r)))
    assert row["host_fast_aten_ops"] == "12" and row["host_slow_aten_ops"] == ""
    assert "host_fast_bytecodes" in row and row["host_fast_bytecodes"] == "958"
    assert r.doc()["host_work"] == {"fast": {"aten_ops": 12, "bytecodes": 958}}


@pytest.mark.parametrize("change", [
    lambda r: r.rounds["fast"].__setitem__(0, 50.0),
    lambda r: r.device_calls["fast"].__setitem__(0, 40.0),
    lambda r: r.host_work["fast"].__setitem__("aten_ops", 13),
    lambda r: r.host_work["fast"].__setitem__("bytecodes", 1000),
    lambda r: setattr(r, "padding", 0.5),
    lambda r: r.lengths.__setitem__(0, 2),
    lambda r: setattr(r, "peak_tflops", 2.0),
    lambda r: r.instructions.__setitem__("fast", 9.0),
], ids=["round", "device call", "aten ops", "bytecodes", "padding", "length", "peak",
        "instructions"])
def test_the_metrics_cache_sees_every_change_to_what_they_are_computed_from(change):
    r = _efficient()
    r.device_calls = {"fast": [4.0], "slow": [10.0]}
    r.host_work = {"fast": {"aten_ops": 12, "bytecodes": 958}}
    r.instructions = {"fast": 5.0}
    before = r.metrics()
    change(r)
    fresh = Result.of_record(r.record()).metrics()
    assert r.metrics().keys() == fresh.keys()
    changed = [k for k in fresh if not _same(r.metrics()[k], fresh[k])]
    assert not changed, f"stale after the change: {changed}"
    assert any(not _same(before[k], fresh[k]) for k in fresh), "the change moved a figure"


def _same(a, b) -> bool:
    return a == b or (math.isnan(a) and math.isnan(b))


# --- the record --------------------------------------------------------------------------------

def test_the_record_is_versioned_plain_json_and_of_record_reads_it_back_nan_included():
    r = _efficient()
    r.max_abs_err_fp32 = math.nan
    r.window_calls = {"fast": 10, "slow": 3}
    r.host_work = {"fast": {"aten_ops": 12, "ops": {"aten::mm": 2}, "varies": []}}
    r.instructions = {"fast": 1.5e6}
    r.stage, r.message, r.sdpa_backend = WALL, "note", "flash"
    rec = r.record()
    assert rec["v"] == RECORD_VERSION == 2
    assert rec["point"] == dataclasses.asdict(r.point)
    back = Result.of_record(json.loads(json.dumps(rec)))
    for f in dataclasses.fields(Result):
        a, b = getattr(r, f.name), getattr(back, f.name)
        assert a == b or (isinstance(a, float) and math.isnan(a) and math.isnan(b)), f.name
    assert back.metrics().keys() == r.metrics().keys()


def test_of_record_takes_null_floats_as_nan_and_leaves_missing_fields_at_their_defaults():
    rec = {"point": dataclasses.asdict(_point()), "status": ERROR, "padding": None,
           "max_abs_err": None, "v": 2}
    r = Result.of_record(rec)
    assert r.status == ERROR and math.isnan(r.padding) and math.isnan(r.max_abs_err)
    assert r.rounds == {} and r.stage == DONE and r.host_work == {}


def test_of_record_reads_the_run_json_entries_too():
    r = _efficient()
    r.window_calls = {"fast": 10}
    back = Result.of_record(json.loads(json.dumps(r.doc(), allow_nan=True)))
    assert back.rounds == r.rounds and back.device_calls == r.device_calls
    assert back.lengths == r.lengths and back.status == r.status
    assert back.window_calls == {"fast": 10}
    assert math.isnan(back.padding)  # not a field of the entry (it is a metric): its default
    assert back.metrics()["speedup"] == r.metrics()["speedup"]


def test_a_new_result_is_done_and_a_wall_pass_says_wall():
    assert Result(_point()).stage == DONE
    assert Result(_point(), stage=WALL).record()["stage"] == WALL


def test_the_doc_carries_what_the_json_promises():
    r = _timed()
    r.window_calls = {"fast": 10, "slow": 3, "slow_fair": 4}
    r.host_probe_us = [61.5, 104.2]
    r.retimed = 2
    d = r.doc()
    assert set(d) == {"point", "label", "status", "message", "fast_path", "sdpa_backend",
                      "metrics", "lengths", "rounds_us", "window_calls", "host_probe_us",
                      "retimed", "rounds_left_out", "device_calls_us", "host_work", "instructions"}
    assert d["window_calls"] == r.window_calls and d["label"] == r.point.label
    assert d["host_probe_us"] == [61.5, 104.2]
    assert Result.of_record(r.record()).host_probe_us == [61.5, 104.2], "the journal keeps it"
    assert d["retimed"] == 2 and Result.of_record(r.record()).retimed == 2
    assert set(d["metrics"]) == set(cat.BY_KEY)


def test_csv_rows_follow_the_catalogues_columns():
    r = _timed()
    assert len(csv_row(r)) == len(cat.csv_columns()) == len(COLUMNS)
    assert COLUMNS[:9] == REF_HEADER and "instr_fast" in COLUMNS
    assert len(set(COLUMNS)) == len(COLUMNS)
