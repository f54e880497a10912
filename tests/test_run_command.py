"""``mhabench run``: in-process through mhabench.commands.main, and as ``python -m mhabench run``;
and the command line's size (options per command).

Runs use ``--preset check`` (two rounds of about a millisecond, no matmul peak): they check the
plumbing, not the figures, so nothing below reads a measured value beyond its sign and type.
"""
from __future__ import annotations

import contextlib
import csv
import io
import itertools
import json
import os
import re
import subprocess
import sys
import tempfile
from dataclasses import asdict
from pathlib import Path

import pytest
import torch

from mhabench import catalogue as cat
from mhabench import commands
from mhabench.measure.config import named_grid, parse_grid
from mhabench.measure.protocol import PRESETS, for_device

REF_HEADER = ["dtype", "batch_size", "sequence_length", "n_heads", "embed_dim",
              "time_native_mha_slow(\u00b5s)", "time_native_mha_fast (\u00b5s)",
              "speedup flash_mha v native_mha", "padding"]
CHECK = ["--preset", "check"]
SMOKE = named_grid("smoke", "fp32", "cpu")
WIDTH = 160


def _outputs(d):
    return ["--save-path", str(d / "out.csv"), "--error-save-path", str(d / "errors.json"),
            "--json", str(d / "all.json")]


def _main(argv):
    """(exit status, stdout, stderr) of ``mhabench ARGV``; argparse's own exit is a status too."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            rc = commands.main(argv)
        except SystemExit as exc:
            rc = exc.code
    return rc, out.getvalue(), err.getvalue()


def _csv_rows(path):
    with open(path, encoding="utf-8", newline="") as fh:
        return list(csv.reader(fh))


def _doc(path):
    return json.loads(Path(path).read_text())


def _labels(doc) -> list[str]:
    return [r["label"] for r in doc["results"]]


# --- one smoke run, shared by the checks below ---------------------------------------------------
@pytest.fixture(scope="module")
def smoke_run(tmp_path_factory):
    """``mhabench run --grid smoke --preset check`` with every output, progress bar and all."""
    d = tmp_path_factory.mktemp("smoke")
    rc, out, err = _main(["run", "--grid", "smoke", *CHECK, *_outputs(d)])
    return d, rc, out, err


@pytest.mark.slow
def test_smoke_run_succeeds_and_writes_exactly_its_files(smoke_run):
    d, rc, out, err = smoke_run
    assert rc == 0, out + err
    assert "Total errors: 0" in out
    assert sorted(os.listdir(d)) == ["all.journal.jsonl", "all.json", "errors.json", "out.csv",
                                     "out_breakeven.csv"], "temp files left?"
    assert re.fullmatch(rf"{len(SMOKE)} points in [\d.]+ s of measuring.*; [\d.]+ s in all",
                        out.splitlines()[-1]), out.splitlines()[-1]


@pytest.mark.slow
def test_every_line_a_run_prints_fits_160_columns(smoke_run):
    """stdout and stderr, the progress bar's redraws included (each ``\\r`` starts a line)."""
    d, rc, out, err = smoke_run
    lines = (out + err).splitlines()  # splits at \r too
    assert len(lines) > len(SMOKE)
    too_long = [ln for ln in lines if len(ln) > WIDTH]
    assert not too_long, too_long[:3]


@pytest.mark.slow
def test_smoke_run_header_says_what_is_measured_and_what_is_not(smoke_run):
    d, rc, out, err = smoke_run
    first = out.splitlines()[0]
    assert first.startswith("device: cpu") and "grid smoke: 8 points" in first
    assert "float32" in first and "1 thread(s)" in first and "preset check" in first
    na = [ln for ln in out.splitlines() if ln.startswith("n/a here")]
    assert len(na) == 2 and cat.NO_DEVICE in na[0] and "instr_*" in na[1]
    assert f"journal: {d / 'all.journal.jsonl'}" in out


@pytest.mark.slow
def test_smoke_run_csv_has_the_catalogues_header_reference_columns_first(smoke_run):
    d = smoke_run[0]
    rows = _csv_rows(d / "out.csv")
    assert rows[0] == [cat.csv_header(c) for c in cat.csv_columns()]
    assert rows[0][:9] == REF_HEADER
    assert len(rows) == 1 + len(SMOKE)
    for p, row in zip(SMOKE, rows[1:]):
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
        assert cell["device_fast(\u00b5s)"] == ""  # n/a on a CPU: an empty cell


@pytest.mark.slow
def test_smoke_run_errors_json(smoke_run):
    assert _doc(smoke_run[0] / "errors.json") == {}


