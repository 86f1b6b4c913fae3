"""Tests of passes.eliminate_reshapes: RESHAPE/SQUEEZE/EXPAND_DIMS become aliases, the C has no copy for them,
and the compiled model stays bit-exact with TFLM (graph outputs that are aliases, chains, inputs read twice)."""
from __future__ import annotations

import numpy as np

import specializer
from specializer import ops
from specializer.frontend.tflite_import import load_model
from specializer.passes.eliminate_reshapes import eliminate_reshapes
from specializer.tflite_writer import ModelBuilder
from spz_testutil import assert_bitexact

S, Z = 0.05, -3


def _reshape(mb, src, shape, name):
    out = mb.tensor(name, shape, scale=S, zero_point=Z)
    mb.op("RESHAPE", [src, mb.const(name + "_shape", np.array(shape, np.int32))], [out], ops.Reshape(tuple(shape)))
    return out


def _fc(mb, src, depth, units, name, rng):
    w = mb.const(name + "_w", rng.integers(-127, 128, size=(units, depth)).astype(np.int8), scale=0.01)
    out = mb.tensor(name, (1, units), scale=0.2, zero_point=5)
    mb.op("FULLY_CONNECTED", [src, w, None], [out], ops.FullyConnected())
    return out


def _compile(data, tmp_path):
    return specializer.compile(data, name="net", out_dir=tmp_path / "c", verify_each=True)


def _x(rng, shape, n=2):
    return [[rng.integers(-128, 128, size=shape).astype(np.int8)] for _ in range(n)]


def test_alias_set_and_no_copy_emitted(tmp_path):
    """x[1,2,3,4] -> RESHAPE -> [1,24] -> FULLY_CONNECTED: the RESHAPE aliases x, and no copy appears in C."""
    rng = np.random.default_rng(0)
    mb = ModelBuilder()
    x = mb.input("x", (1, 2, 3, 4), scale=S, zero_point=Z)
    r = _reshape(mb, x, (1, 24), "r")
    mb.output(_fc(mb, r, 24, 5, "y", rng))
    data = mb.build()

    g = eliminate_reshapes(load_model(data))
    (rs,) = [op for op in g.ops if op.kind == "RESHAPE"]
    assert rs.alias_of == x

    res = _compile(data, tmp_path)
    (rs,) = [op for op in res.graph.ops if op.kind == "RESHAPE"]
    assert rs.alias_of == x and rs.kernel is None
    plan = res.graph.memory_plan
    assert plan.offsets[r] == plan.offsets[x]
    src = res.library.files["net.c"]
    assert "RESHAPE" in src and "alias, no code" in src
    assert "reshape_copy" not in src and "memmove" not in src
    assert res.library.layers == 1
    assert_bitexact(data, _x(rng, (1, 2, 3, 4)), tmp_path)


def test_reshape_output_is_graph_output(tmp_path):
    """FC -> h -> RESHAPE -> y (graph output): y is h's bytes; the output accessor points at them."""
    rng = np.random.default_rng(1)
    mb = ModelBuilder()
    x = mb.input("x", (1, 10), scale=S, zero_point=Z)
    h = _fc(mb, x, 10, 12, "h", rng)
    y = mb.tensor("y", (3, 4), scale=0.2, zero_point=5)
    mb.op("RESHAPE", [h, mb.const("shape", np.array([3, 4], np.int32))], [y], ops.Reshape((3, 4)))
    mb.output(y)
    data = mb.build()
    res = _compile(data, tmp_path)
    (rs,) = [op for op in res.graph.ops if op.kind == "RESHAPE"]
    assert rs.alias_of == h
    assert res.graph.memory_plan.offsets[y] == res.graph.memory_plan.offsets[h]
    assert "reshape_copy" not in res.library.files["net.c"]
    assert_bitexact(data, _x(rng, (1, 10)), tmp_path)


def test_input_reshaped_straight_to_output(tmp_path):
    """A graph input reshaped straight to a graph output shares its bytes; run() leaves them unchanged."""
    rng = np.random.default_rng(2)
    mb = ModelBuilder()
    x = mb.input("x", (2, 6), scale=S, zero_point=Z)
    mb.output(_reshape(mb, x, (3, 4), "y"))
    data = mb.build()
    res = _compile(data, tmp_path)
    assert res.library.layers == 0
    assert_bitexact(data, _x(rng, (2, 6)), tmp_path)


