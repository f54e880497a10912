"""mhabench.report.plot: figures hold the input data; PNGs are written; asv history; ``mhabench plot``."""
from __future__ import annotations

import contextlib
import io
import json
import math
import os
import subprocess
import sys

import pytest

matplotlib = pytest.importorskip("matplotlib")

from mhabench import commands  # noqa: E402
from mhabench.measure.config import ConfigError, Point  # noqa: E402
from mhabench.measure.results import ERROR, Result  # noqa: E402
from mhabench.report.plot import (asv_figures, asv_history, asv_tags, build_label,  # noqa: E402
                                  plot_asv_history, plot_results, results_figures)
from mhabench.run.journal import json_text  # noqa: E402

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def json_doc(results, meta):
    """The run JSON ``mhabench run --json`` writes for ``results``."""
    return json.loads(json_text(results, meta))


def _result(B, S, E, H, b, padding, speedup):
    """A Result whose metrics are exactly (padding, speedup): one round, fast 1 µs, slow ``speedup``."""
    r = Result(Point(B, S, E, H, b, dtype="fp32", device="cpu"), padding=padding)
    if speedup is None:
        r.status, r.message = ERROR, "boom"
    else:
        r.rounds = {"fast": [1.0], "slow": [speedup]}
    return r


SPEC = [  # B, S, E, H, beta b, padding, speedup  (input order deliberately not padding order)
    (2, 8, 32, 4, 61, 0.6, 1.3), (2, 8, 32, 4, 1, 0.0, 0.8), (2, 8, 32, 4, 21, 0.2, 0.9),
    (4, 8, 32, 4, 1, 0.0, 1.5), (4, 8, 32, 4, 21, 0.5, 2.0),
    (2, 8, 64, 8, 1, 0.0, 0.5), (2, 8, 64, 8, 61, 0.4, 0.7), (2, 16, 64, 8, 1, 0.1, None),
]
META = {"device": "cpu", "device_name": "Test CPU 9000", "torch": "9.9.9"}


@pytest.fixture
def doc():
    return json_doc([_result(*s) for s in SPEC], META)


def _main(argv):
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        rc = commands.main(argv)
    return rc, out.getvalue(), err.getvalue()


def _series(ax):
    return [l for l in ax.get_lines() if l.get_gid() == "series"]


def _close(figs):
    import matplotlib.pyplot as plt
    for f in figs.values():
        plt.close(f)


def test_results_figures_hold_the_input(doc):
    figs = results_figures(doc)
    try:
        assert sorted(figs) == ["speedup_E32_H4_float32.png", "speedup_E64_H8_float32.png"]
        (ax,) = figs["speedup_E32_H4_float32.png"].axes
        lines = _series(ax)
        assert [l.get_label() for l in lines] == ["batch 2, seq 8", "batch 4, seq 8"]
        assert list(lines[0].get_xdata()) == [0.0, 0.2, 0.6]   # sorted by padding
        assert list(lines[0].get_ydata()) == pytest.approx([0.8, 0.9, 1.3])
        assert list(lines[1].get_xdata()) == [0.0, 0.5]
        assert list(lines[1].get_ydata()) == pytest.approx([1.5, 2.0])
        (unity,) = [l for l in ax.get_lines() if l.get_gid() == "unity"]
        assert list(unity.get_ydata()) == [1.0, 1.0]
        (be,) = [l for l in ax.get_lines() if l.get_gid() == "break_even"]  # only batch 2 crosses
        assert list(be.get_xdata()) == pytest.approx([0.3]) and list(be.get_ydata()) == [1.0]
        assert be.get_markeredgecolor() == lines[0].get_color()
        title = ax.get_title()
        assert "Test CPU 9000" in title and "torch 9.9.9" in title and "embed 32" in title
        assert "padding" in ax.get_xlabel() and "speedup" in ax.get_ylabel()
        legend = [t.get_text() for t in ax.get_legend().get_texts()]
        assert legend == ["batch 2, seq 8", "batch 4, seq 8", "break-even (speedup = 1)",
                          "bars: IQR of the per-round ratios"]

        (ax2,) = figs["speedup_E64_H8_float32.png"].axes
        lines2 = _series(ax2)  # the failed (2, 16) shape has no finite point: no line
        assert [l.get_label() for l in lines2] == ["batch 2, seq 8"]
        assert list(lines2[0].get_ydata()) == pytest.approx([0.5, 0.7])
        assert not [l for l in ax2.get_lines() if l.get_gid() == "break_even"]
        assert [t.get_text() for t in ax2.get_legend().get_texts()] == [
            "batch 2, seq 8", "bars: IQR of the per-round ratios"]
    finally:
        _close(figs)


