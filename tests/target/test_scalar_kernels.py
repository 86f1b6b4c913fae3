"""The scalar kernels for cores without DSP (targets/cortex_m/kernels/scalar.py): random 1x1 CONV_2D and
FULLY_CONNECTED layers, and any other CONV_2D (kernel sizes, strides, SAME/VALID, dilation: the column form) (channels not a multiple of 4, odd depths, extreme zero points and scales, hostile
quantization) bit-exact with tflite-micro on the host build for cortex-m0plus (ASan/UBSan, the C twin of the asm)
and in the simulated Cortex-M0+ and Cortex-M3 (the inline asm), the scalar entries chosen there; Cortex-M4 keeps
its DSP entries."""
from __future__ import annotations

import shutil

import numpy as np
import pytest

import specializer
from specializer import ops
from specializer.oracle import compare
from specializer.tflite_writer import ModelBuilder
from specializer.targets.cortex_m.kernels import scalar
from spz_randlayers import add_conv_layer, add_fc_layer, random_inputs, sim_mismatches

pytestmark = pytest.mark.skipif(shutil.which("arm-none-eabi-gcc") is None, reason="arm-none-eabi-gcc not installed")

SCALAR = {"conv2d_s8_pw_scalar", "fully_connected_s8_scalar"}
PW_CHANNELS = (1, 2, 3, 5, 7, 9, 16, 17, 33, 64)


def _model(seed: int, n: int = 10):
    """n independent layers: 1x1 convolutions (stride 1, VALID) and fully connected layers, ~20% hostile."""
    rng = np.random.default_rng(seed)
    mb = ModelBuilder()
    specs, descs = [], []
    for i in range(n):
        bad = rng.random() < 0.2
        if i % 3 == 2:
            shape, zp, d = add_fc_layer(mb, rng, str(i), hostile=bad)
        else:
            geom = (int(rng.integers(1, 7)), int(rng.integers(1, 7)), 1, 1, 1, 1, 1, 1, "VALID")
            shape, zp, d = add_conv_layer(mb, rng, str(i), False, force={"geom": geom, "groups": 1},
                                          hostile=bad, channels=PW_CHANNELS)
        specs.append((shape, zp))
        descs.append(d)
    return mb.build(), specs, descs, rng


def _entries(graph):
    return [op.kernel.entry for op in graph.ops if op.kernel is not None]


def test_scalar_host_build_bitexact(tmp_path):
    model, specs, descs, rng = _model(101, 12)
    res = specializer.compile(model, name="net", out_dir=tmp_path / "c", target="cortex-m0plus")
    assert set(_entries(res.graph)) <= SCALAR and len(set(_entries(res.graph))) == 2, _entries(res.graph)
    bad = compare(model, random_inputs(rng, specs, n_sets=2), tmp_path / "h", target="cortex-m0plus")
    assert not bad, f"host build not bit-exact: {bad[:4]} ({[descs[m.output] for m in bad[:4]]})"


@pytest.mark.parametrize("core,opt,seed", [("cortex-m0plus", "-O3", 102), ("cortex-m0plus", "-Os", 103),
                                           ("cortex-m3", "-O2", 104)])
def test_scalar_in_simulator(tmp_path, core, opt, seed):
    model, specs, descs, rng = _model(seed, 12)
    bad, res = sim_mismatches(model, random_inputs(rng, specs, n_sets=2), tmp_path / "m", core, opt=opt)
    entries = _entries(res.graph)
    assert entries and set(entries) <= SCALAR, entries
    assert not bad, "not bit-exact in the simulator: " + "; ".join(
        f"input #{c} output {o} ({descs[o]}) first at {i}" for c, o, i in bad[:6])


