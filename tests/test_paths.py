"""The three paths, and the check that the fast path really ran."""
from __future__ import annotations

import contextlib

import pytest
import torch
import torch.nn.functional as F

from mhabench.measure import compat
from mhabench.measure.check import masked
from mhabench.measure.inputs import build
from mhabench.measure.paths import PATHS, FastPathNotTaken, Path, _fair_context, make_paths, run_fast_checked


@pytest.fixture
def inp(padded_point):
    return build(padded_point)


def test_make_paths_names(inp):
    paths = make_paths(inp)
    assert tuple(paths) == PATHS == ("fast", "slow", "slow_fair")
    assert all(isinstance(p, Path) and p.name == n for n, p in paths.items())


def test_fast_path_returns_nested(inp):
    out = run_fast_checked(make_paths(inp)["fast"])
    assert out.is_nested
    assert [t.shape[0] for t in out.unbind()] == inp.lengths


def test_slow_paths_are_padded_and_agree_with_fast_on_real_tokens(inp):
    paths = make_paths(inp)
    fast = run_fast_checked(paths["fast"])
    slow = paths["slow"].once()
    fair = paths["slow_fair"].once()
    B, S, E = inp.padded.shape
    assert not slow.is_nested and slow.shape == (B, S, E)
    assert not fair.is_nested and fair.shape == (B, S, E)
    torch.testing.assert_close(masked(slow, inp.mask), masked(fair, inp.mask))
    torch.testing.assert_close(masked(fast, inp.mask), masked(slow, inp.mask), atol=1e-4, rtol=1e-4)


def _fast_path_allowed(mha) -> bool:
    """Neither torch's global switch (where it has one) nor the module's training flag (the
    switch's stand-in below torch 2.3) keeps the fast path off."""
    switch = compat.fastpath_switch()
    return (switch is None or switch.get_fastpath_enabled()) and not mha.training


def test_slow_runs_with_grad_as_the_reference_and_fair_in_inference(inp):
    paths = make_paths(inp)
    slow = paths["slow"].once()
    fair = paths["slow_fair"].once()
    assert slow.requires_grad, "the reference's slow call runs outside inference mode"
    assert fair.is_inference()
    assert _fast_path_allowed(inp.mha), "slow_fair left the fast path off"


def test_slow_fair_switches_the_fast_path_off_only_inside(inp):
    seen = []
    p = Path("x", _fair_context(inp.mha),
             lambda: seen.append(_fast_path_allowed(inp.mha)) or torch.zeros(1))
    p.once()
    assert seen == [False]
    assert _fast_path_allowed(inp.mha)


class _Calls:
    """Counts the module's two ways through: the fused op and the functional slow path."""

    def __init__(self, monkeypatch):
        self.native = self.functional = 0
        native, functional = torch._native_multi_head_attention, F.multi_head_attention_forward

        def count_native(*a, **k):
            self.native += 1
            return native(*a, **k)

        def count_functional(*a, **k):
            self.functional += 1
            return functional(*a, **k)
        monkeypatch.setattr(torch, "_native_multi_head_attention", count_native)
        monkeypatch.setattr(F, "multi_head_attention_forward", count_functional)


def test_slow_fair_takes_the_functional_slow_path(inp, monkeypatch):
    """The padded call under inference mode would take the fused op; slow_fair must not."""
    calls = _Calls(monkeypatch)
    paths = make_paths(inp)
    kpm = ~inp.mask
    with torch.inference_mode():
        inp.mha(inp.padded, inp.padded, inp.padded, key_padding_mask=kpm, need_weights=False)
    assert (calls.native, calls.functional) == (1, 0), "control: the fast path takes padded input"
    paths["slow_fair"].once()
    assert (calls.native, calls.functional) == (1, 1)
    paths["slow"].once()
    assert (calls.native, calls.functional) == (1, 2)


def test_disabled_fast_path_raises_with_module_reason(inp, fastpath_off):
    with pytest.raises(FastPathNotTaken) as ei:
        run_fast_checked(make_paths(inp)["fast"])
    # torch's own reason, as MultiheadAttention.forward words it
    assert "get_fastpath_enabled" in str(ei.value)


def test_training_mode_raises_with_module_reason(inp):
    inp.mha.train()
    with pytest.raises(FastPathNotTaken) as ei:
        run_fast_checked(make_paths(inp)["fast"])
    assert "training" in str(ei.value)


def test_other_module_passed_explicitly_is_used(inp):
    other = build(inp.point).mha.train()
    with pytest.raises(FastPathNotTaken):
        run_fast_checked(make_paths(inp, mha=other)["fast"])
    # the Inputs' own module is untouched and still takes the fast path
    assert run_fast_checked(make_paths(inp)["fast"]).is_nested


def test_dense_output_is_not_a_fast_path():
    p = Path("fast", contextlib.nullcontext, lambda: torch.zeros(2, 3))
    with pytest.raises(FastPathNotTaken) as ei:
        run_fast_checked(p)
    assert "nested" in str(ei.value)


def test_unrelated_assertion_errors_propagate():
    def boom():
        raise AssertionError("something else entirely")
    with pytest.raises(AssertionError, match="something else") as ei:
        run_fast_checked(Path("fast", contextlib.nullcontext, boom))
    assert not isinstance(ei.value, FastPathNotTaken)


def test_once_enters_the_context_around_the_call():
    log = []

    @contextlib.contextmanager
    def ctx():
        log.append("enter")
        yield
        log.append("exit")

    Path("p", ctx, lambda: log.append("call")).once()
    assert log == ["enter", "call", "exit"]
