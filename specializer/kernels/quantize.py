"""QUANTIZE and DEQUANTIZE kernels (TFLite Micro reference semantics).

How it works
1. One template (`quantize_s8.c.in`, template argument MODE) covers the three conversions TFLM runs for int8
   models: float32 -> int8 (AffineQuantize: round half away from zero of the float32 quotient x / scale, plus
   the zero point, saturated), int8 -> int8 (Requantize: MultiplyByQuantizedMultiplier with s_in / s_out from
   `passes.precompute_requant`, both zero points, saturated) and int8 -> float32 (Dequantize:
   scale * (q - zp) in float32).
2. A `static const` parameter struct per layer holds size, zero points, multiplier and the float32 scale.
3. int8 -> int8 works in place (`inplace=(0,)`: element i is read before it is written); the float
   conversions change the element size and never share a buffer. Other type pairs (int16, uint8, int32,
   per-channel) are rejected with a one-line reason.
"""
from __future__ import annotations

from typing import Optional

from ..emit import c_float
from ..registry import KernelEntry


def _per_tensor(t) -> bool:
    return t.quant is not None and not t.quant.per_channel


def _mode(g, op) -> tuple[Optional[str], Optional[str]]:
    x, y = g.t(op.inputs[0]), g.t(op.outputs[0])
    pair = (x.dtype, y.dtype)
    if op.kind == "QUANTIZE":
        if pair == ("float32", "int8"):
            mode = "f32_s8"
        elif pair == ("int8", "int8"):
            mode = "s8_s8"
        else:
            return None, f"QUANTIZE {x.dtype} -> {y.dtype} is not supported (float32 or int8 -> int8 only)"
    else:
        if pair != ("int8", "float32"):
            return None, f"DEQUANTIZE {x.dtype} -> {y.dtype} is not supported (int8 -> float32 only)"
        mode = "s8_f32"
    q_in_needed = mode != "f32_s8"
    q_out_needed = mode != "s8_f32"
    if (q_in_needed and not _per_tensor(x)) or (q_out_needed and not _per_tensor(y)):
        return None, "needs per-tensor quantization on the int8 side"
    if x.size != y.size:
        return None, f"input has {x.size} elements, output {y.size}"
    if mode == "s8_s8" and op.requant is None:
        return None, "missing requantization constants"
    return mode, None


def _reject(g, op, core) -> Optional[str]:
    return _mode(g, op)[1]


def _reject_inplace(g, op, core) -> Optional[str]:
    mode, why = _mode(g, op)
    return why if why else (None if mode == "s8_s8" else "not an int8 -> int8 requantization")


def _emit(ctx):
    op = ctx.op
    x, y = ctx.inp(0), ctx.out()
    mode, _ = _mode(ctx.g, op)
    fn = ctx.fn(MODE=mode)
    in_zp = x.quant.zp if mode != "f32_s8" else 0
    out_zp = y.quant.zp if mode != "s8_f32" else 0
    m, s = (op.requant.multiplier[0], op.requant.shift[0]) if mode == "s8_s8" else (0, 0)
    scale = y.quant.s if mode == "f32_s8" else (x.quant.s if mode == "s8_f32" else 1.0)
    p = ctx.sym("p")
    ctx.static(f"static const {fn}_params {p} = {{ {x.size}, {in_zp}, {out_zp}, {m}, {s}, {c_float(scale)} }};")
    ctx.call(f"{fn}(&{p}, {ctx.ptr(x.id)}, {ctx.ptr(y.id)});")


# int8 -> int8 first (in place allowed), then the float conversions.
REQUANTIZE = KernelEntry(name="requantize_s8", ops=("QUANTIZE",), template="quantize_s8.c.in", emit=_emit,
                         reject=_reject_inplace, inplace=(0,), priority=1)
QUANTIZE = KernelEntry(name="quantize_s8", ops=("QUANTIZE",), template="quantize_s8.c.in", emit=_emit,
                       reject=_reject)
DEQUANTIZE = KernelEntry(name="dequantize_s8", ops=("DEQUANTIZE",), template="quantize_s8.c.in", emit=_emit,
                         reject=_reject)

ENTRIES = (REQUANTIZE, QUANTIZE, DEQUANTIZE)
