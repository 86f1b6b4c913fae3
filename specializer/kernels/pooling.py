"""AVERAGE_POOL_2D and MAX_POOL_2D kernels (int8, TensorFlow Lite Micro reference semantics).

How it works
1. One template (`pool2d_s8.c.in`, AVG selects the reduction) and one runtime-parametrized function per kind:
   every layer gets a `static const` parameter struct (shapes, filter, strides, top/left padding, clamp).
2. Padding (SAME/VALID, or explicit) is reduced to (top, left) by `ops.explicit_padding`; windows are clipped to
   the input, so padded taps are skipped: the average divides by the number of in-bounds taps with TFLite's
   round-half-away-from-zero integer division, the maximum starts from -128.
3. TFLite int8 pooling does not requantize: input and output must share scale and zero point (rejected
   otherwise). The fused activation arrives as `op.clamp` (fuse_activations).
4. A window that lies entirely in the padding makes TFLM's average pool fail at run time; such layers are
   rejected at compile time with a one-line reason.
5. The output may overlap its dying input at the distance `_overlap` computes (output written behind the reads).
"""
from __future__ import annotations

from ..ops import conv_output_size, explicit_padding
from ..registry import KernelEntry, out_pixel_stride
from .overlap import gap


def _geometry(g, op):
    x, y = g.t(op.inputs[0]), g.t(op.outputs[0])
    a = op.attrs
    return explicit_padding(a, x.shape[1:3], y.shape[1:3], (a.filter_h, a.filter_w))


def _reject(g, op, core):
    return _pool_reject(g, op, "int8")


def _pool_reject(g, op, dtype: str, max_taps: int = 0):
    """The int8 and int16 pools' common checks: types, shapes, one quantization, padding, no empty window."""
    x, y = g.t(op.inputs[0]), g.t(op.outputs[0])
    a = op.attrs
    if (x.dtype, y.dtype) != (dtype, dtype):
        return f"needs {dtype} input/output, got {x.dtype}/{y.dtype}"
    if len(x.shape) != 4 or len(y.shape) != 4:
        return "needs 4-D NHWC input and output"
    if x.quant is None or y.quant is None:
        return "needs quantized input and output"
    if (x.quant.scale, x.quant.zero_point) != (y.quant.scale, y.quant.zero_point):
        return f"needs the same quantization on input and output ({dtype} pooling does not requantize)"
    if x.shape[0] != y.shape[0] or x.shape[3] != y.shape[3]:
        return f"input {x.shape} and output {y.shape} differ in batch or channels"
    if min(a.stride_h, a.stride_w, a.filter_h, a.filter_w) < 1:
        return "filter sizes and strides must be >= 1"
    if max_taps and a.filter_h * a.filter_w > max_taps:
        return f"a {a.filter_h}x{a.filter_w} window could overflow TFLite Micro's int32 sum of {dtype} values"
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


def _emit(ctx, full=(-128, 127)):
    op = ctx.op
    x, y = ctx.inp(0), ctx.out()
    a = op.attrs
    fn = ctx.fn(AVG=op.kind == "AVERAGE_POOL_2D")
    top, _, left, _ = _geometry(ctx.g, op)
    lo, hi = op.clamp if op.clamp is not None else full
    p = ctx.sym("p")
    ctx.static(f"static const {fn}_params {p} = {{ {x.shape[0]}, {x.shape[1]}, {x.shape[2]}, {x.shape[3]}, "
               f"{y.shape[1]}, {y.shape[2]}, {a.filter_h}, {a.filter_w}, {a.stride_h}, {a.stride_w}, "
               f"{top}, {left}, {lo}, {hi}, {out_pixel_stride(op, x.shape[3])} }};")
    ctx.call(f"{fn}(&{p}, {ctx.ptr(x.id)}, {ctx.ptr(y.id)});")


def _overlap(g, op) -> tuple:
    """The template walks output pixels in order and, per pixel, channel by channel (a channel's window read, then
    its byte written): its output may overlap its input at the distance `overlap.gap` gives (own=True: a
    pixel's writes are interleaved with its own reads)."""
    x, y = g.t(op.inputs[0]), g.t(op.outputs[0])
    a = op.attrs
    top, _, left, _ = _geometry(g, op)
    b_, ih, iw, c = x.shape
    oh, ow = y.shape[1], y.shape[2]
    steps = []
    for b in range(b_):
        for oy in range(oh):
            ys = max(oy * a.stride_h - top, 0)
            for ox in range(ow):
                xs = max(ox * a.stride_w - left, 0)
                steps.append((((b * oh + oy) * ow + ox + 1) * c, ((b * ih + ys) * iw + xs) * c))
    d = gap(steps, own=True)
    return ((0, d),) if d is not None else ()


AVG_GENERIC = KernelEntry(name="avg_pool2d_s8", ops=("AVERAGE_POOL_2D",), template="pool2d_s8.c.in",
                          emit=_emit, reject=_reject, overlap=_overlap, ostride=True)
MAX_GENERIC = KernelEntry(name="max_pool2d_s8", ops=("MAX_POOL_2D",), template="pool2d_s8.c.in",
                          emit=_emit, reject=_reject, overlap=_overlap, ostride=True)

ENTRIES = (AVG_GENERIC, MAX_GENERIC)
