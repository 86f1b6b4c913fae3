"""Randomized differential tests: int8 MEAN (and SUM, REDUCE_MAX on the same kernel) against TFLite Micro, bit
for bit.

Spatial means of NHWC tensors (axes [1, 2] / [2, 1] / negative spellings, keep_dims true and false) and general
axis sets of rank 1..5 (single axes, all axes, duplicates, non-adjacent axes), equal and different input/output
quantization, zero points at the extremes, up to hundreds of elements per mean. Several MEAN layers share one
model to amortize the compile. Then the one-line errors.
"""
from __future__ import annotations

import numpy as np
import pytest

import specializer
from specializer import ops
from specializer.errors import ShapeError
from specializer.tflite_writer import ModelBuilder
from spz_testutil import assert_bitexact

PER_MODEL = 6


def _zp(rng):
    return int(rng.choice([-128, 127, 0])) if rng.random() < 0.4 else int(rng.integers(-128, 128))


def _case(rng, spatial):
    if spatial:
        shape = (int(rng.integers(1, 3)), int(rng.integers(1, 13)), int(rng.integers(1, 13)), int(rng.integers(1, 10)))
        axes = [[1, 2], [2, 1], [-3, -2], [1, -2]][int(rng.integers(0, 4))]
    else:
        rank = int(rng.integers(1, 6))
        shape = tuple(int(rng.integers(1, 7)) for _ in range(rank))
        k = int(rng.integers(1, rank + 1))
        axes = [int(a) for a in rng.choice(rank, size=k, replace=False)]
        axes = [a - rank if rng.random() < 0.3 else a for a in axes]
        if rng.random() < 0.15:
            axes = axes + axes[:1]  # a duplicate axis counts once
    return shape, axes


def _model(seed, spatial, kind="MEAN"):
    rng = np.random.default_rng(seed)
    mb = ModelBuilder()
    shapes = []
    for i in range(PER_MODEL):
        shape, axes = _case(rng, spatial)
        keep = bool(rng.random() < 0.5)
        red = {a % len(shape) for a in axes}
        oshape = tuple(1 if d in red else n for d, n in enumerate(shape)) if keep else \
            tuple(n for d, n in enumerate(shape) if d not in red)
        s_in, z_in = float(10 ** rng.uniform(-3, 0)), _zp(rng)
        s_out, z_out = (s_in, z_in) if (rng.random() < 0.3 or kind == "REDUCE_MAX") else \
            (s_in * float(10 ** rng.uniform(-1, 1)) * (float(np.prod(shape)) if kind == "SUM" else 1.0), _zp(rng))
        x = mb.input(f"x{i}", shape, "int8", s_in, z_in)
        ax = mb.const(f"axes{i}", np.asarray(axes, dtype=np.int32))
        y = mb.tensor(f"y{i}", oshape, "int8", s_out, z_out)
        mb.op(kind, [x, ax], [y], ops.Reducer(keep_dims=keep))
        mb.output(y)
        shapes.append(shape)
    sets = []
    for k in range(2):
        lo, hi = (-128, 127) if k == 0 else sorted(rng.integers(-128, 128, 2).tolist())
        sets.append([rng.integers(lo, hi + 1, size=sh).astype(np.int8) for sh in shapes])
    return mb.build(), sets


@pytest.mark.parametrize("seed", range(2))
def test_mean_spatial_random(seed, tmp_path, sweep):
    for rep in range(sweep(1)):
        data, ins = _model(10 * seed + rep, spatial=True)
        assert_bitexact(data, ins, tmp_path / f"r{rep}")


@pytest.mark.parametrize("seed", range(3))
def test_mean_axes_random(seed, tmp_path, sweep):
    for rep in range(sweep(1)):
        data, ins = _model(500 + 10 * seed + rep, spatial=False)
        assert_bitexact(data, ins, tmp_path / f"r{rep}")


def test_mean_large_window(tmp_path):
    """A 1x40x40x3 global average (1600 elements per mean: the 1/n shift saturates at the shift clamp)."""
    rng = np.random.default_rng(1)
    mb = ModelBuilder()
    x = mb.input("x", (1, 40, 40, 3), "int8", 0.02, -128)
    ax = mb.const("axes", np.asarray([1, 2], dtype=np.int32))
    y = mb.tensor("y", (1, 3), "int8", 0.0005, 5)
    mb.op("MEAN", [x, ax], [y], ops.Reducer(keep_dims=False))
    mb.output(y)
    ins = [[rng.integers(-128, 128, size=(1, 40, 40, 3)).astype(np.int8)] for _ in range(2)]
    assert_bitexact(mb.build(), ins, tmp_path)


def test_errors(tmp_path):
    mb = ModelBuilder()
    x = mb.input("x", (1, 4, 4, 3), "int8", 0.1, 0)
    ax = mb.const("axes", np.asarray([4], dtype=np.int32))
    y = mb.tensor("y", (1, 4, 4), "int8", 0.1, 0)
    mb.op("MEAN", [x, ax], [y], ops.Reducer())
    mb.output(y)
    with pytest.raises(ShapeError, match="axes"):
        specializer.compile(mb.build(), out_dir=tmp_path / "a")
    mb = ModelBuilder()
    x = mb.input("x", (1, 4, 4, 3), "int8", 0.1, 0)
    ax = mb.const("axes", np.asarray([1, 2], dtype=np.int32))
    y = mb.tensor("y", (1, 5), "int8", 0.1, 0)
    mb.op("MEAN", [x, ax], [y], ops.Reducer())
    mb.output(y)
    with pytest.raises(ShapeError, match="output has 5 elements"):
        specializer.compile(mb.build(), out_dir=tmp_path / "b")


@pytest.mark.parametrize("kind,seed", [("SUM", 31), ("SUM", 32), ("REDUCE_MAX", 33), ("REDUCE_MAX", 34)])
def test_sum_and_reduce_max_random(kind, seed, tmp_path):
    model, sets = _model(seed, spatial=seed % 2 == 0, kind=kind)
    assert_bitexact(model, sets, tmp_path)


def test_mean_sum_max_in_simulator(tmp_path):
    """MEAN, SUM and REDUCE_MAX in the simulated Cortex-M4."""
    from spz_randlayers import sim_mismatches

    for kind, seed in (("MEAN", 35), ("SUM", 36), ("REDUCE_MAX", 37)):
        model, sets = _model(seed, spatial=False, kind=kind)
        bad, _ = sim_mismatches(model, sets, tmp_path / kind, opt="-O2")
        assert not bad, f"{kind}: {bad[:5]}"
