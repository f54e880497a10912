"""Every command and every asv variable, given bad input: exit 2, one line on stderr naming what
is wrong, nothing on stdout, and the disk exactly as it was (no file written, moved or touched).

Each case builds its files in a fresh folder (``setup``), runs ``mhabench ARGS`` in-process (a
traceback would fail the test) or, for the asv variables, the suite's entry (what asv's discovery
runs), and compares the folder before and after.
"""
from __future__ import annotations

import contextlib
import io
import json
import os
from dataclasses import asdict
from pathlib import Path

import pytest

from mhabench.commands import main
from mhabench.measure.config import named_grid
from mhabench.measure.protocol import PRESETS, for_device

RUN = ["run", "--device", "cpu", "--grid", "smoke", "--preset", "check", "-q"]
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
    doc = {"version": 2, "commit_hash": COMMIT, "env_name": "env", "date": 1,
           "params": {"machine": "m"}, "python": "3.11", "requirements": {}, "env_vars": {},
           "durations": {},
           "result_columns": ["result", "params"],
           "results": {BENCH: [[1.0, 0.9], [["2"], ["8", "16"]]]}}
    doc.update(change)
    return doc


def journal_header(**change) -> dict:
    from mhabench.run.journal import VERSION, fingerprint
    points = named_grid("smoke", "fp32", "cpu")
    meta = {"protocol": asdict(for_device(PRESETS["check"], "cpu")), "torch": "x", "torch_git": "y"}
    head = {"journal": VERSION, **fingerprint(points, meta, 1, True, False), "meta": {}}
    head.update(change)
    return head


def write(d: Path, name: str, content) -> Path:
    p = d / name
    p.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(content, (dict, list)):
        content = json.dumps(content)
    if isinstance(content, bytes):
        p.write_bytes(content)
    else:
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


def folder(name):
    return lambda d: (d / name).mkdir(parents=True)


def gate_dir(d):
    asv_dir(d)
    write(d, "builds.json", {"commits": {"torch-x": COMMIT}})


