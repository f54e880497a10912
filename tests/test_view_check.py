"""``mhabench view-check``: the criteria on made-up input, then the real thing: the session's asv
smoke report opened in headless Chromium, and a copy of it with its results emptied, which must
fail. The browser tests need /usr/bin/chromium (.ci/run installs it) and npm with its registry
(the report's CDN scripts are served from npm copies: no internet here)."""
from __future__ import annotations

import glob
import json
import shutil
import urllib.request
from pathlib import Path

import pytest
from PIL import Image, ImageDraw

from mhabench.report import view_check as rv
from mhabench.cli import main

BENCH = "speedup.FastOverSlow.track_wall"
needs_chromium = pytest.mark.skipif(not Path(rv.CHROMIUM).exists(),
                                    reason=f"{rv.CHROMIUM} absent: `{rv.APT_HINT}`")


# --- pure parts ----------------------------------------------------------------------------------
INDEX = {"benchmarks": {BENCH: {"params": [["2", "4"], ["8"], ["1", "61", "2"]],
                                "param_names": ["batch_size", "seq_len", "beta_b"]},
                        "plain": {"params": [], "param_names": []}}}


def test_graph_fragment_is_asvs_route_with_the_widest_axis_and_no_legend():
    assert rv.graph_fragment(INDEX, BENCH) == f"#{BENCH}?show-legend=false&x-axis=beta_b"
    assert rv.graph_fragment(INDEX, "plain") == "#plain?show-legend=false"
    with pytest.raises(rv.ConfigError, match="'nope' is not in"):
        rv.graph_fragment(INDEX, "nope")


def test_graph_fragment_of_several_builds_runs_along_the_commits_with_every_point():
    builds = {**INDEX, "revision_to_hash": {"1": "a" * 40, "2": "b" * 40}}
    assert rv.graph_fragment(builds, BENCH) == (
        f"#{BENCH}?show-legend=false&x-axis=commit&p-batch_size=2&p-batch_size=4&p-seq_len=8"
        "&p-beta_b=1&p-beta_b=61&p-beta_b=2")


def _png(path: Path, colour) -> Path:
    im = Image.new("RGB", rv.WINDOW, "white")
    d = ImageDraw.Draw(im)
    d.rectangle((260, 115, 1236, 650), outline="#545454")  # axes box
    d.line((260, 400, 1236, 400), fill="#dddddd")  # grid line
    d.text((300, 300), "2.20 ratio", fill="black")
    d.rectangle((5, 290, 180, 300), fill="#247AAD")  # a selected sidebar button: not the plot
    if colour:
        d.line((262, 340, 1236, 118), fill=colour, width=1)
    im.save(path)
    return path


@pytest.mark.parametrize("colour, drawn", [(None, False), ("#777777", False),
                                           ("#E24A33", True), ("#988ED5", True)])
def test_series_pixels_count_colour_inside_the_plot_only(tmp_path, colour, drawn):
    n = rv.series_pixels(_png(tmp_path / "p.png", colour))
    assert (n >= rv.MIN_SERIES_PIXELS) is drawn, n
    assert n == 0 or drawn


def test_dom_problem_names_each_failure():
    ok = (f'<span id="title">{BENCH}</span><div id="main-graph"><canvas class="flot-base">'
          '</canvas></div><div id="overview"></div><div id="error-message"> </div>')
    assert rv.dom_problem(ok, BENCH) is None
    assert "error.html" in rv.dom_problem(
        "<h1>Can not determine continental origin of swallow.</h1>", BENCH)
    assert "did not open" in rv.dom_problem(ok.replace(BENCH, "other"), BENCH)
    assert "no flot canvas" in rv.dom_problem(ok.replace("flot-base", "x"), BENCH)
    assert "No graphs to load" in rv.dom_problem(
        ok.replace('<canvas class="flot-base"></canvas>', "<p>No graphs to load.</p>"), BENCH)
    assert "No data" in rv.dom_problem(ok.replace("> </div>", ">No data for this.</div>"), BENCH)


def test_localize_points_cdn_files_home_and_keeps_only_true_hashes(tmp_path):
    good, bad = list(rv.CDN_FILES)[:2]
    for url, body in ((good, b"same"), (bad, b"other")):
        path = tmp_path / url.split("://", 1)[1]
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(body)
    html = (f'<script src="{good}" integrity="{rv.sri(b"same", "sha256")}" x></script>\n'
            f'<script src="{bad}" integrity="{rv.sri(b"cdn", "sha512")}" x></script>\n'
            '<script src="asv.js"></script>')
    out = rv.localize(html, tmp_path).splitlines()
    assert out[0] == (f'<script src="/_cdn/{good.split("://", 1)[1]}" '
                      f'integrity="{rv.sri(b"same", "sha256")}" x></script>')
    assert out[1] == f'<script src="/_cdn/{bad.split("://", 1)[1]}" x></script>'
    assert out[2] == '<script src="asv.js"></script>'


