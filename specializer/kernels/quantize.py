"""QUANTIZE and DEQUANTIZE kernels (TFLite Micro reference semantics).

How it works
1. One template (`quantize_s8.c.in`, template arguments MODE and the element types) covers the conversions
   TFLM runs for int8 and int16x8 models: float32 -> int8/int16 (AffineQuantize: round half away from zero of
   the float32 quotient x / scale, plus the zero point, saturated), int8/int16 -> int8/int16 (Requantize:
   MultiplyByQuantizedMultiplier with s_in / s_out from `passes.precompute_requant`, both zero points,
   saturated to the output type) and int8/int16 -> float32 (Dequantize: scale * (q - zp) in float32).
2. A `static const` parameter struct per layer holds size, zero points, multiplier and the float32 scale.
3. Requantization between equal types works in place (`inplace=(0,)`: element i is read before it is
   written); the other conversions change the element size and never share a buffer. Other type pairs (uint8,
   int32, per-channel) are rejected with a one-line reason.
"""
from __future__ import annotations

from typing import Optional

from ..emit import c_float
from ..registry import KernelEntry


_CT = {"int8": "int8_t", "int16": "int16_t", "float32": "float"}
_RANGE = {"int8": (-128, 127), "int16": (-32768, 32767)}
_INTS = ("int8", "int16")


def _per_tensor(t) -> bool:
    return t.quant is not None and not t.quant.per_channel


def _mode(g, op) -> tuple[Optional[str], Optional[str]]:
    x, y = g.t(op.inputs[0]), g.t(op.outputs[0])
    pair = (x.dtype, y.dtype)
    if op.kind == "QUANTIZE":
        if x.dtype == "float32" and y.dtype in _INTS:
            mode = "f32_q"
        elif x.dtype in _INTS and y.dtype in _INTS:
            mode = "q_q"
        else:
            return None, (f"QUANTIZE {x.dtype} -> {y.dtype} is not supported (float32, int8 or int16 -> int8 or "
                          "int16 only)")
    else:
        if not (x.dtype in _INTS and y.dtype == "float32"):
            return None, f"DEQUANTIZE {x.dtype} -> {y.dtype} is not supported (int8 or int16 -> float32 only)"
        mode = "q_f32"
    del pair
    q_in_needed = mode != "f32_q"
    q_out_needed = mode != "q_f32"
    if (q_in_needed and not _per_tensor(x)) or (q_out_needed and not _per_tensor(y)):
        return None, "needs per-tensor quantization on the integer side"
    if x.size != y.size:
        return None, f"input has {x.size} elements, output {y.size}"
    if mode == "q_q" and op.requant is None:
        return None, "missing requantization constants"
    return mode, None


def _reject(g, op, core) -> Optional[str]:
    return _mode(g, op)[1]


def _reject_inplace(g, op, core) -> Optional[str]:
    mode, why = _mode(g, op)
    if why:
        return why
    same = g.t(op.inputs[0]).dtype == g.t(op.outputs[0]).dtype
    return None if (mode == "q_q" and same) else "not a requantization between equal integer types"


def _emit(ctx):
    op = ctx.op
    x, y = ctx.inp(0), ctx.out()
    mode, _ = _mode(ctx.g, op)
    args = {"MODE": mode, "IN_T": _CT[x.dtype], "OUT_T": _CT[y.dtype]}
    if mode != "q_f32":
        args["QMIN"], args["QMAX"] = _RANGE[y.dtype]
    fn = ctx.fn(**args)
    in_zp = x.quant.zp if mode != "f32_q" else 0
    out_zp = y.quant.zp if mode != "q_f32" else 0
    m, s = (op.requant.multiplier[0], op.requant.shift[0]) if mode == "q_q" else (0, 0)
    scale = y.quant.s if mode == "f32_q" else (x.quant.s if mode == "q_f32" else 1.0)
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
