"""int16x8 CONV_2D and DEPTHWISE_CONV_2D (16-bit activations, 8-bit weights; TFLite Micro reference semantics).

How it works
1. `conv2d_s16` / `depthwise_conv2d_s16` are separate registry entries; the int8 entries (conv.py) refuse int16
   tensors, so int16 layers land here and int8 layers never do.
2. TFLite Micro's 16x8 convolutions use no zero points at all: it accepts a model with nonzero int16 zero
   points and silently computes as if they were 0 (checked against the oracle). Such a model does not mean what
   its quantization says, so nonzero input, output or weight zero points are refused with a one-line reason.
3. CONV_2D: an int64 bias (TFLite's usual 16x8 form) or no bias gives an int64 sum and the 64-bit
   MultiplyByQuantizedMultiplier (multiplier rounded to 16 bits); an int32 bias gives TFLM's int32 sum and the
   32-bit one (spz_requant). An int32 sum that could overflow for some input (32768 * sum |w| + |bias| per
   channel; TFLM's int32 arithmetic would be undefined there) is refused, as is a 64-bit shift outside -31..7
   or a sum that could reach 2^47 (the 64-bit function's domain).
4. DEPTHWISE_CONV_2D: TFLite Micro reads the bias as int64 whatever its type (an int32 bias gives garbage in the
   oracle), so only an int64 bias or none is accepted; any depth multiplier.
5. Requantization constants are the per-channel multipliers `passes.precompute_requant` computes (the same
   double-precision ratios TFLM forms); the clamp comes from `fuse_activations` (int16 range when no activation).
"""
from __future__ import annotations

from typing import Optional

import numpy as np

from ..ops import conv_output_size, explicit_padding
from ..registry import KernelEntry
from .conv import _group_reason


def _common_reject(g, op) -> Optional[str]:
    x, w, y = g.t(op.inputs[0]), g.t(op.inputs[1]), g.t(op.outputs[0])
    if (x.dtype, y.dtype) != ("int16", "int16"):
        return f"needs int16 input/output, got {x.dtype}/{y.dtype} (TFLite Micro's 16x8 needs both int16)"
    if w.dtype != "int8":
        return f"int16x8 needs int8 weights, got {w.dtype}"
    if len(x.shape) != 4 or len(w.shape) != 4 or len(y.shape) != 4:
        return "needs 4-D NHWC input, weights and output"
    if not w.is_const:
        return "needs constant weights"
    if x.quant is None or y.quant is None or w.quant is None:
        return "needs quantized input, weights and output"
    if x.quant.per_channel or y.quant.per_channel:
        return "needs per-tensor input and output quantization"
    if any(w.quant.zero_point):
        return "int16x8 needs symmetric int8 weights (zero point 0)"
    if x.quant.zero_point[0] or y.quant.zero_point[0]:
        return (f"int16x8 needs zero points 0 on input and output, got {x.quant.zero_point[0]}/"
                f"{y.quant.zero_point[0]} (TFLite Micro's 16x8 convolution ignores them and would compute "
                "something else than the model means)")
    if x.shape[0] != y.shape[0]:
        return f"batch mismatch: input {x.shape[0]}, output {y.shape[0]}"
    a = op.attrs
    if min(a.stride_h, a.stride_w, a.dilation_h, a.dilation_w) < 1:
        return "strides and dilations must be >= 1"
    if op.requant is None:
        return "missing requantization constants"
    n = len(op.requant.multiplier)
    if n not in (1, y.shape[3]):
        return f"{n} requantization channels for {y.shape[3]} output channels"
    if a.explicit_padding is None:
        if a.padding not in ("SAME", "VALID"):
            return f"unknown padding {a.padding}"
        for i, (s, d) in enumerate(((a.stride_h, a.dilation_h), (a.stride_w, a.dilation_w))):
            want = conv_output_size(x.shape[1 + i], w.shape[1 + i], s, d, a.padding)
            if want != y.shape[1 + i]:
                return f"output {'HW'[i]} {y.shape[1 + i]} does not match {a.padding} padding (expected {want})"
    else:
        pads = ((a.explicit_padding[0], a.explicit_padding[1]), (a.explicit_padding[2], a.explicit_padding[3]))
        for i, (s, d) in enumerate(((a.stride_h, a.dilation_h), (a.stride_w, a.dilation_w))):
            eff = (w.shape[1 + i] - 1) * d + 1
            if min(pads[i]) < 0 or (y.shape[1 + i] - 1) * s + eff > x.shape[1 + i] + sum(pads[i]):
                return f"explicit padding {a.explicit_padding} does not fit output {'HW'[i]} {y.shape[1 + i]}"
    return None


