"""Build one point's module and inputs on its device, reproducing the reference's values."""
from __future__ import annotations

from dataclasses import dataclass

import torch

from . import compat
from .config import Point
from .lengths import beta_lengths, padding_fraction, seed_all


@dataclass
class Inputs:
    """The module plus the same batch as a nested tensor, as a padded tensor, and its mask."""

    point: Point
    lengths: list[int]
    mha: torch.nn.MultiheadAttention
    nested: torch.Tensor
    padded: torch.Tensor
    mask: torch.Tensor  # bool [B, S], True on real tokens

    @property
    def padding(self) -> float:
        return padding_fraction(self.lengths, self.point.seq_len)


#: Bytes per element of each dtype a point can have.
ITEM_BYTES = {"float16": 2, "bfloat16": 2, "float32": 4}


def input_bytes(point: Point) -> int:
    """What a point's built inputs hold at most: the padded batch and its nested copy (no
    larger), and the module's projections. Sizes what several points may keep alive at once."""
    E = point.embed_dim
    return (2 * point.batch_size * point.seq_len * E + 4 * E * E + 4 * E) * ITEM_BYTES[point.dtype]


def point_lengths(point: Point) -> list[int]:
    """The point's lengths (seeds every generator first, as the reference does)."""
    seed_all(point.seed)
    return beta_lengths(*point.beta, point.batch_size, point.seq_len, point.block_size)


def build(point: Point) -> Inputs:
    """Same seeds, same draw order as the reference: lengths, queries, qkv, proj, module."""
    lengths = point_lengths(point)
    dev, dt = point.device, compat.dtype_of(point.dtype)
    rows = [torch.randn(n, point.embed_dim, device=dev, dtype=dt) for n in lengths]
    nested = compat.nested_tensor(rows, device=dev, dtype=dt)
    E = point.embed_dim
    qkv = torch.nn.Linear(E, 3 * E, device=dev, dtype=dt)
    proj = torch.nn.Linear(E, E, device=dev, dtype=dt)
    mha = torch.nn.MultiheadAttention(E, point.num_heads, batch_first=True, device=dev, dtype=dt).eval()
    mha.in_proj_weight = qkv.weight
    mha.in_proj_bias = qkv.bias
    mha.out_proj.weight = proj.weight
    mha.out_proj.bias = proj.bias
    padded = compat.to_padded(nested, 0.0)
    mask = torch.arange(point.seq_len) < torch.tensor(lengths).unsqueeze(1)
    return Inputs(point, lengths, mha, nested, padded, mask.to(dev))
