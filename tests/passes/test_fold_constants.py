"""Tests of passes.fold_constants: constant RESHAPE/TRANSPOSE/CONCATENATION feeding an op are evaluated offline,
dead ops are removed, the pass leaves non-constant and graph-output ops alone, and results stay bit-exact."""
from __future__ import annotations

import numpy as np

import specializer
from specializer import ops
from specializer.frontend.tflite_import import load_model
from specializer.ir import verify
from specializer.passes.fold_constants import fold_constants, remove_dead_ops
from specializer.tflite_writer import ModelBuilder
from spz_testutil import assert_bitexact

S, Z = 0.05, 4


def _x(rng, shape, n=2):
    return [[rng.integers(-128, 128, size=shape).astype(np.int8)] for _ in range(n)]


def _kinds(g):
    return [op.kind for op in g.ops]


def test_constant_reshape_into_fc_weights(tmp_path):
    """W[2,3,4] -> RESHAPE -> w[6,4] -> FULLY_CONNECTED:  folded to a constant w, the RESHAPE disappears."""
    rng = np.random.default_rng(0)
    wdata = rng.integers(-127, 128, size=(2, 3, 4)).astype(np.int8)
    mb = ModelBuilder()
    x = mb.input("x", (1, 4), scale=S, zero_point=Z)
    w0 = mb.const("w0", wdata, scale=0.02)
    w = mb.tensor("w", (6, 4), scale=0.02)
    mb.op("RESHAPE", [w0, mb.const("shape", np.array([6, 4], np.int32))], [w], ops.Reshape((6, 4)))
    y = mb.tensor("y", (1, 6), scale=0.3, zero_point=-2)
    mb.op("FULLY_CONNECTED", [x, w, None], [y], ops.FullyConnected())
    mb.output(y)
    data = mb.build()

    g = fold_constants(load_model(data))
    verify(g)
    assert _kinds(g) == ["FULLY_CONNECTED"]
    assert g.t(w).is_const and g.t(w).data.shape == (6, 4)
    assert np.array_equal(g.t(w).data, wdata.reshape(6, 4))
    assert w0 not in g.tensors  # pruned
    assert_bitexact(data, _x(rng, (1, 4)), tmp_path)


def test_constant_transpose_into_fc_weights(tmp_path):
    """W[4,6] -> TRANSPOSE(1,0) -> w[6,4] -> FULLY_CONNECTED: folded with numpy's transpose."""
    rng = np.random.default_rng(1)
    wdata = rng.integers(-127, 128, size=(4, 6)).astype(np.int8)
    mb = ModelBuilder()
    x = mb.input("x", (2, 4), scale=S, zero_point=Z)
    w0 = mb.const("w0", wdata, scale=0.02)
    w = mb.tensor("w", (6, 4), scale=0.02)
    mb.op("TRANSPOSE", [w0, mb.const("perm", np.array([1, 0], np.int32))], [w])
    y = mb.tensor("y", (2, 6), scale=0.3, zero_point=-2)
    mb.op("FULLY_CONNECTED", [x, w, None], [y], ops.FullyConnected())
    mb.output(y)
    data = mb.build()

    g = fold_constants(load_model(data))
    assert _kinds(g) == ["FULLY_CONNECTED"]
    assert np.array_equal(g.t(w).data, wdata.T)
    assert_bitexact(data, _x(rng, (2, 4)), tmp_path)


