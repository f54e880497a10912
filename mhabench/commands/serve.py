"""``mhabench serve HTML_DIR``: the whole published asv report on 127.0.0.1, offline."""
from __future__ import annotations

import signal
import sys
import time
from pathlib import Path

from ..measure.config import ConfigError


def register(sub) -> None:
    from ..report.serve import DEFAULT_PORT
    p = sub.add_parser("serve", help="serve a published asv report on 127.0.0.1, offline",
                       description="Serve HTML_DIR (asv publish's output) on 127.0.0.1 with local "
                                   "copies of the scripts its page loads from CDNs (kept in the "
                                   "cache folder, fetched once with npm), until Ctrl-C.")
    p.add_argument("html_dir", metavar="HTML_DIR", help="folder written by 'asv publish'")
    p.add_argument("--port", type=int, default=DEFAULT_PORT,
                   help=f"port on 127.0.0.1 (default {DEFAULT_PORT}; 0: a free one)")
    p.set_defaults(func=cmd_serve)


def _interrupt(signum, frame):
    raise KeyboardInterrupt


def cmd_serve(args) -> int:
    from ..report.serve import AssetError, default_assets, fetch_assets, load_index, serve
    html = Path(args.html_dir)
    load_index(html)  # ConfigError unless it is a published report
    if not 0 <= args.port < 65536:
        raise ConfigError(f"--port must be in 0..65535, got {args.port}")
    assets = default_assets()
    if assets.exists() and not assets.is_dir():
        raise ConfigError(f"{assets}: not a folder (the report's scripts are kept there)")
    try:
        fetch_assets(assets)
    except (AssetError, OSError) as exc:
        print(f"mhabench: serve: cannot fetch the report's scripts into {assets}: {exc}",
              file=sys.stderr)
        return 3
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
