"""Element-wise int8 kernels: ADD, SUB, MUL, MAXIMUM, MINIMUM, SQUARED_DIFFERENCE (broadcasting), ADD_N and
standalone RELU / RELU6.

How it works
1. The six binary ops share one template (`binary_s8.c.in`, template argument OP): the broadcast of the two
   input shapes is collapsed in Python (`collapse_broadcast`: numpy rules, size-1 output dimensions dropped,
   neighbours with the same broadcast pattern merged) into at most 6 dimensions with per-input element strides
   (0 = broadcast), so the same-shape case is one flat loop and any broadcast TFLM accepts runs too.
2. ADD/SUB follow TFLM's quantized path (inputs shifted left by 20, scaled by s_i / 2 max(s1, s2), summed or
   subtracted, scaled to the output; `passes.precompute_requant.AddSubRequant`), MUL multiplies the offset
   inputs and applies s1 s2 / s_out; their fused activation is `op.clamp` (CLAMPING_OPS). int16x8 ADD/SUB
   (`add_s16`/`sub_s16`, the same template with T = int16_t) follow TFLM's general int16 path: left shift 15,
   any zero points; the int8 entries refuse int16 tensors. int16 MUL (`mul_s16`, T = int16_t) is TFLM's int16
   MUL: zero points 0, the int32 product through the 32-bit multiplier. MAXIMUM/MINIMUM
   compare raw int8 values and ignore quantization, exactly as TFLM's reference kernel. SQUARED_DIFFERENCE
   follows TFLM's int8 path: inputs shifted left by 7 and scaled by s_i / 2 max(s1, s2), the difference squared
   in int32 and scaled by (2 max(s1, s2))^2 / (2^14 s_out) (a multiplier that may exceed 1), no activation.
   TFLM's broadcast misreads rank-8 outputs (checked against the oracle), so those layers are refused.
3. ADD_N (`add_n_s8.c.in`) sums any number of same-shape inputs that share one quantization (TFLM requires
   it) as TFLM does: each input offset, shifted left by 20 and halved (s / 2s), the scaled sum starting from the
   scaled input offset itself (TFLM's accumulator starts at -zp_in, not 0: one extra offset term, reproduced),
   then 2s / (2^20 s_out). Layers whose int32 sum could overflow (more than 15 inputs at the worst zero point)
   are refused.
4. Standalone RELU requantizes (s_in / s_out, then clamps to [zp_out, 127]); RELU6 clamps raw input values to
   [zp_in, quantized 6.0 in the input scale], as TFLM does (it ignores the output quantization). RELUs with
   identical quantization usually disappear in `passes.fuse_activations`. RELU_N1_TO_1 is rejected: TFLM has
   no kernel for it (the interpreter refuses such a model), so there is no reference to be exact with.
5. Every output element is computed after its inputs are read and an input of the output's size is read at
   the output's index, so the output may overwrite either input buffer (`inplace=(0, 1)`, `inplace=(0,)`; ADD_N:
   any of its inputs).
"""
from __future__ import annotations

from typing import Optional

import numpy as np

from ..quant import tflite_round
from ..registry import KernelEntry

MAX_RANK = 6
_BINARY = {"ADD": "ADD", "SUB": "SUB", "MUL": "MUL", "MAXIMUM": "MAX", "MINIMUM": "MIN",
           "SQUARED_DIFFERENCE": "SQDIFF"}


def broadcast_shape(a: tuple[int, ...], b: tuple[int, ...]) -> Optional[tuple[int, ...]]:
    """numpy's broadcast of two shapes, or None when they do not broadcast."""
    r = max(len(a), len(b))
    a = (1,) * (r - len(a)) + tuple(a)
    b = (1,) * (r - len(b)) + tuple(b)
    out = []
    for x, y in zip(a, b):
        if x != y and 1 not in (x, y):
            return None
        out.append(y if x == 1 else x)
    return tuple(out)


def collapse_broadcast(a: tuple[int, ...], b: tuple[int, ...]) -> tuple[list[int], list[int], list[int]]:
    """(dims, strides of a, strides of b), outermost first, at least one dimension; a and b must broadcast."""
    out = broadcast_shape(a, b)
    r = len(out)
    ea = (1,) * (r - len(a)) + tuple(a)
    eb = (1,) * (r - len(b)) + tuple(b)
    # (extent, a broadcast?, b broadcast?) of every non-trivial output dimension, then merge equal patterns
    groups: list[list] = []
    for d in range(r):
        if out[d] == 1:
            continue
        pat = (ea[d] == 1, eb[d] == 1)
        if groups and groups[-1][1] == pat:
            groups[-1][0] *= out[d]
        else:
            groups.append([out[d], pat])
    if not groups:
        groups = [[1, (False, False)]]
    dims = [g[0] for g in groups]

    def strides(which: int) -> list[int]:
        st = [0] * len(groups)
        s = 1
        for i in range(len(groups) - 1, -1, -1):
            if not groups[i][1][which]:
                st[i] = s
                s *= groups[i][0]
        return st

    return dims, strides(0), strides(1)


