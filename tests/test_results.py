"""Result figures, the CSV table, the errors dictionary and atomic writes."""
from __future__ import annotations

import csv
import io
import json
import math
import os

import pytest

from mhabench.measure.config import Point
from mhabench.measure.results import (COLUMNS, ERROR, MISMATCH, NO_FASTPATH, OK, REFERENCE_COLUMNS, Result,
                              ResultFiles, atomic_write, csv_text, errors_of, json_doc,
                              write_all)

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


def test_to_json_is_strict_json_with_raw_rounds():
    r = Result(_point(), status=NO_FASTPATH, message="fast path not taken: x")
    d = json.loads(json.dumps(r.to_json(), allow_nan=False))
    assert d["status"] == NO_FASTPATH and d["metrics"]["speedup"] is None
    t = json.loads(json.dumps(_timed().to_json(), allow_nan=False))
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


def test_json_doc():
    doc = json_doc([_timed(), Result(_point(), status=ERROR)], {"device": "cpu"})
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


def test_write_all_writes_each_requested_file(tmp_path):
    results = [_timed(), Result(_point(4), status=MISMATCH)]
    c, e, j = tmp_path / "r.csv", tmp_path / "e.json", tmp_path / "all.json"
    write_all(results, {"k": 1}, c, e, j)
    assert _parse(c.read_text(encoding="utf-8"))[0] == COLUMNS
    assert json.loads(e.read_text()) == {"batch:4_seq_len:8_n_heads:4_embed_dim:32": 1}
    doc = json.loads(j.read_text())
    assert doc["meta"] == {"k": 1} and len(doc["results"]) == 2
    assert sorted(os.listdir(tmp_path)) == ["all.json", "e.json", "r.csv"]


def test_growing_rewrites_serialise_each_point_once_and_match_one_write(tmp_path, monkeypatch):
    results = [_timed(), Result(_point(4), status=MISMATCH), _timed()]
    files = ResultFiles(tmp_path / "r.csv", tmp_path / "e.json", tmp_path / "all.json")
    serialised = []
    real = Result.to_json
    monkeypatch.setattr(Result, "to_json", lambda self: (serialised.append(self), real(self))[1])
    for n in (1, 2, 3):
        files.write(results[:n], {"points": n})
    assert len(serialised) == 3, "each point serialised once over three rewrites"
    once = tmp_path / "once"
    write_all(results, {"points": 3}, once / "r.csv", once / "e.json", once / "all.json")
    assert (tmp_path / "r.csv").read_text() == (once / "r.csv").read_text()
    assert json.loads((tmp_path / "all.json").read_text()) == json.loads((once / "all.json").read_text())
    assert json.loads((tmp_path / "e.json").read_text()) == {"batch:4_seq_len:8_n_heads:4_embed_dim:32": 1}
    assert len(_parse((tmp_path / "r.csv").read_text())) == 4


def test_write_all_skips_unrequested(tmp_path):
    write_all([_timed()], {}, None, tmp_path / "e.json", None)
    assert os.listdir(tmp_path) == ["e.json"]
    assert json.loads((tmp_path / "e.json").read_text()) == {}


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
    d = json.loads(json.dumps(r.to_json(), allow_nan=False))
    assert d["lengths"] == [8, 4] and d["metrics"]["useful_flops"] == 108544
