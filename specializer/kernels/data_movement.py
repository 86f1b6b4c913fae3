"""Data-movement kernels: PAD/PADV2, CONCATENATION, RESIZE_NEAREST_NEIGHBOR, TRANSPOSE, STRIDED_SLICE, SPLIT,
SPLIT_V, and a byte copy for RESHAPE/SQUEEZE/EXPAND_DIMS when they could not become aliases.

How it works
1. None of these ops does arithmetic: TFLite Micro copies int8 bytes unchanged (its int8 CONCATENATION does not
   requantize: it requires every input to share the output's scale and zero point), so every kernel is a copy
   loop and bit-exactness is a matter of computing the right indices. All index arithmetic that TFLM does at run time (slice bounds,
   masks, nearest-neighbour source rows) is done here, offline, with TFLM's rules; the C only walks strides.
2. TRANSPOSE, STRIDED_SLICE, SPLIT and SPLIT_V share one "strided gather" (`strided_copy_s8.c.in`): the output is
   written in order, and each output dimension advances the input by a (possibly negative) stride. `_gather`
   drops size-1 dimensions, merges dimensions contiguous in both tensors and pads to 5, so one function serves
   every layer of those kinds (layers differ only in their `static const` params struct).
3. PAD fills the output with the pad value and copies the input's innermost rows into place (`pad_s8.c.in`);
   CONCATENATION appends each input's chunk per outer slice (`concat_s8.c.in`); RESIZE_NEAREST_NEIGHBOR copies
   depth vectors chosen by two offline tables (`resize_nearest_s8.c.in`); the reshape family is a memmove.
4. `reject` mirrors what TFLM refuses or silently gets wrong (shrink axes with negative strides write nothing,
   ellipsis/new-axis masks and the offset flag are ignored, PADV2's value must share the output quantization,
   CONCATENATION needs equal quantizations and no fused activation), and checks every output shape.
"""
from __future__ import annotations

import math
from typing import Optional

import numpy as np

from ..ir import DTYPE_BYTES
from ..registry import KernelEntry, out_pixel_stride

MAX_RANK = 5  # the strided gather and PAD work in 5 dimensions (TFLM's PAD/TRANSPOSE limit)


# ---- shared helpers -------------------------------------------------------------------------------------
def _const_ints(g, tid) -> Optional[list[int]]:
    """The values of a constant integer tensor, or None when absent / not constant / not an integer type."""
    if tid is None:
        return None
    t = g.t(tid)
    if not t.is_const or t.dtype not in ("int32", "int64"):
        return None
    return [int(v) for v in np.asarray(t.data).reshape(-1)]


def _row_major_strides(shape) -> list[int]:
    st = [1] * len(shape)
    for i in range(len(shape) - 2, -1, -1):
        st[i] = st[i + 1] * shape[i + 1]
    return st


def _prod(xs) -> int:
    n = 1
    for x in xs:
        n *= int(x)
    return n


def _int8_io(g, op, data_inputs=(0,), int16: bool = False) -> Optional[str]:
    """None when the data inputs and outputs are int8 (or, with `int16`, all int16: the int16x8 copies)."""
    if int16 and all(op.input(p) is not None and g.t(op.input(p)).dtype == "int16" for p in data_inputs) \
            and all(g.t(o).dtype == "int16" for o in op.outputs):
        return None
    for pos in data_inputs:
        tid = op.input(pos)
        if tid is None:
            return f"input {pos} is missing"
        if g.t(tid).dtype != "int8":
            return f"needs int8 data, input {pos} is {g.t(tid).dtype}"
    for o in op.outputs:
        if g.t(o).dtype != "int8":
            return f"needs int8 output, got {g.t(o).dtype}"
    return None


def _gather(dims, strides, base: int):
    """Canonical 5-D gather for output dims/input strides: drop size-1 dims, merge contiguous ones, pad front."""
    d, s = [], []
    for n, st in zip(dims, strides):
        if n == 1:
            continue
        if d and s[-1] == st * n:  # previous (outer) dimension steps exactly over this one: merge
            d[-1] *= n
            s[-1] = st
        else:
            d.append(int(n))
            s.append(int(st))
    if len(d) > MAX_RANK:
        return None
    pad = MAX_RANK - len(d)
    return [1] * pad + d, [0] * pad + s, int(base)


def _emit_gather(ctx, tid_in: int, tid_out: int, geo) -> None:
    dims, strides, base = geo
    out = ctx.t(tid_out)
    if out.size == 0:
        ctx.call(f"/* output %{tid_out} is empty */")
        return
    fn = ctx.fn(template="strided_copy_s8.c.in", T="int16_t" if out.dtype == "int16" else "int8_t")
    p = ctx.sym(f"p{tid_out}")
    ctx.static(f"static const {fn}_params {p} = {{ {{ {', '.join(map(str, dims))} }}, "
               f"{{ {', '.join(map(str, strides))} }}, {base} }};")
    ctx.call(f"{fn}(&{p}, {ctx.ptr(tid_in)}, {ctx.ptr(tid_out)});")


