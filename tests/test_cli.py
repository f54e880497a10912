"""``mhabench run``: in-process through cli.main, and once as ``python -m mhabench``."""
from __future__ import annotations

import contextlib
import csv
import io
import json
import os
import re
import subprocess
import sys

import pytest
import torch

from mhabench import cli
from mhabench.measure.config import named_grid
from mhabench.measure.results import COLUMNS

REF_HEADER = ["dtype", "batch_size", "sequence_length", "n_heads", "embed_dim",
              "time_native_mha_slow(\u00b5s)", "time_native_mha_fast (\u00b5s)",
              "speedup flash_mha v native_mha", "padding"]
TINY = ["--min-rounds", "2", "--max-rounds", "2", "--target-ms", "1", "--warmup-ms", "0.5",
        "--no-progress"]


def _outputs(d):
    return ["--save-path", str(d / "out.csv"), "--error-save-path", str(d / "errors.json"),
            "--json", str(d / "all.json")]


def _main(argv):
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        rc = cli.main(argv)
    return rc, out.getvalue(), err.getvalue()


def _csv_rows(path):
    with open(path, encoding="utf-8", newline="") as fh:
        return list(csv.reader(fh))


# --- one full smoke run, shared by the checks below --------------------------------------------

@pytest.fixture(scope="module")
def smoke_run(tmp_path_factory):
    d = tmp_path_factory.mktemp("smoke")
    rc, out, err = _main(["run", "--device", "cpu", "--grid", "smoke", *TINY, *_outputs(d)])
    return d, rc, out, err


def test_smoke_run_succeeds(smoke_run):
    d, rc, out, err = smoke_run
    assert rc == 0, out + err
    assert "Total errors: 0" in out
    assert sorted(os.listdir(d)) == ["all.journal.jsonl", "all.json", "errors.json", "out.csv", "out_breakeven.csv"], \
        "temp files left?"
    assert re.search(r"peak: matmul peak of cpu in float32 .* TFLOP/s", out)
    assert "extra_fp32" in out.splitlines()[-1]


def test_smoke_run_breakeven_table_and_csv(smoke_run):
    from mhabench.figures.breakeven import SUMMARY_KEYS
    d, _, out, _ = smoke_run
    assert "break-even padding per shape" in out
    rows = _csv_rows(d / "out_breakeven.csv")
    assert tuple(rows[0]) == SUMMARY_KEYS
    shapes = {(p.batch_size, p.seq_len) for p in named_grid("smoke", "fp32", "cpu")}
    assert sorted((int(r[0]), int(r[1])) for r in rows[1:]) == sorted(shapes)
    doc = json.loads((d / "all.json").read_text())
    for r in rows[1:]:
        cell = dict(zip(rows[0], r))
        speedups = [x["metrics"]["speedup"] for x in doc["results"]
                    if (x["point"]["batch_size"], x["point"]["seq_len"]) ==
                    (int(cell["batch_size"]), int(cell["seq_len"]))]
        assert cell["n_points"] == "2"
        assert float(cell["min_speedup"]) == pytest.approx(min(speedups))
        crosses = min(speedups) < 1 < max(speedups)
        assert (cell["break_even_padding"] != "") == crosses
        assert cell["break_even_padding_device"] == ""  # no kernel times on a CPU


def test_smoke_run_efficiency_figures(smoke_run):
    d = smoke_run[0]
    doc = json.loads((d / "all.json").read_text())
    peak = doc["meta"]["peak"]
    assert peak["tflops"] > 0 and peak["matmul_size"] >= 128
    for r in doc["results"]:
        m = r["metrics"]
        assert m["peak_tflops"] == peak["tflops"]
        assert 0 < m["useful_flops"] <= m["padded_flops"]
        assert m["wall_fast_tflops"] == pytest.approx(m["useful_flops"] / m["wall_fast_us"] / 1e6)
        assert m["wall_fast_peak_fraction"] == pytest.approx(m["wall_fast_tflops"] / peak["tflops"])
        assert 0 <= m["max_abs_err_fp32"] < 1e-4
        for k in ("device_fast_tflops", "device_fast_peak_fraction", "peak_mem_fast_bytes"):
            assert m[k] is None, k  # n/a on a CPU
    rows = _csv_rows(d / "out.csv")
    assert {"useful_flops", "wall_fast_tflops", "max_abs_err_fp32"} <= set(rows[0])


