"""The int16x8 keyword spotter the project's writer builds (`specializer.zoo.kws_dscnn_16x8`, issue #9): int8 input,
QUANTIZE to int16, CONV_2D 10x4/2, two depthwise-separable blocks (DEPTHWISE_CONV_2D 3x3, CONV_2D 1x1), a global
AVERAGE_POOL_2D, RESHAPE, FULLY_CONNECTED, SOFTMAX int16 and a QUANTIZE back to int8 probabilities. Bit-exact with
tflite-micro on the host (generic and Cortex-M4 builds, ASan/UBSan) and in the simulated Cortex-M4; its
activations use the int16 range (neither saturated nor dead) and the output depends on the input."""
from __future__ import annotations

import numpy as np

import specializer
from specializer import zoo
from specializer.frontend import load_model
from specializer.oracle import compare, run_tflm
from spz_randlayers import sim_mismatches

SHAPE = (1, 49, 10, 1)


def _frames(rng, n):
    return [[rng.integers(-128, 128, SHAPE).astype(np.int8)] for _ in range(n)]


def test_kws16_host(tmp_path):
    """Random inputs and the two constant extremes (every activation range overshoots: saturating int16 paths)."""
    model = zoo.kws_dscnn_16x8()
    rng = np.random.default_rng(171)
    ins = _frames(rng, 3) + [[np.full(SHAPE, v, np.int8)] for v in (-128, 127)]
    for target in (None, "cortex-m4"):
        bad = compare(model, ins, tmp_path / f"h{target}", target=target)
        assert not bad, f"{target}: " + "; ".join(map(str, bad[:3]))


def test_kws16_in_simulator(tmp_path):
    bad, res = sim_mismatches(zoo.kws_dscnn_16x8(), _frames(np.random.default_rng(172), 2), tmp_path / "m",
                              opt="-O3")
    assert not bad, bad[:3]
    kernels = {op.kind: op.kernel.entry for op in res.graph.ops if op.kernel}
    assert kernels["CONV_2D"] == "conv2d_s16_dsp" and kernels["DEPTHWISE_CONV_2D"] == "depthwise_conv2d_s16_dsp"
    assert kernels["FULLY_CONNECTED"] == "fully_connected_s16_dsp" and kernels["SOFTMAX"] == "softmax_s16"


def test_kws16_graph_and_io(tmp_path):
    """The 16x8 form TFLite requires: int16 activations with zero point 0, int8 symmetric weights (per channel on
    the convolutions), int64 biases; int8 model input and output (`int8_t *` accessors)."""
    model = zoo.kws_dscnn_16x8()
    assert model == zoo.kws_dscnn_16x8()  # deterministic
    g = load_model(model)
    assert [op.kind for op in g.ops] == ["QUANTIZE", "CONV_2D", "DEPTHWISE_CONV_2D", "CONV_2D", "DEPTHWISE_CONV_2D",
                                         "CONV_2D", "AVERAGE_POOL_2D", "RESHAPE", "FULLY_CONNECTED", "SOFTMAX",
                                         "QUANTIZE"]
    for op in g.ops:
        if op.kind in ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED"):
            x, w, b = (g.t(i) for i in op.inputs[:3])
            y = g.t(op.outputs[0])
            assert x.dtype == y.dtype == "int16" and w.dtype == "int8" and b.dtype == "int64", op
            assert not any(x.quant.zero_point + y.quant.zero_point + w.quant.zero_point), op
            assert len(w.quant.scale) == (1 if op.kind == "FULLY_CONNECTED" else 64), op
    specializer.compile(model, out_dir=tmp_path / "lib", target="cortex-m4")
    h = (tmp_path / "lib" / "net.h").read_text()
    assert "int8_t *net_input(uint8_t *arena, int index);" in h
    assert "int8_t *net_output(uint8_t *arena, int index);" in h


def test_kws16_activations_spread():
    """In tflite-micro (every intermediate exposed as an output): each int16 activation spans thousands of LSB and
    saturates almost nowhere, the ReLU layers are about half zero, and different inputs give different
    probabilities. Exposing the intermediates leaves the probabilities unchanged."""
    exposed, model = zoo.kws_dscnn_16x8(expose=True), zoo.kws_dscnn_16x8()
    probs = []
    for [x] in _frames(np.random.default_rng(173), 3):
        outs = run_tflm(exposed, [x])
        np.testing.assert_array_equal(outs[0], run_tflm(model, [x])[0])
        probs.append(outs[0])
        acts = outs[1:-2]  # int16 input, the five convolutions, the pooled features (logits, softmax follow)
        assert len(acts) == 7
        for k, a in enumerate(acts):
            assert a.dtype == np.int16, k
            a = a.astype(np.int32)
            assert a.max() - a.min() > 8000, (k, a.min(), a.max())
            assert np.mean(np.abs(a) >= 32767) < 0.01, k
            if 1 <= k <= 5:
                assert 0.3 < np.mean(a == 0) < 0.7, (k, np.mean(a == 0))
        logits = outs[-2].astype(np.int32)
        assert logits.max() - logits.min() > 10000 and np.all(np.abs(logits) < 32767)
    assert len({p.tobytes() for p in probs}) == 3
    assert all(len(set(p.reshape(-1).tolist())) >= 6 for p in probs)
