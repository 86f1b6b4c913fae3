"""TRANSPOSE_CONV (int8, per-channel or per-tensor weights, optional bias): the generic kernel, TFLite Micro
reference semantics.

How it works
1. Inputs as TFLite orders them: output shape (constant), weights OHWI, input, bias. TFLM computes the padding as
   for the forward convolution from the *output* size to the input size (same rule as CONV_2D's SAME/VALID with
   the roles swapped); `padding` below is that rule.
2. The kernel scatters every input pixel's (x - zp_in) * w into int32 accumulators (scratch: 4 bytes per output
   element, planned like any scratch), then requantizes per channel (constants from precompute_requant) and
   clamps with the fused activation.
3. Refused with a one-line reason: non-int8 data, non-constant or asymmetric weights, an output shape tensor that
   disagrees with the output, channel counts that do not match, per-channel scales on another dimension.
"""
from __future__ import annotations

import numpy as np

from ..ops import conv_output_size
from ..registry import KernelEntry


def padding(attrs, in_hw, out_hw, k_hw) -> tuple[int, int]:
    """(top, left) padding TFLM uses: the forward convolution's from the output size back to the input size."""
    pads = []
    for o, k, s in zip(out_hw, k_hw, (attrs.stride_h, attrs.stride_w)):
        fwd = conv_output_size(o, k, s, 1, attrs.padding)
        total = max((fwd - 1) * s + k - o, 0)
        pads.append(total // 2)
    return pads[0], pads[1]


def _reject(g, op, core):
    if len(op.inputs) < 3 or op.input(0) is None or op.input(1) is None or op.input(2) is None:
        return "needs output shape, weights and input"
    shp, w, x, y = g.t(op.inputs[0]), g.t(op.inputs[1]), g.t(op.inputs[2]), g.t(op.outputs[0])
    if (x.dtype, w.dtype, y.dtype) != ("int8", "int8", "int8"):
        return f"needs int8 input/weights/output, got {x.dtype}/{w.dtype}/{y.dtype}"
    if not w.is_const or len(w.shape) != 4 or w.quant is None:
        return "needs constant quantized 4-D (OHWI) weights"
    if any(w.quant.zero_point):
        return "needs symmetric int8 weights (zero point 0)"
    if w.quant.per_channel and w.quant.axis != 0:
        return f"per-channel weight scales must be on dimension 0, got {w.quant.axis}"
    if len(x.shape) != 4 or len(y.shape) != 4:
        return "needs 4-D NHWC input and output"
    if not shp.is_const or [int(v) for v in shp.data.reshape(-1)] != list(y.shape):
        return f"output shape tensor {None if not shp.is_const else list(shp.data.reshape(-1))} != output {list(y.shape)}"
    if x.shape[3] != w.shape[3] or y.shape[3] != w.shape[0] or x.shape[0] != y.shape[0]:
        return f"channels/batches do not match: input {list(x.shape)}, weights {list(w.shape)}, output {list(y.shape)}"
    b = op.input(3)
    if b is not None and (not g.t(b).is_const or g.t(b).dtype != "int32" or g.t(b).size != w.shape[0]):
        return "needs a constant int32 bias with one value per output channel"
    if op.requant is None:
        return "missing requantization constants"
    return None


def scratch_bytes(g, op) -> int:
    return 4 * g.t(op.outputs[0]).size


def _emit(ctx):
    op = ctx.op
    w, x, y = ctx.inp(1), ctx.inp(2), ctx.out()
    fn = ctx.fn()
    bias = ctx.ptr(op.input(3)) if op.input(3) is not None else "(const int32_t *)0"
    rq = op.requant
    mult = ctx.weights(np.asarray(rq.multiplier, dtype=np.int32))
    shift = ctx.weights(np.asarray(rq.shift, dtype=np.int32))
    top, left = padding(op.attrs, x.shape[1:3], y.shape[1:3], w.shape[1:3])
    lo, hi = op.clamp if op.clamp is not None else (-128, 127)
    p = ctx.sym("p")
    vals = [x.shape[0], x.shape[1], x.shape[2], x.shape[3], y.shape[1], y.shape[2], y.shape[3], w.shape[1],
            w.shape[2], op.attrs.stride_h, op.attrs.stride_w, top, left, x.quant.zero_point[0],
            y.quant.zero_point[0], lo, hi, int(len(rq.multiplier) > 1)]
    ctx.static(f"static const {fn}_params {p} = {{ {', '.join(map(str, vals))} }};")
    ctx.call(f"{fn}(&{p}, {ctx.ptr(x.id)}, {ctx.ptr(w.id)}, {bias}, {mult}, {shift}, {ctx.ptr(y.id)}, "
             f"{ctx.scratch('int32_t')});")


GENERIC = KernelEntry(name="transpose_conv_s8", ops=("TRANSPOSE_CONV",), template="transpose_conv_s8.c.in",
                      emit=_emit, reject=_reject, scratch_bytes=scratch_bytes)

ENTRIES = (GENERIC,)
