"""MEAN, SUM and REDUCE_MAX kernel (int8, TensorFlow Lite Micro reference semantics), any set of axes; ARG_MAX and
ARG_MIN (int8 input, int32 indices) along one axis.

How it works
1. TFLM runs every int8 MEAN through QuantizedMeanOrSum (checked against the installed interpreter: also when
   input and output quantization are equal, and with or without keep_dims): int32 sum over the reduced axes,
   minus zp_in * n, MultiplyByQuantizedMultiplier with s_in / s_out whose multiplier absorbed 1/n (shift by
   floor(log2 n), integer division; `passes.precompute_requant._mean_requant`), plus zp_out, saturated.
2. The axes come from the constant int32 second input (negative axes wrap, duplicates count once). `_groups`
   drops size-1 dimensions and merges neighbours that are both kept or both reduced, giving at most 4 kept and
   4 reduced groups for any rank <= 8 layout that alternates less; the kernel walks kept groups in output
   order and sums the reduced ones (`mean_s8.c.in`). keep_dims only changes the output shape, not the order.
3. Rejected with a reason: non-int8, per-channel, non-constant or out-of-range axes, output size mismatch,
   more than 4 alternating groups, reductions whose sum could leave int32.
4. ARG_MAX / ARG_MIN (`arg_min_max_s8.c.in`) view the input as (outer, axis, inner) around the constant axis
   (its first value, negative wraps, as TFLM reads it) and write, for every (outer, inner), the int32 index of
   the largest / smallest raw int8 value; a strict comparison keeps the first index on ties, as TFLM's
   std::greater / std::less do (checked against the oracle). Quantization plays no part (scales are positive).
   int64 indices or axes are refused by the importer: TFLM fails on them ("Only int32_t are supported").
"""
from __future__ import annotations

from typing import Optional

from ..registry import KernelEntry

MAX_GROUPS = 4


def resolve_axes(g, op) -> Optional[list[int]]:
    x = g.t(op.inputs[0])
    a = g.t(op.inputs[1]) if op.input(1) is not None else None
    if a is None or not a.is_const or a.dtype != "int32":
        return None
    rank = len(x.shape)
    out = []
    for v in a.data.reshape(-1).tolist():
        v = int(v) + rank if int(v) < 0 else int(v)
        if not 0 <= v < rank:
            return None
        if v not in out:
            out.append(v)
    return out


def _groups(shape, axes):
    """([(extent, stride)] kept, [(extent, stride)] reduced), outermost first, size-1 dims dropped."""
    strides = [1] * len(shape)
    for d in range(len(shape) - 2, -1, -1):
        strides[d] = strides[d + 1] * shape[d + 1]
    kept, red = [], []
    last = None
    for d, n in enumerate(shape):
        if n == 1:
            continue
        r = d in axes
        lst = red if r else kept
        if last == r and lst:  # contiguous with the previous group of the same kind: merge
            lst[-1] = (lst[-1][0] * n, strides[d])
        else:
            lst.append((n, strides[d]))
        last = r
    return kept or [(1, 0)], red or [(1, 0)]


def _reject(g, op, core) -> Optional[str]:
    x, y = g.t(op.inputs[0]), g.t(op.outputs[0])
    for t in (x, y):
        if t.dtype != "int8":
            return f"needs int8 input and output, got {x.dtype}/{y.dtype}"
        if t.quant is None or t.quant.per_channel:
            return "needs per-tensor quantized input and output"
    axes = resolve_axes(g, op)
    if axes is None:
        return "needs a constant int32 axes input with axes inside the input rank"
    n = 1
    for a in axes:
        n *= x.shape[a]
    if x.size == 0 or n == 0:
        return "empty input"
    if n * 256 >= (1 << 31):
        return f"reduces {n} elements per output; the int32 sum could overflow"
    if x.size // n != y.size:
        return f"output has {y.size} elements, the reduction gives {x.size // n}"
    kept, red = _groups(x.shape, axes)
    if len(kept) > MAX_GROUPS or len(red) > MAX_GROUPS:
        return f"axes {axes} of shape {x.shape} alternate too often (more than {MAX_GROUPS} groups)"
    if op.kind == "REDUCE_MAX":
        if x.quant.zp != y.quant.zp or float(x.quant.s) != float(y.quant.s):
            return "int8 REDUCE_MAX needs equal input and output quantization (TFLM copies the raw maximum)"
        return None
    if op.requant is None:
        return "missing requantization constants"
    return None


