"""TRANSPOSE_CONV int8 against tflite-micro: kernels 1..5 (non-square), strides 1..3 (stride > kernel too),
SAME/VALID, channel counts not a multiple of 4, batches, per-channel and per-tensor weights, with and without
bias, fused activations; host under ASan (generic and Cortex-M4 builds) and in the simulated Cortex-M4."""
from __future__ import annotations

import numpy as np
import pytest

from specializer import ops
from spz_randlayers import (_weight_scales, compare_in_batches, layers_model, output_quant, random_inputs,
                            sim_mismatches)


def _layer(mb, rng, i):
    kh, kw = (int(v) for v in rng.integers(1, 6, size=2))
    sh, sw = (int(v) for v in rng.integers(1, 4, size=2))
    padding = str(rng.choice(["SAME", "VALID"]))
    ih, iw = (int(v) for v in rng.integers(1, 7, size=2))
    ic, oc = int(rng.choice([1, 2, 3, 5, 8])), int(rng.choice([1, 3, 4, 7]))
    bsz = 2 if rng.random() < 0.2 else 1
    if padding == "SAME":
        oh, ow = ih * sh, iw * sw
    else:
        oh, ow = (ih - 1) * sh + kh, (iw - 1) * sw + kw
    act = str(rng.choice(["NONE", "RELU", "RELU6"]))
    out_s, out_zp = output_quant(rng, act)
    in_zp = int(rng.integers(-128, 128))
    ws = _weight_scales(rng, oc, rng.random() < 0.7)
    wq = rng.integers(-127, 128, (oc, kh, kw, ic)).astype(np.int8)
    acc = 74.0 * 73.0 * np.sqrt(kh * kw * ic / max(sh * sw, 1))
    in_s = float(out_s * 40.0 / (float(np.median(ws)) * acc) * 10 ** rng.uniform(-0.4, 0.4))
    x = mb.input(f"x{i}", (bsz, ih, iw, ic), scale=in_s, zero_point=in_zp)
    w = mb.const(f"w{i}", wq, scale=ws, axis=0)
    b = None
    if rng.random() < 0.7:
        b = mb.const(f"b{i}", (rng.uniform(-2, 2, oc) * acc).astype(np.int32),
                     scale=np.broadcast_to((in_s * ws.astype(np.float64)).astype(np.float32), (oc,)), axis=0)
    y = mb.tensor(f"y{i}", (bsz, oh, ow, oc), scale=out_s, zero_point=out_zp)
    shp = mb.const(f"s{i}", np.array([bsz, oh, ow, oc], np.int32))
    mb.op("TRANSPOSE_CONV", [shp, w, x, b], [y], ops.TransposeConv(padding=padding, stride_h=sh, stride_w=sw,
                                                                   activation=act))
    mb.output(y)
    return [((bsz, ih, iw, ic), in_zp)], f"tconv {bsz}x{ih}x{iw}x{ic} k{kh}x{kw} s{sh},{sw} {padding} -> {oc} {act}"


def _model(rng, n):
    return layers_model(rng, n, _layer)


@pytest.mark.parametrize("target,seed", [(None, 131), ("cortex-m4", 132)])
def test_random_transpose_convs(tmp_path, target, seed, sweep):
    compare_in_batches(tmp_path, np.random.default_rng(seed), sweep(24), 8, _model, target)


def test_transpose_convs_in_simulator(tmp_path):
    rng = np.random.default_rng(133)
    model, specs, descs = _model(rng, 10)
    bad, _ = sim_mismatches(model, random_inputs(rng, specs, n_sets=2), tmp_path / "m", opt="-O3")
    assert not bad, "; ".join(f"input #{c} output {o} ({descs[o]}) first at {i}" for c, o, i in bad[:6])
