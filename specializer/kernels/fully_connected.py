"""FULLY_CONNECTED kernels.

generic: plain C, TFLite Micro reference semantics (int8 input/weights, int32 bias, per-tensor or per-channel
requantization, symmetric or asymmetric weights: acc = bias + sum((x - zp_x) * (w - zp_w))); uses the folded bias
when `fold_zero_points` produced one (symmetric weights only).
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


GENERIC = KernelEntry(name="fully_connected_s8", ops=("FULLY_CONNECTED",), template="fully_connected_s8.c.in",
                      emit=_emit, reject=_reject)

ENTRIES = (GENERIC,)