# ---- RESHAPE / SQUEEZE / EXPAND_DIMS: byte copy --------------------------------------------------------------
def _reject_copy(g, op, core):
    src, dst = g.t(op.inputs[0]), g.t(op.outputs[0])
    if src.dtype != dst.dtype:
        return f"input type {src.dtype} != output type {dst.dtype}"
    if src.nbytes != dst.nbytes:
        return f"input has {src.nbytes} bytes, output {dst.nbytes}"
    return None


def _emit_copy(ctx):
    src, dst = ctx.inp(0), ctx.out()
    fn = ctx.fn()
    ctx.call(f"{fn}({ctx.ptr(src.id)}, {ctx.ptr(dst.id)}, {dst.nbytes}u);")


COPY = KernelEntry(name="reshape_copy", ops=("RESHAPE", "SQUEEZE", "EXPAND_DIMS"), template="copy_bytes.c.in",
                   emit=_emit_copy, reject=_reject_copy, inplace=(0,))


# ---- PAD / PADV2 ------------------------------------------------------------------------------------------
def _pad_value(g, op) -> tuple[Optional[int], Optional[str]]:
    y = g.t(op.outputs[0])
    cv = op.input(2)
    if cv is None:  # PAD (or PADV2 without a value): TFLM pads with the output zero point
        return int(y.quant.zero_point[0]), None
    c = g.t(cv)
    if not c.is_const or c.dtype != "int8" or c.size != 1:
        return None, "the pad value must be a constant int8 scalar"
    if c.quant is None or c.quant.zero_point[0] != y.quant.zero_point[0] or \
            float(np.float32(c.quant.scale[0])) != float(np.float32(y.quant.scale[0])):
        return None, "the pad value's quantization differs from the output's (TFLM rejects this)"
    return int(np.asarray(c.data).reshape(-1)[0]), None


def _reject_pad(g, op, core):
    why = _int8_io(g, op)
    if why:
        return why
    x, y = g.t(op.inputs[0]), g.t(op.outputs[0])
    rank = len(x.shape)
    if rank > MAX_RANK:
        return f"rank {rank} > {MAX_RANK}"
    pads = _const_ints(g, op.input(1))
    if pads is None:
        return "paddings must be a constant int32/int64 tensor"
    if len(pads) != 2 * rank:
        return f"paddings hold {len(pads)} values, expected {2 * rank} for rank {rank}"
    if any(v < 0 for v in pads):
        return "negative paddings are not supported"
    want = tuple(x.shape[i] + pads[2 * i] + pads[2 * i + 1] for i in range(rank))
    if tuple(y.shape) != want:
        return f"output shape {list(y.shape)} != padded input shape {list(want)}"
    if y.quant is None:
        return "output has no quantization"
    _, why = _pad_value(g, op)
    return why


def _pad_geometry(in_shape, pads):
    """Merge unpadded inner dims into their outer neighbour; returns (in_dims, left, right) padded to 5 dims."""
    dims, left, right = [], [], []
    for i, n in enumerate(in_shape):
        lo, hi = pads[2 * i], pads[2 * i + 1]
        if dims and lo == 0 and hi == 0:
            dims[-1] *= n
            left[-1] *= n
            right[-1] *= n
        else:
            dims.append(int(n))
            left.append(int(lo))
            right.append(int(hi))
    k = MAX_RANK - len(dims)
    return [1] * k + dims, [0] * k + left, [0] * k + right


def _emit_pad(ctx):
    g, op = ctx.g, ctx.op
    x, y = ctx.inp(0), ctx.out()
    pads = _const_ints(g, op.input(1))
    value, _ = _pad_value(g, op)
    dims, left, right = _pad_geometry(x.shape, pads)
    out_dims = [d + lo + hi for d, lo, hi in zip(dims, left, right)]
    ostr = _row_major_strides(out_dims)
    first = sum(lo * s for lo, s in zip(left, ostr))
    if y.size == 0:
        ctx.call("/* empty output */")
        return
    fn = ctx.fn()
    p = ctx.sym("p")
    ctx.static(f"static const {fn}_params {p} = {{ {{ {', '.join(map(str, dims))} }}, "
               f"{{ {', '.join(map(str, ostr))} }}, {first}, {y.size}, {value} }};")
    ctx.call(f"{fn}(&{p}, {ctx.ptr(x.id)}, {ctx.ptr(y.id)});")


