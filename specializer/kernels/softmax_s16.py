"""int16 SOFTMAX (the int16x8 mode), bit-exact with TFLite Micro's int16 algorithm.

How it works
1. TFLM's int16 prepare (checked against the oracle): zero points 0 and an output scale within 0.1% of 1/32768
   (float32 compare); the input multiplier is QuantizeMultiplier(s_in * beta /
   (10 / 65535)) in double, and two 513-entry int16 tables: exp over [-10, 0] and 1 / (1 + x) over [0, 1].
2. TFLM builds the tables at prepare time with its float32 `gen_lut` (512 samples, each corrected by half the
   rounded error of the interpolated midpoint, plus a last entry). `softmax_s16_tables` repeats that in float32
   (numpy) with exp rounded from double; the tests check the result equals the one libm's expf gives (no entry
   sits on a rounding edge) and the kernel against the oracle. They are emitted as const arrays in the kernel.
3. Per row the C kernel (`softmax_s16.c.in`) follows TFLM's SoftmaxInt16 (see the template).
4. Refused with a one-line reason: nonzero zero points, other output scales (TFLM's prepare fails), int8 output,
   a multiplier whose left shift could overflow TFLM's int32 arithmetic (shift above 15: s_in * beta >= 2^15 *
   10 / 65535), rows longer than 65536 (the int32 sum of exps could overflow).
"""
from __future__ import annotations

import functools
import math
from typing import Optional

import numpy as np

from ..quant import quantize_multiplier
from ..registry import KernelEntry

_F = np.float32


def _roundf(v) -> np.float32:
    """roundf: half away from zero, of a float32."""
    v = float(v)
    return _F(math.copysign(math.floor(abs(v) + 0.5), v))


def gen_lut(func, lo: float, hi: float) -> tuple[int, ...]:
    """TFLM's int16 -> int16 LUT construction in float32 (513 entries, output range [-1, 1] -> int16)."""
    lo, hi = _F(lo), _F(hi)
    step = _F((hi - lo) / _F(512))
    half = _F(step / _F(2))
    inv = _F(65536.0 / 2.0)
    out = []
    for i in range(512):
        x0 = _F(lo + _F(_F(i) * step))
        v, vm, vn = func(x0), func(_F(x0 + half)), func(_F(lo + _F(_F(i + 1) * step)))
        sample = _roundf(_F(v * inv))
        interp = _roundf(_F(_F(_F(vn * inv) + sample) / _F(2)))
        err = _F(interp - _roundf(_F(vm * inv)))
        out.append(int(min(max(_F(sample - _roundf(_F(err / _F(2)))), _F(-32768)), _F(32767))))
    out.append(int(min(max(_roundf(_F(func(hi) * inv)), _F(-32768)), _F(32767))))
    return tuple(out)


def _expf(x) -> np.float32:
    return _F(math.exp(float(x)))


def _recip(x) -> np.float32:
    return _F(_F(1.0) / _F(_F(1.0) + _F(x)))


@functools.lru_cache(maxsize=None)
def softmax_s16_tables(expf=None) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """(exp table over [-10, 0], 1 / (1 + x) table over [0, 1]); `expf` replaces the float32 exp (tests)."""
    return gen_lut(expf or _expf, -10.0, 0.0), gen_lut(_recip, 0.0, 1.0)


def softmax_s16_multiplier(scale: float, beta: float) -> tuple[int, int]:
    return quantize_multiplier(float(_F(scale)) * float(_F(beta)) / (10.0 / 65535.0))


def _reject(g, op, core) -> Optional[str]:
    x, y = g.t(op.inputs[0]), g.t(op.outputs[0])
    if (x.dtype, y.dtype) != ("int16", "int16"):
        return f"needs int16 input/output, got {x.dtype}/{y.dtype}"
    if x.quant is None or y.quant is None or x.quant.per_channel or y.quant.per_channel:
        return "needs per-tensor quantized input and output"
    if tuple(x.shape) != tuple(y.shape) or not x.shape:
        return f"input shape {x.shape} and output shape {y.shape} differ"
    if y.quant.zp != 0 or abs(_F(y.quant.s) - _F(1.0 / 32768)) > _F(_F(0.001) * _F(1.0 / 32768)):
        return (f"int16 SOFTMAX needs the output scale 1/32768 and zero point 0, got {y.quant.s:g}/{y.quant.zp} "
                "(TFLite Micro's prepare fails)")
    if x.quant.zp != 0:
        return f"int16 SOFTMAX needs input zero point 0, got {x.quant.zp} (TFLite Micro's prepare fails)"
    if x.shape[-1] > 65536:
        return f"rows of {x.shape[-1]} values: TFLite Micro's int32 sum of exps could overflow"
    _, shift = softmax_s16_multiplier(x.quant.s, op.attrs.beta)
    if shift > 15:
        return ("input scale * beta too large (>= 2^15 * 10 / 65535): TFLite Micro's int32 left shift of the "
                "differences could overflow")
    return None


def _emit(ctx):
    op = ctx.op
    x, y = ctx.inp(0), ctx.out()
    exp_lut, recip_lut = softmax_s16_tables()
    fn = ctx.fn(EXP_LUT=", ".join(map(str, exp_lut)), RECIP_LUT=", ".join(map(str, recip_lut)))
    mult, shift = softmax_s16_multiplier(x.quant.s, op.attrs.beta)
    depth = x.shape[-1]
    p = ctx.sym("p")
    ctx.static(f"static const {fn}_params {p} = {{ {x.size // depth}, {depth}, {mult}, {shift} }};")
    ctx.call(f"{fn}(&{p}, {ctx.ptr(x.id)}, {ctx.ptr(y.id)});")


SOFTMAX_S16 = KernelEntry(name="softmax_s16", ops=("SOFTMAX",), template="softmax_s16.c.in", emit=_emit,
                          reject=_reject)

ENTRIES = (SOFTMAX_S16,)
