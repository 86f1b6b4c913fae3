"""ADD / SUB on DSP cores: per-input rescaling tabulated offline, one output requantization per element.

How it works
1. `reject` takes same-shape int8 ADD/SUB with TFLM's constants (`op.requant`, an AddSubRequant); broadcasts go
   to the generic kernel.
2. `tables` computes, for every int8 value v, TFLite's rescaled input MultiplyByQuantizedMultiplier((v - zp) << 20)
   with the Python twin of the integer math (`specializer.quant.mbqm`), negated for SUB's second input.
3. The sum of two table entries is bounded by max|T1| + max|T2|, which decides the requantization form; the
   output constants are per tensor and baked into the code.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from specializer.kernels import elementwise as generic_ew
from specializer.quant import mbqm
from specializer.registry import KernelEntry

from .common import clamp_of, requant_plan, variant_name

TEMPLATE = str(Path(__file__).resolve().parent / "add_s8_dsp.c.in")


def reject(g, op, core):
    why = generic_ew._binary_reject(g, op, core)
    if why:
        return why
    a, b, y = g.t(op.inputs[0]), g.t(op.inputs[1]), g.t(op.outputs[0])
    if tuple(a.shape) != tuple(y.shape) or tuple(b.shape) != tuple(y.shape):
        return "broadcast (generic kernel)"
    return None


def tables(g, op) -> tuple[np.ndarray, np.ndarray]:
    a, b = g.t(op.inputs[0]), g.t(op.inputs[1])
    rq = op.requant
    idx = np.arange(256)
    vals = np.where(idx < 128, idx, idx - 256)  # table index = the byte read as unsigned
    t1 = np.array([mbqm((int(v) - a.quant.zp) * (1 << rq.left_shift), rq.in1_multiplier, rq.in1_shift)
                   for v in vals], dtype=np.int64)
    t2 = np.array([mbqm((int(v) - b.quant.zp) * (1 << rq.left_shift), rq.in2_multiplier, rq.in2_shift)
                   for v in vals], dtype=np.int64)
    return t1, (-t2 if op.kind == "SUB" else t2)


def _plan(g, op):
    t1, t2 = tables(g, op)
    bound = np.array([np.abs(t1).max() + np.abs(t2).max()])
    rq = op.requant
    plan = requant_plan(np.array([rq.out_multiplier]), np.array([rq.out_shift]), bound,
                        g.t(op.outputs[0]).quant.zp)
    return plan, t1, t2


def template_args(g, op) -> dict:
    plan, _, _ = _plan(g, op)
    lo, hi = clamp_of(op)
    y = g.t(op.outputs[0])
    args = dict(N=y.size, RQ=plan.mode, OUT_ZP=y.quant.zp, ACT_MIN=lo, ACT_MAX=hi, CLAMP=lo > -128 or hi < 127)
    if plan.mode == "generic":
        args.update(M=int(plan.a[0]), SH=int(plan.b[0]))
    else:
        args.update(M=int(plan.a[0]), K=int(plan.b[0]), E=int(plan.c[0]))
    return args


def variant(args: dict) -> str:
    return variant_name(n=args["N"], rq=args["RQ"][0]) + "__dsp"


def emit(ctx):
    op = ctx.op
    args = template_args(ctx.g, op)
    plan, t1, t2 = _plan(ctx.g, op)
    scale = 2 if plan.mode == "fast" else 1
    fn = ctx.fn(variant=variant(args), **args)
    s1 = ctx.weights((scale * t1).astype(np.int32), "int32_t")
    s2 = ctx.weights((scale * t2).astype(np.int32), "int32_t")
    a, b, y = ctx.inp(0), ctx.inp(1), ctx.out()
    ctx.call(f"{fn}({ctx.ptr(a.id)}, {ctx.ptr(b.id)}, {s1}, {s2}, {ctx.ptr(y.id)});")


ENTRY = KernelEntry(name="add_s8_dsp", ops=("ADD", "SUB"), template=TEMPLATE, emit=emit, reject=reject,
                    template_args=template_args, inplace=(0, 1), priority=10, generic=False,
                    requires=frozenset({"dsp"}))