def test_scalar_deep_layers_in_simulator(tmp_path):
    """Depths that move the pointers many times (K 64..300, odd), several blocks and a tail block, M0+ -O0."""
    rng = np.random.default_rng(105)
    mb = ModelBuilder()
    specs = []
    for i, (k, r) in enumerate(((64, 64), (257, 13), (3, 70))):
        x = mb.input(f"x{i}", (2, k), scale=0.02, zero_point=int(rng.integers(-128, 128)))
        w = mb.const(f"w{i}", rng.integers(-127, 128, size=(r, k)).astype(np.int8),
                     scale=(10 ** rng.uniform(-3, -2, r)).astype(np.float32), axis=0)
        big = 1 << 25 if i == 2 else 5000  # |acc| >= 2^24: the "wide" requantization instead of "split"
        b = mb.const(f"b{i}", rng.integers(-big, big, size=r).astype(np.int32),
                     scale=(0.02 * 10 ** rng.uniform(-3, -2, r)).astype(np.float32), axis=0)
        y = mb.tensor(f"y{i}", (2, r), scale=0.5 if i < 2 else 50.0, zero_point=int(rng.integers(-128, 128)))
        mb.op("FULLY_CONNECTED", [x, w, b], [y], ops.FullyConnected(activation="NONE"))
        mb.output(y)
        specs.append(((2, k), 0))
    model = mb.build()
    bad, res = sim_mismatches(model, random_inputs(rng, specs, n_sets=1), tmp_path / "m", "cortex-m0plus",
                              opt="-O0")
    assert set(_entries(res.graph)) == {"fully_connected_s8_scalar"}
    modes = [scalar.template_args(res.graph, op)["RQ"] for op in res.graph.ops if op.kernel is not None]
    assert modes == ["split", "split", "wide"], modes
    assert not bad, bad[:4]


def test_m4_keeps_dsp_kernels(tmp_path):
    model, _, _, _ = _model(106, 6)
    res = specializer.compile(model, name="net", out_dir=tmp_path / "c", target="cortex-m4")
    entries = _entries(res.graph)
    assert entries and all(e.endswith("_dsp") for e in entries), entries
    res = specializer.compile(model, name="net", out_dir=tmp_path / "h")  # portable host build: generic kernels
    assert not set(_entries(res.graph)) & SCALAR


def _conv_model(seed: int, n: int = 12):
    """n independent ungrouped CONV_2D layers of random geometry (kernel 1..5 x 1..5, strides, dilation, SAME and
    VALID), ~20% hostile: the column form (conv2d_s8_scalar) wherever the layer is not 1x1 stride-1 unpadded."""
    rng = np.random.default_rng(seed)
    mb = ModelBuilder()
    specs, descs = [], []
    for i in range(n):
        shape, zp, d = add_conv_layer(mb, rng, str(i), False, force={"groups": 1}, hostile=rng.random() < 0.2)
        specs.append((shape, zp))
        descs.append(d)
    return mb.build(), specs, descs, rng


def test_scalar_conv_host_build_bitexact(tmp_path):
    for k, seed in enumerate((111, 112)):
        model, specs, descs, rng = _conv_model(seed)
        res = specializer.compile(model, name="net", out_dir=tmp_path / f"c{k}", target="cortex-m0plus")
        assert "conv2d_s8_scalar" in _entries(res.graph), _entries(res.graph)
        bad = compare(model, random_inputs(rng, specs, n_sets=2), tmp_path / f"h{k}", target="cortex-m0plus")
        assert not bad, f"host build not bit-exact: {bad[:4]} ({[descs[m.output] for m in bad[:4]]})"


@pytest.mark.parametrize("core,opt,seed", [("cortex-m0plus", "-O2", 113), ("cortex-m3", "-Os", 114)])
def test_scalar_conv_in_simulator(tmp_path, core, opt, seed):
    model, specs, descs, rng = _conv_model(seed)
    bad, res = sim_mismatches(model, random_inputs(rng, specs, n_sets=2), tmp_path / "m", core, opt=opt)
    entries = _entries(res.graph)
    assert "conv2d_s8_scalar" in entries and set(entries) <= SCALAR | {"conv2d_s8_scalar", "conv2d_s8"}, entries
    assert not bad, "not bit-exact in the simulator: " + "; ".join(
        f"input #{c} output {o} ({descs[o]}) first at {i}" for c, o, i in bad[:6])
