"""The specialized Cortex-M kernels on the real instruction path: randomized layers, cross-compiled with
arm-none-eabi-gcc (-O2, -O3 and -Os in turn, int16 and int8 weight variants in turn), run in the simulated Cortex-M4 and compared bit for bit with
tflite-micro. Many independent layers share one ELF (each with its own input and output), so the default run
covers over 300 layer configurations in a few ELFs; `--sweep N` sets the number of layers per test.

Layers: CONV_2D (any kernel, stride, dilation, padding, channels), DEPTHWISE_CONV_2D (multiplier 1 and more),
FULLY_CONNECTED (depth not a multiple of 4, several input rows), ADD/SUB; about 15% with quantization built
to defeat the fast requantization (huge biases, left shifts, dead channels, tiny per-channel scales).
"""
from __future__ import annotations

import shutil

import numpy as np
import pytest

from spz_randlayers import CHANNELS, random_inputs, random_model, sim_mismatches

pytestmark = pytest.mark.skipif(shutil.which("arm-none-eabi-gcc") is None, reason="arm-none-eabi-gcc not installed")

PER_ELF = 24
OPTS = ("-O2", "-O3", "-Os")
BUDGETS = (None, 0, "default")  # int16 weights everywhere, int8 everywhere, the default mix


def _run(tmp_path, seed, n_layers, kinds, core="cortex-m4", prefer=None):
    rng = np.random.default_rng(seed)
    done = m = specialized = 0
    while done < n_layers:
        k = min(PER_ELF, n_layers - done)
        model, specs, descs = random_model(rng, k, kinds)
        inputs = random_inputs(rng, specs, n_sets=2)
        bad, res = sim_mismatches(model, inputs, tmp_path / f"m{m}", core, opt=OPTS[(m + m // 3) % len(OPTS)],
                                  flash_budget=BUDGETS[m % len(BUDGETS)], prefer=prefer)
        kernels = [op.kernel.entry for op in res.graph.ops if op.kernel is not None]
        specialized += sum(e.endswith("_dsp") for e in kernels)
        assert not bad, ("not bit-exact in the simulator: " + "; ".join(
            f"input #{c} output {o} ({descs[o] if o < len(descs) else '?'}) first at {i}" for c, o, i in bad[:6]))
        done += k
        m += 1
    return done, specialized


@pytest.mark.parametrize("kinds,seed,default", [
    (("conv",), 61, 150),
    (("dw",), 62, 100),
    (("fc", "add"), 63, 80),
])
def test_dsp_kernels_bitexact_in_simulator(tmp_path, kinds, seed, default, sweep):
    n, specialized = _run(tmp_path, seed, sweep(default), kinds)
    assert specialized >= n // 2, f"only {specialized} of {n} layers ran a specialized kernel"

# the planar depthwise's forms: blocks looped or unrolled, shifts loaded or specialized
PN_FORMS = ({"PN": True, "PU": True, "PS": True}, {"PN": True, "PU": False, "PS": False},
            {"PN": True, "PU": True, "PS": False})


def test_dsp_depthwise_in_place_in_simulator(tmp_path, sweep):
    """The in-place depthwise (row window in the scratch, output over the input): stride 1, SAME padding (odd and
    even kernels, so asymmetric borders too), the planner placing outputs over inputs."""
    from specializer.tflite_writer import ModelBuilder
    from spz_randlayers import add_conv_layer

    rng = np.random.default_rng(66)
    n = sweep(24)
    for m in range((n + 7) // 8):
        mb = ModelBuilder()
        specs = []
        for k in range(min(8, n - 8 * m)):
            kh, kw = int(rng.integers(1, 6)), int(rng.integers(1, 6))
            geom = (int(rng.integers(kh, 12)), int(rng.integers(kw, 12)), kh, kw, 1, 1, 1, 1, "SAME")
            shape, zp, _ = add_conv_layer(mb, rng, f"{m}_{k}", True, force={"geom": geom, "mult": 1},
                                          channels=(4, 8, 12, 16), hostile=rng.random() < 0.2)
            specs.append((shape, zp))
        bad, res = sim_mismatches(mb.build(), random_inputs(rng, specs), tmp_path / f"m{m}",
                                  opt=OPTS[m % len(OPTS)], prefer={"IP": True})
        assert not bad, f"in-place depthwise not bit-exact in the simulator: {bad[:4]}"
        assert res.graph.memory_plan.inplace, "no output was placed over its input"


def test_dsp_depthwise_rows_in_simulator(tmp_path, sweep):
    """The rows depthwise (int16 row window per 4 channels, one row function per ring phase): any kernel, stride,
    dilation and padding; same-shape layers in place."""
    from spz_randlayers import rows_depthwise_model

    rng = np.random.default_rng(70)
    n = sweep(36)
    placed = 0
    for m in range((n + 11) // 12):
        model, specs = rows_depthwise_model(rng, str(m), min(12, n - 12 * m))
        bad, res = sim_mismatches(model, random_inputs(rng, specs), tmp_path / f"m{m}",
                                  opt=OPTS[m % len(OPTS)], prefer={"RW": True})
        assert not bad, f"rows depthwise not bit-exact in the simulator: {bad[:4]}"
        assert any(dict(op.kernel.variant).get("RW") for op in res.graph.ops
                   if op.kernel is not None and op.kernel.variant)
        placed += len(res.graph.memory_plan.inplace)
    assert placed, "no rows depthwise was placed in place"


def test_dsp_depthwise_planar_in_simulator(tmp_path, sweep):
    """The planar depthwise (one channel's plane as int16 columns, 4-row blocks along H, border columns
    specialized): any kernel, stride, dilation and padding, in place."""
    from spz_randlayers import rows_depthwise_model

    rng = np.random.default_rng(82)
    n = sweep(36)
    placed = 0
    for m in range((n + 11) // 12):
        model, specs = rows_depthwise_model(rng, str(m), min(12, n - 12 * m), max_w=40 if m % 2 else 14)
        bad, res = sim_mismatches(model, random_inputs(rng, specs), tmp_path / f"m{m}",
                                  opt=OPTS[m % len(OPTS)], prefer=PN_FORMS[m % len(PN_FORMS)])
        assert not bad, f"planar depthwise not bit-exact in the simulator: {bad[:4]}"
        assert any(dict(op.kernel.variant).get("PN") for op in res.graph.ops
                   if op.kernel is not None and op.kernel.variant)
        placed += len(res.graph.memory_plan.inplace)
    assert placed, "no planar depthwise was placed in place"


def test_dsp_depthwise_chunked_planar_in_simulator(tmp_path, sweep):
    """The chunked planar depthwise (the plane gathered 8, 12 or 16 output rows at a time, the halo rows kept in
    the scratch), in place: kernels 1-5, any width."""
    from spz_randlayers import chunked_depthwise_model

    rng = np.random.default_rng(84)
    n = sweep(24)
    chunked = 0
    for m in range((n + 11) // 12):
        prefer = ({"PC": 8}, {"PC": 16, "PU": False, "PS": False}, {"PC": 12, "PS": True})[m % 3]
        model, specs = chunked_depthwise_model(rng, str(m), min(12, n - 12 * m), prefer["PC"])
        bad, res = sim_mismatches(model, random_inputs(rng, specs), tmp_path / f"m{m}", opt=OPTS[m % len(OPTS)],
                                  prefer=prefer)
        assert not bad, f"chunked planar depthwise not bit-exact in the simulator: {bad[:4]}"
        chunked += sum(bool(dict(op.kernel.variant).get("PC")) for op in res.graph.ops
                       if op.kernel is not None and op.kernel.variant)
    assert chunked >= n // 2, f"only {chunked} of {n} layers chunked"


def test_dsp_conv_x8_in_simulator(tmp_path, sweep):
    """Convolutions in the x8 weight format (raw int8 weight words meeting A/B columns) wherever it applies:
    im2col and rows, padding, strides, dilations, hostile quantization (the 256x bound falls back)."""
    n = sweep(48)
    done, _ = _run(tmp_path, 65, n, ("conv",), prefer={"WFMT": "x8"})
    assert done == n


def test_dsp_conv_x8_blocks_of_3_in_simulator(tmp_path, sweep):
    """x8 convolutions in blocks of 3 output channels, with 0, 1 or 2 channels left for the looped tail block."""
    n = sweep(24)
    done, _ = _run(tmp_path, 68, n, ("conv",), prefer={"WFMT": "x8", "OCB": 3})
    assert done == n


def test_dsp_conv_ring_in_simulator(tmp_path, sweep):
    """Convolutions whose row buffer is a ring (each input row converted once, the KH rows of an output row in
    consecutive slots), int16, int8 and x8 weights, any stride and padding."""
    n = sweep(36)
    done, _ = _run(tmp_path, 67, n, ("conv",), prefer={"RING": True})
    assert done == n


def test_dsp_conv_segments_in_simulator(tmp_path, sweep):
    """Convolutions whose buffer rows hold segments of 2 or 8 output pixels (fused row bands' small-scratch form):
    int16 and int8 weights, any stride, padding and dilation."""
    n = sweep(48)
    done, _ = _run(tmp_path, 69, n // 2, ("conv",), prefer={"SEG": 2})
    done2, _ = _run(tmp_path, 70, n - n // 2, ("conv",), prefer={"SEG": 8})
    assert done + done2 == n


def test_chasing_overlaps_in_simulator(tmp_path, sweep):
    """Every legal chasing overlap taken (convolutions, depthwise, pooling writing over the input bytes no later
    pixel reads) and every in-place placement: bit-exact in the simulator."""
    from specializer.tflite_writer import ModelBuilder
    from spz_randlayers import add_conv_layer, add_pool_layer

    rng = np.random.default_rng(68)
    n = sweep(60)
    total = 0
    for m in range((n + 11) // 12):
        mb = ModelBuilder()
        specs = []
        for k in range(min(12, n - 12 * m)):
            kind = ("conv", "dw", "pool")[k % 3]
            if kind == "pool":
                shape, zp, _ = add_pool_layer(mb, rng, f"{m}_{k}")
            else:
                shape, zp, _ = add_conv_layer(mb, rng, f"{m}_{k}", kind == "dw", groups_ok=False,
                                              channels=(4, 8, 12, 16, 3, 5) if kind == "dw" else CHANNELS,
                                              force={"mult": 1} if kind == "dw" else None)
            specs.append((shape, zp))
        bad, res = sim_mismatches(mb.build(), random_inputs(rng, specs), tmp_path / f"m{m}",
                                  opt=OPTS[m % len(OPTS)], share_all=True)
        assert not bad, f"not bit-exact with chasing overlaps: {bad[:4]}"
        total += len(res.graph.memory_plan.overlaps)
    assert total >= n // 3, f"only {total} chasing overlaps in {n} layers"


@pytest.mark.slow
def test_dsp_kernels_long_sweep(tmp_path, sweep):
    _run(tmp_path, 64, sweep(1500), ("conv", "dw", "fc", "add"))


def test_dsp_lstm_bitexact_in_simulator(tmp_path, sweep):
    """Random LSTMs (cells 1..24, inputs 1..32, steps, batches, time-major both ways, clip, cell scales)."""
    from specializer.tflite_writer import ModelBuilder
    from spz_randlayers import add_lstm, lstm_inputs

    rng = np.random.default_rng(65)
    n = sweep(12)
    for m in range((n + 5) // 6):
        mb = ModelBuilder()
        for k in range(min(6, n - 6 * m)):
            add_lstm(mb, rng, tag=f"m{m}l{k}")
        bad, res = sim_mismatches(mb.build(), lstm_inputs(mb, rng), tmp_path / f"m{m}", opt=OPTS[m % len(OPTS)])
        assert all(op.kernel.entry == "lstm_s8_dsp" for op in res.graph.ops if op.kernel is not None)
        assert not bad, f"LSTM not bit-exact in the simulator: {bad[:4]}"


def test_dsp_fc_xt_in_place_in_simulator(tmp_path, sweep):
    """FULLY_CONNECTED with the XT transform in place (B over the dying input's words, A as ~(B & 0x00FF00FF)):
    any depth, rows and quantization, hostile ones included."""
    from specializer.api import lower
    from spz_randlayers import random_model

    model, _, _ = random_model(np.random.default_rng(81), PER_ELF, ("fc",))
    assert any(op.kernel.clobbers for op in lower(model, "cortex-m4", prefer={"IP": True})[0].ops if op.kernel)
    n = sweep(36)
    done, _ = _run(tmp_path, 81, n, ("fc",), prefer={"IP": True})
    assert done == n
