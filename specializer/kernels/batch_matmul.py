"""BATCH_MATMUL (int8, both operands variable or constant, adj_x / adj_y, broadcast batch dimensions): the generic
kernel, TFLite Micro reference semantics.

How it works
1. Ranks 2..5; the batch dimensions (all but the last two) are right-aligned and broadcast as TFLite does, and
   padded to 3. Each operand's batch strides are its row-major strides, 0 where it broadcasts; adj_x / adj_y swap
   which of an operand's last two strides steps the row and which the depth.
2. One requantization for the layer: lhs scale x rhs scale / output scale (precompute_requant); zero points of
   both operands subtracted per element, as TFLM does; the output saturates to int8 (no fused activation).
3. Refused with a reason: non-int8 operands, per-channel quantization, more than 3 batch dimensions, depths or
   batch shapes that do not match, an output shape that is not the broadcast product.
"""
from __future__ import annotations

from ..registry import KernelEntry


def _strides(shape) -> list:
    out, acc = [], 1
    for d in reversed(shape):
        out.append(acc)
        acc *= d
    return out[::-1]


def plan(g, op):
    """(batch dims, lhs batch strides, rhs batch strides, rows, cols, depth, l_row, l_col, r_row, r_col) or a
    reason (str)."""
    lt, rt, y = g.t(op.inputs[0]), g.t(op.inputs[1]), g.t(op.outputs[0])
    if not 2 <= len(lt.shape) <= 5 or not 2 <= len(rt.shape) <= 5:
        return f"operand ranks {len(lt.shape)}/{len(rt.shape)} outside 2..5"
    a = op.attrs
    ls, rs = _strides(lt.shape), _strides(rt.shape)
    lr, lc = lt.shape[-2:]
    rr, rc = rt.shape[-2:]
    rows, depth, l_row, l_col = (lc, lr, ls[-1], ls[-2]) if a.adj_x else (lr, lc, ls[-2], ls[-1])
    rdepth, cols, r_row, r_col = (rc, rr, rs[-1], rs[-2]) if a.adj_y else (rr, rc, rs[-2], rs[-1])
    if depth != rdepth:
        return f"depths differ: lhs {depth}, rhs {rdepth}"
    lb, rb = list(lt.shape[:-2]), list(rt.shape[:-2])
    n = max(len(lb), len(rb))
    if n > 3:
        return f"{n} batch dimensions (at most 3)"
    lb, rb = [1] * (n - len(lb)) + lb, [1] * (n - len(rb)) + rb
    lbs = ([0] * (n - len(lt.shape[:-2])) + ls[:-2])
    rbs = ([0] * (n - len(rt.shape[:-2])) + rs[:-2])
    batch = []
    for k in range(n):
        if lb[k] != rb[k] and 1 not in (lb[k], rb[k]):
            return f"batch dimensions {lt.shape[:-2]} and {rt.shape[:-2]} do not broadcast"
        batch.append(max(lb[k], rb[k]))
        if lb[k] == 1:
            lbs[k] = 0
        if rb[k] == 1:
            rbs[k] = 0
    want = tuple(batch) + (rows, cols)
    if tuple(y.shape) != want:
        return f"output shape {list(y.shape)} != {list(want)}"
    pad = 3 - n
    return ([1] * pad + batch, [0] * pad + lbs, [0] * pad + rbs, rows, cols, depth, l_row, l_col, r_row, r_col)


def _reject(g, op, core):
    ts = [g.t(op.inputs[0]), g.t(op.inputs[1]), g.t(op.outputs[0])]
    if [t.dtype for t in ts] != ["int8"] * 3:
        return f"needs int8 operands and output, got {'/'.join(t.dtype for t in ts)}"
    if any(t.quant is None or t.quant.per_channel for t in ts):
        return "needs per-tensor quantized operands and output"
    p = plan(g, op)
    if isinstance(p, str):
        return p
    if op.requant is None:
        return "missing requantization constants"
    return None


def _emit(ctx):
    op = ctx.op
    lt, rt, y = ctx.inp(0), ctx.inp(1), ctx.out()
    batch, lbs, rbs, rows, cols, depth, l_row, l_col, r_row, r_col = plan(ctx.g, op)
    fn = ctx.fn()
    p = ctx.sym("p")
    rq = op.requant
    vals = [f"{{ {', '.join(map(str, batch))} }}", f"{{ {', '.join(map(str, lbs))} }}",
            f"{{ {', '.join(map(str, rbs))} }}", rows, cols, depth, l_row, l_col, r_row, r_col,
            lt.quant.zero_point[0], rt.quant.zero_point[0], y.quant.zero_point[0], rq.multiplier[0], rq.shift[0]]
    ctx.static(f"static const {fn}_params {p} = {{ {', '.join(map(str, vals))} }};")
    ctx.call(f"{fn}(&{p}, {ctx.ptr(lt.id)}, {ctx.ptr(rt.id)}, {ctx.ptr(y.id)});")


GENERIC = KernelEntry(name="batch_matmul_s8", ops=("BATCH_MATMUL",), template="batch_matmul_s8.c.in", emit=_emit,
                      reject=_reject)

ENTRIES = (GENERIC,)