# --- the table: (id, argv after "mhabench", setup(d), needle in the one line) --------------------
CASES = [
    # run: option values
    ("run-preset", RUN + ["--preset", "nope"], nothing, "nope"),
    ("run-unknown-option", RUN + ["--min-rounds", "2"], nothing, "--min-rounds"),
    ("run-positional", RUN + ["extra"], nothing, "extra"),
    ("run-device-gpu", RUN + ["--device", "gpu"], nothing, "gpu"),
    ("run-device-index", RUN + ["--device", "cuda:x"], nothing, "cuda:x"),
    ("run-device-tpu", RUN + ["--device", "tpu"], nothing, "tpu"),
    ("run-device-cuda-absent", RUN + ["--device", "cuda"], nothing, "CUDA"),
    ("run-dtype-fp8", RUN + ["--dtype", "fp8"], nothing, "fp8"),
    ("run-dtype-int8", RUN + ["--dtype", "int8"], nothing, "int8"),
    ("run-dtype-fp64", RUN + ["--dtype", "float64"], nothing, "float64"),
    ("run-threads-0", RUN + ["--threads", "0"], nothing, "--threads"),
    ("run-threads-neg", RUN + ["--threads", "-1"], nothing, "--threads"),
    ("run-threads-word", RUN + ["--threads", "x"], nothing, "--threads"),
    ("run-threads-float", RUN + ["--threads", "2.5"], nothing, "--threads"),
    ("run-threads-absurd", RUN + ["--threads", "1000000000"], nothing, "--threads"),
    ("run-timeout-0", RUN + ["--point-timeout", "0"], nothing, "--point-timeout"),
    ("run-timeout-inf", RUN + ["--point-timeout", "inf"], nothing, "--point-timeout"),
    ("run-timeout-neg", RUN + ["--point-timeout", "-5"], nothing, "--point-timeout"),
    ("run-timeout-nan", RUN + ["--point-timeout", "nan"], nothing, "--point-timeout"),
    ("run-timeout-word", RUN + ["--point-timeout", "x"], nothing, "--point-timeout"),
    ("run-instructions-cuda", RUN + ["--device", "cuda", "--instructions"], nothing, "CPU"),
    ("run-retry-without-resume", RUN + ["--retry-failed"], nothing, "--resume"),
    # run: grids
    ("run-grid-unknown", ["run", "--grid", "huge", "-q"], nothing, "huge"),
    ("run-grid-stride-0", ["run", "--grid", "smoke/0", "-q"], nothing, "stride"),
    ("run-grid-stride-word", ["run", "--grid", "smoke/x", "-q"], nothing, "stride"),
    ("run-grid-stride-neg", ["run", "--grid", "smoke/-2", "-q"], nothing, "stride"),
    ("run-grid-bad-key", ["run", "--grid", "smoke;width=2", "-q"], nothing, "width"),
    ("run-grid-no-equals", ["run", "--grid", "smoke;batch", "-q"], nothing, "batch"),
    ("run-grid-twice", ["run", "--grid", "smoke;batch=2;batch=4", "-q"], nothing, "twice"),
    ("run-grid-quick-axes", ["run", "--grid", "quick;batch=2", "-q"], nothing, "quick"),
    ("run-grid-no-valid", ["run", "--grid", "smoke;embed=12;heads=5", "-q"], nothing,
     "no valid point"),
    ("run-grid-block-huge", ["run", "--grid", "smoke;block=100", "-q"], nothing, "100"),
    ("run-grid-block-two", ["run", "--grid", "smoke;block=2,4", "-q"], nothing, "block"),
    ("run-grid-seed-neg", ["run", "--grid", "smoke;seed=-1", "-q"], nothing, "seed"),
    ("run-grid-seed-huge", ["run", "--grid", "smoke;seed=99999999999", "-q"], nothing, "seed"),
    ("run-grid-seed-word", ["run", "--grid", "smoke;seed=x", "-q"], nothing, "seed"),
    ("run-grid-custom-bad", ["run", "--grid", "custom:rows=2", "-q"], nothing, "rows"),
    ("run-points-not-label", RUN + ["--points", "B2"], nothing, "B2"),
    ("run-points-other-dtype", RUN + ["--points", "B2-S8-E32-H4-b1-float16-cpu"], nothing,
     "float32"),
    ("run-points-bad-shape", RUN + ["--points", "B2-S8-E32-H3-b1-float32-cpu"], nothing,
     "divisible"),
    ("run-points-empty", RUN + ["--points", ","], nothing, "--points"),
    ("run-batch-absurd", ["run", "--grid", "smoke;batch=1000000000", "-q"], nothing, "memory"),
    ("run-seq-absurd", ["run", "--grid", "smoke;seq=10000000", "-q"], nothing, "memory"),
    # run: outputs
    ("run-json-under-file", RUN + ["--json", "{d}/f.txt/a.json"],
     lambda d: write(d, "f.txt", "x"), "not a folder"),
    ("run-csv-under-file", RUN + ["--save-path", "{d}/f.txt/deep/a.csv"],
     lambda d: write(d, "f.txt", "x"), "not a folder"),
    ("run-same-csv-json", RUN + ["--save-path", "{d}/x", "--json", "{d}/x"], nothing,
     "same file"),
    ("run-same-csv-errors", RUN + ["--save-path", "{d}/x", "--error-save-path", "{d}/x"],
     nothing, "same file"),
    ("run-same-json-errors", RUN + ["--json", "{d}/x", "--error-save-path", "{d}/./x"],
     nothing, "same file"),
    ("run-breakeven-is-json", RUN + ["--save-path", "{d}/a.csv", "--json", "{d}/a_breakeven.csv"],
     nothing, "same file"),
    ("run-json-is-journal", RUN + ["--json", "{d}/j.jsonl", "--resume", "{d}/j.jsonl"],
     lambda d: journal(d), "journal itself"),
    ("run-journal-not-journal", RUN + ["--json", "{d}/a.json"],
     lambda d: write(d, "a.journal.jsonl", "my notes\n"), "not an mhabench journal"),
    # run: --resume
    ("resume-missing", RUN + ["--resume", "{d}/nope.jsonl"], nothing, "nope.jsonl"),
    ("resume-folder", RUN + ["--resume", "{d}/sub"], folder("sub"), "sub"),
    ("resume-empty", RUN + ["--resume", "{d}/j.jsonl"], lambda d: write(d, "j.jsonl", ""),
     "j.jsonl"),
    ("resume-truncated-header", RUN + ["--resume", "{d}/j.jsonl"],
     lambda d: write(d, "j.jsonl", json.dumps(journal_header())[:40]), "j.jsonl"),
    ("resume-not-json", RUN + ["--resume", "{d}/j.jsonl"],
     lambda d: write(d, "j.jsonl", "hello\n"), "not JSON"),
    ("resume-binary", RUN + ["--resume", "{d}/j.jsonl"],
     lambda d: write(d, "j.jsonl", b"\x00\xff\xfe\n"), "j.jsonl"),
    ("resume-wrong-schema", RUN + ["--resume", "{d}/j.jsonl"],
     lambda d: write(d, "j.jsonl", '{"a": 1}\n'), "not an mhabench journal"),
    ("resume-header-list", RUN + ["--resume", "{d}/j.jsonl"],
     lambda d: write(d, "j.jsonl", "[1, 2]\n"), "not a JSON object"),
    ("resume-bad-entry", RUN + ["--resume", "{d}/j.jsonl"],
     lambda d: write(d, "j.jsonl", json.dumps(journal_header()) + '\n{"label": 3}\n'),
     "line 2"),
    ("resume-format-1", RUN + ["--resume", "{d}/j.jsonl"],
     lambda d: write(d, "j.jsonl", json.dumps({"journal": 1, "grid": []}) + "\n"), "format 1"),
    ("resume-other-grid", RUN + ["--resume", "{d}/j.jsonl"],
     lambda d: journal(d, grid=["B1-S8-E32-H4-b1-float32-cpu"]), "grid"),
    ("resume-other-preset", ["run", "--device", "cpu", "--grid", "smoke", "--preset", "fast",
                             "-q", "--resume", "{d}/j.jsonl"], lambda d: journal(d), "protocol"),
    ("resume-other-seed", ["run", "--device", "cpu", "--grid", "smoke;seed=1", "--preset",
                           "check", "-q", "--resume", "{d}/j.jsonl"], lambda d: journal(d),
     "seed is 26214 there, 1 here"),
    ("resume-other-block", ["run", "--device", "cpu", "--grid", "smoke;block=4", "--preset",
                            "check", "-q", "--resume", "{d}/j.jsonl"], lambda d: journal(d),
     "block_size"),
    ("resume-other-threads", RUN + ["--threads", "2", "--resume", "{d}/j.jsonl"],
     lambda d: journal(d), "threads is 1 there, 2 here"),
    ("resume-other-extras", RUN + ["--no-extras", "--resume", "{d}/j.jsonl"],
     lambda d: journal(d), "extras"),
    ("resume-other-dtype", RUN + ["--resume", "{d}/j.jsonl", "--dtype", "bf16"],
     lambda d: journal(d), "dtype is 'float32' there, 'bfloat16' here"),
    # breakeven
    ("breakeven-missing", ["breakeven", "{d}/nope.json"], nothing, "nope.json"),
    ("breakeven-empty", ["breakeven", "{d}/r.json"], lambda d: write(d, "r.json", ""), "empty"),
    ("breakeven-truncated", ["breakeven", "{d}/r.json"],
     lambda d: write(d, "r.json", json.dumps(results_doc())[:-30]), "truncated"),
    ("breakeven-text", ["breakeven", "{d}/r.json"], lambda d: write(d, "r.json", "speedup 2"),
     "not JSON"),
    ("breakeven-binary", ["breakeven", "{d}/r.json"],
     lambda d: write(d, "r.json", b"\x89PNG\x00\x01"), "r.json"),
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
    ("breakeven-folder", ["breakeven", "{d}/sub"], folder("sub"), "folder"),
    ("breakeven-no-results", ["breakeven", "{d}/r.json"],
     lambda d: write(d, "r.json", {"results": []}), "no result"),
    ("breakeven-all-null", ["breakeven", "{d}/r.json"],
     lambda d: write(d, "r.json", results_doc(speedup=None)), "finite"),
    ("breakeven-unknown-metric", ["breakeven", "{d}/r.json", "--metric", "nope"],
     lambda d: write(d, "r.json", results_doc()), "nope"),
    ("breakeven-csv-folder", ["breakeven", "{d}/r.json", "--csv", "{d}/sub"],
     lambda d: (write(d, "r.json", results_doc()), (d / "sub").mkdir()), "sub"),
    ("breakeven-csv-is-input", ["breakeven", "{d}/r.json", "--csv", "{d}/r.json"],
     lambda d: write(d, "r.json", results_doc()), "input itself"),
    # plot: a run's JSON
    ("plot-missing", ["plot", "{d}/nope.json", "--out", "{d}/p"], nothing, "nope.json"),
    ("plot-empty", ["plot", "{d}/r.json", "--out", "{d}/p"], lambda d: write(d, "r.json", " \n"),
     "empty"),
    ("plot-truncated", ["plot", "{d}/r.json", "--out", "{d}/p"],
     lambda d: write(d, "r.json", json.dumps(results_doc())[:50]), "truncated"),
    ("plot-wrong-schema", ["plot", "{d}/r.json", "--out", "{d}/p"],
     lambda d: write(d, "r.json", {"meta": {}}), "not an mhabench results JSON"),
    ("plot-metric-string", ["plot", "{d}/r.json", "--out", "{d}/p"],
     lambda d: write(d, "r.json", results_doc(speedup="1.2")), "speedup"),
    ("plot-nothing-finite", ["plot", "{d}/r.json", "--out", "{d}/p"],
     lambda d: write(d, "r.json", results_doc(speedup=None)), "finite"),
    ("plot-out-is-file", ["plot", "{d}/r.json", "--out", "{d}/f.txt"],
     lambda d: (write(d, "r.json", results_doc()), write(d, "f.txt", "x")), "f.txt"),
    ("plot-unknown-metric", ["plot", "{d}/r.json", "--out", "{d}/p", "--metric", "nope"],
     lambda d: write(d, "r.json", results_doc()), "nope"),
    # plot: an asv results dir
    ("plot-asv-empty-dir", ["plot", "{d}/results", "--out", "{d}/p"], folder("results"),
     "no asv result files"),
    ("plot-asv-truncated", ["plot", "{d}/results", "--out", "{d}/p"],
     lambda d: asv_dir(d, json.dumps(asv_result())[:60]), "aaaaaaaa-env.json"),
    ("plot-asv-empty-file", ["plot", "{d}/results", "--out", "{d}/p"],
     lambda d: asv_dir(d, ""), "aaaaaaaa-env.json"),
    ("plot-asv-binary-file", ["plot", "{d}/results", "--out", "{d}/p"],
     lambda d: asv_dir(d, b"\x00\x01\x02"), "aaaaaaaa-env.json"),
    ("plot-asv-list-file", ["plot", "{d}/results", "--out", "{d}/p"],
     lambda d: asv_dir(d, []), "aaaaaaaa-env.json"),
    ("plot-asv-wrong-schema", ["plot", "{d}/results", "--out", "{d}/p"],
     lambda d: asv_dir(d, {"commit_hash": COMMIT}), "not an asv result file"),
    ("plot-asv-string-value", ["plot", "{d}/results", "--out", "{d}/p"],
     lambda d: asv_dir(d, asv_result(results={BENCH: [["1.0", 0.9], [["2"], ["8", "16"]]]})),
     "non-numeric"),
    ("plot-asv-benchmarks-truncated", ["plot", "{d}/results", "--out", "{d}/p"],
     lambda d: (asv_dir(d), write(d, "results/benchmarks.json", '{"speedup')), "benchmarks.json"),
    ("plot-asv-index-truncated", ["plot", "{d}/results", "--out", "{d}/p"],
     lambda d: (asv_dir(d), html(d, '{"tags": {')), "index.json"),
    ("plot-asv-index-wrong-type", ["plot", "{d}/results", "--out", "{d}/p"],
     lambda d: (asv_dir(d), html(d, {"tags": [1]})), "index.json"),
    ("plot-asv-unknown-bench", ["plot", "{d}/results", "--out", "{d}/p", "--metric", "nope"],
     lambda d: asv_dir(d), "nope"),
    # gate
    ("gate-one-build", ["gate", "a", "--dir", "{d}"], lambda d: gate_dir(d), "two builds"),
    ("gate-no-results", ["gate", "a", "b", "--dir", "{d}/t"], folder("t"), "results"),
    ("gate-unknown-build", ["gate", "zzzz", "aaaa", "--dir", "{d}"], lambda d: asv_dir(d),
     "zzzz"),
    ("gate-manifest-truncated", ["gate", "aaaa", "aaaa", "--dir", "{d}"],
     lambda d: (asv_dir(d), write(d, "builds.json", '{"commits": {')), "builds.json"),
    ("gate-manifest-folder", ["gate", "aaaa", "aaaa", "--dir", "{d}"],
     lambda d: (asv_dir(d), (d / "builds.json").mkdir()), "builds.json"),
    ("gate-result-truncated", ["gate", "aaaa", "aaaa", "--dir", "{d}", "--machine", "m"],
     lambda d: (asv_dir(d, json.dumps(asv_result())[:-5]),
                write(d, "builds.json", {"commits": {"torch-x": COMMIT}})), "aaaaaaaa-env.json"),
    ("gate-result-empty", ["gate", "aaaa", "aaaa", "--dir", "{d}"],
     lambda d: asv_dir(d, ""), "aaaaaaaa-env.json"),
    ("gate-result-binary", ["gate", "aaaa", "aaaa", "--dir", "{d}"],
     lambda d: asv_dir(d, b"\x00\xff"), "aaaaaaaa-env.json"),
    ("gate-result-list", ["gate", "aaaa", "aaaa", "--dir", "{d}"],
     lambda d: asv_dir(d, []), "aaaaaaaa-env.json"),
    ("gate-result-wrong-schema", ["gate", "torch-x", "torch-x", "--dir", "{d}", "--machine", "m"],
     lambda d: (asv_dir(d, {"commit_hash": COMMIT}),
                write(d, "builds.json", {"commits": {"torch-x": COMMIT}})), "aaaaaaaa-env.json"),
    ("gate-result-string-value", ["gate", "torch-x", "torch-x", "--dir", "{d}"],
     lambda d: (asv_dir(d, asv_result(results={BENCH: [["x", 0.9], [["2"], ["8", "16"]]]})),
                write(d, "builds.json", {"commits": {"torch-x": COMMIT}})), "non-numeric"),
    ("gate-unknown-machine", ["gate", "torch-x", "torch-x", "--dir", "{d}", "--machine", "zz"],
     gate_dir, "zz"),
    ("gate-unknown-env", ["gate", "torch-x", "torch-x", "--dir", "{d}", "--env", "nope"],
     gate_dir, "environment 'nope'"),
    ("gate-fail-on", ["gate", "torch-x", "torch-x", "--dir", "{d}", "--fail-on", "fast"],
     gate_dir, "fast"),
    ("gate-json-folder", ["gate", "torch-x", "torch-x", "--dir", "{d}", "--json", "{d}/sub"],
     lambda d: (gate_dir(d), (d / "sub").mkdir()), "folder"),
    ("gate-json-markdown-same", ["gate", "torch-x", "torch-x", "--dir", "{d}", "--json",
                                 "{d}/g.out", "--markdown", "{d}/g.out"], gate_dir, "same file"),
    ("gate-json-is-input", ["gate", "torch-x", "torch-x", "--dir", "{d}", "--json",
                            "{d}/results/m/aaaaaaaa-env.json"], gate_dir, "input"),
    ("gate-markdown-is-manifest", ["gate", "torch-x", "torch-x", "--dir", "{d}", "--markdown",
                                   "{d}/builds.json"], gate_dir, "input"),
    ("gate-bad-replicate", ["gate", "torch-x@r0", "torch-x", "--dir", "{d}"], gate_dir, "r1"),
    # confirm
    ("confirm-repeats-2", ["confirm", "a", "b", "--repeats", "2"], nothing, "--repeats"),
    ("confirm-repeats-huge", ["confirm", "a", "b", "--repeats", "1000"], nothing, "--repeats"),
    ("confirm-repeats-word", ["confirm", "a", "b", "--repeats", "x"], nothing, "--repeats"),
    ("confirm-base-python", ["confirm", "a", "b", "--base-python", "{d}/nope"], nothing, "nope"),
    ("confirm-head-python", ["confirm", "a", "b", "--base-python", "{d}/py", "--head-python",
                             "{d}/nope"], lambda d: _exe(d, "py"), "nope"),
    ("confirm-no-env", ["confirm", "a", "b", "--dir", "{d}/t"], folder("t"), "--base-python"),
    ("confirm-json-folder", ["confirm", "a", "b", "--json", "{d}/sub"], folder("sub"), "folder"),
    ("confirm-one-build", ["confirm", "a"], nothing, "HEAD"),
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
    ("track-other-grid", ["track", "2.13.0", "--dir", "{d}/t", "--grid", "seed"],
     lambda d: builds(d, {"grid_family": "smoke", "builds": [], "commits": {}}), "grid"),
    ("track-bad-version", ["track", "2.x.y", "--dir", "{d}/t"], nothing, "2.x.y"),
    ("track-local-version", ["track", "2.13.0+cpu", "--dir", "{d}/t"], nothing, "+cpu"),
    ("track-bad-date", ["track", "2.13.0@2026-13-01", "--dir", "{d}/t"], nothing, "2026-13-01"),
    ("track-bad-nightly", ["track", "2.15.0.dev1", "--dir", "{d}/t"], nothing, ".devYYYYMMDD"),
    ("track-bad-spec", ["track", "torch>2", "--dir", "{d}/t"], nothing, "torch>2"),
    ("track-bad-grid", ["track", "2.13.0", "--dir", "{d}/t", "--grid", "huge"], nothing, "huge"),
    ("track-bad-device", ["track", "2.13.0", "--dir", "{d}/t", "--device", "gpu"], nothing,
     "gpu"),
    ("track-bad-dtype", ["track", "2.13.0", "--dir", "{d}/t", "--dtype", "fp8"], nothing, "fp8"),
    ("track-repeats-0", ["track", "2.13.0", "--dir", "{d}/t", "--repeats", "0"], nothing,
     "--repeats"),
    ("track-repeats-huge", ["track", "2.13.0", "--dir", "{d}/t", "--repeats", "101"], nothing,
     "--repeats"),
    ("track-suite", ["track", "2.13.0", "--dir", "{d}/t", "--suite", "all"], nothing, "all"),
    ("track-dir-is-file", ["track", "2.13.0", "--dir", "{d}/f.txt"],
     lambda d: write(d, "f.txt", "x"), "f.txt"),
    ("track-dir-under-file", ["track", "2.13.0", "--dir", "{d}/f.txt/t"],
     lambda d: write(d, "f.txt", "x"), "f.txt"),
    ("track-machine-slash", ["track", "2.13.0", "--dir", "{d}/t", "--machine", "a/b"],
     nothing, "a/b"),
    ("track-machine-replicate", ["track", "2.13.0", "--dir", "{d}/t", "--machine", "m-r2"],
     nothing, "m-r2"),
    ("track-existing-missing", ["track", "--existing", "{d}/nope", "--dir", "{d}/t"], nothing,
     "nope"),
    ("track-instructions-cuda", ["track", "2.13.0", "--dir", "{d}/t", "--device", "cuda",
                                 "--instructions"], nothing, "CPU"),
    ("track-nothing", ["track", "--dir", "{d}/t"], nothing, "no build"),
    # serve
    ("serve-missing", ["serve", "{d}/html"], nothing, "html"),
    ("serve-no-index", ["serve", "{d}/html"], folder("html"), "index.json"),
    ("serve-index-empty", ["serve", "{d}/html"], lambda d: html(d, ""), "index.json"),
    ("serve-index-truncated", ["serve", "{d}/html"],
     lambda d: html(d, '{"benchmarks": {"a": '), "index.json"),
    ("serve-index-list", ["serve", "{d}/html"], lambda d: html(d, []), "index.json"),
    ("serve-index-benchmarks-list", ["serve", "{d}/html"],
     lambda d: html(d, {"benchmarks": []}), "index.json"),
    ("serve-html-is-file", ["serve", "{d}/f.txt"], lambda d: write(d, "f.txt", "x"), "f.txt"),
    ("serve-port-neg", ["serve", "{d}/html", "--port", "-1"],
     lambda d: html(d, {"benchmarks": {}}), "--port"),
    ("serve-port-huge", ["serve", "{d}/html", "--port", "70000"],
     lambda d: html(d, {"benchmarks": {}}), "--port"),
    ("serve-port-word", ["serve", "{d}/html", "--port", "x"], nothing, "--port"),
    # no command, unknown command
    ("no-command", [], nothing, "COMMAND"),
    ("unknown-command", ["view-check"], nothing, "view-check"),
]