def test_constant_chain_into_concatenation(tmp_path):
    """K -> TRANSPOSE -> RESHAPE -> k2, then CONCATENATION(x, k2): the chain folds, the concat stays."""
    rng = np.random.default_rng(2)
    kdata = rng.integers(-128, 128, size=(3, 2, 4)).astype(np.int8)
    mb = ModelBuilder()
    x = mb.input("x", (2, 5), scale=S, zero_point=Z)
    k0 = mb.const("k0", kdata, scale=S, zero_point=Z)
    k1 = mb.tensor("k1", (4, 2, 3), scale=S, zero_point=Z)
    mb.op("TRANSPOSE", [k0, mb.const("perm", np.array([2, 1, 0], np.int32))], [k1])
    k2 = mb.tensor("k2", (2, 12), scale=S, zero_point=Z)
    mb.op("RESHAPE", [k1, mb.const("shape", np.array([2, 12], np.int32))], [k2], ops.Reshape((2, 12)))
    y = mb.tensor("y", (2, 17), scale=S, zero_point=Z)
    mb.op("CONCATENATION", [x, k2], [y], ops.Concatenation(axis=1))
    mb.output(y)
    data = mb.build()

    g = fold_constants(load_model(data))
    verify(g)
    assert _kinds(g) == ["CONCATENATION"]
    assert np.array_equal(g.t(k2).data, np.transpose(kdata, (2, 1, 0)).reshape(2, 12))
    assert_bitexact(data, _x(rng, (2, 5)), tmp_path)


def test_dead_ops_removed(tmp_path):
    """An op chain that reaches no graph output is removed (repeatedly, from the end); live ops stay."""
    rng = np.random.default_rng(3)
    mb = ModelBuilder()
    x = mb.input("x", (1, 3, 4), scale=S, zero_point=Z)
    d0 = mb.tensor("d0", (1, 4, 3), scale=S, zero_point=Z)
    mb.op("TRANSPOSE", [x, mb.const("perm", np.array([0, 2, 1], np.int32))], [d0])
    d1 = mb.tensor("d1", (1, 6, 3), scale=S, zero_point=Z)
    mb.op("PAD", [d0, mb.const("pads", np.array([[0, 0], [1, 1], [0, 0]], np.int32))], [d1])
    y = mb.tensor("y", (1, 3, 8), scale=S, zero_point=Z)
    mb.op("CONCATENATION", [x, x], [y], ops.Concatenation(axis=-1))
    mb.output(y)
    data = mb.build()

    g0 = load_model(data)
    assert _kinds(g0) == ["TRANSPOSE", "PAD", "CONCATENATION"]
    g = remove_dead_ops(g0)
    assert _kinds(g) == ["CONCATENATION"]
    g = fold_constants(g0)
    assert _kinds(g) == ["CONCATENATION"] and d0 not in g.tensors and d1 not in g.tensors
    res = specializer.compile(data, name="net", out_dir=tmp_path / "c", verify_each=True)
    assert res.library.layers == 1
    assert_bitexact(data, _x(rng, (1, 3, 4)), tmp_path)


def test_not_folded_non_constant_or_graph_output(tmp_path):
    """Negative cases: a RESHAPE of an activation is not folded (it becomes an alias later), and a constant
    RESHAPE/TRANSPOSE whose output is a graph output stays an op (a kernel writes the output buffer)."""
    rng = np.random.default_rng(4)
    kdata = rng.integers(-128, 128, size=(3, 4)).astype(np.int8)
    mb = ModelBuilder()
    x = mb.input("x", (2, 6), scale=S, zero_point=Z)
    r = mb.tensor("r", (3, 4), scale=S, zero_point=Z)
    mb.op("RESHAPE", [x, mb.const("shape", np.array([3, 4], np.int32))], [r], ops.Reshape((3, 4)))
    mb.output(r)
    k = mb.const("k", kdata, scale=S, zero_point=Z)
    kt = mb.tensor("kt", (4, 3), scale=S, zero_point=Z)
    mb.op("TRANSPOSE", [k, mb.const("perm", np.array([1, 0], np.int32))], [kt])
    mb.output(kt)
    data = mb.build()

    g = fold_constants(load_model(data))
    assert _kinds(g) == ["RESHAPE", "TRANSPOSE"]
    assert not g.t(r).is_const and not g.t(kt).is_const
    res = specializer.compile(data, name="net", out_dir=tmp_path / "c", verify_each=True)
    (tr,) = [op for op in res.graph.ops if op.kind == "TRANSPOSE"]
    assert tr.kernel.entry == "transpose_s8"
    assert_bitexact(data, _x(rng, (2, 6)), tmp_path)
