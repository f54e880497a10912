"""``mhabench serve HTML_DIR``: the whole published asv report on 127.0.0.1, for offline use.

asv 0.6.6's page loads jQuery, flot and bootstrap from CDNs, and without them redirects to its
error page; a plain ``http.server`` therefore shows nothing offline. This serves the report
with local copies of those scripts (fetched once with ``npm pack`` into the assets folder,
as ``view-check --assets`` does: :mod:`mhabench.report.view_check`).
"""
from __future__ import annotations

import signal
import sys
import time
from pathlib import Path

from ..measure.config import ConfigError

DEFAULT_PORT = 8080


def default_assets() -> Path:
    from ..measure.peak import cache_dir
    return cache_dir() / "asv-cdn"


def register(sub) -> None:
    p = sub.add_parser("serve", help="serve a published asv report on 127.0.0.1, offline",
                       description="Serve HTML_DIR (asv publish's output) on 127.0.0.1 with local "
                                   "copies of the scripts its page loads from CDNs, until Ctrl-C.")
    p.add_argument("html_dir", metavar="HTML_DIR", help="folder written by 'asv publish'")
    p.add_argument("--port", type=int, default=DEFAULT_PORT,
                   help=f"port on 127.0.0.1 (default {DEFAULT_PORT}; 0: a free one)")
    p.add_argument("--assets", default=None, metavar="DIR",
                   help="where the local copies of the page's scripts are kept (default "
                        "MHABENCH_CACHE_DIR or ~/.cache/mhabench, asv-cdn/); fetched with npm "
                        "when missing")
    p.add_argument("--cdn", action="store_true",
                   help="serve the page as it is, its scripts from the CDNs (needs internet)")
    p.set_defaults(func=cmd_serve)


def _interrupt(signum, frame):
    raise KeyboardInterrupt


def cmd_serve(args) -> int:
    from .view_check import ViewError, fetch_assets, load_index, serve
    html = Path(args.html_dir)
    load_index(html)  # ConfigError unless it is a published report
    if not 0 <= args.port < 65536:
        raise ConfigError(f"--port must be in 0..65535, got {args.port}")
    assets = None if args.cdn else Path(args.assets) if args.assets else default_assets()
    if assets is not None:
        try:
            fetch_assets(assets)
        except ViewError as exc:
            print(f"mhabench: serve: {exc} (--cdn serves the page as it is)", file=sys.stderr)
            return 1
    try:
        server = serve(html, assets, args.port)
        url = server.__enter__()
    except OSError as exc:
        raise ConfigError(f"cannot listen on 127.0.0.1:{args.port}: {exc.strerror or exc} "
                          f"(--port 0 picks a free port)") from None
    print(f"serving {html.resolve()} at {url} (Ctrl-C to stop)", flush=True)
    signal.signal(signal.SIGTERM, _interrupt)  # a killed server closes its socket too
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass
    finally:
        server.__exit__(None, None, None)
    return 0
