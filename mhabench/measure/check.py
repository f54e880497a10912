"""Correctness: fast vs slow on the real tokens."""
from __future__ import annotations

from dataclasses import dataclass

import torch

from . import compat

#: (atol, rtol) per dtype. fp16 is the reference's; bf16 has 8 mantissa bits (eps 7.8e-3);
#: fp32 leaves room for different reduction orders (and TF32 matmuls on CUDA when enabled).
TOLERANCES = {"float16": (1e-3, 1e-3), "bfloat16": (1e-2, 1e-2), "float32": (1e-4, 1e-4)}


@dataclass(frozen=True)
class Check:
    ok: bool
    max_abs_err: float
    message: str = ""


def masked(out: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Padded copy of ``out`` with padding rows zeroed (as the reference compares)."""
    return compat.to_padded(out, 0.0) * mask.unsqueeze(-1)


def compare(fast: torch.Tensor, slow: torch.Tensor, mask: torch.Tensor, dtype: str) -> Check:
    """``torch.testing.assert_close``'s verdict (its rule: ``torch.isclose`` in the outputs'
    own dtype, NaN never close) and the largest error, read in one synchronisation;
    ``assert_close`` itself, which synchronises more than once, runs only to word a failure."""
    a, b = masked(fast, mask), masked(slow, mask)
    if a.shape != b.shape:
        return Check(False, float("inf"), f"shape {tuple(a.shape)} != {tuple(b.shape)}")
    atol, rtol = TOLERANCES[dtype]
    if not a.numel():
        return Check(True, 0.0)
    x, y = a.detach(), b.detach()
    if x.dtype == y.dtype and x.device == y.device:
        close = torch.isclose(x, y, rtol=rtol, atol=atol).all()
        err, ok = torch.stack([(x.float() - y.float()).abs().max(), close.float()]).tolist()
        if ok:
            return Check(True, err)
    else:
        err = float((x.float() - y.float().to(x.device)).abs().max())
    try:
        torch.testing.assert_close(a, b, atol=atol, rtol=rtol)
    except AssertionError as exc:
        first = str(exc).strip().splitlines()[0]
        return Check(False, err, f"fast and slow outputs differ: {first} (max abs err {err:.3g})")
    return Check(True, err)