def _int8_quant_reason(ts) -> Optional[str]:
    for t in ts:
        if t.dtype != "int8":
            return f"needs int8 tensors, got {t.dtype}"
        if t.quant is None or t.quant.per_channel:
            return "needs per-tensor quantized int8 tensors"
    return None


def _shape_reason(a, b, y):
    """Why a binary layer's shapes do not suit the broadcasting kernel (None: they do)."""
    out = broadcast_shape(a.shape, b.shape)
    if out is None:
        return f"input shapes {a.shape} and {b.shape} do not broadcast"
    if tuple(out) != tuple(y.shape):
        return f"output shape {y.shape} is not the broadcast {out} of the inputs"
    if len(collapse_broadcast(a.shape, b.shape)[0]) > MAX_RANK:
        return f"broadcast needs more than {MAX_RANK} collapsed dimensions"
    if y.size == 0:
        return "empty output"
    return None


def _binary_reject(g, op, core) -> Optional[str]:
    if len([i for i in op.inputs if i is not None]) != 2:
        return "needs two inputs"
    a, b, y = g.t(op.inputs[0]), g.t(op.inputs[1]), g.t(op.outputs[0])
    if op.kind in ("MAXIMUM", "MINIMUM"):
        if {a.dtype, b.dtype, y.dtype} != {"int8"}:
            return f"needs int8 tensors, got {a.dtype}/{b.dtype}/{y.dtype}"
    else:
        why = _int8_quant_reason((a, b, y))
        if why:
            return why
    why = _shape_reason(a, b, y)
    if why:
        return why
    if op.kind == "SQUARED_DIFFERENCE":
        if tuple(a.shape) != tuple(b.shape) and len(y.shape) > 7:
            return ("TFLite Micro's broadcast reads the wrong elements for rank-8 outputs (checked against the "
                    "oracle); broadcasts up to rank 7 and same-shape layers run")
        if op.requant is None:
            return "output scale out of TFLM's range ((2 max(s1, s2))^2 / (2^14 s_out) needs a shift above 30)"
        return None
    if op.kind in ("ADD", "SUB", "MUL"):
        if op.requant is None:
            return ("output scale too small for TFLM's ADD/SUB rescaling (multiplier >= 1)"
                    if op.kind != "MUL" else "missing requantization constants")
        if op.clamp is None:
            return "missing output clamp (fused activation not resolved)"
    return None


def _emit_binary(ctx):
    op = ctx.op
    a, b, y = ctx.inp(0), ctx.inp(1), ctx.out()
    fn = ctx.fn(OP=_BINARY[op.kind], T="int16_t" if y.dtype == "int16" else "int8_t")
    dims, s1, s2 = collapse_broadcast(a.shape, b.shape)
    pad = MAX_RANK - len(dims)
    dims, s1, s2 = dims + [1] * pad, s1 + [0] * pad, s2 + [0] * pad
    q = [0] * 12
    if op.kind == "SQUARED_DIFFERENCE":
        rq = op.requant
        q[0:3] = [-a.quant.zp, -b.quant.zp, y.quant.zp]
        q[3:10] = [rq.left_shift, rq.in1_multiplier, rq.in1_shift, rq.in2_multiplier, rq.in2_shift,
                   rq.out_multiplier, rq.out_shift]
        q[10:12] = [-128, 127]
    elif op.kind in ("ADD", "SUB", "MUL"):
        rq = op.requant
        q[0:3] = [-a.quant.zp, -b.quant.zp, y.quant.zp]
        if op.kind == "MUL":
            q[8:10] = [rq.multiplier[0], rq.shift[0]]
        else:
            q[3:10] = [rq.left_shift, rq.in1_multiplier, rq.in1_shift, rq.in2_multiplier, rq.in2_shift,
                       rq.out_multiplier, rq.out_shift]
        q[10:12] = list(op.clamp)  # the int16 range for int16x8 ADD/SUB
    else:
        q[10:12] = [-128, 127]
    p = ctx.sym("p")
    arr = lambda v: "{" + ", ".join(str(int(x)) for x in v) + "}"  # noqa: E731
    ctx.static(f"static const {fn}_params {p} = {{ {len(dims) - pad}, {arr(dims)}, {arr(s1)}, {arr(s2)}, "
               + ", ".join(str(int(v)) for v in q) + " };")
    ctx.call(f"{fn}(&{p}, {ctx.ptr(a.id)}, {ctx.ptr(b.id)}, {ctx.ptr(y.id)});")


