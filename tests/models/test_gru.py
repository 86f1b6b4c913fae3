"""The GRU keyword spotter the project's writer builds (`specializer.zoo.gru_kws`: a Keras GRU unrolled as TFLite
converts it, 16 steps of STRIDED_SLICE, FULLY_CONNECTED x2, SPLIT x2, ADD, LOGISTIC, MUL, TANH, SUB, 258 layers):
bit-exact with tflite-micro on the host (generic and Cortex-M4 builds, ASan) and in the simulated Cortex-M4.
The same network in the converter's WHILE form (`zoo.gru_kws_while`: counter, `i < 16`, a body GATHERing row i and
computing one step, the classifier after the loop) is bit-exact with tflite-micro running the loop, unrolls to the
same graph, and gives the same int8 outputs as the unrolled form quantized like a loop body (one quantization per
tensor for all steps)."""
from __future__ import annotations

import numpy as np

import specializer
from specializer import zoo
from specializer.frontend import load_model
from specializer.oracle import compare, run_tflm
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


# ---- the WHILE form -----------------------------------------------------------------------------------------------
def test_gru_while_host(tmp_path):
    model = zoo.gru_kws_while()
    rng = np.random.default_rng(161)
    for target in (None, "cortex-m4"):
        bad = compare(model, _frames(rng, 3), tmp_path / f"h{target}", target=target)
        assert not bad, f"{target}: " + "; ".join(map(str, bad[:3]))


def test_gru_while_in_simulator(tmp_path):
    bad, res = sim_mismatches(zoo.gru_kws_while(), _frames(np.random.default_rng(162), 2), tmp_path / "m",
                              opt="-O3")
    assert not bad, bad[:3]
    assert res.graph.meta["unrolled_loops"] == ((0, 16),)


def _kinds(ops):
    return sorted("ROW" if op.kind in ("GATHER", "STRIDED_SLICE") else op.kind for op in ops)


def test_gru_while_unrolls_to_the_unrolled_graph():
    """Imported: the loop becomes 16 copies of the body (GATHER at a constant index where the unrolled form has
    STRIDED_SLICE), the three weight matrices shared by every step; compiled: the same layers as the unrolled form."""
    w, u = zoo.gru_kws_while(), zoo.gru_kws()
    gw, gu = load_model(w), load_model(u)
    assert gw.meta["unrolled_loops"] == ((0, 16),)
    assert _kinds(gw.ops) == _kinds(gu.ops) and len(gw.ops) == len(gu.ops) == 258
    gathers = [op for op in gw.ops if op.kind == "GATHER"]
    assert [int(gw.tensors[op.inputs[1]].data) for op in gathers] == list(range(16))
    for g in (gw, gu):
        fcs = [op for op in g.ops if op.kind == "FULLY_CONNECTED"]
        assert len(fcs) == 33 and len({op.inputs[1] for op in fcs}) == 3
    cw, cu = (specializer.compile(m, out_dir=None, target="cortex-m4").graph for m in (w, u))
    assert _kinds(cw.ops) == _kinds(cu.ops)
    assert sum(op.kind == "FULLY_CONNECTED" for op in cw.ops) == 33


def test_gru_while_outputs_match_the_unrolled_form(tmp_path):
    """The WHILE form and the unrolled form with the same (loop-body) quantization give identical int8 outputs,
    in tflite-micro and in the compiled library. The default unrolled `gru_kws` is NOT identical: it quantizes
    every step's tensors (and the state) to that step's own calibrated range, which a loop body cannot express
    (one tensor, one quantization, for all 16 iterations), so its outputs differ by rounding (a few LSB)."""
    w, shared, per_step = zoo.gru_kws_while(), zoo.gru_kws(shared_quant=True), zoo.gru_kws()
    lib = specializer.compile(w, out_dir=tmp_path / "w").host_library()
    worst = 0
    for [x] in _frames(np.random.default_rng(163), 4):
        want = run_tflm(w, [x])[0]
        np.testing.assert_array_equal(run_tflm(shared, [x])[0], want)
        np.testing.assert_array_equal(lib.run([x])[0].reshape(want.shape), want)
        worst = max(worst, int(np.abs(run_tflm(per_step, [x])[0].astype(int) - want).max()))
    assert worst <= 4


def test_gru_while_is_deterministic():
    assert zoo.gru_kws_while() == zoo.gru_kws_while() == zoo.gru_kws(form="while")