@pytest.mark.slow
def test_smoke_run_full_json_has_raw_rounds_per_path(smoke_run):
    doc = _doc(smoke_run[0] / "all.json")
    meta = doc["meta"]
    assert meta["device"] == "cpu" and meta["mhabench_grid"] == "smoke"
    assert meta["protocol"] == asdict(for_device(PRESETS["check"], "cpu")), "as the CPU ran it"
    assert meta["n/a"] and all(k in cat.BY_KEY for k in meta["n/a"])
    assert _labels(doc) == [p.label for p in SMOKE]
    for r in doc["results"]:
        assert r["status"] == "ok"
        assert set(r["rounds_us"]) == set(cat.PATHS)
        for rounds in r["rounds_us"].values():
            assert len(rounds) == PRESETS["check"].max_rounds and all(v > 0 for v in rounds)
        assert r["point"]["dtype"] == "float32" and r["point"]["device"] == "cpu"
        assert set(r["metrics"]) == set(cat.BY_KEY)


@pytest.mark.slow
def test_smoke_run_efficiency_figures(smoke_run):
    """The check preset skips the matmul peak: the rates are there, their share of it is not."""
    doc = _doc(smoke_run[0] / "all.json")
    assert doc["meta"]["peak"]["skipped"] is True
    for r in doc["results"]:
        m = r["metrics"]
        assert m["peak_tflops"] is None and m["wall_fast_peak_fraction"] is None
        assert 0 < m["useful_flops"] <= m["padded_flops"]
        assert m["wall_fast_tflops"] == pytest.approx(m["useful_flops"] / m["wall_fast_us"] / 1e6)
        assert 0 <= m["max_abs_err_fp32"] < 1e-4
        for k in ("device_fast_tflops", "device_fast_peak_fraction", "peak_mem_fast_bytes"):
            assert m[k] is None, k  # n/a on a CPU


@pytest.mark.slow
def test_smoke_run_breakeven_table_and_csv(smoke_run):
    from mhabench.figures.breakeven import SUMMARY_KEYS
    d, _, out, _ = smoke_run
    assert "break-even padding per shape" in out
    rows = _csv_rows(d / "out_breakeven.csv")
    assert tuple(rows[0]) == SUMMARY_KEYS
    shapes = {(p.batch_size, p.seq_len) for p in SMOKE}
    assert sorted((int(r[0]), int(r[1])) for r in rows[1:]) == sorted(shapes)
    doc = _doc(d / "all.json")
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


def _table_lines(out):
    return [ln for ln in out.splitlines() if ln.startswith(("+", "|"))]


@pytest.mark.slow
def test_smoke_table_keeps_every_cpu_figure_and_no_device_one(smoke_run):
    d, rc, out, err = smoke_run
    first = _table_lines(out)[: len(SMOKE) + 4]
    header = [c.strip() for c in first[1].strip("|").split("|")]
    # the catalogue's columns, but those a CPU cannot fill and the share of the matmul peak,
    # which the check preset does not calibrate
    want = [f.table for f in cat.table_figures()
            if f.on != "cuda" and not f.key.endswith("peak_fraction")]
    assert header == ["dtype", "B", "S", "E", "H", "b", "pad", *want, "status"]
    rows = [[c.strip() for c in ln.strip("|").split("|")] for ln in first[3:-1]]
    assert len(rows) == len(SMOKE) and {r[0] for r in rows} == {"f32"}
    assert all(all(cells) for cells in rows)  # a column no row fills was dropped
    assert "lower is better" in out and "ratio of the medians" in out  # the footer


@pytest.mark.slow
def test_smoke_run_records_threads_cores_and_load(smoke_run):
    d, rc, out, err = smoke_run
    meta = _doc(d / "all.json")["meta"]
    host = meta["host_setup"]
    assert host["threads"] == meta["threads"] == 1  # the CPU default
    assert host["affinity"] == sorted(os.sched_getaffinity(0)) and len(host["load_avg"]) == 3


@pytest.mark.slow
def test_smoke_run_names_every_file_it_wrote(smoke_run):
    d, rc, out, err = smoke_run
    lines = out.splitlines()
    (at,) = [i for i, ln in enumerate(lines) if ln.startswith("wrote ")]
    block = [lines[at]] + [ln for ln in itertools.takewhile(lambda ln: ln.startswith("  "),
                                                            lines[at + 1:])]
    named = " ".join(ln.strip() for ln in block)[len("wrote "):].split(", ")
    assert named == [str(d / n) for n in ("out.csv", "out_breakeven.csv", "errors.json",
                                          "all.json")]