def test_plot_results_writes_pngs(doc, tmp_path):
    import matplotlib.pyplot as plt
    src = tmp_path / "all.json"
    src.write_text(json.dumps(doc))
    before = set(plt.get_fignums())
    written = plot_results(src, tmp_path / "out" / "deeper")
    assert sorted(os.path.basename(p) for p in written) == ["speedup_E32_H4_float32.png",
                                                            "speedup_E64_H8_float32.png"]
    for p in written:
        data = open(p, "rb").read()
        assert data.startswith(PNG_MAGIC) and len(data) > 5000
    assert set(plt.get_fignums()) == before, "figures left open"


def test_nothing_to_plot_is_a_config_error(tmp_path):
    d = json_doc([_result(2, 8, 32, 4, 1, 0.0, None)], META)
    with pytest.raises(ConfigError, match="no result"):
        plot_results(d, tmp_path)
    assert not list(tmp_path.iterdir())


# --- asv -------------------------------------------------------------------------------------
BENCH = "benchmarks.MHA.track_speedup"
PARAMS = [["'B2-S8'", "'B4-S8'", "'B8-S8'"], ["'fp16'", "'bf16'"]]
COLUMNS = ["result", "params", "version", "started_at", "duration", "stats_ci_99_a",
           "stats_ci_99_b", "stats_q_25", "stats_q_75", "stats_number", "stats_repeat",
           "samples", "profile"]


def _asv_file(root, machine, commit, date, values, env="virtualenv-py3.11-torch"):
    """One result file as asv 0.6 writes it (Results.save: API version 2, compact rows with
    trailing None columns dropped); ``result`` follows itertools.product(*params)."""
    data = {"commit_hash": commit, "env_name": env, "date": date,
            "params": {"machine": machine, "python": "3.11", "arch": "x86_64"},
            "python": "3.11", "requirements": {"torch": ""}, "env_vars": {},
            "result_columns": COLUMNS,
            "results": {BENCH: [values, PARAMS, "abc123", date + 5, 1.5],
                        "benchmarks.MHA.time_fast": [[1e-4], [], "def456", date + 6, 0.5]},
            "durations": {}, "version": 2}
    path = root / machine / f"{commit[:8]}-{env}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data))
    return path


@pytest.fixture
def asv_dir(tmp_path):
    root = tmp_path / "results"
    (root / "box").mkdir(parents=True)
    (root / "box" / "machine.json").write_text(json.dumps({"machine": "box", "version": 1}))
    (root / "benchmarks.json").write_text(json.dumps(
        {BENCH: {"unit": "unitless", "param_names": ["point", "dtype"]}, "version": 2}))
    # the newer commit sorts first by name: the reader must order by commit date.
    # B8-S8 has no value in any build (outside the measured grid): no series for it.
    _asv_file(root, "box", "aaaaaaaa1111", 2_000_000, [1.5, 1.6, None, 2.0, None, None])
    _asv_file(root, "box", "bbbbbbbb2222", 1_000_000, [1.2, 1.4, 0.9, float("nan"), None, None])
    return root


def test_synthetic_asv_file_is_what_asv_reads(asv_dir):
    asv_results = pytest.importorskip("asv.results")
    r = asv_results.Results.load(str(asv_dir / "box" / "bbbbbbbb-virtualenv-py3.11-torch.json"))
    assert r.get_result_value(BENCH, PARAMS)[:3] == [1.2, 1.4, 0.9]
    assert r.get_result_params(BENCH) == PARAMS


