"""int16x8 layers, second increment: CONV_2D, DEPTHWISE_CONV_2D, AVERAGE_POOL_2D, MAX_POOL_2D, MUL, LOGISTIC, TANH
and SOFTMAX with 16-bit activations, compared bit for bit with tflite-micro on the host (generic build and the
cortex-m4 build, ASan/UBSan).

Randomized single-layer models built with the project's TFLite writer, several layers per model (one input and
one output each): edge sizes, kernels 1..5, strides 1..3, dilations, SAME/VALID, channel counts that are not
multiples of 4, scales over orders of magnitude, extreme input values (the type's edges); `--sweep N` gives N
models per randomized test instead of the default. Plus the one-line errors for the forms that stay refused.
"""
from __future__ import annotations

import numpy as np
import pytest

import specializer
from specializer import ops
from specializer.errors import SpecializerError, UnsupportedTypeError
from specializer.tflite_writer import ModelBuilder
from spz_testutil import assert_bitexact
from test_int16x8 import TARGETS, _ints

ACTS = ("NONE", "NONE", "RELU", "RELU6", "RELU_N1_TO_1")


def _run(rng, layer, n, tmp_path, models=1):
    """`models` models of `n` random layers each (layer(mb, rng, i) -> (input shapes, description))."""
    for m in range(models):
        mb = ModelBuilder()
        shapes, descs = [], []
        for i in range(n):
            sh, d = layer(mb, rng, i)
            shapes += list(sh)
            descs.append(d)
        data = mb.build()
        ins = [[_ints(rng, sh, "int16", k) for sh in shapes] for k in range(2)]
        for target in TARGETS:
            assert_bitexact(data, ins, tmp_path / f"{m}{target}", target=target, layers=descs)


def _expect_refused(data, *needles, kind=SpecializerError):
    with pytest.raises(kind) as e:
        specializer.compile(data, out_dir=None)
    msg = str(e.value)
    assert all(n in msg for n in needles) and "\n" not in msg, msg


# ---- CONV_2D / DEPTHWISE_CONV_2D 16x8 ---------------------------------------------------------------------------
def _geometry(rng, depthwise=False):
    """(input HW, kernel HW, strides, dilations, padding) of a random layer whose output is not empty."""
    while True:
        kh, kw = int(rng.integers(1, 6)), int(rng.integers(1, 6))
        sh, sw = int(rng.integers(1, 4)), int(rng.integers(1, 4))
        dh, dw = (int(rng.integers(1, 3)), int(rng.integers(1, 3))) if rng.random() < 0.3 else (1, 1)
        if sh > 1 or sw > 1:  # TFLite converters never mix strides and dilations; TFLM runs both anyway
            dh, dw = (dh, dw) if rng.random() < 0.5 else (1, 1)
        h, w = int(rng.integers(1, 10)), int(rng.integers(1, 10))
        pad = str(rng.choice(["SAME", "VALID"]))
        if pad == "VALID" and ((kh - 1) * dh + 1 > h or (kw - 1) * dw + 1 > w):
            continue
        return (h, w), (kh, kw), (sh, sw), (dh, dw), pad


def _out_hw(hw, k, s, d, pad):
    from specializer.ops import conv_output_size
    return tuple(conv_output_size(hw[i], k[i], s[i], d[i], pad) for i in range(2))


