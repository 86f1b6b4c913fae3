"""BATCH_MATMUL int8 against tflite-micro: ranks 2..5, broadcast batch dimensions, adj_x / adj_y, both operands
variable or the right one constant, zero points anywhere; host under ASan (generic and Cortex-M4 builds) and in
the simulated Cortex-M4."""
from __future__ import annotations

import numpy as np
import pytest

from specializer import ops
from spz_randlayers import compare_in_batches, layers_model, random_inputs, sim_mismatches


def _layer(mb, rng, i):
    n = int(rng.integers(0, 4))
    batch = [int(v) for v in rng.integers(1, 4, size=n)]
    lb = [d if rng.random() < 0.7 else 1 for d in batch]
    rb = [d if rng.random() < 0.7 else 1 for d in batch]
    if rng.random() < 0.3 and rb:
        rb = rb[int(rng.integers(0, len(rb) + 1)):]  # fewer batch dims on one side
    rows, depth, cols = (int(v) for v in rng.integers(1, 9, size=3))
    ax, ay = bool(rng.random() < 0.5), bool(rng.random() < 0.5)
    lshape = tuple(lb) + ((depth, rows) if ax else (rows, depth))
    rshape = tuple(rb) + ((cols, depth) if ay else (depth, cols))
    rbp = [1] * (len(lb) - len(rb)) + rb
    out = tuple(max(a, b) for a, b in zip(lb, rbp)) + (rows, cols)
    ls, rs = float(10 ** rng.uniform(-2, -0.5)), float(10 ** rng.uniform(-2, -0.5))
    lz, rz = int(rng.integers(-128, 128)), int(rng.integers(-128, 128))
    ys = float(ls * rs * 128 * 128 * np.sqrt(depth) / 60 * 10 ** rng.uniform(-0.3, 0.3))
    x = mb.input(f"l{i}", lshape, scale=ls, zero_point=lz)
    specs = [(lshape, lz)]
    if rng.random() < 0.3:
        r = mb.const(f"r{i}", rng.integers(-128, 128, rshape).astype(np.int8), scale=rs, zero_point=rz)
    else:
        r = mb.input(f"r{i}", rshape, scale=rs, zero_point=rz)
        specs.append((rshape, rz))
    y = mb.tensor(f"y{i}", out, scale=ys, zero_point=int(rng.integers(-128, 128)))
    mb.op("BATCH_MATMUL", [x, r], [y], ops.BatchMatMul(adj_x=ax, adj_y=ay))
    mb.output(y)
    return specs, f"bmm {lshape} x {rshape} adj {ax},{ay} -> {out}"


def _model(rng, n):
    return layers_model(rng, n, _layer)


@pytest.mark.parametrize("target,seed", [(None, 141), ("cortex-m4", 142)])
def test_random_batch_matmuls(tmp_path, target, seed, sweep):
    compare_in_batches(tmp_path, np.random.default_rng(seed), sweep(24), 8, _model, target)


def test_batch_matmuls_in_simulator(tmp_path):
    rng = np.random.default_rng(143)
    model, specs, descs = _model(rng, 8)
    bad, _ = sim_mismatches(model, random_inputs(rng, specs, n_sets=2), tmp_path / "m", opt="-O2")
    assert not bad, "; ".join(f"input #{c} output {o} ({descs[o]}) first at {i}" for c, o, i in bad[:6])
