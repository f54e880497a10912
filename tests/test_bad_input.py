"""Every command, given bad input: exit 2, one line on stderr naming what is wrong, nothing on
stdout, and the disk exactly as it was (no file written, moved or touched).

Each case builds its files in a fresh folder (``setup``), runs ``mhabench ARGS`` in-process (a
traceback would fail the test), and compares the folder before and after.
"""
from __future__ import annotations

import contextlib
import io
import json
import os
from dataclasses import asdict
from pathlib import Path

import pytest

from mhabench import cli
from mhabench.measure.config import named_grid
from mhabench.measure.protocol import Protocol

TINY = ["--min-rounds", "2", "--max-rounds", "2", "--target-ms", "1", "--warmup-ms", "0.5",
        "--no-progress", "--no-peak", "--no-table"]
RUN = ["run", "--device", "cpu", "--grid", "smoke", *TINY]
TINY_PROTO = Protocol(min_rounds=2, max_rounds=2, target_ms=1.0, warmup_ms=0.5)
COMMIT = "a" * 40
BENCH = "speedup.FastOverSlow.track_wall"


# --- files the cases start from ------------------------------------------------------------------
def results_doc(**metrics) -> dict:
    point = {"batch_size": 2, "seq_len": 8, "embed_dim": 32, "num_heads": 4, "beta_b": 1,
             "dtype": "float32", "device": "cpu"}
    rows = []
    for b, pad, sp in ((1, 0.1, 1.2), (61, 0.5, 0.8)):
        rows.append({"point": {**point, "beta_b": b},
                     "metrics": {"padding": pad, "speedup": sp, **metrics}})
    return {"meta": {}, "errors": {}, "results": rows}


def asv_result(**change) -> dict:
    doc = {"commit_hash": COMMIT, "env_name": "env", "date": 1, "params": {"machine": "m"},
           "result_columns": ["result", "params"],
           "results": {BENCH: [[1.0, 0.9], [["2"], ["8", "16"]]]}}
    doc.update(change)
    return doc


def journal_header(**change) -> dict:
    from mhabench.run.journal import VERSION, fingerprint
    points = named_grid("smoke", "fp32", "cpu")
    head = {"journal": VERSION, **fingerprint(points, asdict(TINY_PROTO), "float32", True),
            "meta": {}}
    head.update(change)
    return head


def write(d: Path, name: str, content) -> Path:
    p = d / name
    p.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(content, (dict, list)):
        content = json.dumps(content)
    p.write_text(content)
    return p


def journal(d, name="j.jsonl", **change):
    write(d, name, json.dumps(journal_header(**change)) + "\n")


def asv_dir(d, result=None, name="results/m/aaaaaaaa-env.json"):
    write(d, name, asv_result() if result is None else result)


def builds(d, content):
    write(d, "t/builds.json", content)


def html(d, content):
    write(d, "html/index.json", content)


def nothing(d):
    pass


