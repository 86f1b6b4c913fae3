"""Randomized differential tests of the data-movement kernels against TFLite Micro (bit-exact).

Every random case is one op with its own graph input and outputs; several cases share one model (one compile,
one sanitized build) to keep the run short. `--sweep N` sets the number of cases per op kind.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import specializer
from specializer import ops
from specializer.errors import ShapeError, SpecializerError
from specializer.kernels.data_movement import nearest_source, slice_bounds
from specializer.tflite_writer import ModelBuilder
from spz_testutil import assert_bitexact

CASES_PER_MODEL = 6


# ---- helpers ----------------------------------------------------------------------------------------------
def _quant(rng):
    scale = float(10 ** rng.uniform(-4, 1))
    zp = int(rng.choice([-128, 127, int(rng.integers(-128, 128))]))
    return scale, zp


def _shape(rng, rank, lo=1, hi=6):
    return tuple(int(v) for v in rng.integers(lo, hi + 1, size=rank))


def _inputs(rng, shapes, narrow=False):
    lo, hi = (-20, 20) if narrow else (-128, 127)
    return [rng.integers(lo, hi + 1, size=s).astype(np.int8) for s in shapes]


def _run(cases, rng, tmp_path: Path, tag: str):
    """Build models of up to CASES_PER_MODEL cases each; compare two input sets per model."""
    for m in range(0, len(cases), CASES_PER_MODEL):
        mb = ModelBuilder()
        shapes = []
        for k, case in enumerate(cases[m:m + CASES_PER_MODEL]):
            shapes += case(mb, rng, f"c{k}")
        data = mb.build()
        inputs = [_inputs(rng, shapes), _inputs(rng, shapes, narrow=True)]
        assert_bitexact(data, inputs, tmp_path / f"{tag}{m}")


# ---- case generators: each adds inputs, one op and its outputs to `mb`; returns the input shapes ----------------
def case_pad(mb, rng, n):
    rank = int(rng.integers(1, 6))
    shape = _shape(rng, rank, 1, 5)
    pads = rng.integers(0, 4, size=(rank, 2)) * (rng.random((rank, 2)) < 0.6)
    if rank == 4 and rng.random() < 0.4:  # image style: N and C unpadded
        pads[0] = pads[3] = 0
    s_in, z_in = _quant(rng)
    s_out, z_out = (s_in, z_in) if rng.random() < 0.5 else _quant(rng)
    x = mb.input(f"{n}x", shape, scale=s_in, zero_point=z_in)
    p = mb.const(f"{n}p", pads.astype(np.int32))
    y = mb.tensor(f"{n}y", tuple(s + int(a) + int(b) for s, (a, b) in zip(shape, pads)), scale=s_out,
                  zero_point=z_out)
    if rng.random() < 0.5:
        v = mb.const(f"{n}v", np.array([rng.integers(-128, 128)], np.int8), scale=s_out, zero_point=z_out)
        mb.op("PADV2", [x, p, v], [y])
    else:
        mb.op("PAD", [x, p], [y])
    mb.output(y)
    return [shape]


def case_concat(mb, rng, n):
    rank = int(rng.integers(1, 5))
    base = list(_shape(rng, rank, 1, 5))
    axis = int(rng.integers(-rank, rank))
    k = int(rng.integers(1, 11)) if rng.random() < 0.3 else int(rng.integers(1, 5))
    s, z = _quant(rng)
    ins, shapes, total = [], [], 0
    for i in range(k):
        sh = list(base)
        sh[axis] = int(rng.integers(1, 5))
        total += sh[axis]
        if i > 0 and rng.random() < 0.15:  # a constant input
            ins.append(mb.const(f"{n}k{i}", rng.integers(-128, 128, size=sh).astype(np.int8), scale=s,
                                zero_point=z))
        else:
            ins.append(mb.input(f"{n}x{i}", sh, scale=s, zero_point=z))
            shapes.append(tuple(sh))
    out = list(base)
    out[axis] = total
    y = mb.tensor(f"{n}y", out, scale=s, zero_point=z)
    mb.op("CONCATENATION", ins, [y], ops.Concatenation(axis=axis))
    mb.output(y)
    return shapes


def case_resize(mb, rng, n):
    b, h, w, c = int(rng.integers(1, 3)), int(rng.integers(1, 8)), int(rng.integers(1, 8)), int(rng.integers(1, 6))
    oh, ow = int(rng.integers(1, 16)), int(rng.integers(1, 16))
    ac, hp = bool(rng.random() < 0.5), bool(rng.random() < 0.5)
    s, z = _quant(rng)
    x = mb.input(f"{n}x", (b, h, w, c), scale=s, zero_point=z)
    size = mb.const(f"{n}s", np.array([oh, ow], np.int32))
    y = mb.tensor(f"{n}y", (b, oh, ow, c), scale=s, zero_point=z)
    mb.op("RESIZE_NEAREST_NEIGHBOR", [x, size], [y], ops.ResizeNearestNeighbor(align_corners=ac,
                                                                                half_pixel_centers=hp))
    mb.output(y)
    return [(b, h, w, c)]


def case_transpose(mb, rng, n):
    rank = int(rng.integers(1, 6))
    shape = _shape(rng, rank, 1, 5)
    perm = [int(v) for v in rng.permutation(rank)]
    s, z = _quant(rng)
    x = mb.input(f"{n}x", shape, scale=s, zero_point=z)
    p = mb.const(f"{n}p", np.array(perm, np.int32))
    y = mb.tensor(f"{n}y", tuple(shape[i] for i in perm), scale=s, zero_point=z)
    mb.op("TRANSPOSE", [x, p], [y])
    mb.output(y)
    return [shape]


def _random_slice(rng, shape):
    rank = len(shape)
    begin, end, strides = [], [], []
    bm = em = sm = 0
    for i, size in enumerate(shape):
        stride = int(rng.choice([1, 1, 2, 3, -1, -2]))
        shrink = rng.random() < 0.2 and stride > 0
        b = int(rng.integers(-size - 2, size + 2))
        e = int(rng.integers(-size - 2, size + 2))
        if shrink:
            b = int(rng.integers(-size, size))
            sm |= 1 << i
        if rng.random() < 0.25:
            bm |= 1 << i
        if rng.random() < 0.25:
            em |= 1 << i
        begin.append(b)
        end.append(e)
        strides.append(stride)
    out = []
    for i, size in enumerate(shape):
        start, stop = slice_bounds(size, begin[i], end[i], strides[i], bool(bm >> i & 1), bool(em >> i & 1),
                                   bool(sm >> i & 1))
        if not sm >> i & 1:
            out.append(len(range(start, stop, strides[i])))
    return begin, end, strides, bm, em, sm, tuple(out)


def case_strided_slice(mb, rng, n):
    rank = int(rng.integers(1, 5))
    shape = _shape(rng, rank, 1, 7)
    for _ in range(50):  # avoid empty outputs (nothing to compare)
        begin, end, strides, bm, em, sm, out = _random_slice(rng, shape)
        if all(out):
            break
    else:
        begin, end, strides, bm, em, sm, out = [0] * rank, list(shape), [1] * rank, 0, 0, 0, shape
    s, z = _quant(rng)
    x = mb.input(f"{n}x", shape, scale=s, zero_point=z)
    tb, te, ts = (mb.const(f"{n}{k}", np.array(v, np.int32)) for k, v in (("b", begin), ("e", end),
                                                                          ("s", strides)))
    y = mb.tensor(f"{n}y", out, scale=s, zero_point=z)
    mb.op("STRIDED_SLICE", [x, tb, te, ts], [y], ops.StridedSlice(begin_mask=bm, end_mask=em, shrink_axis_mask=sm))
    mb.output(y)
    return [shape]


def case_split(mb, rng, n):
    rank = int(rng.integers(1, 5))
    shape = list(_shape(rng, rank, 1, 4))
    axis = int(rng.integers(-rank, rank))
    k = int(rng.integers(1, 5))
    shape[axis] *= k
    s, z = _quant(rng)
    x = mb.input(f"{n}x", shape, scale=s, zero_point=z)
    a = mb.const(f"{n}a", np.array([axis], np.int32))
    part = list(shape)
    part[axis] //= k
    ys = [mb.tensor(f"{n}y{i}", part, scale=s, zero_point=z) for i in range(k)]
    mb.op("SPLIT", [a, x], ys, ops.Split(num_splits=k))  # axis first, data second
    for y in ys:
        mb.output(y)
    return [tuple(shape)]


def case_split_v(mb, rng, n):
    rank = int(rng.integers(1, 5))
    shape = list(_shape(rng, rank, 1, 4))
    axis = int(rng.integers(-rank, rank))
    k = int(rng.integers(1, 5))
    sizes = [int(v) for v in rng.integers(1, 4, size=k)]
    shape[axis] = sum(sizes)
    split_arg = list(sizes)
    if rng.random() < 0.5:
        split_arg[int(rng.integers(0, k))] = -1
    s, z = _quant(rng)
    x = mb.input(f"{n}x", shape, scale=s, zero_point=z)
    ss = mb.const(f"{n}s", np.array(split_arg, np.int32))
    a = mb.const(f"{n}a", np.array([axis], np.int32))
    ys = []
    for i, sz in enumerate(sizes):
        part = list(shape)
        part[axis] = sz
        ys.append(mb.tensor(f"{n}y{i}", part, scale=s, zero_point=z))
    mb.op("SPLIT_V", [x, ss, a], ys, ops.Split(num_splits=k))
    for y in ys:
        mb.output(y)
    return [tuple(shape)]


KINDS = {
    "pad": (case_pad, 12),
    "concat": (case_concat, 12),
    "resize": (case_resize, 12),
    "transpose": (case_transpose, 10),
    "strided_slice": (case_strided_slice, 18),
    "split": (case_split, 6),
    "split_v": (case_split_v, 6),
}


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_random_bitexact(kind, sweep, tmp_path):
    gen, default = KINDS[kind]
    rng = np.random.default_rng(sorted(KINDS).index(kind) + 1000)
    _run([gen] * sweep(default), rng, tmp_path, kind)


# ---- targeted cases ---------------------------------------------------------------------------------------
def test_resize_nearest_index_rules():
    """Spot values of TFLM's float32 rule: align_corners rounds half away from zero, half-pixel clamps at 0."""
    assert [nearest_source(i, 3, 5, True, False) for i in range(5)] == [0, 1, 1, 2, 2]
    assert [nearest_source(i, 4, 2, False, False) for i in range(2)] == [0, 2]
    assert [nearest_source(i, 2, 5, False, True) for i in range(5)] == [0, 0, 1, 1, 1]
    assert nearest_source(0, 5, 1, True, False) == 0  # align_corners with one output: plain scale


