"""passes/order_ops: the topological order whose memory plan is smallest. Two branches written in the worst order
(both 4 KB expansions before either reduction) run one branch after the other; chains keep their order; the result
is bit-exact with tflite-micro on the host (generic and DSP kernels) and in the simulator, and the plan checks."""
from __future__ import annotations

import shutil

import numpy as np
import pytest

from specializer import ops
from specializer.api import lower
from specializer.oracle import compare
from specializer.passes.order_ops import _dependencies, _orders, order_ops
from specializer.passes.plan_memory import check_plan, plan_memory
from specializer.tflite_writer import ModelBuilder
from spz_randlayers import random_inputs, sim_mismatches


def _conv(mb, rng, name, x, cin, cout, hw=8):
    w = mb.const(f"w{name}", rng.integers(-127, 128, (cout, 1, 1, cin)).astype(np.int8), scale=0.01)
    b = mb.const(f"b{name}", rng.integers(-500, 500, cout).astype(np.int32), scale=0.0005)
    y = mb.tensor(name, (1, hw, hw, cout), scale=0.2, zero_point=-3)
    mb.op("CONV_2D", [x, w, b], [y], ops.Conv2D(padding="VALID", stride_h=1, stride_w=1, activation="RELU"))
    return y


def _mean(mb, name, x, c):
    ax = mb.const(f"ax{name}", np.array([1, 2], np.int32))
    y = mb.tensor(name, (1, 1, 1, c), scale=0.2, zero_point=-3)
    mb.op("MEAN", [x, ax], [y], ops.Reducer(keep_dims=True))
    return y


def _two_branches():
    """x -> A1 -> m1 (8x8x64) -> MEAN -> r1 ; x -> A2 -> m2 -> MEAN -> r2 ; ADD(r1, r2), written in the worst order
    A1 A2 MEAN MEAN ADD (MEAN is not a windowed layer: no row band takes the expansions)."""
    rng = np.random.default_rng(151)
    mb = ModelBuilder()
    x = mb.input("x", (1, 8, 8, 4), scale=0.05, zero_point=0)
    m1 = _conv(mb, rng, "m1", x, 4, 64)
    m2 = _conv(mb, rng, "m2", x, 4, 64)
    r1 = _mean(mb, "r1", m1, 64)
    r2 = _mean(mb, "r2", m2, 64)
    y = mb.tensor("y", (1, 1, 1, 64), scale=0.3, zero_point=1)
    mb.op("ADD", [r1, r2], [y], ops.Elementwise(activation="NONE"))
    mb.output(y)
    return mb.build()


@pytest.mark.parametrize("target", [None, "cortex-m4"])
def test_branches_run_one_after_the_other(tmp_path, target):
    model = _two_branches()
    g, _ = lower(model, target)
    names = [g.t(op.outputs[0]).name for op in g.ops]
    assert names.index("r1") < names.index("m2") or names.index("r2") < names.index("m1"), names
    written = g.with_ops(sorted(g.ops, key=lambda op: op.index))  # the model's order
    assert g.memory_plan.arena_size < plan_memory(written).memory_plan.arena_size
    check_plan(g)
    rng = np.random.default_rng(152)
    bad = compare(model, random_inputs(rng, [((1, 8, 8, 4), 0)], n_sets=2), tmp_path / "h", target=target)
    assert not bad, bad[:3]


@pytest.mark.skipif(shutil.which("arm-none-eabi-gcc") is None, reason="arm-none-eabi-gcc not installed")
def test_reordered_in_simulator(tmp_path):
    model = _two_branches()
    bad, res = sim_mismatches(model, random_inputs(np.random.default_rng(153), [((1, 8, 8, 4), 0)], n_sets=2),
                              tmp_path / "s")
    assert [op.index for op in res.graph.ops] != sorted(op.index for op in res.graph.ops)
    assert not bad, bad[:3]


def test_orders_are_topological_and_chains_stay():
    g, _ = lower(_two_branches(), "cortex-m4")
    deps = _dependencies(g)
    every = _orders(deps, 1000)
    assert every and len(every) == len({tuple(o) for o in every})
    for o in every:
        pos = {k: i for i, k in enumerate(o)}
        assert all(pos[d] < pos[k] for k in range(len(deps)) for d in deps[k])
    assert _orders(deps, 1) is None  # more orders than the limit
    chain = g.with_ops([op for op in g.ops if g.t(op.outputs[0]).name in ("m1", "r1")])
    assert order_ops(chain) is chain