PAD = KernelEntry(name="pad_s8", ops=("PAD", "PADV2"), template="pad_s8.c.in", emit=_emit_pad, reject=_reject_pad)


# ---- CONCATENATION ----------------------------------------------------------------------------------------
def _concat_axis(g, op) -> int:
    rank = len(g.t(op.outputs[0]).shape)
    a = op.attrs.axis
    return a + rank if a < 0 else a


def _reject_concat(g, op, core):
    why = _int8_io(g, op, range(len(op.inputs)), int16=True)
    if why:
        return why
    if op.attrs.activation != "NONE":
        return f"fused activation {op.attrs.activation} (TFLM's CONCATENATION requires NONE)"
    y = g.t(op.outputs[0])
    rank = len(y.shape)
    if not -rank <= op.attrs.axis < rank:
        return f"axis {op.attrs.axis} out of range for rank {rank}"
    axis = _concat_axis(g, op)
    total = 0
    for i, tid in enumerate(op.inputs):
        s = g.t(tid).shape
        if len(s) != rank or any(s[k] != y.shape[k] for k in range(rank) if k != axis):
            return f"input {i} shape {list(s)} does not match output {list(y.shape)} outside axis {axis}"
        total += s[axis]
        q = g.t(tid).quant
        if q is None or y.quant is None or q.zero_point[0] != y.quant.zero_point[0] or \
                float(np.float32(q.scale[0])) != float(np.float32(y.quant.scale[0])):
            return (f"input {i} quantization differs from the output's (TFLM's int8 CONCATENATION does not "
                    "requantize and rejects this)")
    if total != y.shape[axis]:
        return f"inputs sum to {total} along axis {axis}, output has {y.shape[axis]}"
    return None


def _emit_concat(ctx):
    g, op = ctx.g, ctx.op
    y = ctx.out()
    axis = _concat_axis(g, op)
    inner = _prod(y.shape[axis + 1:])
    _emit_chunks(ctx, _prod(y.shape[:axis]), [g.t(t).shape[axis] * inner for t in op.inputs], skip=op.views)


def _emit_chunks(ctx, outer: int, chunks, skip=()) -> None:
    """The output as `outer` rounds of one chunk (elements) from each input in turn (concat_s8.c.in); the input
    positions in `skip` are already in place (their producers wrote their slices: passes/concat_views)."""
    op, y = ctx.op, ctx.out()
    if y.size == 0:
        ctx.call("/* empty output */")
        return
    esize = DTYPE_BYTES[y.dtype]  # int16x8 CONCATENATION copies 2-byte elements: chunks in bytes
    starts = np.cumsum([0] + [c * esize for c in chunks])
    copy = [i for i in range(len(chunks)) if i not in skip]
    if not copy:
        ctx.call("/* every input was written in place by its producer */")
        return
    fn = ctx.fn(template="concat_s8.c.in")
    p = ctx.sym("p")
    csym = ctx.weights(np.asarray([chunks[i] * esize for i in copy], dtype=np.int32))
    dsym = ctx.weights(np.asarray([starts[i] for i in copy], dtype=np.int32))
    ctx.static(f"static const {fn}_params {p} = {{ {outer}, {len(copy)}, {int(starts[-1])} }};")
    if esize == 1:
        ptrs = ", ".join(ctx.ptr(op.inputs[i]) for i in copy)
        out = ctx.ptr(y.id)
    else:
        ptrs = ", ".join(f"(const int8_t *){ctx.ptr(op.inputs[i])}" for i in copy)
        out = f"(int8_t *){ctx.ptr(y.id)}"
    ctx.call(f"{{\n    const int8_t *const ins[{len(copy)}] = {{ {ptrs} }};\n"
             f"    {fn}(&{p}, ins, {csym}, {dsym}, {out});\n}}")


CONCAT = KernelEntry(name="concat_s8", ops=("CONCATENATION",), template="concat_s8.c.in", emit=_emit_concat,
                     reject=_reject_concat)


# ---- RESIZE_NEAREST_NEIGHBOR --------------------------------------------------------------------------------
def nearest_source(out_index: int, in_size: int, out_size: int, align_corners: bool, half_pixel: bool) -> int:
    """TFLM's GetNearestNeighbor, in float32 as the C++ computes it (std::round = half away from zero)."""
    f32 = np.float32
    if align_corners and out_size > 1:
        scale = f32(in_size - 1) / f32(out_size - 1)
    else:
        scale = f32(in_size) / f32(out_size)
    offset = f32(0.5) if half_pixel else f32(0.0)
    v = float((f32(out_index) + offset) * scale)  # exact float32 value, widened without change
    r = math.floor(abs(v) + 0.5) * (1 if v >= 0 else -1) if align_corners else math.floor(v)
    r = min(int(r), in_size - 1)
    if half_pixel:
        r = max(0, r)
    return r


