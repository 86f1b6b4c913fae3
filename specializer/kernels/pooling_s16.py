"""int16 AVERAGE_POOL_2D and MAX_POOL_2D (the int16x8 mode; TFLite Micro reference semantics).

How it works
1. Separate registry entries (`avg_pool2d_s16`, `max_pool2d_s16`, template `pool2d_s16.c.in`): the int8 entries
   (pooling.py) refuse int16 tensors. The arithmetic is the int8 one on 16-bit values: TFLM's int16 pooling does
   not requantize either, its prepare fails unless input and output share scale and zero point (any zero point).
2. TFLM accepts an int16 pool writing an int8 output and writes garbage (checked against the oracle): refused.
3. A window entirely in the padding (TFLM's average pool fails at run time) and windows of more than 65535 taps
   (TFLM's int32 sum could overflow) are refused with a one-line reason.
"""
from __future__ import annotations

from typing import Optional

from ..ops import conv_output_size
from ..registry import KernelEntry
from .pooling import _geometry


def _reject(g, op, core) -> Optional[str]:
    x, y = g.t(op.inputs[0]), g.t(op.outputs[0])
    a = op.attrs
    if (x.dtype, y.dtype) != ("int16", "int16"):
        return f"needs int16 input/output, got {x.dtype}/{y.dtype}"
    if len(x.shape) != 4 or len(y.shape) != 4:
        return "needs 4-D NHWC input and output"
    if x.quant is None or y.quant is None:
        return "needs quantized input and output"
    if (x.quant.scale, x.quant.zero_point) != (y.quant.scale, y.quant.zero_point):
        return "needs the same quantization on input and output (int16 pooling does not requantize)"
    if x.shape[0] != y.shape[0] or x.shape[3] != y.shape[3]:
        return f"input {x.shape} and output {y.shape} differ in batch or channels"
    if min(a.stride_h, a.stride_w, a.filter_h, a.filter_w) < 1:
        return "filter sizes and strides must be >= 1"
    if a.filter_h * a.filter_w > 65535:
        return f"a {a.filter_h}x{a.filter_w} window could overflow TFLite Micro's int32 sum of int16 values"
    if a.explicit_padding is None:
        if a.padding not in ("SAME", "VALID"):
            return f"unknown padding {a.padding}"
        for i, (k, s) in enumerate(((a.filter_h, a.stride_h), (a.filter_w, a.stride_w))):
            want = conv_output_size(x.shape[1 + i], k, s, 1, a.padding)
            if want != y.shape[1 + i]:
                return f"output {'HW'[i]} {y.shape[1 + i]} does not match {a.padding} padding (expected {want})"
    top, _, left, _ = _geometry(g, op)
    for i, (k, s, pad) in enumerate(((a.filter_h, a.stride_h, top), (a.filter_w, a.stride_w, left))):
        for o in range(y.shape[1 + i]):
            start = o * s - pad
            if min(start + k, x.shape[1 + i]) <= max(start, 0):
                return f"output {'HW'[i]} position {o} has a window entirely in the padding"
    return None


def _emit(ctx):
    op = ctx.op
    x, y = ctx.inp(0), ctx.out()
    a = op.attrs
    fn = ctx.fn(AVG=op.kind == "AVERAGE_POOL_2D")
    top, _, left, _ = _geometry(ctx.g, op)
    lo, hi = op.clamp if op.clamp is not None else (-32768, 32767)
    p = ctx.sym("p")
    ctx.static(f"static const {fn}_params {p} = {{ {x.shape[0]}, {x.shape[1]}, {x.shape[2]}, {x.shape[3]}, "
               f"{y.shape[1]}, {y.shape[2]}, {a.filter_h}, {a.filter_w}, {a.stride_h}, {a.stride_w}, "
               f"{top}, {left}, {lo}, {hi} }};")
    ctx.call(f"{fn}(&{p}, {ctx.ptr(x.id)}, {ctx.ptr(y.id)});")


AVG_S16 = KernelEntry(name="avg_pool2d_s16", ops=("AVERAGE_POOL_2D",), template="pool2d_s16.c.in",
                      emit=_emit, reject=_reject)
MAX_S16 = KernelEntry(name="max_pool2d_s16", ops=("MAX_POOL_2D",), template="pool2d_s16.c.in",
                      emit=_emit, reject=_reject)

ENTRIES = (AVG_S16, MAX_S16)
