"""FLOP counts of one ``torch.nn.MultiheadAttention`` call (pure arithmetic, no torch).

Self-attention, ``batch_first``, embed dim ``E``, ``H`` heads of dim ``E / H``. One
multiply-add counts as 2 FLOPs. Per sequence of ``L`` tokens:

* input projection ``x @ W_in^T`` with ``W_in`` of shape ``[3E, E]``: ``2 * L * E * 3E``
* attention scores ``Q K^T``, every head: ``H * 2 * L * L * (E/H) = 2 * L * L * E``
* weighted sum ``softmax(...) V``, every head: again ``2 * L * L * E``
* output projection ``ctx @ W_out^T`` with ``W_out`` of shape ``[E, E]``: ``2 * L * E * E``

Excluded (small next to the matmuls, and not matmul-peak work): the biases, the ``1/sqrt(d)``
scaling, the softmax, the key-padding mask, and the reshapes and copies. The head count does
not change the total; it is only checked (``E`` must divide into ``H`` heads).

``useful_flops`` counts the real tokens only: what the nested fast path needs to do.
``padded_flops`` counts the padded batch: what the slow path does (every row ``S`` long, the
masked keys still multiplied).
"""
from __future__ import annotations

import math
import operator
from typing import Iterable


def _check(embed_dim: int, num_heads: int) -> None:
    for name, v in (("embed_dim", embed_dim), ("num_heads", num_heads)):
        if isinstance(v, bool) or not isinstance(v, int) or v <= 0:
            raise ValueError(f"{name} must be a positive integer, got {v!r}")
    if embed_dim % num_heads:
        raise ValueError(f"embed_dim {embed_dim} is not divisible by num_heads {num_heads}")


def _count(n, name: str = "length") -> int:
    """``n`` as a non-negative int (numpy integers accepted, floats and bools refused)."""
    try:
        if isinstance(n, bool):
            raise TypeError
        v = operator.index(n)
    except TypeError:
        raise ValueError(f"{name} must be a non-negative integer, got {n!r}") from None
    if v < 0:
        raise ValueError(f"{name} must be a non-negative integer, got {n!r}")
    return v


def projection_flops(tokens: int, embed_dim: int) -> int:
    """Input projection (``3E`` outputs) plus output projection (``E`` outputs) over ``tokens``."""
    tokens = _count(tokens, "tokens")
    E = embed_dim
    return 2 * tokens * E * 3 * E + 2 * tokens * E * E


def attention_flops(seq_len: int, embed_dim: int) -> int:
    """``Q K^T`` plus ``P V`` over all heads of one sequence of ``seq_len`` tokens."""
    seq_len = _count(seq_len, "seq_len")
    return 2 * (2 * seq_len * seq_len * embed_dim)


def sequence_flops(seq_len: int, embed_dim: int, num_heads: int) -> int:
    """FLOPs of one sequence of ``seq_len`` tokens through the whole module."""
    _check(embed_dim, num_heads)
    return projection_flops(seq_len, embed_dim) + attention_flops(seq_len, embed_dim)


def flops_breakdown(lengths: Iterable[int], embed_dim: int, num_heads: int) -> dict[str, int]:
    """``{"projections", "attention", "total"}`` over the given sequence lengths."""
    _check(embed_dim, num_heads)
    lengths = [_count(n) for n in lengths]
    # both sums in closed form (exact integers): projections are linear in the tokens, the
    # attention of a sequence goes with its length squared
    proj = projection_flops(sum(lengths), embed_dim)
    attn = attention_flops(1, embed_dim) * sum(n * n for n in lengths)
    return {"projections": proj, "attention": attn, "total": proj + attn}


def useful_flops(lengths: Iterable[int], embed_dim: int, num_heads: int) -> int:
    """FLOPs on the real tokens only: each sequence attends over its own length."""
    return flops_breakdown(lengths, embed_dim, num_heads)["total"]


def padded_flops(batch_size: int, seq_len: int, embed_dim: int, num_heads: int) -> int:
    """FLOPs of the padded ``batch_size x seq_len`` batch (every row ``seq_len`` long)."""
    batch_size = _count(batch_size, "batch_size")
    return batch_size * sequence_flops(seq_len, embed_dim, num_heads)


def tflops(flops: float, us: float) -> float:
    """Throughput in TFLOP/s of ``flops`` done in ``us`` microseconds (NaN if ``us`` is not > 0)."""
    if us is None or flops is None or not math.isfinite(us) or us <= 0:
        return math.nan
    return flops / (us * 1e-6) / 1e12
