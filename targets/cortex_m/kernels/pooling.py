"""AVERAGE_POOL_2D and MAX_POOL_2D int8 on DSP cores: every size baked in, four channels per word.

How it works
1. `reject` takes what the generic kernels take (specializer/kernels/pooling.py: one quantization, no window
   entirely in the padding); the average pool also needs at most 255 taps per window (its int16 lane sums).
2. The template (pool2d_s8_dsp.c.in): per output pixel the window is clipped once, then per word of four
   channels one load per tap: SSUB8 + SEL for the maximum, SXTAB16 / SXTAB16-ROR#8 for the sums, TFLite's
   rounded division per channel, the clamp, one store.
3. Output pixels are OS bytes apart: C, or the channels of a concatenation whose slice the pool writes in place
   (passes/concat_views).
4. Reads and writes keep the generic kernel's order per pixel (a group of channels read over the window, then
   written), so its output may overlap the input at the same distance (`_overlap`).
"""
from __future__ import annotations

from pathlib import Path

from specializer.kernels import pooling as generic_pool
from specializer.registry import KernelEntry, out_pixel_stride

from .common import clamp_of, variant_name

TEMPLATE = str(Path(__file__).resolve().parent / "pool2d_s8_dsp.c.in")
MAX_AVG_TAPS = 255


def reject(g, op, core):
    why = generic_pool._reject(g, op, core)
    if why:
        return why
    if op.kind == "AVERAGE_POOL_2D" and op.attrs.filter_h * op.attrs.filter_w > MAX_AVG_TAPS:
        return f"more than {MAX_AVG_TAPS} taps per window (the int16 lane sums; generic kernel)"
    return None


def template_args(g, op) -> dict:
    x, y = g.t(op.inputs[0]), g.t(op.outputs[0])
    a = op.attrs
    top, _, left, _ = generic_pool._geometry(g, op)
    lo, hi = clamp_of(op)
    return dict(AVG=op.kind == "AVERAGE_POOL_2D", B=x.shape[0], IH=x.shape[1], IW=x.shape[2], C=x.shape[3],
                OH=y.shape[1], OW=y.shape[2], KH=a.filter_h, KW=a.filter_w, SH=a.stride_h, SW=a.stride_w, PT=top,
                PL=left, ACT_MIN=lo, ACT_MAX=hi, CLAMP=lo > -128 or hi < 127,
                OS=out_pixel_stride(op, x.shape[3]))


def variant(args: dict) -> str:
    return variant_name(k=f"{args['KH']}x{args['KW']}", s=f"{args['SH']}x{args['SW']}",
                        p=f"{args['PT']}x{args['PL']}", c=args["C"],
                        os=args["OS"] if args["OS"] != args["C"] else None) + "__dsp"


def emit(ctx):
    args = template_args(ctx.g, ctx.op)
    fn = ctx.fn(variant=variant(args), **args)
    ctx.call(f"{fn}({ctx.ptr(ctx.inp(0).id)}, {ctx.ptr(ctx.out().id)});")


MAX_ENTRY = KernelEntry(name="max_pool2d_s8_dsp", ops=("MAX_POOL_2D",), template=TEMPLATE, emit=emit, reject=reject,
                        template_args=template_args, priority=10, generic=False, requires=frozenset({"dsp"}),
                        overlap=generic_pool._overlap, ostride=True)
AVG_ENTRY = KernelEntry(name="avg_pool2d_s8_dsp", ops=("AVERAGE_POOL_2D",), template=TEMPLATE, emit=emit,
                        reject=reject, template_args=template_args, priority=10, generic=False,
                        requires=frozenset({"dsp"}), overlap=generic_pool._overlap, ostride=True)
