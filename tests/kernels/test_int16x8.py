"""int16x8 (16-bit activations, 8-bit weights): randomized single-layer models built with the project's TFLite
writer, compiled and compared with tflite-micro on the host (generic build and the cortex-m4 build, ASan/UBSan).

QUANTIZE int8 <-> int16, int16 -> int16 and float32 -> int16, DEQUANTIZE int16 -> float32; FULLY_CONNECTED
16x8 (int64, int32 or no bias, per-tensor and per-channel weights, any zero points, fused activations, depths
up to 4000); ADD and SUB 16x8 (broadcasts, output scales down to TFLM's bound); RESHAPE, SQUEEZE, EXPAND_DIMS,
TRANSPOSE, STRIDED_SLICE, SPLIT, SPLIT_V, CONCATENATION on int16 data; an int8 -> int16 -> int8/float chain.
Several layers per model (one output each), scales over orders of magnitude, zero points at the type's edges;
the C API of int16 and mixed-type models; the one-line errors for what stays refused.
"""
from __future__ import annotations

import numpy as np
import pytest

import specializer
from specializer.errors import UnsupportedTypeError
from specializer.tflite_writer import ModelBuilder
from spz_testutil import assert_bitexact

PER_MODEL = 6
TARGETS = (None, "cortex-m4")
_RANGE = {"int8": (-128, 127), "int16": (-32768, 32767)}


def _zp(rng, dtype):
    lo, hi = _RANGE[dtype]
    if dtype == "int16" and rng.random() < 0.5:
        return 0  # the usual int16x8 form (symmetric)
    return int(rng.choice([lo, hi, 0])) if rng.random() < 0.3 else int(rng.integers(lo, hi + 1))


def _shape(rng):
    return tuple(int(rng.integers(1, 9)) for _ in range(int(rng.integers(1, 5))))


def _ints(rng, shape, dtype, k):
    lo, hi = _RANGE[dtype]
    if k == 1:
        lo, hi = sorted(rng.integers(lo, hi + 1, 2).tolist())
    x = rng.integers(lo, hi + 1, size=shape)
    flat = x.reshape(-1)
    flat[rng.integers(0, flat.size)] = _RANGE[dtype][k % 2]  # an extreme value
    return x.astype(dtype)


def _float_inputs(rng, shape, scale):
    n = int(np.prod(shape))
    s = np.float32(scale)
    k = rng.integers(-40000, 40000, n).astype(np.float32)
    half = ((k + np.float32(0.5)) * s).astype(np.float32)
    pick = rng.integers(0, 5, n)
    x = np.where(pick == 0, half, 0).astype(np.float32)
    x = np.where(pick == 1, np.nextafter(half, np.float32(np.inf)), x)
    x = np.where(pick == 2, np.nextafter(half, np.float32(-np.inf)), x)
    x = np.where(pick == 3, (rng.uniform(-3e4, 3e4, n) * s).astype(np.float32), x)
    x = np.where(pick == 4, (rng.uniform(-1e5, 1e5, n) * s).astype(np.float32), x)
    x[rng.integers(0, n)] = 0.0
    return x.reshape(shape).astype(np.float32)


# ---- QUANTIZE / DEQUANTIZE -------------------------------------------------------------------------------------
@pytest.mark.parametrize("pair", [("int8", "int16"), ("int16", "int8"), ("int16", "int16")])
@pytest.mark.parametrize("seed", range(2))
def test_requantize_int16_random(pair, seed, tmp_path):
    rng = np.random.default_rng(16000 + 10 * seed + len(pair[0]) * 3 + len(pair[1]))
    src, dst = pair
    mb = ModelBuilder()
    shapes = []
    for i in range(PER_MODEL):
        shape = _shape(rng)
        s_in = float(10 ** rng.uniform(-5, 0))
        s_out = float(s_in * 10 ** rng.uniform(-2.5, 2.5))
        if dst == "int16" and src == "int8":
            s_out = float(s_out / 200)  # int16 keeps more resolution
        x = mb.input(f"x{i}", shape, src, s_in, _zp(rng, src))
        y = mb.tensor(f"y{i}", shape, dst, s_out, _zp(rng, dst))
        mb.op("QUANTIZE", [x], [y])
        mb.output(y)
        shapes.append(shape)
    data = mb.build()
    ins = [[_ints(rng, sh, src, k) for sh in shapes] for k in range(2)]
    for target in TARGETS:
        assert_bitexact(data, ins, tmp_path / str(target), target=target)