def test_no_peak_skips_calibration(tmp_path, monkeypatch):
    from mhabench.measure import peak

    def forbidden(*a, **k):
        raise AssertionError("calibrated despite --no-peak")
    monkeypatch.setattr(peak, "calibrate", forbidden)
    rc, out, err = _main(["run", "--device", "cpu", "--grid", "smoke", "--stride", "8", "--no-peak",
                          "--no-table", *TINY, "--json", str(tmp_path / "a.json")])
    assert rc == 0, out + err
    doc = json.loads((tmp_path / "a.json").read_text())
    assert doc["meta"]["peak"]["skipped"] is True
    assert doc["results"][0]["metrics"]["wall_fast_peak_fraction"] is None
    assert doc["results"][0]["metrics"]["wall_fast_tflops"] > 0
    assert sorted(os.listdir(tmp_path)) == ["a.journal.jsonl", "a.json", "a_breakeven.csv"]


def test_smoke_run_csv(smoke_run):
    d = smoke_run[0]
    rows = _csv_rows(d / "out.csv")
    assert rows[0][:9] == REF_HEADER
    assert rows[0] == COLUMNS
    points = named_grid("smoke", "fp32", "cpu")
    assert len(rows) == 1 + len(points)
    for p, row in zip(points, rows[1:]):
        cell = dict(zip(rows[0], row))
        assert cell["dtype"] == "torch.float32"
        assert (int(cell["batch_size"]), int(cell["sequence_length"]), int(cell["n_heads"]),
                int(cell["embed_dim"]), int(cell["beta_b"])) == \
            (p.batch_size, p.seq_len, p.num_heads, p.embed_dim, p.beta_b)
        assert cell["status"] == "ok"
        assert float(cell["time_native_mha_slow(\u00b5s)"]) > 0
        assert float(cell["time_native_mha_fast (\u00b5s)"]) > 0
        assert float(cell["speedup flash_mha v native_mha"]) > 0
        assert 0 <= float(cell["padding"]) < 1


def test_smoke_run_errors_json(smoke_run):
    assert json.loads((smoke_run[0] / "errors.json").read_text()) == {}


def test_smoke_run_full_json_has_raw_rounds_per_path(smoke_run):
    doc = json.loads((smoke_run[0] / "all.json").read_text())
    assert doc["meta"]["device"] == "cpu"
    assert doc["meta"]["mhabench_grid"] == "smoke"
    proto = doc["meta"]["protocol"]
    assert (proto["min_rounds"], proto["max_rounds"], proto["target_ms"], proto["warmup_ms"]) == \
        (2, 2, 1.0, 0.5)
    assert len(doc["results"]) == len(named_grid("smoke", "fp32", "cpu"))
    for r in doc["results"]:
        assert r["status"] == "ok"
        assert set(r["rounds_us"]) == {"fast", "slow", "slow_fair"}
        for rounds in r["rounds_us"].values():
            assert len(rounds) == 2 and all(v > 0 for v in rounds)
        assert r["point"]["dtype"] == "float32" and r["point"]["device"] == "cpu"


# --- other good runs ---------------------------------------------------------------------------

def test_named_grid_takes_stride_seed_and_block(tmp_path):
    rc, out, err = _main(["run", "--device", "cpu", "--grid", "smoke", "--stride", "4", "--seed", "7",
                          "--block-size", "4", "--no-table", *TINY, "--json", str(tmp_path / "a.json")])
    assert rc == 0, out + err
    pts = json.loads((tmp_path / "a.json").read_text())["results"]
    smoke = named_grid("smoke", "fp32", "cpu")[::4]
    assert [r["point"]["batch_size"] for r in pts] == [p.batch_size for p in smoke]
    assert {r["point"]["seed"] for r in pts} == {7}
    assert {r["point"]["block_size"] for r in pts} == {4}


