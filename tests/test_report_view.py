"""The published asv report, in a browser: the session's asv smoke report (conftest's
``smoke_report``) served by ``mhabench.report.serve.serve`` with the local copies of its CDN
scripts, opened in headless /usr/bin/chromium through playwright, and read with selectors and
flot's own plot object (no pixel counting).

Needs playwright (the ``test`` extra), /usr/bin/chromium (``apt-get install -y chromium``) and
npm with its registry (the scripts come from npm: nothing is fetched from a CDN).
"""
from __future__ import annotations

import glob
import json
import shutil
import urllib.parse
from pathlib import Path

import pytest

try:
    from playwright.sync_api import sync_playwright
except ImportError:  # pragma: no cover - the test extra installs it
    sync_playwright = None

from mhabench.measure.config import ConfigError
from mhabench.report import serve as rs

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking"]
WINDOW = {"width": 1280, "height": 800}
BENCH = "speedup.FastOverSlow.track_wall"
ERROR_PAGE = "Can not determine continental origin of swallow"  # asv's error.html
TIMEOUT_MS = 60_000


def graph_fragment(index: dict, benchmark: str) -> str:
    """asv's route to a benchmark's graph: ``#NAME?key=value&...`` (asv.js format_hash_string).

    With several commits (torch builds) the x-axis is the commit and every parameter value is
    selected: one line per point across the builds, the view a version comparison is read from.
    With one commit it is the parameter with most values, so that lines rather than lone points
    are drawn. The legend is hidden."""
    if benchmark not in index.get("benchmarks", {}):
        raise ConfigError(f"benchmark {benchmark!r} is not in the report's index.json")
    bench = index["benchmarks"][benchmark]
    params: list[tuple[str, str]] = [("show-legend", "false")]
    sizes = [len(v) for v in bench.get("params", [])]
    if len(index.get("revision_to_hash", {})) > 1:
        params.append(("x-axis", "commit"))
        params += [(f"p-{name}", value) for name, values in
                   zip(bench.get("param_names", []), bench.get("params", [])) for value in values]
    elif sizes and max(sizes) > 1:
        params.append(("x-axis", bench["param_names"][sizes.index(max(sizes))]))
    query = "&".join(f"{urllib.parse.quote(k, safe='')}={urllib.parse.quote(v, safe='')}"
                     for k, v in params)
    return f"#{benchmark}?{query}"


# --- the route -----------------------------------------------------------------------------------
INDEX = {"benchmarks": {BENCH: {"params": [["2", "4"], ["8"], ["1", "61", "2"]],
                                "param_names": ["batch_size", "seq_len", "beta_b"]},
                        "plain": {"params": [], "param_names": []}}}


def test_graph_fragment_is_asvs_route_with_the_widest_axis_and_no_legend():
    assert graph_fragment(INDEX, BENCH) == f"#{BENCH}?show-legend=false&x-axis=beta_b"
    assert graph_fragment(INDEX, "plain") == "#plain?show-legend=false"
    with pytest.raises(ConfigError, match="'nope' is not in"):
        graph_fragment(INDEX, "nope")


def test_graph_fragment_of_several_builds_runs_along_the_commits_with_every_point():
    builds = {**INDEX, "revision_to_hash": {"1": "a" * 40, "2": "b" * 40}}
    assert graph_fragment(builds, BENCH) == (
        f"#{BENCH}?show-legend=false&x-axis=commit&p-batch_size=2&p-batch_size=4&p-seq_len=8"
        "&p-beta_b=1&p-beta_b=61&p-beta_b=2")


# --- in the browser ------------------------------------------------------------------------------
@pytest.fixture(scope="session")
def browser():
    if sync_playwright is None:
        pytest.skip("playwright is not installed (pip install playwright)")
    if not Path(CHROMIUM).exists():
        pytest.skip(f"{CHROMIUM} absent: apt-get update && apt-get install -y chromium")
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield b
        b.close()


@pytest.fixture(scope="session")
def assets(tmp_path_factory) -> Path:
    """The report's CDN scripts, from npm, once per session, in a cache folder of the tests."""
    if shutil.which("npm") is None:
        pytest.skip("npm is not installed: the report's scripts come from the npm registry")
    d = tmp_path_factory.mktemp("asv-cdn")
    rs.fetch_assets(d)
    return d


