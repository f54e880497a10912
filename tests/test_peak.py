"""mhabench.peak on the CPU: a real measurement, the cache, forcing, and no torch at import."""
from __future__ import annotations

import json
import math
import subprocess
import sys

import pytest
import torch

from mhabench import peak
from mhabench.config import ConfigError


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
    code = "import sys, mhabench.peak; sys.exit(1 if 'torch' in sys.modules else 0)"
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