@pytest.mark.parametrize("seed", range(2))
def test_quantize_float_to_int16_random(seed, tmp_path):
    rng = np.random.default_rng(16100 + seed)
    mb = ModelBuilder()
    specs = []
    for i in range(PER_MODEL):
        shape = _shape(rng)
        s = float(10 ** rng.uniform(-6, 0))
        x = mb.input(f"x{i}", shape, "float32")
        y = mb.tensor(f"y{i}", shape, "int16", s, _zp(rng, "int16"))
        mb.op("QUANTIZE", [x], [y])
        mb.output(y)
        specs.append((shape, s))
    data = mb.build()
    ins = [[_float_inputs(rng, sh, s) for sh, s in specs] for _ in range(2)]
    for target in TARGETS:
        assert_bitexact(data, ins, tmp_path / str(target), target=target)


@pytest.mark.parametrize("seed", range(2))
def test_dequantize_int16_random(seed, tmp_path):
    rng = np.random.default_rng(16200 + seed)
    mb = ModelBuilder()
    shapes = []
    for i in range(PER_MODEL):
        shape = _shape(rng)
        s = float(10 ** rng.uniform(-6, 1))
        x = mb.input(f"x{i}", shape, "int16", s, _zp(rng, "int16"))
        y = mb.tensor(f"y{i}", shape, "float32")
        mb.op("DEQUANTIZE", [x], [y])
        mb.output(y)
        shapes.append(shape)
    data = mb.build()
    ins = [[_ints(rng, sh, "int16", k) for sh in shapes] for k in range(2)]
    for target in TARGETS:
        assert_bitexact(data, ins, tmp_path / str(target), target=target)


# ---- the C API of int16 models ---------------------------------------------------------------------------------
def test_int16_io_accessors(tmp_path):
    """All-int16 inputs and outputs: `int16_t *` accessors; int8 and int16 outputs mixed: `void *` and
    <NAME>_OUTPUT<i>_IS_INT16 on the int16 ones."""
    rng = np.random.default_rng(16300)
    mb = ModelBuilder()
    x = mb.input("x", (2, 5), "int16", 0.01, 0)
    y = mb.tensor("y", (2, 5), "int16", 0.003, 7)
    mb.op("QUANTIZE", [x], [y])
    mb.output(y)
    data = mb.build()
    res = specializer.compile(data, out_dir=tmp_path / "a")
    h = (tmp_path / "a" / "net.h").read_text()
    assert "int16_t *net_input(uint8_t *arena, int index);" in h
    assert "int16_t *net_output(uint8_t *arena, int index);" in h
    assert "NET_OUTPUT0_IS_INT16 1" in h and "NET_OUTPUT0_SIZE 20u" in h
    assert [o.dtype for o in res.outputs] == ["int16"]
    assert_bitexact(data, [[_ints(rng, (2, 5), "int16", k)] for k in range(2)], tmp_path / "a1")

    mb = ModelBuilder()
    x = mb.input("x", (3, 4), "int8", 0.05, -3)
    y16 = mb.tensor("y16", (3, 4), "int16", 0.0004, 0)
    y8 = mb.tensor("y8", (3, 4), "int8", 0.07, 11)
    mb.op("QUANTIZE", [x], [y16])
    mb.op("QUANTIZE", [x], [y8])
    mb.output(y8)
    mb.output(y16)
    data = mb.build()
    specializer.compile(data, out_dir=tmp_path / "b")
    h = (tmp_path / "b" / "net.h").read_text()
    assert "int8_t *net_input(uint8_t *arena, int index);" in h
    assert "void *net_output(uint8_t *arena, int index);" in h
    assert "NET_OUTPUT1_IS_INT16 1" in h and "NET_OUTPUT0_IS_INT16" not in h
    assert_bitexact(data, [[_ints(rng, (3, 4), "int8", k)] for k in range(2)], tmp_path / "b1")