def _binary_s16_reject(g, op, core) -> Optional[str]:
    """int16x8 ADD/SUB: int16 inputs and output, per-tensor quantized (any zero points, as TFLM's general
    int16 path); the rest as the int8 entries."""
    if len([i for i in op.inputs if i is not None]) != 2:
        return "needs two inputs"
    ts = (g.t(op.inputs[0]), g.t(op.inputs[1]), g.t(op.outputs[0]))
    if {t.dtype for t in ts} != {"int16"}:
        return f"needs int16 tensors, got {'/'.join(t.dtype for t in ts)}"
    if any(t.quant is None or t.quant.per_channel for t in ts):
        return "needs per-tensor quantized int16 tensors"
    a, b, y = ts
    why = _shape_reason(a, b, y)
    if why:
        return why
    if op.requant is None:
        return "output scale too small for TFLM's ADD/SUB rescaling (multiplier >= 1)"
    if op.clamp is None:
        return "missing output clamp (fused activation not resolved)"
    return None


def _mul_s16_reject(g, op, core) -> Optional[str]:
    """int16x8 MUL (16x16 -> int16): TFLM's prepare insists on zero points 0; the product of two int16 values
    (at most 2^30) goes through the 32-bit MultiplyByQuantizedMultiplier, whose left shift would overflow for a
    multiplier s1 s2 / s_out of 1 or more."""
    if len([i for i in op.inputs if i is not None]) != 2:
        return "needs two inputs"
    ts = (g.t(op.inputs[0]), g.t(op.inputs[1]), g.t(op.outputs[0]))
    if {t.dtype for t in ts} != {"int16"}:
        return f"needs int16 tensors, got {'/'.join(t.dtype for t in ts)}"
    if any(t.quant is None or t.quant.per_channel for t in ts):
        return "needs per-tensor quantized int16 tensors"
    if any(t.quant.zp for t in ts):
        return (f"int16 MUL needs zero points 0, got {'/'.join(str(t.quant.zp) for t in ts)} (TFLite Micro's "
                "prepare refuses others)")
    why = _shape_reason(*ts)
    if why:
        return why
    if op.requant is None:
        return "missing requantization constants"
    if op.requant.shift[0] > 0:
        return ("input scale product / output scale is 1 or more: TFLite's int32 left shift of the int16 product "
                "could overflow")
    if op.clamp is None:
        return "missing output clamp (fused activation not resolved)"
    return None


def _entry(name: str, kind: str) -> KernelEntry:
    return KernelEntry(name=name, ops=(kind,), template="binary_s8.c.in", emit=_emit_binary,
                       reject=_binary_reject, inplace=(0, 1))


ADD = _entry("add_s8", "ADD")
SUB = _entry("sub_s8", "SUB")
MUL = _entry("mul_s8", "MUL")
MAXIMUM = _entry("maximum_s8", "MAXIMUM")
MINIMUM = _entry("minimum_s8", "MINIMUM")
SQUARED_DIFFERENCE = _entry("squared_difference_s8", "SQUARED_DIFFERENCE")
ADD_S16 = KernelEntry(name="add_s16", ops=("ADD",), template="binary_s8.c.in", emit=_emit_binary,
                      reject=_binary_s16_reject, inplace=(0, 1))
SUB_S16 = KernelEntry(name="sub_s16", ops=("SUB",), template="binary_s8.c.in", emit=_emit_binary,
                      reject=_binary_s16_reject, inplace=(0, 1))

MUL_S16 = KernelEntry(name="mul_s16", ops=("MUL",), template="binary_s8.c.in", emit=_emit_binary,
                      reject=_mul_s16_reject, inplace=(0, 1))


# ---- ADD_N ------------------------------------------------------------------------------------------------------
def _add_n_bound(zp: int, n: int) -> int:
    """The largest |int32 sum| of TFLM's ADD_N: the start term (-zp) and n inputs, each offset scaled by 2^19
    (the input multiplier is exactly 1/2 since every input shares one scale)."""
    return (abs(zp) + n * max(127 - zp, zp + 128)) << 19


