"""mhabench.measure.flops: hand counts, padded vs useful, TFLOP/s, and torch's own FLOP counter."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

from mhabench.measure.flops import (attention_flops, flops_breakdown, padded_flops, projection_flops,
                            sequence_flops, tflops, useful_flops)


def test_hand_count_embed4_heads2():
    """E=4, H=2 (head dim 2), sequences of 3 and 1 tokens, padded width 3; 1 multiply-add = 2 FLOPs.

    L=3:  in-proj  [3x4] @ [4x12]:        3*4*12 = 144 MACs -> 288
          out-proj [3x4] @ [4x4]:         3*4*4  =  48 MACs ->  96
          Q K^T per head [3x2] @ [2x3]:   3*2*3  =  18 MACs -> 36, x2 heads -> 72
          P V   per head [3x3] @ [3x2]:   3*3*2  =  18 MACs -> 36, x2 heads -> 72
          total 288 + 96 + 72 + 72 = 528
    L=1:  in-proj 1*4*12 = 48 MACs -> 96; out-proj 1*4*4 = 16 MACs -> 32
          Q K^T per head 1*2*1 = 2 MACs -> 4, x2 -> 8; P V the same -> 8
          total 96 + 32 + 8 + 8 = 144
    useful = 528 + 144 = 672; padded = 2 rows of 3 = 2 * 528 = 1056
    """
    assert sequence_flops(3, 4, 2) == 528
    assert sequence_flops(1, 4, 2) == 144
    assert useful_flops([3, 1], 4, 2) == 672
    assert padded_flops(2, 3, 4, 2) == 1056
    assert flops_breakdown([3, 1], 4, 2) == {"projections": 288 + 96 + 96 + 32,
                                             "attention": 72 + 72 + 8 + 8, "total": 672}


def test_formula_terms():
    # per sequence of L: projections 2*L*E*3E + 2*L*E*E, attention 2*2*L*L*E
    L, E = 5, 6
    assert projection_flops(L, E) == 2 * 5 * 6 * 18 + 2 * 5 * 6 * 6 == 1440
    assert attention_flops(L, E) == 2 * 2 * 5 * 5 * 6 == 600
    assert sequence_flops(L, E, 3) == 2040


def test_the_breakdown_is_the_sum_of_its_sequences():
    """The breakdown sums in closed form; each sequence's own count, added up, must agree."""
    rng = np.random.default_rng(7)
    for _ in range(200):
        E = int(rng.choice([4, 32, 512, 1024]))
        lengths = [int(n) for n in rng.integers(0, 300, size=int(rng.integers(0, 40)))]
        got = flops_breakdown(lengths, E, 4)
        assert got["projections"] == sum(projection_flops(n, E) for n in lengths)
        assert got["attention"] == sum(attention_flops(n, E) for n in lengths)
        assert got["total"] == sum(sequence_flops(n, E, 4) for n in lengths)


def test_heads_do_not_change_the_count():
    assert {useful_flops([7, 3], 16, h) for h in (1, 2, 4, 8, 16)} == {useful_flops([7, 3], 16, 1)}


def test_useful_never_exceeds_padded_and_equals_it_without_padding():
    B, S, E, H = 4, 16, 32, 4
    assert useful_flops([S] * B, E, H) == padded_flops(B, S, E, H)
    rng = np.random.default_rng(0)
    for _ in range(20):
        lengths = list(rng.integers(1, S + 1, size=B))
        lengths[0] = S
        u, p = useful_flops(lengths, E, H), padded_flops(B, S, E, H)
        assert u <= p
        assert (u == p) == all(n == S for n in lengths)


def test_numpy_lengths_and_empty_batch():
    assert useful_flops(np.array([3, 1]), 4, 2) == 672
    assert useful_flops([], 4, 2) == 0
    assert useful_flops([0, 3], 4, 2) == 528


@pytest.mark.parametrize("call", [
    lambda: useful_flops([3], 6, 4),           # 6 not divisible by 4
    lambda: useful_flops([-1], 4, 2),
    lambda: useful_flops([2.5], 4, 2),
    lambda: padded_flops(2, 3, 0, 1),
    lambda: padded_flops(-1, 3, 4, 2),
])
def test_bad_arguments_raise(call):
    with pytest.raises(ValueError):
        call()


def test_tflops():
    assert tflops(2e12, 1e6) == pytest.approx(2.0)        # 2e12 FLOPs in one second
    assert tflops(1056, 1.0) == pytest.approx(1056e6 / 1e12)
    for us in (0.0, -1.0, math.nan, math.inf, None):
        assert math.isnan(tflops(1e9, us))


def _counted(fn) -> int:
    with FlopCounterMode(display=False) as fc:
        fn()
    return fc.get_total_flops()


def test_matches_torch_flop_counter():
    """With need_weights=True the module runs explicit (b)mm's, which torch's counter counts."""
    torch.manual_seed(0)
    B, S, E, H = 3, 8, 32, 4
    lengths = [8, 5, 3]
    mha = torch.nn.MultiheadAttention(E, H, batch_first=True)
    x = torch.randn(B, S, E)
    kpm = torch.tensor([[i >= n for i in range(S)] for n in lengths])
    with torch.no_grad():
        padded = _counted(lambda: mha(x, x, x, key_padding_mask=kpm, need_weights=True))
        useful = sum(_counted(lambda n=n: mha(x[:1, :n], x[:1, :n], x[:1, :n], need_weights=True))
                     for n in lengths)
    assert padded == padded_flops(B, S, E, H)
    assert useful == useful_flops(lengths, E, H)
