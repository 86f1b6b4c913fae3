"""Randomized differential tests: ADD, SUB, MUL, MAXIMUM, MINIMUM and standalone RELU/RELU6 against TFLite Micro.

Each model holds several independent random layers (own inputs, own output) so one compile covers many cases;
every model runs on full-range and narrow-range int8 inputs. Parameter space: same shapes and numpy broadcasts
of rank 1..6 (scalar-like, per-channel, outer and inner broadcast, either side), odd extents, scales over three
orders of magnitude, zero points at -128/127, every fused activation (ADD/SUB/MUL). Then the one-line errors.
"""
from __future__ import annotations

import numpy as np
import pytest

import specializer
from specializer import ops
from specializer.errors import ShapeError
from specializer.tflite_writer import ModelBuilder
from spz_testutil import assert_bitexact, broadcast_shapes

BINARY = ("ADD", "SUB", "MUL", "MAXIMUM", "MINIMUM")
ACTS = ("NONE", "RELU", "RELU6", "RELU_N1_TO_1")
PER_MODEL = 6


def _zp(rng):
    return int(rng.choice([-128, 127, 0])) if rng.random() < 0.4 else int(rng.integers(-128, 128))


def _scale(rng, lo=-3.0, hi=0.0):
    return float(10 ** rng.uniform(lo, hi))


def _add_binary(mb, rng, kind, i):
    sa, sb = broadcast_shapes(rng)
    so = tuple(np.broadcast_shapes(sa, sb))
    s1, s2 = _scale(rng), _scale(rng)
    if kind == "MUL":
        so_scale = s1 * s2 * float(10 ** rng.uniform(-1.5, 2.5))
    elif kind in ("ADD", "SUB"):
        so_scale = max(s1, s2) * float(10 ** rng.uniform(-0.7, 1.3))
    else:
        so_scale = s1
    act = str(rng.choice(ACTS)) if kind in ("ADD", "SUB", "MUL") else "NONE"
    zo = _zp(rng)
    if act == "RELU_N1_TO_1":
        so_scale, zo = float(10 ** rng.uniform(-2.5, -1.5)), int(rng.integers(-60, 61))
    a = mb.input(f"a{i}", sa, "int8", s1, _zp(rng))
    b = mb.input(f"b{i}", sb, "int8", s2, _zp(rng))
    y = mb.tensor(f"y{i}", so, "int8", so_scale, zo)
    attrs = ops.Elementwise(activation=act) if kind in ("ADD", "SUB", "MUL") else None
    mb.op(kind, [a, b], [y], attrs)
    mb.output(y)


def _inputs(rng, model_bytes, n=2):
    """Full-range and narrow-range int8 inputs for every model input."""
    from specializer.frontend import load_model

    g = load_model(model_bytes)
    sets = []
    for k in range(n):
        lo, hi = (-128, 127) if k == 0 else sorted(rng.integers(-128, 128, 2).tolist())
        sets.append([rng.integers(lo, hi + 1, size=g.t(t).shape).astype(np.int8) for t in g.inputs])
    return sets


def _build_binary(seed, kind=None):
    rng = np.random.default_rng(seed)
    mb = ModelBuilder()
    for i in range(PER_MODEL):
        _add_binary(mb, rng, kind or str(rng.choice(BINARY)), i)
    return mb.build(), rng


@pytest.mark.parametrize("kind", BINARY)
@pytest.mark.parametrize("seed", range(2))
def test_binary_random(kind, seed, tmp_path, sweep):
    for rep in range(sweep(1)):
        data, rng = _build_binary(1000 * seed + 7 * rep + BINARY.index(kind), kind)
        assert_bitexact(data, _inputs(rng, data), tmp_path / f"r{rep}")


def test_binary_mixed(tmp_path, sweep):
    for rep in range(sweep(2)):
        data, rng = _build_binary(50_000 + rep)
        assert_bitexact(data, _inputs(rng, data), tmp_path / f"r{rep}")


