"""What asv's regressions feed (``asv publish``: regressions.json / .xml) may flag, per benchmark.

asv takes, for each entry, the *largest* threshold among the regexes matching its name, so the
patterns below do not overlap. Detection is switched off (``regressions_first_commits: null``)
for figures that are not "lower is better, and a rise is a regression": the noise and sample
count figures, a higher-is-better rate, and absolute wall times (they move with the host's
load; the fast/slow ratios carry the regression signal). Shared by ``asv.conf.json`` (a test
holds it to this table) and the config ``mhabench track`` generates.
"""
from __future__ import annotations

WALL_RATIO = r"^speedup\.FastOverSlow\.track_wall"

#: regex -> relative rise that counts. Device figures move 0.4-1% between runs; host-work
#: counts are exact; the wall ratios' threshold is a setting (default 5%).
THRESHOLDS = {
    r"^speedup\.FastOverSlow\.track_device": 0.02,
    r"^time_per_call\.DeviceTime\.": 0.02,
    r"^time_per_call\.SdpaBackend\.": 0.02,
    r"^efficiency\.Efficiency\.track_fast_below_peak": 0.02,
    r"^memory\.GpuMemory\.": 0.01,
    r"^host\.HostWork\.": 0.0,
    r"^host\.Instructions\.": 0.01,
}

#: regex -> None: no regression detection at all for these benchmarks.
FIRST_COMMITS_OFF = {
    r"^speedup\.Noise\.": None,
    r"^speedup\.Rounds\.": None,
    r"^efficiency\.Efficiency\.track_fast_tflops": None,
    r"^efficiency\.Efficiency\.track_fast_wall_": None,  # CPU: wall-time rates move with the host
    r"^time_per_call\.WallTime\.": None,
}

PROJECT_URL = "https://pytorch.org/docs/stable/generated/torch.nn.MultiheadAttention.html"
BUILD_CACHE_SIZE = 8


def feed_settings(wall_threshold: float = 0.05) -> dict:
    """The asv config keys of the feed: thresholds, detection switched off, project link."""
    return {"regressions_thresholds": {WALL_RATIO: wall_threshold, **THRESHOLDS},
            "regressions_first_commits": dict(FIRST_COMMITS_OFF),
            "project_url": PROJECT_URL,
            "build_cache_size": BUILD_CACHE_SIZE}
