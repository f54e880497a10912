"""The published asv report on 127.0.0.1, for offline use (``mhabench serve``).

asv 0.6.6's page loads jQuery, flot and bootstrap from CDNs, and without them redirects to its
error page; a plain ``http.server`` therefore shows nothing offline. This serves the report
with local copies of those scripts, fetched once from the npm registry with ``npm pack`` into
the assets folder (``CDN_FILES``); copies whose bytes match the page's ``integrity`` hash keep
it, the others (flot 0.8.3 and stupidtable exist on npm only unminified or in another version)
are served without it.
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
import tarfile
import tempfile
import threading
import urllib.parse
from pathlib import Path

from ..measure.config import ConfigError

DEFAULT_PORT = 8080


class AssetError(Exception):
    """The report's scripts could not be fetched."""


def default_assets() -> Path:
    from ..measure.peak import cache_dir
    return cache_dir() / "asv-cdn"


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
            raise AssetError(f"npm pack {' '.join(packages)} failed: {last}")
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
