"""check.compare: flags wrong real tokens, ignores padding tokens."""
from __future__ import annotations

import math

import pytest
import torch

from mhabench.measure import compat
from mhabench.measure.check import TOLERANCES, Check, compare, masked
from mhabench.measure.inputs import build
from mhabench.measure.paths import make_paths, run_fast_checked

LENGTHS = [5, 2, 8]
S, E = 8, 4


def _synthetic():
    torch.manual_seed(0)
    rows = [torch.randn(n, E) for n in LENGTHS]
    fast = compat.nested_tensor(rows, device="cpu", dtype=torch.float32)
    slow = torch.zeros(len(LENGTHS), S, E)
    mask = torch.zeros(len(LENGTHS), S, dtype=torch.bool)
    for i, (r, n) in enumerate(zip(rows, LENGTHS)):
        slow[i, :n] = r
        mask[i, :n] = True
    return fast, slow, mask


def test_masked_zeroes_padding_rows():
    fast, slow, mask = _synthetic()
    slow[:, :, :] += 7.0
    m = masked(slow, mask)
    for i, n in enumerate(LENGTHS):
        assert torch.count_nonzero(m[i, n:]) == 0
        assert torch.equal(m[i, :n], slow[i, :n])


def test_identical_outputs_pass():
    fast, slow, mask = _synthetic()
    chk = compare(fast, slow, mask, "float32")
    assert isinstance(chk, Check)
    assert chk.ok and chk.max_abs_err == 0.0 and chk.message == ""


def test_garbage_on_padding_tokens_is_ignored():
    fast, slow, mask = _synthetic()
    slow[0, 5:] = 1e3
    slow[1, 2:] = -55.0
    chk = compare(fast, slow, mask, "float32")
    assert chk.ok, chk.message
    assert chk.max_abs_err == 0.0


@pytest.mark.parametrize("row,tok", [(0, 0), (0, 4), (1, 1), (2, 7)])
def test_one_wrong_real_token_is_caught(row, tok):
    fast, slow, mask = _synthetic()
    slow[row, tok, 2] += 0.5
    chk = compare(fast, slow, mask, "float32")
    assert not chk.ok
    assert chk.max_abs_err == pytest.approx(0.5, rel=1e-5)
    assert "differ" in chk.message
    assert "\n" not in chk.message


@pytest.mark.parametrize("dtype", ["float16", "bfloat16", "float32"])
def test_tolerance_per_dtype(dtype):
    atol, rtol = TOLERANCES[dtype]
    fast, slow, mask = _synthetic()
    fast_d = compat.to_padded(fast).to(getattr(torch, dtype))
    slow_d = slow.to(getattr(torch, dtype))
    slow_small = slow_d.clone()
    slow_small[2, 3, 0] = fast_d[2, 3, 0] + atol / 4  # well inside atol (rtol adds more room)
    assert compare(fast_d, slow_small, mask, dtype).ok
    slow_big = slow_d.clone()
    slow_big[2, 3, 0] = fast_d[2, 3, 0] + 100 * atol + 1.0
    assert not compare(fast_d, slow_big, mask, dtype).ok


def test_shape_mismatch_is_a_failure():
    fast, slow, mask = _synthetic()
    chk = compare(fast, slow[:, :, :3], mask, "float32")
    assert not chk.ok
    assert math.isinf(chk.max_abs_err)
    assert "shape" in chk.message


def test_real_module_outputs_pass_and_planted_error_is_caught(padded_point):
    inp = build(padded_point)
    paths = make_paths(inp)
    fast = run_fast_checked(paths["fast"])
    slow = paths["slow"].once()
    assert compare(fast, slow, inp.mask, "float32").ok

    # plant a wrong value on one real token of the fast output
    bad = compat.to_padded(fast, 0.0).clone()
    bad[0, inp.lengths[0] - 1, 0] += 0.1
    chk = compare(bad, slow, inp.mask, "float32")
    assert not chk.ok
    assert chk.max_abs_err == pytest.approx(0.1, rel=1e-3)

    # a wrong value on a padding token of a short row is ignored
    short = min(range(len(inp.lengths)), key=lambda i: inp.lengths[i])
    assert inp.lengths[short] < padded_point.seq_len
    pad_only = compat.to_padded(fast, 0.0).clone()
    pad_only[short, inp.lengths[short]:, :] = 123.0
    assert compare(pad_only, slow, inp.mask, "float32").ok


def test_a_nan_on_a_real_token_is_a_failure():
    fast, slow, mask = _synthetic()
    slow[1, 0, 1] = float("nan")
    assert not compare(fast, slow, mask, "float32").ok


@pytest.mark.parametrize("dtype", ["float16", "bfloat16", "float32"])
def test_the_verdict_is_assert_closes_own(dtype):
    """Near the tolerance's edge, on every token, the quick verdict is what assert_close says."""
    atol, rtol = TOLERANCES[dtype]
    fast, slow, mask = _synthetic()
    t = getattr(torch, dtype)
    fast_d, slow_d = compat.to_padded(fast).to(t), slow.to(t)
    gen = torch.Generator().manual_seed(1)
    seen = set()
    for _ in range(60):
        other = slow_d.clone()
        row = int(torch.randint(len(LENGTHS), (1,), generator=gen))
        tok, col = int(torch.randint(LENGTHS[row], (1,), generator=gen)), 1
        edge = atol + rtol * abs(float(slow_d[row, tok, col]))
        other[row, tok, col] = float(fast_d[row, tok, col]) + 2 * edge * float(
            torch.rand(1, generator=gen))
        try:
            torch.testing.assert_close(masked(fast_d, mask), masked(other, mask),
                                       atol=atol, rtol=rtol)
            expected = True
        except AssertionError:
            expected = False
        seen.add(expected)
        assert compare(fast_d, other, mask, dtype).ok is expected
    assert seen == {True, False}  # both sides of the edge were tried