def test_int16_with_float_io_is_refused(tmp_path):
    mb = ModelBuilder()
    x = mb.input("x", (4,), "float32")
    x16 = mb.input("x16", (4,), "int16", 0.1, 0)
    y = mb.tensor("y", (4,), "int16", 0.1, 0)
    z = mb.tensor("z", (4,), "int16", 0.2, 0)
    mb.op("QUANTIZE", [x], [y])
    mb.op("QUANTIZE", [x16], [z])
    mb.output(y)
    mb.output(z)
    with pytest.raises(UnsupportedTypeError, match="mix types float32, int16"):
        specializer.compile(mb.build(), out_dir=None)


# ---- FULLY_CONNECTED 16x8 --------------------------------------------------------------------------------------
FC_ACTS = ("NONE", "NONE", "RELU", "RELU6", "RELU_N1_TO_1")


def _fc_layer(mb, rng, i, zp_in=None, zp_out=None, per_channel=None, bias=True, bias_dtype="int64"):
    """One random int16x8 FULLY_CONNECTED: input (batches, depth) or rank 3-4 flattened by depth."""
    depth = int(rng.choice([1, 2, 3, 7, 16, 33, 64, 200])) if rng.random() < 0.8 else int(rng.integers(1, 300))
    units = int(rng.choice([1, 2, 5, 8, 17])) if rng.random() < 0.7 else int(rng.integers(1, 40))
    batches = int(rng.integers(1, 4))
    shape = (batches, depth) if rng.random() < 0.7 else (batches, 1, depth)
    s_in = float(10 ** rng.uniform(-5, -1))
    per_channel = (rng.random() < 0.4) if per_channel is None else per_channel
    w_s = (10 ** rng.uniform(-4, -1, units)) if per_channel else float(10 ** rng.uniform(-4, -1))
    w = rng.integers(-127, 128, (units, depth)).astype(np.int8)
    big_bias = rng.random() < 0.3
    acc_typical = 18000.0 * 70.0 * np.sqrt(depth) + (1 << 24 if big_bias else 1 << 12)
    s_out = float(s_in * float(np.mean(w_s)) * acc_typical / 8000 * 10 ** rng.uniform(-1.5, 1))
    zp_in = (0 if rng.random() < 0.6 else int(rng.integers(-300, 300))) if zp_in is None else zp_in
    zp_out = (0 if rng.random() < 0.6 else int(rng.integers(-300, 300))) if zp_out is None else zp_out
    x = mb.input(f"x{i}", shape, "int16", s_in, zp_in)
    wt = mb.const(f"w{i}", w, scale=list(map(float, np.atleast_1d(w_s))) if per_channel else w_s, zero_point=0)
    b = None
    if bias:
        bscale = (s_in * np.asarray(w_s, dtype=np.float64)) if per_channel else s_in * w_s
        lim = 1 << 24 if big_bias else 1 << 12
        bias_v = rng.integers(-lim, lim, units).astype(bias_dtype)
        b = mb.const(f"b{i}", bias_v, scale=list(map(float, np.atleast_1d(bscale))) if per_channel
                     else float(bscale), zero_point=0)
    y = mb.tensor(f"y{i}", (batches, units) if len(shape) == 2 else (batches, 1, units), "int16", s_out, zp_out)
    act = str(rng.choice(FC_ACTS))
    from specializer import ops
    mb.op("FULLY_CONNECTED", [x, wt, b], [y], ops.FullyConnected(activation=act,
                                                                 keep_num_dims=len(shape) == 3))
    mb.output(y)
    return shape, (f"fc{i} {shape} -> {units} pc={per_channel} zp={zp_in}/{zp_out} act={act} "
                   f"bias={bias_dtype if bias else None}")


