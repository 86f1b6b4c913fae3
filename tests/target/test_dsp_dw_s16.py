"""The int16x8 DSP depthwise kernel (depthwise_conv2d_s16_dsp: channel pairs, SMLABB/SMLATT into 32-bit sums where
an offline bound allows, else 64-bit) checked bit for bit with tflite-micro: on the host cortex-m4 build (portable
intrinsic twins, ASan/UBSan) and cross-compiled in the simulated Cortex-M4, asserting that the DSP entry ran.

Randomized 16x8 depthwise layers, several per model: kernels 1..5 (1xN, Nx1), strides 1..3, dilations 1..3,
SAME/VALID, odd and even channel counts, batches, per-tensor and per-channel scales, every fused activation, int64
or no bias; extremes: all-extreme weights and inputs, biases near the generic kernel's 2^47 limit, left-shifting
requantization (the "c" form), 5x5 SAME layers with more border classes than unrolled functions (the border
function), and kernels of 520+ taps whose sums need the 64-bit accumulators. Plus the entry refusals (int8 vs
int16, depth multiplier > 1) and a -Wall -Wextra -Werror compile of the generated C (host gcc, arm-none-eabi-gcc).
"""
from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "kernels"))

import specializer  # noqa: E402
from specializer import ops, zoo  # noqa: E402
from specializer.oracle import compare  # noqa: E402
from specializer.tflite_writer import ModelBuilder  # noqa: E402
from spz_randlayers import sim_mismatches  # noqa: E402
from test_int16x8 import _ints  # noqa: E402

HAVE_GCC = shutil.which("arm-none-eabi-gcc") is not None
ENTRY = "depthwise_conv2d_s16_dsp"
ACTS = ("NONE", "NONE", "RELU", "RELU6", "RELU_N1_TO_1")


def _geometry(rng):
    """(input HW, kernel HW, strides, dilations, padding) with a non-empty output."""
    while True:
        shape = rng.choice(["any", "any", "1xN", "Nx1", "1x1"])
        kh, kw = int(rng.integers(1, 6)), int(rng.integers(1, 6))
        if shape == "1xN":
            kh = 1
        elif shape == "Nx1":
            kw = 1
        elif shape == "1x1":
            kh = kw = 1
        sh, sw = int(rng.integers(1, 4)), int(rng.integers(1, 4))
        dh, dw = (int(rng.integers(1, 4)), int(rng.integers(1, 4))) if rng.random() < 0.3 else (1, 1)
        h, w = int(rng.integers(1, 11)), int(rng.integers(1, 11))
        pad = str(rng.choice(["SAME", "VALID"]))
        if pad == "VALID" and ((kh - 1) * dh + 1 > h or (kw - 1) * dw + 1 > w):
            continue
        return (h, w), (kh, kw), (sh, sw), (dh, dw), pad


def _add_dw(mb, i, x_shape, wq, bias, geo, act="NONE", per_channel=True, s_in=1e-3, gain=1.0, mult=None):
    """One DEPTHWISE_CONV_2D (multiplier 1) with its own input and output; `gain` scales the output's range;
    `mult`: the per-channel real multipliers (input x weight scale / output scale) instead."""
    (kh, kw), (sh, sw), (dh, dw), pad = geo
    n, h, w, c = x_shape
    taps = kh * kw
    w_s = (10 ** np.linspace(-2.8, -2.2, c)) if per_channel else 10 ** -2.5
    # a full-range input's typical |sum| (18900 x rms weight x sqrt(taps)) maps to ~12000 output steps x gain
    acc_typical = 18900.0 * max(float(np.sqrt(np.mean(wq.astype(np.float64) ** 2))), 1.0) * np.sqrt(taps)
    s_out = float(s_in * float(np.median(w_s)) * acc_typical / (12000 * gain))
    if mult is not None:
        s_out = 1e-3
        w_s = np.asarray(mult, dtype=np.float64) * s_out / s_in
    x = mb.input(f"x{i}", x_shape, "int16", s_in, 0)
    wt = mb.const(f"w{i}", wq.reshape(1, kh, kw, c), scale=list(map(float, np.atleast_1d(w_s))) if per_channel
                  else float(w_s), zero_point=0, axis=3)
    inputs = [x, wt]
    if bias is not None:
        bscale = s_in * np.asarray(w_s, dtype=np.float64)
        inputs.append(mb.const(f"b{i}", np.asarray(bias, np.int64),
                               scale=list(map(float, np.broadcast_to(bscale, (c,)))) if per_channel else float(bscale),
                               zero_point=0))
    oh = ops.conv_output_size(h, kh, sh, dh, pad)
    ow = ops.conv_output_size(w, kw, sw, dw, pad)
    y = mb.tensor(f"y{i}", (n, oh, ow, c), "int16", s_out, 0)
    mb.op("DEPTHWISE_CONV_2D", inputs, [y], ops.DepthwiseConv2D(padding=pad, stride_h=sh, stride_w=sw, dilation_h=dh,
                                                                dilation_w=dw, depth_multiplier=1, activation=act))
    mb.output(y)
    return x_shape, (f"dw{i} {x_shape} k={kh}x{kw} s={sh}x{sw} d={dh}x{dw} {pad} pc={per_channel} "
                     f"bias={'none' if bias is None else 'int64'} act={act}")


