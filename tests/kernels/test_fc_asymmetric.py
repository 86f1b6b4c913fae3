"""FULLY_CONNECTED with asymmetric int8 weights (a non-zero weight zero point, per tensor), as TFLite Micro runs
it: acc = bias + sum((x - zp_x) * (w - zp_w)). The generic kernel takes it on every core (the specialized
kernels need symmetric weights and decline with their reason); bit-exact against tflite-micro on the host under
ASan, generic and Cortex-M4 builds."""
from __future__ import annotations

import numpy as np
import pytest

from specializer import ops
from specializer.api import lower
from specializer.oracle import compare
from specializer.tflite_writer import ModelBuilder
from spz_randlayers import compare_in_batches, random_inputs


def _model(rng, n):
    mb = ModelBuilder()
    specs, descs = [], []
    for i in range(n):
        k = int(rng.choice([1, 3, 8, 17, 64, 100]))
        r = int(rng.choice([1, 2, 5, 10, 33]))
        b = int(rng.choice([1, 1, 3]))
        in_s, in_zp = float(10 ** rng.uniform(-2, -0.5)), int(rng.integers(-128, 128))
        w_zp = int(rng.choice([-128, 127, 1, -5, int(rng.integers(-128, 128))]))
        w_s = float(10 ** rng.uniform(-3, -1))
        wq = rng.integers(-128, 128, (r, k)).astype(np.int8)
        acc = 128 * 128 * np.sqrt(k)
        out_s = float(in_s * w_s * acc / 60 * 10 ** rng.uniform(-0.3, 0.3))
        act = str(rng.choice(["NONE", "RELU", "RELU6"]))
        x = mb.input(f"x{i}", (b, k), scale=in_s, zero_point=in_zp)
        w = mb.const(f"w{i}", wq, scale=w_s, zero_point=w_zp)
        bias = None
        if rng.random() < 0.7:
            bias = mb.const(f"b{i}", (rng.uniform(-1, 1, r) * acc).astype(np.int32), scale=in_s * w_s)
        y = mb.tensor(f"y{i}", (b, r), scale=out_s, zero_point=int(rng.integers(-128, 128)))
        mb.op("FULLY_CONNECTED", [x, w, bias], [y], ops.FullyConnected(activation=act))
        mb.output(y)
        specs.append(((b, k), in_zp))
        descs.append(f"fc {b}x{k} -> {r} w_zp={w_zp} bias={bias is not None} {act}")
    return mb.build(), specs, descs


@pytest.mark.parametrize("target,seed", [(None, 101), ("cortex-m4", 102)])
def test_asymmetric_weights(tmp_path, target, seed, sweep):
    rng = np.random.default_rng(seed)

    def make(r, k):
        model, specs, descs = _model(r, k)
        g, _ = lower(model, target)
        assert all(op.kernel.entry == "fully_connected_s8" for op in g.ops if op.kind == "FULLY_CONNECTED")
        return model, specs, descs

    compare_in_batches(tmp_path, rng, sweep(16), 8, make, target)

def test_asymmetric_weights_in_simulator(tmp_path):
    from spz_randlayers import sim_mismatches

    rng = np.random.default_rng(103)
    model, specs, descs = _model(rng, 8)
    bad, _ = sim_mismatches(model, random_inputs(rng, specs, n_sets=2), tmp_path / "m", opt="-O3")
    assert not bad, "; ".join(f"input #{c} output {o} ({descs[o]}) at {i}" for c, o, i in bad[:5])
