"""``mhabench view-check``: open a published asv report in headless Chromium and check that a
benchmark's graph shows data.

``asv publish`` writes JSON that can look right while the page draws nothing (a wrong graph path,
all values n/a, a script that fails to load). So the page is served over HTTP on 127.0.0.1, loaded
in a real browser, and judged twice: by its DOM after JavaScript ran and by a screenshot.

asv 0.6.6's index.html loads jQuery, flot and bootstrap from CDNs. Without internet (CI here) the
page redirects to asv's error.html. ``--assets DIR`` serves local copies instead, fetched once from
the npm registry with ``npm pack`` (see ``CDN_FILES``); copies whose bytes match the page's
``integrity`` hash keep it, the others (flot 0.8.3 and stupidtable exist on npm only unminified or
in another version) are served without it.
"""
from __future__ import annotations

import base64
import contextlib
import functools
import hashlib
import http.server
import io
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import threading
import urllib.parse
from pathlib import Path

from ..measure.config import ConfigError

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]
APT_HINT = "apt-get update && apt-get install -y chromium"
DEFAULT_BENCHMARK = "speedup.FastOverSlow.track_wall"
WINDOW = (1280, 800)
VIRTUAL_TIME_MS = 10000  # virtual time: the page's timers and fetches settle, no wall clock spent
TIMEOUT_S = 120

# Where asv 0.6.6's graph page draws (index.html: #graph-display): right of the 200 px sidebar,
# below the 55 px navigation bar. With the legend hidden, nothing else there has colour.
PLOT_BOX = (210, 60)  # left, top; right and bottom are the window's
# A series pixel: channel spread (max - min of R, G, B) at least this. White background, grey
# grid, black text and axes have spread ~0 (headless text is grey-antialiased); asv's series
# colours have 71..175, except its 4th, #777777, which is grey.
MIN_CHROMA = 40
MIN_SERIES_PIXELS = 40  # one plotted point (a ring of radius 3, line width 2) is ~25 pixels

# CDN address in asv 0.6.6's index.html -> (npm package@version, file in the package).
CDN_FILES = {
    "https://code.jquery.com/jquery-3.3.1.min.js": ("jquery@3.3.1", "dist/jquery.min.js"),
    "https://cdnjs.cloudflare.com/ajax/libs/flot/0.8.3/jquery.flot.min.js":
        ("flot@0.8.3", "jquery.flot.js"),
    "https://cdnjs.cloudflare.com/ajax/libs/flot/0.8.3/jquery.flot.time.min.js":
        ("flot@0.8.3", "jquery.flot.time.js"),
    "https://cdnjs.cloudflare.com/ajax/libs/flot/0.8.3/jquery.flot.selection.min.js":
        ("flot@0.8.3", "jquery.flot.selection.js"),
    "https://cdnjs.cloudflare.com/ajax/libs/flot/0.8.3/jquery.flot.categories.min.js":
        ("flot@0.8.3", "jquery.flot.categories.js"),
    "https://cdn.jsdelivr.net/npm/flot-orderbars@1.0.0/js/jquery.flot.orderBars.js":
        ("flot-orderbars@1.0.0", "js/jquery.flot.orderBars.js"),
    "https://cdnjs.cloudflare.com/ajax/libs/stupidtable/1.0.1/stupidtable.min.js":
        ("stupid-table-plugin@1.1.3", "stupidtable.min.js"),
    "https://cdnjs.cloudflare.com/ajax/libs/blueimp-md5/2.19.0/js/md5.min.js":
        ("blueimp-md5@2.19.0", "js/md5.min.js"),
    "https://cdn.jsdelivr.net/npm/bootstrap@3.1.1/dist/js/bootstrap.min.js":
        ("bootstrap@3.1.1", "dist/js/bootstrap.min.js"),
    "https://cdn.jsdelivr.net/npm/bootstrap@3.1.1/dist/css/bootstrap.min.css":
        ("bootstrap@3.1.1", "dist/css/bootstrap.min.css"),
}
ASSET_PREFIX = "/_cdn/"


def register(sub) -> None:
    p = sub.add_parser("view-check", help="open a published asv report in headless Chromium",
                       description="Serve HTML_DIR on 127.0.0.1, load a benchmark's graph in "
                                   "headless Chromium, save a screenshot and check that data is "
                                   "drawn. Exit 0 and print the PNG path, or 1 naming the problem.")
    p.add_argument("html_dir", metavar="HTML_DIR", help="folder written by 'asv publish'")
    p.add_argument("--out", required=True, metavar="PNG", help="where to save the screenshot")
    p.add_argument("--benchmark", default=DEFAULT_BENCHMARK, metavar="NAME",
                   help=f"benchmark to show (default {DEFAULT_BENCHMARK})")
    p.add_argument("--assets", default=None, metavar="DIR",
                   help="serve the page's CDN scripts from local copies in DIR (fetched with "
                        "npm when missing): for machines without internet")
    p.set_defaults(func=cmd_view_check)


