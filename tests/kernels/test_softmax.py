"""Randomized differential tests: int8 SOFTMAX against TFLite Micro, bit for bit.

Parameter space: row lengths 1..300 (odd, prime, not multiples of 4), 1..4-D tensors with several rows, input
scales from 3e-4 to 10 (so beta * scale spans the skip threshold diff_min and the multiplier cap), betas in
{1, 0.5, 2, 0.25, 1.7, 10, 0.01, ...}, zero points at the extremes, output (1/256, -128) as TFLite requires.
Inputs: full range, narrow bands (many values near the row maximum), constant rows, one dominant value. Several
layers share one compiled model. The Python twin (specializer/fixedpoint.softmax_row) is checked directly too.
"""
from __future__ import annotations

import numpy as np
import pytest

from specializer import fixedpoint, ops
from specializer.errors import ShapeError, SpecializerError
from specializer.oracle import run_tflm
from specializer.tflite_writer import ModelBuilder
from spz_testutil import assert_bitexact

BETAS = (1.0, 1.0, 0.5, 2.0, 0.25, 1.7, 10.0, 0.01, 0.3, 4.0)
PER_MODEL = 8


def _zp(rng):
    return int(rng.choice([-128, 127, 0])) if rng.random() < 0.4 else int(rng.integers(-128, 128))


def random_shape(rng):
    depth = int(rng.choice([1, 2, 3, 5, 7, 10, 13, 31, 64, 97, 100, 101, 127, 200, 255, 300])) \
        if rng.random() < 0.5 else int(rng.integers(1, 130))
    rank = int(rng.integers(1, 5))
    lead = [int(rng.integers(1, 4)) for _ in range(rank - 1)]
    return tuple(lead + [depth])


def random_params(rng):
    while True:
        in_s = float(np.float32(10 ** rng.uniform(-3.5, 1.0)))
        beta = float(rng.choice(BETAS))
        try:
            fixedpoint.softmax_params(in_s, beta)
        except ValueError:
            continue
        return in_s, beta