def test_axis_flags_make_a_custom_grid(tmp_path):
    rc, out, err = _main(["run", "--device", "cpu", "--batch-sizes", "2", "--seq-lens", "8",
                          "--embed-dims", "16", "--heads", "2", "--betas", "1,61", "--dtype", "float32",
                          "--no-table", *TINY, "--json", str(tmp_path / "a.json")])
    assert rc == 0, out + err
    doc = json.loads((tmp_path / "a.json").read_text())
    assert doc["meta"]["mhabench_grid"] == "custom"
    got = [(r["point"]["batch_size"], r["point"]["seq_len"], r["point"]["embed_dim"],
            r["point"]["num_heads"], r["point"]["beta_b"]) for r in doc["results"]]
    assert got == [(2, 8, 16, 2, 1), (2, 8, 16, 2, 61)]


def test_a_failing_point_exits_1_and_is_counted(tmp_path, monkeypatch):
    from pathlib import Path
    first = named_grid("smoke", "fp32", "cpu")[0]
    faults = str(Path(__file__).parent / "faults")
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([faults, os.environ.get("PYTHONPATH", "")]))
    monkeypatch.setenv("MHABENCH_FAULT", f"oom@{first.label}")
    rc, out, err = _main(["run", "--device", "cpu", "--grid", "smoke", "--stride", "4", "--no-table",
                          *TINY, *_outputs(tmp_path)])
    assert rc == 1
    assert json.loads((tmp_path / "errors.json").read_text()) == {first.key: 1}
    statuses = [dict(zip(COLUMNS, row))["status"] for row in _csv_rows(tmp_path / "out.csv")[1:]]
    assert statuses == ["error", "ok"]
    assert "Total errors: 1" in out


# --- bad input: exit 2, one line naming the value, no files ----------------------------------

BAD = [
    (["--embed-dims", "32", "--heads", "3"], [r"\b3\b", "divisible"]),
    (["--heads", "3"], [r"\b3\b"]),                       # smoke grid's embed 32
    (["--dtype", "fp8"], ["fp8"]),
    (["--device", "tpu"], ["tpu"]),
    (["--batch-sizes", ""], ["--batch-sizes", "empty"]),
    (["--batch-sizes", ","], ["--batch-sizes"]),
    (["--batch-sizes", "0"], ["--batch-sizes", r"\b0\b"]),
    (["--batch-sizes", "-4"], ["--batch-sizes", "-4"]),
    (["--batch-sizes=2,-4"], ["--batch-sizes", "-4"]),
    (["--seq-lens", "8,x"], ["--seq-lens", "x"]),
    (["--betas", "0"], ["--betas"]),
    (["--min-rounds", "0"], ["min_rounds", r"\b0\b"]),
    (["--min-rounds", "5", "--max-rounds", "4"], ["max_rounds", r"\b4\b"]),
    (["--target-ms", "0"], ["target_ms"]),
    (["--warmup-ms", "-1"], ["warmup_ms", "-1"]),
    (["--device-calls", "-1"], ["device_calls", "-1"]),
    (["--stride", "0"], ["stride", r"\b0\b"]),
    (["--block-size", "0"], ["block", r"\b0\b"]),
    (["--grid", "bogus"], ["bogus"]),
]


def _assert_rejected(tmp_path, extra, needles):
    argv = ["run", "--device", "cpu", *TINY, *_outputs(tmp_path)]
    # later flags win: put the bad ones last so they override the defaults above
    rc, out, err = _main(argv + extra)
    assert rc == 2, out + err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    for needle in needles:
        assert re.search(needle, lines[0]), (needle, lines[0])
    assert os.listdir(tmp_path) == [], "bad input must not create output files"


