"""Building one point: nested / padded / mask agree, and the values are the reference's."""
from __future__ import annotations

import pytest
import torch

from mhabench.measure.config import Point
from mhabench.measure.inputs import Inputs, build, point_lengths

POINTS = [
    Point(3, 8, 32, 4, 61, dtype="fp32", device="cpu"),
    Point(4, 16, 32, 4, 1, dtype="fp32", device="cpu"),
    Point(2, 9, 32, 4, 21, block_size=3, dtype="fp32", device="cpu", seed=5),
    Point(4, 12, 32, 4, 41, dtype="bf16", device="cpu", seed=3),
]


@pytest.fixture(params=POINTS, ids=lambda p: f"{p.label}-blk{p.block_size}")
def inp(request) -> Inputs:
    return build(request.param)


def test_shapes_and_types(inp):
    p = inp.point
    assert isinstance(inp.mha, torch.nn.MultiheadAttention)
    assert inp.nested.is_nested and not inp.padded.is_nested
    assert inp.padded.shape == (p.batch_size, p.seq_len, p.embed_dim)
    assert inp.mask.shape == (p.batch_size, p.seq_len)
    assert inp.mask.dtype == torch.bool
    dt = getattr(torch, p.dtype)
    assert inp.nested.dtype == dt and inp.padded.dtype == dt
    assert inp.mha.in_proj_weight.dtype == dt
    assert not inp.mha.training
    assert inp.mha.batch_first
    assert inp.lengths == point_lengths(p)


def test_padded_rows_equal_nested_rows_and_zero_elsewhere(inp):
    rows = inp.nested.unbind()
    assert len(rows) == inp.point.batch_size
    for i, (row, n) in enumerate(zip(rows, inp.lengths)):
        assert row.shape == (n, inp.point.embed_dim)
        assert torch.equal(inp.padded[i, :n], row)
        assert torch.count_nonzero(inp.padded[i, n:]) == 0


def test_mask_true_exactly_on_first_length_tokens(inp):
    for i, n in enumerate(inp.lengths):
        expected = torch.tensor([t < n for t in range(inp.point.seq_len)])
        assert torch.equal(inp.mask[i].cpu(), expected), (i, n)


def test_padding_property_equals_mask_mean(inp):
    # the reference's figure, computed in float32
    assert inp.padding == pytest.approx(1 - inp.mask.float().mean().item(), abs=1e-6)
    # and exactly, from the token counts
    real = int(inp.mask.sum())
    assert inp.padding == pytest.approx(1 - real / inp.mask.numel(), abs=1e-12)


def test_tiny_point_has_some_padding(padded_point):
    inp = build(padded_point)
    assert inp.padding > 0
    assert not bool(inp.mask.all())


def test_values_reproduce_the_reference_draw_order(tiny_point):
    """Seed, lengths, then randn per row, then Linear(E, 3E), Linear(E, E), then the module."""
    p = tiny_point
    inp = build(p)
    lengths = point_lengths(p)  # seeds every generator, then draws the lengths
    rows = [torch.randn(n, p.embed_dim) for n in lengths]
    qkv = torch.nn.Linear(p.embed_dim, 3 * p.embed_dim)
    proj = torch.nn.Linear(p.embed_dim, p.embed_dim)
    for got, want in zip(inp.nested.unbind(), rows):
        assert torch.equal(got, want)
    assert torch.equal(inp.mha.in_proj_weight, qkv.weight)
    assert torch.equal(inp.mha.in_proj_bias, qkv.bias)
    assert torch.equal(inp.mha.out_proj.weight, proj.weight)
    assert torch.equal(inp.mha.out_proj.bias, proj.bias)


def test_build_is_deterministic(tiny_point):
    a, b = build(tiny_point), build(tiny_point)
    assert a.lengths == b.lengths
    assert torch.equal(a.padded, b.padded)
    assert torch.equal(a.mha.in_proj_weight, b.mha.in_proj_weight)


def test_block_larger_than_seq_len_is_rejected_or_consistent():
    try:
        p = Point(3, 2, 8, 2, 1, block_size=4, dtype="fp32", device="cpu")
    except ValueError:
        return  # rejecting the point up front is fine
    inp = build(p)
    assert max(inp.lengths) <= p.seq_len
    assert inp.padded.shape[1] == inp.mask.shape[1]
    assert inp.padding == pytest.approx(1 - inp.mask.float().mean().item())