def _run_layers(rng, layer, n, tmp_path, dtype="int16"):
    mb = ModelBuilder()
    shapes, descs = [], []
    for i in range(n):
        sh, d = layer(mb, rng, i)
        shapes.append(sh)
        descs.append(d)
    data = mb.build()
    ins = [[_ints(rng, sh, dtype, k) for sh in shapes] for k in range(2)]
    for target in TARGETS:
        assert_bitexact(data, ins, tmp_path / str(target), target=target, layers=descs)


@pytest.mark.parametrize("seed", range(3))
def test_fully_connected_16x8_random(seed, tmp_path):
    rng = np.random.default_rng(16400 + seed)
    _run_layers(rng, lambda mb, r, i: _fc_layer(mb, r, i, bias=r.random() < 0.8), 8, tmp_path)


def test_fully_connected_16x8_no_bias(tmp_path):
    """Without a bias tflite-micro takes the int64 path (64-bit multiplier) as with an int64 bias."""
    rng = np.random.default_rng(16440)
    _run_layers(rng, lambda mb, r, i: _fc_layer(mb, r, i, bias=False), 10, tmp_path)


def test_fully_connected_16x8_deep(tmp_path):
    """Depths 1..4000 with int64 bias and extreme inputs: the int64 accumulator (an int32 one would wrap)."""
    from specializer import ops
    rng = np.random.default_rng(16450)
    mb = ModelBuilder()
    shapes = []
    for i, depth in enumerate((1, 4000, 1500)):
        x = mb.input(f"x{i}", (2, depth), "int16", 1e-4, 0)
        w = mb.const(f"w{i}", np.full((3, depth), 127, np.int8) * np.array([[1], [-1], [1]], np.int8),
                     scale=1e-3, zero_point=0)
        b = mb.const(f"b{i}", np.array([1 << 33, -(1 << 20), 0], np.int64), scale=1e-7, zero_point=0)
        y = mb.tensor(f"y{i}", (2, 3), "int16", 1e-7 * 32768 * 127 * depth / 20000, 0)
        mb.op("FULLY_CONNECTED", [x, w, b], [y], ops.FullyConnected())
        mb.output(y)
        shapes.append((2, depth))
    data = mb.build()
    ins = [[np.full(sh, v, np.int16) for sh in shapes] for v in (32767, -32768)]
    ins.append([_ints(rng, sh, "int16", 0) for sh in shapes])
    for target in TARGETS:
        assert_bitexact(data, ins, tmp_path / str(target), target=target)


@pytest.mark.parametrize("seed", range(2))
def test_fully_connected_16x8_int32_bias_random(seed, tmp_path):
    """TFLite's 16x8 with int32 bias: tflite-micro accumulates in int32 and uses the 32-bit multiplier."""
    rng = np.random.default_rng(16500 + seed)
    _run_layers(rng, lambda mb, r, i: _fc_layer(mb, r, i, bias_dtype="int32"), 8, tmp_path)


def _fc16(out="int16", bias_dtype="int64", w_dtype="int8", w_zp=0):
    from specializer import ops
    mb = ModelBuilder()
    x = mb.input("x", (1, 8), "int16", 0.01, 0)
    w = mb.const("w", np.ones((4, 8), w_dtype), scale=0.01, zero_point=w_zp)
    b = mb.const("b", np.ones(4, bias_dtype), scale=1e-4, zero_point=0)
    y = mb.tensor("y", (1, 4), out, 0.05, 0)
    mb.op("FULLY_CONNECTED", [x, w, b], [y], ops.FullyConnected())
    mb.output(y)
    return mb.build()