def test_chain_of_reshapes(tmp_path):
    """RESHAPE -> SQUEEZE -> EXPAND_DIMS -> RESHAPE -> FC: the whole chain is one buffer, no code."""
    rng = np.random.default_rng(3)
    mb = ModelBuilder()
    x = mb.input("x", (1, 4, 6), scale=S, zero_point=Z)
    a = _reshape(mb, x, (1, 1, 24, 1), "a")
    b = mb.tensor("b", (1, 24), scale=S, zero_point=Z)
    mb.op("SQUEEZE", [a], [b], ops.Squeeze((1, 3)))
    c = mb.tensor("c", (1, 24, 1), scale=S, zero_point=Z)
    mb.op("EXPAND_DIMS", [b, mb.const("axis", np.array([2], np.int32))], [c])
    d = _reshape(mb, c, (1, 24), "d")
    mb.output(_fc(mb, d, 24, 7, "y", rng))
    data = mb.build()
    res = _compile(data, tmp_path)
    chain = [op for op in res.graph.ops if op.kind in ("RESHAPE", "SQUEEZE", "EXPAND_DIMS")]
    assert len(chain) == 4 and all(op.alias_of is not None for op in chain)
    offs = res.graph.memory_plan.offsets
    assert len({offs[t] for t in (x, a, b, c, d)}) == 1
    assert res.library.layers == 1 and "reshape_copy" not in res.library.files["net.c"]
    assert_bitexact(data, _x(rng, (1, 4, 6)), tmp_path)


def test_aliased_input_also_read_later(tmp_path):
    """x is read through its alias r by one op and directly by a later op: the buffer lives until both ran."""
    rng = np.random.default_rng(4)
    mb = ModelBuilder()
    x = mb.input("x", (1, 3, 4), scale=S, zero_point=Z)
    r = _reshape(mb, x, (1, 12), "r")
    mb.output(_fc(mb, r, 12, 6, "y0", rng))
    t = mb.tensor("t", (1, 4, 3), scale=S, zero_point=Z)
    mb.op("TRANSPOSE", [x, mb.const("perm", np.array([0, 2, 1], np.int32))], [t])
    mb.output(t)
    mb.output(r)  # the alias itself is an output too
    data = mb.build()
    res = _compile(data, tmp_path)
    (rs,) = [op for op in res.graph.ops if op.kind == "RESHAPE"]
    assert rs.alias_of == x
    assert_bitexact(data, _x(rng, (1, 3, 4)), tmp_path)


def test_not_aliased_when_source_is_constant(tmp_path):
    """Negative case: a constant reshaped straight into a graph output is not aliased; the copy kernel runs."""
    rng = np.random.default_rng(5)
    mb = ModelBuilder()
    x = mb.input("x", (1, 4), scale=S, zero_point=Z)
    mb.output(_fc(mb, x, 4, 3, "y", rng))
    k = mb.const("k", rng.integers(-128, 128, size=(2, 6)).astype(np.int8), scale=S, zero_point=Z)
    mb.output(_reshape(mb, k, (3, 4), "kr"))
    data = mb.build()
    g = eliminate_reshapes(load_model(data))
    (rs,) = [op for op in g.ops if op.kind == "RESHAPE"]
    assert rs.alias_of is None
    res = _compile(data, tmp_path)
    (rs,) = [op for op in res.graph.ops if op.kind == "RESHAPE"]
    assert rs.kernel.entry == "reshape_copy"
    assert_bitexact(data, _x(rng, (1, 4)), tmp_path)


def test_requantizing_reshape_takes_no_bytes(tmp_path):
    """A reshape that changes the quantization (RESHAPE, then an int8 -> int8 QUANTIZE) costs no second buffer:
    the reshape is an alias and the requantization runs in place over it (issue #7, part 2)."""
    from specializer.api import lower

    rng = np.random.default_rng(5)
    mb = ModelBuilder()
    x = mb.input("x", (1, 8, 8, 16), scale=S, zero_point=Z)
    p = mb.tensor("p", (1, 8, 8, 16), scale=S, zero_point=Z)
    mb.op("MAX_POOL_2D", [x], [p], ops.Pool2D(padding="SAME", filter_h=3, filter_w=3))
    r = _reshape(mb, p, (1, 1024), "r")
    q = mb.tensor("q", (1, 1024), scale=0.013, zero_point=40)
    mb.op("QUANTIZE", [r], [q])
    y = _fc(mb, q, 1024, 10, "fc", rng)
    mb.output(y)
    data = mb.build()
    for target in (None, "cortex-m4"):
        g, _ = lower(data, target)
        mp = g.memory_plan
        assert mp.offsets[q] == mp.offsets[r] == mp.offsets[p] and mp.inplace.get(q) == r
        assert mp.arena_size <= 2 * 1024 + 64  # x and one more activation (+ small scratch), never a third
    assert_bitexact(data, [[rng.integers(-128, 128, (1, 8, 8, 16)).astype(np.int8)]], tmp_path)