@pytest.mark.parametrize("extra,needles", BAD, ids=[" ".join(e) for e, _ in BAD])
def test_bad_input_exits_2(tmp_path, extra, needles):
    _assert_rejected(tmp_path, extra, needles)


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
@pytest.mark.parametrize("dev", ["cuda", "cuda:0"])
def test_cuda_without_cuda_exits_2(tmp_path, dev):
    _assert_rejected(tmp_path, ["--device", dev], [re.escape(dev), "CUDA"])


@pytest.mark.parametrize("extra", [["--min-rounds", "abc"], ["--stride", "1.5"], ["--bogus-flag"],
                                   ["--rounds", "3"]])
def test_argparse_errors_exit_2_without_files(tmp_path, extra):
    with pytest.raises(SystemExit) as ei:
        _main(["run", "--device", "cpu", *TINY, *_outputs(tmp_path), *extra])
    assert ei.value.code == 2
    assert os.listdir(tmp_path) == []


def test_no_subcommand_exits_2():
    with pytest.raises(SystemExit) as ei:
        _main([])
    assert ei.value.code == 2


@pytest.fixture
def no_measuring(monkeypatch):
    """Replace the sweep so that a wrongly accepted input costs nothing."""
    from mhabench.run import supervise
    monkeypatch.setattr(supervise, "supervise", lambda *a, **kw: None)


def test_unknown_grid_with_axis_flags_exits_2(tmp_path, no_measuring):
    _assert_rejected(tmp_path, ["--grid", "bogus", "--batch-sizes", "2"], ["bogus"])


def test_negative_seed_exits_2(tmp_path, no_measuring):
    _assert_rejected(tmp_path, ["--seed", "-1"], ["-1"])


def test_block_larger_than_seq_len_exits_2(tmp_path, no_measuring):
    _assert_rejected(tmp_path, ["--grid", "smoke", "--block-size", "32"], ["32"])


# --- as a real process ---------------------------------------------------------------------------

