"""Grid points and named grids.

A :class:`Point` is one cell of the reference grid: the shapes, the beta law of the sequence
lengths, dtype, device and seed. Grids are plain lists of points in the reference's loop order
(batch, sequence length, embed dim, heads, block, beta b).
"""
from __future__ import annotations

import itertools
import re
from dataclasses import dataclass, replace
from typing import Iterable

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


def stride(points: Iterable[Point], step: int, start: int = 0) -> list[Point]:
    """Every ``step``-th point (the precision protocol takes the seed grid with stride 8)."""
    return list(points)[start::step]


# --- grid specifications -----------------------------------------------------------------------
#: Grid spec keys -> Axes field (axis values), plus ``block`` and ``seed`` (one value each).
AXIS_KEYS = {"batch": "batch_sizes", "batch_size": "batch_sizes", "seq": "seq_lens",
             "seq_len": "seq_lens", "embed": "embed_dims", "embed_dim": "embed_dims",
             "heads": "num_heads", "num_heads": "num_heads", "b": "beta_bs", "beta_b": "beta_bs"}
SCALAR_KEYS = ("block", "seed")
#: The device's default grid, named once: the reference's own on CUDA, a few tiny points on a CPU.
DEFAULT_GRID = {"cpu": "smoke", "cuda": "seed"}

GRID_SYNTAX = ("NAME[;KEY=N,N...][/STRIDE]: NAME seed, quick or smoke; KEY batch, seq, embed, "
               "heads, b (axis values) or block, seed (one value)")


@dataclass(frozen=True)
class Grid:
    """A parsed grid spec: its text, the axes asv's parameters are built from, and the points
    measured (a subset of the axes' product where the spec is quick, strided or skips shapes
    the module cannot be built with)."""

    spec: str
    name: str                 # seed, quick, smoke or custom (axes replaced)
    axes: Axes
    points: tuple[Point, ...]


def default_grid(device: str) -> str:
    return DEFAULT_GRID["cuda" if str(device).startswith("cuda") else "cpu"]


def parse_grid(text: str, dtype: str, device: str, what: str = "--grid") -> Grid:
    """``seed``, ``smoke;batch=2,4;seq=8``, ``seed/8`` (every 8th point), ``quick;seed=1``,
    ``custom:batch=2`` (a custom grid on the smoke axes, as before)... -> :class:`Grid`;
    ConfigError naming the bad part. Shapes whose embed dim the head count does not divide are
    left out of a custom grid (an error if none is left)."""
    spec = str(text).strip() or default_grid(device)
    body, step = spec, 1
    if "/" in spec:
        body, _, stride_text = spec.rpartition("/")
        try:
            step = int(stride_text)
        except ValueError:
            raise ConfigError(f"{what} {spec!r}: stride {stride_text!r} is not an integer") from None
        if step < 1:
            raise ConfigError(f"{what} {spec!r}: stride must be >= 1, got {step}")
    parts = [t.strip() for t in body.split(";")]
    base = parts[0].lower()
    if base.startswith("custom:"):
        parts, base = [base[len("custom:"):]] + parts[1:], "smoke"
        custom = True
    elif "=" in base:
        parts, base, custom = parts, "smoke", True
    else:
        parts, custom = parts[1:], False
    if base not in GRIDS:
        raise ConfigError(f"{what}: unknown grid {base!r} (choose from {', '.join(GRIDS)}, or "
                          f"{GRID_SYNTAX})")
    axes: dict[str, tuple[int, ...]] = {}
    scalars: dict[str, int] = {}
    for item in parts:
        if not item:
            continue
        key, sep, values = item.partition("=")
        key = key.strip().lower()
        if not sep or (key not in AXIS_KEYS and key not in SCALAR_KEYS):
            raise ConfigError(f"{what}: bad item {item!r} in {spec!r} ({GRID_SYNTAX})")
        if key in SCALAR_KEYS:
            v = parse_int_list(values, f"{what} {key}") if key == "block" else \
                _seed_value(values, what)
            if len(v) != 1:
                raise ConfigError(f"{what}: {key} takes one value, got {values!r}")
            scalars[key] = v[0]
            continue
        field = AXIS_KEYS[key]
        if field in axes:
            raise ConfigError(f"{what}: {key!r} given twice in {spec!r}")
        axes[field] = parse_int_list(values, f"{what} {key}")
    if axes and base == "quick":
        raise ConfigError(f"{what}: quick is a choice of seed points; give axes with seed or "
                          f"smoke ({spec!r})")
    block, seed = scalars.get("block", 2), scalars.get("seed", SEED)
    if not 0 <= seed < 2**32:
        raise ConfigError(f"{what}: seed must be in [0, 2**32), got {seed}")
    if axes or custom:
        full = replace(SEED_AXES if base == "seed" else SMOKE_AXES, **axes)
    else:
        full = SMOKE_AXES if base == "smoke" else SEED_AXES
    # every sequence length of the grid must hold a block (checked here, in the flag's name,
    # before a Point refuses it without)
    if block > min(full.seq_lens):
        raise ConfigError(f"{what}: block {block} is larger than seq_len {min(full.seq_lens)}")
    if axes or custom:
        points = [p for p in _product(full, dtype, device, block, seed)]
        if not points:
            raise ConfigError(f"{what}: grid {spec!r} has no valid point (embed dim must be "
                              "divisible by heads)")
        name = "custom"
    else:
        points = named_grid(base, dtype, device)
        if block != 2 or seed != SEED:
            points = [replace(p, block_size=block, seed=seed) for p in points]
        name = base
    return Grid(spec, name, full, tuple(stride(points, step)))


def _seed_value(text: str, what: str) -> tuple[int, ...]:
    try:
        return tuple(int(t) for t in str(text).split(",") if t.strip())
    except ValueError:
        raise ConfigError(f"{what}: seed {text!r} is not an integer") from None


def _product(axes: Axes, dtype: str, device: str, block: int, seed: int) -> list[Point]:
    """The axes' product in the reference's loop order, without the shapes MultiheadAttention
    cannot be built with (E % H != 0)."""
    return [Point(B, S, E, H, b, block_size=block, dtype=dtype, device=device, seed=seed)
            for B, S, E, H, b in itertools.product(axes.batch_sizes, axes.seq_lens,
                                                   axes.embed_dims, axes.num_heads, axes.beta_bs)
            if E % H == 0]
