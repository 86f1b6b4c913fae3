"""Differential tests: the integer SVDF (int8 input/output, int16 or int8 state) against TFLite Micro, bit for bit,
frame after frame.

1. Random single-SVDF layers (several per model, one compile): batches 1..3, units 1..16, rank 1..3, memory
   1..10, inputs 1..40, with and without bias, NONE/RELU, scales over orders of magnitude, input zero points at
   the extremes, state zero points mostly 0 and sometimes not; `wild` layers saturate the state, take feature
   multipliers > 1 and wrap TFLM's int32 time accumulator. Every model streams several frames (full range and
   narrow range alternately) through one arena, against one TFLM interpreter fed the same frames: the state
   carries from frame to frame on both sides. Host build with ASan/UBSan, generic and cortex-m4 (the DSP build's
   host twin, which runs the generic kernel).
2. A layer without bias is compared with TFLM on the same model given an explicit zero bias (TFLM's Eval reads a
   missing bias as zeros, but the installed TFLM's Prepare dereferences the absent bias and crashes).
3. The fused activation is not applied, as in TFLM's integer SVDF; `<name>_reset` restarts the stream.
4. Layers TFLM refuses, and float / hybrid SVDF, give a one-line error naming SVDF.
"""
from __future__ import annotations

import shutil

import numpy as np
import pytest

import specializer
from specializer.errors import ModelFormatError, ShapeError, UnsupportedTypeError
from specializer.oracle import diff_outputs, run_tflm, run_tflm_stream
from specializer.tflite_writer import ModelBuilder
from specializer import ops
from spz_randlayers import svdf_frames, svdf_model_pair

TARGETS = [None, "cortex-m4"]  # generic build; the DSP build's host twin (no specialized SVDF: the generic kernel)
PER_MODEL = 4
FRAMES = 6


def _stream_bitexact(model: bytes, twin: bytes, frames, tmp_path, target=None, desc=(), sanitize=True):
    """Compile `model`, stream `frames` through one arena and `twin` through one TFLM interpreter; fail on any
    difference. Returns our outputs per frame."""
    res = specializer.compile(model, name="net", out_dir=tmp_path / "lib", target=target, verify_each=True)
    assert "#define NET_HAS_STATE 1" in (tmp_path / "lib" / "net.h").read_text()
    lib = res.host_library(sanitize=sanitize, build_dir=tmp_path)
    got = lib.run_stream(frames)
    want = run_tflm_stream(twin, frames)
    bad = [b for k, (w, o) in enumerate(zip(want, got)) for b in diff_outputs(w, o, k)]
    assert not bad, ("not bit-exact with TFLM (input #k = frame k): " + "; ".join(map(str, bad[:5]))
                     + "\nlayers (output k = layer k):\n  " + "\n  ".join(desc))
    return got, want