def test_resize_every_flag_combination(tmp_path):
    """Up- and down-sampling with odd ratios, each of the four flag combinations, checked against TFLM."""
    rng = np.random.default_rng(7)
    mb = ModelBuilder()
    shapes = []
    k = 0
    for ac in (False, True):
        for hp in (False, True):
            for (h, w), (oh, ow) in (((3, 5), (7, 2)), ((7, 4), (3, 9)), ((1, 6), (5, 1))):
                x = mb.input(f"x{k}", (1, h, w, 3), scale=0.05, zero_point=-4)
                size = mb.const(f"s{k}", np.array([oh, ow], np.int32))
                y = mb.tensor(f"y{k}", (1, oh, ow, 3), scale=0.05, zero_point=-4)
                mb.op("RESIZE_NEAREST_NEIGHBOR", [x, size], [y], ops.ResizeNearestNeighbor(ac, hp))
                mb.output(y)
                shapes.append((1, h, w, 3))
                k += 1
    assert_bitexact(mb.build(), [_inputs(rng, shapes)], tmp_path)


def test_strided_slice_edges(tmp_path):
    """Negative strides over a whole axis, masks with out-of-range indices, shrink of the last element."""
    rng = np.random.default_rng(11)
    specs = [  # shape, begin, end, strides, begin_mask, end_mask, shrink_mask
        ((2, 5, 6, 3), [0, -1, 0, 0], [0, -10, 6, 3], [1, -1, 2, 1], 1, 1, 0),
        ((4, 7), [10, -100], [-100, 100], [-2, 3], 0, 0, 0),
        ((3, 4, 5), [-1, 0, 2], [0, 0, 0], [1, 1, 1], 0, 2, 5),
        ((6,), [5], [0], [-1], 0, 1, 0),
        ((2, 3, 4, 5), [1, 0, 3, 1], [2, 3, 4, 5], [1, 1, 1, 3], 0, 0, 0b1001),
    ]
    mb = ModelBuilder()
    shapes = []
    for k, (shape, b, e, s, bm, em, sm) in enumerate(specs):
        out = []
        for i, size in enumerate(shape):
            start, stop = slice_bounds(size, b[i], e[i], s[i], bool(bm >> i & 1), bool(em >> i & 1),
                                       bool(sm >> i & 1))
            if not sm >> i & 1:
                out.append(len(range(start, stop, s[i])))
        x = mb.input(f"x{k}", shape, scale=0.5, zero_point=127)
        tb, te, ts = (mb.const(f"{c}{k}", np.array(v, np.int32)) for c, v in (("b", b), ("e", e), ("s", s)))
        y = mb.tensor(f"y{k}", out, scale=0.5, zero_point=127)
        mb.op("STRIDED_SLICE", [x, tb, te, ts], [y], ops.StridedSlice(begin_mask=bm, end_mask=em,
                                                                       shrink_axis_mask=sm))
        mb.output(y)
        shapes.append(shape)
    assert_bitexact(mb.build(), [_inputs(rng, shapes)], tmp_path)


