"""Differential tests: generic and DSP (host twins) int8 UNIDIRECTIONAL_SEQUENCE_LSTM (int16 cell state) against TFLite Micro, bit for bit.

1. The real model's LSTM layer (tflm_mnist_lstm_int8, 28 steps x 28 inputs -> 20 cells), rebuilt as a one-op
   model from the imported graph, on random inputs; the full model against its reference pair when every op of it
   has a kernel.
2. Random single-op LSTM models: cells 1..24, inputs 1..32, steps 1..30, batches 1..2, time-major both ways,
   cell clip on/off, input / hidden scales over orders of magnitude, zero points at the extremes, cell scales
   2^-8..2^-15 (and 2^2..2^-24), with and without the converter's [0]-shaped intermediate tensors.
   Several LSTMs share one model (one compile); every model runs full-range and narrow-range inputs, each
   reference on a fresh interpreter (the state persists across invokes).
3. The sigmoid table the kernel interpolates is re-measured from the oracle's int16 TANH.
4. LSTM variants TFLM's integer kernel does not take give a one-line ShapeError.
"""
from __future__ import annotations

import numpy as np
import pytest

import specializer
from specializer import frontend
from specializer.errors import ShapeError
from specializer.kernels.lstm import SIGMOID_TABLE
from specializer.oracle import run_tflm
from specializer.tflite_writer import ModelBuilder
from spz_testutil import MODELS, assert_bitexact, reference

REAL = "tflm_mnist_lstm_int8"
PER_MODEL = 3


from spz_randlayers import add_lstm, lstm_inputs as _inputs  # noqa: E402


# ---- the real model ----------------------------------------------------------------------------------------
def _lstm_only_model(g) -> bytes:
    """A one-op model with the graph's (first) LSTM, its tensors copied as they are."""
    op = next(o for o in g.ops if o.kind == "UNIDIRECTIONAL_SEQUENCE_LSTM")
    mb = ModelBuilder()

    def add(tid, as_input=False):
        t = g.t(tid)
        sc, zp = (t.quant.scale, t.quant.zero_point) if t.quant else (None, None)
        if as_input:
            return mb.input(t.name, t.shape, t.dtype, sc, zp)
        return mb.tensor(t.name, t.shape, t.dtype, sc, zp, data=t.data, variable=t.variable)

    ins = [None if tid is None else add(tid, as_input=(i == 0)) for i, tid in enumerate(op.inputs)]
    inter = [add(t) for t in op.intermediates]
    y = mb.output(add(op.outputs[0]))
    mb.op(op.kind, ins, [y], op.attrs, intermediates=inter)
    return mb.build()


real_model = pytest.mark.skipif(not (MODELS / f"{REAL}.tflite").exists(), reason="shared model not found")


@real_model
def test_real_model_lstm_layer(tmp_path):
    g = frontend.load_model(MODELS / f"{REAL}.tflite")
    model = _lstm_only_model(g)
    rng = np.random.default_rng(1)
    x_shape = g.t(g.inputs[0]).shape
    inputs = [[rng.integers(-128, 128, size=x_shape).astype(np.int8)] for _ in range(8)]
    inputs += [[rng.integers(-128, -60, size=x_shape).astype(np.int8)] for _ in range(3)]  # MNIST-like: mostly dark
    ref_in, _ = reference(REAL)
    inputs.append(ref_in)
    assert_bitexact(model, inputs, tmp_path)


@real_model
def test_real_model_reference_pair(tmp_path):
    try:
        res = specializer.compile(MODELS / f"{REAL}.tflite", name="net", out_dir=tmp_path / "out")
    except ShapeError as e:  # another op of the model has no kernel yet
        pytest.skip(str(e))
    except specializer.errors.UnsupportedOpError as e:
        pytest.skip(str(e))
    ins, outs = reference(REAL)
    lib = res.host_library(sanitize=True)
    got = lib.run(ins)
    for r, o in zip(outs, got):
        assert np.array_equal(np.asarray(r), np.asarray(o).reshape(np.shape(r)))
    rng = np.random.default_rng(5)  # and the whole model against TFLM on random inputs
    for k in range(4):
        x = rng.integers(-128, 128 if k < 2 else -40, size=ins[0].shape).astype(np.int8)
        assert np.array_equal(run_tflm(MODELS / f"{REAL}.tflite", [x])[0], lib.run([x])[0].reshape(outs[0].shape))


# ---- random single-op models -------------------------------------------------------------------------------
TARGETS = [None, "cortex-m4"]  # generic kernel; the DSP kernel with the portable twins of the intrinsics


