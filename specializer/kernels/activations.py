"""LOGISTIC, TANH, HARD_SWISH and ABS, NEG, LEAKY_RELU, ELU, EXP, RSQRT (int8 in, int8 out), bit-exact with TFLM.

How it works
1. TFLM evaluates these ops in integer fixed point (gemmlowp logistic/tanh in Q4.27 behind an input radius
   check; HARD_SWISH in int16 with its "reluish" and output multipliers). Each output depends only on its own
   int8 input and per-tensor constants, so the whole op is a function of 256 possible inputs.
2. `passes.precompute_requant` runs the Python twin of TFLM's Prepare + Eval (specializer/fixedpoint.py) on all
   256 inputs and stores the results as a `TableRequant`; the tests check the twin and the generated code against
   the oracle for every input value over many quantizations. A table is exact by construction, costs 256 bytes of
   flash (shared between layers with equal quantization) and one load per element at run time.
   ABS, NEG, LEAKY_RELU, ELU, EXP and RSQRT take their table from TFLM itself (specializer/measured.py).
3. One generic C kernel (lut_s8.c.in) serves all these ops: out[i] = table[(uint8_t)in[i]]. It works in place.
4. Rejected (one-line reasons): non-int8 tensors, per-channel quantization, LOGISTIC outputs other than
   (1/256, -128) and TANH outputs other than (1/128, 0) (TFLM writes those fixed scales whatever the output
   tensor declares, so any other quantization would give meaningless values), input scales below 2^-28
   (undefined behaviour in TFLM's radius computation), HARD_SWISH with input_scale / 128 >= output_scale (TFLM's
   Prepare fails).
"""
from __future__ import annotations

import numpy as np

from .. import fixedpoint
from ..measured import MEASURED_OPS, measured_table
from ..registry import KernelEntry

TWIN_OPS = ("LOGISTIC", "TANH", "HARD_SWISH")  # tables from the Python twin (specializer/fixedpoint.py)
OPS = TWIN_OPS + MEASURED_OPS  # and tables measured on TFLite Micro itself (specializer/measured.py)
# TFLite's fixed int8 output quantization of the sigmoid-like ops: (scale, zero point)
FIXED_OUTPUT = {"LOGISTIC": (1.0 / 256.0, -128), "TANH": (1.0 / 128.0, 0)}


def _reject(g, op, core):
    x, y = g.t(op.inputs[0]), g.t(op.outputs[0])
    if (x.dtype, y.dtype) != ("int8", "int8"):
        return f"needs int8 input and output, got {x.dtype}/{y.dtype}"
    if x.quant is None or y.quant is None or x.quant.per_channel or y.quant.per_channel:
        return "needs per-tensor quantized input and output"
    if x.size != y.size:
        return f"input and output sizes differ ({x.size} vs {y.size})"
    if op.kind in FIXED_OUTPUT:
        scale, zp = FIXED_OUTPUT[op.kind]
        if y.quant.zero_point[0] != zp or abs(y.quant.scale[0] - scale) > 1e-6 * scale:
            return (f"int8 {op.kind} output must have scale 1/{round(1 / scale)} and zero point {zp} (TFLite's fixed "
                    f"output quantization), got scale {y.quant.scale[0]:g} zero point {y.quant.zero_point[0]}")
    try:
        if op.kind in MEASURED_OPS:
            measured_table(op.kind, op.attrs, float(x.quant.scale[0]), int(x.quant.zero_point[0]),
                           float(y.quant.scale[0]), int(y.quant.zero_point[0]))
        else:
            fixedpoint.unary_s8_table(op.kind, x.quant.scale[0], x.quant.zero_point[0], y.quant.scale[0],
                                      y.quant.zero_point[0])
    except ValueError as e:
        return str(e)
    if op.requant is None or not hasattr(op.requant, "table"):
        return "missing precomputed table"
    return None


def _emit(ctx):
    x, y = ctx.inp(0), ctx.out()
    fn = ctx.fn()
    table = ctx.weights(np.asarray(ctx.op.requant.table, dtype=np.int8))
    p = ctx.sym("p")
    ctx.static(f"static const {fn}_params {p} = {{ {x.size} }};")
    ctx.call(f"{fn}(&{p}, {table}, {ctx.ptr(x.id)}, {ctx.ptr(y.id)});")


GENERIC = KernelEntry(name="lut_s8", ops=OPS, template="lut_s8.c.in", emit=_emit, reject=_reject, inplace=(0,))


def _reject_prelu(g, op, core):
    from ..passes.precompute_requant import prelu_alpha

    x, y = g.t(op.inputs[0]), g.t(op.outputs[0])
    if (x.dtype, y.dtype) != ("int8", "int8"):
        return f"needs int8 input and output, got {x.dtype}/{y.dtype}"
    if x.shape != y.shape:
        return f"input shape {list(x.shape)} != output shape {list(y.shape)}"
    if prelu_alpha(g, op) is None:
        return "alpha must be a constant int8 tensor varying along the last dimension only (one value per channel)"
    if op.requant is None or not hasattr(op.requant, "table"):
        return "TFLite Micro does not run this int8 PRELU (no table could be measured)"
    return None


def _emit_prelu(ctx):
    x, y = ctx.inp(0), ctx.out()
    c = x.shape[-1]
    fn = ctx.fn(template="lut_channel_s8.c.in")
    table = ctx.weights(np.asarray(ctx.op.requant.table, dtype=np.int8))
    p = ctx.sym("p")
    ctx.static(f"static const {fn}_params {p} = {{ {x.size // c}, {c} }};")
    ctx.call(f"{fn}(&{p}, {table}, {ctx.ptr(x.id)}, {ctx.ptr(y.id)});")


# PRELU: one 256-entry table per channel, measured on TFLite Micro (specializer/measured.py)
PRELU = KernelEntry(name="prelu_s8", ops=("PRELU",), template="lut_channel_s8.c.in", emit=_emit_prelu,
                    reject=_reject_prelu, inplace=(0,))

ENTRIES = (GENERIC, PRELU)
