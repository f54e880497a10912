"""The history's story, first thing in the published report: a line per step of the recorded
builds (which path moved and why), put at the top of asv's ``index.html`` and beside it as
``story.txt``. asv's own first page is a grid of thumbnails, empty where one build is recorded."""
from __future__ import annotations

import html as htmlmod
from pathlib import Path

from ..measure.config import ConfigError
from ..measure.fileio import atomic_write

MARK = "<!-- mhabench story -->"
STYLE = ("position:absolute;z-index:10;top:60px;left:12px;right:12px;padding:6px 10px;"
         "background:#f7f7f0;border:1px solid #ccc;font:12px monospace;white-space:pre-wrap")


#: asv's report is one page whose views are routes in the URL's fragment; the story belongs to
#: the front page (no route) and would cover the top of a graph, its y label included.
#: On the front page the grid (absolutely placed under the navigation bar) starts below it.
FRONT_ONLY = ("<script>(function(){function show(){var e=document.getElementById('mhabench-story');"
              "if(!e)return;var front=location.hash.replace('#','')==='';"
              "e.style.display=front?'':'none';"
              "var g=document.getElementById('summarygrid-display');"
              "if(g)g.style.paddingTop=front?(e.offsetHeight+16)+'px':'';}"
              "window.addEventListener('hashchange',show);"
              "document.addEventListener('DOMContentLoaded',show);show();})();</script>")


def story_lines(directory: Path, builds: list[str], machine: str = "") -> list[str]:
    """One line per step of ``builds`` (oldest first), from the gate; a line saying why where
    the records do not allow one."""
    from ..track.gate import steps
    from .gate_report import story_line
    if len(builds) < 2:
        return [f"one build recorded ({', '.join(builds) or 'none'}): the story starts with the "
                "second"]
    try:
        return [story_line(s) for s in steps(directory, builds, machine)]
    except ConfigError as exc:
        return [f"no story: {exc}"]


def publish_story(directory: Path, builds: list[str], machine: str = "") -> list[str]:
    """Write the story into the published report (``html/index.html`` and ``html/story.txt``)."""
    lines = story_lines(directory, builds, machine)
    html_dir = directory / "html"
    index = html_dir / "index.html"
    if not index.is_file():
        return lines
    atomic_write(html_dir / "story.txt", "\n".join(lines) + "\n")
    page = index.read_text(encoding="utf-8")
    if MARK in page:
        page = page.split(MARK)[0] + page.split(MARK)[2]
    block = (f'{MARK}<div id="mhabench-story" style="{STYLE}"><b>mhabench: the fast path, '
             f'build by build</b>\n{htmlmod.escape(chr(10).join(lines))}</div>{FRONT_ONLY}{MARK}')
    page = page.replace("<body>", "<body>" + block, 1) if "<body>" in page else block + page
    atomic_write(index, page)
    return lines