@pytest.mark.parametrize("kw, why", [
    (dict(out="int8"), "needs int16 input/output, got int16/int8"),  # TFLM: input->type != output->type
    (dict(bias_dtype="int16"), "int64 (or int32) bias"),
    (dict(w_dtype="int16"), "int8 weights"),
    (dict(w_zp=3), "symmetric int8 weights"),
])
def test_fully_connected_16x8_refused(kw, why, tmp_path):
    with pytest.raises(specializer.errors.SpecializerError) as e:
        specializer.compile(_fc16(**kw), out_dir=None)
    msg = str(e.value)
    assert "FULLY_CONNECTED" in msg and why in msg and "\n" not in msg


# ---- ADD / SUB 16x8 --------------------------------------------------------------------------------------------
def _add_sub_layer(mb, rng, i, kind):
    from spz_testutil import broadcast_shapes
    from specializer import ops
    sa, sb = broadcast_shapes(rng, max_rank=5)
    out = tuple(np.broadcast_shapes(sa, sb))
    s1 = float(10 ** rng.uniform(-5, 0))
    s2 = float(s1 * 10 ** rng.uniform(-2, 2))
    s_out = float(max(s1, s2) * 10 ** rng.uniform(-2.5, 1))
    zps = [_zp(rng, "int16") for _ in range(3)]
    a = mb.input(f"a{i}", sa, "int16", s1, zps[0])
    b = mb.input(f"b{i}", sb, "int16", s2, zps[1])
    y = mb.tensor(f"y{i}", out, "int16", s_out, zps[2])
    act = str(rng.choice(("NONE", "NONE", "RELU", "RELU6", "RELU_N1_TO_1")))
    mb.op(kind, [a, b], [y], ops.Elementwise(activation=act))
    mb.output(y)
    return (sa, sb), f"{kind}{i} {sa} {sb} -> {out} s={s1:.3g}/{s2:.3g}/{s_out:.3g} zp={zps} act={act}"


@pytest.mark.parametrize("kind", ["ADD", "SUB"])
@pytest.mark.parametrize("seed", range(3))
def test_add_sub_16x8_random(kind, seed, tmp_path):
    rng = np.random.default_rng(16600 + seed + (100 if kind == "SUB" else 0))
    mb = ModelBuilder()
    shapes, descs = [], []
    for i in range(8):
        sh, d = _add_sub_layer(mb, rng, i, kind)
        shapes += list(sh)
        descs.append(d)
    data = mb.build()
    ins = [[_ints(rng, sh, "int16", k) for sh in shapes] for k in range(2)]
    for target in TARGETS:
        assert_bitexact(data, ins, tmp_path / str(target), target=target, layers=descs)


@pytest.mark.parametrize("kind", ["ADD", "SUB"])
def test_add_sub_16x8_fine_output_scale(kind, tmp_path):
    """Output scales just above TFLM's bound 2 max(s1, s2) / 2^15: the 15-bit shift's rounding shows."""
    from specializer import ops
    rng = np.random.default_rng(16700 + len(kind))
    mb = ModelBuilder()
    shapes = []
    for i in range(6):
        shape = _shape(rng)
        s1 = float(10 ** rng.uniform(-4, 0))
        s2 = float(s1 * 10 ** rng.uniform(-1, 1))
        s_out = float(2 * max(s1, s2) / 32768 * rng.uniform(1.01, 4))
        a = mb.input(f"a{i}", shape, "int16", s1, 0)
        b = mb.input(f"b{i}", shape, "int16", s2, 0)
        y = mb.tensor(f"y{i}", shape, "int16", s_out, 0)
        mb.op(kind, [a, b], [y], ops.Elementwise())
        mb.output(y)
        shapes += [shape, shape]
    data = mb.build()
    ins = [[(rng.integers(-60, 60, size=sh)).astype(np.int16) for sh in shapes] for _ in range(2)]
    for target in TARGETS:
        assert_bitexact(data, ins, tmp_path / str(target), target=target)


