"""mhabench.measure.peak on the CPU: a real measurement, the cache, forcing, and no torch at import."""
from __future__ import annotations

import json
import math
import platform
import subprocess
import sys
import warnings

import pytest
import torch

from mhabench.measure import peak
from mhabench.measure.config import ConfigError


@pytest.fixture
def cache(tmp_path, monkeypatch):
    d = tmp_path / "cache"
    monkeypatch.setenv("MHABENCH_CACHE_DIR", str(d))
    return d


@pytest.fixture
def counted(monkeypatch):
    """Replace the measurement: 1 ms per matmul whatever the size; count the calls."""
    calls = []

    def fake(device, dtype, size, reps):
        calls.append((device, dtype, size, reps))
        return 1e-3
    monkeypatch.setattr(peak, "_measure", fake)
    return calls


def test_real_cpu_measurement_is_positive_and_finite(cache):
    value = peak.calibrate("cpu", "fp32", size=128, reps=3)
    assert isinstance(value, float) and math.isfinite(value) and value > 0
    assert value < 1e4  # TFLOP/s: anything above is a unit mistake
    entries = json.loads((cache / "peak.json").read_text())
    (entry,) = entries.values()
    assert entry["tflops"] == value and entry["size"] == 128 and entry["dtype"] == "float32"
    assert entry["torch"] == torch.__version__


def test_second_call_reads_the_cache(cache, counted):
    first = peak.calibrate("cpu", "float32", size=100, reps=2)
    assert first == pytest.approx(2 * 100 ** 3 / 1e-3 / 1e12)
    assert peak.calibrate("cpu", "float32", size=100, reps=2) == first
    assert peak.calibrate("cpu", "fp32", size=100) == first  # alias, other reps: same entry
    assert len(counted) == 1
    assert (cache / "peak.json").is_file()


def test_force_measures_again(cache, counted):
    peak.calibrate("cpu", "float32", size=100, reps=2)
    peak.calibrate("cpu", "float32", size=100, reps=2, force=True)
    assert len(counted) == 2


def test_dtype_and_size_have_their_own_entries(cache, counted):
    peak.calibrate("cpu", "float32", size=100, reps=2)
    peak.calibrate("cpu", "bfloat16", size=100, reps=2)
    peak.calibrate("cpu", "float32", size=64, reps=2)
    peak.calibrate("cpu", "bf16", size=100, reps=2)
    assert [(c[1], c[2]) for c in counted] == [("float32", 100), ("bfloat16", 100), ("float32", 64)]
    assert len(json.loads((cache / "peak.json").read_text())) == 3


def test_cpu_defaults(cache, counted):
    peak.calibrate("cpu", "float32")
    assert counted == [("cpu", "float32", peak.CPU_SIZE, peak.CPU_REPS)]
    assert 512 <= peak.CPU_SIZE <= 1024


def test_corrupt_cache_is_measured_over(cache, counted):
    cache.mkdir(parents=True)
    (cache / "peak.json").write_text("{not json")
    value = peak.calibrate("cpu", "float32", size=100, reps=2)
    assert len(counted) == 1
    assert list(json.loads((cache / "peak.json").read_text()).values())[0]["tflops"] == value


def test_cache_dir_without_the_env_var(monkeypatch, tmp_path):
    monkeypatch.delenv("MHABENCH_CACHE_DIR", raising=False)
    assert peak.cache_dir().name == "mhabench"
    monkeypatch.setenv("MHABENCH_CACHE_DIR", str(tmp_path))
    assert peak.cache_path() == tmp_path / "peak.json"


@pytest.mark.parametrize("kwargs", [{"size": 0}, {"reps": 0}, {"size": 2.5}, {"dtype": "int8"},
                                    {"device": "tpu"}])
def test_bad_arguments_raise_config_error(cache, counted, kwargs):
    args = {"device": "cpu", "dtype": "float32", **kwargs}
    with pytest.raises(ConfigError):
        peak.calibrate(**args)
    assert counted == []


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_cuda_without_cuda_is_a_config_error(cache, counted):
    with pytest.raises(ConfigError, match="CUDA is not available"):
        peak.calibrate("cuda", "fp16")