def test_run_table_drops_only_columns_no_row_has():
    from mhabench.report.run_table import drop_empty
    headers, rows = drop_empty(["a", "b", "c"], [["1", "", ""], ["", "", "3"]])
    assert headers == ["a", "c"] and rows == [["1", ""], ["", "3"]]
    assert drop_empty(["a"], []) == (["a"], [])


# --- other good runs -----------------------------------------------------------------------------
def _run_json(tmp_path, *args) -> dict:
    rc, out, err = _main(["run", *CHECK, "-q", *args, "--json", str(tmp_path / "a.json")])
    assert rc == 0, out + err
    return _doc(tmp_path / "a.json")


@pytest.mark.slow
def test_grid_axes_make_a_custom_grid(tmp_path):
    doc = _run_json(tmp_path, "--grid", "smoke;batch=2;seq=8")
    assert doc["meta"]["mhabench_grid"] == "smoke;batch=2;seq=8"
    got = [(r["point"]["batch_size"], r["point"]["seq_len"], r["point"]["embed_dim"],
            r["point"]["num_heads"], r["point"]["beta_b"]) for r in doc["results"]]
    assert got == [(2, 8, 32, 4, 1), (2, 8, 32, 4, 61)]  # the rest from the smoke axes


@pytest.mark.slow
def test_a_stride_seed_and_block_are_grid_syntax(tmp_path):
    doc = _run_json(tmp_path, "--grid", "smoke;seed=7;block=4/2")
    want = SMOKE[::2]
    assert [(r["point"]["batch_size"], r["point"]["seq_len"], r["point"]["beta_b"])
            for r in doc["results"]] == [(p.batch_size, p.seq_len, p.beta_b) for p in want]
    assert {r["point"]["seed"] for r in doc["results"]} == {7}
    assert {r["point"]["block_size"] for r in doc["results"]} == {4}


@pytest.mark.slow
def test_points_measures_just_those(tmp_path):
    picked = [SMOKE[6].label, SMOKE[1].label]
    doc = _run_json(tmp_path, "--points", ",".join(picked))
    assert sorted(_labels(doc)) == sorted(picked)


@pytest.mark.slow
def test_threads_option_is_recorded(tmp_path):
    before = torch.get_num_threads()
    try:
        rc, out, err = _main(["run", "--points", SMOKE[0].label, *CHECK, "--threads", "2", "-q",
                              "--json", str(tmp_path / "a.json")])
    finally:
        torch.set_num_threads(before)
    assert rc == 0, out + err
    meta = _doc(tmp_path / "a.json")["meta"]
    assert meta["host_setup"]["threads"] == meta["threads"] == 2
    assert "2 thread(s)" in out.splitlines()[0]


@pytest.mark.slow
def test_a_run_counting_instructions_does_not_call_them_na(tmp_path, monkeypatch):
    """The header and the JSON's n/a reasons follow --instructions (callgrind itself, minutes
    a point, is left out: tests/test_instructions.py runs it)."""
    from mhabench.run import execute
    monkeypatch.setattr(execute, "_instructions", lambda *a, **k: None)
    rc, out, err = _main(["run", "--points", SMOKE[0].label, *CHECK, "-q", "--instructions",
                          "--json", str(tmp_path / "a.json")])
    assert rc == 0, out + err
    assert "instr_" not in out and cat.NOT_COUNTED not in out
    assert not [k for k in _doc(tmp_path / "a.json")["meta"]["n/a"] if k.startswith("instr_")]
    assert _doc(tmp_path / "a.json")["meta"]["instructions"] is True


#: heads=3: the fast path refuses an odd head count, so that point fails (no_fastpath).
FAILING = "smoke;batch=2;seq=8;embed=12;heads=3,4;b=1"


@pytest.mark.slow
def test_a_failing_point_exits_1_and_is_counted(tmp_path):
    rc, out, err = _main(["run", "--grid", FAILING, *CHECK, "-q", *_outputs(tmp_path)])
    assert rc == 1, out + err
    bad = parse_grid(FAILING, "float32", "cpu").points[0]
    assert bad.num_heads == 3
    assert _doc(tmp_path / "errors.json") == {bad.key: 1}
    rows = _csv_rows(tmp_path / "out.csv")
    statuses = [dict(zip(rows[0], row))["status"] for row in rows[1:]]
    assert statuses == ["no_fastpath", "ok"]
    assert "Total errors: 1" in out
    assert f"{bad.label}: no_fastpath" in out
    assert _doc(tmp_path / "all.json")["errors"] == {bad.key: 1}


