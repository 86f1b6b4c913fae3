"""SOFTMAX and LOG_SOFTMAX kernels (int8 in, int8 out), bit-exact with TensorFlow Lite Micro.

How it works
1. TFLM's int8 softmax (reference_ops::Softmax) rescales each difference x - max(row) by beta * s_in into Q5.26
   (PreprocessSoftmaxScaling), skips differences below diff_min (CalculateInputRadius), takes gemmlowp's
   exp_on_negative_values, sums the exps in Q12.19, inverts the sum with gemmlowp's Newton-Raphson 1/(1+x) and
   scales every exp by it down to 8 bits with output zero point -128.
2. The difference takes only 256 values, so `passes.precompute_requant` stores TFLM's Q0.31 exp for each of them
   (0 for skipped differences, which then yield -128 exactly as TFLM's skip branch) in a `SoftmaxRequant`; the
   Python twin is specializer/fixedpoint.py. The table (1 KiB flash, shared by equal layers) replaces the
   per-element exp; the per-row reciprocal runs in C (runtime/spz_fixedpoint.h).
3. Softmax runs over the last axis for any number of rows; any beta. It works in place.
4. Rejected (one-line reasons): non-int8 tensors, per-channel input, outputs other than scale 1/256 and zero point
   -128 (TFLM's Prepare requires exactly these), beta * s_in below 2^-26 (TFLM's Prepare fails), int16 outputs.
   Rows whose exp sum reaches 2^28 (hundreds of equal maxima) make TFLM abort on a range check; the kernel clamps
   that shift instead.
5. LOG_SOFTMAX (`log_softmax_s8.c.in`) follows TFLM's LogSoftmaxQuantized: the same Q5.26 rescaling of x - max
   (beta 1), a Q12.19 sum of exps, gemmlowp's fixed-point log of the sum in Q5.26 (`spz_fp_log_x_ge_1`), then
   each output is (rescaled difference - log sum) rounded to Q4 plus 127, or -128 below a cut-off that TFLM
   derives from the log sum with the inverse input scaling. Both per-difference quantities come from two
   offline int32[256] tables (`passes.precompute_requant.LogSoftmaxRequant`, Python twin in
   specializer/fixedpoint.py). TFLM's Prepare requires the output scale 16/256 and zero point 127; rows of 4096
   and more elements are refused (TFLM's int32 sum of exps is only safe below 2^12 terms).
"""
from __future__ import annotations

import numpy as np

from .. import fixedpoint
from ..registry import KernelEntry


def _reject(g, op, core):
    x, y = g.t(op.inputs[0]), g.t(op.outputs[0])
    if (x.dtype, y.dtype) != ("int8", "int8"):
        return f"needs int8 input and output, got {x.dtype}/{y.dtype}"
    if x.quant is None or y.quant is None or x.quant.per_channel:
        return "needs a per-tensor quantized input and a quantized output"
    if y.quant.zero_point[0] != -128 or y.quant.scale[0] != np.float32(1.0 / 256.0):
        return (f"int8 output must have scale 1/256 and zero point -128 as TFLM requires, got scale "
                f"{y.quant.scale[0]:g} zero point {y.quant.zero_point[0]}")
    if len(x.shape) < 1 or x.shape != y.shape or x.shape[-1] < 1:
        return f"input {x.shape} and output {y.shape} shapes must match and be non-empty"
    try:
        fixedpoint.softmax_params(x.quant.scale[0], op.attrs.beta)
    except ValueError as e:
        return str(e)
    if op.requant is None or not hasattr(op.requant, "exp_table"):
        return "missing precomputed exp table"
    return None


def _emit(ctx):
    x, y = ctx.inp(0), ctx.out()
    fn = ctx.fn()
    depth = x.shape[-1]
    table = ctx.weights(np.asarray(ctx.op.requant.exp_table, dtype=np.int32))
    p = ctx.sym("p")
    ctx.static(f"static const {fn}_params {p} = {{ {x.size // depth}, {depth} }};")
    ctx.call(f"{fn}(&{p}, {table}, {ctx.ptr(x.id)}, {ctx.ptr(y.id)});")


GENERIC = KernelEntry(name="softmax_s8", ops=("SOFTMAX",), template="softmax_s8.c.in", emit=_emit, reject=_reject,
                      inplace=(0,))


# ---- LOG_SOFTMAX ---------------------------------------------------------------------------------------------
def _log_reject(g, op, core):
    x, y = g.t(op.inputs[0]), g.t(op.outputs[0])
    if (x.dtype, y.dtype) != ("int8", "int8"):
        return f"needs int8 input and output, got {x.dtype}/{y.dtype}"
    if x.quant is None or y.quant is None or x.quant.per_channel:
        return "needs a per-tensor quantized input and a quantized output"
    if y.quant.zero_point[0] != 127 or y.quant.scale[0] != np.float32(16.0 / 256.0):
        return (f"int8 output must have scale 16/256 and zero point 127 as TFLM's prepare requires, got scale "
                f"{y.quant.scale[0]:g} zero point {y.quant.zero_point[0]}")
    if len(x.shape) < 1 or x.shape != y.shape:
        return f"input {x.shape} and output {y.shape} shapes must match"
    if x.shape[-1] >= 4096:
        return f"rows of {x.shape[-1]} elements: TFLM's int32 sum of exps is only safe below 4096"
    try:
        fixedpoint.log_softmax_params(x.quant.scale[0])
    except ValueError as e:
        return str(e)
    if op.requant is None or not hasattr(op.requant, "diff_q5"):
        return "missing precomputed tables"
    return None


def _log_emit(ctx):
    x, y = ctx.inp(0), ctx.out()
    rq = ctx.op.requant
    fn = ctx.fn()
    depth = x.shape[-1]
    exp_q12 = ctx.weights(np.asarray(rq.exp_q12, dtype=np.int32))
    diff_q5 = ctx.weights(np.asarray(rq.diff_q5, dtype=np.int32))
    p = ctx.sym("p")
    ctx.static(f"static const {fn}_params {p} = {{ {x.size // depth}, {depth}, {rq.diff_min}, "
               f"{rq.reverse_multiplier}, {rq.reverse_shift} }};")
    ctx.call(f"{fn}(&{p}, {exp_q12}, {diff_q5}, {ctx.ptr(x.id)}, {ctx.ptr(y.id)});")


LOG_SOFTMAX = KernelEntry(name="log_softmax_s8", ops=("LOG_SOFTMAX",), template="log_softmax_s8.c.in",
                          emit=_log_emit, reject=_log_reject, inplace=(0,))

ENTRIES = (GENERIC, LOG_SOFTMAX)