def _reject_resize(g, op, core):
    why = _int8_io(g, op)
    if why:
        return why
    x, y = g.t(op.inputs[0]), g.t(op.outputs[0])
    if len(x.shape) != 4:
        return f"needs a 4-D NHWC input, got rank {len(x.shape)}"
    st = g.t(op.input(1)) if op.input(1) is not None else None
    if st is None or not st.is_const or st.dtype != "int32" or st.size != 2:
        return "size must be a constant int32 tensor of 2 values"
    oh, ow = _const_ints(g, op.input(1))
    if oh <= 0 or ow <= 0:
        return f"size ({oh}, {ow}) must be positive"
    want = (x.shape[0], oh, ow, x.shape[3])
    if tuple(y.shape) != want:
        return f"output shape {list(y.shape)} != {list(want)}"
    return None


def _emit_resize(ctx):
    op = ctx.op
    x, y = ctx.inp(0), ctx.out()
    n, ih, iw, c = x.shape
    oh, ow = y.shape[1], y.shape[2]
    ac, hp = bool(op.attrs.align_corners), bool(op.attrs.half_pixel_centers)
    ys = [nearest_source(i, ih, oh, ac, hp) * iw * c for i in range(oh)]
    xs = [nearest_source(i, iw, ow, ac, hp) * c for i in range(ow)]
    if y.size == 0:
        ctx.call("/* empty output */")
        return
    fn = ctx.fn()
    p = ctx.sym("p")
    ysym = ctx.weights(np.asarray(ys, dtype=np.int32))
    xsym = ctx.weights(np.asarray(xs, dtype=np.int32))
    ctx.static(f"static const {fn}_params {p} = {{ {n}, {oh}, {ow}, {c}, {ih * iw * c}, "
               f"{out_pixel_stride(op, c)} }};")
    ctx.call(f"{fn}(&{p}, {ctx.ptr(x.id)}, {ysym}, {xsym}, {ctx.ptr(y.id)});")


RESIZE = KernelEntry(name="resize_nearest_s8", ops=("RESIZE_NEAREST_NEIGHBOR",), template="resize_nearest_s8.c.in",
                     emit=_emit_resize, reject=_reject_resize, ostride=True)


# ---- TRANSPOSE --------------------------------------------------------------------------------------------
def _transpose_geometry(g, op):
    x = g.t(op.inputs[0])
    perm = _const_ints(g, op.input(1))
    ist = _row_major_strides(x.shape)
    return _gather([x.shape[p] for p in perm], [ist[p] for p in perm], 0)


def _reject_transpose(g, op, core):
    why = _int8_io(g, op, int16=True)
    if why:
        return why
    x, y = g.t(op.inputs[0]), g.t(op.outputs[0])
    rank = len(x.shape)
    if rank > MAX_RANK:
        return f"rank {rank} > {MAX_RANK} (TFLM's TRANSPOSE supports 1-5 dimensions)"
    perm = _const_ints(g, op.input(1))
    if perm is None:
        return "perm must be a constant int32 tensor"
    if sorted(perm) != list(range(rank)):
        return f"perm {perm} is not a permutation of 0..{rank - 1}"
    want = tuple(x.shape[p] for p in perm)
    if tuple(y.shape) != want:
        return f"output shape {list(y.shape)} != permuted input shape {list(want)}"
    if _transpose_geometry(g, op) is None:
        return "too many non-mergeable dimensions"
    return None


def _emit_transpose(ctx):
    _emit_gather(ctx, ctx.op.inputs[0], ctx.op.outputs[0], _transpose_geometry(ctx.g, ctx.op))


TRANSPOSE = KernelEntry(name="transpose_s8", ops=("TRANSPOSE",), template="strided_copy_s8.c.in",
                        emit=_emit_transpose, reject=_reject_transpose)


# ---- STRIDED_SLICE ----------------------------------------------------------------------------------------
def _clamp(v: int, lo: int, hi: int) -> int:
    return hi if v > hi else (lo if v < lo else v)


def slice_bounds(size: int, begin: int, end: int, stride: int, begin_masked: bool, end_masked: bool,
                 shrink: bool) -> tuple[int, int]:
    """(start, stop) of one axis as TFLM's strided slice evaluates it (negative indices wrap, then clamp)."""
    start = begin + size if begin < 0 else begin
    start = _clamp(start, 0, size) if stride > 0 else _clamp(start, -1, size - 1)
    if begin_masked:
        start = 0 if stride > 0 else size - 1
    if shrink:
        return start, (start if start >= size else start + 1)
    stop = end + size if end < 0 else end
    stop = _clamp(stop, 0, size) if stride > 0 else _clamp(stop, -1, size - 1)
    if end_masked:
        stop = size if stride > 0 else -1
    return start, stop