def test_asv_history(asv_dir):
    (h,) = asv_history(asv_dir, BENCH).values()
    assert h["builds"] == ["bbbbbbbb", "aaaaaaaa"]
    assert list(h["series"]) == ["point=B2-S8, dtype=fp16", "point=B2-S8, dtype=bf16",
                                 "point=B4-S8, dtype=fp16", "point=B4-S8, dtype=bf16"]
    assert h["series"]["point=B2-S8, dtype=fp16"] == [1.2, 1.5]
    s = h["series"]["point=B4-S8, dtype=fp16"]
    assert s[0] == 0.9 and math.isnan(s[1])
    s = h["series"]["point=B4-S8, dtype=bf16"]
    assert math.isnan(s[0]) and s[1] == 2.0
    # the short name works when it is unique; a plain benchmark is one series
    assert asv_history(asv_dir, "track_speedup")["box"]["series"] == h["series"]
    assert asv_history(asv_dir, "time_fast")["box"]["series"] == {"time_fast": [1e-4, 1e-4]}


def test_asv_figures_and_files(asv_dir, tmp_path):
    figs = asv_figures(asv_dir, BENCH)
    try:
        (name,) = figs
        (ax,) = figs[name].axes
        lines = _series(ax)
        assert [l.get_label() for l in lines] == ["point=B2-S8, dtype=fp16", "point=B2-S8, dtype=bf16",
                                                  "point=B4-S8, dtype=fp16", "point=B4-S8, dtype=bf16"]
        assert list(lines[1].get_ydata()) == [1.4, 1.6]
        assert list(lines[0].get_xdata()) == [0, 1]
        assert [t.get_text() for t in ax.get_xticklabels()] == ["bbbbbbbb", "aaaaaaaa"]
        assert "unitless" in ax.get_ylabel() and "box" in ax.get_title()
    finally:
        _close(figs)
    written = plot_asv_history(asv_dir, tmp_path / "asvplots", BENCH)
    assert [os.path.basename(p) for p in written] == ["asv_benchmarks.MHA.track_speedup_box.png"]
    assert open(written[0], "rb").read().startswith(PNG_MAGIC)


def _index(html, tags, revs):
    html.mkdir(parents=True, exist_ok=True)
    (html / "index.json").write_text(json.dumps({"tags": tags, "revision_to_hash": revs}))
    return html


def test_asv_tags_label_the_builds(asv_dir, tmp_path):
    html = _index(tmp_path / "html", {"v2.11": 7, "v2.13": 9, "gone": 11},
                  {"7": "bbbbbbbb2222", "9": "cccccccc3333"})
    tags = asv_tags(html)
    assert tags == {"bbbbbbbb2222": "v2.11", "cccccccc3333": "v2.13"}
    assert build_label("bbbbbbbb2222", tags) == "v2.11 (bbbbbbbb)"
    assert build_label("aaaaaaaa1111", tags) == "aaaaaaaa"
    (h,) = asv_history(asv_dir, BENCH, tags).values()
    assert h["builds"] == ["v2.11 (bbbbbbbb)", "aaaaaaaa"]
    assert asv_tags(tmp_path / "nowhere") == {}


def test_plot_command_draws_an_asv_results_dir_with_the_reports_tags(asv_dir, tmp_path,
                                                                    monkeypatch):
    """``mhabench plot DIR``: DIR is asv's results; the tags come from the html/ beside it."""
    from mhabench.report import plot
    _index(tmp_path / "html", {"v1": 1}, {"1": "aaaaaaaa1111"})  # asv_dir is tmp_path/results
    seen = []
    real = plot.plot_asv_history

    def spy(results, out, name, tags=None):
        seen.append(tags)
        return real(results, out, name, tags=tags)
    monkeypatch.setattr(plot, "plot_asv_history", spy)
    rc, out, err = _main(["plot", str(asv_dir), "--metric", BENCH, "--out", str(tmp_path / "p")])
    assert rc == 0, err
    assert out.split() == [str(tmp_path / "p" / "asv_benchmarks.MHA.track_speedup_box.png")]
    assert open(out.split()[0], "rb").read().startswith(PNG_MAGIC)
    assert seen == [{"aaaaaaaa1111": "v1"}]
    rc, out, err = _main(["plot", str(asv_dir), "--metric", "nope", "--out", str(tmp_path / "q")])
    assert rc == 2 and "nope" in err and err.count("\n") == 1
    assert not (tmp_path / "q").exists()


