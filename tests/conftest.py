"""Shared fixtures: a tiny CPU fp32 point, a small protocol, and an independent
re-implementation of the reference script's sequence-length formula."""
from __future__ import annotations

import random

import numpy as np
import pytest
import torch

from mhabench.config import Point
from mhabench.timing import Protocol


def _reference_lengths(a, b, batch_size, seq_len, block_size, seed):
    """The length draw of the reference ``run`` (better_transformer_vs_mha_functional.py),
    written out here step by step, independently of mhabench.lengths."""
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
    from mhabench.inputs import point_lengths
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
    """Every test leaves the global MHA fast-path switch as it found it."""
    mha = torch.backends.mha
    before = mha.get_fastpath_enabled()
    yield
    after = mha.get_fastpath_enabled()
    mha.set_fastpath_enabled(before)
    assert after == before, "a test left torch.backends.mha's fast path switched"


@pytest.fixture
def fastpath_off():
    """Switch the MHA fast path off for the test body; always switched back afterwards."""
    from mhabench.compat import fastpath_disabled
    with fastpath_disabled():
        yield