def _bias_reason(g, op, allowed) -> Optional[str]:
    b = op.input(2)
    if b is None:
        return None
    bt, y = g.t(b), g.t(op.outputs[0])
    if not bt.is_const or bt.dtype not in allowed:
        got = bt.dtype if bt.is_const else "a variable"
        return f"int16x8 needs a constant {' or '.join(allowed)} bias, got {got}"
    if bt.size != y.shape[3]:
        return f"bias has {bt.size} values for {y.shape[3]} output channels"
    return None


def _uses_64bit_rescale(g, op) -> bool:
    b = op.input(2)
    return b is None or g.t(b).dtype == "int64"


def _shift_reason(op) -> Optional[str]:
    if any(not -31 <= s <= 7 for s in op.requant.shift):
        return ("the output multiplier's shift is outside -31..7 (TFLite's 64-bit MultiplyByQuantizedMultiplier "
                "takes no other; input * weight scale / output scale too far from 1)")
    return None


def _sum_bound(g, op) -> np.ndarray:
    """Per output channel, the largest |sum + bias| any int16 input can give: 32768 * sum |w| + |bias|."""
    w = g.t(op.inputs[1])
    wd = np.abs(w.data.astype(np.int64))
    wabs = wd.reshape(-1, wd.shape[3]).sum(axis=0) if op.kind == "DEPTHWISE_CONV_2D" else \
        wd.reshape(w.shape[0], -1).sum(axis=1)
    b = op.input(2)
    babs = np.abs(g.t(b).data.astype(np.int64)).reshape(-1) if b is not None else 0
    return 32768 * wabs + babs


def _int64_reason(g, op) -> Optional[str]:
    why = _shift_reason(op)
    if why:
        return why
    if int(_sum_bound(g, op).max(initial=0)) >= 1 << 47:
        return ("a bias so large that the sum could reach 2^47 (TFLite's 64-bit MultiplyByQuantizedMultiplier "
                "takes no larger value)")
    return None


def _int32_sum_reason(g, op) -> Optional[str]:
    """An int32-bias CONV_2D: TFLM sums in int32; refuse layers whose sum (or its left shift) could overflow."""
    bound = _sum_bound(g, op)
    shifts = np.asarray(op.requant.shift, dtype=np.int64)
    left = np.maximum(shifts, 0) if len(shifts) > 1 else np.full(len(bound), max(int(shifts[0]), 0))
    if int((bound << left).max(initial=0)) >= 1 << 31:
        return ("int32 bias with a sum that could overflow int32 (32768 * sum |w| + |bias| per channel, times "
                "the multiplier's left shift; TFLite's int32 arithmetic would be undefined): use an int64 bias")
    return None


def _conv_reject(g, op, core) -> Optional[str]:
    why = _common_reject(g, op) or _group_reason(g, op) or _bias_reason(g, op, ("int64", "int32"))
    if why:
        return why
    return _int64_reason(g, op) if _uses_64bit_rescale(g, op) else _int32_sum_reason(g, op)