class ViewError(Exception):
    """The report is not shown as it should be: one line, exit status 1."""


# --- pure parts ---------------------------------------------------------------------------------
def load_index(html_dir: Path) -> dict:
    if not html_dir.is_dir():
        raise ConfigError(f"{html_dir}: no such folder")
    index = html_dir / "index.json"
    if not index.is_file():
        raise ConfigError(f"{index}: missing (is {html_dir} an `asv publish` output?)")
    from ..measure.fileio import read_json
    doc = read_json(index, "asv index.json")
    if not isinstance(doc, dict) or not isinstance(doc.get("benchmarks"), dict):
        raise ConfigError(f"{index}: not asv's index.json (no 'benchmarks' object)")
    return doc


def graph_fragment(index: dict, benchmark: str) -> str:
    """asv's route to a benchmark's graph: ``#NAME?key=value&...`` (asv.js format_hash_string).

    With several commits (torch builds) the x-axis is the commit and every parameter value is
    selected: one line per point across the builds, the view a version comparison is read from.
    With one commit it is the parameter with most values, so that lines rather than lone points
    are drawn. The legend is hidden (it has colour but is no data)."""
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


def _element_text(dom: str, element_id: str) -> str | None:
    m = re.search(rf'<(\w+)[^>]*\bid="{re.escape(element_id)}"[^>]*>(.*?)</\1>', dom, re.S)
    return None if m is None else re.sub(r"<[^>]+>", "", m.group(2)).strip()


def dom_problem(dom: str, benchmark: str) -> str | None:
    """Why the page after JavaScript is not the benchmark's drawn graph, or None.

    Checked: not asv's error.html (a script failed to load), the title names the benchmark (the
    route worked), #main-graph holds flot's canvas rather than asv's "No graphs to load." (the plot
    was drawn) and asv's "No data" dialog is empty (the graph JSON loaded)."""
    if "Can not determine continental origin of swallow" in dom:
        return ("the page redirected to asv's error.html: its CDN scripts did not load "
                "(no internet? use --assets DIR)")
    title = _element_text(dom, "title")
    if title != benchmark:
        return f"the graph page did not open (title {title!r}, expected {benchmark!r})"
    start = dom.find('id="main-graph"')
    end = dom.find('id="overview"', start)
    graph = dom[start:end if end > 0 else None] if start >= 0 else ""
    if "No graphs to load." in graph:
        return ("asv says 'No graphs to load.': no published results for this benchmark "
                "(results of a commit outside the config's branches are left out)")
    if 'class="flot-base"' not in graph:
        return "no flot canvas in #main-graph: the graph was not drawn"
    message = _element_text(dom, "error-message")
    if message:
        return f"asv shows an error: {message}"
    return None


def series_pixels(png: Path, box: tuple[int, int] = PLOT_BOX, min_chroma: int = MIN_CHROMA) -> int:
    """Pixels right of / below ``box`` whose colour is saturated: drawn series, not the white
    background, grey grid or black text."""
    from PIL import Image, ImageChops
    with Image.open(png) as im:
        r, g, b = im.convert("RGB").crop((box[0], box[1], im.width, im.height)).split()
    spread = ImageChops.subtract(ImageChops.lighter(ImageChops.lighter(r, g), b),
                                 ImageChops.darker(ImageChops.darker(r, g), b))
    return sum(spread.histogram()[min_chroma:])


def sri(data: bytes, algorithm: str) -> str:
    return f"{algorithm}-{base64.b64encode(hashlib.new(algorithm, data).digest()).decode()}"


def localize(html: str, assets: Path) -> str:
    """index.html with each known CDN address pointed at ``/_cdn/HOST/PATH``; an ``integrity``
    attribute is kept only where the local copy has exactly that hash."""
    def tag(m: re.Match) -> str:
        text = m.group(0)
        for url in CDN_FILES:
            if f'"{url}"' in text:
                local = assets / url.split("://", 1)[1]
                text = text.replace(f'"{url}"', f'"{ASSET_PREFIX}{url.split("://", 1)[1]}"')
                want = re.search(r'\sintegrity="([a-z0-9]+)-[^"]*"', text)
                if want and sri(local.read_bytes(), want.group(1)) not in text:
                    text = re.sub(r'\sintegrity="[^"]*"', "", text)
        return text
    return re.sub(r"<(?:script|link)\b[^>]*>", tag, html)


