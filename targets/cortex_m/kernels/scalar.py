"""Specialized scalar kernels for cores without the DSP extension (Cortex-M0+, Cortex-M3).

How it works
1. One GEMM template (pointwise_s8_scalar.c.in) runs a 1x1, stride-1, unpadded CONV_2D (NPIX = pixels,
   K = input channels, R = output channels), a FULLY_CONNECTED (NPIX = input rows) and any other CONV_2D
   (conv2d_s8_scalar: per output pixel its KH x KW x IC column is gathered into the scratch first, the input zero
   point where the window leaves the image, K = KH x KW x IC). Every size is a compile-time constant; the K
   loop is unrolled completely.
2. Lane-paired multiply (SWAR without a DSP): two output channels c, c+1 share one int32 weight word
   W = w[c] + 65536 * w[c+1] (an exact integer, |W| < 2^31). x0 * W(k0) + x1 * W(k1) = S0 + 65536 * S1 with
   |S0|, |S1| <= 2 * 128 * 127 < 2^15, so one MULS does two MACs and every two input values the lanes are split
   exactly: lo = (int16)p = S0, hi = (p - lo) >> 16 = S1. Weights of -128 would break the lane bound (rejected).
3. Blocks of P channel pairs (P <= 3): the accumulators live in the high registers r8..r12/lr (ADD reaches
   them), the low registers hold the two input values, two temporaries and the pointers. On Thumb targets the
   block is one inline-asm sequence (gcc's Thumb-1 register allocation shuffles high registers otherwise); the
   host build runs the same arithmetic in C.
4. The input zero point is folded into the bias offline (bias - zp_in * sum(w)); raw int8 inputs are multiplied.
   The accumulators of one pixel go to the scratch, then a C loop requantizes them (TFLite's exact form: the
   "wide" form spz_rqw where the offline check proves it exact, else spz_requant).
5. `reject` refuses any core with the DSP extension (M4/M7/M33 keep their DSP kernels) and the portable host
   build without a target core, so only M0+/M3 builds change.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from specializer.kernels import conv as generic_conv
from specializer.kernels import fully_connected as generic_fc
from specializer.ops import explicit_padding
from specializer.registry import KernelEntry

from .common import add_stream, bias_of, call_stream_kernel, clamp_of, finish_stream, grouped, input_span, variant_name

TEMPLATE = str(Path(__file__).resolve().parent / "pointwise_s8_scalar.c.in")
INT32 = 1 << 31
SPLIT_LIMIT = 1 << 24  # the split requantization needs |acc| < 2^24
HIGH = ("r8", "r9", "r10", "r11", "r12", "lr")


def _core_reject(core):
    if core is None:
        return "portable host build (no target core)"
    if "dsp" in (getattr(core, "features", ()) or ()):
        return "core has the DSP extension (DSP kernels)"
    return None


def _weights(g, op) -> np.ndarray:
    """(R, K) int64 weights."""
    w = g.t(op.inputs[1]).data.astype(np.int64)
    return w.reshape(w.shape[0], -1)


def _folded(g, op):
    w = _weights(g, op)
    r = w.shape[0]
    zp = g.t(op.inputs[0]).quant.zero_point[0]
    bias = bias_of(g, op, r)
    return w, bias - zp * w.sum(axis=1), bias, zp


def _common_reject(g, op):
    w, folded, bias, zp = _folded(g, op)
    if w.min(initial=0) < -127:
        return "a weight of -128 (the paired lanes need |w| <= 127)"
    if np.abs(folded).max(initial=0) >= INT32:
        return "bias - zp * sum(w) does not fit int32"
    return None


def _reject_conv(g, op, core, pointwise: bool):
    why = _core_reject(core) or generic_conv._conv_reject(g, op, core) or grouped(g, op)
    if why:
        return why
    if _im2col(g, op) == pointwise:
        return ("not a 1x1, stride-1, unpadded convolution (conv2d_s8_scalar)" if pointwise
                else "a 1x1, stride-1, unpadded convolution (conv2d_s8_pw_scalar)")
    return _common_reject(g, op)


def reject_conv(g, op, core):
    """A 1x1, stride-1, unpadded, ungrouped CONV_2D of what the generic kernel takes."""
    return _reject_conv(g, op, core, True)


def reject_conv_im2col(g, op, core):
    """Any other ungrouped CONV_2D (kernel, stride, padding, dilation) of what the generic kernel takes."""
    return _reject_conv(g, op, core, False)


def reject_fc(g, op, core):
    why = _core_reject(core) or generic_fc._reject(g, op, core)
    if why:
        return why
    if any(g.t(op.inputs[1]).quant.zero_point):
        return "asymmetric weights (the generic kernel takes them)"
    return _common_reject(g, op)


def _requant(g, op):
    """("split", ml, 2 mh, k, e) when spz_rqw is exact for every channel and |acc| < 2^24 (the template's
    32-bit-only evaluation of it: M0+ has no 64-bit multiply), ("wide", m, k, e) without the accumulator bound,
    else ("generic", multiplier, shift)."""
    w, folded, bias, zp = _folded(g, op)
    bound = np.minimum(np.abs(bias) + input_span(zp) * np.abs(w).sum(axis=1),
                       np.abs(folded) + 128 * np.abs(w).sum(axis=1))
    mult, shift, rqw = rqw_form(op, bound)
    if rqw is not None:
        m, el, _ = rqw
        if bool(np.all(bound < SPLIT_LIMIT)):  # spz_rqw's value from 16 x 16-bit products (no 64-bit multiply)
            return "split", [m & 0xFFFF, 2 * (m >> 16), np.int64(1) << (el - 1), el]
        return "wide", [m, np.int64(1) << (el - 1), el]
    return "generic", [mult, shift]


def rqw_form(op, bound: np.ndarray):
    """(multiplier, shift, (m, e, head) or None): per channel TFLite's constants, and spz_rqw's m (0 on channels
    whose output is the zero point for every reachable accumulator), right shift e and |SRDHM| bound where spz_rqw
    is exact inside int32 for every channel (right shifts 1..31, multipliers >= 0)."""
    n = len(bound)
    rq = op.requant
    mult = np.broadcast_to(np.asarray(rq.multiplier, dtype=np.int64).reshape(-1), (n,)).copy()
    shift = np.broadcast_to(np.asarray(rq.shift, dtype=np.int64).reshape(-1), (n,)).copy()
    e = -shift
    head = (bound * mult) // INT32 + 1
    dead = (mult == 0) | ((e >= 1) & (head < (np.int64(1) << np.clip(e - 1, 0, 62))))
    live = ~dead
    el = np.where(live, e, 1)
    if bool(np.all(el >= 1) and np.all(mult >= 0) and np.all(el <= 31)
            and np.all(head + 1 + (np.int64(1) << (el - 1)) < INT32)):
        return mult, shift, (np.where(live, mult, 0), el, head)
    return mult, shift, None


def _geometry(g, op) -> dict:
    x, y = g.t(op.inputs[0]), g.t(op.outputs[0])
    w = _weights(g, op)
    r, k = w.shape
    geo = dict(NPIX=y.size // r, K=k, R=r, IM=_im2col(g, op))
    if geo["IM"]:
        wt, a = g.t(op.inputs[1]), op.attrs
        top, _, left, _ = explicit_padding(a, x.shape[1:3], y.shape[1:3], (wt.shape[1], wt.shape[2]))
        geo.update(B=x.shape[0], IH=x.shape[1], IW=x.shape[2], IC=x.shape[3], OH=y.shape[1], OW=y.shape[2],
                   KH=wt.shape[1], KW=wt.shape[2], SH=a.stride_h, SW=a.stride_w, DH=a.dilation_h,
                   DW=a.dilation_w, PT=top, PL=left, ZP=int(x.quant.zero_point[0]))
    return geo


def _im2col(g, op) -> bool:
    """A CONV_2D other than 1x1, stride 1, unpadded: the kernel gathers each output pixel's column first."""
    if op.kind != "CONV_2D":
        return False
    x, w, y = g.t(op.inputs[0]), g.t(op.inputs[1]), g.t(op.outputs[0])
    a = op.attrs
    top, _, left, _ = explicit_padding(a, x.shape[1:3], y.shape[1:3], (w.shape[1], w.shape[2]))
    return (w.shape[1], w.shape[2], a.stride_h, a.stride_w, top, left) != (1, 1, 1, 1, 0, 0) \
        or tuple(x.shape[1:3]) != tuple(y.shape[1:3])


