"""Shared fixtures: a tiny CPU fp32 point, a small protocol, an independent
re-implementation of the reference script's sequence-length formula, and one real asv smoke run +
publish per session (asv in subprocesses with a temporary config, results, html and HOME)."""
from __future__ import annotations

from dataclasses import dataclass
import json
import os
from pathlib import Path
import random
import subprocess
import sys

import numpy as np
import pytest
import torch

from mhabench.measure.config import Point
from mhabench.measure.protocol import Protocol


def _reference_lengths(a, b, batch_size, seq_len, block_size, seed):
    """The length draw of the reference ``run`` (better_transformer_vs_mha_functional.py),
    written out here step by step, independently of mhabench.measure.lengths."""
    from scipy.stats import beta as beta_law

    random.seed(seed)
    torch.manual_seed(seed)
    np.random.seed(seed)
    draws = beta_law.rvs(a, b, size=batch_size)
    scaled = draws * (seq_len + block_size - 1) // block_size
    out = []
    for value in scaled:
        n = int(value) * block_size
        if n < block_size:
            n = block_size
        out.append(n)
    out[random.randint(0, batch_size - 1)] = seq_len
    return out


@pytest.fixture
def reference_lengths():
    """``f(a, b, batch_size, seq_len, block_size, seed) -> list[int]`` as the reference computes it."""
    return _reference_lengths


@pytest.fixture
def tiny_point() -> Point:
    """3 rows of at most 8 tokens, embed 32, 4 heads, on the CPU in fp32.

    beta_b=61 gives beta(1, 3.05): short rows, so the batch has padding."""
    return Point(batch_size=3, seq_len=8, embed_dim=32, num_heads=4, beta_b=61,
                 dtype="fp32", device="cpu")


@pytest.fixture
def padded_point(tiny_point) -> Point:
    """``tiny_point``, checked to contain at least one padded row (tests rely on it)."""
    from mhabench.measure.inputs import point_lengths
    lengths = point_lengths(tiny_point)
    assert min(lengths) < tiny_point.seq_len, lengths
    return tiny_point


@pytest.fixture
def small_proto() -> Protocol:
    """Exactly 3 interleaved rounds per point, a little warm-up."""
    return Protocol(warmup_ms=0.5, min_rounds=3, max_rounds=3, target_ms=1.0)


@pytest.fixture(autouse=True, scope="session")
def _private_peak_cache(tmp_path_factory):
    """Runs calibrate the matmul peak: keep its cache (and fake test values) out of the user's."""
    import os
    before = os.environ.get("MHABENCH_CACHE_DIR")
    os.environ["MHABENCH_CACHE_DIR"] = str(tmp_path_factory.mktemp("peak-cache"))
    yield
    if before is None:
        os.environ.pop("MHABENCH_CACHE_DIR", None)
    else:
        os.environ["MHABENCH_CACHE_DIR"] = before


@pytest.fixture(autouse=True)
def _fastpath_restored():
    """Every test leaves the global MHA fast-path switch as it found it (where torch has one)."""
    from mhabench.measure.compat import fastpath_switch
    mha = fastpath_switch()
    if mha is None:
        yield
        return
    before = mha.get_fastpath_enabled()
    yield
    after = mha.get_fastpath_enabled()
    mha.set_fastpath_enabled(before)
    assert after == before, "a test left torch.backends.mha's fast path switched"


NO_SWITCH = f"torch {torch.__version__} has no global fast-path switch (torch.backends.mha, 2.3+)"


@pytest.fixture
def fastpath_off():
    """Switch the MHA fast path off globally for the test body; always switched back
    afterwards. Skipped where torch has no global switch."""
    from mhabench.measure.compat import fastpath_disabled, fastpath_switch
    if fastpath_switch() is None:
        pytest.skip(NO_SWITCH)
    with fastpath_disabled():
        yield


# --- asv in subprocesses -------------------------------------------------------------------------
REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # the benchmarks package lives at the repository root

from mhabench.run import spec as run_spec  # noqa: E402

ASV_ENV_KEYS = run_spec.ENV_VARS


def asv(args, cwd, env, timeout=600) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "asv", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=timeout)


def asv_env(tmp_path: Path, **extra) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ASV_ENV_KEYS}
    env["HOME"] = str(tmp_path / "home")  # asv machine writes ~/.asv-machine.json
    env["ASV_PYTHONPATH"] = str(REPO)  # this checkout's mhabench, not whichever is installed
    (tmp_path / "home").mkdir(exist_ok=True)
    env.update(extra)
    return env


def repo_config() -> dict:
    from asv import util
    return util.load_json(str(REPO / "asv.conf.json"), js_comments=True)


def _branch() -> str:
    """The checked-out branch (publish draws only commits of the configured branches; on a
    feature branch HEAD is not on ``main``); ``main`` when HEAD is detached, as in CI."""
    name = subprocess.run(["git", "rev-parse", "--abbrev-ref", "HEAD"], cwd=REPO,
                          capture_output=True, text=True, check=True).stdout.strip()
    return "main" if name == "HEAD" else name


def write_config(d: Path) -> Path:
    """The repo's config, pointed at the real repository, writing under ``d``, with asv's entry
    modules beside it (``d/benchmarks``, as the suite writes them): the suite finds its config
    there at discovery, as it finds the repository's own."""
    from mhabench.suite import write_entry
    conf = repo_config()
    write_entry(d / "benchmarks")
    conf.update(repo=str(REPO), benchmark_dir=str(d / "benchmarks"), env_dir=str(d / "env"),
                results_dir=str(d / "results"), html_dir=str(d / "html"), branches=[_branch()])
    d.mkdir(parents=True, exist_ok=True)
    path = d / "asv.conf.json"
    path.write_text(json.dumps(conf, indent=1))
    return path


def asv_run(d: Path, env: dict, machine: str, commit: str, timeout: float = 600):
    """``asv machine`` then ``asv run`` with this interpreter: (config path, run's process)."""
    config = write_config(d)
    proc = asv(["machine", "--config", str(config), "--yes", "--machine", machine], cwd=d, env=env)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return config, asv(["run", "--config", str(config), "-E", f"existing:{sys.executable}",
                        "--set-commit-hash", commit, "--machine", machine, "--show-stderr"],
                       cwd=d, env=env, timeout=timeout)


@pytest.fixture(scope="session")
def head() -> str:
    return subprocess.run(["git", "rev-parse", "HEAD"], cwd=REPO, capture_output=True, text=True,
                          check=True).stdout.strip()


@dataclass
class SmokeReport:
    dir: Path  # config, results/ and html/ are under it
    machine: str
    commit: str
    run: subprocess.CompletedProcess
    publish: subprocess.CompletedProcess | None  # None when the run failed

    @property
    def html(self) -> Path:
        return self.dir / "html"


@pytest.fixture(scope="session")
def smoke_report(tmp_path_factory, head) -> SmokeReport:
    """``asv run`` of the smoke grid on the CPU, then ``asv publish``: once per session (~10 s),
    for the suite's own checks and the browser check of the report. Read it, don't change it."""
    tmp = tmp_path_factory.mktemp("asv")
    d = tmp / "smoke"
    env = asv_env(tmp, **{run_spec.GRID_ENV: "smoke", run_spec.DEVICE_ENV: "cpu"})
    config, run = asv_run(d, env, "ci-cpu", head)
    publish = None
    if run.returncode == 0:
        publish = asv(["publish", "--config", str(config)], cwd=d, env=env)
    return SmokeReport(d, "ci-cpu", head, run, publish)