# --- side effects: assets, server, browser ------------------------------------------------------
def fetch_assets(assets: Path) -> None:
    """Fill ``assets/HOST/PATH`` for every CDN file still missing, with ``npm pack``."""
    missing = {url: spec for url, spec in CDN_FILES.items()
               if not (assets / url.split("://", 1)[1]).is_file()}
    if not missing:
        return
    npm = shutil.which("npm")
    if npm is None:
        raise ConfigError(f"{assets}: lacks the report's scripts and npm is not installed "
                          f"(apt-get install -y npm)")
    with tempfile.TemporaryDirectory() as tmp:
        packages = sorted({spec for spec, _ in missing.values()})
        proc = subprocess.run([npm, "pack", "--silent", "--pack-destination", tmp, *packages],
                              capture_output=True, text=True, timeout=300)
        if proc.returncode != 0:
            last = (proc.stderr.strip().splitlines() or ["?"])[-1]
            raise ViewError(f"npm pack {' '.join(packages)} failed: {last}")
        for url, (spec, member) in missing.items():
            name, version = spec.rsplit("@", 1)
            tgz = Path(tmp) / f"{name.lstrip('@').replace('/', '-')}-{version}.tgz"
            with tarfile.open(tgz) as tar:
                data = tar.extractfile(f"package/{member}").read()
            dest = assets / url.split("://", 1)[1]
            dest.parent.mkdir(parents=True, exist_ok=True)
            dest.write_bytes(data)


class _Handler(http.server.SimpleHTTPRequestHandler):
    assets: Path | None = None

    def log_message(self, *args) -> None:  # quiet
        pass

    def translate_path(self, path: str) -> str:
        clean = urllib.parse.unquote(path.split("?", 1)[0].split("#", 1)[0])
        if self.assets is not None and clean.startswith(ASSET_PREFIX):
            target = (self.assets / clean[len(ASSET_PREFIX):]).resolve()
            if target.is_relative_to(self.assets.resolve()):
                return str(target)
        return super().translate_path(path)

    def send_head(self):
        if self.assets is not None and self.path.split("?", 1)[0] in ("/", "/index.html"):
            body = localize(Path(self.directory, "index.html").read_text(), self.assets).encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            return io.BytesIO(body)
        return super().send_head()


@contextlib.contextmanager
def serve(html_dir: Path, assets: Path | None = None, port: int = 0):
    """``http://127.0.0.1:PORT/`` serving ``html_dir`` (``port`` 0: a free one; loopback only)."""
    handler = type("Handler", (_Handler,), {"assets": assets})
    server = http.server.ThreadingHTTPServer(
        ("127.0.0.1", port), functools.partial(handler, directory=str(html_dir)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def chromium(url: str, extra: list[str]) -> subprocess.CompletedProcess:
    if not Path(CHROMIUM).exists():
        raise ConfigError(f"{CHROMIUM} not found: install it with `{APT_HINT}`")
    with tempfile.TemporaryDirectory() as profile:
        cmd = [CHROMIUM, *CHROMIUM_FLAGS, f"--user-data-dir={profile}",
               f"--window-size={WINDOW[0]},{WINDOW[1]}",
               f"--virtual-time-budget={VIRTUAL_TIME_MS}", *extra, url]
        try:
            return subprocess.run(cmd, capture_output=True, text=True, timeout=TIMEOUT_S)
        except subprocess.TimeoutExpired:
            raise ViewError(f"chromium did not finish within {TIMEOUT_S} s") from None


def view_check(html_dir: Path, out: Path, benchmark: str, assets: Path | None = None) -> Path:
    """Screenshot of ``benchmark``'s graph at ``out``; raises ViewError if it shows no data."""
    index = load_index(html_dir)
    url_fragment = graph_fragment(index, benchmark)
    if assets is not None:
        fetch_assets(assets)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.unlink(missing_ok=True)
    with serve(html_dir, assets) as base:
        # one page load gives both: the DOM and the pixels judged are of the same state
        proc = chromium(base + "index.html" + url_fragment, ["--dump-dom", f"--screenshot={out}"])
    if proc.returncode != 0 or not proc.stdout.strip() or not out.is_file():
        last = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        raise ViewError(f"chromium failed (exit {proc.returncode}, {out} "
                        f"{'written' if out.is_file() else 'not written'}): {last}")
    problem = dom_problem(proc.stdout, benchmark)
    if problem:
        raise ViewError(problem)
    n = series_pixels(out)
    if n < MIN_SERIES_PIXELS:
        raise ViewError(f"{out}: the graph of {benchmark} shows no plotted series "
                        f"({n} coloured pixels, need {MIN_SERIES_PIXELS})")
    return out


def cmd_view_check(args) -> int:
    try:
        path = view_check(Path(args.html_dir), Path(args.out), args.benchmark,
                          Path(args.assets) if args.assets else None)
    except ViewError as exc:
        print(f"mhabench: view-check: {exc}", file=sys.stderr)
        return 1
    print(path)
    return 0
