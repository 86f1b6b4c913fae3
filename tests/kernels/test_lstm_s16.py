"""Differential tests: the int16x8 UNIDIRECTIONAL_SEQUENCE_LSTM (`lstm_s16`, TFLite Micro's 16x8 integer LSTM:
int16 input / hidden state / output, int8 weights, int64 biases, int16 cell state) against TFLite Micro, bit for bit.

1. Random single-op models built with the project's writer: cells 1..24, inputs 1..20, steps 1..6, batches 1..2,
   time-major both ways, cell clip on/off, input / hidden scales over orders of magnitude, zero or nonzero int16
   zero points, cell scales 2^-8..2^-15 (and 2^2..2^-24), with and without the converter's intermediates. Several
   LSTMs share one model; every model runs full-range, narrow (around the zero point) and extreme inputs
   (all -32768, all 32767, alternating), each reference on a fresh interpreter. Host generic build and the
   cortex-m4 build (the DSP LSTM refuses int16, so lstm_s16 runs there too), both with ASan/UBSan.
2. One model cross-compiled and run in the simulated Cortex-M4.
3. Streaming: frames through one arena match TFLite Micro fed the same frames through one interpreter.
4. Forms refused with a one-line reason: int32 biases (TFLM's 16x8 LSTM reads biases as int64), peephole, CIFG,
   per-channel weights, mixed int16 / int8 activations, FC rescales TFLite's 64-bit requantization cannot take,
   biases that would overflow its accumulator, int16 at positions the op does not take it.
"""
from __future__ import annotations

import shutil

import numpy as np
import pytest

import specializer
from specializer import ops
from specializer.errors import ShapeError, UnsupportedTypeError
from specializer.oracle import diff_outputs, run_tflm, run_tflm_stream
from specializer.tflite_writer import ModelBuilder
from spz_randlayers import lstm_gate_constants
from spz_testutil import assert_bitexact

TARGETS = [None, "cortex-m4"]
HAVE_GCC = shutil.which("arm-none-eabi-gcc") is not None


def _zp16(rng) -> int:
    return 0 if rng.random() < 0.5 else int(rng.integers(-3000, 3001))


def add_lstm16(mb: ModelBuilder, rng, *, n_cell=None, n_input=None, steps=None, batches=None, time_major=None,
               intermediates=None, cell_pow=None, bias_dtype="int64", peephole=False, per_channel=False, cifg=False,
               hidden_dtype="int16", s_x=None, zp_x=None, bias_scale=1.0, w_gain=1.0, tag="l"):
    """Add one random int16x8 LSTM (its own input and output) to `mb`; returns the input index."""
    S = n_cell or int(rng.integers(1, 25))
    I = n_input or int(rng.integers(1, 21))
    T = steps or int(rng.integers(1, 7))
    B = batches or int(rng.integers(1, 3))
    tm = bool(rng.random() < 0.5) if time_major is None else time_major
    s_x = s_x if s_x is not None else float(10 ** rng.uniform(-5, -1))
    zp_x = _zp16(rng) if zp_x is None else zp_x
    s_h = float(10 ** rng.uniform(-4.5, -2)) if rng.random() < 0.7 else 2.0 ** -15
    zp_h = _zp16(rng)
    s_c = 2.0 ** (cell_pow if cell_pow is not None else -int(rng.integers(8, 16)))
    shape = (T, B, I) if tm else (B, T, I)
    x = mb.input(f"{tag}_x", shape, "int16", s_x, zp_x)
    ins = [x] + lstm_gate_constants(mb, rng, tag, I, S, s_x, s_h, per_channel=per_channel, cifg=cifg,
                                    peephole=peephole, unit=16384, gain=w_gain, extreme=True,
                                    bias_dtype=bias_dtype, bias_scale=bias_scale)
    ins += [None, None]  # projection
    h = mb.tensor(f"{tag}_h", (B, S), hidden_dtype, s_h, zp_h if hidden_dtype == "int16" else 0, variable=True)
    c = mb.tensor(f"{tag}_c", (B, S), "int16", s_c, 0, variable=True)
    ins += [h, c, None, None, None, None]
    y = mb.tensor(f"{tag}_y", (shape[0], shape[1], S), "int16", s_h, zp_h)
    inter = []
    if intermediates if intermediates is not None else rng.random() < 0.5:
        inter = [mb.tensor(f"{tag}_i{k}", (0,), "float32") for k in range(4)]
        inter.append(mb.tensor(f"{tag}_eh", (0,), "int16", s_h, zp_h))
    clip = float(rng.choice([0.0, 0.5, 3.0, 10.0])) if rng.random() < 0.6 else 0.0
    attrs = ops.UnidirectionalSequenceLSTM(activation="TANH", cell_clip=clip, time_major=tm)
    mb.op("UNIDIRECTIONAL_SEQUENCE_LSTM", ins, [y], attrs, intermediates=inter)
    mb.output(y)
    return x


