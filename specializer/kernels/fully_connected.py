"""FULLY_CONNECTED kernels.

generic: plain C, TFLite Micro reference semantics (int8 input/weights, int32 bias, per-tensor or per-channel
requantization, symmetric or asymmetric weights: acc = bias + sum((x - zp_x) * (w - zp_w))); uses the folded bias
when `fold_zero_points` produced one (symmetric weights only).

int16x8 (`fully_connected_s16`): int16 input and output, int8 weights, int64 bias (or none), TFLite Micro's
reference int16 path: int64 accumulator and the 64-bit MultiplyByQuantizedMultiplier (16-bit rounded multiplier).
The int8 entries refuse int16 tensors, so int16 layers land here.
"""
from __future__ import annotations

import numpy as np

from ..registry import KernelEntry


def _reject(g, op, core):
    x, w, y = g.t(op.inputs[0]), g.t(op.inputs[1]), g.t(op.outputs[0])
    if (x.dtype, w.dtype, y.dtype) != ("int8", "int8", "int8"):
        return f"needs int8 input/weights/output, got {x.dtype}/{w.dtype}/{y.dtype}"
    if not w.is_const or len(w.shape) != 2:
        return "needs constant 2-D weights"
    if w.quant is None:
        return "needs quantized int8 weights"
    if any(w.quant.zero_point) and len(set(w.quant.zero_point)) > 1:
        return "per-channel weight zero points that differ (TFLite Micro takes one weight zero point)"
    if x.size % w.shape[1]:
        return f"input size {x.size} is not a multiple of the weights' depth {w.shape[1]}"
    b = op.input(2)
    if b is not None and (not g.t(b).is_const or g.t(b).dtype != "int32"):
        return "needs a constant int32 bias"
    if op.requant is None:
        return "missing requantization constants"
    return None


def _emit(ctx):
    op = ctx.op
    x, w, y = ctx.inp(0), ctx.inp(1), ctx.out()
    folded = op.folded_bias is not None
    fn = ctx.fn(FOLDED=folded)
    bias_tid = op.folded_bias if folded else op.input(2)
    bias = ctx.ptr(bias_tid) if bias_tid is not None else "(const int32_t *)0"
    rq = op.requant
    mult = ctx.weights(np.asarray(rq.multiplier, dtype=np.int32))
    shift = ctx.weights(np.asarray(rq.shift, dtype=np.int32))
    depth = w.shape[1]
    lo, hi = op.clamp
    p = ctx.sym("p")
    ctx.static(f"static const {fn}_params {p} = {{ {x.size // depth}, {depth}, {w.shape[0]}, "
               f"{x.quant.zero_point[0]}, {w.quant.zero_point[0]}, {y.quant.zero_point[0]}, {lo}, {hi}, "
               f"{int(len(rq.multiplier) > 1)} }};")
    ctx.call(f"{fn}(&{p}, {ctx.ptr(x.id)}, {ctx.ptr(w.id)}, {bias}, {mult}, {shift}, {ctx.ptr(y.id)});")


def _reject_s16(g, op, core):
    x, w, y = g.t(op.inputs[0]), g.t(op.inputs[1]), g.t(op.outputs[0])
    if (x.dtype, y.dtype) != ("int16", "int16"):
        return f"needs int16 input/output, got {x.dtype}/{y.dtype}"
    if w.dtype != "int8":
        return f"int16x8 needs int8 weights, got {w.dtype}"
    if not w.is_const or len(w.shape) != 2:
        return "needs constant 2-D weights"
    if w.quant is None or x.quant is None or y.quant is None:
        return "needs quantized input, weights and output"
    if any(w.quant.zero_point):
        return "int16x8 needs symmetric int8 weights (zero point 0)"
    if x.size % w.shape[1]:
        return f"input size {x.size} is not a multiple of the weights' depth {w.shape[1]}"
    b = op.input(2)
    if b is not None and (not g.t(b).is_const or g.t(b).dtype not in ("int64", "int32")):
        return "int16x8 needs a constant int64 (or int32) bias"
    if op.requant is None:
        return "missing requantization constants"
    if b is not None and g.t(b).dtype == "int32":
        worst = w.shape[1] * (32768 + abs(int(x.quant.zero_point[0]))) * (128 + abs(int(w.quant.zero_point[0])))
        if worst + int(np.abs(g.t(b).data.astype(np.int64)).max(initial=0)) >= 1 << 31:
            return ("int32 bias with an accumulator that could overflow int32 (depth too large): TFLite's int32 "
                    "accumulation would wrap; use an int64 bias")
    if (b is None or g.t(b).dtype == "int64") and any(not -31 <= s <= 7 for s in op.requant.shift):
        return ("the output multiplier's shift is outside -31..7 (TFLite's 64-bit MultiplyByQuantizedMultiplier "
                "takes no other; input * weight scale / output scale too far from 1)")
    return None


def _emit_s16(ctx):
    op = ctx.op
    x, w, y = ctx.inp(0), ctx.inp(1), ctx.out()
    bias_tid = op.input(2)
    bias32 = bias_tid is not None and ctx.g.t(bias_tid).dtype == "int32"
    fn = ctx.fn(BIAS32=bias32)
    bias = ctx.ptr(bias_tid) if bias_tid is not None else "(const int64_t *)0"
    rq = op.requant
    mult = ctx.weights(np.asarray(rq.multiplier, dtype=np.int32))
    shift = ctx.weights(np.asarray(rq.shift, dtype=np.int32))
    depth = w.shape[1]
    lo, hi = op.clamp if op.clamp is not None else (-32768, 32767)
    p = ctx.sym("p")
    ctx.static(f"static const {fn}_params {p} = {{ {x.size // depth}, {depth}, {w.shape[0]}, "
               f"{x.quant.zero_point[0]}, {w.quant.zero_point[0]}, {y.quant.zero_point[0]}, {lo}, {hi}, "
               f"{int(len(rq.multiplier) > 1)} }};")
    ctx.call(f"{fn}(&{p}, {ctx.ptr(x.id)}, {ctx.ptr(w.id)}, {bias}, {mult}, {shift}, {ctx.ptr(y.id)});")


INT16 = KernelEntry(name="fully_connected_s16", ops=("FULLY_CONNECTED",), template="fully_connected_s16.c.in",
                    emit=_emit_s16, reject=_reject_s16)

GENERIC = KernelEntry(name="fully_connected_s8", ops=("FULLY_CONNECTED",), template="fully_connected_s8.c.in",
                      emit=_emit, reject=_reject)

ENTRIES = (GENERIC, INT16)
