"""Points, validation, and the named grids."""
from __future__ import annotations

import dataclasses

import pytest

from mhabench.measure import config
from mhabench.measure.config import (Axes, ConfigError, Point, canonical_device, canonical_dtype,
                             custom_axes, named_grid, parse_int_list, stride)

# The reference script's loops, spelled out here (not read from mhabench).
REF_BATCH = [16, 32, 64, 128, 256]
REF_SEQ = [64, 128, 256, 512]
REF_EMBED = [512, 1024]
REF_HEADS = [8, 16]
REF_BLOCK = [2]
REF_B = list(range(1, 64, 4))
REF_SEED = 26214


def _reference_order():
    out = []
    for B in REF_BATCH:
        for S in REF_SEQ:
            for E in REF_EMBED:
                for H in REF_HEADS:
                    for block in REF_BLOCK:
                        for b in REF_B:
                            out.append((B, S, E, H, block, b))
    return out


def _shape(p: Point):
    return (p.batch_size, p.seq_len, p.embed_dim, p.num_heads, p.block_size, p.beta_b)


# --- Point --------------------------------------------------------------------------------

def test_point_defaults_follow_the_reference():
    p = Point(16, 64, 512, 8, 1)
    assert p.block_size == 2
    assert p.seed == REF_SEED
    assert p.beta_a == 1
    assert p.dtype == "float16"
    assert p.device == "cuda"


@pytest.mark.parametrize("b", [1, 5, 21, 61])
def test_beta_parameters_are_the_references(b):
    p = Point(16, 64, 512, 8, b)
    # the reference calls run(1, b * 0.05, ...)
    assert p.beta == (1, b * 0.05)


def test_key_uses_reference_format():
    p = Point(32, 128, 1024, 16, 9)
    assert p.key == "batch:32_seq_len:128_n_heads:16_embed_dim:1024"


def test_labels_are_unique_over_the_seed_grid():
    pts = named_grid("seed", "fp16", "cuda")
    assert len({p.label for p in pts}) == len(pts)


@pytest.mark.parametrize("field", ["batch_size", "seq_len", "embed_dim", "num_heads", "beta_b",
                                   "beta_a", "block_size"])
@pytest.mark.parametrize("bad", [0, -4, 2.0, True, "8"])
def test_point_rejects_non_positive_or_non_int(field, bad):
    kwargs = dict(batch_size=2, seq_len=8, embed_dim=32, num_heads=4, beta_b=1)
    kwargs[field] = bad
    with pytest.raises(ConfigError) as ei:
        Point(**kwargs)
    assert field in str(ei.value)
    assert repr(bad) in str(ei.value)


def test_point_rejects_heads_not_dividing_embed():
    with pytest.raises(ConfigError) as ei:
        Point(2, 8, 32, 3, 1)
    msg = str(ei.value)
    assert "32" in msg and "3" in msg
    assert "\n" not in msg


def test_point_is_frozen():
    p = Point(2, 8, 32, 4, 1)
    with pytest.raises(dataclasses.FrozenInstanceError):
        p.batch_size = 4  # type: ignore[misc]


def test_point_canonicalises_dtype_and_device():
    p = Point(2, 8, 32, 4, 1, dtype="torch.bfloat16", device="CPU")
    assert p.dtype == "bfloat16"
    assert p.device == "cpu"


# --- dtype / device -------------------------------------------------------------------------

@pytest.mark.parametrize("alias,expected", [
    ("fp16", "float16"), ("half", "float16"), ("float16", "float16"), ("torch.float16", "float16"),
    ("bf16", "bfloat16"), ("BF16", "bfloat16"), ("fp32", "float32"), ("float", "float32"),
    (" fp32 ", "float32"),
])
def test_canonical_dtype(alias, expected):
    assert canonical_dtype(alias) == expected


@pytest.mark.parametrize("bad", ["fp8", "int8", "", "float64"])
def test_canonical_dtype_rejects(bad):
    with pytest.raises(ConfigError) as ei:
        canonical_dtype(bad)
    assert repr(bad) in str(ei.value)


@pytest.mark.parametrize("dev,expected", [("cpu", "cpu"), ("CUDA", "cuda"), ("cuda:0", "cuda:0"),
                                          ("cuda:3", "cuda:3")])
def test_canonical_device(dev, expected):
    assert canonical_device(dev) == expected