def template_args(g, op) -> dict:
    geo = _geometry(g, op)
    lo, hi = clamp_of(op)
    mode, _ = _requant(g, op)
    pairs = (geo["R"] + 1) // 2
    p = min(3, pairs)
    return dict(geo, P=p, NB=pairs // p, TP=pairs % p, RQ=mode, ACT_MIN=lo, ACT_MAX=hi,
                CLAMP=lo > -128 or hi < 127, HIGH=HIGH)


def build_stream(g, op, args: dict) -> np.ndarray:
    w, folded, _, _ = _folded(g, op)
    r, k = w.shape
    r2 = 2 * ((r + 1) // 2)
    wp = np.zeros((r2, k), dtype=np.int64)
    wp[:r] = w
    fb = np.zeros(r2, dtype=np.int64)
    fb[:r] = folded
    words = wp[0::2] + 65536 * wp[1::2]  # (pairs, K): exact integers inside int32
    parts = []
    blocks = [(b * args["P"], args["P"]) for b in range(args["NB"])]
    if args["TP"]:
        blocks.append((args["NB"] * args["P"], args["TP"]))
    for q0, n in blocks:
        parts.append(fb[2 * q0:2 * (q0 + n)])
        # per step of two inputs: pair j's words for k0, k1 (a last odd input: one word per pair)
        for k0 in range(0, k, 2):
            for j in range(n):
                parts.append(words[q0 + j, k0:k0 + 2])
    _, consts = _requant(g, op)
    parts.append(np.stack(consts, axis=1).reshape(-1))  # per channel: (m, k, e) or (multiplier, shift)
    return finish_stream(parts)


def reorder(g, op):
    return add_stream(g, op, build_stream(g, op, template_args(g, op)), "scalar_stream")


def scratch_bytes(g, op) -> int:
    """The accumulators of one pixel; with IM its column after them."""
    geo = _geometry(g, op)
    return 4 * 2 * ((geo["R"] + 1) // 2) + ((geo["K"] + 3) // 4 * 4 if geo["IM"] else 0)


def block_asm(k: int, p: int) -> str:
    """The inline-asm body of one block of p channel pairs over depth k (Thumb-1 instructions only; operands
    %[xp] input pointer, %[s] stream pointer, %[x0] %[x1] %[t0] %[t1] low temporaries, %[ap] accumulator
    output pointer in any register). Returns the lines as one C string literal body."""
    acc = HIGH[:2 * p]
    out = []
    for j in range(2 * p):  # folded biases
        out += [f"ldr %[t0], [%[s], #{4 * j}]", f"mov {acc[j]}, %[t0]"]
    soff = 8 * p  # bytes of the stream consumed beyond the pointer
    xoff = 0
    for k0 in range(0, k, 2):
        two = k0 + 1 < k
        if xoff + 1 > 31:
            out.append(f"adds %[xp], #{xoff}")
            xoff = 0
        if soff + 8 * p > 128:
            out.append(f"adds %[s], #{soff}")
            soff = 0
        if two:
            out += [f"ldrb %[x0], [%[xp], #{xoff}]", f"ldrb %[x1], [%[xp], #{xoff + 1}]",
                    "sxtb %[x0], %[x0]", "sxtb %[x1], %[x1]"]
        else:
            out += [f"ldrb %[x0], [%[xp], #{xoff}]", "sxtb %[x0], %[x0]"]
        for j in range(p):
            if two:
                out += [f"ldr %[t0], [%[s], #{soff}]", f"ldr %[t1], [%[s], #{soff + 4}]",
                        "muls %[t0], %[x0], %[t0]", "muls %[t1], %[x1], %[t1]", "adds %[t0], %[t0], %[t1]"]
                soff += 8
            else:
                out += [f"ldr %[t0], [%[s], #{soff}]", "muls %[t0], %[x0], %[t0]"]
                soff += 4
            out += ["sxth %[t1], %[t0]", f"add {acc[2 * j]}, %[t1]", "subs %[t0], %[t0], %[t1]",
                    "asrs %[t0], %[t0], #16", f"add {acc[2 * j + 1]}, %[t0]"]
        xoff += 2
    while soff:
        step = min(soff, 255)
        out.append(f"adds %[s], #{step}")
        soff -= step
    out.append("mov %[xp], %[ap]")
    for j in range(2 * p):
        out += [f"mov %[t0], {acc[j]}", f"str %[t0], [%[xp], #{4 * j}]"]
    return "\\n\\t".join([".syntax unified"] + out)


def variant(args: dict) -> str:
    if args["IM"]:
        return variant_name(k=f"{args['KH']}x{args['KW']}", s=f"{args['SH']}x{args['SW']}",
                            d=f"{args['DH']}x{args['DW']}" if args["DH"] > 1 or args["DW"] > 1 else None,
                            p=f"{args['PT']}x{args['PL']}", c=f"{args['IC']}x{args['R']}", pr=args["P"],
                            rq=args["RQ"][0]) + "__scalar"
    return variant_name(n=args["NPIX"], k=args["K"], r=args["R"], p=args["P"], rq=args["RQ"][0]) + "__scalar"


def emit(ctx):
    args = template_args(ctx.g, ctx.op)
    asm = {p: block_asm(args["K"], p) for p in {args["P"], args["TP"]} if p}
    call_stream_kernel(ctx, ctx.fn(variant=variant(args), ASM=asm, **args), in_zp=False)


def inplace(g, op) -> tuple:
    """Each pixel's K inputs are all read (into the accumulators) before its R outputs are written, and later
    pixels read later inputs only: with R == K the output may overwrite the input."""
    if op.kind == "CONV_2D" and not _im2col(g, op):
        w = g.t(op.inputs[1])
        if w.shape[0] == w.shape[3]:
            return (0,)
    return ()


CONV_ENTRY = KernelEntry(name="conv2d_s8_pw_scalar", ops=("CONV_2D",), template=TEMPLATE, emit=emit,
                         reject=reject_conv, template_args=template_args, scratch_bytes=scratch_bytes, priority=5,
                         generic=False, reorder=reorder, inplace=inplace)
IM2COL_ENTRY = KernelEntry(name="conv2d_s8_scalar", ops=("CONV_2D",), template=TEMPLATE, emit=emit,
                           reject=reject_conv_im2col, template_args=template_args, scratch_bytes=scratch_bytes,
                           priority=5, generic=False, reorder=reorder)
FC_ENTRY = KernelEntry(name="fully_connected_s8_scalar", ops=("FULLY_CONNECTED",), template=TEMPLATE, emit=emit,
                       reject=reject_fc, template_args=template_args, scratch_bytes=scratch_bytes, priority=5,
                       generic=False, reorder=reorder)