# --- the table: (id, argv after "mhabench", setup(d), needle in the one line) --------------------
CASES = [
    # run: protocol bounds
    ("run-warmup-inf", RUN + ["--warmup-ms", "inf"], nothing, "warmup_ms"),
    ("run-warmup-nan", RUN + ["--warmup-ms", "nan"], nothing, "warmup_ms"),
    ("run-warmup-huge", RUN + ["--warmup-ms", "1e9"], nothing, "warmup_ms"),
    ("run-target-inf", RUN + ["--target-ms", "inf"], nothing, "target_ms"),
    ("run-target-huge", RUN + ["--target-ms", "1e12"], nothing, "target_ms"),
    ("run-target-zero", RUN + ["--target-ms", "0"], nothing, "target_ms"),
    ("run-min-rounds-0", RUN + ["--min-rounds", "0"], nothing, "min_rounds"),
    ("run-max-rounds-absurd", RUN + ["--max-rounds", "1000000000"], nothing, "max_rounds"),
    ("run-max-below-min", RUN + ["--min-rounds", "5", "--max-rounds", "3"], nothing, "max_rounds"),
    ("run-device-calls-neg", RUN + ["--device-calls", "-1"], nothing, "device_calls"),
    ("run-device-calls-absurd", RUN + ["--device-calls", "1000000"], nothing, "device_calls"),
    ("run-timeout-0", RUN + ["--point-timeout", "0"], nothing, "--point-timeout"),
    ("run-timeout-inf", RUN + ["--point-timeout", "inf"], nothing, "--point-timeout"),
    ("run-timeout-neg", RUN + ["--point-timeout", "-5"], nothing, "--point-timeout"),
    ("run-timeout-nan", RUN + ["--point-timeout", "nan"], nothing, "--point-timeout"),
    # run: memory and host
    ("run-batch-absurd", RUN + ["--batch-sizes", "1000000000"], nothing, "memory"),
    ("run-seq-absurd", RUN + ["--seq-lens", "10000000"], nothing, "memory"),
    ("run-pin-cpu-absent", RUN + ["--pin-cpu", "100000"], nothing, "100000"),
    ("run-stride-0", RUN + ["--stride", "0"], nothing, "--stride"),
    # run: outputs
    ("run-csv-folder", RUN + ["--save-path", "{d}/sub"], lambda d: (d / "sub").mkdir(), "folder"),
    ("run-json-folder", RUN + ["--json", "{d}/sub"], lambda d: (d / "sub").mkdir(), "folder"),
    ("run-errors-folder", RUN + ["--error-save-path", "{d}/sub"], lambda d: (d / "sub").mkdir(),
     "folder"),
    ("run-breakeven-folder", RUN + ["--json", "{d}/a.json", "--breakeven-path", "{d}/sub"],
     lambda d: (d / "sub").mkdir(), "--breakeven-path"),
    ("run-json-under-file", RUN + ["--json", "{d}/f.txt/a.json"],
     lambda d: write(d, "f.txt", "x"), "not a folder"),
    ("run-csv-under-file", RUN + ["--save-path", "{d}/f.txt/deep/a.csv"],
     lambda d: write(d, "f.txt", "x"), "not a folder"),
    ("run-same-csv-json", RUN + ["--save-path", "{d}/x", "--json", "{d}/x"], nothing, "same file"),
    ("run-same-csv-errors", RUN + ["--save-path", "{d}/x", "--error-save-path", "{d}/x"], nothing,
     "same file"),
    ("run-same-json-errors", RUN + ["--json", "{d}/x", "--error-save-path", "{d}/./x"], nothing,
     "same file"),
    ("run-same-breakeven-csv", RUN + ["--save-path", "{d}/x", "--breakeven-path", "{d}/x"],
     nothing, "same file"),
    ("run-journal-folder", RUN + ["--journal", "{d}/sub"], lambda d: (d / "sub").mkdir(),
     "folder"),
    ("run-journal-is-json", RUN + ["--json", "{d}/x", "--journal", "{d}/x"], nothing,
     "journal itself"),
    # run: --resume
    ("resume-missing", RUN + ["--resume", "{d}/nope.jsonl"], nothing, "nope.jsonl"),
    ("resume-folder", RUN + ["--resume", "{d}/sub"], lambda d: (d / "sub").mkdir(), "sub"),
    ("resume-empty", RUN + ["--resume", "{d}/j.jsonl"], lambda d: write(d, "j.jsonl", ""),
     "j.jsonl"),
    ("resume-truncated-header", RUN + ["--resume", "{d}/j.jsonl"],
     lambda d: write(d, "j.jsonl", json.dumps(journal_header())[:40]), "j.jsonl"),
    ("resume-not-json", RUN + ["--resume", "{d}/j.jsonl"],
     lambda d: write(d, "j.jsonl", "hello\n"), "not JSON"),
    ("resume-wrong-schema", RUN + ["--resume", "{d}/j.jsonl"],
     lambda d: write(d, "j.jsonl", '{"a": 1}\n'), "not an mhabench journal"),
    ("resume-header-list", RUN + ["--resume", "{d}/j.jsonl"],
     lambda d: write(d, "j.jsonl", "[1, 2]\n"), "not a JSON object"),
    ("resume-bad-entry", RUN + ["--resume", "{d}/j.jsonl"],
     lambda d: write(d, "j.jsonl", json.dumps(journal_header()) + '\n{"label": 3}\n'),
     "line 2"),
    ("resume-other-grid", RUN + ["--resume", "{d}/j.jsonl"],
     lambda d: journal(d, grid=["B1-S8-E32-H4-b1-float32-cpu"]), "grid"),
    ("resume-other-protocol", RUN + ["--resume", "{d}/j.jsonl"],
     lambda d: journal(d, protocol=asdict(Protocol())), "protocol"),
    ("resume-other-torch", RUN + ["--resume", "{d}/j.jsonl"],
     lambda d: journal(d, torch="1.0.0"), "torch version"),
    ("resume-other-build", RUN + ["--resume", "{d}/j.jsonl"],
     lambda d: journal(d, torch_git="0" * 40), "torch build"),
    ("resume-other-extras", RUN + ["--resume", "{d}/j.jsonl"],
     lambda d: journal(d, extras=False), "extras"),
    ("resume-other-dtype", RUN + ["--resume", "{d}/j.jsonl", "--dtype", "bf16"],
     lambda d: journal(d), "grid"),
    # breakeven
    ("breakeven-missing", ["breakeven", "{d}/nope.json"], nothing, "nope.json"),
    ("breakeven-empty", ["breakeven", "{d}/r.json"], lambda d: write(d, "r.json", ""), "empty"),
    ("breakeven-truncated", ["breakeven", "{d}/r.json"],
     lambda d: write(d, "r.json", json.dumps(results_doc())[:-30]), "truncated"),
    ("breakeven-text", ["breakeven", "{d}/r.json"], lambda d: write(d, "r.json", "speedup 2"),
     "not JSON"),
    ("breakeven-list", ["breakeven", "{d}/r.json"], lambda d: write(d, "r.json", [1]),
     "not an mhabench results JSON"),
    ("breakeven-results-dict", ["breakeven", "{d}/r.json"],
     lambda d: write(d, "r.json", {"results": {}}), "not an mhabench results JSON"),
    ("breakeven-point-lacks", ["breakeven", "{d}/r.json"],
     lambda d: write(d, "r.json", {"results": [{"point": {}, "metrics": {}}]}), "lacks"),
    ("breakeven-point-string", ["breakeven", "{d}/r.json"],
     lambda d: write(d, "r.json", _retype(results_doc(), "batch_size", "2")), "batch_size"),
    ("breakeven-metric-string", ["breakeven", "{d}/r.json"],
     lambda d: write(d, "r.json", results_doc(speedup="fast")), "speedup"),
    ("breakeven-metric-bool", ["breakeven", "{d}/r.json"],
     lambda d: write(d, "r.json", results_doc(padding=True)), "padding"),
    ("breakeven-meta-list", ["breakeven", "{d}/r.json"],
     lambda d: write(d, "r.json", {**results_doc(), "meta": []}), "meta"),
    ("breakeven-folder", ["breakeven", "{d}/sub"], lambda d: (d / "sub").mkdir(), "folder"),
    ("breakeven-no-results", ["breakeven", "{d}/r.json"],
     lambda d: write(d, "r.json", {"results": []}), "no result"),
    ("breakeven-unknown-metric", ["breakeven", "{d}/r.json", "--metric", "nope"],
     lambda d: write(d, "r.json", results_doc()), "nope"),
    ("breakeven-csv-folder", ["breakeven", "{d}/r.json", "--csv", "{d}/sub"],
     lambda d: (write(d, "r.json", results_doc()), (d / "sub").mkdir()), "sub"),
    # plot
    ("plot-missing", ["plot", "{d}/nope.json", "--out", "{d}/p"], nothing, "nope.json"),
    ("plot-empty", ["plot", "{d}/r.json", "--out", "{d}/p"], lambda d: write(d, "r.json", " \n"),
     "empty"),
    ("plot-truncated", ["plot", "{d}/r.json", "--out", "{d}/p"],
     lambda d: write(d, "r.json", json.dumps(results_doc())[:50]), "truncated"),
    ("plot-wrong-schema", ["plot", "{d}/r.json", "--out", "{d}/p"],
     lambda d: write(d, "r.json", {"meta": {}}), "not an mhabench results JSON"),
    ("plot-metric-string", ["plot", "{d}/r.json", "--out", "{d}/p"],
     lambda d: write(d, "r.json", results_doc(speedup="1.2")), "speedup"),
    ("plot-folder", ["plot", "{d}/sub", "--out", "{d}/p"], lambda d: (d / "sub").mkdir(),
     "folder"),
    ("plot-nothing-finite", ["plot", "{d}/r.json", "--out", "{d}/p"],
     lambda d: write(d, "r.json", results_doc(speedup=None)), "finite"),
    ("plot-out-is-file", ["plot", "{d}/r.json", "--out", "{d}/f.txt"],
     lambda d: (write(d, "r.json", results_doc()), write(d, "f.txt", "x")), "f.txt"),
    # plot-asv
    ("plot-asv-missing", ["plot-asv", "{d}/nope", "--out", "{d}/p"], nothing, "nope"),
    ("plot-asv-empty-dir", ["plot-asv", "{d}/results", "--out", "{d}/p"],
     lambda d: (d / "results").mkdir(), "no asv result files"),
    ("plot-asv-truncated", ["plot-asv", "{d}/results", "--out", "{d}/p"],
     lambda d: asv_dir(d, json.dumps(asv_result())[:60]), "aaaaaaaa-env.json"),
    ("plot-asv-empty-file", ["plot-asv", "{d}/results", "--out", "{d}/p"],
     lambda d: asv_dir(d, ""), "aaaaaaaa-env.json"),
    ("plot-asv-wrong-schema", ["plot-asv", "{d}/results", "--out", "{d}/p"],
     lambda d: asv_dir(d, {"commit_hash": COMMIT}), "not an asv result file"),
    ("plot-asv-wrong-row", ["plot-asv", "{d}/results", "--out", "{d}/p"],
     lambda d: asv_dir(d, asv_result(results={BENCH: 5})), "not a row"),
    ("plot-asv-benchmarks-truncated", ["plot-asv", "{d}/results", "--out", "{d}/p"],
     lambda d: (asv_dir(d), write(d, "results/benchmarks.json", '{"speedup')), "benchmarks.json"),
    ("plot-asv-index-truncated", ["plot-asv", "{d}/results", "--out", "{d}/p",
                                  "--html", "{d}/html"],
     lambda d: (asv_dir(d), html(d, '{"tags": {')), "index.json"),
    ("plot-asv-index-wrong-type", ["plot-asv", "{d}/results", "--out", "{d}/p",
                                   "--html", "{d}/html"],
     lambda d: (asv_dir(d), html(d, {"tags": [1]})), "index.json"),
    ("plot-asv-unknown-bench", ["plot-asv", "{d}/results", "--out", "{d}/p",
                                "--benchmark", "nope"], lambda d: asv_dir(d), "nope"),
    ("plot-asv-dir-is-file", ["plot-asv", "{d}/f.txt", "--out", "{d}/p"],
     lambda d: write(d, "f.txt", "x"), "f.txt"),
    # view-check
    ("view-missing", ["view-check", "{d}/html", "--out", "{d}/g.png"], nothing, "html"),
    ("view-no-index", ["view-check", "{d}/html", "--out", "{d}/g.png"],
     lambda d: (d / "html").mkdir(), "index.json"),
    ("view-index-empty", ["view-check", "{d}/html", "--out", "{d}/g.png"],
     lambda d: html(d, ""), "index.json"),
    ("view-index-truncated", ["view-check", "{d}/html", "--out", "{d}/g.png"],
     lambda d: html(d, '{"benchmarks": {"a": '), "index.json"),
    ("view-index-list", ["view-check", "{d}/html", "--out", "{d}/g.png"],
     lambda d: html(d, []), "index.json"),
    ("view-index-benchmarks-list", ["view-check", "{d}/html", "--out", "{d}/g.png"],
     lambda d: html(d, {"benchmarks": []}), "index.json"),
    ("view-unknown-benchmark", ["view-check", "{d}/html", "--out", "{d}/g.png",
                                "--benchmark", "nope"],
     lambda d: html(d, {"benchmarks": {}}), "nope"),
    # track
    ("track-manifest-truncated", ["track", "2.13.0", "--dir", "{d}/t", "--grid", "smoke"],
     lambda d: builds(d, '{"grid_family": "smoke", "builds": ['), "builds.json"),
    ("track-manifest-empty", ["track", "2.13.0", "--dir", "{d}/t", "--grid", "smoke"],
     lambda d: builds(d, ""), "builds.json"),
    ("track-manifest-list", ["track", "2.13.0", "--dir", "{d}/t", "--grid", "smoke"],
     lambda d: builds(d, []), "builds.json"),
    ("track-manifest-builds-string", ["track", "2.13.0", "--dir", "{d}/t", "--grid", "smoke"],
     lambda d: builds(d, {"builds": "x"}), "builds.json"),
    ("track-manifest-commits-list", ["track", "2.13.0", "--dir", "{d}/t", "--grid", "smoke"],
     lambda d: builds(d, {"builds": [], "commits": []}), "builds.json"),
    ("track-manifest-folder", ["track", "2.13.0", "--dir", "{d}/t", "--grid", "smoke"],
     lambda d: (d / "t" / "builds.json").mkdir(parents=True), "builds.json"),
    ("track-bad-version", ["track", "2.x.y", "--dir", "{d}/t"], nothing, "2.x.y"),
    ("track-bad-grid", ["track", "2.13.0", "--dir", "{d}/t", "--grid", "huge"], nothing, "huge"),
    # gate (through the CLI only)
    ("gate-no-results", ["gate", "a", "b", "--dir", "{d}/t"], lambda d: (d / "t").mkdir(),
     "results"),
    ("gate-unknown-build", ["gate", "zzzz", "aaaa", "--dir", "{d}"], lambda d: asv_dir(d),
     "zzzz"),
    ("gate-manifest-truncated", ["gate", "aaaa", "aaaa", "--dir", "{d}"],
     lambda d: (asv_dir(d), write(d, "builds.json", '{"commits": {')), "builds.json"),
    ("gate-result-truncated", ["gate", "aaaa", "aaaa", "--dir", "{d}", "--machine", "m"],
     lambda d: (asv_dir(d, json.dumps(asv_result())[:-5]),
                write(d, "builds.json", {"commits": {"torch-x": COMMIT}})), "aaaaaaaa-env.json"),
    ("gate-result-wrong-schema", ["gate", "torch-x", "torch-x", "--dir", "{d}", "--machine", "m"],
     lambda d: (asv_dir(d, {"commit_hash": COMMIT}),
                write(d, "builds.json", {"commits": {"torch-x": COMMIT}})), "aaaaaaaa-env.json"),
]