def _inputs(mb: ModelBuilder, rng, n_full=1, n_narrow=1, extremes=True):
    """Full-range, narrow-range (within 300 of the zero point) and extreme int16 inputs for every input of `mb`."""
    sets = []
    for k in range(n_full + n_narrow):
        xs = []
        for tid in mb.inputs:
            t = mb.tensors[tid]
            if k < n_full:
                xs.append(rng.integers(-32768, 32768, size=t.shape).astype(np.int16))
            else:
                zp = t.zero_point[0]
                xs.append(rng.integers(max(-32768, zp - 300), min(32767, zp + 300) + 1, size=t.shape)
                          .astype(np.int16))
        sets.append(xs)
    if extremes:
        for fill in ("min", "max", "alt"):
            xs = []
            for tid in mb.inputs:
                shape = mb.tensors[tid].shape
                if fill == "alt":
                    v = np.where(np.arange(int(np.prod(shape))) % 2 == 0, -32768, 32767).reshape(shape)
                else:
                    v = np.full(shape, -32768 if fill == "min" else 32767)
                xs.append(v.astype(np.int16))
            sets.append(xs)
    return sets


def _kernels(model: bytes, tmp_path, target) -> list:
    res = specializer.compile(model, name="net", out_dir=tmp_path / "k", target=target)
    return [op.kernel.entry for op in res.graph.ops]


