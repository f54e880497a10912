"""Numerical drift: the fast path against an fp32 reference written out as plain math.

The reference is the point's own attention (its module's weights cast to fp32, the input cast
to fp32) spelled out: projections, scaled scores with padded keys masked, softmax, weighted
sum, output projection, with no fused kernel and no reduced-precision arithmetic (TF32 is off
for matmuls unless the user turned it on). In fp16/bf16 both casts are exact, so the fast
path's error against it is its own drift, which the fast-vs-slow error cannot separate from
the slow path's. Writing it out keeps it independent of the module's code paths, and lets
the projections run on the real tokens only (about half the grid's tokens are padding).
"""
from __future__ import annotations

import torch

from .check import masked
from .inputs import Inputs


def fp32_reference(inp: Inputs) -> torch.Tensor:
    """The padded [B, S, E] fp32 attention output (padding rows zero)."""
    mha, mask = inp.mha, inp.mask
    B, S = mask.shape
    E, H = mha.embed_dim, mha.num_heads
    D = E // H
    with torch.no_grad():
        x = inp.padded[mask].float()                                  # [T, E] real tokens
        qkv = torch.addmm(mha.in_proj_bias.float(), x, mha.in_proj_weight.float().t())
        full = x.new_zeros(B, S, 3 * E)
        full[mask] = qkv
        q, k, v = full.view(B, S, 3, H, D).permute(2, 0, 3, 1, 4)    # each [B, H, S, D]
        scores = torch.matmul(q, k.transpose(-2, -1)).mul_(D ** -0.5)  # [B, H, S, S]
        scores.masked_fill_(~mask[:, None, None, :], float("-inf"))
        ctx = torch.matmul(scores.softmax(-1), v)                    # [B, H, S, D]
        del scores
        ctx = ctx.transpose(1, 2).reshape(B, S, E)[mask]              # [T, E]
        out = x.new_zeros(B, S, E)
        out[mask] = torch.addmm(mha.out_proj.bias.float(), ctx, mha.out_proj.weight.float().t())
    return out


def max_abs_err(out: torch.Tensor, reference: torch.Tensor, mask: torch.Tensor) -> float:
    """Largest |out - reference| over the real tokens (``out`` nested or padded)."""
    a, b = masked(out, mask).float(), masked(reference, mask).float()
    return float((a - b).abs().max()) if a.numel() else 0.0
