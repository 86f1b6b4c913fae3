"""fuse_activations: structure and numerics, positive and negative cases (conv-less graphs).

Positive: FULLY_CONNECTED (or ADD) -> RELU / RELU6 with identical quantization is fused (the RELU disappears and
the producer's clamp shrinks to the RELU range), and the compiled library stays bit-exact with TFLM.
Negative: a RELU whose output quantization differs, a RELU whose input feeds a second consumer, and a RELU whose
input is a graph output are not fused, run as standalone kernels, and stay bit-exact.
"""
from __future__ import annotations

import numpy as np
import pytest

from specializer.passes.fuse_activations import fuse_activations
from specializer.api import lower
from specializer.frontend import load_model
from specializer.quant import activation_range
from specializer.tflite_writer import ModelBuilder
from spz_testutil import assert_bitexact

S_Y, ZP_Y = 0.05, -20


def _fc_relu(kind, same_quant=True, extra_consumer=False, relu_input_is_output=False, seed=0):
    rng = np.random.default_rng(seed)
    mb = ModelBuilder()
    x = mb.input("x", (2, 12), "int8", 0.04, 3)
    w = mb.const("w", rng.integers(-127, 128, size=(9, 12)).astype(np.int8), scale=0.01)
    b = mb.const("b", rng.integers(-500, 500, size=(9,)).astype(np.int32), scale=0.04 * 0.01)
    t = mb.tensor("t", (2, 9), "int8", S_Y, ZP_Y)
    mb.op("FULLY_CONNECTED", [x, w, b], [t])
    y = mb.tensor("y", (2, 9), "int8", *((S_Y, ZP_Y) if same_quant else (0.03, -100)))
    mb.op(kind, [t], [y])
    mb.output(y)
    if extra_consumer:
        z = mb.tensor("z", (2, 9), "int8", 0.05, 0)
        mb.op("ADD", [t, t], [z])
        mb.output(z)
    if relu_input_is_output:
        mb.output(t)
    return mb.build()


def _inputs(data, n=3, seed=1):
    rng = np.random.default_rng(seed)
    g = load_model(data)
    return [[rng.integers(-128, 128, size=g.t(t).shape).astype(np.int8) for t in g.inputs] for _ in range(n)]


def _kinds(data):
    g, _ = lower(data)
    return [op.kind for op in g.ops], g


@pytest.mark.parametrize("kind", ["RELU", "RELU6"])
def test_fc_relu_fused(kind, tmp_path):
    data = _fc_relu(kind)
    before = [op.kind for op in load_model(data).ops]
    after, g = _kinds(data)
    assert before == ["FULLY_CONNECTED", kind]
    assert after == ["FULLY_CONNECTED"]
    fc = g.ops[0]
    assert fc.outputs == tuple(g.outputs)  # the FC now writes the RELU's output tensor
    assert fc.clamp == activation_range(kind, S_Y, ZP_Y)
    assert_bitexact(data, _inputs(data), tmp_path)


def test_pass_alone_before_after():
    """The pass by itself: one op fewer, the dropped tensor pruned, clamp intersected."""
    g = load_model(_fc_relu("RELU6"))
    out = fuse_activations(g)
    assert len(out.ops) == len(g.ops) - 1
    assert len(out.tensors) == len(g.tensors) - 1
    assert out.ops[0].clamp == activation_range("RELU6", S_Y, ZP_Y)


def test_add_relu_fused(tmp_path):
    mb = ModelBuilder()
    a = mb.input("a", (1, 3, 3, 5), "int8", 0.02, -7)
    b = mb.input("b", (1, 1, 1, 5), "int8", 0.03, 9)
    t = mb.tensor("t", (1, 3, 3, 5), "int8", S_Y, ZP_Y)
    mb.op("ADD", [a, b], [t])
    y = mb.tensor("y", (1, 3, 3, 5), "int8", S_Y, ZP_Y)
    mb.op("RELU", [t], [y])
    mb.output(y)
    data = mb.build()
    kinds, _ = _kinds(data)
    assert kinds == ["ADD"]
    assert_bitexact(data, _inputs(data), tmp_path)


@pytest.mark.parametrize("kind", ["RELU", "RELU6"])
def test_relu_other_quant_not_fused(kind, tmp_path):
    data = _fc_relu(kind, same_quant=False)
    kinds, g = _kinds(data)
    assert kinds == ["FULLY_CONNECTED", kind]
    assert g.ops[0].clamp == (-128, 127)
    assert_bitexact(data, _inputs(data), tmp_path)


def test_relu_shared_input_not_fused(tmp_path):
    data = _fc_relu("RELU", extra_consumer=True)
    kinds, _ = _kinds(data)
    assert kinds == ["FULLY_CONNECTED", "RELU", "ADD"]
    assert_bitexact(data, _inputs(data), tmp_path)


def test_relu_input_is_graph_output_not_fused(tmp_path):
    data = _fc_relu("RELU6", relu_input_is_output=True)
    kinds, _ = _kinds(data)
    assert kinds == ["FULLY_CONNECTED", "RELU6"]
    assert_bitexact(data, _inputs(data), tmp_path)