def _add_n_reject(g, op, core) -> Optional[str]:
    from ..passes.precompute_requant import add_n_same_quant

    ins = [i for i in op.inputs if i is not None]
    if len(ins) < 2 or len(ins) != len(op.inputs):
        return "needs two or more inputs"
    ts = [g.t(i) for i in ins]
    y = g.t(op.outputs[0])
    why = _int8_quant_reason(ts + [y])
    if why:
        return why
    if any(tuple(t.shape) != tuple(y.shape) for t in ts):
        return f"needs inputs of the output's shape {list(y.shape)} (ADD_N does not broadcast)"
    if not add_n_same_quant(g, op):
        return ("TFLite Micro's int8 ADD_N needs every input to share the first input's scale and zero point "
                "(its prepare fails otherwise)")
    if y.size == 0:
        return "empty output"
    if op.requant is None:
        return "output scale too small for TFLM's ADD_N rescaling (multiplier >= 1)"
    if _add_n_bound(ts[0].quant.zp, len(ts)) > (1 << 31) - 1:
        return (f"{len(ts)} inputs with zero point {ts[0].quant.zp}: TFLM's int32 sum could overflow "
                "(split the sum into several ADD_N)")
    return None


def _emit_add_n(ctx):
    op = ctx.op
    ins = [ctx.t(i) for i in op.inputs]
    y = ctx.out()
    rq = op.requant
    fn = ctx.fn()
    p = ctx.sym("p")
    ctx.static(f"static const {fn}_params {p} = {{ {y.size}, {len(ins)}, {-ins[0].quant.zp}, {y.quant.zp}, "
               f"{rq.left_shift}, {rq.in_multiplier}, {rq.in_shift}, {rq.out_multiplier}, {rq.out_shift} }};")
    ptrs = ", ".join(ctx.ptr(t.id) for t in ins)
    ctx.call(f"{{\n    const int8_t *const in_[{len(ins)}] = {{ {ptrs} }};\n"
             f"    {fn}(&{p}, in_, {ctx.ptr(y.id)});\n}}")


ADD_N = KernelEntry(name="add_n_s8", ops=("ADD_N",), template="add_n_s8.c.in", emit=_emit_add_n,
                    reject=_add_n_reject, inplace=lambda g, op: tuple(range(len(op.inputs))))


# ---- standalone RELU / RELU6 ---------------------------------------------------------------------------------
def relu6_upper(scale: float, zero_point: int) -> int:
    """TFLM FloatToQuantizedType<int8_t>(6.0f, scale, zp): round(6.0f / scale) in float32, + zp, saturated."""
    q = float(np.float32(6.0) / np.float32(scale))
    q = max(min(q, 1e6), -1e6)
    return int(max(-128, min(127, int(tflite_round(q)) + zero_point)))


def _relu_reject(g, op, core) -> Optional[str]:
    if op.kind == "RELU_N1_TO_1":
        return "TFLite Micro has no RELU_N1_TO_1 kernel (only its fused form is supported)"
    x, y = g.t(op.inputs[0]), g.t(op.outputs[0])
    why = _int8_quant_reason((x, y))
    if why:
        return why
    if x.size != y.size:
        return f"input has {x.size} elements, output {y.size}"
    if op.kind == "RELU" and op.requant is None:
        return "missing requantization constants"
    return None


def _emit_relu(ctx):
    op = ctx.op
    x, y = ctx.inp(0), ctx.out()
    if op.kind == "RELU":
        fn = ctx.fn(REQUANT=True)
        m, s = op.requant.multiplier[0], op.requant.shift[0]
        lo, hi = max(-128, y.quant.zp), 127  # roundf(0.0f / scale) is 0
    else:
        fn = ctx.fn(REQUANT=False)
        m, s = 0, 0
        lo, hi = x.quant.zp, relu6_upper(x.quant.s, x.quant.zp)
    p = ctx.sym("p")
    ctx.static(f"static const {fn}_params {p} = {{ {x.size}, {x.quant.zp}, {y.quant.zp}, {m}, {s}, {lo}, {hi} }};")
    ctx.call(f"{fn}(&{p}, {ctx.ptr(x.id)}, {ctx.ptr(y.id)});")


RELU = KernelEntry(name="relu_s8", ops=("RELU", "RELU6", "RELU_N1_TO_1"), template="relu_s8.c.in",
                   emit=_emit_relu, reject=_relu_reject, inplace=(0,))

ENTRIES = (ADD, SUB, MUL, MAXIMUM, MINIMUM, SQUARED_DIFFERENCE, ADD_N, RELU, ADD_S16, SUB_S16, MUL_S16)
