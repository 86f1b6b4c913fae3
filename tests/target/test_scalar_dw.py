"""The scalar depthwise kernel for cores without DSP (targets/cortex_m/kernels/scalar_dw.py): random depthwise
layers (multiplier 1; kernels 1x1..5x5, strides 1-2, SAME/VALID, channels multiples of 4 and odd counts, hostile
quantization) bit-exact with tflite-micro on the host build for cortex-m0plus (ASan/UBSan) and in the simulated
Cortex-M0+ and Cortex-M3, the scalar entry chosen there; Cortex-M4 keeps its DSP depthwise."""
from __future__ import annotations

import shutil

import numpy as np
import pytest

import specializer
from specializer import ops
from specializer.oracle import compare
from specializer.tflite_writer import ModelBuilder
from specializer.targets.cortex_m.cores import get_core
from specializer.targets.cortex_m.kernels import scalar_dw
from spz_randlayers import add_conv_layer, random_inputs, rows_depthwise_model, sim_mismatches

pytestmark = pytest.mark.skipif(shutil.which("arm-none-eabi-gcc") is None, reason="arm-none-eabi-gcc not installed")

ENTRY = "depthwise_s8_scalar"
ODD_CHANNELS = (1, 2, 3, 5, 7, 9, 13)


def _odd_model(seed: int, n: int = 6):
    """n depthwise layers (multiplier 1, no dilation) with channel counts that are not multiples of 4."""
    rng = np.random.default_rng(seed)
    mb = ModelBuilder()
    specs = []
    for k in range(n):
        kh, kw = int(rng.integers(1, 6)), int(rng.integers(1, 6))
        sh, sw = int(rng.integers(1, 3)), int(rng.integers(1, 3))
        pad = "SAME" if rng.random() < 0.6 else "VALID"
        geom = (int(rng.integers(kh, 12)), int(rng.integers(kw, 12)), kh, kw, sh, sw, 1, 1, pad)
        shape, zp, _ = add_conv_layer(mb, rng, f"o{k}", True, force={"geom": geom, "mult": 1},
                                      channels=ODD_CHANNELS, hostile=rng.random() < 0.2)
        specs.append((shape, zp))
    return mb.build(), specs, rng


def _models(seed: int):
    rng = np.random.default_rng(seed)
    m1, s1 = rows_depthwise_model(rng, f"r{seed}", 8)
    m2, s2, _ = _odd_model(seed + 1000)
    return [(m1, s1), (m2, s2)], rng


def _dw_entries(graph):
    return [op.kernel.entry for op in graph.ops if op.kind == "DEPTHWISE_CONV_2D" and op.kernel is not None]


def _chosen(graph, core="cortex-m0plus"):
    """Most depthwise layers run the entry; the others are ones it refuses (dilation, a weight of -128, ...)."""
    ent = _dw_entries(graph)
    assert ent.count(ENTRY) >= len(ent) // 2, ent
    for op in graph.ops:
        if op.kind == "DEPTHWISE_CONV_2D" and op.kernel is not None and op.kernel.entry != ENTRY:
            assert scalar_dw.reject(graph, op, get_core(core)) is not None, op.kernel.entry


def test_scalar_dw_host_build_bitexact(tmp_path):
    models, rng = _models(201)
    for i, (model, specs) in enumerate(models):
        res = specializer.compile(model, name="net", out_dir=tmp_path / f"c{i}", target="cortex-m0plus")
        _chosen(res.graph)
        bad = compare(model, random_inputs(rng, specs, n_sets=2), tmp_path / f"h{i}", target="cortex-m0plus")
        assert not bad, f"host build not bit-exact: {bad[:4]}"


@pytest.mark.parametrize("core,opt,seed", [("cortex-m0plus", "-O3", 202), ("cortex-m3", "-O2", 203)])
def test_scalar_dw_in_simulator(tmp_path, core, opt, seed):
    models, rng = _models(seed)
    for i, (model, specs) in enumerate(models):
        bad, res = sim_mismatches(model, random_inputs(rng, specs, n_sets=2), tmp_path / f"m{i}", core, opt=opt)
        _chosen(res.graph, core)
        assert not bad, f"not bit-exact in the simulator ({core}): {bad[:6]}"


def _modes_model(seed: int):
    """3x3 layers forcing the requantization forms: "wide" (|acc| >= 2^24 from a bias near 2^25), "splitz" with
    right shifts near the largest a live channel can have and an output zero point near 127, plain "splitz"."""
    rng = np.random.default_rng(seed)
    mb = ModelBuilder()
    specs = []
    for i, (big, oscale, ozp) in enumerate(((1 << 25, 50.0, 3), (1 << 23, 2.0e-5 * 2 ** 22, 120), (3000, 0.05, -7))):
        c = 6
        x = mb.input(f"x{i}", (1, 7, 6, c), scale=0.02, zero_point=int(rng.integers(-128, 128)))
        wq = rng.integers(-127, 128, size=(1, 3, 3, c)).astype(np.int8)
        ws = (10 ** rng.uniform(-3, -3 + 0.2, c)).astype(np.float32)
        w = mb.const(f"w{i}", wq, scale=ws, axis=3)
        b = mb.const(f"b{i}", rng.integers(-big, big, size=c).astype(np.int32),
                     scale=(0.02 * ws.astype(np.float64)).astype(np.float32), axis=0)
        y = mb.tensor(f"y{i}", (1, 7, 6, c), scale=oscale, zero_point=ozp)
        mb.op("DEPTHWISE_CONV_2D", [x, w, b], [y], ops.DepthwiseConv2D(padding="SAME", stride_h=1, stride_w=1,
                                                                      dilation_h=1, dilation_w=1,
                                                                      depth_multiplier=1, activation="NONE"))
        mb.output(y)
        specs.append(((1, 7, 6, c), 0))
    return mb.build(), specs, rng


def test_scalar_dw_requant_modes(tmp_path):
    model, specs, rng = _modes_model(205)
    inputs = random_inputs(rng, specs, n_sets=2)
    bad = compare(model, inputs, tmp_path / "h", target="cortex-m0plus")
    assert not bad, bad[:4]
    bad, res = sim_mismatches(model, inputs, tmp_path / "m", "cortex-m0plus", opt="-Os")
    modes = [scalar_dw.template_args(res.graph, op)["RQ"] for op in res.graph.ops if op.kernel is not None
             and op.kernel.entry == ENTRY]
    assert modes == ["wide", "splitz", "splitz"], modes
    assert not bad, bad[:4]


def test_m4_keeps_dsp_depthwise(tmp_path):
    rng = np.random.default_rng(204)
    model, _ = rows_depthwise_model(rng, "m4", 4)
    res = specializer.compile(model, name="net", out_dir=tmp_path / "c", target="cortex-m4")
    ent = _dw_entries(res.graph)
    assert ent and ENTRY not in ent and all(e.endswith("_dsp") for e in ent), ent
    res = specializer.compile(model, name="net", out_dir=tmp_path / "h")  # portable host build: no scalar entry
    assert ENTRY not in _dw_entries(res.graph)