@pytest.mark.parametrize("target", TARGETS)
def test_random_lstms(tmp_path, sweep, target):
    n = sweep(24)
    rng = np.random.default_rng(20240611)
    for m in range((n + PER_MODEL - 1) // PER_MODEL):
        mb = ModelBuilder()
        for k in range(min(PER_MODEL, n - m * PER_MODEL)):
            add_lstm(mb, rng, tag=f"m{m}l{k}")
        assert_bitexact(mb.build(), _inputs(mb, rng), tmp_path / f"m{m}", target=target)


@pytest.mark.parametrize("target", TARGETS)
def test_edge_sizes(tmp_path, target):
    """One cell, one input, one step; a long single-batch sequence; time-major with two batches."""
    rng = np.random.default_rng(7)
    mb = ModelBuilder()
    add_lstm(mb, rng, n_cell=1, n_input=1, steps=1, batches=1, tag="a")
    add_lstm(mb, rng, n_cell=24, n_input=32, steps=30, batches=2, time_major=False, tag="b")
    add_lstm(mb, rng, n_cell=5, n_input=3, steps=7, batches=2, time_major=True, intermediates=True, tag="c")
    assert_bitexact(mb.build(), _inputs(mb, rng, 2, 1), tmp_path, target=target)


@pytest.mark.parametrize("target", TARGETS)
def test_cell_scales(tmp_path, target):
    """Cell state scales far from the usual 2^-11..2^-15: both tanh input rescaling paths, clipping at int16."""
    rng = np.random.default_rng(11)
    mb = ModelBuilder()
    for k, p in enumerate((2, -2, -5, -18, -24)):
        add_lstm(mb, rng, cell_pow=p, tag=f"c{k}")
    assert_bitexact(mb.build(), _inputs(mb, rng, 1, 1), tmp_path, target=target)


@pytest.mark.slow
def test_random_lstms_sweep(tmp_path, sweep):
    n = sweep(150)
    rng = np.random.default_rng(99)
    for m in range((n + 5) // 6):
        mb = ModelBuilder()
        for k in range(6):
            add_lstm(mb, rng, tag=f"m{m}l{k}")
        assert_bitexact(mb.build(), _inputs(mb, rng, 2, 2), tmp_path / f"m{m}")


def test_sigmoid_table_matches_oracle():
    """Re-measure the table from TFLM's int16 TANH: input scale 2/12288 makes its table index exactly x/128."""
    mb = ModelBuilder()
    x = mb.input("x", (1, 256), "int16", float(np.float32(2.0 / 12288.0)), 0)
    y = mb.tensor("y", (1, 256), "int16", 2.0 ** -15, 0)
    mb.op("TANH", [x], [y])
    mb.output(y)
    xs = np.zeros((1, 256), np.int16)
    xs[0, :255] = np.arange(255) * 128  # entry i, no interpolation: tanh = table[i] - 32768
    xs[0, 255] = 254 * 128 + 127  # entry 254 interpolated 254/256 of the way to entry 255
    out = run_tflm(mb.build(), [xs])[0].astype(np.int64).reshape(-1) + 32768
    table = list(out[:255]) + [out[254] + (out[255] - out[254])]
    assert table == list(SIGMOID_TABLE)


# ---- rejected variants -----------------------------------------------------------------------------------------
@pytest.mark.parametrize("variant", [dict(peephole=True), dict(per_channel=True), dict(cifg=True), dict(cell_pow=3)],
                         ids=["peephole", "per_channel", "cifg", "cell_scale_8"])
def test_unsupported_variants_are_rejected(tmp_path, variant):
    rng = np.random.default_rng(3)
    mb = ModelBuilder()
    add_lstm(mb, rng, n_cell=4, n_input=3, steps=2, batches=1, **variant)
    with pytest.raises(ShapeError) as e:
        specializer.compile(mb.build(), name="net", out_dir=tmp_path / "out")
    msg = str(e.value)
    assert "\n" not in msg and "lstm_s8" in msg, msg


# ---- streaming: state carried from run to run -------------------------------------------------------------
def _stream_check(model: bytes, frames, tmp_path, target, sanitize=True):
    from specializer.oracle import diff_outputs, run_tflm_stream

    res = specializer.compile(model, name="net", out_dir=tmp_path / "lib", target=target)
    assert "#define NET_HAS_STATE 1" in (tmp_path / "lib" / "net.h").read_text()
    lib = res.host_library(sanitize=sanitize, build_dir=tmp_path)
    got = lib.run_stream(frames)
    want = run_tflm_stream(model, frames)
    for k, (w, o) in enumerate(zip(want, got)):
        bad = diff_outputs(w, o, k)
        assert not bad, f"frame {k}: " + "; ".join(map(str, bad))
    # frames after the first really depend on the carried state (else the test proves nothing)
    fresh = [run_tflm(model, f) for f in frames[1:]]
    assert any(not np.array_equal(a[0], b[0]) for a, b in zip(fresh, want[1:]))
    return got


@pytest.mark.parametrize("target", [None, "cortex-m4"])
def test_streamed_frames_carry_state(tmp_path, target):
    """Random LSTMs fed 4 frames through one arena match TFLite Micro fed the same frames through one
    interpreter, frame by frame; `<name>_reset` starts the stream over."""
    rng = np.random.default_rng(91)
    mb = ModelBuilder()
    add_lstm(mb, rng, n_cell=7, n_input=5, steps=3, batches=1, time_major=False, tag="a")
    add_lstm(mb, rng, n_cell=12, n_input=9, steps=2, batches=2, time_major=True, tag="b")
    model = mb.build()
    frames = _inputs(mb, rng, n_full=2, n_narrow=2)
    got = _stream_check(model, frames, tmp_path, target)
    lib = specializer.compile(model, name="net", out_dir=tmp_path / "lib2", target=target).host_library()
    again = lib.run_stream(frames[:2])  # a new stream: reset, same first frames, same outputs
    assert all(np.array_equal(a, b) for fa, fb in zip(again, got[:2]) for a, b in zip(fa, fb))


@real_model
def test_real_model_streamed(tmp_path):
    g = frontend.load_model(MODELS / f"{REAL}.tflite")
    model = (MODELS / f"{REAL}.tflite").read_bytes()
    rng = np.random.default_rng(92)
    x = g.t(g.inputs[0])
    frames = [[rng.integers(-128, 128, size=x.shape).astype(np.int8)] for _ in range(3)]
    _stream_check(model, frames, tmp_path, "cortex-m4")


def test_stateless_model_has_no_state(tmp_path):
    from spz_randlayers import random_model

    model, _, _ = random_model(np.random.default_rng(93), 2, ("fc",))
    specializer.compile(model, name="net", out_dir=tmp_path / "lib")
    h = (tmp_path / "lib" / "net.h").read_text()
    assert "#define NET_HAS_STATE 0" in h and "void net_reset(uint8_t *arena);" in h