def _slice_plan(g, op):
    """Per-axis (start, count, stride, shrink) or a reason string."""
    x = g.t(op.inputs[0])
    rank = len(x.shape)
    b, e, s = (_const_ints(g, op.input(i)) for i in (1, 2, 3))
    if b is None or e is None or s is None:
        return "begin, end and strides must be constant int32 tensors"
    if not (len(b) == len(e) == len(s) == rank):
        return f"begin/end/strides hold {len(b)}/{len(e)}/{len(s)} values, expected {rank} (one per dimension)"
    a = op.attrs
    plan = []
    for i in range(rank):
        if s[i] == 0:
            return f"stride of axis {i} is 0"
        shrink = bool(a.shrink_axis_mask >> i & 1)
        start, stop = slice_bounds(x.shape[i], b[i], e[i], s[i], bool(a.begin_mask >> i & 1),
                                   bool(a.end_mask >> i & 1), shrink)
        if shrink and (s[i] < 0 or not 0 <= start < x.shape[i]):
            return (f"shrink axis {i} with " + ("a negative stride" if s[i] < 0 else f"begin {b[i]} out of range")
                    + " (TFLM writes no data for it)")
        count = max(0, len(range(start, stop, s[i])))
        plan.append((start, count, s[i], shrink))
    return plan


def _reject_strided_slice(g, op, core):
    why = _int8_io(g, op, int16=True)
    if why:
        return why
    a = op.attrs
    if a.ellipsis_mask or a.new_axis_mask:
        return "ellipsis_mask/new_axis_mask are not supported (TFLM ignores them)"
    if a.offset:
        return "offset=True is not supported (TFLM ignores it)"
    x, y = g.t(op.inputs[0]), g.t(op.outputs[0])
    if len(x.shape) > 4:
        return f"rank {len(x.shape)} > 4 (TFLM's STRIDED_SLICE supports 1-4 dimensions)"
    plan = _slice_plan(g, op)
    if isinstance(plan, str):
        return plan
    want = tuple(c for _, c, _, sh in plan if not sh)
    if tuple(y.shape) != want:
        return f"output shape {list(y.shape)} != sliced shape {list(want)}"
    return None


def _emit_strided_slice(ctx):
    g, op = ctx.g, ctx.op
    x = g.t(op.inputs[0])
    ist = _row_major_strides(x.shape)
    plan = _slice_plan(g, op)
    dims, strides, base = [], [], 0
    empty = any(c == 0 for _, c, _, _ in plan)
    for (start, count, step, shrink), st in zip(plan, ist):
        if not empty:
            base += start * st
        if not shrink:
            dims.append(count)
            strides.append(step * st)
    _emit_gather(ctx, x.id, op.outputs[0], _gather(dims, strides, base))


STRIDED_SLICE = KernelEntry(name="strided_slice_s8", ops=("STRIDED_SLICE",), template="strided_copy_s8.c.in",
                            emit=_emit_strided_slice, reject=_reject_strided_slice)


# ---- SPLIT / SPLIT_V --------------------------------------------------------------------------------------
def _split_parts(op):
    """(data input position, axis input position) of SPLIT (axis first!) and SPLIT_V."""
    return (1, 0) if op.kind == "SPLIT" else (0, 2)


def _split_axis(g, op) -> Optional[int]:
    d, a = _split_parts(op)
    v = _const_ints(g, op.input(a))
    if v is None or len(v) != 1:
        return None
    rank = len(g.t(op.inputs[d]).shape)
    ax = v[0] + rank if v[0] < 0 else v[0]
    return ax if 0 <= ax < rank else None


def _reject_split(g, op, core):
    d, a = _split_parts(op)
    why = _int8_io(g, op, (d,), int16=True)
    if why:
        return why
    x = g.t(op.inputs[d])
    axis = _split_axis(g, op)
    if axis is None:
        return "axis must be a constant int32 scalar within the input's rank"
    rank = len(x.shape)
    sizes = []
    for i, o in enumerate(op.outputs):
        s = g.t(o).shape
        if len(s) != rank or any(s[k] != x.shape[k] for k in range(rank) if k != axis):
            return f"output {i} shape {list(s)} does not match input {list(x.shape)} outside axis {axis}"
        sizes.append(s[axis])
    if sum(sizes) != x.shape[axis]:
        return f"outputs sum to {sum(sizes)} along axis {axis}, input has {x.shape[axis]}"
    if op.kind == "SPLIT" and len(set(sizes)) > 1:
        return f"SPLIT outputs must be equal along axis {axis}, got {sizes}"
    if op.kind == "SPLIT_V":
        ss = _const_ints(g, op.input(1))
        if ss is not None:
            if len(ss) != len(sizes) or ss.count(-1) > 1 or any(v < -1 for v in ss):
                return f"size_splits {ss} do not describe {len(sizes)} outputs"
            if -1 in ss:
                ss = [x.shape[axis] - (sum(ss) + 1) if v == -1 else v for v in ss]
            if ss != sizes:
                return f"size_splits {ss} != output sizes {sizes} along axis {axis}"
    return None


