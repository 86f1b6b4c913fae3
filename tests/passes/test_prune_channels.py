"""passes/prune_channels: channels whose output is the same byte for every input leave the graph, bit-exactly.

Random chains conv -> [depthwise ->] conv whose first layers have channels with tiny per-channel scales (every
accumulator rounds to the zero point) and channels with all-zero weights (a constant from the bias alone, not the
zero point), with every fused activation, SAME/VALID, 1x1 and 3x3 readers. Each chain is compared with
tflite-micro on the host under ASan (DSP and generic kernels) and in the simulated Cortex-M4.
"""
from __future__ import annotations

import numpy as np
import pytest

from specializer import ops
from specializer.api import lower
from specializer.oracle import compare
from specializer.tflite_writer import ModelBuilder
from spz_randlayers import ACTS, output_quant, random_inputs, sim_mismatches


def _layer(mb, rng, tag, x, xshape, xs, dw: bool, k: int, padding: str, dead: float, zero: float, last: bool):
    """One conv or depthwise reading tensor x (shape xshape, scale xs); returns (tensor, shape, scale, zp)."""
    _, h, w, cin = xshape
    cout = cin if dw else int(rng.choice([4, 8, 12, 16, 20, 24]))
    act = str(rng.choice(ACTS))
    out_s, out_zp = output_quant(rng, act)
    wshape = (1, k, k, cout) if dw else (cout, k, k, cin)
    wq = rng.integers(-127, 128, size=wshape).astype(np.int8)
    ws = (10 ** rng.uniform(-3, -2, cout)).astype(np.float32)
    taps = k * k * (1 if dw else cin)
    acc_std = 74.0 * max(float(wq.astype(np.float64).std()), 1.0) * np.sqrt(taps)
    out_s = float(xs * float(np.median(ws)) * acc_std / 40.0)
    tiny = rng.random(cout) < dead
    ws = np.where(tiny, ws * np.float32(10 ** rng.uniform(-9, -7)), ws).astype(np.float32)
    zeros = (rng.random(cout) < zero) & ~tiny
    if dw:
        wq[..., zeros] = 0
    else:
        wq[zeros] = 0
    wt = mb.const(f"w{tag}", wq, scale=ws, axis=3 if dw else 0)
    b = None
    if dw or rng.random() < 0.8:
        bq = rng.uniform(-2, 2, size=cout) * acc_std
        b = mb.const(f"b{tag}", bq.astype(np.int32), scale=(xs * ws.astype(np.float64)).astype(np.float32), axis=0)
    oh, ow = ops.conv_output_size(h, k, 1, 1, padding), ops.conv_output_size(w, k, 1, 1, padding)
    shape = (1, oh, ow, cout)
    y = mb.tensor(f"y{tag}", shape, scale=out_s, zero_point=out_zp)
    if dw:
        mb.op("DEPTHWISE_CONV_2D", [x, wt, b], [y], ops.DepthwiseConv2D(padding=padding, activation=act))
    else:
        mb.op("CONV_2D", [x, wt, b], [y], ops.Conv2D(padding=padding, activation=act))
    return y, shape, out_s, out_zp, f"{'dw' if dw else 'conv'}{k}x{k} {padding} {act} c={cout} zp={out_zp}"


def add_chain(mb, rng, tag: str):
    h, w, c = int(rng.integers(5, 10)), int(rng.integers(5, 10)), int(rng.choice([3, 4, 8]))
    xs, xzp = float(10 ** rng.uniform(-2, 0)), int(rng.integers(-128, 128))
    x = mb.input(f"x{tag}", (1, h, w, c), scale=xs, zero_point=xzp)
    t, shape, s, _, d0 = _layer(mb, rng, f"{tag}a", x, (1, h, w, c), xs, False, int(rng.choice([1, 3])),
                                str(rng.choice(["SAME", "VALID"])), 0.5, 0.2, False)
    descs = [d0]
    if rng.random() < 0.6:
        t, shape, s, _, d1 = _layer(mb, rng, f"{tag}d", t, shape, s, True, 3, str(rng.choice(["SAME", "VALID"])),
                                    0.3, 0.15, False)
        descs.append(d1)
    k = 1 if rng.random() < 0.7 else 3
    y, *_, d2 = _layer(mb, rng, f"{tag}b", t, shape, s, False, k, "SAME" if k == 3 else "VALID", 0.0, 0.0, True)
    descs.append(d2)
    mb.output(y)
    return (1, h, w, c), xzp, " -> ".join(descs)


