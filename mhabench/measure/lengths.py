"""Pure formulas: sequence lengths, padding fraction."""
from __future__ import annotations

import random

import numpy as np


def seed_all(seed: int) -> None:
    """Seed python's, numpy's and (if imported) torch's generators, as the reference does."""
    random.seed(seed)
    np.random.seed(seed)
    import torch
    torch.manual_seed(seed)


def beta_lengths(a: float, b: float, batch_size: int, seq_len: int, block_size: int) -> list[int]:
    """Lengths drawn from beta(a, b) by the reference's formula, from the *current* RNG states.

    Scale to ``seq_len + block_size - 1``, floor to whole blocks (at least one), then force one
    randomly chosen row to the full ``seq_len`` so every batch has the same padded width.
    """
    # numpy's own beta draw on the global RandomState: bit for bit the draw the reference's
    # scipy.stats.beta.rvs makes from that state (tests/test_lengths.py holds them equal)
    draws = np.random.beta(a, b, size=batch_size) * (seq_len + block_size - 1) // block_size
    lengths = [max(int(x) * block_size, block_size) for x in draws]
    lengths[random.randint(0, batch_size - 1)] = seq_len
    return lengths


def padding_fraction(lengths, seq_len: int) -> float:
    """Share of the padded ``len(lengths) x seq_len`` batch that is padding."""
    return 1.0 - sum(lengths) / (len(lengths) * seq_len)