@pytest.fixture
def report(smoke_report) -> Path:
    assert smoke_report.run.returncode == 0, smoke_report.run.stdout[-4000:]
    assert smoke_report.publish.returncode == 0, smoke_report.publish.stderr[-4000:]
    return smoke_report.html


#: What the graph page shows, read from its DOM and from flot's plot object.
FACTS = """() => {
  const text = (sel) => { const e = document.querySelector(sel); return e ? e.innerText : null; };
  const plot = window.jQuery ? jQuery('#main-graph').data('plot') : undefined;
  return {
    error_page: location.pathname.endsWith('error.html')
                || document.body.innerText.includes('%s'),
    title: text('#title'),
    canvas: !!document.querySelector('#main-graph canvas.flot-base'),
    main_graph: text('#main-graph'),
    error_message: (text('#error-message') || '').trim(),
    series: plot ? plot.getData().map(s => s.data.filter(
        d => d && d[1] !== null && isFinite(d[1])).length) : null,
  };
}""" % ERROR_PAGE

#: The page has settled one way or the other: flot's plot holds series, or asv gave up.
SETTLED = """() => location.pathname.endsWith('error.html')
  || document.body.innerText.includes('%s')
  || (document.querySelector('#main-graph') || {innerText: ''}).innerText.includes('No graphs')
  || (window.jQuery && jQuery('#main-graph').data('plot')
      && jQuery('#main-graph').data('plot').getData().length > 0)""" % ERROR_PAGE


def open_graph(browser, html: Path, assets: Path | None, benchmark: str = BENCH,
               offline: bool = False) -> dict:
    """Open ``benchmark``'s graph in the report at ``html``, served with ``assets``; the page's
    facts once it has settled. ``offline``: requests beyond the server fail (no internet)."""
    fragment = graph_fragment(json.loads((html / "index.json").read_text()), benchmark)
    with rs.serve(html, assets) as base:
        context = browser.new_context(viewport=WINDOW)
        try:
            page = context.new_page()
            if offline:
                page.route("**/*", lambda route: route.continue_()
                           if route.request.url.startswith(base) else route.abort())
            page.goto(base + "index.html" + fragment)
            page.wait_for_function(SETTLED, timeout=TIMEOUT_MS)
            page.wait_for_load_state("networkidle")
            return page.evaluate(FACTS)
        finally:
            context.close()


def _published_values(html: Path, benchmark: str) -> int:
    """How many values the report's graph files hold for ``benchmark`` (one per point and
    build; the front page's ``summary`` mean left out)."""
    n = 0
    for f in glob.glob(str(html / "graphs" / "branch-*" / "**" / f"{benchmark}.json"),
                       recursive=True):
        for _, y in json.loads(Path(f).read_text()):
            n += sum(v is not None for v in (y if isinstance(y, list) else [y]))
    return n


@pytest.mark.slow
def test_the_published_report_shows_the_graph_with_its_data(browser, report, assets):
    facts = open_graph(browser, report, assets)
    assert not facts["error_page"], "asv's error page: its scripts did not load"
    assert facts["title"] == BENCH
    assert facts["canvas"], facts
    assert "No graphs to load." not in (facts["main_graph"] or "")
    assert facts["error_message"] == ""
    assert facts["series"] and all(n > 0 for n in facts["series"]), facts["series"]
    assert sum(facts["series"]) == _published_values(report, BENCH) > 0


@pytest.mark.slow
def test_a_report_with_emptied_results_draws_no_points(browser, report, assets, tmp_path):
    """Every graph value set to null: the page and its axes still draw, the series hold no
    point (what the check above would catch)."""
    html = tmp_path / "html"
    shutil.copytree(report, html)
    graphs = [Path(f) for f in glob.glob(str(html / "graphs" / "**" / f"{BENCH}.json"),
                                         recursive=True)]
    assert graphs
    for f in graphs:
        points = json.loads(f.read_text())
        f.write_text(json.dumps([[x, [None] * len(y) if isinstance(y, list) else None]
                                 for x, y in points]))
    facts = open_graph(browser, html, assets)
    assert facts["title"] == BENCH and facts["canvas"] and not facts["error_page"]
    assert sum(facts["series"] or []) == 0, facts["series"]


@pytest.mark.slow
def test_without_the_local_scripts_an_offline_report_is_asvs_error_page(browser, report):
    """What ``mhabench serve`` exists for: asv's page needs its CDN scripts."""
    facts = open_graph(browser, report, None, offline=True)
    assert facts["error_page"] and facts["series"] is None