@pytest.mark.parametrize("case, why", [
    ("mixed", "needs int16 tensors, got int16/int8/int16"),
    ("scale", "output scale too small"),
])
def test_add_16x8_refused(case, why):
    from specializer import ops
    mb = ModelBuilder()
    a = mb.input("a", (2, 4), "int16", 0.5, 0)
    b = mb.input("b", (2, 4), "int8" if case == "mixed" else "int16", 0.5, 0)
    y = mb.tensor("y", (2, 4), "int16", 0.5 / 32768 if case == "scale" else 0.5, 0)
    mb.op("ADD", [a, b], [y], ops.Elementwise())
    mb.output(y)
    with pytest.raises(specializer.errors.SpecializerError) as e:
        specializer.compile(mb.build(), out_dir=None)
    msg = str(e.value)
    assert "ADD" in msg and why in msg and "\n" not in msg


# ---- RESHAPE / SQUEEZE / EXPAND_DIMS and a 16x8 chain -----------------------------------------------------------
@pytest.mark.parametrize("seed", range(3))
def test_int16x8_chain(seed, tmp_path):
    """int8 input -> QUANTIZE to int16 -> RESHAPE -> FULLY_CONNECTED 16x8 -> EXPAND_DIMS -> ADD (broadcast) ->
    SQUEEZE -> SUB -> QUANTIZE to int8 and DEQUANTIZE to float (two outputs would mix types: the float one is a
    second model); the reshapes are aliases or byte copies of 2-byte elements."""
    from specializer import ops
    rng = np.random.default_rng(16800 + seed)
    n, depth, units = int(rng.integers(1, 4)), int(rng.integers(1, 40)), int(rng.integers(1, 20))
    for final in ("int8", "float32"):
        mb = ModelBuilder()
        x = mb.input("x", (n, depth), "int8", 0.05, int(rng.integers(-20, 20)))
        s16 = 0.05 / 128
        q = mb.tensor("q", (n, depth), "int16", s16, 0)
        mb.op("QUANTIZE", [x], [q])
        r = mb.tensor("r", (n, 1, depth), "int16", s16, 0)
        mb.op("RESHAPE", [q, mb.const("shape", np.array([n, 1, depth], np.int32))], [r],
              ops.Reshape(new_shape=(n, 1, depth)))
        w = mb.const("w", rng.integers(-127, 128, (units, depth)).astype(np.int8), scale=0.01, zero_point=0)
        b = mb.const("b", rng.integers(-5000, 5000, units).astype(np.int64), scale=s16 * 0.01, zero_point=0)
        s_fc = float(s16 * 0.01 * 100 * np.sqrt(depth) * 10 ** rng.uniform(-0.5, 0.5))
        f = mb.tensor("f", (n, 1, units), "int16", s_fc, 0)
        mb.op("FULLY_CONNECTED", [r, w, b], [f], ops.FullyConnected(keep_num_dims=True))
        e = mb.tensor("e", (n, 1, 1, units), "int16", s_fc, 0)
        mb.op("EXPAND_DIMS", [f, mb.const("axis", np.array([2], np.int32))], [e])
        c = mb.const("c", rng.integers(-3000, 3000, (1, 1, 1, units)).astype(np.int16), scale=s_fc, zero_point=0)
        a = mb.tensor("a", (n, 1, 1, units), "int16", s_fc * 2, 0)
        mb.op("ADD", [e, c], [a], ops.Elementwise(activation="RELU"))
        sq = mb.tensor("sq", (n, units), "int16", s_fc * 2, 0)
        mb.op("SQUEEZE", [a], [sq], ops.Squeeze(squeeze_dims=(1, 2)))
        d = mb.tensor("d", (n, units), "int16", s_fc * 3, 0)
        c2 = mb.const("c2", rng.integers(-3000, 3000, (units,)).astype(np.int16), scale=s_fc, zero_point=5)
        mb.op("SUB", [sq, c2], [d], ops.Elementwise())
        if final == "int8":
            out = mb.tensor("out", (n, units), "int8", s_fc * 3 * 100, int(rng.integers(-10, 10)))
            mb.op("QUANTIZE", [d], [out])
        else:
            out = mb.tensor("out", (n, units), "float32")
            mb.op("DEQUANTIZE", [d], [out])
        mb.output(out)
        data = mb.build()
        ins = [[rng.integers(-128, 128, (n, depth)).astype(np.int8)] for _ in range(2)]
        for target in TARGETS:
            assert_bitexact(data, ins, tmp_path / f"{final}{target}", target=target)