def _retype(doc, key, value):
    doc["results"][0]["point"][key] = value
    return doc


def snapshot(d: Path) -> dict:
    """Every path under ``d`` with its kind, size, mode and modification time."""
    out = {}
    for p in sorted(d.rglob("*")):
        st = p.lstat()
        out[str(p.relative_to(d))] = (p.is_dir(), st.st_size, st.st_mode, st.st_mtime_ns)
    return out


def _params():
    for case in CASES:
        yield pytest.param(*case[1:], id=case[0])


def test_the_table_is_large_and_covers_every_command():
    assert len(CASES) >= 60
    assert len({c[0] for c in CASES}) == len(CASES)
    commands = {c[1][0] for c in CASES}
    assert commands == {"run", "gate", "plot", "plot-asv", "breakeven", "track", "view-check"}


@pytest.mark.parametrize("argv,setup,needle", list(_params()))
def test_bad_input_is_one_line_exit_2_and_writes_nothing(tmp_path, argv, setup, needle):
    d = tmp_path / "case"
    d.mkdir()
    setup(d)
    before = snapshot(d)
    argv = [a.replace("{d}", str(d)) for a in argv]
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        rc = cli.main(argv)
    lines = err.getvalue().strip().splitlines()
    assert rc == 2, (rc, out.getvalue()[-2000:], err.getvalue()[-2000:])
    assert len(lines) == 1 and lines[0].startswith("mhabench: error: "), err.getvalue()
    assert needle in lines[0], lines[0]
    assert out.getvalue() == ""
    assert snapshot(d) == before


def test_files_honour_the_umask(tmp_path):
    from mhabench.measure.fileio import atomic_write
    old = os.umask(0o027)
    try:
        atomic_write(tmp_path / "a.txt", "x")
    finally:
        os.umask(old)
    assert (tmp_path / "a.txt").stat().st_mode & 0o777 == 0o640
    old = os.umask(0o022)
    try:
        atomic_write(tmp_path / "b.txt", "x")
    finally:
        os.umask(old)
    assert (tmp_path / "b.txt").stat().st_mode & 0o777 == 0o644
