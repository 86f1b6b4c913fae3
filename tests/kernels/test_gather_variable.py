"""GATHER with indices computed at run time (issue #9): indices from an int32 model input and from ARG_MAX, any
axis and index shape, against tflite-micro on the host (generic and Cortex-M4 builds, ASan/UBSan) and once in
the simulator; an index outside the axis makes `<name>_run` return 1 (TFLite Micro's invoke fails) without
reading outside the input."""
from __future__ import annotations

import numpy as np
import pytest

import specializer
from specializer.runtime.hostrun import HostRunError
from specializer import ops
from specializer.oracle import compare, run_tflm
from specializer.tflite_writer import ModelBuilder


def _model(rng, n_layers: int):
    """n_layers GATHERs, each with its own int8 data input and int32 index input; returns (bytes, input makers)."""
    mb = ModelBuilder()
    makers = []
    for i in range(n_layers):
        shape = tuple(int(v) for v in rng.integers(1, 6, size=int(rng.integers(1, 4))))
        rank = len(shape)
        ax = int(rng.integers(-rank, rank))
        a = ax + rank if ax < 0 else ax
        ishape = tuple(int(v) for v in rng.integers(1, 4, size=int(rng.integers(1, 3))))
        q = dict(scale=float(10 ** rng.uniform(-2, 0)), zero_point=int(rng.integers(-128, 128)))
        x = mb.input(f"x{i}", shape, **q)
        idx = mb.input(f"i{i}", ishape, "int32")
        y = mb.tensor(f"y{i}", shape[:a] + ishape + shape[a + 1:], **q)
        mb.op("GATHER", [x, idx], [y], ops.Gather(axis=ax))
        mb.output(y)
        makers.append((shape, ishape, shape[a]))
    return mb.build(), makers


def _inputs(rng, makers, bad=False):
    xs = []
    for shape, ishape, n in makers:
        xs.append(rng.integers(-128, 128, size=shape).astype(np.int8))
        ix = rng.integers(0, n, size=ishape).astype(np.int32)
        if bad:
            ix.reshape(-1)[0] = n if rng.random() < 0.5 else -1
        xs.append(ix)
    return xs


@pytest.mark.parametrize("target,seed", [(None, 131), ("cortex-m4", 132)])
def test_variable_indices_bit_exact(tmp_path, target, seed, sweep):
    rng = np.random.default_rng(seed)
    for m in range(sweep(2)):
        model, makers = _model(rng, 6)
        bad = compare(model, [_inputs(rng, makers) for _ in range(3)], tmp_path / f"m{m}", target=target)
        assert not bad, bad[:3]


def test_indices_from_arg_max(tmp_path):
    """ARG_MAX over the channels picks a row per pixel; GATHER reads those rows of a second tensor."""
    rng = np.random.default_rng(133)
    mb = ModelBuilder()
    s = mb.input("s", (1, 4, 5), scale=0.05, zero_point=3)
    table = mb.input("t", (5, 6), scale=0.1, zero_point=-7)
    am = mb.tensor("am", (1, 4), "int32")
    mb.op("ARG_MAX", [s, mb.const("axis", np.array([2], np.int32))], [am], ops.ArgMinMax(output_type="int32"))
    y = mb.tensor("y", (5, 1, 4), scale=0.1, zero_point=-7)
    mb.op("GATHER", [table, am], [y], ops.Gather(axis=1))
    mb.output(y)
    model = mb.build()
    ins = [[rng.integers(-128, 128, (1, 4, 5)).astype(np.int8), rng.integers(-128, 128, (5, 6)).astype(np.int8)]
           for _ in range(4)]
    for target in (None, "cortex-m4"):
        assert not compare(model, ins, tmp_path / str(target), target=target)


def test_out_of_range_index_fails_the_run(tmp_path):
    """TFLite Micro fails the invoke; the library's run returns 1 (under ASan: nothing read outside the input)."""
    rng = np.random.default_rng(134)
    model, makers = _model(rng, 3)
    good = _inputs(rng, makers)
    worse = _inputs(rng, makers, bad=True)
    with pytest.raises(Exception):
        run_tflm(model, worse)
    res = specializer.compile(model, name="g", out_dir=tmp_path / "o", target="cortex-m4")
    lib = res.host_library(sanitize=True)
    lib.run(good)
    with pytest.raises(HostRunError, match="returned 1"):
        lib.run(worse)


def test_variable_indices_in_simulator(tmp_path):
    from spz_randlayers import sim_mismatches

    rng = np.random.default_rng(135)
    model, makers = _model(rng, 8)
    bad, _ = sim_mismatches(model, [_inputs(rng, makers) for _ in range(2)], tmp_path / "s", opt="-O2")
    assert not bad, bad[:3]