@pytest.mark.parametrize("target", TARGETS)
def test_random_svdfs_streamed(tmp_path, sweep, target):
    n = sweep(32)
    for m in range((n + PER_MODEL - 1) // PER_MODEL):
        seed = 4100 + m
        model, twin, desc, mb = svdf_model_pair(seed, min(PER_MODEL, n - m * PER_MODEL))
        frames = svdf_frames(mb, np.random.default_rng(seed + 1), FRAMES)
        _stream_bitexact(model, twin, frames, tmp_path / f"m{m}", target, desc)


@pytest.mark.parametrize("target", TARGETS)
def test_edge_sizes(tmp_path, target):
    """One of everything; the largest layer of the sweep; every rank with memory 1; a wild layer without bias."""
    layers = [dict(batches=1, units=1, rank=1, memory=1, n_input=1, bias=True),
              dict(batches=3, units=16, rank=3, memory=10, n_input=40, bias=True),
              dict(batches=2, units=3, rank=3, memory=1, n_input=5, bias=False),
              dict(batches=1, units=5, rank=2, memory=7, n_input=9, bias=False, wild=True),
              dict(batches=2, units=4, rank=1, memory=10, n_input=40, bias=True, wild=True)]
    model, twin, desc, mb = svdf_model_pair(77, layers)
    frames = svdf_frames(mb, np.random.default_rng(78), 12)  # more frames than the longest memory
    _stream_bitexact(model, twin, frames, tmp_path, target, desc)


@pytest.mark.parametrize("target", TARGETS)
def test_int8_state(tmp_path, target):
    """TFLM's other integer SVDF: int8 time weights and state (state zero point anywhere in int8)."""
    model, twin, desc, mb = svdf_model_pair(4200, 4, state="int8")
    frames = svdf_frames(mb, np.random.default_rng(4201), FRAMES)
    _stream_bitexact(model, twin, frames, tmp_path, target, desc)


def test_state_carries_and_reset_restarts(tmp_path):
    """Later frames depend on the carried state (a fresh interpreter gives other outputs); a new stream (reset)
    gives the first stream's outputs again."""
    model, twin, desc, mb = svdf_model_pair(4300, 2, bias=True, wild=False, memory=6, state_zp=0)
    assert model == twin
    frames = svdf_frames(mb, np.random.default_rng(4301), 4)
    got, want = _stream_bitexact(model, model, frames, tmp_path, None, desc)
    fresh = [run_tflm(model, f) for f in frames[1:]]
    assert any(not np.array_equal(a[k], b[k]) for a, b in zip(fresh, want[1:]) for k in range(2))
    lib = specializer.compile(model, name="net", out_dir=tmp_path / "lib2").host_library()
    again = lib.run_stream(frames[:2])
    assert all(np.array_equal(a, b) for fa, fb in zip(again, got[:2]) for a, b in zip(fa, fb))
    one = lib.run(frames[0])  # run() starts from a reset state too
    assert all(np.array_equal(a, b) for a, b in zip(one, got[0]))


def test_relu_is_not_applied(tmp_path):
    """TFLM's integer SVDF ignores the fused activation: RELU layers give outputs below the output zero point."""
    model, twin, desc, mb = svdf_model_pair(4400, 3, act="RELU", bias=True, wild=False)
    frames = svdf_frames(mb, np.random.default_rng(4401), 3)
    got, want = _stream_bitexact(model, twin, frames, tmp_path, None, desc)
    zps = [mb.tensors[t].zero_point[0] for t in mb.outputs]
    assert any((np.asarray(f[k]) < zps[k]).any() for f in want for k in range(len(zps)))


def test_missing_bias_equals_zero_bias(tmp_path):
    """A layer without bias computes exactly as the same layer with an all-zero bias."""
    model, twin, desc, mb = svdf_model_pair(4500, 3, bias=False)
    assert model != twin
    frames = svdf_frames(mb, np.random.default_rng(4501), 4)
    a = specializer.compile(model, name="net", out_dir=tmp_path / "a").host_library().run_stream(frames)
    b = specializer.compile(twin, name="net", out_dir=tmp_path / "b").host_library().run_stream(frames)
    assert all(np.array_equal(x, y) for fa, fb in zip(a, b) for x, y in zip(fa, fb))


# ---- refused layers --------------------------------------------------------------------------------------------
def _svdf(variant: str) -> bytes:
    """A small SVDF (batch 1, 4 inputs, 3 units, rank 2, memory 3) altered by `variant`."""
    rng = np.random.default_rng(5)
    B, I, U, R, M = 1, 4, 3, 2, 3
    F = U * R
    mb = ModelBuilder()
    if variant in ("float", "hybrid"):
        x = mb.input("x", (B, I), "float32")
        if variant == "float":
            wf = mb.const("wf", rng.standard_normal((F, I)).astype(np.float32))
            wt = mb.const("wt", rng.standard_normal((F, M)).astype(np.float32))
        else:
            wf = mb.const("wf", rng.integers(-127, 128, (F, I)).astype(np.int8), scale=0.01)
            wt = mb.const("wt", rng.integers(-127, 128, (F, M)).astype(np.int8), scale=0.01)
        b = mb.const("b", rng.standard_normal(U).astype(np.float32))
        st = mb.tensor("st", (B, M * F), "float32", variable=True)
        y = mb.tensor("y", (B, U), "float32")
        mb.op("SVDF", [x, wf, wt, b, st], [y], ops.SVDF(rank=R))
        mb.output(y)
        return mb.build()
    x = mb.input("x", (B, I), "int8", 0.05, 3)
    wf_scale = np.full(F, 0.01, np.float32) if variant == "per_channel" else 0.01
    wf = mb.const("wf", rng.integers(-127, 128, (F, I)).astype(np.int8), scale=wf_scale)
    wt_dtype = np.int8 if variant == "mixed_types" else np.int16
    wt = mb.const("wt", rng.integers(-127, 128, (F, M)).astype(wt_dtype), scale=0.001)
    b = mb.const("b", rng.integers(-100, 100, U).astype(np.int32), scale=0.5 if variant == "bias_scale" else 2e-5)
    st = mb.tensor("st", (B, M * F), "int16", 0.02, 0, variable=variant != "not_variable")
    y = mb.tensor("y", (B, U), "int8", 0.1, 0)
    mb.op("SVDF", [x, wf, wt, b, st], [y], ops.SVDF(rank=4 if variant == "rank" else R))
    mb.output(y)
    return mb.build()


# variant -> (error type, words the message must hold, TFLM's own failure or None when TFLM runs it)
REFUSED = {
    "float": (UnsupportedTypeError, "float32 SVDF is not supported", None),
    "hybrid": (UnsupportedTypeError, "hybrid (float32 input, int8 weights) SVDF is not supported",
               "weights_feature->type != kTfLiteFloat32"),
    "bias_scale": (ShapeError, "bias scale", "std::abs"),
    "not_variable": (ModelFormatError, "not a variable tensor", "activation_state->is_variable"),
    "rank": (ShapeError, "rank 4 does not divide the 6 filters", "num_filters % rank"),
    "mixed_types": (ShapeError, "same type", None),
    "per_channel": (ShapeError, "per-tensor", None),
}


@pytest.mark.parametrize("variant", sorted(REFUSED))
def test_refused_variants(tmp_path, variant, capfd):
    err, words, tflm_says = REFUSED[variant]
    model = _svdf(variant)
    with pytest.raises(err) as e:
        specializer.compile(model, name="net", out_dir=tmp_path / "out")
    msg = str(e.value)
    assert "\n" not in msg and "SVDF" in msg and words in msg, msg
    if err is ShapeError:
        assert "svdf_s8" in msg, msg
    if tflm_says is not None:  # TFLM refuses the layer as well (its Prepare fails)
        with pytest.raises(RuntimeError):
            run_tflm(model, [np.zeros((1, 4), np.float32 if variant == "hybrid" else np.int8)])
        assert tflm_says in capfd.readouterr().err


# ---- the simulated Cortex-M4 -----------------------------------------------------------------------------------
@pytest.mark.skipif(shutil.which("arm-none-eabi-gcc") is None, reason="arm-none-eabi-gcc not installed")
@pytest.mark.parametrize("opt", ["-O2", "-Os"])
def test_svdfs_in_simulator(tmp_path, opt):
    """Random SVDFs (int16 and int8 state, with and without bias, wild ones) cross-compiled for the Cortex-M4 and run
    in the simulator. The bench harness resets the state before every invoke, so each input set is one frame from
    a fresh state, compared with a fresh TFLM interpreter; then every arena store of one inference is checked
    against the memory plan (the SVDF may write its output and its own state only)."""
    from specializer.plancheck import check_plan_in_simulator
    from spz_randlayers import sim_mismatches

    seed = 4600 if opt == "-O2" else 4610
    layers = [dict(state="int8" if k % 4 == 3 else "int16", wild=k % 3 == 2, state_zp=None if k % 2 else 0)
              for k in range(8)]
    model, twin, desc, mb = svdf_model_pair(seed, layers)
    frames = svdf_frames(mb, np.random.default_rng(seed + 1), 3)
    bad, res = sim_mismatches(model, frames, tmp_path / "sim", opt=opt, oracle_model=twin)
    assert all(op.kernel.entry == "svdf_s8" for op in res.graph.ops if op.kernel is not None)
    assert not bad, "not bit-exact in the simulator: " + "; ".join(
        f"frame {c} output {o} ({desc[o]}) first at {i}" for c, o, i in bad[:6])
    violations, stores, _ = check_plan_in_simulator(model, "cortex-m4", opt=opt, inputs=frames[0],
                                                    build_dir=tmp_path / "plan")
    assert stores and not violations, violations[:4]