def _emit_split(ctx):
    g, op = ctx.g, ctx.op
    d, _ = _split_parts(op)
    x = g.t(op.inputs[d])
    axis = _split_axis(g, op)
    outer = _prod(x.shape[:axis])
    inner = _prod(x.shape[axis + 1:])
    off = 0
    for o in op.outputs:
        n = g.t(o).shape[axis]
        _emit_gather(ctx, x.id, o, _gather([outer, n * inner], [x.shape[axis] * inner, 1], off * inner))
        off += n


SPLIT = KernelEntry(name="split_s8", ops=("SPLIT", "SPLIT_V"), template="strided_copy_s8.c.in", emit=_emit_split,
                    reject=_reject_split)

# ---- SLICE, UNPACK, SPACE_TO_DEPTH, DEPTH_TO_SPACE: strided gathers; PACK: the concatenation kernel ----------
def _slice_geometry(g, op):
    x = g.t(op.inputs[0])
    begin, size = _const_ints(g, op.input(1)), _const_ints(g, op.input(2))
    size = [x.shape[k] - begin[k] if size[k] == -1 else size[k] for k in range(len(x.shape))]
    st = _row_major_strides(x.shape)
    return _gather(size, st, sum(b * s for b, s in zip(begin, st))), size


def _reject_slice(g, op, core):
    why = _int8_io(g, op)
    if why:
        return why
    x, y = g.t(op.inputs[0]), g.t(op.outputs[0])
    begin, size = _const_ints(g, op.input(1)), _const_ints(g, op.input(2))
    if begin is None or size is None:
        return "begin and size must be constant int32 tensors"
    rank = len(x.shape)
    if len(begin) != rank or len(size) != rank:
        return f"begin {begin} / size {size} do not match the input's rank {rank}"
    for k in range(rank):
        n = x.shape[k] - begin[k] if size[k] == -1 else size[k]
        if begin[k] < 0 or n < 0 or begin[k] + n > x.shape[k]:
            return f"slice [{begin[k]}, +{size[k]}) outside dimension {k} of size {x.shape[k]}"
    geo, full = _slice_geometry(g, op)
    if tuple(full) != tuple(y.shape):
        return f"output shape {list(y.shape)} != slice size {full}"
    if geo is None:
        return "too many non-mergeable dimensions"
    return None


def _emit_slice(ctx):
    _emit_gather(ctx, ctx.op.inputs[0], ctx.op.outputs[0], _slice_geometry(ctx.g, ctx.op)[0])


SLICE = KernelEntry(name="slice_s8", ops=("SLICE",), template="strided_copy_s8.c.in", emit=_emit_slice,
                    reject=_reject_slice)


def _axis(a: int, rank: int) -> int:
    return a + rank if a < 0 else a


def _reject_unpack(g, op, core):
    why = _int8_io(g, op)
    if why:
        return why
    return _stack_mismatch(g, op.inputs[0], op.outputs, op.attrs.axis, "output")


def _stack_mismatch(g, whole: int, pieces, axis: int, role: str) -> Optional[str]:
    """PACK / UNPACK: `whole` is the pieces stacked along `axis` (a dimension of len(pieces)); else the reason."""
    shape = g.t(whole).shape
    rank = len(shape)
    if not -rank <= axis < rank:
        return f"axis {axis} out of range for rank {rank}"
    ax = _axis(axis, rank)
    if len(pieces) != shape[ax]:
        return f"{len(pieces)} {role}s for dimension {ax} of size {shape[ax]}"
    want = tuple(shape[:ax] + shape[ax + 1:])
    for i, t in enumerate(pieces):
        if tuple(g.t(t).shape) != want:
            return f"{role} {i} shape {list(g.t(t).shape)} != {list(want)}"
    return None


def _emit_unpack(ctx):
    x = ctx.inp(0)
    ax = _axis(ctx.op.attrs.axis, len(x.shape))
    st = _row_major_strides(x.shape)
    dims = list(x.shape[:ax]) + list(x.shape[ax + 1:])
    strides = st[:ax] + st[ax + 1:]
    for k, o in enumerate(ctx.op.outputs):
        _emit_gather(ctx, x.id, o, _gather(dims, strides, k * st[ax]))