def test_reshape_copy_of_constant_to_output(tmp_path):
    """A RESHAPE of a constant straight to a graph output is neither folded nor aliased: the copy kernel runs."""
    mb = ModelBuilder()
    x = mb.input("x", (2, 3), scale=0.1, zero_point=0)
    xo = mb.tensor("xo", (3, 2), scale=0.1, zero_point=0)
    mb.op("RESHAPE", [x, mb.const("sh0", np.array([3, 2], np.int32))], [xo], ops.Reshape((3, 2)))
    k = mb.const("k", np.arange(-12, 12, dtype=np.int8).reshape(4, 6), scale=0.1, zero_point=0)
    y = mb.tensor("y", (2, 12), scale=0.1, zero_point=0)
    mb.op("RESHAPE", [k, mb.const("sh1", np.array([2, 12], np.int32))], [y], ops.Reshape((2, 12)))
    mb.output(xo)
    mb.output(y)
    data = mb.build()
    res = specializer.compile(data, name="net", out_dir=tmp_path / "out")
    assert [op.kernel.entry for op in res.graph.ops if op.alias_of is None] == ["reshape_copy"]
    assert "reshape_copy" in res.library.files["net.c"]
    assert_bitexact(data, [[np.arange(6, dtype=np.int8).reshape(2, 3)]], tmp_path)


