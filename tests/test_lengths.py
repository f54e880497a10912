"""Sequence lengths: parity with the reference formula, and the padding fraction."""
from __future__ import annotations

import random

import numpy as np
import pytest
import torch

from mhabench.measure.config import Point, named_grid
from mhabench.measure.inputs import point_lengths
from mhabench.measure.lengths import beta_lengths, padding_fraction, seed_all

SEED_GRID = named_grid("seed", "fp16", "cuda")


def _ref(reference_lengths, p: Point):
    a, b = p.beta_a, p.beta_b * 0.05  # the reference calls run(1, b * 0.05, ...)
    return reference_lengths(a, b, p.batch_size, p.seq_len, p.block_size, p.seed)


def _parity(reference_lengths, points):
    mismatches = []
    for p in points:
        ours, ref = point_lengths(p), _ref(reference_lengths, p)
        if ours != ref:
            mismatches.append((p.label, ours[:8], ref[:8]))
    assert not mismatches, f"{len(mismatches)} points differ, first: {mismatches[0]}"


@pytest.mark.slow
def test_parity_on_every_seed_grid_point(reference_lengths):
    assert len(SEED_GRID) == 1280
    _parity(reference_lengths, SEED_GRID)


def test_parity_on_every_shape_and_beta_of_the_seed_grid(reference_lengths):
    """The quick tier's share: every batch size, length and beta b of the seed grid (its
    embed dims and heads do not enter the draw)."""
    pts = [p for p in SEED_GRID if (p.embed_dim, p.num_heads) == (512, 8)]
    assert len(pts) == 5 * 4 * 16
    _parity(reference_lengths, pts[::3])


# --- numpy's beta draw is the reference's scipy draw -------------------------------------------

SEED_BETAS = sorted({p.beta for p in SEED_GRID})
SEED_BATCHES = sorted({p.batch_size for p in SEED_GRID})


def test_numpy_beta_on_the_seeded_global_state_is_bit_identical_to_scipys():
    """mhabench draws with np.random.beta; the reference with scipy.stats.beta.rvs, which draws
    from the same global RandomState: the draws must be the same floats, bit for bit, for every
    beta law and batch size of the seed grid (and the generator must end in the same state)."""
    from scipy.stats import beta as beta_law
    assert len(SEED_BETAS) == 16 and SEED_BATCHES == [16, 32, 64, 128, 256]
    differ = []
    for a, b in SEED_BETAS:
        for n in SEED_BATCHES:
            for seed in (SEED_GRID[0].seed, 0, 1):
                np.random.seed(seed)
                ours = np.random.beta(a, b, size=n)
                after_ours = np.random.random()
                np.random.seed(seed)
                ref = beta_law.rvs(a, b, size=n)
                after_ref = np.random.random()
                if ours.tobytes() != np.asarray(ref, dtype=np.float64).tobytes() \
                        or after_ours != after_ref:
                    differ.append((a, b, n, seed))
    assert not differ, f"{len(differ)} draws differ, first (a, b, batch, seed): {differ[0]}"


def test_the_draw_comparison_has_teeth():
    """Two different laws, or seeds, do not give the same bytes."""
    np.random.seed(1)
    x = np.random.beta(1, 0.05, size=16).tobytes()
    np.random.seed(1)
    assert np.random.beta(1, 0.25, size=16).tobytes() != x
    np.random.seed(2)
    assert np.random.beta(1, 0.05, size=16).tobytes() != x


def test_scipy_is_needed_by_the_tests_only():
    import subprocess
    import sys
    code = ("import sys; from mhabench.measure.lengths import beta_lengths; "
            "beta_lengths(1, 0.25, 4, 16, 2); "
            "sys.exit(1 if 'scipy' in sys.modules else 0)")
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0