def _random_layer(mb, rng, i):
    (h, w), k, s, d, pad = _geometry(rng)
    c = int(rng.choice([1, 2, 3, 4, 5, 7, 8, 9, 16])) if rng.random() < 0.85 else int(rng.integers(10, 40))
    n = 2 if rng.random() < 0.2 else 1
    wq = rng.integers(-127, 128, (k[0] * k[1], c))
    if rng.random() < 0.2:
        wq = np.where(rng.random(wq.shape) < 0.5, 127, -127)
    elif rng.random() < 0.2:
        wq //= 16
    acc = 18900.0 * max(float(np.sqrt(np.mean(wq.astype(np.float64) ** 2))), 1.0) * np.sqrt(k[0] * k[1])
    bias = (rng.uniform(-2, 2, c) * acc).astype(np.int64) if rng.random() < 0.85 else None
    if bias is not None and rng.random() < 0.2:  # a few channels with biases near 2^40 (saturated outputs)
        bias = np.where(rng.random(c) < 0.3, rng.choice([-1, 1], c) * (1 << 40), bias)
    return _add_dw(mb, i, (n, h, w, c), wq.astype(np.int8), bias, (k, s, d, pad), act=str(rng.choice(ACTS)),
                   per_channel=rng.random() < 0.7, s_in=float(10 ** rng.uniform(-5, -1)),
                   gain=float(10 ** rng.uniform(-1.2, 0.6)))


def _random_model(rng, n):
    mb = ModelBuilder()
    shapes, descs = [], []
    for i in range(n):
        sh, d = _random_layer(mb, rng, i)
        shapes.append(sh)
        descs.append(d)
    return mb.build(), shapes, descs


def _extremes_model():
    """All-extreme weights, biases at the generic kernel's limit (32768 sum|w| + |bias| just below 2^47), odd and
    even channels; a left-shifting requantization ("c" form); 5x5 SAME (25 border classes: the border function,
    odd channels); kernels of 529 and 520 taps (|sum| up to 2^31.05: 64-bit accumulators); input offsets beyond
    4 KB."""
    mb = ModelBuilder()
    shapes = []
    rng = np.random.default_rng(51000)

    def full(taps, c):
        w = np.full((taps, c), 127, np.int64)
        w[:, 1::3] = -127
        w[::2, 2::3] = -127
        return w.astype(np.int8)

    layers = []
    for c, k, pad in ((6, 3, "SAME"), (7, 3, "VALID"), (2, 5, "SAME")):
        w = full(k * k, c)
        room = (1 << 47) - 1 - 32768 * np.abs(w.astype(np.int64)).sum(axis=0)
        bias = rng.integers(-1 << 20, 1 << 20, c)
        bias[0], bias[-1] = room[0], -room[-1]  # at the limit: saturated outputs
        layers.append(((1, k + 2, k + 3, c), w, bias, ((k, k), (1, 1), (1, 1), pad), dict(gain=0.3)))
    # left shift: input x weight scale / output scale > 1
    w = np.zeros((9, 5), np.int8)
    w[4] = [1, -1, 1, -1, 1]
    w[0] = [0, 1, 0, 0, -1]
    layers.append(((1, 4, 5, 5), w, np.array([5, -7, 100, 0, 3]), ((3, 3), (1, 1), (1, 1), "SAME"),
                   dict(per_channel=False, s_in=1e-2, gain=7.0)))
    # per-channel multipliers 0.6..1.8 (some left shifts: the "c" form with per-channel constants) and 0.5..0.95
    # (m' = m16 << 17 >= 2^31: "hi" without the signed SMLAL)
    for lo, hi in ((0.6, 1.8), (0.5, 0.95)):
        w = np.where(rng.random((9, 6)) < 0.8, 0, rng.choice([-1, 1], (9, 6))).astype(np.int8)
        layers.append(((1, 5, 4, 6), w, rng.integers(-3000, 3000, 6), ((3, 3), (1, 1), (1, 1), "SAME"),
                       dict(mult=np.linspace(lo, hi, 6))))
    # multipliers ~2^-20 (right shifts beyond 32: e > 0 per channel), outputs from biases near 2^34, ReLU (USAT)
    w = rng.integers(-127, 128, (4, 5)).astype(np.int8)
    layers.append(((1, 6, 6, 5), w, rng.integers(-1 << 34, 1 << 34, 5), ((2, 2), (2, 1), (1, 1), "SAME"),
                   dict(mult=2.0 ** -20 * np.linspace(1, 3, 5), act="RELU")))
    # 5x5 SAME, stride 1, 7x6 input: 25 windows > MAX_CLASSES: interior unrolled, the rest the border function
    w = rng.integers(-127, 128, (25, 9)).astype(np.int8)
    layers.append(((2, 7, 6, 9), w, rng.integers(-1 << 20, 1 << 20, 9), ((5, 5), (1, 1), (1, 1), "SAME"), {}))
    # 23x23 taps (64-bit sums), SAME on 13x12 (no interior: all pixels in the border function), 2 channels
    layers.append(((1, 13, 12, 2), full(529, 2), np.array([12345, -(1 << 30)]),
                   ((23, 23), (1, 1), (1, 1), "SAME"), dict(gain=0.05)))
    # 3x3 dilated 3x1 on a wide, deep input: input offsets beyond an LDR's 4095 bytes
    w = rng.integers(-127, 128, (9, 40)).astype(np.int8)
    layers.append(((1, 8, 30, 40), w, rng.integers(-1 << 24, 1 << 24, 40), ((3, 3), (1, 2), (3, 1), "SAME"), {}))
    # 1x520 VALID, 1 channel (64-bit sum, the odd-channel code), weights -128, stride 2
    layers.append(((1, 1, 530, 1), np.full((520, 1), -128, np.int8), None, ((1, 520), (2, 2), (1, 1), "VALID"),
                   dict(gain=0.05)))
    for i, (shape, w, bias, geo, kw) in enumerate(layers):
        sh, _ = _add_dw(mb, i, shape, w, bias, geo, **kw)
        shapes.append(sh)
    return mb.build(), shapes