def _relu_model(seed):
    rng = np.random.default_rng(seed)
    mb = ModelBuilder()
    for i in range(PER_MODEL):
        kind = ("RELU", "RELU6")[i % 2]
        shape = tuple(int(rng.integers(1, 8)) for _ in range(int(rng.integers(1, 5))))
        s_in = float(6 / 255 * 10 ** rng.uniform(-1, 1)) if kind == "RELU6" else _scale(rng)
        same = rng.random() < 0.25
        s_out, z_out = (s_in, None) if same else (s_in * float(10 ** rng.uniform(-1, 1)), _zp(rng))
        z_in = _zp(rng)
        x = mb.input(f"x{i}", shape, "int8", s_in, z_in)
        y = mb.tensor(f"y{i}", shape, "int8", s_out, z_in if z_out is None else z_out)
        mb.op(kind, [x], [y])
        mb.output(y)
    return mb.build(), rng


@pytest.mark.parametrize("seed", range(2))
def test_relu_standalone_random(seed, tmp_path, sweep):
    for rep in range(sweep(1)):
        data, rng = _relu_model(300 + 10 * seed + rep)
        assert_bitexact(data, _inputs(rng, data), tmp_path / f"r{rep}")


def test_inplace_chain(tmp_path):
    """ADD -> MUL -> RELU chain where the planner may reuse buffers in place; same shapes throughout."""
    rng = np.random.default_rng(9)
    mb = ModelBuilder()
    a = mb.input("a", (1, 5, 5, 7), "int8", 0.05, 3)
    b = mb.input("b", (1, 5, 5, 7), "int8", 0.03, -128)
    t = mb.tensor("t", (1, 5, 5, 7), "int8", 0.06, -5)
    mb.op("ADD", [a, b], [t], ops.Elementwise())
    u = mb.tensor("u", (1, 5, 5, 7), "int8", 0.1, 2)
    mb.op("MUL", [t, t], [u], ops.Elementwise(activation="RELU"))
    v = mb.tensor("v", (1, 5, 5, 7), "int8", 0.05, -100)
    mb.op("RELU", [u], [v])
    w = mb.tensor("w", (1, 5, 5, 7), "int8", 0.05, -100)
    mb.op("SUB", [v, a], [w], ops.Elementwise())
    mb.output(w)
    data = mb.build()
    assert_bitexact(data, _inputs(rng, data, 3), tmp_path)


def _single(kind, sa, sb, so, attrs=None):
    mb = ModelBuilder()
    a = mb.input("a", sa, "int8", 0.1, 0)
    b = mb.input("b", sb, "int8", 0.1, 0)
    y = mb.tensor("y", so, "int8", 0.1, 0)
    mb.op(kind, [a, b], [y], attrs)
    mb.output(y)
    return mb.build()


def test_errors(tmp_path):
    with pytest.raises(ShapeError, match="do not broadcast"):
        specializer.compile(_single("ADD", (2, 3), (4, 3), (4, 3), ops.Elementwise()), out_dir=tmp_path / "a")
    with pytest.raises(ShapeError, match="is not the broadcast"):
        specializer.compile(_single("MAXIMUM", (2, 3), (1, 3), (3, 2)), out_dir=tmp_path / "b")
    mb = ModelBuilder()
    x = mb.input("x", (4,), "int8", 0.1, 0)
    y = mb.tensor("y", (4,), "int8", 0.1, 0)
    z = mb.tensor("z", (4,), "int8", 0.05, 3)
    mb.op("QUANTIZE", [x], [y])
    mb.op("RELU_N1_TO_1", [y], [z])
    mb.output(z)
    with pytest.raises(ShapeError, match="RELU_N1_TO_1"):
        specializer.compile(mb.build(), out_dir=tmp_path / "c")
    mb = ModelBuilder()  # ADD output scale so small that TFLM's rescaling multiplier would exceed 1
    a = mb.input("a", (4,), "int8", 1.0, 0)
    b = mb.input("b", (4,), "int8", 1.0, 0)
    y = mb.tensor("y", (4,), "int8", 1e-7, 0)
    mb.op("ADD", [a, b], [y], ops.Elementwise())
    mb.output(y)
    with pytest.raises(ShapeError, match="output scale too small"):
        specializer.compile(mb.build(), out_dir=tmp_path / "d")
