"""SVDF kernel: the integer SVDF of TFLite Micro (int8 input/output, int8 feature weights, int16 or int8 time
weights and state, optional int32 bias).

How it works
1. Inputs: x [batches, n_input], feature weights wf [filters, n_input], time weights wt [filters, memory],
   bias [units] (optional), state [batches, memory * filters] (a variable tensor); output [batches, units];
   filters = units * rank. Each run shifts every filter's state row one step left, writes the new feature value
   (x . wf[f], requantized to the state) in the last slot, and sums wt[f] . (row - zp_state) over the unit's
   `rank` filters on top of the bias, requantized to the int8 output.
2. `passes.precompute_requant` (SvdfRequant) holds the two multipliers; here the input zero point is folded into
   one int32 per filter (-zp_x * sum(wf[f])), exact in int32 for inputs shorter than 65536.
3. The state persists from run to run (TFLM's variable tensor): `<name>_reset` clears it (int16 to 0, int8 to its
   zero point, as TFLM resets variables). The time stage wraps around in int32 like TFLM's accumulators.
4. The fused activation is not applied: TFLM's integer SVDF ignores it (only its float SVDF applies it; checked on
   the oracle, RELU layers give negative outputs there too).
5. Refused with a one-line reason: float and hybrid SVDF (at import), time weights and state of different types
   (TFLM picks the kernel from the time weights' type and would read the state with the wrong width), a rank that
   does not divide the filters, per-channel or asymmetric weights, a bias scale TFLM's Prepare refuses, a state
   that is not a variable, shapes TFLM's Prepare refuses.

A missing bias (input 3 absent) is computed as a zero bias, as TFLM's Eval does; the installed TFLM itself
crashes on such a model (its Prepare reads the absent bias tensor's scale), so the tests compare it with the same
model given an explicit zero bias.
"""
from __future__ import annotations

import numpy as np

from ..registry import KernelEntry

MAX_INPUT = 65535  # |fold + sum(wf * x)| < 2^31 for inputs up to this size


def _shape_reason(g, op):
    x, wf, wt, st, y = (g.t(op.input(0)), g.t(op.input(1)), g.t(op.input(2)), g.t(op.input(4)),
                        g.t(op.outputs[0]))
    rank = op.attrs.rank
    if len(x.shape) != 2:
        return f"needs a 2-D input [batches, inputs], got shape {list(x.shape)}"
    if len(wf.shape) != 2 or wf.shape[1] != x.shape[1]:
        return f"feature weights must be [filters, {x.shape[1]}], got {list(wf.shape)}"
    filters = wf.shape[0]
    if rank < 1 or filters % rank:
        return (f"rank {rank} does not divide the {filters} filters (TFLM's Prepare: \"num_filters % rank != 0\")"
                if rank >= 1 else f"rank {rank} (must be at least 1)")
    units = filters // rank
    if len(wt.shape) != 2 or wt.shape[0] != filters:
        return f"time weights must be [{filters}, memory], got {list(wt.shape)}"
    memory = wt.shape[1]
    batches = x.shape[0]
    if tuple(st.shape) != (batches, memory * filters):
        return f"state must be [{batches}, {memory * filters}] (batches, memory x filters), got {list(st.shape)}"
    if tuple(y.shape) != (batches, units):
        return f"output must be [{batches}, {units}] (batches, units), got {list(y.shape)}"
    b = op.input(3)
    if b is not None and (len(g.t(b).shape) < 1 or g.t(b).shape[0] != units or g.t(b).size != units):
        return f"bias must hold {units} values (one per unit), got shape {list(g.t(b).shape)}"
    if x.shape[1] > MAX_INPUT:
        return f"input size {x.shape[1]} above {MAX_INPUT} (the int32 feature accumulator could overflow)"
    return None


def _reject(g, op, core):
    from ..passes.precompute_requant import svdf_bias_scale_ok

    if len(op.inputs) != 5:
        return f"needs the 5 SVDF inputs (TFLM's Prepare checks it), got {len(op.inputs)}"
    x, wf, wt, st, y = (g.t(op.input(0)), g.t(op.input(1)), g.t(op.input(2)), g.t(op.input(4)),
                        g.t(op.outputs[0]))
    if (x.dtype, wf.dtype, y.dtype) != ("int8", "int8", "int8"):
        return f"needs int8 input, feature weights and output, got {x.dtype}/{wf.dtype}/{y.dtype}"
    if st.dtype not in ("int16", "int8"):
        return f"needs an int16 or int8 state, got {st.dtype}"
    if wt.dtype != st.dtype:
        return (f"time weights ({wt.dtype}) and state ({st.dtype}) must have the same type (TFLM picks its kernel "
                "from the time weights and would read the state with their width)")
    if not st.variable:
        return "the state (input 4) must be a variable tensor (TFLM's Prepare: \"activation_state->is_variable\")"
    if not wf.is_const or not wt.is_const:
        return "needs constant feature and time weights"
    b = op.input(3)
    if b is not None and (not g.t(b).is_const or g.t(b).dtype != "int32"):
        return "the bias must be a constant int32 tensor"
    for name, t in (("input", x), ("feature weights", wf), ("time weights", wt), ("state", st), ("output", y)):
        if t.quant is None or t.quant.per_channel:
            return f"{name} need per-tensor quantization (TFLM reads one scale)"
    if wf.quant.zp != 0 or wt.quant.zp != 0:
        return "feature and time weights must be symmetric (zero point 0)"
    why = _shape_reason(g, op)
    if why:
        return why
    if not svdf_bias_scale_ok(g, op):
        return ("bias scale differs from state scale x time weights scale by 1e-5 or more (TFLM's Prepare: "
                "\"std::abs(bias scale - state scale * time weights scale) < 1e-5 was not true\")")
    rq = op.requant
    if rq is None:
        return "missing requantization constants"
    if rq.feature_shift > 30 or rq.output_shift > 30:
        return "a requantization scale ratio of 2^30 or more"
    return None


def _emit(ctx):
    op = ctx.op
    rq = op.requant
    x, wf, wt, st, y = ctx.inp(0), ctx.inp(1), ctx.inp(2), ctx.inp(4), ctx.out()
    batches, n_input = x.shape
    filters, memory = wt.shape
    rank = op.attrs.rank
    fold = -int(x.quant.zp) * wf.data.astype(np.int64).sum(axis=1)
    fn = ctx.fn(STATE=st.dtype)
    fold_sym = ctx.weights(fold.astype(np.int32), hint=f"l{op.index}_fold")
    bias = ctx.ptr(op.input(3)) if op.input(3) is not None else "(const int32_t *)0"
    p = ctx.sym("p")
    ctx.static(f"static const {fn}_params {p} = {{ {batches}, {n_input}, {filters // rank}, {rank}, {memory}, "
               f"{st.quant.zp}, {y.quant.zp}, {rq.feature_mult}, {rq.feature_shift}, {rq.output_mult}, "
               f"{rq.output_shift} }};")
    ctx.call(f"{fn}(&{p}, {ctx.ptr(x.id)}, {ctx.ptr(wf.id)}, {fold_sym}, {ctx.ptr(wt.id)}, {bias}, "
             f"{ctx.ptr(st.id)}, {ctx.ptr(y.id)});")


GENERIC = KernelEntry(name="svdf_s8", ops=("SVDF",), template="svdf_s8.c.in", emit=_emit, reject=_reject)

ENTRIES = (GENERIC,)