def _inputs(rng, shapes, n=2):
    return [[_ints(rng, sh, "int16", k) for sh in shapes] for k in range(n)]


def _extreme_inputs(rng, shapes):
    return [[np.full(sh, v, np.int16) for sh in shapes] for v in (32767, -32768)] + _inputs(rng, shapes, 1)


def _check_entries(graph):
    """Every depthwise layer (all multiplier 1, int64 or no bias) ran the DSP entry; returns how many."""
    n = 0
    for op in graph.ops:
        if op.kind == "DEPTHWISE_CONV_2D":
            assert op.kernel.entry == ENTRY, op.kernel.entry
            n += 1
    return n


def _args(graph):
    from specializer.targets.cortex_m.kernels import s16
    return [s16.dw_template_args(graph, op) for op in graph.ops if op.kind == "DEPTHWISE_CONV_2D"]


@pytest.mark.parametrize("seed", range(5))
def test_dw_s16_host(seed, tmp_path):
    """Host cortex-m4 build (portable SMLABB/SMLATT twins, ASan/UBSan) against tflite-micro."""
    rng = np.random.default_rng(52000 + seed)
    model, shapes, descs = _random_model(rng, 8)
    res = specializer.compile(model, out_dir=None, target="cortex-m4")
    assert _check_entries(res.graph) == 8
    bad = compare(model, _inputs(rng, shapes), tmp_path / "h", target="cortex-m4")
    assert not bad, "; ".join(f"{b} [{descs[b.output]}]" for b in bad[:5])


def test_dw_s16_host_extremes(tmp_path):
    model, shapes = _extremes_model()
    res = specializer.compile(model, out_dir=None, target="cortex-m4")
    assert _check_entries(res.graph) == len(shapes)
    args = _args(res.graph)
    assert [a["ACC64"] for a in args] == [False] * 8 + [True, False, True]
    assert [a["RQ"] for a in args[3:6]] == ["c", "c", "hi"] and all(a["RQ"] == "hi" for a in args[:3])
    assert args[4]["UNIFORM"] is None and args[5]["UNIFORM"] is None and not args[5]["MS"]
    assert not args[6]["E0"] and args[6]["UNIFORM"] is None and args[6]["SAT"] == ("__usat", 15)
    assert args[7]["CLASSES"] == ((0, 5, 0, 5),) and any(f[0] < 0 for f in args[7]["FNS"])
    bad = compare(model, _extreme_inputs(np.random.default_rng(52100), shapes), tmp_path / "h", target="cortex-m4")
    assert not bad, bad[:5]


