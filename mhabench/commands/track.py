"""``mhabench track``: record torch builds through asv, each in an environment of its own, then
publish, with the history's story first in the report (:mod:`mhabench.track.track`)."""
from __future__ import annotations

from ..measure.config import GRID_SYNTAX
from ..run.spec import SUITES


def register(sub) -> None:
    p = sub.add_parser("track", help="benchmark torch builds through asv, one commit per build",
                       description="Record torch builds with asv, each in a virtualenv of its "
                                   "own (each build one commit of a generated repository), "
                                   "then publish. docs/tracking.md says more.")
    p.add_argument("builds", nargs="*", metavar="BUILD",
                   help="torch version (2.13.0, torch==2.13.0), nightly (2.15.0.dev20260101), "
                        "optionally @YYYY-MM-DD")
    p.add_argument("--existing", default="", metavar="PYTHON",
                   help="also record the torch this interpreter imports (your own build)")
    p.add_argument("--grid", default="", help=f"{GRID_SYNTAX} (default smoke on a CPU, seed on "
                                              "CUDA)")
    p.add_argument("--device", default="cpu", help="cpu or cuda (cpu)")
    p.add_argument("--dtype", default="", help="fp16, bf16 or fp32 (the device's default)")
    p.add_argument("--dir", default=".asv/torch", help="where the repo, config and results go")
    p.add_argument("--machine", default="", help="asv machine name (default HOST-GRID-DEVICE)")
    p.add_argument("--nightly-index", default="", metavar="URL",
                   help="pip index of nightlies (default the CPU one)")
    p.add_argument("--rerun", action="store_true", help="measure builds already recorded again")
    p.add_argument("--repeats", type=int, default=1, metavar="N",
                   help="records per build, each a fresh process, builds interleaved (A B A B); "
                        "the gate reads the spread between them (3 is its usual)")
    p.add_argument("--suite", default="full", choices=SUITES,
                   help="full (every figure), core (no extras: the per-build profile on a GPU), "
                        "host (host-work counts and instructions only)")
    p.add_argument("--instructions", action="store_true",
                   help="also count host instructions per call (CPU, callgrind: minutes a "
                        "record on a 2-core machine); the gate judges them")
    p.set_defaults(func=cmd_track)


def cmd_track(args) -> int:
    from ..report.story import publish_story
    from ..track.track import read_manifest, settings_of, track
    s = settings_of(args)
    status = track(s, args.builds, existing=args.existing, nightly_index=args.nightly_index)
    manifest = read_manifest(s.dir)
    lines = publish_story(s.dir, [b.tag for b in manifest.get("builds", [])], s.machine_name)
    print("the story, build by build:")
    for line in lines:
        print(f"  {line}")
    return status