@pytest.mark.slow
def test_a_benchmark_the_report_lacks_has_no_route(report):
    """Device times cannot exist on a CPU, so a CPU report does not hold them at all."""
    index = json.loads((report / "index.json").read_text())
    assert BENCH in index["benchmarks"]
    with pytest.raises(ConfigError, match="DeviceTime"):
        graph_fragment(index, "time_per_call.DeviceTime.track_fast")


# --- the story mhabench puts first ---------------------------------------------------------------
#: A story as long as a five-release history's (tests/data/history), one line per step.
LONG_STORY = [f"2.{i}.0 -> 2.{i + 1}.0: the fast path is not worse: fast -{i}.0% "
              "(aten::as_strided 42->32, aten::slice 17->7 at 2 of 8 points); slow -2.1%"
              for i in range(6)]


@pytest.fixture
def story_report(report, tmp_path, monkeypatch) -> Path:
    """The smoke report with a history's story block, as ``mhabench track`` publishes it
    (:func:`mhabench.report.story.publish_story`), unless the report has one already."""
    from mhabench.report import story as st
    if st.MARK in (report / "index.html").read_text(encoding="utf-8"):
        return report
    d = tmp_path / "track"
    shutil.copytree(report, d / "html")
    monkeypatch.setattr(st, "story_lines", lambda *a: LONG_STORY)
    assert st.publish_story(d, ["2.12.0", "2.13.0"]) == LONG_STORY
    assert st.MARK in (d / "html" / "index.html").read_text(encoding="utf-8")
    return d / "html"


@pytest.mark.slow
def test_the_story_is_visible_on_the_first_page(browser, story_report, assets):
    story = (story_report / "story.txt").read_text(encoding="utf-8").strip().splitlines()
    with rs.serve(story_report, assets) as base:
        context = browser.new_context(viewport=WINDOW)
        try:
            page = context.new_page()
            page.goto(base + "index.html")
            page.wait_for_load_state("networkidle")
            assert ERROR_PAGE not in page.inner_text("body")
            block = page.locator("#mhabench-story")
            assert block.count() == 1 and block.is_visible()
            box = block.bounding_box()
            assert box and box["height"] > 0 and 0 <= box["y"] < WINDOW["height"], box
            on_top = page.evaluate("""() => {
                const e = document.getElementById('mhabench-story');
                const r = e.getBoundingClientRect();
                return e.contains(document.elementFromPoint(r.left + r.width / 2,
                                                            r.top + r.height / 2)); }""")
            assert on_top, "the story is covered by the page"
            page.wait_for_selector(".benchmark-container", timeout=TIMEOUT_MS)
            hidden = page.evaluate("""() => {
                const s = document.getElementById('mhabench-story');
                return Array.from(document.querySelectorAll('.benchmark-container'))
                    .filter(c => { const r = c.getBoundingClientRect();
                                   return r.top < innerHeight && r.bottom > 0; })
                    .filter(c => { const r = c.getBoundingClientRect();
                                   return s.contains(document.elementFromPoint(
                                       r.left + r.width / 2, Math.max(r.top, 0) + 5)); })
                    .map(c => c.innerText); }""")
            assert hidden == [], f"the story covers thumbnails of the grid: {hidden}"
            text = block.inner_text()
            assert "build by build" in text and all(line in text for line in story)
        finally:
            context.close()


@pytest.mark.slow
def test_the_story_leaves_a_graph_page_alone(browser, story_report, assets):
    """A benchmark's graph is a route of the same page: the story would cover its top (and the
    y label), so it shows on the front page only, and again when the reader goes back there."""
    fragment = graph_fragment(json.loads((story_report / "index.json").read_text()), BENCH)
    with rs.serve(story_report, assets) as base:
        context = browser.new_context(viewport=WINDOW)
        try:
            page = context.new_page()
            page.goto(base + "index.html" + fragment)
            page.wait_for_function(SETTLED, timeout=TIMEOUT_MS)
            assert page.locator("#mhabench-story").count() == 1
            assert not page.locator("#mhabench-story").is_visible()
            page.evaluate("() => { location.hash = ''; }")
            page.wait_for_function(
                "() => document.getElementById('mhabench-story').style.display === ''")
            assert page.locator("#mhabench-story").is_visible()
        finally:
            context.close()