def _emit(ctx):
    op = ctx.op
    x, y = ctx.inp(0), ctx.out()
    axes = resolve_axes(ctx.g, op)
    n = 1
    for a in axes:
        n *= x.shape[a]
    kept, red = _groups(x.shape, axes)
    fn = ctx.fn(MAX=op.kind == "REDUCE_MAX")

    def arr(v):
        v = list(v)
        v += [0] * (MAX_GROUPS - len(v))
        return "{" + ", ".join(str(int(e)) for e in v) + "}"

    p = ctx.sym("p")
    ctx.static(f"static const {fn}_params {p} = {{ {len(kept)}, {arr(e for e, _ in kept)}, "
               f"{arr(s for _, s in kept)}, {len(red)}, {arr(e for e, _ in red)}, {arr(s for _, s in red)}, "
               f"{n}, {x.quant.zp}, {y.quant.zp}, {op.requant.multiplier[0] if op.requant else 0}, "
               f"{op.requant.shift[0] if op.requant else 0} }};")
    ctx.call(f"{fn}(&{p}, {ctx.ptr(x.id)}, {ctx.ptr(y.id)});")


MEAN = KernelEntry(name="mean_s8", ops=("MEAN", "SUM", "REDUCE_MAX"), template="mean_s8.c.in", emit=_emit,
                   reject=_reject)

# ---- ARG_MAX / ARG_MIN ---------------------------------------------------------------------------------------
def arg_axis(g, op) -> Optional[int]:
    """The reduced axis (TFLM reads the first value of the axis tensor), or None when it is not a constant
    int32 inside the input's rank."""
    x = g.t(op.inputs[0])
    a = g.t(op.inputs[1]) if op.input(1) is not None else None
    if a is None or not a.is_const or a.dtype != "int32" or a.size != 1 or not x.shape:
        return None
    v = int(a.data.reshape(-1)[0])
    v = v + len(x.shape) if v < 0 else v
    return v if 0 <= v < len(x.shape) else None


def _arg_reject(g, op, core) -> Optional[str]:
    x, y = g.t(op.inputs[0]), g.t(op.outputs[0])
    if x.dtype != "int8" or y.dtype != "int32":
        return f"needs an int8 input and int32 indices, got {x.dtype} -> {y.dtype}"
    axis = arg_axis(g, op)
    if axis is None:
        return "needs a constant int32 axis (one value) inside the input rank"
    if y.size * x.shape[axis] != x.size:
        return f"output has {y.size} elements, reducing axis {axis} of {list(x.shape)} gives {x.size // x.shape[axis]}"
    return None


def _arg_emit(ctx):
    x, y = ctx.inp(0), ctx.out()
    axis = arg_axis(ctx.g, ctx.op)
    outer = 1
    for d in x.shape[:axis]:
        outer *= d
    inner = x.size // (outer * x.shape[axis])
    fn = ctx.fn(MAX=ctx.op.kind == "ARG_MAX")
    p = ctx.sym("p")
    ctx.static(f"static const {fn}_params {p} = {{ {outer}, {x.shape[axis]}, {inner} }};")
    ctx.call(f"{fn}(&{p}, {ctx.ptr(x.id)}, {ctx.ptr(y.id)});")


ARG_MIN_MAX = KernelEntry(name="arg_min_max_s8", ops=("ARG_MAX", "ARG_MIN"), template="arg_min_max_s8.c.in",
                          emit=_arg_emit, reject=_arg_reject)

ENTRIES = (MEAN, ARG_MIN_MAX)
