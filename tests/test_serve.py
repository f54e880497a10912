"""``mhabench serve``: the whole report on 127.0.0.1 with local copies of its CDN scripts
(mhabench.report.serve). The report's view in a browser is tests/test_report_view.py."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from mhabench.commands import main
from mhabench.report import serve as rs

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
    for url in rs.CDN_FILES:
        path = d / url.split("://", 1)[1]
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(f"/* {url} */")
    return d


def test_serve_gives_the_report_with_local_scripts(tmp_path):
    """The command, as a process: the assets live in the cache folder (MHABENCH_CACHE_DIR)."""
    html, cache = _report(tmp_path / "html"), tmp_path / "cache"
    _assets(cache / "asv-cdn")
    env = dict(os.environ, MHABENCH_CACHE_DIR=str(cache))
    proc = subprocess.Popen([sys.executable, "-m", "mhabench", "serve", str(html), "--port", "0"],
                            stdout=subprocess.PIPE, text=True, env=env)
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


def _err_lines(capsys) -> list[str]:
    captured = capsys.readouterr()
    assert captured.out == ""
    return captured.err.strip().splitlines()


def test_serve_a_folder_that_is_no_report_exits_2(tmp_path, capsys):
    assert main(["serve", str(tmp_path / "none"), "--port", "0"]) == 2
    (line,) = _err_lines(capsys)
    assert str(tmp_path / "none") in line and line.startswith("mhabench: error:")
    assert main(["serve", str(tmp_path), "--port", "0"]) == 2
    assert "index.json" in _err_lines(capsys)[0]
    (tmp_path / "index.json").write_text("[]")
    assert main(["serve", str(tmp_path), "--port", "0"]) == 2
    assert "not asv's index.json" in _err_lines(capsys)[0]


def test_serve_a_bad_port_exits_2(tmp_path, capsys):
    assert main(["serve", str(_report(tmp_path / "h")), "--port", "70000"]) == 2
    (line,) = _err_lines(capsys)
    assert "--port" in line and "70000" in line


def test_serve_without_its_scripts_and_npm_exits_2(tmp_path, capsys, monkeypatch):
    """Offline and without npm, the scripts cannot be had: one line saying how."""
    monkeypatch.setenv("MHABENCH_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setattr(rs.shutil, "which", lambda name: None)
    assert main(["serve", str(_report(tmp_path / "h")), "--port", "0"]) == 2
    (line,) = _err_lines(capsys)
    assert "npm" in line and str(tmp_path / "cache" / "asv-cdn") in line
    assert not (tmp_path / "cache" / "asv-cdn").exists()


def test_localize_points_cdn_files_home_and_keeps_only_true_hashes(tmp_path):
    good, bad = list(rs.CDN_FILES)[:2]
    for url, body in ((good, b"same"), (bad, b"other")):
        path = tmp_path / url.split("://", 1)[1]
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(body)
    html = (f'<script src="{good}" integrity="{rs.sri(b"same", "sha256")}" x></script>\n'
            f'<script src="{bad}" integrity="{rs.sri(b"cdn", "sha512")}" x></script>\n'
            '<script src="asv.js"></script>')
    out = rs.localize(html, tmp_path).splitlines()
    assert out[0] == (f'<script src="/_cdn/{good.split("://", 1)[1]}" '
                      f'integrity="{rs.sri(b"same", "sha256")}" x></script>')
    assert out[1] == f'<script src="/_cdn/{bad.split("://", 1)[1]}" x></script>'
    assert out[2] == '<script src="asv.js"></script>'


def test_server_is_on_loopback_and_keeps_to_its_folders(tmp_path):
    html = _report(tmp_path / "html")
    (tmp_path / "secret.txt").write_text("no")
    assets = _assets(tmp_path / "assets")
    with rs.serve(html, assets) as base:
        assert base.startswith("http://127.0.0.1:")
        with urllib.request.urlopen(base + "index.json", timeout=10) as r:
            assert json.loads(r.read()) == {"benchmarks": {}}
        for escape in ("_cdn/../secret.txt", "_cdn/%2e%2e/secret.txt", "_cdn/../../secret.txt",
                       "../secret.txt"):
            with pytest.raises(urllib.error.HTTPError) as ei:
                urllib.request.urlopen(base + escape, timeout=10)
            assert ei.value.code == 404, escape
