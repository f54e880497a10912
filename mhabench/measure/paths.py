"""The three ways of computing the same attention, as (context, call) pairs.

Contexts are entered once around a batch of calls, as the reference does, so their cost stays
out of the per-call figures.
"""
from __future__ import annotations

import contextlib
import re
from dataclasses import dataclass
from typing import Callable, ContextManager

import torch

from . import compat
from .inputs import Inputs

PATHS = ("fast", "slow", "slow_fair")
#: SDPA backends the fast path is also timed with alone (device time only, on CUDA).
BACKENDS = ("flash", "efficient", "cudnn")


@dataclass(frozen=True)
class Path:
    name: str
    context: Callable[[], ContextManager]
    call: Callable[[], torch.Tensor]

    def once(self) -> torch.Tensor:
        with self.context():
            return self.call()


class FastPathNotTaken(RuntimeError):
    """The module refused its fast path; the message carries its own reason."""


def _fast_context(device: str):
    def ctx():
        stack = contextlib.ExitStack()
        if device.startswith("cuda"):
            stack.enter_context(compat.sdpa_without_math())
        stack.enter_context(torch.inference_mode())
        return stack
    return ctx


def _fair_context(module):
    def ctx():
        stack = contextlib.ExitStack()
        stack.enter_context(torch.inference_mode())
        stack.enter_context(compat.fastpath_disabled(module))
        return stack
    return ctx


def make_paths(inp: Inputs, mha: torch.nn.Module | None = None) -> dict[str, Path]:
    """``fast``: nested input, inference mode, SDPA without math (on CUDA).
    ``slow``: padded input + key_padding_mask with grad enabled, exactly as the reference.
    ``slow_fair``: the same padded call in inference mode with the fast path switched off
    (below torch 2.3, by the module's training flag: see ``compat.fastpath_disabled``).
    """
    m = inp.mha if mha is None else mha
    q, p = inp.nested, inp.padded
    kpm = ~inp.mask
    return {
        "fast": Path("fast", _fast_context(inp.point.device),
                     lambda: m(q, q, q, need_weights=False)[0]),
        "slow": Path("slow", contextlib.nullcontext,
                     lambda: m(p, p, p, key_padding_mask=kpm, need_weights=False)[0]),
        "slow_fair": Path("slow_fair", _fair_context(m),
                          lambda: m(p, p, p, key_padding_mask=kpm, need_weights=False)[0]),
    }


def backend_paths(fast: Path) -> dict[str, Path]:
    """The fast call with one SDPA backend allowed alone, per backend this torch has.

    Named ``fast@<backend>``. A backend that cannot serve a point raises when called: the
    caller skips it there.
    """
    def ctx(backend):
        def enter():
            stack = contextlib.ExitStack()
            stack.enter_context(compat.sdpa_only(backend))
            stack.enter_context(torch.inference_mode())
            return stack
        return enter
    return {f"fast@{b}": Path(f"fast@{b}", ctx(b), fast.call)
            for b in compat.sdpa_backend_names() if b in BACKENDS}


_REASON = re.compile(r"fast path was not hit because (.*)", re.S)


def run_fast_checked(path: Path) -> torch.Tensor:
    """Run the fast path once; raise FastPathNotTaken unless it really ran (nested output)."""
    try:
        out = path.once()
    except AssertionError as exc:
        m = _REASON.search(str(exc))
        if m:
            raise FastPathNotTaken(f"fast path not taken: {m.group(1).strip()}") from None
        raise
    if not out.is_nested:
        raise FastPathNotTaken("fast path not taken: output is not a nested tensor")
    return out