def test_server_is_on_loopback_and_serves_the_folder(tmp_path):
    (tmp_path / "index.json").write_text("{}")
    with rv.serve(tmp_path) as base:
        assert base.startswith("http://127.0.0.1:")
        with urllib.request.urlopen(base + "index.json", timeout=10) as r:
            assert r.read() == b"{}"


def test_bad_input_is_one_line_naming_it(tmp_path, capsys):
    png = str(tmp_path / "x.png")
    assert main(["view-check", str(tmp_path / "none"), "--out", png]) == 2
    assert str(tmp_path / "none") in capsys.readouterr().err
    assert main(["view-check", str(tmp_path), "--out", png]) == 2
    assert str(tmp_path / "index.json") in capsys.readouterr().err
    (tmp_path / "index.json").write_text(json.dumps(INDEX))
    assert main(["view-check", str(tmp_path), "--out", png, "--benchmark", "nope"]) == 2
    err = capsys.readouterr().err
    assert "'nope'" in err and len(err.strip().splitlines()) == 1


def test_missing_chromium_says_how_to_install_it(tmp_path, monkeypatch, capsys):
    (tmp_path / "index.json").write_text(json.dumps(INDEX))
    monkeypatch.setattr(rv, "CHROMIUM", str(tmp_path / "no-chromium"))
    assert main(["view-check", str(tmp_path), "--out", str(tmp_path / "x.png")]) == 2
    assert "apt-get install -y chromium" in capsys.readouterr().err


# --- in the browser ------------------------------------------------------------------------------
@pytest.fixture(scope="session")
def assets(tmp_path_factory) -> Path:
    """The report's CDN scripts, from npm, once per session."""
    d = tmp_path_factory.mktemp("cdn")
    rv.fetch_assets(d)
    return d


@pytest.fixture
def report(smoke_report) -> Path:
    assert smoke_report.run.returncode == 0, smoke_report.run.stderr[-4000:]
    assert smoke_report.publish.returncode == 0, smoke_report.publish.stderr[-4000:]
    return smoke_report.html


def _check(html: Path, png: Path, assets: Path, *extra) -> int:
    return main(["view-check", str(html), "--out", str(png), "--assets", str(assets), *extra])


@needs_chromium
def test_the_published_report_shows_the_graph(report, assets, tmp_path, capsys):
    png = tmp_path / "shot" / "graph.png"
    assert _check(report, png, assets) == 0, capsys.readouterr().err
    assert capsys.readouterr().out.strip() == str(png)
    with Image.open(png) as im:
        assert im.size == rv.WINDOW
    assert rv.series_pixels(png) >= rv.MIN_SERIES_PIXELS


@needs_chromium
def test_a_report_with_emptied_results_fails(report, assets, tmp_path, capsys):
    """Every graph value set to null: the page and its axes still draw, the series do not."""
    html = tmp_path / "html"
    shutil.copytree(report, html)
    graphs = [Path(f) for f in glob.glob(str(html / "graphs" / "**" / f"{BENCH}.json"),
                                         recursive=True)]
    assert graphs
    for f in graphs:
        points = json.loads(f.read_text())
        f.write_text(json.dumps([[x, [None] * len(y) if isinstance(y, list) else None]
                                 for x, y in points]))
    png = tmp_path / "empty.png"
    assert _check(html, png, assets) == 1
    err = capsys.readouterr().err.strip()
    assert "shows no plotted series" in err and len(err.splitlines()) == 1, err
    assert png.is_file()  # the screenshot is kept to look at


@needs_chromium
def test_a_benchmark_the_report_lacks_is_one_line_and_exit_2(report, assets, tmp_path, capsys):
    """Device times cannot exist on a CPU, so a CPU report does not hold them at all."""
    assert _check(report, tmp_path / "d.png", assets,
                  "--benchmark", "time_per_call.DeviceTime.track_fast") == 2
    err = capsys.readouterr().err.strip()
    assert "time_per_call.DeviceTime.track_fast" in err and len(err.splitlines()) == 1, err
    assert not (tmp_path / "d.png").exists()
