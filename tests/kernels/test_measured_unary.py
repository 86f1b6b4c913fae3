"""ABS, LEAKY_RELU, ELU, RSQRT (int8): tables measured on TFLite Micro itself (specializer/measured.py), checked
end to end against the oracle on random quantizations and shapes (host under ASan, generic and Cortex-M4
builds); NEG, EXP and RSQRT over negative values, which TFLite Micro does not run in int8, are refused with
TFLM's reason in one line."""
from __future__ import annotations

import numpy as np
import pytest

from specializer import ops
from specializer.cli import main
from specializer.oracle import compare
from specializer.tflite_writer import ModelBuilder
from spz_randlayers import random_inputs


def _model(rng, kinds):
    mb = ModelBuilder()
    specs, descs = [], []
    for i, kind in enumerate(kinds):
        shape = tuple(int(v) for v in rng.integers(1, 9, size=int(rng.integers(1, 5))))
        in_s, out_s = float(10 ** rng.uniform(-2.5, -0.5)), float(10 ** rng.uniform(-2.5, -0.5))
        in_zp = -128 if kind == "RSQRT" else int(rng.integers(-128, 128))
        out_zp = int(rng.integers(-128, 128))
        attrs = ops.LeakyRelu(alpha=float(rng.choice([0.01, 0.2, 0.5, 1.5, -0.3]))) if kind == "LEAKY_RELU" else None
        x = mb.input(f"x{i}", shape, scale=in_s, zero_point=in_zp)
        y = mb.tensor(f"y{i}", shape, scale=out_s, zero_point=out_zp)
        mb.op(kind, [x], [y], attrs)
        mb.output(y)
        specs.append((shape, in_zp))
        descs.append(f"{kind} {shape} in {in_s:.3g}/{in_zp} out {out_s:.3g}/{out_zp} {attrs or ''}")
    return mb.build(), specs, descs


@pytest.mark.parametrize("target,seed", [(None, 111), ("cortex-m4", 112)])
def test_measured_ops_bitexact(tmp_path, target, seed, sweep):
    rng = np.random.default_rng(seed)
    n = sweep(24)
    kinds = [("ABS", "LEAKY_RELU", "ELU", "RSQRT")[k % 4] for k in range(n)]
    for m in range(0, n, 12):
        model, specs, descs = _model(rng, kinds[m:m + 12])
        bad = compare(model, random_inputs(rng, specs, n_sets=2), tmp_path / f"m{m}", target=target)
        assert not bad, "not bit-exact: " + "; ".join(f"{b} [{descs[b.output]}]" for b in bad[:5])


@pytest.mark.parametrize("kind,zp,why", [("NEG", 0, "not supported"), ("EXP", 0, "FLOAT32"),
                                         ("RSQRT", 0, "positive values")])
def test_refused_where_tflm_refuses(tmp_path, capsys, kind, zp, why):
    mb = ModelBuilder()
    x = mb.input("x", (4, 4), scale=0.05, zero_point=zp)
    y = mb.tensor("y", (4, 4), scale=0.05, zero_point=0)
    mb.op(kind, [x], [y])
    mb.output(y)
    src = tmp_path / "m.tflite"
    src.write_bytes(mb.build())
    assert main(["compile", str(src), "-o", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and f"does not run this int8 {kind}" in err and why in err, err
    assert not (tmp_path / "out").exists()


def _prelu_model(rng):
    mb = ModelBuilder()
    specs = []
    for i, ashape in enumerate([(5,), (1, 1, 3), (1,), (1, 1, 1, 8)]):
        c = ashape[-1] if ashape[-1] > 1 else int(rng.integers(1, 6))
        shape = (1, int(rng.integers(1, 6)), int(rng.integers(1, 6)), c) if len(ashape) != 1 or ashape[0] == 1 \
            else (int(rng.integers(1, 5)), c)
        in_s, in_zp = float(10 ** rng.uniform(-2, -0.5)), int(rng.integers(-128, 128))
        x = mb.input(f"x{i}", shape, scale=in_s, zero_point=in_zp)
        a = mb.const(f"a{i}", rng.integers(-128, 128, ashape).astype(np.int8), scale=float(10 ** rng.uniform(-3, -1)),
                     zero_point=int(rng.integers(-20, 20)))
        y = mb.tensor(f"y{i}", shape, scale=float(10 ** rng.uniform(-2, -0.5)), zero_point=int(rng.integers(-128, 128)))
        mb.op("PRELU", [x, a], [y])
        mb.output(y)
        specs.append((shape, in_zp))
    return mb.build(), specs


def test_prelu_per_channel(tmp_path):
    """PRELU with a constant per-channel alpha (shape (C,), (1, 1, C) or a scalar), tables measured on TFLM."""
    rng = np.random.default_rng(113)
    model, specs = _prelu_model(rng)
    for target in (None, "cortex-m4"):
        bad = compare(model, random_inputs(rng, specs, n_sets=2), tmp_path / f"p{target}", target=target)
        assert not bad, "; ".join(map(str, bad[:5]))


def test_measured_tables_in_simulator(tmp_path):
    """The same tables run by the lut_s8 / lut_channel_s8 kernels in the simulated Cortex-M4."""
    from spz_randlayers import sim_mismatches

    rng = np.random.default_rng(114)
    model, specs, descs = _model(rng, ["ABS", "LEAKY_RELU", "ELU", "RSQRT"] * 2)
    bad, _ = sim_mismatches(model, random_inputs(rng, specs, n_sets=2), tmp_path / "u", opt="-O2")
    assert not bad, "; ".join(f"input #{c} output {o} ({descs[o]}) at {i}" for c, o, i in bad[:5])
    model, specs = _prelu_model(rng)
    bad, _ = sim_mismatches(model, random_inputs(rng, specs, n_sets=2), tmp_path / "p", opt="-O3")
    assert not bad, bad[:5]
