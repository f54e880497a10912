"""Grid points and named grids.

A :class:`Point` is one cell of the reference grid: the shapes, the beta law of the sequence
lengths, dtype, device and seed. Grids are plain lists of points in the reference's loop order
(batch, sequence length, embed dim, heads, block, beta b).
"""
from __future__ import annotations

import itertools
import re
from dataclasses import dataclass, replace
from typing import Iterable, Sequence

#: The reference's beta law is beta(a, b * BETA_STEP) with b from ``range(1, 64, 4)``.
BETA_STEP = 0.05
SEED = 26214

DTYPES = {
    "fp16": "float16", "float16": "float16", "half": "float16",
    "bf16": "bfloat16", "bfloat16": "bfloat16",
    "fp32": "float32", "float32": "float32", "float": "float32",
}


class ConfigError(ValueError):
    """Bad user input; the message names the bad value and fits on one line."""


def canonical_dtype(name: str) -> str:
    """Map an alias (``fp16``, ``torch.float16``...) to the torch dtype name, or raise ConfigError."""
    key = str(name).strip().lower().removeprefix("torch.")
    if key not in DTYPES:
        raise ConfigError(f"unknown dtype {name!r} (choose from fp16, bf16, fp32)")
    return DTYPES[key]


def canonical_device(name: str) -> str:
    """Accept ``cpu``, ``cuda`` or ``cuda:N``; no CUDA check here (that needs torch)."""
    dev = str(name).strip().lower()
    if not re.fullmatch(r"cpu|cuda(:\d+)?", dev):
        raise ConfigError(f"unknown device {name!r} (choose cpu, cuda or cuda:N)")
    return dev


@dataclass(frozen=True)
class Point:
    """One benchmark configuration, validated on construction."""

    batch_size: int
    seq_len: int
    embed_dim: int
    num_heads: int
    beta_b: int
    beta_a: int = 1
    block_size: int = 2
    dtype: str = "float16"
    device: str = "cuda"
    seed: int = SEED

    def __post_init__(self):
        for name in ("batch_size", "seq_len", "embed_dim", "num_heads", "beta_b", "beta_a", "block_size"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
                raise ConfigError(f"{name} must be a positive integer, got {value!r}")
        if self.block_size > self.seq_len:
            raise ConfigError(f"block_size {self.block_size} is larger than seq_len {self.seq_len}")
        if self.embed_dim % self.num_heads:
            raise ConfigError(
                f"embed_dim {self.embed_dim} is not divisible by num_heads {self.num_heads}")
        object.__setattr__(self, "dtype", canonical_dtype(self.dtype))
        object.__setattr__(self, "device", canonical_device(self.device))

    @property
    def beta(self) -> tuple[float, float]:
        """Parameters of scipy's beta law, computed exactly as the reference does."""
        return self.beta_a, self.beta_b * BETA_STEP

    @property
    def key(self) -> str:
        """The reference's error-dictionary key for this shape."""
        return (f"batch:{self.batch_size}_seq_len:{self.seq_len}"
                f"_n_heads:{self.num_heads}_embed_dim:{self.embed_dim}")

    @property
    def label(self) -> str:
        """A unique, readable id (used in JSON output and asv caches)."""
        return (f"B{self.batch_size}-S{self.seq_len}-E{self.embed_dim}-H{self.num_heads}"
                f"-b{self.beta_b}-{self.dtype}-{self.device}")


LABEL = re.compile(r"B(\d+)-S(\d+)-E(\d+)-H(\d+)-b(\d+)-(\w+)-(cpu|cuda(?::\d+)?)")


def point_of_label(label: str, block_size: int = 2, seed: int = SEED) -> Point:
    """The inverse of :attr:`Point.label` (``B2-S8-E32-H4-b1-float32-cpu``); ConfigError if not one."""
    m = LABEL.fullmatch(label.strip())
    if not m:
        raise ConfigError(f"--points: {label!r} is not a point label "
                          "(e.g. B2-S8-E32-H4-b1-float32-cpu)")
    B, S, E, H, b = map(int, m.groups()[:5])
    return Point(B, S, E, H, b, block_size=block_size, dtype=m[6], device=m[7], seed=seed)


@dataclass(frozen=True)
class Axes:
    """The value lists a product grid is built from."""

    batch_sizes: tuple[int, ...]
    seq_lens: tuple[int, ...]
    embed_dims: tuple[int, ...]
    num_heads: tuple[int, ...]
    beta_bs: tuple[int, ...]

    def points(self, dtype: str, device: str, block_size: int = 2, seed: int = SEED) -> list[Point]:
        """The product in the reference's loop order."""
        grid = [Point(B, S, E, H, b, block_size=block_size, dtype=dtype, device=device, seed=seed)
                for B, S, E, H, b in itertools.product(
                    self.batch_sizes, self.seq_lens, self.embed_dims, self.num_heads, self.beta_bs)]
        if not grid:
            raise ConfigError("the grid is empty: every axis needs at least one value")
        return grid


SEED_AXES = Axes((16, 32, 64, 128, 256), (64, 128, 256, 512), (512, 1024), (8, 16),
                 tuple(range(1, 64, 4)))
SMOKE_AXES = Axes((2, 4), (8, 16), (32,), (4,), (1, 61))


def _quick(dtype: str, device: str) -> list[Point]:
    """32 seed-grid points in which every value of every axis appears (co-prime strides)."""
    ax = SEED_AXES
    picked = {
        (ax.batch_sizes[i % 5], ax.seq_lens[i % 4], ax.embed_dims[(i // 4) % 2],
         ax.num_heads[(i // 8) % 2], ax.beta_bs[(7 * i) % 16])
        for i in range(32)
    }
    order = {p.label: n for n, p in enumerate(SEED_AXES.points(dtype, device))}
    pts = [Point(B, S, E, H, b, dtype=dtype, device=device) for B, S, E, H, b in picked]
    return sorted(pts, key=lambda p: order[p.label])


GRIDS = ("seed", "quick", "smoke")


def named_grid(name: str, dtype: str, device: str) -> list[Point]:
    """``seed``: the reference's 1280 points; ``quick``: 32 of them; ``smoke``: 8 tiny CPU-sized ones."""
    if name == "seed":
        return SEED_AXES.points(dtype, device)
    if name == "quick":
        return _quick(dtype, device)
    if name == "smoke":
        return SMOKE_AXES.points(dtype, device)
    raise ConfigError(f"unknown grid {name!r} (choose from {', '.join(GRIDS)})")


def parse_int_list(text: str, name: str) -> tuple[int, ...]:
    """Parse ``"16,32,64"`` into positive ints; raise ConfigError naming the bad item."""
    items = [t.strip() for t in str(text).split(",") if t.strip()]
    if not items:
        raise ConfigError(f"{name} is empty")
    out = []
    for t in items:
        try:
            v = int(t)
        except ValueError:
            raise ConfigError(f"{name}: {t!r} is not an integer") from None
        if v <= 0:
            raise ConfigError(f"{name}: {v} is not positive")
        out.append(v)
    return tuple(out)


def custom_axes(base: Axes, overrides: dict[str, Sequence[int] | None]) -> Axes:
    """Replace some axes of ``base`` (None keeps the base values)."""
    return replace(base, **{k: tuple(v) for k, v in overrides.items() if v is not None})


def stride(points: Iterable[Point], step: int, start: int = 0) -> list[Point]:
    """Every ``step``-th point (the precision protocol takes the seed grid with stride 8)."""
    return list(points)[start::step]
