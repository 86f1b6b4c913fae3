"""Randomized differential tests: int8 LOGISTIC, TANH, HARD_SWISH against TFLite Micro, bit for bit.

Every layer is checked exhaustively: its input holds all 256 int8 values (shuffled, plus a few extra elements so
sizes are not multiples of 4), and a second input set stays in a narrow band around the zero point. Quantizations:
input scales from 1e-7 to 100 (1/128 / 1/256 ratios included), zero points at the extremes; HARD_SWISH output
scales across orders of magnitude on both sides of the input scale. Several layers share one compiled model.
The Python twin that builds the tables (specializer/fixedpoint.py) is also checked against the oracle directly.
"""
from __future__ import annotations

import numpy as np
import pytest

from specializer import fixedpoint
from specializer.errors import ShapeError, SpecializerError
from specializer.oracle import run_tflm
from specializer.tflite_writer import ModelBuilder
from spz_testutil import assert_bitexact

KINDS = ("LOGISTIC", "TANH", "HARD_SWISH")
FIXED_OUT = {"LOGISTIC": (1.0 / 256.0, -128), "TANH": (1.0 / 128.0, 0)}
PER_MODEL = 10
SHAPES = ((256,), (2, 128), (1, 4, 8, 8), (263,), (1, 5, 53), (3, 3, 29))  # all hold >= 256 elements


def _zp(rng):
    return int(rng.choice([-128, 127, -127, 126, 0])) if rng.random() < 0.5 else int(rng.integers(-128, 128))


def _scale(rng, lo=-7.0, hi=2.0):
    if rng.random() < 0.1:
        return float(rng.choice([1.0 / 128, 1.0 / 256, 1.0 / 16, 0.5, 1.0]))
    return float(np.float32(10 ** rng.uniform(lo, hi)))


def random_quant(rng, kind):
    """(in_scale, in_zp, out_scale, out_zp) that TFLM accepts for `kind`."""
    while True:
        in_s, in_zp = _scale(rng), _zp(rng)
        if kind in FIXED_OUT:
            out_s, out_zp = FIXED_OUT[kind]
        else:
            out_s, out_zp = float(np.float32(in_s * 10 ** rng.uniform(-2.0, 4.0))), _zp(rng)
        try:
            fixedpoint.unary_s8_table(kind, in_s, in_zp, out_s, out_zp)
        except ValueError:
            continue
        return in_s, in_zp, out_s, out_zp


def exhaustive_input(rng, shape, zp, narrow):
    n = int(np.prod(shape))
    if narrow:
        lo, hi = max(-128, zp - 12), min(127, zp + 12)
        return rng.integers(lo, hi + 1, size=shape).astype(np.int8)
    vals = np.concatenate([np.arange(-128, 128), rng.integers(-128, 128, size=n - 256)])
    return rng.permutation(vals).astype(np.int8).reshape(shape)


def add_layer(mb, rng, tag, kind=None):
    kind = kind or str(rng.choice(KINDS))
    in_s, in_zp, out_s, out_zp = random_quant(rng, kind)
    shape = SHAPES[int(rng.integers(len(SHAPES)))]
    x = mb.input(f"x{tag}", shape, scale=in_s, zero_point=in_zp)
    y = mb.tensor(f"y{tag}", shape, scale=out_s, zero_point=out_zp)
    mb.op(kind, [x], [y])
    mb.output(y)
    return shape, in_zp, f"{kind} {shape} in=({in_s:.6g}, {in_zp}) out=({out_s:.6g}, {out_zp})"


def run_random_models(tmp_path, seed, n_cases, kind=None):
    rng = np.random.default_rng(seed)
    done = m = 0
    while done < n_cases:
        mb = ModelBuilder()
        k = min(PER_MODEL, n_cases - done)
        layers = [add_layer(mb, rng, str(i), kind) for i in range(k)]
        inputs = [[exhaustive_input(rng, s, zp, narrow) for s, zp, _ in layers] for narrow in (False, True)]
        assert_bitexact(mb.build(), inputs, tmp_path / f"m{m}", layers=[d for _, _, d in layers])
        done += k
        m += 1
    return done


def test_activations_random(tmp_path, sweep):
    assert run_random_models(tmp_path, 4242, sweep(60)) >= 60


