"""CONV_2D and DEPTHWISE_CONV_2D kernels (int8, TensorFlow Lite Micro reference semantics).

How it works
1. Both generic kernels are one runtime-parametrized C function per template-args key (only FOLDED varies):
   every layer gets a `static const` parameter struct (shapes, strides, dilations, top/left padding, zero
   points, clamp) plus flash arrays for the per-channel multipliers and shifts (`op.requant`, ChannelRequant).
2. Padding of any kind (SAME, VALID, EXPLICIT after `fold_padding`) is reduced to (top, left) by
   `ops.explicit_padding`; bottom/right padding needs no number, taps outside the input are detected by bounds.
3. Without a folded bias the kernel accumulates (x - zp_in) * w over in-bounds taps plus the optional bias,
   exactly as TFLM. With `op.folded_bias` (bias - zp_in * sum(w)) it multiplies raw inputs and counts every
   padded tap as zp_in * w, which gives the same int32 sum.
4. CONV_2D accepts grouped convolution (input depth = groups * filter depth, as TFLM's reference does);
   DEPTHWISE_CONV_2D takes any depth multiplier (output channel = c * multiplier + m).
5. `reject` returns a one-line reason for anything else (non-int8 types, asymmetric weights, non-constant
   weights or bias, inconsistent shapes), so the user gets an error instead of wrong output.
"""
from __future__ import annotations

import numpy as np

from ..ops import conv_output_size, explicit_padding
from ..registry import KernelEntry


def _common_reject(g, op):
    x, w, y = g.t(op.inputs[0]), g.t(op.inputs[1]), g.t(op.outputs[0])
    if (x.dtype, w.dtype, y.dtype) != ("int8", "int8", "int8"):
        return f"needs int8 input/weights/output, got {x.dtype}/{w.dtype}/{y.dtype}"
    if len(x.shape) != 4 or len(w.shape) != 4 or len(y.shape) != 4:
        return "needs 4-D NHWC input, weights and output"
    if not w.is_const:
        return "needs constant weights"
    if x.quant is None or y.quant is None or w.quant is None:
        return "needs quantized input, weights and output"
    if any(w.quant.zero_point):
        return "needs symmetric int8 weights (zero point 0)"
    if x.quant.per_channel or y.quant.per_channel:
        return "needs per-tensor input and output quantization"
    if x.shape[0] != y.shape[0]:
        return f"batch mismatch: input {x.shape[0]}, output {y.shape[0]}"
    a = op.attrs
    if min(a.stride_h, a.stride_w, a.dilation_h, a.dilation_w) < 1:
        return "strides and dilations must be >= 1"
    b = op.input(2)
    if b is not None:
        bt = g.t(b)
        if not bt.is_const or bt.dtype != "int32":
            return "needs a constant int32 bias"
        if bt.size != y.shape[3]:
            return f"bias has {bt.size} values for {y.shape[3]} output channels"
    if op.requant is None:
        return "missing requantization constants"
    n = len(op.requant.multiplier)
    if n not in (1, y.shape[3]):
        return f"{n} requantization channels for {y.shape[3]} output channels"
    if a.explicit_padding is None and a.padding in ("SAME", "VALID"):
        for i, (s, d) in enumerate(((a.stride_h, a.dilation_h), (a.stride_w, a.dilation_w))):
            k = w.shape[1 + i]
            want = conv_output_size(x.shape[1 + i], k, s, d, a.padding)
            if want != y.shape[1 + i]:
                return f"output {'HW'[i]} {y.shape[1 + i]} does not match {a.padding} padding (expected {want})"
    elif a.explicit_padding is None:
        return f"unknown padding {a.padding}"
    else:
        pads = ((a.explicit_padding[0], a.explicit_padding[1]), (a.explicit_padding[2], a.explicit_padding[3]))
        for i, (s, d) in enumerate(((a.stride_h, a.dilation_h), (a.stride_w, a.dilation_w))):
            eff = (w.shape[1 + i] - 1) * d + 1
            if min(pads[i]) < 0 or (y.shape[1 + i] - 1) * s + eff > x.shape[1 + i] + sum(pads[i]):
                return f"explicit padding {a.explicit_padding} does not fit output {'HW'[i]} {y.shape[1 + i]}"
    return None


def _conv_reject(g, op, core):
    return _common_reject(g, op) or _group_reason(g, op)


def _group_reason(g, op):
    """CONV_2D's filter count and (grouped) depth against its input and output; None when they agree."""
    x, w, y = g.t(op.inputs[0]), g.t(op.inputs[1]), g.t(op.outputs[0])
    if w.shape[0] != y.shape[3]:
        return f"weights have {w.shape[0]} filters for {y.shape[3]} output channels"
    if w.shape[3] < 1 or x.shape[3] % w.shape[3]:
        return f"input depth {x.shape[3]} is not a multiple of the filter depth {w.shape[3]}"
    groups = x.shape[3] // w.shape[3]
    if y.shape[3] % groups:
        return f"{y.shape[3]} output channels do not split into {groups} groups"
    return None


