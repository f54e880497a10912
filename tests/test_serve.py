"""``mhabench serve``: the whole report on 127.0.0.1 with local copies of its CDN scripts."""
from __future__ import annotations

import json
import signal
import subprocess
import sys
import urllib.request
from pathlib import Path

from mhabench.report import view_check as rv
from mhabench.cli import main

JQUERY = "https://code.jquery.com/jquery-3.3.1.min.js"


def _report(d: Path) -> Path:
    d.mkdir()
    (d / "index.json").write_text(json.dumps({"benchmarks": {}}))
    (d / "index.html").write_text(f'<html><script src="{JQUERY}" integrity="sha256-x" '
                                  'crossorigin="anonymous"></script></html>')
    (d / "graphs").mkdir()
    (d / "graphs" / "g.json").write_text("[1, 2]")
    return d


def _assets(d: Path) -> Path:
    """Every CDN file present (as npm would leave them): nothing to fetch."""
    for url in rv.CDN_FILES:
        path = d / url.split("://", 1)[1]
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(f"/* {url} */")
    return d


def test_serve_gives_the_report_with_local_scripts(tmp_path):
    html, assets = _report(tmp_path / "html"), _assets(tmp_path / "assets")
    proc = subprocess.Popen([sys.executable, "-m", "mhabench", "serve", str(html), "--port", "0",
                             "--assets", str(assets)], stdout=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline()
        assert line.startswith("serving ") and "http://127.0.0.1:" in line, line
        base = line.split(" at ", 1)[1].split()[0]
        page = urllib.request.urlopen(base, timeout=30).read().decode()
        assert JQUERY not in page and '"/_cdn/code.jquery.com/jquery-3.3.1.min.js"' in page
        assert "integrity" not in page  # the local copy's hash differs: attribute dropped
        script = urllib.request.urlopen(base + "_cdn/code.jquery.com/jquery-3.3.1.min.js",
                                        timeout=30).read().decode()
        assert script == f"/* {JQUERY} */"
        assert urllib.request.urlopen(base + "graphs/g.json", timeout=30).read() == b"[1, 2]"
    finally:
        proc.send_signal(signal.SIGTERM)
        rc = proc.wait(timeout=30)
    assert rc == 0


def test_serve_a_folder_that_is_no_report_exits_2(tmp_path, capsys):
    assert main(["serve", str(tmp_path), "--port", "0"]) == 2
    assert "index.json" in capsys.readouterr().err
    assert main(["serve", str(_report(tmp_path / "h")), "--port", "70000"]) == 2