@pytest.mark.parametrize("kind", KINDS)
def test_activation_each_kind(tmp_path, kind, sweep):
    run_random_models(tmp_path, 100 + KINDS.index(kind), sweep(10), kind=kind)


@pytest.mark.slow
def test_activations_random_long(tmp_path, sweep):
    run_random_models(tmp_path, 777, sweep(600))


def _oracle_single(kind, in_s, in_zp, out_s, out_zp):
    mb = ModelBuilder()
    x = mb.input("x", (256,), scale=in_s, zero_point=in_zp)
    y = mb.tensor("y", (256,), scale=out_s, zero_point=out_zp)
    mb.op(kind, [x], [y])
    mb.output(y)
    return run_tflm(mb.build(), [np.arange(-128, 128, dtype=np.int8)])[0]


def test_twin_tables_match_oracle(sweep):
    """The offline tables equal TFLM's output for all 256 inputs (no C involved; many quantizations, cheap)."""
    rng = np.random.default_rng(9)
    for i in range(sweep(300)):
        kind = KINDS[i % 3]
        q = random_quant(rng, kind)
        tab = fixedpoint.unary_s8_table(kind, *q)
        want = _oracle_single(kind, *q)
        got = tab[np.arange(-128, 128).astype(np.int8).view(np.uint8)]
        assert np.array_equal(got, want), f"{kind} {q}: {(got != want).sum()} values differ"


def test_chain_in_place(tmp_path):
    """Chained activations (the planner may reuse the dying input's buffer for the output)."""
    rng = np.random.default_rng(5)
    mb = ModelBuilder()
    x = mb.input("x", (1, 7, 7, 6), scale=0.05, zero_point=-3)
    h = mb.tensor("h", (1, 7, 7, 6), scale=0.03, zero_point=-100)
    mb.op("HARD_SWISH", [x], [h])
    t = mb.tensor("t", (1, 7, 7, 6), scale=1.0 / 128, zero_point=0)
    mb.op("TANH", [h], [t])
    s = mb.tensor("s", (1, 7, 7, 6), scale=1.0 / 256, zero_point=-128)
    mb.op("LOGISTIC", [t], [s])
    s2 = mb.tensor("s2", (1, 7, 7, 6), scale=1.0 / 256, zero_point=-128)
    mb.op("LOGISTIC", [s], [s2])
    mb.output(s2)
    inputs = [[rng.integers(-128, 128, size=(1, 7, 7, 6)).astype(np.int8)] for _ in range(3)]
    assert_bitexact(mb.build(), inputs, tmp_path)


def _compile_single(tmp_path, kind, in_s=0.05, in_zp=0, out_s=1.0 / 256, out_zp=-128, dtype="int8"):
    import specializer

    mb = ModelBuilder()
    q_in = dict(scale=in_s, zero_point=in_zp) if dtype != "float32" else {}
    q_out = dict(scale=out_s, zero_point=out_zp) if dtype != "float32" else {}
    x = mb.input("x", (16,), dtype=dtype, **q_in)
    y = mb.tensor("y", (16,), dtype=dtype, **q_out)
    mb.op(kind, [x], [y])
    mb.output(y)
    return specializer.compile(mb.build(), name="net", out_dir=tmp_path / "out")


@pytest.mark.parametrize("kind,kw,needle", [
    ("LOGISTIC", dict(out_s=1.0 / 128, out_zp=-128), "scale 1/256"),
    ("LOGISTIC", dict(out_s=1.0 / 256, out_zp=0), "zero point -128"),
    ("TANH", dict(out_s=1.0 / 256, out_zp=-128), "scale 1/128"),
    ("TANH", dict(out_s=1.0 / 128, out_zp=5), "zero point 0"),
    ("LOGISTIC", dict(in_s=1e-9), "2^-28"),
    ("TANH", dict(in_s=1e-9, out_s=1.0 / 128, out_zp=0), "2^-28"),
    ("HARD_SWISH", dict(in_s=1.0, out_s=0.001, out_zp=0), "too small"),
    ("HARD_SWISH", dict(dtype="int16", out_zp=0), "int8"),
])
def test_rejects_with_reason(tmp_path, kind, kw, needle):
    with pytest.raises(SpecializerError) as ei:
        _compile_single(tmp_path, kind, **kw)
    msg = str(ei.value)
    assert needle in msg and "\n" not in msg, msg
    if kw.get("dtype") is None:
        assert isinstance(ei.value, ShapeError)
