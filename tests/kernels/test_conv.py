"""Randomized differential tests: generic CONV_2D and DEPTHWISE_CONV_2D against TFLite Micro, bit for bit.

Each test model holds several independent random layers (one input and one output each) so one compile covers
many cases; every model runs on full-range and narrow-range random inputs. The parameter space: kernels 1..7
(non-square, 1xN), strides 1..3 (also stride > kernel), dilations 1..3, SAME/VALID, channel counts not a
multiple of 4, depth multipliers 1..4, groups, per-channel scales over orders of magnitude, zero points at the
extremes, every fused activation, batches 1..2, with and without bias, folded and unfolded zero points.
"""
from __future__ import annotations

import numpy as np
import pytest

from specializer import ops
from specializer.errors import ShapeError, SpecializerError
from specializer.tflite_writer import ModelBuilder
from spz_testutil import assert_bitexact

from spz_randlayers import add_conv_layer, random_inputs  # noqa: E402

PER_MODEL = 8


def run_random_models(tmp_path, seed, n_cases, depthwise, n_sets=2, **kw):
    rng = np.random.default_rng(seed)
    done = 0
    m = 0
    while done < n_cases:
        mb = ModelBuilder()
        k = min(PER_MODEL, n_cases - done)
        layers = [add_conv_layer(mb, rng, str(i), depthwise, **kw) for i in range(k)]
        inputs = random_inputs(rng, [(s, zp) for s, zp, _ in layers], n_sets)
        assert_bitexact(mb.build(), inputs, tmp_path / f"m{m}", layers=[d for _, _, d in layers])
        done += k
        m += 1
    return done


def test_conv2d_random(tmp_path, sweep):
    run_random_models(tmp_path, 1001, sweep(80), depthwise=False)


def test_depthwise_conv2d_random(tmp_path, sweep):
    run_random_models(tmp_path, 2002, sweep(56), depthwise=True)


def test_unfolded_zero_point_path(tmp_path, monkeypatch, sweep):
    """The kernels' (x - zp) path (used when the folded bias would not fit int32) is bit-exact too."""
    import specializer.pipeline as pl

    monkeypatch.setattr(pl, "fold_zero_points", lambda g: g)
    run_random_models(tmp_path / "c", 3003, sweep(8), depthwise=False)
    run_random_models(tmp_path / "d", 3004, sweep(8), depthwise=True)


@pytest.mark.parametrize("geom", [
    (1, 17, 1, 7, 1, 1, 1, 1, "VALID"),   # 1xN kernel
    (9, 1, 5, 1, 2, 1, 2, 1, "SAME"),     # Nx1 kernel, dilated
    (11, 10, 2, 2, 3, 3, 1, 1, "SAME"),   # stride > kernel
    (7, 8, 1, 1, 3, 2, 1, 1, "SAME"),     # 1x1, stride 3
    (5, 6, 7, 7, 1, 1, 1, 1, "SAME"),     # kernel larger than the input
    (9, 9, 3, 3, 1, 1, 3, 3, "SAME"),     # dilation 3: most taps in the padding
    (20, 24, 3, 3, 2, 2, 1, 1, "SAME"),   # larger spatial size, asymmetric SAME padding
])
def test_conv_edges(tmp_path, geom):
    rng = np.random.default_rng(hash(geom) % (1 << 32))
    mb = ModelBuilder()
    layers = [add_conv_layer(mb, rng, "c", False, force={"geom": geom}),
              add_conv_layer(mb, rng, "g", False, force={"geom": geom, "groups": 2}),
              add_conv_layer(mb, rng, "d", True, force={"geom": geom}),
              add_conv_layer(mb, rng, "m", True, force={"geom": geom, "mult": 3})]
    assert_bitexact(mb.build(), random_inputs(rng, [(s, zp) for s, zp, _ in layers]), tmp_path)


def _single_conv(x_dtype="int8", w_const=True, wzp=0, out_shape=(1, 4, 4, 3)):
    mb = ModelBuilder()
    q = dict(scale=0.1, zero_point=0) if x_dtype == "int8" else {}
    x = mb.input("x", (1, 4, 4, 2), dtype=x_dtype, **q)
    wdata = np.ones((3, 3, 3, 2), dtype=np.int8 if x_dtype == "int8" else np.float32)
    if w_const:
        w = mb.const("w", wdata, **(dict(scale=0.01, zero_point=wzp) if x_dtype == "int8" else {}))
    else:
        w = mb.input("w", (3, 3, 3, 2), scale=0.01, zero_point=0)
    y = mb.tensor("y", out_shape, dtype=x_dtype, **q)
    mb.op("CONV_2D", [x, w, None], [y], ops.Conv2D(padding="SAME"))
    mb.output(y)
    return mb.build()


@pytest.mark.parametrize("kw,match", [
    (dict(w_const=False), "constant weights"),
    (dict(wzp=3), "symmetric"),
    (dict(out_shape=(1, 3, 4, 3)), "does not match SAME"),
])
def test_illegal_conv_layers_are_rejected(tmp_path, kw, match):
    import specializer

    with pytest.raises(ShapeError, match=match):
        specializer.compile(_single_conv(**kw), name="bad", out_dir=tmp_path / "o")
    assert not (tmp_path / "o").exists()


def test_depthwise_multiplier_mismatch_is_rejected(tmp_path):
    import specializer

    mb = ModelBuilder()
    x = mb.input("x", (1, 4, 4, 2), scale=0.1, zero_point=0)
    w = mb.const("w", np.ones((1, 3, 3, 6), dtype=np.int8), scale=0.01)
    b = mb.const("b", np.zeros(6, dtype=np.int32), scale=0.001)
    y = mb.tensor("y", (1, 4, 4, 6), scale=0.1, zero_point=0)
    mb.op("DEPTHWISE_CONV_2D", [x, w, b], [y], ops.DepthwiseConv2D(padding="SAME", depth_multiplier=2))
    mb.output(y)
    with pytest.raises(ShapeError, match="depth_multiplier 2 disagrees"):
        specializer.compile(mb.build(), name="bad", out_dir=tmp_path / "o")


def test_float_conv_is_rejected(tmp_path):
    import specializer

    with pytest.raises(SpecializerError, match="int8"):
        specializer.compile(_single_conv(x_dtype="float32"), name="bad", out_dir=tmp_path / "o")


def test_layers_share_one_function(tmp_path):
    """Two conv layers with different shapes share the runtime-parametrized generic function."""
    import specializer

    rng = np.random.default_rng(5)
    mb = ModelBuilder()
    for i in range(3):
        add_conv_layer(mb, rng, str(i), False)
    res = specializer.compile(mb.build(), name="share", out_dir=tmp_path / "o")
    assert res.library.functions == 1 and res.library.shared == 2


@pytest.mark.slow
def test_conv_sweep_large(tmp_path, sweep):
    run_random_models(tmp_path / "c", 9001, sweep(400), depthwise=False)
    run_random_models(tmp_path / "d", 9002, sweep(400), depthwise=True)