# ---- random single-op models -------------------------------------------------------------------------------
@pytest.mark.parametrize("target", TARGETS)
def test_random_lstms_s16(tmp_path, sweep, target):
    n = sweep(12)
    per_model = 4
    rng = np.random.default_rng(160611)
    for m in range((n + per_model - 1) // per_model):
        mb = ModelBuilder()
        for k in range(min(per_model, n - m * per_model)):
            add_lstm16(mb, rng, tag=f"m{m}l{k}")
        model = mb.build()
        if m == 0:
            assert set(_kernels(model, tmp_path / "sel", target)) == {"lstm_s16"}
        assert_bitexact(model, _inputs(mb, rng), tmp_path / f"m{m}", target=target)


@pytest.mark.parametrize("target", TARGETS)
def test_edge_sizes_and_cell_scales_s16(tmp_path, target):
    """One cell / input / step; the largest sizes; time-major with two batches and intermediates; cell state
    scales far from the usual 2^-11..2^-15 (both tanh input rescaling paths)."""
    rng = np.random.default_rng(17)
    mb = ModelBuilder()
    add_lstm16(mb, rng, n_cell=1, n_input=1, steps=1, batches=1, tag="a")
    add_lstm16(mb, rng, n_cell=24, n_input=20, steps=6, batches=2, time_major=False, tag="b")
    add_lstm16(mb, rng, n_cell=5, n_input=3, steps=6, batches=2, time_major=True, intermediates=True, tag="c")
    add_lstm16(mb, rng, n_cell=7, n_input=4, steps=3, batches=1, s_x=2.0 ** -15, zp_x=0, tag="d")
    for k, p in enumerate((2, -2, -5, -18, -24)):
        add_lstm16(mb, rng, cell_pow=p, tag=f"c{k}")
    assert_bitexact(mb.build(), _inputs(mb, rng, 2, 1), tmp_path, target=target)


@pytest.mark.skipif(not HAVE_GCC, reason="arm-none-eabi-gcc not installed")
def test_lstm_s16_in_simulator(tmp_path):
    from spz_randlayers import sim_mismatches

    rng = np.random.default_rng(1606)
    mb = ModelBuilder()
    add_lstm16(mb, rng, n_cell=13, n_input=9, steps=4, batches=2, time_major=True, tag="a")
    add_lstm16(mb, rng, n_cell=6, n_input=17, steps=5, batches=2, time_major=False, tag="b")
    bad, res = sim_mismatches(mb.build(), _inputs(mb, rng, 1, 1), tmp_path / "sim")
    assert [op.kernel.entry for op in res.graph.ops] == ["lstm_s16", "lstm_s16"]
    assert not bad, f"not bit-exact in the simulator: {bad[:5]}"


# ---- streaming: state carried from run to run -------------------------------------------------------------
@pytest.mark.parametrize("target", TARGETS)
def test_streamed_frames_carry_state_s16(tmp_path, target):
    """Frames through one arena match TFLite Micro fed the same frames through one interpreter, frame by frame;
    `<name>_reset` starts the stream over (the int16 hidden state restarts at 0, as TFLM's does)."""
    rng = np.random.default_rng(161)
    mb = ModelBuilder()
    add_lstm16(mb, rng, n_cell=7, n_input=5, steps=3, batches=1, time_major=False, tag="a")
    add_lstm16(mb, rng, n_cell=12, n_input=9, steps=2, batches=2, time_major=True, tag="b")
    model = mb.build()
    frames = _inputs(mb, rng, n_full=2, n_narrow=2, extremes=False)
    res = specializer.compile(model, name="net", out_dir=tmp_path / "lib", target=target)
    assert "#define NET_HAS_STATE 1" in (tmp_path / "lib" / "net.h").read_text()
    lib = res.host_library(sanitize=True, build_dir=tmp_path)
    got = lib.run_stream(frames)
    want = run_tflm_stream(model, frames)
    for k, (w, o) in enumerate(zip(want, got)):
        bad = diff_outputs(w, o, k)
        assert not bad, f"frame {k}: " + "; ".join(map(str, bad))
    fresh = [run_tflm(model, f) for f in frames[1:]]  # later frames really depend on the carried state
    assert any(not np.array_equal(a[0], b[0]) for a, b in zip(fresh, want[1:]))
    again = lib.run_stream(frames[:2])  # a new stream: reset, same first frames, same outputs
    assert all(np.array_equal(a, b) for fa, fb in zip(again, got[:2]) for a, b in zip(fa, fb))


# ---- refused forms -----------------------------------------------------------------------------------------
@pytest.mark.parametrize("variant,why", [
    (dict(bias_dtype="int32"), "reads its biases as int64"),
    (dict(peephole=True), "peephole"),
    (dict(cifg=True), "CIFG"),
    (dict(per_channel=True), "per-tensor symmetric"),
    (dict(hidden_dtype="int8"), "needs int16 hidden state"),
    (dict(w_gain=2.0 ** 16), "outside -31..7"),
    (dict(bias_scale=2.0 ** 40), "2^47"),
], ids=["int32_bias", "peephole", "cifg", "per_channel", "int8_hidden", "fc_shift", "bias_overflow"])
def test_unsupported_s16_forms_are_rejected(tmp_path, variant, why):
    rng = np.random.default_rng(3)
    mb = ModelBuilder()
    add_lstm16(mb, rng, n_cell=4, n_input=3, steps=2, batches=1, **variant)
    with pytest.raises(ShapeError) as e:
        specializer.compile(mb.build(), name="net", out_dir=tmp_path / "out")
    msg = str(e.value)
    assert "\n" not in msg and "lstm_s16: " in msg and why in msg.split("lstm_s16: ")[1], msg


@pytest.mark.parametrize("target", TARGETS)
def test_int8_entries_refuse_int16(tmp_path, target):
    """The int8 LSTM entries (generic and, on cortex-m4, the DSP one) keep refusing the 16x8 form, and the int16
    entry refuses the 8x8->16 one."""
    from spz_randlayers import add_lstm

    from specializer import registry

    rng = np.random.default_rng(5)
    for build, own in ((add_lstm16, "lstm_s16"), (add_lstm, None)):
        mb = ModelBuilder()
        build(mb, rng, n_cell=4, n_input=3, steps=2, batches=1)
        res = specializer.compile(mb.build(), name="net", out_dir=tmp_path / f"o{own}", target=target)
        op = res.graph.ops[0]
        names = []
        for e in registry.entries():
            if op.kind in e.ops and e.requires <= frozenset(getattr(res.core, "features", ()) or ()):
                names.append(e.name)
                why = e.reject(res.graph, op, res.core)
                if own is not None:
                    assert (why is None) == (e.name == own), (e.name, why)
                elif e.name == "lstm_s16":
                    assert why and "needs int16 input/output" in why, why
        assert ("lstm_s8_dsp" in names) == (target == "cortex-m4"), names
        if own is not None:
            assert op.kernel.entry == own


def test_int16_outside_the_lstm_positions_is_refused(tmp_path):
    """An int16 activation where the op takes none (a gate weight fed at run time) is a one-line type error."""
    rng = np.random.default_rng(9)
    mb = ModelBuilder()
    add_lstm16(mb, rng, n_cell=3, n_input=2, steps=1, batches=1)
    model_ops = mb.ops[0]
    w = mb.input("w_runtime", (3, 2), "int16", 0.01, 0)
    ins = list(model_ops.inputs)
    ins[1] = w
    model_ops.inputs = tuple(ins)
    with pytest.raises(UnsupportedTypeError) as e:
        specializer.compile(mb.build(), name="net", out_dir=tmp_path / "out")
    msg = str(e.value)
    assert "\n" not in msg and "input 1" in msg and "takes int16 only as input 0" in msg, msg
