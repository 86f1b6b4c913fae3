"""RESIZE_BILINEAR (int8, NHWC, constant size, align_corners / half_pixel_centers): the generic kernel, TFLite
Micro reference semantics (ResizeBilinearInteger: no floating point).

How it works
1. TFLM scales every output coordinate by an integer Q10 ratio (`scale_10` = round(1024 in / out), or
   (in - 1) / (out - 1) with align_corners), minus half a pixel with half_pixel_centers, and takes the lower source
   index (C division, at least 0), the upper one (rounded up, at most in - 1) and the Q10 fraction between them.
   `axis_table` does that integer arithmetic here, offline, for every output row and column; the kernel reads
   (lower offset, upper offset, fraction) triplets from two flash tables (`resize_bilinear_s8.c.in`).
2. Each output is the four neighbours weighted by (1024 - fy or fy) x (1024 - fx or fx) (a Q20 sum), rounded
   half away from zero and divided by 2^20 as TFLM's double-rounding build does (checked against the oracle).
   TFLM sums in int64; the sum fits int32 here (|fraction| <= 1023, |weights| <= 2^22 / 128 per value), which
   `_reject` checks for every layer.
3. TFLM interpolates the raw int8 values and ignores the output quantization; so does the kernel.
4. Refused with a reason: non-4-D input, a size that is not a constant pair of int32, an output shape that is
   not (batch, size, depth), both flags (TFLM refuses them), and some large upscales (without flags from 55
   output rows or columns, e.g. 1 -> 55 or 39 -> 306; with either flag only around a thousand and more) where
   TFLM's rounded-up Q10 scale carries the lower source index past the input's last row or column (TFLM reads
   out of bounds there). `axis_table` finds them exactly, layer by layer.
"""
from __future__ import annotations

from typing import Optional

import numpy as np

from ..registry import KernelEntry

ONE = 1 << 10  # Q10


def _cdiv(a: int, b: int) -> int:
    """C integer division (truncates toward zero)."""
    q = abs(a) // abs(b)
    return q if (a >= 0) == (b > 0) else -q


def axis_scale(in_size: int, out_size: int, align_corners: bool) -> int:
    """TFLM's Q10 scale of one axis."""
    if align_corners and out_size > 1:
        return _cdiv(ONE * (in_size - 1) + (out_size - 1) // 2, out_size - 1)
    return _cdiv(ONE * in_size + out_size // 2, out_size)


def axis_table(in_size: int, out_size: int, align_corners: bool, half_pixel: bool) -> list[tuple[int, int, int]]:
    """(lower index, upper index, Q10 fraction) of every output coordinate, TFLM's
    ComputeInterpolationValuesInteger."""
    s = axis_scale(in_size, out_size, align_corners)
    out = []
    for v in range(out_size):
        scaled = v * s + _cdiv(s, 2) - (1 << 9) if half_pixel else v * s
        lo = max(_cdiv(scaled, ONE), 0)
        hi = min(_cdiv(scaled + ONE - 1, ONE), in_size - 1)
        out.append((lo, hi, scaled - ONE * lo))
    return out


def _plan(g, op):
    """(row table, column table) or a reason (str)."""
    x, y = g.t(op.inputs[0]), g.t(op.outputs[0])
    for t in (x, y):
        if t.dtype != "int8":
            return f"needs int8 input and output, got {x.dtype}/{y.dtype}"
    if len(x.shape) != 4:
        return f"needs a 4-D NHWC input, got rank {len(x.shape)}"
    st = g.t(op.input(1)) if op.input(1) is not None else None
    if st is None or not st.is_const or st.dtype != "int32" or st.size != 2 or len(st.shape) != 1:
        return "size must be a constant 1-D int32 tensor of 2 values (TFLM: non constant size tensor not supported)"
    oh, ow = (int(v) for v in st.data.reshape(-1))
    if oh <= 0 or ow <= 0:
        return f"size ({oh}, {ow}) must be positive"
    want = (x.shape[0], oh, ow, x.shape[3])
    if tuple(y.shape) != want:
        return f"output shape {list(y.shape)} != {list(want)}"
    ac, hp = bool(op.attrs.align_corners), bool(op.attrs.half_pixel_centers)
    if ac and hp:
        return ("TFLite Micro refuses half_pixel_centers together with align_corners (\"If half_pixel_centers is "
                "True, align_corners must be False.\")")
    rows = axis_table(x.shape[1], oh, ac, hp)
    cols = axis_table(x.shape[2], ow, ac, hp)
    for name, tab, n in (("row", rows, x.shape[1]), ("column", cols, x.shape[2])):
        bad = [i for i, (lo, _, _) in enumerate(tab) if lo > n - 1]
        if bad:
            return (f"upscaling {n} -> {len(tab)}: TFLM's rounded integer scale puts output {name} {bad[0]}'s lower "
                    f"source index at {tab[bad[0]][0]}, outside the input's {n} {name}s (TFLM reads out of bounds)")
    wy = max(abs(ONE - f) + abs(f) for _, _, f in rows)
    wx = max(abs(ONE - f) + abs(f) for _, _, f in cols)
    if 128 * wy * wx + (1 << 19) > (1 << 31) - 1:  # never with TFLM's fractions; guards the int32 sum
        return "interpolation weights too large for the int32 sum"
    return rows, cols


def _reject(g, op, core) -> Optional[str]:
    plan = _plan(g, op)
    return plan if isinstance(plan, str) else None


def _emit(ctx):
    x, y = ctx.inp(0), ctx.out()
    rows, cols = _plan(ctx.g, ctx.op)
    n, ih, iw, c = x.shape
    rtab = np.asarray([(lo * iw * c, hi * iw * c, f) for lo, hi, f in rows], dtype=np.int32)
    ctab = np.asarray([(lo * c, hi * c, f) for lo, hi, f in cols], dtype=np.int32)
    fn = ctx.fn()
    p = ctx.sym("p")
    ctx.static(f"static const {fn}_params {p} = {{ {n}, {y.shape[1]}, {y.shape[2]}, {c}, {ih * iw * c} }};")
    ctx.call(f"{fn}(&{p}, {ctx.ptr(x.id)}, {ctx.weights(rtab)}, {ctx.weights(ctab)}, {ctx.ptr(y.id)});")


RESIZE_BILINEAR = KernelEntry(name="resize_bilinear_s8", ops=("RESIZE_BILINEAR",),
                              template="resize_bilinear_s8.c.in", emit=_emit, reject=_reject)

ENTRIES = (RESIZE_BILINEAR,)