def _conv_layer(mb, rng, i, bias=None, depthwise=False):
    (h, w), (kh, kw), (sh, sw), (dh, dw), pad = _geometry(rng)
    n = int(rng.integers(1, 3))
    if depthwise:
        cin = int(rng.choice([1, 2, 3, 5, 7, 9])) if rng.random() < 0.8 else int(rng.integers(1, 20))
        mult = int(rng.choice([1, 1, 2, 3]))
        cout, groups, fdepth = cin * mult, 1, 1
    else:
        groups = int(rng.choice([1, 1, 1, 2, 3]))
        fdepth = int(rng.choice([1, 2, 3, 5, 7])) if rng.random() < 0.8 else int(rng.integers(1, 24))
        cin = groups * fdepth
        cout = groups * (int(rng.choice([1, 2, 3, 5, 6, 9])) if rng.random() < 0.8 else int(rng.integers(1, 20)))
    taps = kh * kw * fdepth
    bias = bias if bias is not None else str(rng.choice(["int64", "int64", "int64", "int32", "none"]))
    if depthwise and bias == "int32":
        bias = "int64"
    wshape = (1, kh, kw, cout) if depthwise else (cout, kh, kw, fdepth)
    wq = rng.integers(-127, 128, wshape).astype(np.int8)
    if bias == "int32":  # keep TFLM's int32 sum far from overflowing (32768 * sum |w| < 2^30)
        limit = max(1, min(127, (1 << 15) // taps))
        wq = rng.integers(-limit, limit + 1, wshape).astype(np.int8)
    per_channel = rng.random() < 0.6
    base = rng.uniform(-4, -1)
    w_s = (10 ** rng.uniform(base - 0.7, base, cout)) if per_channel else float(10 ** base)
    s_in = float(10 ** rng.uniform(-5, -1))
    big_bias = rng.random() < 0.3
    acc_typical = 18000.0 * 60.0 * np.sqrt(taps) + (1 << 24 if big_bias else 1 << 12)
    s_out = float(s_in * float(np.max(w_s)) * acc_typical / 12000 * 10 ** rng.uniform(-1.2, 0.6))
    x = mb.input(f"x{i}", (n, h, w, cin), "int16", s_in, 0)
    wt = mb.const(f"w{i}", wq, scale=list(map(float, np.atleast_1d(w_s))) if per_channel else w_s,
                  zero_point=0, axis=3 if depthwise else 0)
    b = None
    if bias != "none":
        bscale = s_in * np.asarray(w_s, dtype=np.float64)
        lim = 1 << 24 if big_bias and bias == "int64" else 1 << 12
        b = mb.const(f"b{i}", rng.integers(-lim, lim, cout).astype(bias),
                     scale=list(map(float, np.atleast_1d(bscale))) if per_channel else float(bscale), zero_point=0)
    oh, ow = _out_hw((h, w), (kh, kw), (sh, sw), (dh, dw), pad)
    y = mb.tensor(f"y{i}", (n, oh, ow, cout), "int16", s_out, 0)
    act = str(rng.choice(ACTS))
    if depthwise:
        attrs = ops.DepthwiseConv2D(padding=pad, stride_h=sh, stride_w=sw, dilation_h=dh, dilation_w=dw,
                                    depth_multiplier=cout // cin, activation=act)
        kind = "DEPTHWISE_CONV_2D"
    else:
        attrs = ops.Conv2D(padding=pad, stride_h=sh, stride_w=sw, dilation_h=dh, dilation_w=dw, activation=act)
        kind = "CONV_2D"
    mb.op(kind, [x, wt] + ([b] if b is not None else []), [y], attrs)
    mb.output(y)
    return [(n, h, w, cin)], (f"{kind}{i} {(n, h, w, cin)} k={kh}x{kw} s={sh}x{sw} d={dh}x{dw} {pad} "
                              f"groups={groups} cout={cout} pc={per_channel} bias={bias} act={act}")


@pytest.mark.parametrize("seed", range(3))
def test_conv_16x8_random(seed, sweep, tmp_path):
    rng = np.random.default_rng(26000 + seed)
    _run(rng, _conv_layer, 6, tmp_path, models=sweep(1))


def test_conv_16x8_int32_bias_and_no_bias(sweep, tmp_path):
    """int32 bias (TFLM's int32 sum, 32-bit rescale) and no bias (the int64 path) on every layer."""
    rng = np.random.default_rng(26100)
    _run(rng, lambda mb, r, i: _conv_layer(mb, r, i, bias=("int32", "none")[i % 2]), 6, tmp_path,
         models=sweep(1))


@pytest.mark.parametrize("seed", range(2))
def test_depthwise_16x8_random(seed, sweep, tmp_path):
    rng = np.random.default_rng(26200 + seed)
    _run(rng, lambda mb, r, i: _conv_layer(mb, r, i, depthwise=True), 6, tmp_path, models=sweep(1))


def test_conv_16x8_extremes(tmp_path):
    """All-extreme inputs and weights, deep filters, int64 bias near 2^40: the int64 sum (an int32 one would
    wrap) and the 16-bit rounded multiplier, per-tensor and per-channel."""
    mb = ModelBuilder()
    shapes = []
    for i, (cin, k, dw) in enumerate(((64, 5, False), (300, 3, False), (7, 5, True))):
        cout = cin if dw else 3
        w = np.full((1, k, k, cout) if dw else (cout, k, k, cin), 127, np.int8)
        w[..., ::2] = -127 if dw else 127
        if not dw:
            w[1] = -127
        x = mb.input(f"x{i}", (1, k + 1, k + 1, cin), "int16", 1e-4, 0)
        wt = mb.const(f"w{i}", w, scale=[1e-3] * cout, zero_point=0, axis=3 if dw else 0)
        b = mb.const(f"b{i}", np.array([(1 << 40) if c % 3 == 0 else -(1 << 20) for c in range(cout)], np.int64),
                     scale=[1e-7] * cout, zero_point=0)
        taps = k * k * (1 if dw else cin)
        y = mb.tensor(f"y{i}", (1, k + 1, k + 1, cout), "int16", 1e-7 * 32768 * 127 * taps / 20000, 0)
        attrs = ops.DepthwiseConv2D(padding="SAME") if dw else ops.Conv2D(padding="SAME")
        mb.op("DEPTHWISE_CONV_2D" if dw else "CONV_2D", [x, wt, b], [y], attrs)
        mb.output(y)
        shapes.append((1, k + 1, k + 1, cin))
    data = mb.build()
    ins = [[np.full(sh, v, np.int16) for sh in shapes] for v in (32767, -32768)]
    for target in TARGETS:
        assert_bitexact(data, ins, tmp_path / str(target), target=target)


def _conv16(kind="CONV_2D", out="int16", bias="int64", w_dtype="int8", w_zp=0, zp_in=0, zp_out=0, depth=4,
            k=3, w_val=1, b_val=1):
    mb = ModelBuilder()
    x = mb.input("x", (1, 5, 5, depth), "int16", 0.01, zp_in)
    dw = kind == "DEPTHWISE_CONV_2D"
    w = mb.const("w", np.full((1, k, k, depth) if dw else (4, k, k, depth), w_val, w_dtype), scale=0.01,
                 zero_point=w_zp)
    cout = depth if dw else 4
    b = mb.const("b", np.full(cout, b_val, bias), scale=1e-4, zero_point=0) if bias else None
    y = mb.tensor("y", (1, 5, 5, cout), out, 0.05, zp_out)
    attrs = ops.DepthwiseConv2D(padding="SAME") if dw else ops.Conv2D(padding="SAME")
    mb.op(kind, [x, w] + ([b] if b is not None else []), [y], attrs)
    mb.output(y)
    return mb.build()


@pytest.mark.parametrize("kind", ["CONV_2D", "DEPTHWISE_CONV_2D"])
@pytest.mark.parametrize("kw, why", [
    (dict(out="int8"), "needs int16 input/output, got int16/int8"),  # TFLM: input->type != output->type
    (dict(bias="int16"), "bias"),
    (dict(w_dtype="int16"), "int8 weights"),
    (dict(w_zp=3), "symmetric int8 weights"),
    (dict(zp_in=5), "zero points 0"),
    (dict(zp_out=-7), "zero points 0"),
])
def test_conv_16x8_refused(kind, kw, why):
    _expect_refused(_conv16(kind, **kw), kind, why)


def test_conv_16x8_refused_specific():
    """Depthwise with an int32 bias (TFLM reads it as int64: no reference), an int32-bias conv whose int32 sum
    could overflow, an int64 bias whose sum could leave the 64-bit rescale's domain (2^47)."""
    _expect_refused(_conv16("DEPTHWISE_CONV_2D", bias="int32"), "DEPTHWISE_CONV_2D", "needs an int64 bias")
    _expect_refused(_conv16("CONV_2D", bias="int32", depth=200, k=3, w_val=127), "CONV_2D", "could overflow int32")
    for kind in ("CONV_2D", "DEPTHWISE_CONV_2D"):  # outside the 64-bit MultiplyByQuantizedMultiplier's domain
        _expect_refused(_conv16(kind, b_val=1 << 50), kind, "could reach 2^47")


def test_conv_16x8_int16_filter_input_refused():
    """int16 only as the input and output activations (a variable int16 filter is refused at import)."""
    mb = ModelBuilder()
    x = mb.input("x", (1, 3, 3, 2), "int16", 0.01, 0)
    w = mb.input("w", (2, 1, 1, 2), "int16", 0.01, 0)
    y = mb.tensor("y", (1, 3, 3, 2), "int16", 0.05, 0)
    mb.op("CONV_2D", [x, w], [y], ops.Conv2D(padding="SAME"))
    mb.output(y)
    _expect_refused(mb.build(), "CONV_2D", "input 1", "takes int16 only as input 0 and output 0",
                    kind=UnsupportedTypeError)


# ---- AVERAGE_POOL_2D / MAX_POOL_2D int16 ------------------------------------------------------------------------
def _pool_layer(mb, rng, i, kind=None):
    kind = kind or str(rng.choice(["AVERAGE_POOL_2D", "MAX_POOL_2D"]))
    while True:
        fh, fw = int(rng.integers(1, 6)), int(rng.integers(1, 6))
        sh, sw = int(rng.integers(1, 4)), int(rng.integers(1, 4))
        h, w = int(rng.integers(1, 10)), int(rng.integers(1, 10))
        pad = str(rng.choice(["SAME", "VALID"]))
        if pad == "VALID" and (fh > h or fw > w):
            continue
        if pad == "SAME" and (fh > h + sh or fw > w + sw):  # avoid windows wholly in the padding (refused)
            continue
        break
    n, c = int(rng.integers(1, 3)), int(rng.choice([1, 2, 3, 5, 7, 13]))
    s = float(10 ** rng.uniform(-5, 0))
    zp = 0 if rng.random() < 0.6 else int(rng.integers(-2000, 2000))
    oh, ow = _out_hw((h, w), (fh, fw), (sh, sw), (1, 1), pad)
    x = mb.input(f"x{i}", (n, h, w, c), "int16", s, zp)
    y = mb.tensor(f"y{i}", (n, oh, ow, c), "int16", s, zp)
    act = str(rng.choice(ACTS))
    mb.op(kind, [x], [y], ops.Pool2D(padding=pad, stride_h=sh, stride_w=sw, filter_h=fh, filter_w=fw,
                                      activation=act))
    mb.output(y)
    return [(n, h, w, c)], f"{kind}{i} {(n, h, w, c)} f={fh}x{fw} s={sh}x{sw} {pad} zp={zp} act={act}"


@pytest.mark.parametrize("seed", range(2))
def test_pool_int16_random(seed, sweep, tmp_path):
    rng = np.random.default_rng(26300 + seed)
    _run(rng, _pool_layer, 8, tmp_path, models=sweep(1))


@pytest.mark.parametrize("kind", ["AVERAGE_POOL_2D", "MAX_POOL_2D"])
@pytest.mark.parametrize("case, why", [
    ("out8", "needs int16 input/output, got int16/int8"),  # TFLM accepts it and writes garbage
    ("requant", "same quantization"),  # TFLM's prepare fails
])
def test_pool_int16_refused(kind, case, why):
    mb = ModelBuilder()
    x = mb.input("x", (1, 4, 4, 2), "int16", 0.01, 0)
    y = mb.tensor("y", (1, 2, 2, 2), "int8" if case == "out8" else "int16", 0.02 if case == "requant" else 0.01, 0)
    mb.op(kind, [x], [y], ops.Pool2D(padding="VALID", stride_h=2, stride_w=2, filter_h=2, filter_w=2))
    mb.output(y)
    _expect_refused(mb.build(), kind, why)


# ---- MUL int16 --------------------------------------------------------------------------------------------------
def _mul_layer(mb, rng, i):
    from spz_testutil import broadcast_shapes
    sa, sb = broadcast_shapes(rng, max_rank=5)
    out = tuple(np.broadcast_shapes(sa, sb))
    s1 = float(10 ** rng.uniform(-5, 0))
    s2 = float(10 ** rng.uniform(-5, 0))
    # the product of two int16 values spans 2^30 s1 s2: outputs from saturated to fine (multiplier < 1)
    s_out = float(s1 * s2 * 10 ** rng.uniform(3.0, 5.5))
    a = mb.input(f"a{i}", sa, "int16", s1, 0)
    b = mb.input(f"b{i}", sb, "int16", s2, 0)
    y = mb.tensor(f"y{i}", out, "int16", s_out, 0)
    act = str(rng.choice(ACTS))
    mb.op("MUL", [a, b], [y], ops.Elementwise(activation=act))
    mb.output(y)
    return [sa, sb], f"MUL{i} {sa} {sb} -> {out} s={s1:.3g}/{s2:.3g}/{s_out:.3g} act={act}"


@pytest.mark.parametrize("seed", range(2))
def test_mul_int16_random(seed, sweep, tmp_path):
    rng = np.random.default_rng(26400 + seed)
    _run(rng, _mul_layer, 8, tmp_path, models=sweep(1))


@pytest.mark.parametrize("case, why", [
    ("zp", "zero points 0"),
    ("mixed", "needs int16 tensors, got int16/int8/int16"),
    ("big", "1 or more"),
])
def test_mul_int16_refused(case, why):
    mb = ModelBuilder()
    a = mb.input("a", (2, 4), "int16", 0.5, 3 if case == "zp" else 0)
    b = mb.input("b", (2, 4), "int8" if case == "mixed" else "int16", 0.5, 0)
    y = mb.tensor("y", (2, 4), "int16", 0.1 if case == "big" else 0.5 * 0.5 * 1000, 0)
    mb.op("MUL", [a, b], [y], ops.Elementwise())
    mb.output(y)
    _expect_refused(mb.build(), "MUL", why)


# ---- LOGISTIC / TANH int16 --------------------------------------------------------------------------------------
def _sig_scales(kind):
    """Input scales: the power-of-two forms TFLM special-cases (2^-12; TANH also 2^-11; one within CheckedLog2's
    1e-3 tolerance), other powers of two, and general scales over orders of magnitude up to the largest taken."""
    pot = [2.0 ** -12, 2.0 ** -12 * 1.0004] + ([2.0 ** -11, 2.0 ** -11 * 0.9996] if kind == "TANH" else [])
    return pot + [2.0 ** -15, 2.0 ** -9, 2.0 ** -3, 1e-6, 3.3e-5, 1.7e-4, 7.1e-3, 0.09, 1.2, 2.6]


@pytest.mark.parametrize("kind", ["LOGISTIC", "TANH"])
def test_logistic_tanh_int16(kind, tmp_path):
    rng = np.random.default_rng(26500 + len(kind))
    mb = ModelBuilder()
    shapes, descs = [], []
    for i, s in enumerate(_sig_scales(kind)):
        shape = (65536,) if i < 2 else tuple(int(v) for v in rng.integers(1, 7, int(rng.integers(1, 5))))
        x = mb.input(f"x{i}", shape, "int16", s, 0)
        y = mb.tensor(f"y{i}", shape, "int16", 1.0 / 32768, 0)
        mb.op(kind, [x], [y])
        mb.output(y)
        shapes.append(shape)
        descs.append(f"{kind}{i} {shape} s={s:.6g}")
    data = mb.build()
    full = np.arange(-32768, 32768, dtype=np.int64).astype(np.int16)
    ins = [[full if sh == (65536,) else _ints(rng, sh, "int16", k) for sh in shapes] for k in range(2)]
    for target in TARGETS:
        assert_bitexact(data, ins, tmp_path / str(target), target=target, layers=descs)


def test_logistic_tanh_int16_all_inputs_twin():
    """The Python twin with the measured table equals TFLM on every int16 input, for several scale forms."""
    from specializer.kernels.activations_s16 import measured_sigmoid_table, sigmoid_table, sigmoid_tanh_params, twin

    from specializer.oracle import run_tflm

    assert measured_sigmoid_table() == sigmoid_table()
    full = np.arange(-32768, 32768, dtype=np.int64).astype(np.int16)
    for kind in ("LOGISTIC", "TANH"):
        for s in _sig_scales(kind)[::2]:
            mb = ModelBuilder()
            x = mb.input("x", (65536,), "int16", s, 0)
            y = mb.tensor("y", (65536,), "int16", 1.0 / 32768, 0)
            mb.op(kind, [x], [y])
            mb.output(y)
            ref = run_tflm(mb.build(), [full])[0]
            got = twin(kind, full, *sigmoid_tanh_params(kind, s), sigmoid_table())
            assert np.array_equal(ref, got), (kind, s)


@pytest.mark.parametrize("kind", ["LOGISTIC", "TANH"])
@pytest.mark.parametrize("case, why", [
    ("zp_in", "zero points 0"),
    ("zp_out", "zero points 0"),
    ("out_scale", "output scale 2^-15"),
    ("in_scale", "too large"),
    ("out8", "needs int16 input and output, got int16/int8"),
])
def test_logistic_tanh_int16_refused(kind, case, why):
    mb = ModelBuilder()
    x = mb.input("x", (2, 4), "int16", 3.0 if case == "in_scale" else 2.0 ** -12, 5 if case == "zp_in" else 0)
    y = mb.tensor("y", (2, 4), "int8" if case == "out8" else "int16", 1.0 / 16384 if case == "out_scale" else
                  1.0 / 32768, 3 if case == "zp_out" else 0)
    mb.op(kind, [x], [y])
    mb.output(y)
    _expect_refused(mb.build(), kind, why)


# ---- SOFTMAX int16 ----------------------------------------------------------------------------------------------
def _softmax_layer(mb, rng, i):
    rank = int(rng.integers(1, 5))
    shape = tuple(int(v) for v in rng.integers(1, 6, rank - 1)) + (int(rng.choice([1, 2, 3, 7, 10, 33, 100])),)
    s = float(10 ** rng.uniform(-6, -1.5))  # s * beta up to ~2^15 * 10 / 65535 (the largest taken)
    beta = float(rng.choice([1.0, 1.0, 0.5, 2.0, float(10 ** rng.uniform(-1, 1))]))
    x = mb.input(f"x{i}", shape, "int16", s, 0)
    y = mb.tensor(f"y{i}", shape, "int16", 1.0 / 32768, 0)
    mb.op("SOFTMAX", [x], [y], ops.Softmax(beta=beta))
    mb.output(y)
    return [shape], f"SOFTMAX{i} {shape} s={s:.3g} beta={beta:.3g}"


@pytest.mark.parametrize("seed", range(2))
def test_softmax_int16_random(seed, sweep, tmp_path):
    rng = np.random.default_rng(26600 + seed)
    _run(rng, _softmax_layer, 8, tmp_path, models=sweep(1))


def test_softmax_int16_narrow_inputs(tmp_path):
    """Inputs close together (every exp matters, sums of many similar values) and the scale range's ends."""
    rng = np.random.default_rng(26650)
    mb = ModelBuilder()
    specs = [((4, 50), 1e-4, 1.0), ((3, 400), 3e-4, 1.0), ((2, 7), 4.9e-3, 1.0), ((5, 16), 1e-7, 1.0),
             ((2, 9), 2.5e-3, 2.0)]
    for i, (shape, s, beta) in enumerate(specs):
        x = mb.input(f"x{i}", shape, "int16", s, 0)
        y = mb.tensor(f"y{i}", shape, "int16", 1.0 / 32768 * 1.0005, 0)
        mb.op("SOFTMAX", [x], [y], ops.Softmax(beta=beta))
        mb.output(y)
    data = mb.build()
    ins = [[rng.integers(-w, w + 1, sh).astype(np.int16) for sh, _, _ in specs] for w in (30, 3000, 32767)]
    for target in TARGETS:
        assert_bitexact(data, ins, tmp_path / str(target), target=target)


def test_softmax_int16_tables_robust():
    """The exp table does not depend on how float32 exp rounds: libm's expf gives the same table."""
    import ctypes
    import ctypes.util
    from specializer.kernels.softmax_s16 import softmax_s16_tables
    name = ctypes.util.find_library("m")
    if name is None:
        pytest.skip("no libm")
    libm = ctypes.CDLL(name)
    libm.expf.restype, libm.expf.argtypes = ctypes.c_float, [ctypes.c_float]
    ref = softmax_s16_tables()
    alt = softmax_s16_tables(lambda x: np.float32(libm.expf(float(x))))
    assert ref == alt and len(ref[0]) == len(ref[1]) == 513


@pytest.mark.parametrize("case, why", [
    ("in_zp", "input zero point 0"),
    ("out_scale", "output scale 1/32768"),
    ("out_zp", "output scale 1/32768 and zero point 0"),
    ("out8", "needs int16 input/output, got int16/int8"),
    ("in_scale", "too large"),
])
def test_softmax_int16_refused(case, why):
    mb = ModelBuilder()
    x = mb.input("x", (2, 10), "int16", 10.0 if case == "in_scale" else 1e-3, 7 if case == "in_zp" else 0)
    y = mb.tensor("y", (2, 10), "int8" if case == "out8" else "int16",
                  1.0 / 16384 if case == "out_scale" else 1.0 / 32768, 5 if case == "out_zp" else 0)
    mb.op("SOFTMAX", [x], [y], ops.Softmax(beta=1.0))
    mb.output(y)
    _expect_refused(mb.build(), "SOFTMAX", why)


# ---- row bands (passes/fuse_bands) over int16 layers -----------------------------------------------------------
def test_int16_conv_chains_in_row_bands(tmp_path):
    """A 16x8 CONV_2D feeding a depthwise, a pool or another conv: the default build runs each pair in row bands
    (BANDED_PAIR, the sub-layers on the s16 kernels) and stays bit-exact."""
    rng = np.random.default_rng(26700)
    mb = ModelBuilder()
    for i, second in enumerate(("DEPTHWISE_CONV_2D", "MAX_POOL_2D", "AVERAGE_POOL_2D", "CONV_2D")):
        x = mb.input(f"x{i}", (1, 16, 12, 3), "int16", 1e-3, 0)
        w = mb.const(f"w{i}", rng.integers(-127, 128, (5, 3, 3, 3)).astype(np.int8), scale=[0.01] * 5, zero_point=0)
        b = mb.const(f"b{i}", rng.integers(-1000, 1000, 5).astype(np.int64), scale=[1e-5] * 5, zero_point=0)
        m = mb.tensor(f"m{i}", (1, 16, 12, 5), "int16", 0.05, 0)
        mb.op("CONV_2D", [x, w, b], [m], ops.Conv2D(padding="SAME", activation="RELU"))
        if second in ("DEPTHWISE_CONV_2D", "CONV_2D"):
            cout = 5 if second == "DEPTHWISE_CONV_2D" else 4
            w2 = mb.const(f"v{i}", rng.integers(-127, 128, (1, 3, 3, 5) if cout == 5 else (4, 3, 3, 5)).astype(np.int8),
                          scale=[0.01] * cout, zero_point=0, axis=3 if cout == 5 else 0)
            y = mb.tensor(f"y{i}", (1, 8, 6, cout), "int16", 0.5, 0)
            attrs = (ops.DepthwiseConv2D(padding="SAME", stride_h=2, stride_w=2) if cout == 5 else
                     ops.Conv2D(padding="SAME", stride_h=2, stride_w=2))
            mb.op(second, [m, w2], [y], attrs)
        else:
            y = mb.tensor(f"y{i}", (1, 8, 6, 5), "int16", 0.05, 0)
            mb.op(second, [m], [y], ops.Pool2D(padding="SAME", stride_h=2, stride_w=2, filter_h=3, filter_w=3))
        mb.output(y)
    data = mb.build()
    res = specializer.compile(data, out_dir=tmp_path / "c")
    assert [op.kind for op in res.graph.ops].count("BANDED_PAIR") >= 1
    ins = [[_ints(rng, (1, 16, 12, 3), "int16", k) for _ in range(4)] for k in range(2)]
    for target in TARGETS:
        assert_bitexact(data, ins, tmp_path / str(target), target=target)
