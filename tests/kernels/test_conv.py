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

ACTS = ("NONE", "RELU", "RELU6", "RELU_N1_TO_1")
CHANNELS = (1, 2, 3, 4, 5, 7, 8, 9, 12, 16)
PER_MODEL = 8


def _zp(rng):
    return int(rng.choice([-128, 127, -127, 126, 0])) if rng.random() < 0.5 else int(rng.integers(-128, 128))


def output_quant(rng, act):
    """(scale, zero point) of an output that the activation does not clamp to a single value."""
    if act == "RELU_N1_TO_1":
        return float(10 ** rng.uniform(-2.5, -1.5)), int(rng.integers(-60, 61))
    if act == "RELU6":
        return float(6 / 255 * 10 ** rng.uniform(-0.3, 0.3)), (-128 if rng.random() < 0.5 else int(rng.integers(-128, 40)))
    if act == "RELU":
        return float(10 ** rng.uniform(-3, 0)), (-128 if rng.random() < 0.5 else int(rng.integers(-128, 60)))
    return float(10 ** rng.uniform(-3, 0)), _zp(rng)


def _geometry(rng, k_max=7, in_max=14):
    """(in_h, in_w, k_h, k_w, s_h, s_w, d_h, d_w, padding) with a non-empty output."""
    padding = str(rng.choice(["SAME", "VALID"]))
    dims = []
    for _ in range(2):
        k = int(rng.integers(1, k_max + 1)) if rng.random() < 0.8 else 1
        s = int(rng.integers(1, 4))
        d = int(rng.integers(1, 4)) if (rng.random() < 0.3 and k > 1) else 1
        eff = (k - 1) * d + 1
        lo = eff if padding == "VALID" else 1
        n = int(rng.integers(lo, max(lo, in_max) + 1)) if rng.random() < 0.85 else lo
        dims.append((n, k, s, d))
    (ih, kh, sh, dh), (iw, kw, sw, dw) = dims
    return ih, iw, kh, kw, sh, sw, dh, dw, padding


def _weight_scales(rng, n, per_channel):
    if not per_channel:
        return np.asarray([10 ** rng.uniform(-4, -1)], dtype=np.float32)
    base = rng.uniform(-4, -1.5)
    return (10 ** (base + rng.uniform(0, 2.5, n))).astype(np.float32)  # spans up to 2.5 orders of magnitude


def add_conv_layer(mb: ModelBuilder, rng, tag: str, depthwise: bool, groups_ok: bool = True,
                   force: dict | None = None) -> tuple:
    """Add one random conv/depthwise layer with its own input and output; returns (input shape, zp, desc)."""
    f = force or {}
    ih, iw, kh, kw, sh, sw, dh, dw, padding = f.get("geom") or _geometry(rng)
    batches = 2 if rng.random() < 0.2 else 1
    act = str(rng.choice(ACTS))
    out_s, out_zp = output_quant(rng, act)
    in_zp = _zp(rng)
    per_channel = rng.random() < 0.7
    if depthwise:
        in_c = int(rng.choice(CHANNELS))
        mult = int(f.get("mult", rng.integers(1, 5)))
        out_c = in_c * mult
        wshape = (1, kh, kw, out_c)
        taps = kh * kw
    else:
        groups = int(rng.choice([2, 3])) if (groups_ok and rng.random() < 0.15) else 1
        groups = f.get("groups", groups)
        fc = int(rng.choice(CHANNELS))
        in_c = fc * groups
        out_c = int(rng.choice(CHANNELS)) * groups
        wshape = (out_c, kh, kw, fc)
        taps = kh * kw * fc
    ws = _weight_scales(rng, out_c, per_channel)
    wq = rng.integers(-127, 128, size=wshape).astype(np.int8)
    if rng.random() < 0.2:  # small weights: exercises the low bits of the accumulator
        wq = (wq // 16).astype(np.int8)
    # accumulator spread (in quantized units) for full-range inputs; the input scale maps it to ~40 output steps
    acc_std = 74.0 * max(float(wq.astype(np.float64).std()), 1.0) * np.sqrt(taps)
    in_s = float(out_s * 40.0 / (float(np.median(ws)) * acc_std) * 10 ** rng.uniform(-0.5, 0.5))
    x = mb.input(f"x{tag}", (batches, ih, iw, in_c), scale=in_s, zero_point=in_zp)
    w = mb.const(f"w{tag}", wq, scale=ws, axis=3 if depthwise else 0)
    use_bias = depthwise or rng.random() < 0.75  # a bias-less DEPTHWISE_CONV_2D crashes the TFLM interpreter
    b = None
    if use_bias:
        bs = (in_s * ws.astype(np.float64)).astype(np.float32)
        bq = rng.uniform(-2, 2, size=out_c) * acc_std if rng.random() < 0.8 else np.zeros(out_c)
        b = mb.const(f"b{tag}", bq.astype(np.int32), scale=np.broadcast_to(bs, (out_c,)), axis=0)
    oh = ops.conv_output_size(ih, kh, sh, dh, padding)
    ow = ops.conv_output_size(iw, kw, sw, dw, padding)
    y = mb.tensor(f"y{tag}", (batches, oh, ow, out_c), scale=out_s, zero_point=out_zp)
    if depthwise:
        attrs = ops.DepthwiseConv2D(padding=padding, stride_h=sh, stride_w=sw, dilation_h=dh, dilation_w=dw,
                                    depth_multiplier=mult, activation=act)
        mb.op("DEPTHWISE_CONV_2D", [x, w, b], [y], attrs)
    else:
        attrs = ops.Conv2D(padding=padding, stride_h=sh, stride_w=sw, dilation_h=dh, dilation_w=dw,
                           activation=act)
        mb.op("CONV_2D", [x, w, b], [y], attrs)
    mb.output(y)
    desc = (f"{'dw' if depthwise else 'conv'} in={batches}x{ih}x{iw}x{in_c} w={wshape} s={sh},{sw} d={dh},{dw} "
            f"{padding} {act} zp={in_zp}/{out_zp} pc={per_channel} bias={use_bias}")
    return (batches, ih, iw, in_c), in_zp, desc


def random_inputs(rng, shapes_zps, n_sets=2):
    """Full-range int8 inputs, then inputs in a narrow band around the zero point (no saturation)."""
    sets = []
    for k in range(n_sets):
        xs = []
        for shape, zp in shapes_zps:
            if k == 0:
                xs.append(rng.integers(-128, 128, size=shape).astype(np.int8))
            else:
                lo, hi = max(-128, zp - 20), min(127, zp + 20)
                xs.append(rng.integers(lo, hi + 1, size=shape).astype(np.int8))
        sets.append(xs)
    return sets


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
