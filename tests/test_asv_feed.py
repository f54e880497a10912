"""The regressions feed's settings, and the gate's figure table, against what they describe."""
from __future__ import annotations

import sys
from pathlib import Path

from asv import util

from mhabench.track.asv_feed import FIRST_COMMITS_OFF, THRESHOLDS, feed_settings
from mhabench.figures.run_figures import FIGURES, record_values, stack

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def test_the_repository_config_carries_the_feed_table():
    conf = util.load_json(str(REPO / "asv.conf.json"), js_comments=True)
    for key, value in feed_settings().items():
        assert conf[key] == value, key
    assert conf["show_commit_url"]


def test_feed_patterns_do_not_overlap_and_name_existing_benchmarks():
    """asv applies the largest matching threshold: an overlap would silently widen one."""
    import re
    from benchmarks import correctness, efficiency, memory, speedup, time_per_call
    names = [f"{m.__name__.split('.')[-1]}.{c}.{a}" for m in
             (correctness, efficiency, memory, speedup, time_per_call)
             for c, cls in vars(m).items() if isinstance(cls, type)
             for a in vars(cls) if a.startswith("track_")]
    pats = list(feed_settings()["regressions_thresholds"]) + list(FIRST_COMMITS_OFF)
    for name in names:
        assert sum(bool(re.match(p, name)) for p in pats) <= 1, name
    for p in pats:
        if not p.startswith("^host"):  # host.* figures are defined elsewhere
            assert any(re.match(p, n) for n in names), p
    assert all(t >= 0 for t in THRESHOLDS.values())


def test_run_figures_track_what_the_benchmarks_track():
    from benchmarks import host, speedup, time_per_call
    for name, (key, invert) in FIGURES.items():
        mod, cls, meth = name.split(".")
        fn = getattr(getattr({"speedup": speedup, "time_per_call": time_per_call,
                              "host": host}[mod], cls), meth)
        if fn is None:  # a CUDA-only figure, not discovered on this CPU: its key still exists
            from mhabench.measure.results import Result
            from mhabench.measure.config import Point
            assert key in Result(Point(2, 8, 32, 4, 1, device="cpu")).metrics(), name
            continue
        assert fn.metric == key, name
        assert invert == (cls == "FastOverSlow"), name


def test_record_values_invert_ratios_and_fail_failed_points():
    doc = {"results": [
        {"label": "B2-S8-E32-H4-b1-float32-cpu", "status": "ok",
         "metrics": {"speedup": 2.0, "wall_fast_us": 10.0, "host_fast_aten_ops": 3.0},
         "host_work": {"fast": {"ops": {"aten::linear": 2, "aten::neg": 1}}}},
        {"label": "B2-S8-E32-H4-b61-float32-cpu", "status": "error", "metrics": {}}]}
    v = record_values(doc)
    assert v["speedup.FastOverSlow.track_wall"] == {"B2-S8-E32-H4-b1": 0.5, "B2-S8-E32-H4-b61": None}
    assert v["host.HostWork.track_fast_aten_ops"] == {"B2-S8-E32-H4-b1": 3.0, "B2-S8-E32-H4-b61": None}
    assert stack([doc, doc])["time_per_call.WallTime.track_fast"]["B2-S8-E32-H4-b1"] == [10.0, 10.0]