@pytest.mark.slow
def test_a_run_without_outputs_leaves_no_journal_behind(tmp_path, monkeypatch):
    """It journals in a temporary folder of its own and removes it once it has ended well."""
    tmp, cache = tmp_path / "tmp", tmp_path / "cache"
    tmp.mkdir()
    monkeypatch.setenv("MHABENCH_CACHE_DIR", str(cache))
    monkeypatch.setattr(tempfile, "tempdir", str(tmp))  # where /tmp would be
    rc, out, err = _main(["run", "--points", SMOKE[0].label, *CHECK, "-q"])
    assert rc == 0, out + err
    (line,) = [ln for ln in out.splitlines() if ln.startswith("journal: ")]
    journal = Path(line.split()[1])
    assert journal.is_relative_to(tmp), journal  # it did journal, in the temporary folder
    assert not journal.exists() and list(tmp.iterdir()) == []
    left = [p for p in cache.rglob("*") if "journal" in p.name or p.suffix == ".jsonl"]
    assert left == []


# --- bad input: exit 2, one line naming the value, no files --------------------------------------
BAD = [
    (["--grid", "smoke;embed=32;heads=3"], ["divisible"]),
    (["--dtype", "fp8"], ["fp8"]),
    (["--device", "tpu"], ["tpu"]),
    (["--grid", "smoke;batch="], ["batch", "empty"]),
    (["--grid", "smoke;batch=0"], ["batch", r"\b0\b"]),
    (["--grid", "smoke;batch=-4"], ["batch", "-4"]),
    (["--grid=smoke;batch=2,-4"], ["batch", "-4"]),
    (["--grid", "smoke;seq=8,x"], ["seq", "'x'"]),
    (["--grid", "smoke;b=0"], [r"\bb\b"]),
    (["--grid", "smoke/0"], ["stride", r"\b0\b"]),
    (["--grid", "smoke/x"], ["stride", "'x'"]),
    (["--grid", "smoke;block=0"], ["block", r"\b0\b"]),
    (["--grid", "smoke;block=32"], ["block 32", "seq_len"]),
    (["--grid", "smoke;seed=-1"], ["seed", "-1"]),
    (["--grid", "smoke;width=3"], ["width=3"]),
    (["--grid", "smoke;batch=2;batch=4"], ["batch", "twice"]),
    (["--grid", "quick;batch=2"], ["quick"]),
    (["--grid", "bogus"], ["bogus"]),
    (["--threads", "0"], ["--threads", r"\b0\b"]),
    (["--threads", "x"], ["--threads", "'x'"]),
    (["--point-timeout", "0"], ["--point-timeout"]),
    (["--points", "nope"], ["--points", "'nope'"]),
    (["--points", ","], ["--points", "empty"]),
    (["--points", SMOKE[0].label.replace("float32", "float16")], ["--points", "float32"]),
    (["--retry-failed"], ["--retry-failed", "--resume"]),
    (["--resume", "missing.jsonl"], ["missing.jsonl", "no such journal"]),
    (["--instructions", "--device", "cuda"], ["--instructions", "CPU"]),
]


def _assert_rejected(tmp_path, extra, needles):
    before = torch.get_num_threads(), os.sched_getaffinity(0)
    rc, out, err = _main(["run", *CHECK, *_outputs(tmp_path), *extra])
    assert rc == 2, out + err
    assert out == ""
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("mhabench: error:"), err
    for needle in needles:
        assert re.search(needle, lines[0]), (needle, lines[0])
    assert os.listdir(tmp_path) == [], "bad input must not create output files"
    assert (torch.get_num_threads(), os.sched_getaffinity(0)) == before


@pytest.mark.parametrize("extra,needles", BAD, ids=[" ".join(e) for e, _ in BAD])
def test_bad_input_exits_2(tmp_path, extra, needles):
    _assert_rejected(tmp_path, extra, needles)


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
@pytest.mark.parametrize("dev", ["cuda", "cuda:0"])
def test_cuda_without_cuda_exits_2(tmp_path, dev):
    _assert_rejected(tmp_path, ["--device", dev], [re.escape(repr(dev)), "CUDA"])


def test_the_same_file_for_two_outputs_exits_2(tmp_path):
    rc, out, err = _main(["run", *CHECK, "--save-path", str(tmp_path / "x"),
                          "--json", str(tmp_path / "x")])
    assert rc == 2 and err.count("\n") == 1 and str(tmp_path / "x") in err
    assert os.listdir(tmp_path) == []


REMOVED = [["--batch-sizes", "2"], ["--stride", "2"], ["--seed", "1"], ["--block-size", "4"],
           ["--min-rounds", "2"], ["--target-ms", "1"], ["--mode", "windows"],
           ["--device-calls", "0"], ["--no-peak"], ["--no-table"], ["--no-progress"],
           ["--pin-cpu", "0"], ["--journal", "j"], ["--breakeven-path", "b"]]