def _dw_reject(g, op, core):
    why = _common_reject(g, op)
    if why:
        return why
    x, w, y = g.t(op.inputs[0]), g.t(op.inputs[1]), g.t(op.outputs[0])
    if w.shape[0] != 1 or w.shape[3] != y.shape[3]:
        return f"weights shape {w.shape} does not match {y.shape[3]} output channels (want 1xHxWx{y.shape[3]})"
    if y.shape[3] % x.shape[3]:
        return f"output depth {y.shape[3]} is not a multiple of the input depth {x.shape[3]}"
    if op.attrs.depth_multiplier != y.shape[3] // x.shape[3]:  # TFLM loops over the attribute, not the shapes
        return (f"depth_multiplier {op.attrs.depth_multiplier} disagrees with the shapes "
                f"({x.shape[3]} -> {y.shape[3]} channels)")
    return None


def _layer_args(ctx):
    """The parts shared by both kernels: pointers, per-channel constants and the common struct fields."""
    op = ctx.op
    x, w, y = ctx.inp(0), ctx.inp(1), ctx.out()
    folded = op.folded_bias is not None
    bias_tid = op.folded_bias if folded else op.input(2)
    bias = ctx.ptr(bias_tid) if bias_tid is not None else "(const int32_t *)0"
    rq = op.requant
    mult = ctx.weights(np.asarray(rq.multiplier, dtype=np.int32))
    shift = ctx.weights(np.asarray(rq.shift, dtype=np.int32))
    kh, kw = w.shape[1], w.shape[2]
    top, _, left, _ = explicit_padding(op.attrs, x.shape[1:3], y.shape[1:3], (kh, kw))
    return folded, bias, mult, shift, (x, w, y, kh, kw, top, left)


def _tail(ctx, x, y, top, left):
    a = ctx.op.attrs
    lo, hi = ctx.op.clamp if ctx.op.clamp is not None else (-128, 127)
    return (f"{a.stride_h}, {a.stride_w}, {a.dilation_h}, {a.dilation_w}, {top}, {left}, "
            f"{x.quant.zero_point[0]}, {y.quant.zero_point[0]}, {lo}, {hi}, "
            f"{int(len(ctx.op.requant.multiplier) > 1)}")


def _conv_emit(ctx):
    folded, bias, mult, shift, (x, w, y, kh, kw, top, left) = _layer_args(ctx)
    fn = ctx.fn(FOLDED=folded)
    groups = x.shape[3] // w.shape[3]
    p = ctx.sym("p")
    ctx.static(f"static const {fn}_params {p} = {{ {x.shape[0]}, {x.shape[1]}, {x.shape[2]}, {x.shape[3]}, "
               f"{y.shape[1]}, {y.shape[2]}, {y.shape[3]}, {kh}, {kw}, {w.shape[3]}, {y.shape[3] // groups}, "
               f"{_tail(ctx, x, y, top, left)} }};")
    ctx.call(f"{fn}(&{p}, {ctx.ptr(x.id)}, {ctx.ptr(w.id)}, {bias}, {mult}, {shift}, {ctx.ptr(y.id)});")


def _dw_emit(ctx):
    folded, bias, mult, shift, (x, w, y, kh, kw, top, left) = _layer_args(ctx)
    fn = ctx.fn(FOLDED=folded)
    p = ctx.sym("p")
    ctx.static(f"static const {fn}_params {p} = {{ {x.shape[0]}, {x.shape[1]}, {x.shape[2]}, {x.shape[3]}, "
               f"{y.shape[1]}, {y.shape[2]}, {y.shape[3]}, {kh}, {kw}, {y.shape[3] // x.shape[3]}, "
               f"{_tail(ctx, x, y, top, left)} }};")
    ctx.call(f"{fn}(&{p}, {ctx.ptr(x.id)}, {ctx.ptr(w.id)}, {bias}, {mult}, {shift}, {ctx.ptr(y.id)});")


CONV_GENERIC = KernelEntry(name="conv2d_s8", ops=("CONV_2D",), template="conv2d_s8.c.in",
                           emit=_conv_emit, reject=_conv_reject)
DEPTHWISE_GENERIC = KernelEntry(name="depthwise_conv2d_s8", ops=("DEPTHWISE_CONV_2D",),
                                template="depthwise_conv2d_s8.c.in", emit=_dw_emit, reject=_dw_reject)

ENTRIES = (CONV_GENERIC, DEPTHWISE_GENERIC)