ODD_POINTS = [
    Point(1, 5, 8, 2, 1, device="cpu"),                       # a single row: it is the forced one
    Point(3, 17, 8, 2, 9, block_size=3, device="cpu"),       # block not dividing seq_len
    Point(7, 33, 8, 2, 61, block_size=4, device="cpu", seed=0),
    Point(5, 10, 8, 2, 13, beta_a=3, device="cpu", seed=12345),
    Point(64, 100, 8, 2, 2, block_size=1, device="cpu", seed=1),
    Point(300, 1000, 8, 2, 63, block_size=8, device="cpu", seed=2**32 - 1),
    Point(9, 2, 8, 2, 5, block_size=2, device="cpu", seed=42),  # seq_len == block
]


def test_parity_over_many_seeds_and_small_batches(reference_lengths):
    """The seed grid uses one seed, so the forced row depends on the batch size only; vary the
    seed (and the batch size, length, block and b with it) to exercise every step."""
    mismatches = []
    for seed in range(400):
        B, S, block, b = 1 + seed % 9, 5 + seed % 23, 1 + seed % 4, 1 + (seed * 7) % 63
        if block > S:
            continue
        p = Point(B, S, 8, 2, b, block_size=block, device="cpu", seed=seed)
        if point_lengths(p) != _ref(reference_lengths, p):
            mismatches.append(p)
    assert not mismatches, f"{len(mismatches)} differ, first {mismatches[0]}"


@pytest.mark.parametrize("p", ODD_POINTS, ids=lambda p: p.label + f"-blk{p.block_size}-s{p.seed}")
def test_parity_on_odd_points(reference_lengths, p):
    assert point_lengths(p) == _ref(reference_lengths, p)


@pytest.mark.parametrize("p", ODD_POINTS[:4], ids=lambda p: p.label)
def test_beta_lengths_after_seeding_matches_reference(reference_lengths, p):
    seed_all(p.seed)
    ours = beta_lengths(*p.beta, p.batch_size, p.seq_len, p.block_size)
    assert ours == _ref(reference_lengths, p)


def test_parity_is_not_vacuous(reference_lengths):
    """Different seeds and different b give different draws: the comparison has teeth."""
    p = Point(64, 512, 8, 2, 21, device="cpu")
    other_seed = Point(64, 512, 8, 2, 21, device="cpu", seed=1)
    other_b = Point(64, 512, 8, 2, 41, device="cpu")
    assert point_lengths(p) != point_lengths(other_seed)
    assert point_lengths(p) != point_lengths(other_b)


@pytest.mark.parametrize("p", SEED_GRID[::37], ids=lambda p: p.label)
def test_length_invariants(p):
    lengths = point_lengths(p)
    assert len(lengths) == p.batch_size
    assert max(lengths) == p.seq_len
    assert sum(n == p.seq_len for n in lengths) >= 1
    for n in lengths:
        assert p.block_size <= n <= p.seq_len
        assert n == p.seq_len or n % p.block_size == 0


def test_point_lengths_is_deterministic_whatever_the_rng_state():
    p = Point(16, 64, 8, 2, 33, device="cpu")
    first = point_lengths(p)
    random.random(), np.random.rand(3), torch.rand(3)
    assert point_lengths(p) == first


def test_seed_all_seeds_python_numpy_and_torch():
    seed_all(123)
    a = (random.random(), np.random.rand(), torch.rand(1).item())
    random.random(), np.random.rand(5), torch.rand(5)
    seed_all(123)
    b = (random.random(), np.random.rand(), torch.rand(1).item())
    assert a == b
    seed_all(124)
    c = (random.random(), np.random.rand(), torch.rand(1).item())
    assert all(x != y for x, y in zip(a, c))


# --- padding fraction ---------------------------------------------------------------------

@pytest.mark.parametrize("lengths,seq_len,expected", [
    ([8, 8], 8, 0.0),
    ([4, 8], 8, 0.25),          # 12 of 16 real
    ([2, 2, 2, 8], 8, 0.5625),  # 14 of 32 real
    ([1], 4, 0.75),
    ([16, 4, 2, 2], 16, 1 - 24 / 64),
])
def test_padding_fraction(lengths, seq_len, expected):
    assert padding_fraction(lengths, seq_len) == pytest.approx(expected)