# every grid axis, given every kind of bad value, by flag and by variable
AXES = ("batch", "seq", "embed", "heads", "b")
BAD_VALUES = {"zero": "0", "negative": "-1", "word": "x", "empty": "", "fraction": "1.5"}
CASES += [(f"run-grid-{axis}-{kind}", ["run", "--grid", f"smoke;{axis}={value}", "-q"],
           nothing, axis) for axis in AXES for kind, value in BAD_VALUES.items()]
# every output flag, at every kind of path that cannot be written
OUTPUTS = ("--save-path", "--error-save-path", "--json")
PLACES = {"folder": ("{d}/sub", folder("sub"), "folder"),
          "under-file": ("{d}/f.txt/x", lambda d: write(d, "f.txt", "x"), "not a folder"),
          "deep-under-file": ("{d}/f.txt/a/b/x", lambda d: write(d, "f.txt", "x"),
                              "not a folder")}
CASES += [(f"run{flag}-{kind}", RUN + [flag, path], setup, needle) for flag in OUTPUTS
          for kind, (path, setup, needle) in PLACES.items()]
CASES += [(f"gate{flag}-{kind}", ["gate", "torch-x", "torch-x", "--dir", "{d}", flag, path],
           lambda d, setup=setup: (gate_dir(d), setup(d)), needle)
          for flag in ("--json", "--markdown") for kind, (path, setup, needle) in PLACES.items()]
