"""The int16x8 DSP kernels (conv2d_s16_dsp, fully_connected_s16_dsp: SMLALD on int16 pairs, int64 sums) checked bit
for bit with tflite-micro: on the host cortex-m4 build (portable intrinsic twins, ASan/UBSan) and cross-compiled in
the simulated Cortex-M4, asserting that the DSP entries actually ran.

Randomized single-layer 16x8 models (the builders of tests/kernels/test_int16x8_layers.py and test_int16x8.py):
kernels 1..5, strides 1..3, dilations, SAME/VALID, odd and even channel counts, per-tensor and per-channel scales,
int64 or no bias, fused activations, FC input zero points; plus extremes (all-extreme inputs and weights, biases
near 2^40, FC depths up to 4000) and a -Wall -Wextra -Werror compile of the generated C (host gcc, arm-none-eabi-gcc).
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
from test_int16x8 import _fc_layer, _ints  # noqa: E402
from test_int16x8_layers import _conv_layer  # noqa: E402

HAVE_GCC = shutil.which("arm-none-eabi-gcc") is not None
DSP = {"CONV_2D": "conv2d_s16_dsp", "FULLY_CONNECTED": "fully_connected_s16_dsp"}


def _random_model(rng, n_conv, n_fc):
    mb = ModelBuilder()
    shapes, descs = [], []
    for i in range(n_conv):
        sh, d = _conv_layer(mb, rng, i, bias=str(rng.choice(["int64", "int64", "none"])))
        shapes += list(sh)
        descs.append(d)
    for i in range(n_conv, n_conv + n_fc):
        sh, d = _fc_layer(mb, rng, i, bias=rng.random() < 0.8)
        shapes.append(sh)
        descs.append(d)
    return mb.build(), shapes, descs


def _inputs(rng, shapes, n=2):
    return [[_ints(rng, sh, "int16", k) for sh in shapes] for k in range(n)]


def _check_entries(graph):
    """Every eligible layer (ungrouped, int64 or no bias) ran the DSP entry; returns how many did."""
    n = 0
    for op in graph.ops:
        if op.kind not in DSP:
            continue
        x, w = graph.t(op.inputs[0]), graph.t(op.inputs[1])
        if op.kind == "CONV_2D" and x.shape[3] != w.shape[3]:
            assert op.kernel.entry == "conv2d_s16", op.kernel.entry  # grouped: the generic kernel
            continue
        assert op.kernel.entry == DSP[op.kind], (op.kind, op.kernel.entry)
        n += 1
    return n


@pytest.mark.parametrize("seed", range(6))
def test_s16_dsp_host(seed, tmp_path):
    """Host cortex-m4 build (portable SMLALD twin, ASan/UBSan) against tflite-micro."""
    rng = np.random.default_rng(41600 + seed)
    model, shapes, descs = _random_model(rng, 8, 5)
    res = specializer.compile(model, out_dir=None, target="cortex-m4")
    assert _check_entries(res.graph) >= 8
    bad = compare(model, _inputs(rng, shapes), tmp_path / "h", target="cortex-m4")
    assert not bad, "; ".join(f"{b} [{descs[b.output]}]" for b in bad[:5])


def _extremes_model():
    """All-extreme weights, biases near 2^40 (per channel), deep and odd channel counts, dilations, padding; FC
    depths 1, 4000 (the int64 sum; an int32 one would wrap) and an odd 1501 with an input zero point."""
    mb = ModelBuilder()
    shapes = []
    convs = ((64, 5, 1, 1, "SAME"), (301, 3, 1, 1, "SAME"), (7, 5, 2, 1, "SAME"), (3, 3, 1, 2, "VALID"),
             (1, 4, 2, 1, "SAME"))
    for i, (cin, k, s, d, pad) in enumerate(convs):
        cout = 5
        w = np.full((cout, k, k, cin), 127, np.int8)
        w[1] = -127
        w[3, ..., ::2] = -127
        ih = (k - 1) * d + 3
        x = mb.input(f"x{i}", (1, ih, ih, cin), "int16", 1e-4, 0)
        wt = mb.const(f"w{i}", w, scale=[1e-3] * cout, zero_point=0, axis=0)
        b = mb.const(f"b{i}", np.array([(1 << 40) if c % 3 == 0 else -(1 << 20) for c in range(cout)], np.int64),
                     scale=[1e-7] * cout, zero_point=0)
        oh = ops.conv_output_size(ih, k, s, d, pad)
        y = mb.tensor(f"y{i}", (1, oh, oh, cout), "int16", 1e-7 * 32768 * 127 * k * k * cin / 20000, 0)
        mb.op("CONV_2D", [x, wt, b], [y], ops.Conv2D(padding=pad, stride_h=s, stride_w=s, dilation_h=d,
                                                     dilation_w=d))
        mb.output(y)
        shapes.append((1, ih, ih, cin))
    for i, (depth, zp) in enumerate(((1, 0), (4000, 0), (1501, -77)), start=len(convs)):
        x = mb.input(f"x{i}", (2, depth), "int16", 1e-4, zp)
        w = mb.const(f"w{i}", np.full((3, depth), 127, np.int8) * np.array([[1], [-1], [1]], np.int8),
                     scale=1e-3, zero_point=0)
        b = mb.const(f"b{i}", np.array([1 << 33, -(1 << 20), 0], np.int64), scale=1e-7, zero_point=0)
        y = mb.tensor(f"y{i}", (2, 3), "int16", 1e-7 * 32768 * 127 * depth / 20000, 0)
        mb.op("FULLY_CONNECTED", [x, w, b], [y], ops.FullyConnected())
        mb.output(y)
        shapes.append((2, depth))
    # a left-shifting requantization (input x weight scale / output scale = 1.5: shift 1, the kernels' "c" form)
    for i, kind in enumerate(("CONV_2D", "FULLY_CONNECTED"), start=len(shapes)):
        shape = (1, 4, 4, 3) if kind == "CONV_2D" else (2, 9)
        x = mb.input(f"x{i}", shape, "int16", 1e-2, 0)
        wq = np.random.default_rng(i).integers(-127, 128, (4, 3, 3, 3) if kind == "CONV_2D" else (4, 9))
        wt = mb.const(f"w{i}", wq.astype(np.int8), scale=1e-2, zero_point=0)
        b = mb.const(f"b{i}", np.array([5, -7, 100, 0], np.int64), scale=1e-4, zero_point=0)
        y = mb.tensor(f"y{i}", (1, 4, 4, 4) if kind == "CONV_2D" else (2, 4), "int16", 1e-4 / 1.5, 0)
        mb.op(kind, [x, wt, b], [y], ops.Conv2D(padding="SAME") if kind == "CONV_2D" else ops.FullyConnected())
        mb.output(y)
        shapes.append(shape)
    return mb.build(), shapes


def _extreme_inputs(rng, shapes):
    return [[np.full(sh, v, np.int16) for sh in shapes] for v in (32767, -32768)] + _inputs(rng, shapes, 1)


def test_s16_dsp_host_extremes(tmp_path):
    from specializer.targets.cortex_m.kernels import s16
    model, shapes = _extremes_model()
    res = specializer.compile(model, out_dir=None, target="cortex-m4")
    assert _check_entries(res.graph) == len(shapes)
    modes = [s16.template_args(res.graph, op)["RQ"] for op in res.graph.ops if op.kind in DSP]
    assert modes.count("c") >= 2 and "hi" in modes
    bad = compare(model, _extreme_inputs(np.random.default_rng(41650), shapes), tmp_path / "h", target="cortex-m4")
    assert not bad, bad[:5]


@pytest.mark.skipif(not HAVE_GCC, reason="arm-none-eabi-gcc not installed")
@pytest.mark.parametrize("seed,opt", [(0, "-O3"), (1, "-O2"), (2, "-Os"), (3, "-O3"), (4, "-O2"), (5, "-O3")])
def test_s16_dsp_in_simulator(seed, opt, tmp_path):
    rng = np.random.default_rng(41700 + seed)
    model, shapes, descs = _random_model(rng, 14, 8)
    bad, res = sim_mismatches(model, _inputs(rng, shapes), tmp_path / "m", opt=opt)
    assert _check_entries(res.graph) >= 14
    assert not bad, "not bit-exact in the simulator: " + "; ".join(
        f"input #{c} output {o} ({descs[o]}) first at {i}" for c, o, i in bad[:6])


@pytest.mark.skipif(not HAVE_GCC, reason="arm-none-eabi-gcc not installed")
def test_s16_dsp_extremes_in_simulator(tmp_path):
    model, shapes = _extremes_model()
    bad, res = sim_mismatches(model, _extreme_inputs(np.random.default_rng(41750), shapes), tmp_path / "m",
                              opt="-O3")
    assert _check_entries(res.graph) == len(shapes)
    assert not bad, bad[:6]


def test_s16_dsp_refuses_int8_and_int32_bias():
    """The int8 entries keep refusing int16 layers and these refuse int8 ones; an int32 bias stays generic."""
    from specializer.registry import entry_by_name
    from specializer.targets.cortex_m.cores import get_core
    rng = np.random.default_rng(41800)
    mb = ModelBuilder()
    _conv_layer(mb, rng, 0, bias="int32")
    _fc_layer(mb, rng, 1, bias=True, bias_dtype="int32")
    res = specializer.compile(mb.build(), out_dir=None, target="cortex-m4")
    kinds = {op.kind: op.kernel.entry for op in res.graph.ops if op.kernel}
    assert kinds["CONV_2D"] == "conv2d_s16" and kinds["FULLY_CONNECTED"] == "fully_connected_s16"
    g8 = specializer.compile(zoo.kws_dscnn_16x8(), out_dir=None, target="cortex-m4").graph
    core = get_core("cortex-m4")
    for op in g8.ops:
        if op.kind in ("CONV_2D", "FULLY_CONNECTED"):
            assert op.kernel.entry == DSP[op.kind]
    g = specializer.compile(zoo.demo_kws(), out_dir=None, target="cortex-m4").graph  # int8
    for op in g.ops:
        if op.kind in DSP:
            assert entry_by_name(DSP[op.kind]).reject(g, op, core) is not None
            assert not op.kernel.entry.endswith("s16_dsp")
    for op in g8.ops:  # and the int8 DSP entries refuse the int16 layers
        if op.kind in DSP:
            for name in ("conv2d_s8_dsp", "fully_connected_s8_dsp"):
                e = entry_by_name(name)
                if op.kind in e.ops:
                    assert e.reject(g8, op, core) is not None


@pytest.mark.parametrize("cc", ["gcc", "arm-none-eabi-gcc"])
def test_s16_dsp_compiles_warning_free(cc, tmp_path):
    if shutil.which(cc) is None:
        pytest.skip(f"{cc} not installed")
    model, _ = _extremes_model()
    rng = np.random.default_rng(41900)
    m2, _, _ = _random_model(rng, 6, 3)
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
        assert "s16_dsp" in (out / "net.c").read_text()