# ---- TRANSPOSE, STRIDED_SLICE, SPLIT, SPLIT_V, CONCATENATION int16: the data-movement generators, int16 data ------
class _Int16Builder(ModelBuilder):
    """A ModelBuilder that makes every int8 tensor int16 (constant data widened, scaled by 200); zero points 0."""

    def tensor(self, name, shape, dtype="int8", scale=None, zero_point=None, *args, **kw):
        if dtype == "int8":
            dtype, zero_point = "int16", 0 if zero_point is not None else None
            if kw.get("data") is not None:
                kw["data"] = np.asarray(kw["data"]).astype(np.int16) * 200
        return super().tensor(name, shape, dtype, scale, zero_point, *args, **kw)


@pytest.mark.parametrize("kind", ["transpose", "strided_slice", "split", "split_v", "concat"])
@pytest.mark.parametrize("seed", range(2))
def test_data_movement_int16_random(kind, seed, tmp_path):
    import test_data_movement as dm
    rng = np.random.default_rng(16900 + seed + 10 * len(kind))
    case = getattr(dm, f"case_{kind}")
    mb = _Int16Builder()
    shapes = []
    for k in range(8):
        shapes += case(mb, rng, f"c{k}")
    data = mb.build()
    ins = [[_ints(rng, sh, "int16", k) for sh in shapes] for k in range(2)]
    for target in TARGETS:
        assert_bitexact(data, ins, tmp_path / str(target), target=target)


def test_oracle_random_inputs_int16(tmp_path):
    """specializer.oracle.random_inputs gives int16 arrays for int16 inputs (whole range, or narrow around zp)."""
    from specializer.oracle import random_inputs
    mb = ModelBuilder()
    x = mb.input("x", (64,), "int16", 0.01, 100)
    y = mb.tensor("y", (64,), "int8", 1.0, 0)
    mb.op("QUANTIZE", [x], [y])
    mb.output(y)
    res = specializer.compile(mb.build(), out_dir=tmp_path / "o")
    rng = np.random.default_rng(3)
    wide, narrow = random_inputs(res, rng)[0], random_inputs(res, rng, narrow=True)[0]
    assert wide.dtype == np.int16 and narrow.dtype == np.int16 and wide.shape == (64,)
    assert np.abs(narrow.astype(np.int32) - 100).max() <= 6144 and np.abs(wide.astype(np.int32)).max() > 6144


def test_fully_connected_16x8_int32_bias_overflow_refused():
    """int32 bias and a depth whose accumulator could pass int32 (TFLite's int32 sum would wrap): refused."""
    from specializer import ops
    mb = ModelBuilder()
    x = mb.input("x", (1, 1000), "int16", 0.01, 0)
    w = mb.const("w", np.ones((4, 1000), np.int8), scale=0.01, zero_point=0)
    b = mb.const("b", np.ones(4, np.int32), scale=1e-4, zero_point=0)
    y = mb.tensor("y", (1, 4), "int16", 0.05, 0)
    mb.op("FULLY_CONNECTED", [x, w, b], [y], ops.FullyConnected())
    mb.output(y)
    with pytest.raises(specializer.errors.SpecializerError, match="FULLY_CONNECTED.*could overflow int32"):
        specializer.compile(mb.build(), out_dir=None)