CASES += [(f"confirm--json-{kind}", ["confirm", "a", "b", "--json", path], setup, needle)
          for kind, (path, setup, needle) in PLACES.items()]
CASES += [(f"breakeven--csv-{kind}", ["breakeven", "{d}/r.json", "--csv", path],
           lambda d, setup=setup: (write(d, "r.json", results_doc()), setup(d)), needle)
          for kind, (path, setup, needle) in PLACES.items()]


def _retype(doc, key, value):
    doc["results"][0]["point"][key] = value
    return doc


def _exe(d: Path, name: str) -> None:
    p = write(d, name, "#!/bin/sh\n")
    p.chmod(0o755)


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
    assert len(CASES) + len(ASV_CASES) >= 250
    assert len({c[0] for c in CASES}) == len(CASES)
    commands = {c[1][0] for c in CASES if c[1]}
    assert commands >= {"run", "gate", "plot", "breakeven", "track", "confirm", "serve"}
    from mhabench.run.spec import ENV_VARS
    assert {c[1] for c in ASV_CASES} == set(ENV_VARS)


@pytest.mark.parametrize("argv,setup,needle", list(_params()))
def test_bad_input_is_one_line_exit_2_and_writes_nothing(tmp_path, argv, setup, needle,
                                                         monkeypatch):
    monkeypatch.setenv("MHABENCH_CACHE_DIR", str(tmp_path / "case" / "cache-untouched"))
    d = tmp_path / "case"
    d.mkdir()
    setup(d)
    before = snapshot(d)
    argv = [a.replace("{d}", str(d)) for a in argv]
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        rc = main(argv)
    lines = err.getvalue().strip().splitlines()
    assert rc == 2, (rc, out.getvalue()[-2000:], err.getvalue()[-2000:])
    assert len(lines) == 1 and lines[0].startswith("mhabench: error: "), err.getvalue()
    assert needle in lines[0], lines[0]
    assert out.getvalue() == ""
    assert snapshot(d) == before


