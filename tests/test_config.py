"""Points, validation, and the named grids."""
from __future__ import annotations

import dataclasses

import pytest

from mhabench.measure import config
from mhabench.measure.config import (DEFAULT_GRID, SEED, Axes, ConfigError, Point,
                                     canonical_device, canonical_dtype, default_grid, named_grid,
                                     parse_grid, parse_int_list, point_of_label, stride)

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


def test_stride():
    pts = list(range(10))
    assert stride(pts, 3) == [0, 3, 6, 9]
    assert stride(pts, 4, start=1) == [1, 5, 9]
    assert stride(pts, 1) == pts


# --- grid specs: NAME[;KEY=N,N...][/STRIDE] -----------------------------------------------------

def test_the_default_grid_is_the_devices():
    assert DEFAULT_GRID == {"cpu": "smoke", "cuda": "seed"}
    assert default_grid("cpu") == "smoke" and default_grid("cuda:1") == "seed"
    cpu, cuda = parse_grid("", "fp32", "cpu"), parse_grid("  ", "fp16", "cuda")
    assert (cpu.name, len(cpu.points)) == ("smoke", 8) and cpu.axes == config.SMOKE_AXES
    assert (cuda.name, len(cuda.points)) == ("seed", 1280) and cuda.axes == config.SEED_AXES
    assert cpu.spec == "smoke" and cuda.spec == "seed"


@pytest.mark.parametrize("name", config.GRIDS)
def test_a_named_grid_spec_is_the_named_grid(name):
    g = parse_grid(name.upper(), "bf16", "cuda:1")
    assert g.name == name and list(g.points) == named_grid(name, "bf16", "cuda:1")


def test_a_stride_takes_every_nth_point_in_grid_order():
    seed = named_grid("seed", "fp16", "cuda")
    g = parse_grid("seed/8", "fp16", "cuda")
    assert list(g.points) == seed[::8] and len(g.points) == 160
    assert g.name == "seed" and g.spec == "seed/8" and g.axes == config.SEED_AXES
    assert list(parse_grid("smoke / 3", "fp32", "cpu").points) == \
        named_grid("smoke", "fp32", "cpu")[::3]


def test_axes_replace_those_of_the_named_grid_in_the_references_order():
    g = parse_grid("smoke;batch=3,1;seq=8;b=7", "fp32", "cpu")
    assert g.name == "custom"
    assert g.axes == Axes((3, 1), (8,), (32,), (4,), (7,))
    assert [_shape(p) for p in g.points] == [(3, 8, 32, 4, 2, 7), (1, 8, 32, 4, 2, 7)]
    seed = parse_grid("seed;batch=16;seq=64;embed=512;heads=8", "fp16", "cuda")
    assert [p.beta_b for p in seed.points] == REF_B, "the other axes stay the seed grid's"
    long = parse_grid("seed;batch_size=16;seq_len=64;embed_dim=512;num_heads=8;beta_b=1",
                      "fp16", "cuda")
    assert [_shape(p) for p in long.points] == [(16, 64, 512, 8, 2, 1)], "long key names too"


def test_custom_grids_without_a_name_take_the_smoke_axes():
    for spec in ("custom:batch=7", "batch=7"):
        g = parse_grid(spec, "fp32", "cpu")
        assert g.name == "custom" and g.axes.batch_sizes == (7,)
        assert g.axes.seq_lens == config.SMOKE_AXES.seq_lens
        assert g.axes.beta_bs == config.SMOKE_AXES.beta_bs
        assert len(g.points) == len(config.SMOKE_AXES.points("fp32", "cpu")) // 2


def test_block_and_seed_apply_to_every_point_of_a_named_grid():
    g = parse_grid("quick;seed=1;block=4", "fp16", "cuda")
    quick = named_grid("quick", "fp16", "cuda")
    assert g.name == "quick" and [_shape(p)[:4] for p in g.points] == [_shape(p)[:4] for p in quick]
    assert {(p.seed, p.block_size) for p in g.points} == {(1, 4)}
    assert {p.seed for p in parse_grid("smoke", "fp32", "cpu").points} == {SEED}
    assert {p.seed for p in parse_grid("smoke;seed=0", "fp32", "cpu").points} == {0}
    custom = parse_grid("smoke;batch=2;seed=5;block=1", "fp32", "cpu")
    assert {(p.seed, p.block_size) for p in custom.points} == {(5, 1)}


def test_shapes_heads_cannot_split_are_left_out_of_a_custom_grid():
    g = parse_grid("smoke;embed=32,30;heads=4,5", "fp32", "cpu")
    assert {(p.embed_dim, p.num_heads) for p in g.points} == {(32, 4), (30, 5)}


@pytest.mark.parametrize("spec, needle", [
    ("huge", "unknown grid 'huge'"), ("/8", "unknown grid ''"),
    ("smoke;foo=1", "bad item 'foo=1'"), ("smoke;batch", "bad item 'batch'"),
    ("smoke;batch=2;batch=4", "'batch' given twice"), ("smoke;batch=x", "'x' is not an integer"),
    ("smoke;batch=0", "0 is not positive"), ("smoke;seq=", "seq is empty"),
    ("quick;batch=2", "quick is a choice of seed points"),
    ("seed/0", "stride must be >= 1, got 0"), ("seed/x", "stride 'x' is not an integer"),
    ("seed;seed=-1", "seed must be in [0, 2**32), got -1"),
    ("seed;seed=4294967296", "seed must be in [0, 2**32)"), ("seed;seed=x", "seed 'x'"),
    ("seed;seed=1,2", "seed takes one value"), ("seed;block=1,2", "block takes one value"),
    ("seed;block=0", "0 is not positive"),
    ("smoke;block=9", "block 9 is larger than seq_len 8"),
    ("seed;block=65", "block 65 is larger than seq_len 64"),
    ("smoke;batch=2;block=9", "block 9 is larger than seq_len 8"),
    ("smoke;seq=8;block=9", "block 9 is larger than seq_len 8"),
    ("seed;embed=30;heads=4", "no valid point (embed dim must be divisible by heads)"),
])
def test_a_bad_grid_spec_is_one_line_naming_the_flag_and_the_bad_part(spec, needle):
    for what in ("--grid", "MHABENCH_GRID"):
        with pytest.raises(ConfigError) as ei:
            parse_grid(spec, "fp32", "cpu", what=what)
        msg = str(ei.value)
        assert msg.startswith(what) and needle in msg and "\n" not in msg, msg


def test_point_of_label_inverts_point_label():
    for p in named_grid("smoke", "fp32", "cpu") + named_grid("quick", "fp16", "cuda:1"):
        assert point_of_label(p.label) == p
    assert point_of_label("B2-S8-E32-H4-b1-float32-cpu", block_size=4, seed=1) == \
        Point(2, 8, 32, 4, 1, block_size=4, dtype="fp32", device="cpu", seed=1)
    for bad in ("B2-S8", "B2-S8-E32-H4-b1-float32-tpu", ""):
        with pytest.raises(ConfigError, match="is not a point label"):
            point_of_label(bad)
