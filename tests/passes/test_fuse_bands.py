"""passes/fuse_bands: a pointwise convolution and the windowed layer after it, row band by row band.

Bit-exact against tflite-micro on random pairs (kernel heights 1..5, strides 1..3, SAME/VALID, dilation along W,
depthwise with multipliers and full convolutions, channel counts not a multiple of 4) on the host under ASan
(generic and DSP kernels) and in the simulated Cortex-M4; the pass keeps the rewrite only where the arena shrinks.
"""
from __future__ import annotations

import numpy as np
import pytest

from specializer.api import lower
from specializer.oracle import compare
from spz_randlayers import band_fc_model, band_pair_model, random_inputs, residual_block_model, sim_mismatches


def _is_pair(op) -> bool:
    return op.kind == "BANDED_PAIR"


def _is_fc(op) -> bool:
    return op.kind == "BANDED_FC"


def _is_block(op) -> bool:
    return op.kind == "BANDED_PAIR" and op.attrs.a_index >= 0


def _host(tmp_path, seed: int, n: int, make, fused, target) -> None:
    """n random fusion candidates, 12 to a model, forced into bands, compared with tflite-micro on the host."""
    rng = np.random.default_rng(seed)
    for k in range((n + 11) // 12):
        model, specs, descs = make(rng, min(12, n - 12 * k))
        g, _ = lower(model, target, prefer={"BAND": True})
        assert sum(map(fused, g.ops)) == min(12, n - 12 * k)
        bad = compare(model, random_inputs(rng, specs, n_sets=2), tmp_path / f"m{k}", target=target,
                      prefer={"BAND": True})
        assert not bad, "not bit-exact: " + "; ".join(f"{b} [{descs[b.output]}]" for b in bad[:5])


def _simulator(tmp_path, seed: int, n: int, make, fused) -> None:
    """The same in the simulated Cortex-M4, -O2, -O3 and -Os in turn."""
    rng = np.random.default_rng(seed)
    done = 0
    while done < n:
        k = min(12, n - done)
        model, specs, descs = make(rng, k)
        bad, res = sim_mismatches(model, random_inputs(rng, specs, n_sets=2), tmp_path / f"m{done}",
                                  opt=("-O2", "-O3", "-Os")[done // 12 % 3], prefer={"BAND": True})
        assert sum(map(fused, res.graph.ops)) == k
        assert not bad, "not bit-exact in the simulator: " + "; ".join(
            f"input #{c} output {o} ({descs[o]}) first at {i}" for c, o, i in bad[:6])
        done += k


@pytest.mark.parametrize("target,seed", [("cortex-m4", 81), (None, 82)])
def test_band_pairs_host_twins(tmp_path, target, seed, sweep):
    _host(tmp_path, seed, sweep(24), band_pair_model, _is_pair, target)


def test_band_pairs_in_simulator(tmp_path, sweep):
    _simulator(tmp_path, 83, sweep(24), band_pair_model, _is_pair)


@pytest.mark.parametrize("target,seed,n", [("cortex-m4", 84, 12), (None, 85, 24)])
def test_residual_blocks_host(tmp_path, target, seed, n, sweep):
    """Residual blocks (identity or convolution shortcut) run row band by row band, the output over the input.
    (12 with the DSP kernels: their host build with ASan takes ~70 s per 12 blocks; the simulator test runs 24.)"""
    _host(tmp_path, seed, sweep(n), residual_block_model, _is_block, target)


def test_residual_blocks_in_simulator(tmp_path, sweep):
    _simulator(tmp_path, 86, sweep(24), residual_block_model, _is_block)


def test_fused_only_where_the_arena_shrinks():
    """One pair whose pointwise output is the largest tensor is fused (arena smaller); a pair that narrows the
    channels is left alone by default."""
    from specializer import ops
    from specializer.tflite_writer import ModelBuilder

    def model(cm):
        mb = ModelBuilder()
        x = mb.input("x", (1, 16, 16, 8), scale=0.05, zero_point=0)
        w1 = mb.const("w1", np.ones((cm, 1, 1, 8), np.int8), scale=0.01, zero_point=0)
        m = mb.tensor("m", (1, 16, 16, cm), scale=0.1, zero_point=0)
        mb.op("CONV_2D", [x, w1, None], [m], ops.Conv2D(padding="VALID", stride_h=1, stride_w=1))
        w2 = mb.const("w2", np.ones((1, 3, 3, cm), np.int8), scale=0.01, zero_point=0)
        b2 = mb.const("b2", np.zeros(cm, np.int32), scale=0.001, zero_point=0)
        y = mb.tensor("y", (1, 8, 8, cm), scale=0.2, zero_point=0)
        mb.op("DEPTHWISE_CONV_2D", [m, w2, b2], [y], ops.DepthwiseConv2D(padding="SAME", stride_h=2, stride_w=2,
                                                                        depth_multiplier=1))
        mb.output(y)
        return mb.build()

    wide, _ = lower(model(32), "cortex-m4")
    assert [op.kind for op in wide.ops] == ["BANDED_PAIR"]
    plain, _ = lower(model(32), "cortex-m4", generic_only=True)
    assert wide.memory_plan.arena_size < plain.memory_plan.arena_size
    assert "BANDED_PAIR" not in [op.kind for op in lower(model(2), "cortex-m4")[0].ops]



def test_band_fc_host_twins(tmp_path, sweep):
    """A convolution whose output only a FULLY_CONNECTED reads, run row by row into the FC's accumulators
    (BANDED_FC, DSP cores): random P layers (1x1, KxK any stride, depthwise), 1..13 FC rows, on the host."""
    _host(tmp_path, 91, sweep(24), band_fc_model, _is_fc, "cortex-m4")


def test_band_fc_in_simulator(tmp_path, sweep):
    _simulator(tmp_path, 92, sweep(24), band_fc_model, _is_fc)


def test_micro_speech_conv_never_whole():
    """micro_speech: its convolution's 4,000-byte output feeds only the FULLY_CONNECTED, so the default build
    runs the pair as a BANDED_FC: the arena holds the input, one output row, the accumulators and the row
    buffer (3,300 B, against 5,200 with the output whole)."""
    from pathlib import Path

    path = Path(__file__).resolve().parents[2].parent / "shared" / "models" / "tflm_micro_speech.tflite"
    if not path.exists():
        pytest.skip("../shared/models not present")
    g, _ = lower(path.read_bytes(), "cortex-m4")
    assert [op.kind for op in g.ops if op.kind.startswith("BANDED")] == ["BANDED_FC"]
    assert g.memory_plan.arena_size == 3300


@pytest.mark.parametrize("name", ["mlperf_ic_resnet8", "tflm_micro_speech"])
def test_band_streams_count_the_variant_each_sub_layer_runs(name):
    """rechoose_variants charges the bands' sub-layer streams to the flash budget: every sub-layer with a choice
    matches one of its candidates (row segments, the BANDED_FC's zeroed borders), none falls back to a guess."""
    from spz_testutil import MODELS, model_path

    from specializer import registry
    from specializer.passes.fuse_bands import band_streams

    if not (MODELS / f"{name}.tflite").exists():
        pytest.skip(f"{name} not in ../shared/models")
    g, _ = lower(model_path(name), "cortex-m4")
    bands = [op for op in g.ops if op.kind in ("BANDED_PAIR", "BANDED_FC")]
    assert bands
    for op in bands:
        sub = op.attrs.sub
        for sop in sub.ops:
            e = registry.entry_by_name(sop.kernel.entry)
            cands = e.variants(sub, sop) if e.variants else []
            if len(cands) < 2:
                continue
            args = e.template_args(sub, sop)
            assert any(all(args.get(k, False if isinstance(v, bool) else None) == v for k, v in c.params.items())
                       for c in cands), (op.index, sop.index, dict(sop.kernel.variant))
    small, used = band_streams(g)
    assert 0 < small <= used