# --- the asv suite's variables: what asv's discovery runs, given each bad value --------------------
ASV_CASES = [
    ("grid-unknown", "MHABENCH_GRID", "bogus", "bogus"),
    ("grid-stride-0", "MHABENCH_GRID", "seed/0", "stride"),
    ("grid-quick-axes", "MHABENCH_GRID", "quick;batch=2", "quick"),
    ("grid-bad-key", "MHABENCH_GRID", "custom:rows=2", "rows"),
    ("grid-no-valid", "MHABENCH_GRID", "custom:embed=12;heads=5", "no valid point"),
    ("grid-seed-word", "MHABENCH_GRID", "smoke;seed=x", "seed"),
    ("device-gpu", "MHABENCH_DEVICE", "gpu", "MHABENCH_DEVICE"),
    ("device-index", "MHABENCH_DEVICE", "cuda:x", "MHABENCH_DEVICE"),
    ("device-cuda-absent", "MHABENCH_DEVICE", "cuda", "no NVIDIA GPU"),
    ("dtype-fp8", "MHABENCH_DTYPE", "fp8", "MHABENCH_DTYPE"),
    ("dtype-int", "MHABENCH_DTYPE", "int8", "MHABENCH_DTYPE"),
    ("suite-unknown", "MHABENCH_SUITE", "all", "MHABENCH_SUITE"),
    ("suite-empty-word", "MHABENCH_SUITE", "fulll", "MHABENCH_SUITE"),
    ("threads-0", "MHABENCH_THREADS", "0", "MHABENCH_THREADS"),
    ("threads-word", "MHABENCH_THREADS", "x", "MHABENCH_THREADS"),
    ("threads-absurd", "MHABENCH_THREADS", "1000000000", "MHABENCH_THREADS"),
    ("threads-neg", "MHABENCH_THREADS", "-2", "MHABENCH_THREADS"),
    ("instructions-word", "MHABENCH_INSTRUCTIONS", "maybe", "MHABENCH_INSTRUCTIONS"),
    ("instructions-number", "MHABENCH_INSTRUCTIONS", "2", "MHABENCH_INSTRUCTIONS"),
    ("record-dir-file", "MHABENCH_RECORD_DIR", "{d}/f.txt", "MHABENCH_RECORD_DIR"),
] + [(f"grid-{axis}-{kind}", "MHABENCH_GRID", f"smoke;{axis}={value}", "MHABENCH_GRID")
     for axis in AXES for kind, value in BAD_VALUES.items()]