@pytest.mark.skipif(not HAVE_GCC, reason="arm-none-eabi-gcc not installed")
@pytest.mark.parametrize("seed,opt", [(0, "-O3"), (1, "-O2"), (2, "-Os")])
def test_dw_s16_in_simulator(seed, opt, tmp_path):
    rng = np.random.default_rng(52200 + seed)
    model, shapes, descs = _random_model(rng, 12)
    bad, res = sim_mismatches(model, _inputs(rng, shapes), tmp_path / "m", opt=opt)
    assert _check_entries(res.graph) == 12
    assert not bad, "not bit-exact in the simulator: " + "; ".join(
        f"input #{c} output {o} ({descs[o]}) first at {i}" for c, o, i in bad[:6])


@pytest.mark.skipif(not HAVE_GCC, reason="arm-none-eabi-gcc not installed")
def test_dw_s16_extremes_in_simulator(tmp_path):
    model, shapes = _extremes_model()
    bad, res = sim_mismatches(model, _extreme_inputs(np.random.default_rng(52300), shapes), tmp_path / "m",
                              opt="-O3")
    assert _check_entries(res.graph) == len(shapes)
    assert not bad, bad[:6]


def test_dw_s16_entry_refusals():
    """The int8 depthwise entries refuse the int16 layers and this one refuses int8 layers and multipliers > 1
    (those stay on the generic kernel); the zoo's 16x8 keyword spotter takes it for both depthwise layers."""
    from specializer.registry import entry_by_name
    from specializer.targets.cortex_m.cores import get_core
    core = get_core("cortex-m4")
    g16 = specializer.compile(zoo.kws_dscnn_16x8(), out_dir=None, target="cortex-m4").graph
    dws = [op for op in g16.ops if op.kind == "DEPTHWISE_CONV_2D"]
    assert len(dws) == 2 and all(op.kernel.entry == ENTRY for op in dws)
    int8_entries = [e for e in (entry_by_name("depthwise_s8_dsp"), entry_by_name("depthwise_conv2d_s8"))]
    for op in dws:
        for e in int8_entries:
            assert e.reject(g16, op, core) is not None, e.name
    g8 = specializer.compile(zoo.demo_kws(), out_dir=None, target="cortex-m4").graph  # int8
    dw8 = [op for op in g8.ops if op.kind == "DEPTHWISE_CONV_2D"]
    assert dw8
    for op in dw8:
        assert entry_by_name(ENTRY).reject(g8, op, core) is not None
        assert op.kernel.entry != ENTRY
    # depth multiplier 2: refused here, the generic 16x8 kernel runs it
    mb = ModelBuilder()
    x = mb.input("x", (1, 5, 5, 3), "int16", 1e-3, 0)
    w = mb.const("w", np.arange(-27, 27).reshape(1, 3, 3, 6).astype(np.int8), scale=[1e-2] * 6, zero_point=0,
                 axis=3)
    b = mb.const("b", np.arange(6, dtype=np.int64), scale=[1e-5] * 6, zero_point=0)
    y = mb.tensor("y", (1, 5, 5, 6), "int16", 1e-2, 0)
    mb.op("DEPTHWISE_CONV_2D", [x, w, b], [y], ops.DepthwiseConv2D(padding="SAME", depth_multiplier=2))
    mb.output(y)
    g = specializer.compile(mb.build(), out_dir=None, target="cortex-m4").graph
    op = next(op for op in g.ops if op.kind == "DEPTHWISE_CONV_2D")
    assert "multiplier" in entry_by_name(ENTRY).reject(g, op, core)
    assert op.kernel.entry == "depthwise_conv2d_s16"


@pytest.mark.parametrize("cc", ["gcc", "arm-none-eabi-gcc"])
def test_dw_s16_compiles_warning_free(cc, tmp_path):
    if shutil.which(cc) is None:
        pytest.skip(f"{cc} not installed")
    model, _ = _extremes_model()
    m2, _, _ = _random_model(np.random.default_rng(52400), 6)
    from specializer.emit import runtime_dir
    for k, data in enumerate((model, m2)):
        out = tmp_path / f"lib{k}"
        specializer.compile(data, out_dir=out, target="cortex-m4")
        flags = ["-Wall", "-Wextra", "-Werror", "-O2", "-c", "-I", str(out), "-I", str(runtime_dir())]
        if cc != "gcc":
            flags += ["-mcpu=cortex-m4", "-mthumb", "-mfloat-abi=hard", "-mfpu=fpv4-sp-d16"]
        r = subprocess.run([cc, *flags, str(out / "net.c"), "-o", str(out / "net.o")], capture_output=True,
                           text=True)
        assert r.returncode == 0, r.stderr[:3000]
        assert ENTRY in (out / "net.c").read_text()
