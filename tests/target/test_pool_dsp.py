"""AVERAGE_POOL_2D and MAX_POOL_2D on DSP cores (targets/cortex_m/kernels/pooling.py): random layers (filters
1..7, strides 1..3, SAME/VALID, channels 1..17 so words and tails both run, every fused activation, batches 1..2,
zero points at the extremes) bit-exact with tflite-micro on the host build for cortex-m4 (ASan/UBSan, the
portable twins of SSUB8/SEL/SXTAB16) and in the simulated Cortex-M4 (-O2, -O3, -Os); a 255-tap average window
takes the DSP kernel, a 256-tap one the generic kernel."""
from __future__ import annotations

import shutil
import sys
from pathlib import Path

import numpy as np
import pytest

from specializer import ops
from specializer.api import lower
from specializer.tflite_writer import ModelBuilder
from spz_randlayers import sim_mismatches
from spz_testutil import assert_bitexact

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "kernels"))
from test_pooling import _inputs, add_pool_layer  # noqa: E402

DSP = {"max_pool2d_s8_dsp", "avg_pool2d_s8_dsp"}


def _model(rng, n):
    mb = ModelBuilder()
    layers = [add_pool_layer(mb, rng, str(i)) for i in range(n)]
    return mb.build(), layers


def _entries(g):
    return {op.kernel.entry for op in g.ops if op.kernel is not None}


def test_pool_dsp_host_twins(tmp_path, sweep):
    rng = np.random.default_rng(131)
    for m in range(0, sweep(40), 10):
        model, layers = _model(rng, 10)
        assert _entries(lower(model, "cortex-m4")[0]) <= DSP
        assert_bitexact(model, _inputs(rng, layers), tmp_path / f"m{m}", target="cortex-m4",
                        layers=[d for _, _, d in layers])


@pytest.mark.skipif(shutil.which("arm-none-eabi-gcc") is None, reason="arm-none-eabi-gcc not installed")
def test_pool_dsp_in_simulator(tmp_path, sweep):
    rng = np.random.default_rng(132)
    for m in range(0, sweep(30), 10):
        model, layers = _model(rng, 10)
        bad, res = sim_mismatches(model, _inputs(rng, layers), tmp_path / f"m{m}",
                                  opt=("-O2", "-O3", "-Os")[m // 10 % 3])
        assert _entries(res.graph) <= DSP
        assert not bad, "not bit-exact in the simulator: " + "; ".join(
            f"input #{c} output {o} ({layers[o][2]}) first at {i}" for c, o, i in bad[:6])


def test_pool_dsp_tap_limit(tmp_path):
    """Global averages of 255 taps (int16 lane sums of |x| <= 128 fit) take the DSP kernel, 256 taps the generic
    one; both bit-exact on inputs at the extremes."""
    mb = ModelBuilder()
    shapes = []
    for i, (h, w) in enumerate(((15, 17), (16, 16))):
        x = mb.input(f"x{i}", (1, h, w, 8), scale=0.05, zero_point=-128)
        y = mb.tensor(f"y{i}", (1, 1, 1, 8), scale=0.05, zero_point=-128)
        mb.op("AVERAGE_POOL_2D", [x], [y], ops.Pool2D(padding="VALID", stride_h=1, stride_w=1, filter_h=h,
                                                      filter_w=w))
        mb.output(y)
        shapes.append((1, h, w, 8))
    model = mb.build()
    g, _ = lower(model, "cortex-m4")
    assert [op.kernel.entry for op in g.ops] == ["avg_pool2d_s8_dsp", "avg_pool2d_s8"]
    sets = [[np.full(s, v, np.int8) for s in shapes] for v in (-128, 127)]
    sets.append([np.random.default_rng(133).integers(-128, 128, s).astype(np.int8) for s in shapes])
    assert_bitexact(model, sets, tmp_path / "lim", target="cortex-m4")