@pytest.mark.parametrize("name,value,needle", [pytest.param(*c[1:], id=c[0])
                                               for c in ASV_CASES])
def test_a_bad_asv_variable_ends_discovery_in_one_line(tmp_path, monkeypatch, name, value,
                                                       needle):
    """What asv's discovery runs (``benchmarks/*.py`` calls :func:`mhabench.suite.entry`), given
    a bad variable: exit status 2 and one line before asv records anything."""
    import mhabench.suite as suite
    d = tmp_path / "case"
    d.mkdir()
    write(d, "f.txt", "x")
    before = snapshot(d)
    for var in ("MHABENCH_GRID", "MHABENCH_DEVICE", "MHABENCH_DTYPE", "MHABENCH_SUITE",
                "MHABENCH_THREADS", "MHABENCH_INSTRUCTIONS", "MHABENCH_RECORD_DIR"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv(name, value.replace("{d}", str(d)))
    monkeypatch.setattr(suite, "_MADE", {})
    err = io.StringIO()
    with contextlib.redirect_stderr(err), pytest.raises(SystemExit) as exc:
        suite.entry("speedup", str(d / "benchmarks" / "speedup.py"))
    assert exc.value.code == 2
    lines = err.getvalue().strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("mhabench: error: "), err.getvalue()
    assert needle in lines[0], lines[0]
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