def test_plot_command_defaults_to_a_plots_folder_beside_the_results(asv_dir, tmp_path):
    rc, out, err = _main(["plot", str(asv_dir), "--metric", "track_speedup"])  # a unique tail
    assert rc == 0, err
    assert out.split() == [str(tmp_path / "plots" / "asv_benchmarks.MHA.track_speedup_box.png")]


def test_plot_command_on_a_folder_without_results_exits_2(tmp_path):
    (tmp_path / "results").mkdir()
    rc, out, err = _main(["plot", str(tmp_path / "results")])
    assert rc == 2 and out == "" and "no asv result files" in err and err.count("\n") == 1


def test_asv_unknown_benchmark_or_dir(asv_dir, tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        asv_history(asv_dir, "nope")
    with pytest.raises(ConfigError, match="no such directory"):
        asv_history(tmp_path / "missing", BENCH)


# --- mhabench plot, on a real smoke run ----------------------------------------------------------------
@pytest.fixture(scope="module")
def smoke_json(tmp_path_factory):
    """A real ``mhabench run`` of the smoke grid (plumbing preset), as its own process."""
    path = tmp_path_factory.mktemp("smoke") / "all.json"
    cmd = [sys.executable, "-m", "mhabench", "run", "--grid", "smoke", "--preset", "check", "-q",
           "--json", str(path)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return path


@pytest.mark.slow
def test_plot_command_on_a_real_run(smoke_json, tmp_path):
    rc, out, err = _main(["plot", str(smoke_json), "--out", str(tmp_path / "p")])
    assert rc == 0, err
    written = out.split()
    assert written == [str(tmp_path / "p" / "speedup_E32_H4_float32.png")]  # smoke: E 32, H 4
    assert open(written[0], "rb").read().startswith(PNG_MAGIC)
    figs = results_figures(smoke_json)
    try:
        (ax,) = figs["speedup_E32_H4_float32.png"].axes
        doc = json.loads(smoke_json.read_text())
        shapes = {(r["point"]["batch_size"], r["point"]["seq_len"]) for r in doc["results"]}
        assert [l.get_label() for l in _series(ax)] == [f"batch {b}, seq {s}" for b, s in sorted(shapes)]
        got = sorted(y for l in _series(ax) for y in l.get_ydata())
        assert got == pytest.approx(sorted(r["metrics"]["speedup"] for r in doc["results"]))
    finally:
        _close(figs)


@pytest.mark.slow
def test_breakeven_command_on_a_real_run(smoke_json):
    rc, out, err = _main(["breakeven", str(smoke_json)])
    assert rc == 0, err
    assert "break_even_padding" in out and out.count("float32") == 4  # smoke: 4 shapes


@pytest.mark.parametrize("content, needle", [(None, "no such file"), ("nope", "not JSON"),
                                             ('{"results": 3}', "not an mhabench results JSON")])
def test_plot_command_bad_input_exits_2(tmp_path, content, needle):
    src = tmp_path / "in.json"
    if content is not None:
        src.write_text(content)
    rc, out, err = _main(["plot", str(src), "--out", str(tmp_path / "o")])
    assert rc == 2 and out == "" and needle in err and err.count("\n") == 1
    assert not (tmp_path / "o").exists()


@pytest.mark.slow
def test_plot_command_out_defaults_to_a_folder_beside_the_input(smoke_json):
    rc, out, err = _main(["plot", str(smoke_json)])
    assert rc == 0, err
    assert out.split() == [str(smoke_json.with_name("all_plots") / "speedup_E32_H4_float32.png")]


@pytest.mark.slow
def test_plot_draws_iqr_bars_of_the_per_round_ratios(smoke_json):
    """Each point's bar spans the first to third quartile of its rounds' slow/fast."""
    import numpy as np
    doc = json.loads(smoke_json.read_text())
    figs = results_figures(doc)
    try:
        (ax,) = figs["speedup_E32_H4_float32.png"].axes
        segments = [seg for c in ax.collections if c.get_gid() == "iqr" for seg in c.get_segments()]
        assert len(segments) == len(doc["results"])
        spans = sorted((round(float(seg[0][1]), 9), round(float(seg[1][1]), 9)) for seg in segments)
        want = []
        for r in doc["results"]:
            ratios = [a / b for a, b in zip(r["rounds_us"]["slow"], r["rounds_us"]["fast"])]
            q1, q3 = np.percentile(ratios, [25, 75])
            want.append((round(float(q1), 9), round(float(q3), 9)))
        assert spans == sorted(want)
        assert "higher is better" in ax.get_ylabel()
        assert any("IQR" in t.get_text() for t in ax.get_legend().get_texts())
    finally:
        _close(figs)


def test_varying_labels_keep_only_what_tells_lines_apart():
    from mhabench.report.plot import varying_labels
    labels = ["batch_size=2, seq_len=8, embed_dim=32", "batch_size=4, seq_len=8, embed_dim=32"]
    legend, constant = varying_labels(labels)
    assert legend == {labels[0]: "batch_size=2", labels[1]: "batch_size=4"}
    assert constant == "seq_len=8, embed_dim=32"
    assert varying_labels(["track_x"]) == ({"track_x": "track_x"}, "")


def test_asv_axis_says_which_way_is_better():
    from mhabench.report.plot import direction
    assert direction("speedup.FastOverSlow.track_wall", "fast/slow").startswith("lower is better")
    assert "below 1" in direction("speedup.FastOverSlow.track_wall", "ratio")
    assert direction("efficiency.Efficiency.track_fast_tflops", "TFLOP/s") == "higher is better"
    assert direction("time_per_call.WallTime.track_fast", "microseconds") == "lower is better"


@pytest.mark.slow
def test_plot_command_draws_the_asv_smoke_runs_results(smoke_report, tmp_path):
    """The session's real asv run, read back by ``mhabench plot DIR`` through asv's reader."""
    import itertools

    from mhabench.measure.config import SMOKE_AXES
    from mhabench.suite.common import PARAM_NAMES
    from mhabench.track.asv_results import load_record
    assert smoke_report.run.returncode == 0, smoke_report.run.stdout[-4000:]
    results, name = smoke_report.dir / "results", "speedup.FastOverSlow.track_wall"
    rc, out, err = _main(["plot", str(results), "--out", str(tmp_path / "p")])  # the default
    assert rc == 0, err
    assert out.split() == [str(tmp_path / "p" / f"asv_{name}_{smoke_report.machine}.png")]
    assert open(out.split()[0], "rb").read().startswith(PNG_MAGIC)

    (path,) = (results / smoke_report.machine).glob(f"{smoke_report.commit[:8]}-*.json")
    recorded = load_record(path).values[name]
    (h,) = asv_history(results, name, asv_tags(smoke_report.html)).values()
    assert h["builds"] == [smoke_report.commit[:8]]
    a = SMOKE_AXES
    combos = list(itertools.product(a.batch_sizes, a.seq_lens, a.embed_dims, a.num_heads,
                                    a.beta_bs))
    labels = [", ".join(f"{k}={v}" for k, v in zip(PARAM_NAMES, c)) for c in combos]
    assert sorted(h["series"]) == sorted(labels)
    for combo, label in zip(combos, labels):
        assert h["series"][label] == [recorded[tuple(str(v) for v in combo)]]
    figs = asv_figures(results, name)
    try:
        (fig,) = figs.values()
        (ax,) = fig.axes
        legend = [t.get_text() for t in ax.get_legend().get_texts()]
        assert legend and not any("embed_dim" in t or "num_heads" in t for t in legend)
        assert "embed_dim=32" in ax.get_title() and "lower is better" in ax.get_ylabel()
        assert [ln.get_ydata()[0] for ln in ax.get_lines() if ln.get_gid() == "unity"] == [1.0]
    finally:
        _close(figs)