def test_pad_5d_and_large_paddings(tmp_path):
    rng = np.random.default_rng(3)
    mb = ModelBuilder()
    x = mb.input("x", (2, 1, 3, 2, 3), scale=0.02, zero_point=-128)
    pads = np.array([[1, 0], [2, 3], [0, 0], [7, 1], [0, 5]], np.int32)
    y = mb.tensor("y", (3, 6, 3, 10, 8), scale=0.02, zero_point=-128)
    mb.op("PAD", [x, mb.const("p", pads)], [y])
    mb.output(y)
    assert_bitexact(mb.build(), [_inputs(rng, [(2, 1, 3, 2, 3)])], tmp_path)


# ---- illegal layers: clear one-line errors ----------------------------------------------------------------
def _compile_err(build, tmp_path):
    mb = ModelBuilder()
    build(mb)
    with pytest.raises(SpecializerError) as ei:
        specializer.compile(mb.build(), name="net", out_dir=tmp_path / "bad")
    msg = str(ei.value)
    assert "\n" not in msg
    return ei.value, msg


def test_reject_concat_mixed_quantization(tmp_path):
    def build(mb):
        a = mb.input("a", (1, 4), scale=0.1, zero_point=0)
        b = mb.input("b", (1, 4), scale=0.2, zero_point=0)
        y = mb.tensor("y", (1, 8), scale=0.1, zero_point=0)
        mb.op("CONCATENATION", [a, b], [y], ops.Concatenation(axis=1))
        mb.output(y)

    err, msg = _compile_err(build, tmp_path)
    assert isinstance(err, ShapeError) and "quantization" in msg and "#0" in msg


def test_reject_concat_activation(tmp_path):
    def build(mb):
        a = mb.input("a", (1, 4), scale=0.1, zero_point=0)
        y = mb.tensor("y", (1, 8), scale=0.1, zero_point=0)
        mb.op("CONCATENATION", [a, a], [y], ops.Concatenation(axis=1, activation="RELU"))
        mb.output(y)

    _, msg = _compile_err(build, tmp_path)
    assert "RELU" in msg


def test_reject_pad_nonconstant_or_negative(tmp_path):
    def build(mb):
        x = mb.input("x", (1, 4, 4, 2), scale=0.1, zero_point=0)
        y = mb.tensor("y", (1, 3, 4, 2), scale=0.1, zero_point=0)
        mb.op("PAD", [x, mb.const("p", np.array([[0, 0], [-1, 0], [0, 0], [0, 0]], np.int32))], [y])
        mb.output(y)

    _, msg = _compile_err(build, tmp_path)
    assert "negative" in msg


def test_reject_padv2_value_quantization(tmp_path):
    def build(mb):
        x = mb.input("x", (1, 2, 2, 1), scale=0.1, zero_point=0)
        y = mb.tensor("y", (1, 4, 2, 1), scale=0.1, zero_point=0)
        v = mb.const("v", np.array([3], np.int8), scale=0.3, zero_point=0)
        mb.op("PADV2", [x, mb.const("p", np.array([[0, 0], [1, 1], [0, 0], [0, 0]], np.int32)), v], [y])
        mb.output(y)

    _, msg = _compile_err(build, tmp_path)
    assert "pad value" in msg


