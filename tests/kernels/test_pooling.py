"""Randomized differential tests: generic AVERAGE_POOL_2D and MAX_POOL_2D against TFLite Micro, bit for bit.

Several independent random pooling layers per test model (one compile); full-range and narrow-range inputs.
Parameter space: filters 1..7 (non-square), strides 1..3 (also stride > filter), SAME/VALID (asymmetric SAME
padding, windows mostly in the padding), channels 1..17, zero points at the extremes, every fused activation,
batches 1..2, tiny and larger spatial sizes.
"""
from __future__ import annotations

import numpy as np
import pytest

from specializer import ops
from specializer.errors import ShapeError
from specializer.tflite_writer import ModelBuilder
from spz_testutil import assert_bitexact

ACTS = ("NONE", "RELU", "RELU6", "RELU_N1_TO_1")
KINDS = ("AVERAGE_POOL_2D", "MAX_POOL_2D")
PER_MODEL = 10


def _quant(rng, act):
    if act == "RELU_N1_TO_1":
        return float(10 ** rng.uniform(-2.5, -1.5)), int(rng.integers(-60, 61))
    if act == "RELU6":
        return float(6 / 255 * 10 ** rng.uniform(-0.3, 0.3)), int(rng.integers(-128, 40))
    zp = int(rng.choice([-128, 127, 0])) if rng.random() < 0.4 else int(rng.integers(-128, 128))
    return float(10 ** rng.uniform(-3, 1)), zp


def add_pool_layer(mb, rng, tag, kind=None, geom=None):
    kind = kind or str(rng.choice(KINDS))
    if geom is None:
        padding = str(rng.choice(["SAME", "VALID"]))
        dims = []
        for _ in range(2):
            k = int(rng.integers(1, 8))
            s = int(rng.integers(1, 4))
            lo = k if padding == "VALID" else 1
            dims.append((int(rng.integers(lo, max(lo, 16) + 1)), k, s))
        geom = (dims[0][0], dims[1][0], dims[0][1], dims[1][1], dims[0][2], dims[1][2], padding)
    ih, iw, kh, kw, sh, sw, padding = geom
    act = str(rng.choice(ACTS))
    s, zp = _quant(rng, act)
    b = 2 if rng.random() < 0.2 else 1
    c = int(rng.choice([1, 2, 3, 5, 7, 8, 13, 17]))
    x = mb.input(f"x{tag}", (b, ih, iw, c), scale=s, zero_point=zp)
    oh = ops.conv_output_size(ih, kh, sh, 1, padding)
    ow = ops.conv_output_size(iw, kw, sw, 1, padding)
    y = mb.tensor(f"y{tag}", (b, oh, ow, c), scale=s, zero_point=zp)
    mb.op(kind, [x], [y], ops.Pool2D(padding=padding, stride_h=sh, stride_w=sw, filter_h=kh, filter_w=kw,
                                     activation=act))
    mb.output(y)
    return (b, ih, iw, c), zp, f"{kind} in={b}x{ih}x{iw}x{c} k={kh}x{kw} s={sh},{sw} {padding} {act} zp={zp}"


def _inputs(rng, layers, n_sets=2):
    sets = []
    for k in range(n_sets):
        xs = []
        for shape, zp, _ in layers:
            lo, hi = (-128, 127) if k == 0 else (max(-128, zp - 30), min(127, zp + 30))
            xs.append(rng.integers(lo, hi + 1, size=shape).astype(np.int8))
        sets.append(xs)
    return sets


def _run(tmp_path, seed, n_cases):
    rng = np.random.default_rng(seed)
    done = m = 0
    while done < n_cases:
        mb = ModelBuilder()
        layers = [add_pool_layer(mb, rng, str(i)) for i in range(min(PER_MODEL, n_cases - done))]
        try:
            assert_bitexact(mb.build(), _inputs(rng, layers), tmp_path / f"m{m}")
        except AssertionError as e:
            raise AssertionError(f"{e}\nlayers:\n  " + "\n  ".join(d for _, _, d in layers))
        done += len(layers)
        m += 1


def test_pooling_random(tmp_path, sweep):
    _run(tmp_path, 4004, sweep(60))


@pytest.mark.parametrize("geom", [
    (1, 1, 1, 1, 1, 1, "VALID"),          # tiny
    (1, 9, 1, 7, 1, 1, "SAME"),           # 1xN
    (10, 11, 2, 2, 3, 3, "SAME"),         # stride > filter
    (5, 5, 7, 7, 1, 1, "SAME"),           # filter larger than the input: heavy padding, few valid taps
    (6, 7, 4, 3, 2, 2, "SAME"),           # asymmetric SAME padding
    (24, 20, 3, 3, 2, 2, "VALID"),        # larger spatial size
])
def test_pooling_edges(tmp_path, geom):
    rng = np.random.default_rng(sum(map(hash, geom)) % (1 << 32))
    mb = ModelBuilder()
    layers = [add_pool_layer(mb, rng, f"{k}{i}", kind=k, geom=geom) for k in KINDS for i in range(2)]
    assert_bitexact(mb.build(), _inputs(rng, layers), tmp_path)


def test_pooling_rejects_requantization(tmp_path):
    import specializer

    mb = ModelBuilder()
    x = mb.input("x", (1, 4, 4, 3), scale=0.1, zero_point=2)
    y = mb.tensor("y", (1, 2, 2, 3), scale=0.2, zero_point=2)
    mb.op("AVERAGE_POOL_2D", [x], [y], ops.Pool2D(padding="VALID", stride_h=2, stride_w=2, filter_h=2, filter_w=2))
    mb.output(y)
    with pytest.raises(ShapeError, match="same quantization"):
        specializer.compile(mb.build(), name="bad", out_dir=tmp_path / "o")


def test_pooling_rejects_wrong_output_shape(tmp_path):
    import specializer

    mb = ModelBuilder()
    x = mb.input("x", (1, 4, 4, 3), scale=0.1, zero_point=2)
    y = mb.tensor("y", (1, 3, 2, 3), scale=0.1, zero_point=2)
    mb.op("MAX_POOL_2D", [x], [y], ops.Pool2D(padding="VALID", stride_h=2, stride_w=2, filter_h=2, filter_w=2))
    mb.output(y)
    with pytest.raises(ShapeError, match="does not match VALID"):
        specializer.compile(mb.build(), name="bad", out_dir=tmp_path / "o")


@pytest.mark.slow
def test_pooling_sweep_large(tmp_path, sweep):
    _run(tmp_path, 9004, sweep(500))