def test_import_does_not_import_torch():
    code = "import sys, mhabench.measure.peak; sys.exit(1 if 'torch' in sys.modules else 0)"
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0


@pytest.mark.parametrize("probe_s, size", [(1e-5, peak.CPU_SIZE),   # fast: the full size
                                           (5e-3, 256),             # 40 ms at 256, 320 at 512
                                           (1.0, peak.CPU_PROBE)])  # slow: stay at the probe
def test_cpu_size_keeps_a_call_within_budget(monkeypatch, probe_s, size):
    calls = []

    def fake(device, dtype, n, reps):
        calls.append((device, dtype, n))
        return probe_s
    monkeypatch.setattr(peak, "_measure", fake)
    assert peak.cpu_size("fp16") == size
    assert calls == [("cpu", "float16", peak.CPU_PROBE)]
    assert probe_s * (size / peak.CPU_PROBE) ** 3 <= max(peak.CPU_CALL_S, probe_s)


def test_is_cached(cache, counted):
    assert not peak.is_cached("cpu", "fp32", 100)
    peak.calibrate("cpu", "float32", size=100, reps=2)
    assert peak.is_cached("cpu", "fp32", 100) and not peak.is_cached("cpu", "fp32", 64)


# --- checks: before caching, when read, against the run's rates --------------------------------
def _seed_cache(cache, key_size, entry):
    cache.mkdir(parents=True, exist_ok=True)
    key = peak.cache_key(peak.device_name("cpu"), "float32", torch.__version__, key_size)
    (cache / "peak.json").write_text(json.dumps({key: entry}))
    return key


def test_a_cached_calibration_that_never_left_its_smallest_size_is_measured_again(cache, counted):
    """The cache of an older version (no ``checked``) at the probe size: a busy first run."""
    _seed_cache(cache, peak.CPU_PROBE, {"tflops": 0.00063, "size": peak.CPU_PROBE})
    with pytest.warns(peak.PeakWarning, match="never left its smallest size"):
        value = peak.calibrate("cpu", "float32", size=peak.CPU_PROBE, reps=2)
    assert len(counted) == 1 and value == pytest.approx(2 * peak.CPU_PROBE ** 3 / 1e-3 / 1e12)
    (entry,) = json.loads((cache / "peak.json").read_text()).values()
    assert entry["checked"] is True and entry["host"]
    assert peak.calibrate("cpu", "float32", size=peak.CPU_PROBE, reps=2) == value  # now kept
    assert len(counted) == 1


@pytest.mark.parametrize("bad", [0.0, -1.0, None, "x"])
def test_a_cached_peak_that_is_not_a_positive_number_is_measured_again(cache, counted, bad):
    _seed_cache(cache, 100, {"tflops": bad, "size": 100, "checked": True})
    with pytest.warns(peak.PeakWarning, match="not a positive number"):
        peak.calibrate("cpu", "float32", size=100, reps=2)
    assert len(counted) == 1


def test_the_cache_is_keyed_by_host(cache, counted):
    peak.calibrate("cpu", "float32", size=100, reps=2)
    (key,) = json.loads((cache / "peak.json").read_text())
    assert key.startswith(platform.node() + "|")
    assert peak.cache_key("cpu", "float32", "2", 100, host="a") != \
        peak.cache_key("cpu", "float32", "2", 100, host="b")


def test_a_probe_stuck_at_the_smallest_size_is_probed_again(monkeypatch):
    times = iter([1.0, 1e-5])  # first probe descheduled, the second one quiet

    monkeypatch.setattr(peak, "_measure", lambda *a: next(times))
    with pytest.warns(peak.PeakWarning, match="probing again"):
        assert peak.checked_cpu_size("fp32") == (peak.CPU_SIZE, False)


def test_a_probe_that_stays_small_is_kept_after_its_retries(monkeypatch):
    calls = []
    monkeypatch.setattr(peak, "_measure", lambda *a: calls.append(a) or 1.0)
    with pytest.warns(peak.PeakWarning):
        assert peak.checked_cpu_size("fp16") == (peak.CPU_PROBE, True)
    assert len(calls) == peak.PROBE_TRIES


