"""mhabench.measure.host_setup: threads and cores applied to this process, and the host's state."""
from __future__ import annotations

import os

import pytest
import torch

from mhabench.measure import host_setup
from mhabench.measure.config import ConfigError


@pytest.fixture
def restore():
    threads, cores = torch.get_num_threads(), os.sched_getaffinity(0)
    yield
    torch.set_num_threads(threads)
    os.sched_setaffinity(0, cores)


def test_threads_are_set_and_recorded(restore):
    meta = host_setup.apply(1)
    assert torch.get_num_threads() == 1 and meta["threads"] == 1
    assert meta["affinity"] == sorted(os.sched_getaffinity(0))
    assert len(meta["load_avg"]) == 3 and meta["cpu_count"] == os.cpu_count()


def test_default_is_one_thread_on_a_cpu_and_torchs_own_on_cuda():
    assert host_setup.default_threads("cpu") == 1
    assert host_setup.default_threads("cuda:0") is None


def test_pinning_lowers_the_thread_count_to_the_cores(restore):
    core = min(os.sched_getaffinity(0))
    torch.set_num_threads(2)
    meta = host_setup.apply(None, str(core))
    assert os.sched_getaffinity(0) == {core}
    assert meta["threads"] == 1 and meta["affinity"] == [core]


def test_more_threads_than_pinned_cores_is_an_error(restore):
    core = min(os.sched_getaffinity(0))
    before = os.sched_getaffinity(0)
    with pytest.raises(ConfigError, match="--threads 2 needs"):
        host_setup.apply(2, str(core))
    assert os.sched_getaffinity(0) == before  # nothing changed


@pytest.mark.parametrize("text, needle", [("x", "not an integer"), ("0", ">= 1"), ("-3", ">= 1")])
def test_bad_threads(text, needle):
    with pytest.raises(ConfigError, match=needle):
        host_setup.parse_threads(text)


@pytest.mark.parametrize("text", ["a", "-1", ","])
def test_bad_cores(text):
    with pytest.raises(ConfigError, match="--pin-cpu"):
        host_setup.parse_cores(text)


def test_unavailable_core_is_an_error(restore):
    with pytest.raises(ConfigError, match="not available"):
        host_setup.apply(None, str(max(os.sched_getaffinity(0)) + 1000))


def test_busy_warning_only_above_the_cores():
    assert host_setup.busy_warning({"load_avg": [1.9, 1, 1], "cpu_count": 2}) is None
    line = host_setup.busy_warning({"load_avg": [4.5, 1, 1], "cpu_count": 2})
    assert "busy" in line and "4.50" in line and "\n" not in line


def test_noise_warning_only_far_above_the_usual():
    assert host_setup.noise_warning([0.02, 0.05, float("nan")]) is None
    assert host_setup.noise_warning([]) is None
    line = host_setup.noise_warning([0.5, 0.6, 0.7])
    assert "noisy" in line and "0.60" in line