UNPACK = KernelEntry(name="unpack_s8", ops=("UNPACK",), template="strided_copy_s8.c.in", emit=_emit_unpack,
                     reject=_reject_unpack)


def _block_geometry(g, op):
    """Output dims and input strides of SPACE_TO_DEPTH / DEPTH_TO_SPACE (NHWC, block b) as one gather."""
    x = g.t(op.inputs[0])
    n, h, w, c = x.shape
    b = op.attrs.block_size
    if op.kind == "SPACE_TO_DEPTH":  # out[n, y, x, (by*b + bx)*c + k] = in[n, y*b + by, x*b + bx, k]
        dims = [n, h // b, w // b, b, b, c]
        strides = [h * w * c, b * w * c, b * c, w * c, c, 1]
    else:  # out[n, y*b + by, x*b + bx, k] = in[n, y, x, (by*b + bx)*c' + k], c' = c / b^2
        co = c // (b * b)
        dims = [n, h, b, w, b, co]
        strides = [h * w * c, w * c, b * co, c, co, 1]
    return _gather(dims, strides, 0)


def _reject_block(g, op, core):
    why = _int8_io(g, op)
    if why:
        return why
    x, y = g.t(op.inputs[0]), g.t(op.outputs[0])
    if len(x.shape) != 4:
        return f"needs a 4-D NHWC input, got {list(x.shape)}"
    n, h, w, c = x.shape
    b = op.attrs.block_size
    if b < 1:
        return f"block size {b} must be positive"
    if op.kind == "SPACE_TO_DEPTH":
        if h % b or w % b:
            return f"height {h} and width {w} must be multiples of the block size {b}"
        want = (n, h // b, w // b, c * b * b)
    else:
        if c % (b * b):
            return f"depth {c} must be a multiple of block size squared {b * b}"
        want = (n, h * b, w * b, c // (b * b))
    if tuple(y.shape) != want:
        return f"output shape {list(y.shape)} != {list(want)}"
    if _block_geometry(g, op) is None:
        return "too many non-mergeable dimensions"
    return None


def _emit_block(ctx):
    _emit_gather(ctx, ctx.op.inputs[0], ctx.op.outputs[0], _block_geometry(ctx.g, ctx.op))


BLOCKS = KernelEntry(name="space_depth_s8", ops=("SPACE_TO_DEPTH", "DEPTH_TO_SPACE"), template="strided_copy_s8.c.in",
                     emit=_emit_block, reject=_reject_block)


def _reject_pack(g, op, core):
    why = _int8_io(g, op, range(len(op.inputs)))
    if why:
        return why
    if op.attrs.values_count not in (0, len(op.inputs)):
        return f"values_count {op.attrs.values_count} for {len(op.inputs)} inputs"
    return _stack_mismatch(g, op.outputs[0], op.inputs, op.attrs.axis, "input")


def _emit_pack(ctx):
    """PACK is a concatenation whose inputs have a dimension of 1 at the axis (the same byte layout)."""
    y = ctx.out()
    ax = _axis(ctx.op.attrs.axis, len(y.shape))
    _emit_chunks(ctx, _prod(y.shape[:ax]), [_prod(y.shape[ax + 1:])] * len(ctx.op.inputs))


PACK = KernelEntry(name="pack_s8", ops=("PACK",), template="concat_s8.c.in", emit=_emit_pack, reject=_reject_pack)

def _reject_gather(g, op, core):
    why = _int8_io(g, op)
    if why:
        return why
    x, y = g.t(op.inputs[0]), g.t(op.outputs[0])
    idx = _const_ints(g, op.input(1))
    it = g.t(op.input(1)) if op.input(1) is not None else None
    if idx is None and (it is None or it.dtype != "int32"):
        return "indices must be an int32 tensor (constant or computed at run time)"
    if op.attrs.batch_dims != 0:
        return f"batch_dims {op.attrs.batch_dims} (only 0 is supported)"
    rank = len(x.shape)
    if not -rank <= op.attrs.axis < rank:
        return f"axis {op.attrs.axis} out of range for rank {rank}"
    ax = _axis(op.attrs.axis, rank)
    if idx is not None and any(not 0 <= i < x.shape[ax] for i in idx):
        return f"an index is outside 0..{x.shape[ax] - 1} (TFLM fails at run time)"
    want = tuple(x.shape[:ax]) + tuple(g.t(op.inputs[1]).shape) + tuple(x.shape[ax + 1:])
    if tuple(y.shape) != want:
        return f"output shape {list(y.shape)} != {list(want)}"
    return None


def _emit_gather_op(ctx):
    x, y = ctx.inp(0), ctx.out()
    ax = _axis(ctx.op.attrs.axis, len(x.shape))
    idx = _const_ints(ctx.g, ctx.op.input(1))
    var = idx is None  # indices computed at run time (a model input, ARG_MAX, ...): checked by the kernel
    fn = ctx.fn(VAR=var)
    p = ctx.sym("p")
    n_idx = ctx.g.t(ctx.op.input(1)).size
    isym = ctx.ptr(ctx.op.input(1), "int32_t") if var else ctx.weights(np.asarray(idx, dtype=np.int32))
    ctx.static(f"static const {fn}_params {p} = {{ {_prod(x.shape[:ax])}, {x.shape[ax]}, {n_idx}, "
               f"{_prod(x.shape[ax + 1:])} }};")
    if var:  # an index outside the axis: TFLite Micro's invoke fails; so does <name>_run (returns 1)
        ctx.call(f"if ({fn}(&{p}, {isym}, {ctx.ptr(x.id)}, {ctx.ptr(y.id)}) != 0) {{\n    return 1;\n}}")
    else:
        ctx.call(f"{fn}(&{p}, {isym}, {ctx.ptr(x.id)}, {ctx.ptr(y.id)});")


GATHER = KernelEntry(name="gather_s8", ops=("GATHER",), template="gather_s8.c.in", emit=_emit_gather_op,
                     reject=_reject_gather)

def _space_batch_plan(g, op):
    """(block (bh, bw), offsets ((t, b), (l, r)), spatial side shape, batched side shape) or a reason (str)."""
    to_batch = op.kind == "SPACE_TO_BATCH_ND"
    x, y = g.t(op.inputs[0]), g.t(op.outputs[0])
    block, off = _const_ints(g, op.input(1)), _const_ints(g, op.input(2))
    if block is None or off is None:
        return "block shape and paddings/crops must be constant int32 tensors"
    if len(x.shape) != 4 or len(y.shape) != 4 or len(block) != 2 or len(off) != 4:
        return "needs 4-D NHWC tensors, a 2-element block shape and 2x2 paddings/crops"
    bh, bw = block
    t, b, l_, r = off
    if min(bh, bw) < 1 or min(off) < 0:
        return f"block {block} and paddings/crops {off} must be positive / non-negative"
    small, big = (x, y) if to_batch else (y, x)
    n, h, w, c = big.shape
    if to_batch:
        want = (small.shape[0] * bh * bw, (small.shape[1] + t + b) // bh, (small.shape[2] + l_ + r) // bw,
                small.shape[3])
        if (small.shape[1] + t + b) % bh or (small.shape[2] + l_ + r) % bw or tuple(y.shape) != want:
            return f"output shape {list(y.shape)} does not match the padded input and block {block}"
    else:
        want = (x.shape[0] // (bh * bw), x.shape[1] * bh - t - b, x.shape[2] * bw - l_ - r, x.shape[3])
        if x.shape[0] % (bh * bw) or tuple(y.shape) != want:
            return f"output shape {list(y.shape)} != {list(want)}"
    return (bh, bw), (t, l_), small.shape, big.shape


def _reject_space_batch(g, op, core):
    why = _int8_io(g, op)
    if why:
        return why
    plan = _space_batch_plan(g, op)
    if isinstance(plan, str):
        return plan
    if op.kind == "SPACE_TO_BATCH_ND" and any(_const_ints(g, op.input(2))):
        return ("padded int8 SPACE_TO_BATCH_ND: TFLite Micro fills the padding with a value it never sets (its "
                "output_offset parameter is uninitialized), so no output could be bit-exact; unpadded layers run")
    return None


def _emit_space_batch(ctx):
    (bh, bw), (t, l_), small, big = _space_batch_plan(ctx.g, ctx.op)
    x, y = ctx.inp(0), ctx.out()
    fn = ctx.fn(TO_BATCH=ctx.op.kind == "SPACE_TO_BATCH_ND")
    p = ctx.sym("p")
    vals = [small[0], small[1], small[2], bh, bw, big[1], big[2], t, l_, small[3], 0]  # (padded layers refused)
    ctx.static(f"static const {fn}_params {p} = {{ {', '.join(map(str, vals))} }};")
    ctx.call(f"{fn}(&{p}, {ctx.ptr(x.id)}, {ctx.ptr(y.id)});")


SPACE_BATCH = KernelEntry(name="space_batch_s8", ops=("SPACE_TO_BATCH_ND", "BATCH_TO_SPACE_ND"),
                          template="space_batch_s8.c.in", emit=_emit_space_batch, reject=_reject_space_batch)

ENTRIES = (PAD, CONCAT, RESIZE, TRANSPOSE, STRIDED_SLICE, SPLIT, COPY, SLICE, UNPACK, BLOCKS, PACK, GATHER,
           SPACE_BATCH)