@pytest.mark.parametrize("bad", ["tpu", "cuda:", "cuda:x", "gpu", "cpu:0", "mps"])
def test_canonical_device_rejects(bad):
    with pytest.raises(ConfigError) as ei:
        canonical_device(bad)
    assert repr(bad) in str(ei.value)


# --- named grids ----------------------------------------------------------------------------

def test_seed_grid_is_the_references_1280_points_in_order():
    pts = named_grid("seed", "fp16", "cuda")
    assert len(pts) == 1280
    assert [_shape(p) for p in pts] == _reference_order()
    assert all(p.seed == REF_SEED and p.beta_a == 1 for p in pts)
    assert all(p.dtype == "float16" and p.device == "cuda" for p in pts)


def test_seed_grid_takes_dtype_and_device():
    pts = named_grid("seed", "bf16", "cuda:1")
    assert {p.dtype for p in pts} == {"bfloat16"}
    assert {p.device for p in pts} == {"cuda:1"}


def test_quick_grid_is_a_covering_subset_of_seed():
    seed_pts = named_grid("seed", "fp16", "cuda")
    quick = named_grid("quick", "fp16", "cuda")
    assert 0 < len(quick) <= 32
    assert len(set(quick)) == len(quick)
    index = {p: i for i, p in enumerate(seed_pts)}
    assert all(p in index for p in quick), "quick has points outside the seed grid"
    positions = [index[p] for p in quick]
    assert positions == sorted(positions), "quick is not in the seed grid's order"
    for axis, values in [("batch_size", REF_BATCH), ("seq_len", REF_SEQ), ("embed_dim", REF_EMBED),
                         ("num_heads", REF_HEADS), ("beta_b", REF_B)]:
        assert {getattr(p, axis) for p in quick} == set(values), axis


def test_quick_grid_takes_dtype_and_device():
    quick = named_grid("quick", "fp32", "cpu")
    assert {(p.dtype, p.device) for p in quick} == {("float32", "cpu")}


def test_smoke_grid_is_tiny():
    pts = named_grid("smoke", "fp32", "cpu")
    assert 1 <= len(pts) <= 16
    assert all(p.batch_size <= 4 and p.seq_len <= 16 and p.embed_dim <= 64 for p in pts)
    assert all(p.embed_dim % p.num_heads == 0 for p in pts)
    assert {(p.dtype, p.device) for p in pts} == {("float32", "cpu")}


def test_unknown_grid_names_the_value():
    with pytest.raises(ConfigError) as ei:
        named_grid("huge", "fp16", "cuda")
    assert "'huge'" in str(ei.value)


# --- Axes / parsing / stride ---------------------------------------------------------------

def test_axes_points_product_order_and_knobs():
    ax = Axes((1, 2), (4,), (8,), (2, 4), (1, 5))
    pts = ax.points("fp32", "cpu", block_size=3, seed=7)
    expected = [(B, 4, 8, H, 3, b) for B in (1, 2) for H in (2, 4) for b in (1, 5)]
    assert [_shape(p) for p in pts] == expected
    assert {p.seed for p in pts} == {7}


def test_axes_empty_axis_is_an_error():
    ax = Axes((), (4,), (8,), (2,), (1,))
    with pytest.raises(ConfigError):
        ax.points("fp32", "cpu")


@pytest.mark.parametrize("text,expected", [("16,32,64", (16, 32, 64)), (" 8 , 4 ", (8, 4)),
                                           ("5", (5,)), ("1,,2,", (1, 2))])
def test_parse_int_list(text, expected):
    assert parse_int_list(text, "--x") == expected


@pytest.mark.parametrize("text,needle", [("", "empty"), (" , ", "empty"), ("a", "'a'"),
                                         ("4,x7", "'x7'"), ("0", "0"), ("2,-4", "-4"),
                                         ("1.5", "'1.5'")])
def test_parse_int_list_rejects(text, needle):
    with pytest.raises(ConfigError) as ei:
        parse_int_list(text, "--batch-sizes")
    msg = str(ei.value)
    assert "--batch-sizes" in msg
    assert needle in msg


def test_custom_axes_replaces_only_given_axes():
    base = config.SMOKE_AXES
    ax = custom_axes(base, {"batch_sizes": [7], "seq_lens": None})
    assert ax.batch_sizes == (7,)
    assert ax.seq_lens == base.seq_lens
    assert ax.beta_bs == base.beta_bs


def test_stride():
    pts = list(range(10))
    assert stride(pts, 3) == [0, 3, 6, 9]
    assert stride(pts, 4, start=1) == [1, 5, 9]
    assert stride(pts, 1) == pts
