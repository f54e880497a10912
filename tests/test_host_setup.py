"""mhabench.measure.host_setup: threads applied to this process, and the host's state."""
from __future__ import annotations

import os

import pytest
import torch

from mhabench.measure import host_setup


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


def test_no_threads_keeps_torchs_own(restore):
    torch.set_num_threads(2)
    meta = host_setup.apply(None)
    assert torch.get_num_threads() == 2 and meta["threads"] == 2


def test_apply_leaves_the_cores_to_the_caller(restore):
    """Cores are chosen by starting the command under taskset: apply never changes them."""
    before = os.sched_getaffinity(0)
    host_setup.apply(1)
    assert os.sched_getaffinity(0) == before


def test_the_host_meta_is_plain_json():
    import json
    meta = host_setup.host_meta()
    assert json.loads(json.dumps(meta)) == meta
    assert set(meta) == {"threads", "affinity", "cpu_count", "load_avg"}
    assert meta["affinity"] == host_setup.affinity()


def test_busy_warning_only_above_the_cores():
    assert host_setup.busy_warning({"load_avg": [1.9, 1, 1], "cpu_count": 2}) is None
    line = host_setup.busy_warning({"load_avg": [4.5, 1, 1], "cpu_count": 2})
    assert "busy" in line and "4.50" in line and "\n" not in line


def test_noise_warning_only_far_above_the_usual():
    assert host_setup.noise_warning([0.02, 0.05, float("nan")]) is None
    assert host_setup.noise_warning([]) is None
    line = host_setup.noise_warning([0.5, 0.6, 0.7])
    assert "noisy" in line and "0.60" in line


def test_the_warnings_read_what_a_run_recorded():
    assert host_setup.busy_warning({}) is None
    assert host_setup.noise_warning([float("nan"), "x"]) is None


CHILD = ("from mhabench.measure.host_setup import die_with_parent; die_with_parent(); "
         "print('ready', flush=True); import time; time.sleep(60)")
MIDDLE = ("import subprocess, sys; p = subprocess.Popen([sys.executable, '-c', sys.argv[1]], "
          "stdout=subprocess.PIPE); p.stdout.readline(); print(p.pid, flush=True)")


def _gone(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] == "Z"
    except FileNotFoundError:
        return True


@pytest.mark.skipif(not os.path.isdir("/proc/self"), reason="needs Linux")
def test_a_measuring_process_dies_with_its_parent():
    """The parent of a process that called die_with_parent exits: the kernel kills it."""
    import subprocess
    import sys
    import time
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    out = subprocess.run([sys.executable, "-c", MIDDLE, CHILD], cwd=root, capture_output=True,
                         text=True, timeout=60, check=True)
    pid = int(out.stdout.strip())
    deadline = time.monotonic() + 10
    while not _gone(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert _gone(pid), "the child outlived its parent"


def test_the_collector_is_off_inside_the_block_and_as_before_after_it_even_on_error():
    import gc

    from mhabench.measure.host_setup import collector_off
    for before in (True, False):
        (gc.enable if before else gc.disable)()
        try:
            with pytest.raises(RuntimeError):
                with collector_off():
                    assert not gc.isenabled()
                    raise RuntimeError("a path raised")
            assert gc.isenabled() == before
        finally:
            gc.enable()
