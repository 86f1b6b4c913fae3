"""The GRU keyword spotter the project's writer builds (`specializer.zoo.gru_kws`: a Keras GRU unrolled as TFLite
converts it, 16 steps of STRIDED_SLICE, FULLY_CONNECTED x2, SPLIT x2, ADD, LOGISTIC, MUL, TANH, SUB, 258 layers):
bit-exact with tflite-micro on the host (generic and Cortex-M4 builds, ASan) and in the simulated Cortex-M4."""
from __future__ import annotations

import numpy as np

from specializer import zoo
from specializer.oracle import compare
from spz_randlayers import sim_mismatches


def _frames(rng, n):
    return [[rng.integers(-128, 128, (1, 16, 10)).astype(np.int8)] for _ in range(n)]


def test_gru_host(tmp_path):
    model = zoo.gru_kws()
    rng = np.random.default_rng(151)
    for target in (None, "cortex-m4"):
        bad = compare(model, _frames(rng, 3), tmp_path / f"h{target}", target=target)
        assert not bad, f"{target}: " + "; ".join(map(str, bad[:3]))


def test_gru_in_simulator(tmp_path):
    model = zoo.gru_kws()
    bad, res = sim_mismatches(model, _frames(np.random.default_rng(152), 2), tmp_path / "m", opt="-O3")
    assert not bad, bad[:3]
    kinds = {op.kind for op in res.graph.ops}
    assert {"FULLY_CONNECTED", "LOGISTIC", "TANH", "MUL", "SUB", "ADD"} <= kinds


def test_gru_is_deterministic():
    assert zoo.gru_kws() == zoo.gru_kws()
