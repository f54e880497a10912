"""Numerical drift: the fast path against an fp32 reference computed the slow, plain way.

The reference is the point's own module with its weights cast to fp32, called on the padded
input (also cast) with the key-padding mask, the fast path switched off and only SDPA's math
backend allowed. In fp16/bf16 both casts are exact, so the reference is the same attention
without reduced-precision arithmetic: the fast path's error against it is its own drift, which
the fast-vs-slow error cannot separate from the slow path's.
"""
from __future__ import annotations

import contextlib
import copy

import torch

from . import compat
from .check import masked
from .inputs import Inputs


def _context():
    stack = contextlib.ExitStack()
    stack.enter_context(compat.sdpa_math())
    if compat.can_disable_fastpath():
        stack.enter_context(torch.inference_mode())
        stack.enter_context(compat.fastpath_disabled())
    else:  # with grad enabled the module refuses its fast path, as the slow path relies on
        stack.enter_context(torch.enable_grad())
    return stack


def fp32_reference(inp: Inputs) -> torch.Tensor:
    """The padded [B, S, E] fp32 output of the reference call (padding rows not zeroed)."""
    mha = copy.deepcopy(inp.mha).to(torch.float32)
    x = inp.padded.to(torch.float32)
    with _context():
        out = mha(x, x, x, key_padding_mask=~inp.mask, need_weights=False)[0]
    return out.detach()


def max_abs_err(out: torch.Tensor, reference: torch.Tensor, mask: torch.Tensor) -> float:
    """Largest |out - reference| over the real tokens (``out`` nested or padded)."""
    a, b = masked(out, mask).float(), masked(reference, mask).float()
    return float((a - b).abs().max()) if a.numel() else 0.0
