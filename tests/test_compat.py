"""Version shims that can be exercised on the CPU."""
from __future__ import annotations

import warnings

import pytest
import torch

from mhabench import compat


def test_dtype_of():
    assert compat.dtype_of("float16") is torch.float16
    assert compat.dtype_of("bfloat16") is torch.bfloat16
    assert compat.dtype_of("float32") is torch.float32


def test_nested_tensor_is_nested_without_warnings():
    rows = [torch.ones(2, 4), torch.zeros(3, 4)]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        nt = compat.nested_tensor(rows, device="cpu", dtype=torch.float32)
    assert nt.is_nested
    assert [t.shape[0] for t in nt.unbind()] == [2, 3]


def test_to_padded_pads_nested_and_passes_dense_through():
    nt = compat.nested_tensor([torch.ones(1, 2), torch.ones(3, 2)], device="cpu", dtype=torch.float32)
    p = compat.to_padded(nt, 0.0)
    assert p.shape == (2, 3, 2)
    assert p[0, 1:].abs().sum() == 0 and p[0, 0].sum() == 2
    dense = torch.randn(2, 3)
    assert compat.to_padded(dense) is dense


@pytest.mark.parametrize("initial", [True, False])
def test_fastpath_disabled_restores_previous_setting(initial):
    mha = torch.backends.mha
    before = mha.get_fastpath_enabled()
    try:
        mha.set_fastpath_enabled(initial)
        with compat.fastpath_disabled():
            assert mha.get_fastpath_enabled() is False
        assert mha.get_fastpath_enabled() is initial
        with pytest.raises(KeyError):
            with compat.fastpath_disabled():
                raise KeyError("boom")
        assert mha.get_fastpath_enabled() is initial
    finally:
        mha.set_fastpath_enabled(before)


def test_can_disable_fastpath_on_this_torch():
    assert compat.can_disable_fastpath() is True