def test_reject_strided_slice_unsupported(tmp_path):
    def build(mb):
        x = mb.input("x", (4, 4), scale=0.1, zero_point=0)
        y = mb.tensor("y", (4,), scale=0.1, zero_point=0)
        b, e, s = (mb.const(k, np.array(v, np.int32)) for k, v in (("b", [1, 0]), ("e", [0, 4]), ("s", [-1, 1])))
        mb.op("STRIDED_SLICE", [x, b, e, s], [y], ops.StridedSlice(shrink_axis_mask=1))
        mb.output(y)

    _, msg = _compile_err(build, tmp_path)
    assert "negative stride" in msg

    def build2(mb):
        x = mb.input("x", (4, 4), scale=0.1, zero_point=0)
        y = mb.tensor("y", (2, 4), scale=0.1, zero_point=0)
        b, e, s = (mb.const(k, np.array(v, np.int32)) for k, v in (("b", [1, 0]), ("e", [2, 4]), ("s", [1, 1])))
        mb.op("STRIDED_SLICE", [x, b, e, s], [y], ops.StridedSlice(offset=True))
        mb.output(y)

    _, msg = _compile_err(build2, tmp_path)
    assert "offset" in msg


def test_reject_wrong_output_shapes(tmp_path):
    def transpose(mb):
        x = mb.input("x", (2, 3), scale=0.1, zero_point=0)
        y = mb.tensor("y", (2, 3), scale=0.1, zero_point=0)
        mb.op("TRANSPOSE", [x, mb.const("p", np.array([1, 0], np.int32))], [y])
        mb.output(y)

    def split(mb):
        x = mb.input("x", (2, 5), scale=0.1, zero_point=0)
        y0 = mb.tensor("y0", (2, 2), scale=0.1, zero_point=0)
        y1 = mb.tensor("y1", (2, 3), scale=0.1, zero_point=0)
        mb.op("SPLIT", [mb.const("a", np.array([1], np.int32)), x], [y0, y1], ops.Split(num_splits=2))
        mb.output(y0)
        mb.output(y1)

    def resize(mb):
        x = mb.input("x", (1, 2, 2, 1), scale=0.1, zero_point=0)
        y = mb.tensor("y", (1, 4, 5, 1), scale=0.1, zero_point=0)
        mb.op("RESIZE_NEAREST_NEIGHBOR", [x, mb.const("s", np.array([4, 4], np.int32))], [y])
        mb.output(y)

    for build, word in ((transpose, "permuted"), (split, "equal"), (resize, "output shape")):
        err, msg = _compile_err(build, tmp_path)
        assert isinstance(err, ShapeError) and word in msg, msg


@pytest.mark.slow
@pytest.mark.parametrize("kind", sorted(KINDS))
def test_random_bitexact_long(kind, sweep, tmp_path):
    gen, _ = KINDS[kind]
    rng = np.random.default_rng(sorted(KINDS).index(kind) + 2000)
    _run([gen] * sweep(120), rng, tmp_path, kind)


def test_every_kernel_builds_warning_free_with_clang(tmp_path):
    """One model using every template, built with clang -std=c99 -Wall -Wextra -Werror -pedantic."""
    import shutil
    import subprocess

    if shutil.which("clang") is None:
        pytest.skip("clang not installed")
    rng = np.random.default_rng(5)
    mb = ModelBuilder()
    for k, gen in enumerate(g for g, _ in KINDS.values()):
        gen(mb, rng, f"k{k}")
    kc = mb.const("kc", np.arange(6, dtype=np.int8), scale=0.1, zero_point=0)
    kr = mb.tensor("kr", (2, 3), scale=0.1, zero_point=0)
    mb.op("RESHAPE", [kc, mb.const("ks", np.array([2, 3], np.int32))], [kr], ops.Reshape((2, 3)))
    mb.output(kr)
    out = tmp_path / "out"
    res = specializer.compile(mb.build(), name="net", out_dir=out)
    used = {op.kernel.entry for op in res.graph.ops if op.kernel is not None}
    assert {"pad_s8", "concat_s8", "resize_nearest_s8", "transpose_s8", "strided_slice_s8", "split_s8",
            "reshape_copy"} <= used
    r = subprocess.run(["clang", "-std=c99", "-Wall", "-Wextra", "-Werror", "-pedantic", "-O2", "-c",
                        str(out / "net.c"), "-I", str(out), "-o", str(tmp_path / "net.o")],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