def softmax_input(rng, shape, mode, in_s=None, beta=None):
    """int8 logits; with in_s/beta given, rows whose exp sum would make TFLM abort (>= 2^28) are redrawn."""
    x = _softmax_input(rng, shape, mode)
    if in_s is None:
        return x
    p = fixedpoint.softmax_params(in_s, beta)
    rows = x.reshape(-1, shape[-1])
    for r in range(rows.shape[0]):
        for _ in range(50):
            if 0 < fixedpoint.softmax_exp_sum(rows[r], p) < (1 << 28):
                break
            rows[r] = _softmax_input(rng, (shape[-1],), "peak")
            rows[r, rng.integers(0, shape[-1], size=shape[-1] // 2)] = -128
        else:
            raise AssertionError(f"no row of {shape[-1]} logits keeps TFLM's exp sum below 2^28 (scale {in_s}, "
                                 f"beta {beta})")
    return x


def _softmax_input(rng, shape, mode):
    if mode == "full":
        return rng.integers(-128, 128, size=shape).astype(np.int8)
    if mode == "narrow":
        lo = int(rng.integers(-128, 120))
        hi = min(127, lo + int(rng.integers(0, 12)))
        return rng.integers(lo, hi + 1, size=shape).astype(np.int8)
    if mode == "const":
        return np.full(shape, int(rng.integers(-128, 128)), dtype=np.int8)
    x = rng.integers(-128, -60, size=shape).astype(np.int8)  # one dominant value per row
    flat = x.reshape(-1, shape[-1])
    flat[np.arange(flat.shape[0]), rng.integers(0, shape[-1], size=flat.shape[0])] = 127
    return flat.reshape(shape)


def add_layer(mb, rng, tag):
    shape = random_shape(rng)
    in_s, beta = random_params(rng)
    zp = _zp(rng)
    x = mb.input(f"x{tag}", shape, scale=in_s, zero_point=zp)
    y = mb.tensor(f"y{tag}", shape, scale=1.0 / 256, zero_point=-128)
    mb.op("SOFTMAX", [x], [y], ops.Softmax(beta=beta))
    mb.output(y)
    return shape, (in_s, beta), f"SOFTMAX {shape} scale={in_s:.6g} zp={zp} beta={beta}"


def run_random_models(tmp_path, seed, n_cases):
    rng = np.random.default_rng(seed)
    done = m = 0
    while done < n_cases:
        mb = ModelBuilder()
        k = min(PER_MODEL, n_cases - done)
        layers = [add_layer(mb, rng, str(i)) for i in range(k)]
        inputs = [[softmax_input(rng, s, mode, *q) for s, q, _ in layers]
                  for mode in ("full", "narrow", "const", "peak")]
        assert_bitexact(mb.build(), inputs, tmp_path / f"m{m}", layers=[d for _, _, d in layers])
        done += k
        m += 1
    return done


def test_softmax_random(tmp_path, sweep):
    assert run_random_models(tmp_path, 5151, sweep(48)) >= 40


@pytest.mark.slow
def test_softmax_random_long(tmp_path, sweep):
    run_random_models(tmp_path, 6161, sweep(400))


@pytest.mark.parametrize("in_s,beta,long_row", [
    (1.0 / 16, 1.0, 1000),  # the common classifier head, 1000 classes
    (0.5, 20.0, 1000),      # multiplier capped at 2^31 - 1: only the maximum survives
    (2e-4, 0.1, 500),       # tiny beta * scale: every exp ~1 (longer rows make TFLM abort on its sum check)
    (0.1, 0.25, 700),
])
def test_softmax_edges(tmp_path, in_s, beta, long_row):
    rng = np.random.default_rng(int(in_s * 1e4) + int(beta * 100))
    mb = ModelBuilder()
    shapes = [(1, long_row), (4, 1), (2, 3, 17)]
    for i, shape in enumerate(shapes):
        x = mb.input(f"x{i}", shape, scale=in_s, zero_point=-128 if i % 2 else 127)
        y = mb.tensor(f"y{i}", shape, scale=1.0 / 256, zero_point=-128)
        mb.op("SOFTMAX", [x], [y], ops.Softmax(beta=beta))
        mb.output(y)
    inputs = [[softmax_input(rng, s, mode, in_s, beta) for s in shapes] for mode in ("full", "narrow", "peak")]
    assert_bitexact(mb.build(), inputs, tmp_path)


def test_softmax_after_fc_in_place(tmp_path):
    """A classifier head: FULLY_CONNECTED -> SOFTMAX -> SOFTMAX (the planner may run softmax in place)."""
    rng = np.random.default_rng(3)
    mb = ModelBuilder()
    x = mb.input("x", (2, 24), scale=0.02, zero_point=3)
    w = mb.const("w", rng.integers(-127, 128, size=(10, 24)).astype(np.int8), scale=0.01)
    h = mb.tensor("h", (2, 10), scale=0.08, zero_point=-7)
    mb.op("FULLY_CONNECTED", [x, w, None], [h], ops.FullyConnected())
    s = mb.tensor("s", (2, 10), scale=1.0 / 256, zero_point=-128)
    mb.op("SOFTMAX", [h], [s], ops.Softmax(beta=1.0))
    s2 = mb.tensor("s2", (2, 10), scale=1.0 / 256, zero_point=-128)
    mb.op("SOFTMAX", [s], [s2], ops.Softmax(beta=3.0))
    mb.output(s2)
    inputs = [[rng.integers(-128, 128, size=(2, 24)).astype(np.int8)] for _ in range(4)]
    assert_bitexact(mb.build(), inputs, tmp_path)


def test_twin_rows_match_oracle(sweep):
    """specializer.fixedpoint.softmax_row (the model of the C kernel) equals TFLM on many rows (no C involved)."""
    rng = np.random.default_rng(11)
    for _ in range(sweep(60)):
        shape = random_shape(rng)
        in_s, beta = random_params(rng)
        mb = ModelBuilder()
        x = mb.input("x", shape, scale=in_s, zero_point=0)
        y = mb.tensor("y", shape, scale=1.0 / 256, zero_point=-128)
        mb.op("SOFTMAX", [x], [y], ops.Softmax(beta=beta))
        mb.output(y)
        xs = softmax_input(rng, shape, str(rng.choice(["full", "narrow", "peak"])), in_s, beta)
        want = run_tflm(mb.build(), [xs])[0].reshape(-1, shape[-1])
        p = fixedpoint.softmax_params(in_s, beta)
        got = np.stack([fixedpoint.softmax_row(r, p) for r in xs.reshape(-1, shape[-1])])
        assert np.array_equal(got, want), f"{shape} scale={in_s} beta={beta}"


def _compile_single(tmp_path, in_s=0.1, beta=1.0, out_s=1.0 / 256, out_zp=-128, dtype="int8", out_dtype=None):
    import specializer

    mb = ModelBuilder()
    x = mb.input("x", (2, 10), dtype=dtype, scale=in_s, zero_point=0)
    y = mb.tensor("y", (2, 10), dtype=out_dtype or dtype, scale=out_s, zero_point=out_zp)
    mb.op("SOFTMAX", [x], [y], ops.Softmax(beta=beta))
    mb.output(y)
    return specializer.compile(mb.build(), name="net", out_dir=tmp_path / "out")


@pytest.mark.parametrize("kw,needle", [
    (dict(out_s=1.0 / 128), "scale 1/256"),
    (dict(out_zp=0), "zero point -128"),
    (dict(in_s=1e-9), "2^-26"),
    (dict(in_s=1e-4, beta=1e-5), "2^-26"),
    (dict(out_dtype="int16", out_s=1.0 / 65536, out_zp=-32768), "int8"),
])
def test_rejects_with_reason(tmp_path, kw, needle):
    with pytest.raises(SpecializerError) as ei:
        _compile_single(tmp_path, **kw)
    msg = str(ei.value)
    assert needle in msg and "\n" not in msg, msg
    if "out_dtype" not in kw:
        assert isinstance(ei.value, ShapeError)