def chains_model(rng, n):
    mb = ModelBuilder()
    specs, descs = [], []
    for i in range(n):
        shape, zp, d = add_chain(mb, rng, str(i))
        specs.append((shape, zp))
        descs.append(d)
    return mb.build(), specs, descs


def _pruned(model, target="cortex-m4") -> int:
    """Channels removed: activation channels in the unpruned graph minus those in the pruned one."""
    def chans(g):
        return sum(t.shape[-1] for t in g.tensors.values() if not t.is_const and len(t.shape) == 4)
    return chans(lower(model, target, prune=False)[0]) - chans(lower(model, target)[0])


@pytest.mark.parametrize("target,seed", [("cortex-m4", 91), (None, 92)])
def test_chains_host(tmp_path, target, seed, sweep):
    rng = np.random.default_rng(seed)
    n = sweep(24)
    for m in range(0, n, 12):
        model, specs, descs = chains_model(rng, min(12, n - m))
        assert _pruned(model, target or "cortex-m4") > 0
        bad = compare(model, random_inputs(rng, specs, n_sets=2), tmp_path / f"m{m}", target=target)
        assert not bad, "not bit-exact: " + "; ".join(f"{b} [{descs[b.output]}]" for b in bad[:5])


def test_chains_in_simulator(tmp_path, sweep):
    rng = np.random.default_rng(93)
    n = sweep(24)
    for m in range(0, n, 12):
        model, specs, descs = chains_model(rng, min(12, n - m))
        bad, _ = sim_mismatches(model, random_inputs(rng, specs, n_sets=2), tmp_path / f"m{m}",
                                opt=("-O2", "-O3")[m // 12 % 2])
        assert not bad, "not bit-exact in the simulator: " + "; ".join(
            f"input #{c} output {o} ({descs[o]}) first at {i}" for c, o, i in bad[:6])


def test_vww_loses_its_constant_channels():
    """The MLPerf VWW MobileNet: 1,648 channels are provably constant; the pass removes MACs and flash."""
    from pathlib import Path

    from specializer.api import op_macs

    p = Path(__file__).resolve().parents[3] / "shared" / "models" / "mlperf_vww_mobilenetv1_025.tflite"
    if not p.exists():
        pytest.skip("shared models not present")
    g, _ = lower(str(p), "cortex-m4")
    g0, _ = lower(str(p), "cortex-m4", prune=False)
    macs = sum(op_macs(g, op) for op in g.ops)
    assert macs == 4_109_408 and sum(op_macs(g0, op) for op in g0.ops) == 7_489_664


def test_padded_reader_keeps_non_zero_point_constants():
    """A 3x3 SAME reader sees a constant channel as v at inside taps and nothing at padded ones: not foldable
    unless v is the zero point, so all-zero-weight channels (v != zp) stay."""
    from specializer.passes.prune_channels import constant_channels, plan
    from specializer.pipeline import run_pipeline
    from specializer.frontend.tflite_import import load_model

    mb = ModelBuilder()
    x = mb.input("x", (1, 6, 6, 4), scale=0.05, zero_point=3)
    wq = np.ones((8, 1, 1, 4), np.int8) * 20
    wq[:4] = 0
    w = mb.const("w", wq, scale=np.full(8, 0.01, np.float32), axis=0)
    b = mb.const("b", np.full(8, 3000, np.int32), scale=np.full(8, 0.0005, np.float32), axis=0)
    t = mb.tensor("t", (1, 6, 6, 8), scale=0.02, zero_point=-5)
    mb.op("CONV_2D", [x, w, b], [t], ops.Conv2D(padding="VALID"))
    w2 = mb.const("w2", np.ones((4, 3, 3, 8), np.int8), scale=np.full(4, 0.01, np.float32), axis=0)
    y = mb.tensor("y", (1, 6, 6, 4), scale=0.1, zero_point=0)
    mb.op("CONV_2D", [t, w2, None], [y], ops.Conv2D(padding="SAME"))
    mb.output(y)
    g = run_pipeline(load_model(mb.build()), None, stop_after="precompute_requant")
    consts = constant_channels(g)
    assert sorted(consts[g.ops[0].outputs[0]]) == [0, 1, 2, 3]
    assert plan(g) == {}