def test_device_peak_prefers_a_larger_cached_size_to_a_busy_probe(cache, monkeypatch):
    _seed_cache(cache, 512, {"tflops": 0.2, "size": 512, "checked": True})
    monkeypatch.setattr(peak, "_measure", lambda *a: pytest.fail("measured"))
    got = peak.device_peak("cpu", "fp32")
    assert (got["tflops"], got["matmul_size"], got["cached"]) == (0.2, 512, True)


@pytest.mark.parametrize("rate, peak_tflops, want", [(0.5, 1.0, 0.5), (1.0, 1.0, 1.0),
                                                     (1.5, 1.0, math.nan), (0.5, math.nan, math.nan),
                                                     (math.nan, 1.0, math.nan)])
def test_a_share_of_the_peak_is_never_above_1(rate, peak_tflops, want):
    got = peak.fraction(rate, peak_tflops)
    assert (math.isnan(got) and math.isnan(want)) or got == want


def test_recheck_measures_again_when_a_rate_exceeds_the_peak(cache, counted):
    entry = {"tflops": 1e-6, "matmul_size": 100}
    assert peak.recheck([5e-7, math.nan], entry, "cpu", "fp32") is entry  # below: unchanged
    assert counted == []
    with pytest.warns(peak.PeakWarning, match="exceeds the peak"):
        new = peak.recheck([2e-6], entry, "cpu", "fp32")
    assert new["rechecked"] and new["tflops"] > 2e-6
    assert [c[2] for c in counted][0] == peak.CPU_PROBE and len(counted) == 2  # probe, measure


def test_no_stored_share_is_above_1():
    from mhabench.measure.config import Point
    from mhabench.measure.results import Result
    r = Result(Point(2, 8, 32, 4, 1, dtype="fp32", device="cpu"), lengths=[8, 8],
               rounds={"fast": [1.0], "slow": [2.0]}, peak_tflops=1e-9)
    m = r.metrics()
    assert m["wall_fast_tflops"] > 1e-9 and math.isnan(m["wall_fast_peak_fraction"])


# --- the run's metadata entry ---------------------------------------------------------------------

def test_peak_entry_is_the_device_peak_with_where_it_came_from(cache, counted):
    first = peak.peak_entry("cpu", "float32")
    assert first["tflops"] > 0 and first["cached"] is False and first["dtype"] == "float32"
    assert first["cache"] == str(cache / "peak.json") and first["seconds"] >= 0
    again = peak.peak_entry("cpu", "float32")
    assert again["cached"] is True and again["tflops"] == first["tflops"]
    assert len(counted) == 2, "the probe and one calibration, then the cache"


def test_peak_entry_reports_a_failure_without_raising(cache, monkeypatch):
    def broken(*a, **k):
        raise RuntimeError("no matmul today\nsecond line")
    monkeypatch.setattr(peak, "device_peak", broken)
    entry = peak.peak_entry("cpu", "float32")
    assert math.isnan(entry["tflops"]) and entry["error"] == "RuntimeError: no matmul today"


def test_peak_entry_hands_its_warnings_over_as_lines(monkeypatch):
    monkeypatch.setattr(peak, "_measure", lambda *a: 1.0)  # a probe that stays small
    lines = []
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # none may escape as a warning
        peak.peak_entry("cpu", "fp32", force=True, on_warning=lines.append)
    assert lines and all(t.startswith("warning: peak:") and "\n" not in t for t in lines)


def test_recheck_entry_hands_its_warnings_over_and_keeps_a_peak_above_the_rates(cache, counted):
    entry = {"tflops": 1e-6, "matmul_size": 100}
    lines = []
    assert peak.recheck_entry([5e-7], entry, "cpu", "fp32", lines.append) is entry
    assert lines == [] and counted == []
    new = peak.recheck_entry([2e-6], entry, "cpu", "fp32", lines.append)
    assert new["rechecked"] and any("exceeds the peak" in t for t in lines)