def _dw_reject(g, op, core) -> Optional[str]:
    why = _common_reject(g, op)
    if why:
        return why
    x, w, y = g.t(op.inputs[0]), g.t(op.inputs[1]), g.t(op.outputs[0])
    if w.shape[0] != 1 or w.shape[3] != y.shape[3]:
        return f"weights shape {w.shape} does not match {y.shape[3]} output channels (want 1xHxWx{y.shape[3]})"
    if y.shape[3] % x.shape[3]:
        return f"output depth {y.shape[3]} is not a multiple of the input depth {x.shape[3]}"
    if op.attrs.depth_multiplier != y.shape[3] // x.shape[3]:
        return (f"depth_multiplier {op.attrs.depth_multiplier} disagrees with the shapes "
                f"({x.shape[3]} -> {y.shape[3]} channels)")
    b = op.input(2)
    if b is not None and g.t(b).dtype == "int32":
        return ("int16x8 DEPTHWISE_CONV_2D needs an int64 bias (or none): TFLite Micro reads the bias as int64 "
                "whatever its type, so an int32 bias has no reference result")
    why = _bias_reason(g, op, ("int64",))
    if why:
        return why
    return _int64_reason(g, op)


def _args(ctx):
    op = ctx.op
    x, w, y = ctx.inp(0), ctx.inp(1), ctx.out()
    rq = op.requant
    mult = ctx.weights(np.asarray(rq.multiplier, dtype=np.int32))
    shift = ctx.weights(np.asarray(rq.shift, dtype=np.int32))
    kh, kw = w.shape[1], w.shape[2]
    top, _, left, _ = explicit_padding(op.attrs, x.shape[1:3], y.shape[1:3], (kh, kw))
    a = op.attrs
    lo, hi = op.clamp if op.clamp is not None else (-32768, 32767)
    tail = (f"{a.stride_h}, {a.stride_w}, {a.dilation_h}, {a.dilation_w}, {top}, {left}, {lo}, {hi}, "
            f"{int(len(rq.multiplier) > 1)}")
    return x, w, y, kh, kw, mult, shift, tail


def _conv_emit(ctx):
    op = ctx.op
    x, w, y, kh, kw, mult, shift, tail = _args(ctx)
    b = op.input(2)
    bias32 = b is not None and ctx.g.t(b).dtype == "int32"
    fn = ctx.fn(BIAS32=bias32)
    bias = ctx.ptr(b) if b is not None else ("(const int32_t *)0" if bias32 else "(const int64_t *)0")
    groups = x.shape[3] // w.shape[3]
    p = ctx.sym("p")
    ctx.static(f"static const {fn}_params {p} = {{ {x.shape[0]}, {x.shape[1]}, {x.shape[2]}, {x.shape[3]}, "
               f"{y.shape[1]}, {y.shape[2]}, {y.shape[3]}, {kh}, {kw}, {w.shape[3]}, {y.shape[3] // groups}, "
               f"{tail} }};")
    ctx.call(f"{fn}(&{p}, {ctx.ptr(x.id)}, {ctx.ptr(w.id)}, {bias}, {mult}, {shift}, {ctx.ptr(y.id)});")


def _dw_emit(ctx):
    op = ctx.op
    x, w, y, kh, kw, mult, shift, tail = _args(ctx)
    fn = ctx.fn()
    b = op.input(2)
    bias = ctx.ptr(b) if b is not None else "(const int64_t *)0"
    p = ctx.sym("p")
    ctx.static(f"static const {fn}_params {p} = {{ {x.shape[0]}, {x.shape[1]}, {x.shape[2]}, {x.shape[3]}, "
               f"{y.shape[1]}, {y.shape[2]}, {y.shape[3]}, {kh}, {kw}, {y.shape[3] // x.shape[3]}, {tail} }};")
    ctx.call(f"{fn}(&{p}, {ctx.ptr(x.id)}, {ctx.ptr(w.id)}, {bias}, {mult}, {shift}, {ctx.ptr(y.id)});")


CONV_S16 = KernelEntry(name="conv2d_s16", ops=("CONV_2D",), template="conv2d_s16.c.in",
                       emit=_conv_emit, reject=_conv_reject)
DEPTHWISE_S16 = KernelEntry(name="depthwise_conv2d_s16", ops=("DEPTHWISE_CONV_2D",),
                            template="depthwise_conv2d_s16.c.in", emit=_dw_emit, reject=_dw_reject)

ENTRIES = (CONV_S16, DEPTHWISE_S16)
