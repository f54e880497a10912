"""The fp32 math reference and the fast path's drift against it, on the CPU."""
from __future__ import annotations

import copy

import pytest
import torch

from mhabench.measure import reference
from mhabench.measure.config import Point
from mhabench.measure.inputs import build
from mhabench.measure.paths import make_paths, run_fast_checked


def test_reference_matches_the_slow_path_in_fp32(padded_point):
    inp = build(padded_point)
    ref = reference.fp32_reference(inp)
    assert ref.dtype == torch.float32 and not ref.is_nested and not ref.requires_grad
    assert ref.shape == inp.padded.shape
    slow = make_paths(inp)["slow"].once().detach()
    assert reference.max_abs_err(slow, ref, inp.mask) < 1e-5
    fast = run_fast_checked(make_paths(inp)["fast"])
    err = reference.max_abs_err(fast, ref, inp.mask)
    assert 0 <= err < 1e-4


def test_reference_uses_the_modules_weights_and_leaves_them_alone(padded_point):
    inp = build(padded_point)
    before = inp.mha.in_proj_weight.detach().clone()
    ref = reference.fp32_reference(inp)
    assert torch.equal(inp.mha.in_proj_weight, before)
    assert inp.mha.in_proj_weight.dtype == torch.float32
    with torch.no_grad():
        inp.mha.out_proj.bias += 1.0
    moved = reference.fp32_reference(inp)
    assert reference.max_abs_err(moved, ref, inp.mask) == pytest.approx(1.0, rel=1e-4)


def test_reference_is_independent_of_the_modules_code_paths(padded_point, monkeypatch):
    """Neither the module's forward nor SDPA computes it, so a bug there cannot hide."""
    inp = build(padded_point)
    expected = reference.fp32_reference(inp)

    def refuse(*a, **k):
        raise AssertionError("the reference went through torch's attention")
    monkeypatch.setattr(torch.nn.functional, "scaled_dot_product_attention", refuse)
    monkeypatch.setattr(torch.nn.functional, "multi_head_attention_forward", refuse)
    monkeypatch.setattr(type(inp.mha), "forward", refuse)
    assert torch.equal(reference.fp32_reference(inp), expected)


def test_reference_matches_double_precision_on_a_larger_point():
    """Against the module run in fp64 (with many heads and most tokens padding)."""
    p = Point(5, 64, 64, 8, 61, dtype="fp32", device="cpu")
    inp = build(p)
    assert inp.padding > 0.3
    ref = reference.fp32_reference(inp)
    m64 = copy.deepcopy(inp.mha).double()
    x = inp.padded.double()
    with torch.no_grad():
        exact = m64(x, x, x, key_padding_mask=~inp.mask, need_weights=False)[0]
    assert reference.max_abs_err(exact, ref.double(), inp.mask) < 1e-5
    assert torch.count_nonzero(ref[~inp.mask]) == 0, "padding rows are zero"


def test_low_precision_input_is_referenced_in_fp32():
    p = Point(2, 16, 32, 4, 61, dtype="bf16", device="cpu")
    inp = build(p)
    ref = reference.fp32_reference(inp)
    assert ref.dtype == torch.float32 and inp.padded.dtype == torch.bfloat16
    fast = run_fast_checked(make_paths(inp)["fast"])
    err = reference.max_abs_err(fast, ref, inp.mask)
    assert 0 < err < 0.1  # bf16 rounding shows; a wrong computation would be O(1)


def test_max_abs_err_sees_real_tokens_only(padded_point):
    inp = build(padded_point)
    ref = reference.fp32_reference(inp)
    out = ref.clone()
    row = min(range(len(inp.lengths)), key=lambda i: inp.lengths[i])
    out[row, inp.lengths[row]:, :] += 5.0  # padding only
    assert reference.max_abs_err(out, ref, inp.mask) == 0.0
    out[row, 0, 0] += 0.5                  # a real token
    assert reference.max_abs_err(out, ref, inp.mask) == pytest.approx(0.5)