@pytest.mark.parametrize("extra", [["--preset", "nope"], ["--point-timeout", "abc"],
                                   ["--bogus-flag"], *REMOVED], ids=lambda e: " ".join(e))
def test_argparse_errors_exit_2_without_files(tmp_path, extra):
    rc, out, err = _main(["run", *CHECK, *_outputs(tmp_path), *extra])
    assert rc == 2 and out == ""
    assert extra[0] in err and err.startswith("mhabench: error:") and err.count("\n") == 1, err
    assert os.listdir(tmp_path) == []


def test_no_subcommand_exits_2():
    rc, out, err = _main([])
    assert rc == 2 and out == "" and err.count("\n") == 1


# --- as a real process ---------------------------------------------------------------------------
def _run_process(args, cwd):
    env = dict(os.environ, PYTHONWARNINGS="ignore")
    return subprocess.run([sys.executable, "-m", "mhabench", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=300)


@pytest.mark.slow
def test_python_dash_m_run_writes_the_files(tmp_path):
    proc = _run_process(["run", "--grid", "smoke/4", *CHECK, "--save-path", "r.csv",
                         "--error-save-path", "e.json", "--json", "a.json"], tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    rows = _csv_rows(tmp_path / "r.csv")
    assert rows[0][:9] == REF_HEADER
    assert len(rows) == 1 + len(SMOKE[::4])
    assert _doc(tmp_path / "e.json") == {}
    doc = _doc(tmp_path / "a.json")
    assert all(set(r["rounds_us"]) == set(cat.PATHS) for r in doc["results"])
    assert sorted(os.listdir(tmp_path)) == ["a.journal.jsonl", "a.json", "e.json", "r.csv",
                                            "r_breakeven.csv"]


def test_python_dash_m_bad_input_exits_2(tmp_path):
    proc = _run_process(["run", "--dtype", "fp8", *CHECK, "--save-path", "r.csv"], tmp_path)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "fp8" in lines[0], proc.stderr
    assert proc.stdout == "" and os.listdir(tmp_path) == []


# --- the command line's size ---------------------------------------------------------------------
#: The most options all commands together may have (each ``-x/--xx`` line of ``--help`` once).
MAX_OPTIONS = 55


def _subcommands() -> list[str]:
    import argparse
    parser = commands.build_parser()
    (sub,) = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    return list(sub.choices)


def _help(argv) -> str:
    rc, out, err = _main([*argv, "--help"])
    assert rc == 0 and err == ""
    return out


def _option_lines(text: str) -> list[str]:
    """The option lines of argparse's help: ``  -h, --help ...``, ``  --grid GRID ...``
    (wrapped help text is indented further)."""
    return [ln for ln in text.splitlines() if re.match(r"^  -{1,2}\w", ln)]


def test_top_level_help_lists_every_command_in_plain_text():
    text = _help([])
    names = _subcommands()
    assert names == ["run", "plot", "breakeven", "track", "gate", "confirm", "serve"]
    for command in names:
        assert re.search(rf"^\s+{re.escape(command)}\b", text, re.M), command
    assert "`" not in text


def test_the_commands_have_at_most_55_options_in_all():
    per = {name: _option_lines(_help([name])) for name in _subcommands()}
    for name, lines in per.items():
        assert lines and lines[0].startswith("  -h, --help"), (name, lines[:1])
    run = " ".join(per["run"])
    for flag in ("--grid", "--points", "--preset", "--threads", "-q, --quiet", "--resume"):
        assert flag in run, flag
    total = sum(map(len, per.values()))
    assert total <= MAX_OPTIONS, {k: len(v) for k, v in per.items()}


def test_a_note_during_the_run_starts_its_own_line_below_the_bar(monkeypatch):
    """The peak line comes after the bar is drawn; on one terminal it must not run on from it."""
    from tqdm import tqdm
    from mhabench.commands.run import Printer
    term = io.StringIO()
    monkeypatch.setattr(sys, "stdout", term)
    monkeypatch.setattr(sys, "stderr", term)
    printer = Printer(quiet=False)
    printer.bar = tqdm(total=4, file=sys.stderr, leave=False)
    printer.bar.update(1)
    printer.note("peak: 989 TFLOP/s matmul (cached)")
    printer.close()
    text = term.getvalue()
    at = text.index("peak: 989")
    assert text[at - 1] in "\r\n", repr(text[max(0, at - 40):at + 10])