def _run_process(args, cwd):
    env = dict(os.environ, PYTHONWARNINGS="ignore")
    return subprocess.run([sys.executable, "-m", "mhabench", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=120)


def test_python_dash_m_run_writes_the_files(tmp_path):
    proc = _run_process(["run", "--device", "cpu", "--grid", "smoke", "--stride", "4", *TINY,
                         "--save-path", "r.csv", "--error-save-path", "e.json", "--json", "a.json"],
                        tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    rows = _csv_rows(tmp_path / "r.csv")
    assert rows[0][:9] == REF_HEADER
    assert len(rows) == 1 + len(named_grid("smoke", "fp32", "cpu")[::4])
    assert json.loads((tmp_path / "e.json").read_text()) == {}
    doc = json.loads((tmp_path / "a.json").read_text())
    assert all(set(r["rounds_us"]) == {"fast", "slow", "slow_fair"} for r in doc["results"])
    assert sorted(os.listdir(tmp_path)) == ["a.journal.jsonl", "a.json", "e.json", "r.csv",
                                            "r_breakeven.csv"]


def test_python_dash_m_bad_input_exits_2(tmp_path):
    proc = _run_process(["run", "--device", "cpu", "--dtype", "fp8", *TINY,
                         "--save-path", "r.csv"], tmp_path)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "fp8" in lines[0], proc.stderr
    assert os.listdir(tmp_path) == []


# --- the printed table, the host's state, side files ---------------------------------------------

def _table_lines(out):
    return [ln for ln in out.splitlines() if ln.startswith(("+", "|"))]


def test_smoke_table_fits_160_columns_and_keeps_every_cpu_figure(smoke_run):
    d, rc, out, err = smoke_run
    first = _table_lines(out)[: len(named_grid("smoke", "fp32", "cpu")) + 4]
    assert max(len(ln) for ln in first) <= 160
    header = [c.strip() for c in first[1].strip("|").split("|")]
    for col in ("slow \u00b5s\u2193", "fast \u00b5s\u2193", "speedup\u2191", "noise\u2193",
                "err\u2193", "fp32 err\u2193", "TFLOP/s\u2191", "peak\u2191", "pad"):
        assert col in header, (col, header)
    assert not [c for c in header if c.startswith("dev")]  # no kernel time on a CPU
    rows = [[c.strip() for c in ln.strip("|").split("|")] for ln in first[3:-1]]
    assert {r[0] for r in rows} == {"float32"}
    assert all(all(cells) for cells in rows)  # a column no row fills was dropped
    assert "lower is better" in out and "ratio of the medians" in out  # the footer
    assert "{}" not in out.splitlines()


def test_run_table_drops_only_columns_no_row_has():
    from mhabench.report.run_table import drop_empty
    headers, rows = drop_empty(["a", "b", "c"], [["1", "", ""], ["", "", "3"]])
    assert headers == ["a", "c"] and rows == [["1", ""], ["", "3"]]
    assert drop_empty(["a"], []) == (["a"], [])


def test_smoke_run_records_threads_cores_and_load(smoke_run):
    d, rc, out, err = smoke_run
    host = json.loads((d / "all.json").read_text())["meta"]["host_setup"]
    assert host["threads"] == 1  # the CPU default
    assert host["affinity"] == sorted(os.sched_getaffinity(0)) and len(host["load_avg"]) == 3
    assert "1 thread(s)" in out


def test_smoke_run_names_every_file_it_wrote(smoke_run):
    d, rc, out, err = smoke_run
    (line,) = [ln for ln in out.splitlines() if ln.startswith("wrote ")]
    for name in ("out.csv", "out_breakeven.csv", "errors.json", "all.json"):
        assert str(d / name) in line


def test_threads_option_is_recorded(tmp_path):
    one = named_grid("smoke", "fp32", "cpu")[0]
    axes = ["--batch-sizes", str(one.batch_size), "--seq-lens", str(one.seq_len),
            "--embed-dims", str(one.embed_dim), "--heads", str(one.num_heads),
            "--betas", str(one.beta_b)]
    before = torch.get_num_threads()
    try:
        rc, out, err = _main(["run", "--device", "cpu", *axes, *TINY, "--threads", "2",
                              "--no-peak", "--no-table", "--json", str(tmp_path / "a.json")])
    finally:
        torch.set_num_threads(before)
    assert rc == 0, out + err
    assert json.loads((tmp_path / "a.json").read_text())["meta"]["host_setup"]["threads"] == 2


@pytest.mark.parametrize("argv, needle", [(["--threads", "0"], "--threads must be >= 1"),
                                          (["--threads", "2", "--pin-cpu", "0"], "--threads 2 needs"),
                                          (["--pin-cpu", "x"], "--pin-cpu")])
def test_bad_threads_or_cores_exit_2_before_writing(tmp_path, argv, needle):
    before = torch.get_num_threads(), os.sched_getaffinity(0)
    rc, out, err = _main(["run", "--device", "cpu", *TINY, *argv, "--json", str(tmp_path / "a.json")])
    assert rc == 2 and needle in err and err.startswith("mhabench: error:")
    assert not (tmp_path / "a.json").exists()
    assert (torch.get_num_threads(), os.sched_getaffinity(0)) == before


def test_top_level_help_lists_every_command_in_plain_text():
    help_text = cli.build_parser().format_help()
    for command in ("run", "plot", "breakeven", "plot-asv", "track", "gate", "view-check", "serve"):
        assert re.search(rf"^\s+{re.escape(command)}\b", help_text, re.M), command
    assert "`" not in help_text


def test_the_warmup_is_shared_unless_asked_per_path():
    parse = cli.build_parser().parse_args
    assert cli.resolve_protocol(parse(["run"])).warmup_shared is True
    proto = cli.resolve_protocol(parse(["run", "--warmup-per-path", "--min-rounds", "15"]))
    assert proto.warmup_shared is False and proto.min_rounds == 15
