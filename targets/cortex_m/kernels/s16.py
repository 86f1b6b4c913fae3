"""int16x8 CONV_2D and FULLY_CONNECTED on DSP cores: int16 pairs straight from the activations, SMLALD into int64.

How it works
1. int16 activations need no unpacking: a word load gives two consecutive input values along the reduction (the
   input channels of a kernel row's taps, or an FC row's depth), and the int8 weights are stored offline as int16
   pairs in the same order, so one SMLALD (1 cycle on the M4) does two multiply-accumulates into a 64-bit sum:
   exactly TFLite Micro's int64 sum, no overflow question.
2. `conv2d_s16_dsp` takes what the generic `conv2d_s16` takes, minus grouped convolutions and the int32-bias form
   (TFLM's int32 sum and 32-bit rescale stay on the generic kernel). `fully_connected_s16_dsp` takes the generic
   16x8 FULLY_CONNECTED's int64-bias / no-bias form; it runs on the same template as a 1x1 convolution of a 1x1
   image (one "pixel" per input row), the input zero point folded into the int64 bias offline.
3. The stream (`build_stream`) holds per block of OCB output channels the weight pairs in consumption order, the
   odd tails, the biases as int64 (two words) and the per-channel rounded multipliers and total shifts (unless
   every channel shares them: UNIFORM, baked into the code). Requantization is the generic kernels' 64-bit
   MultiplyByQuantizedMultiplier, with the 16-bit rounded multiplier computed offline by the same formula.
4. Both entries refuse everything that is not int16 in and out with int8 weights, so the int8 entries and these
   never take each other's layers; whatever they refuse runs on the generic bit-exact kernels.
5. `depthwise_conv2d_s16_dsp` (DEPTHWISE_CONV_2D, depth multiplier 1, template depthwise_s16_dsp.c.in): a word
   of the NHWC input holds channels (c, c+1) of one tap; the weights are stored as int16 words per channel pair
   and tap, and SMLABB/SMLATT add a tap's two products into the two channels' accumulators. The accumulators
   are int32 where 32768 * sum |w| < 2^31 for every channel (the bias is not in the sum: it is part of the
   requantization's 64-bit start constant), else int64 (SMLALBB/SMLALTT). Border pixels are grouped into
   classes of equal inside-tap windows (depthwise.py's `classes_and_segments`), each with its own unrolled
   function; the requantization is the same offline fold as above (`_rq_constants`), one SMLAL where every
   pre-shifted multiplier is below 2^31 and the sum is 32-bit.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from specializer.kernels import conv_s16 as generic_conv16
from specializer.kernels import fully_connected as generic_fc
from specializer.ops import explicit_padding
from specializer.registry import KernelEntry

from .common import POS, add_stream, finish_stream, grouped, interleave, pack16, per_channel, variant_name

TEMPLATE = str(Path(__file__).resolve().parent / "conv2d_s16_dsp.c.in")
DW_TEMPLATE = str(Path(__file__).resolve().parent / "depthwise_s16_dsp.c.in")
FULL = 16  # segments of at most this many word steps are straight code; longer ones loop
UNROLL = 8  # steps per looped body
OCB = 2  # output channels per block (4 int64 accumulators = 8 registers)
BIAS_LIMIT = 1 << 62


def _int64_bias(g, op) -> bool:
    b = op.input(2)
    return b is None or g.t(b).dtype == "int64"


def _bias64(g, op, n: int) -> np.ndarray:
    b = op.input(2)
    if b is None:
        return np.zeros(n, dtype=np.int64)
    return g.t(b).data.astype(np.int64).reshape(-1)


def conv_reject(g, op, core):
    why = generic_conv16._conv_reject(g, op, core) or grouped(g, op)
    if why:
        return why
    if not _int64_bias(g, op):
        return "int32 bias (TFLite's int32-sum form: generic kernel)"
    return None


def fc_reject(g, op, core):
    why = generic_fc._reject_s16(g, op, core)
    if why:
        return why
    if not _int64_bias(g, op):
        return "int32 bias (TFLite's int32-sum form: generic kernel)"
    w, y = g.t(op.inputs[1]), g.t(op.outputs[0])
    if len(op.requant.multiplier) not in (1, w.shape[0]):
        return f"{len(op.requant.multiplier)} requantization channels for {w.shape[0]} rows"
    wq = w.data.astype(np.int64)
    bias = _bias64(g, op, w.shape[0])
    if np.abs(bias).max(initial=0) >= BIAS_LIMIT:
        return "bias beyond 2^62"
    folded = _fc_folded_bias(g, op)
    bound = np.abs(folded) + 32768 * np.abs(wq).sum(axis=1)
    if int(bound.max(initial=0)) >= 1 << 47:  # acc * 0x7FFF must stay inside int64 (as in the generic kernel)
        return "a sum that could reach 2^47 (outside the 64-bit MultiplyByQuantizedMultiplier's domain)"
    if y.quant is None or y.quant.per_channel:
        return "needs per-tensor output quantization"
    return None


def _fc_folded_bias(g, op) -> np.ndarray:
    w = g.t(op.inputs[1]).data.astype(np.int64)
    zp = int(g.t(op.inputs[0]).quant.zero_point[0])
    return _bias64(g, op, w.shape[0]) - zp * w.sum(axis=1)


def _weights(g, op) -> np.ndarray:
    """OHWI int8 weights (FULLY_CONNECTED: rows x 1 x 1 x depth)."""
    w = g.t(op.inputs[1]).data.astype(np.int64)
    return w.reshape(w.shape[0], 1, 1, w.shape[1]) if op.kind == "FULLY_CONNECTED" else w


def _segments(ic: int, kw: int, dw: int) -> tuple:
    """A kernel row's (halfword offset, pairs, odd) segments: one of KW * IC when the taps touch, else KW of IC."""
    if dw == 1 or kw == 1:
        return ((0, kw * ic // 2, kw * ic % 2),)
    return tuple((kx * dw * ic, ic // 2, ic % 2) for kx in range(kw))


def _requant(op, n: int):
    """Per channel: the 16-bit rounded multiplier and the total right shift (15 - shift) TFLite's 64-bit
    MultiplyByQuantizedMultiplier uses (same formulas as the generic kernels, evaluated offline)."""
    mult = per_channel(op.requant.multiplier, n)
    shift = per_channel(op.requant.shift, n)
    m16 = np.where(mult < 0x7FFF0000, (mult + (1 << 15)) >> 16, 0x7FFF)
    return m16.astype(np.int64), (15 - shift).astype(np.int64)


def _rq_constants(op, n: int, bias: np.ndarray):
    """(mode, per-channel multiplier, per-channel shift, per-channel 64-bit start constant) of the template's
    requantization (see conv2d_s16_dsp.c.in, point 4): "hi" (m', e, K') where every channel allows it, else "c"
    (m16, total shift, bias)."""
    m16, sh = _requant(op, n)
    pre = np.maximum(32 - sh, 0)
    if np.all(m16 >= 0) and np.all(m16 << pre < 1 << 32):
        k = [((int(b) * int(m) + (1 << (int(t) - 1))) << int(p)) % (1 << 64) for b, m, t, p in zip(bias, m16, sh, pre)]
        return "hi", m16 << pre, np.maximum(sh - 32, 0), k
    return "c", m16, sh, [int(b) % (1 << 64) for b in bias]


def template_args(g, op) -> dict:
    x, y = g.t(op.inputs[0]), g.t(op.outputs[0])
    w = _weights(g, op)
    oc, kh, kw, ic = w.shape
    lo, hi = tuple(op.clamp) if op.clamp is not None else (-32768, 32767)
    if op.kind == "FULLY_CONNECTED":
        geo = dict(B=x.size // ic, IH=1, IW=1, OH=1, OW=1, SH=1, SW=1, DH=1, DW=1, PT=0, PL=0,
                   OUT_ZP=int(y.quant.zero_point[0]))
    else:
        a = op.attrs
        top, _, left, _ = explicit_padding(a, x.shape[1:3], y.shape[1:3], (kh, kw))
        geo = dict(B=x.shape[0], IH=x.shape[1], IW=x.shape[2], OH=y.shape[1], OW=y.shape[2], SH=a.stride_h,
                   SW=a.stride_w, DH=a.dilation_h, DW=a.dilation_w, PT=top, PL=left, OUT_ZP=0)
    segs = _segments(ic, kw, geo["DW"])
    cols = (geo["OW"] - 1) * geo["SW"] + (kw - 1) * geo["DW"] + 1  # input columns the windows span
    hpad = geo["PL"] > 0 or cols - geo["PL"] > geo["IW"]
    slotw = max(cols, geo["PL"] + geo["IW"]) * ic
    slotw += slotw % 2
    rq, mc, ec, _ = _rq_constants(op, oc, np.zeros(oc, dtype=np.int64))
    uniform = (int(mc[0]), int(ec[0])) if np.all(mc == mc[0]) and np.all(ec == ec[0]) else None
    return dict(geo, IC=ic, OC=oc, KH=kh, KW=kw, OCB=min(OCB, oc), SEGS=segs, ROWW=sum(p + o for _, p, o in segs),
                FULL=FULL, UNROLL=UNROLL, HPAD=hpad, SLOTW=slotw if hpad else 0,
                RS=slotw if hpad else geo["DH"] * geo["IW"] * ic, RQ=rq, UNIFORM=uniform, ACT_MIN=int(lo), ACT_MAX=int(hi),
                POS=POS)


def build_stream(g, op, args: dict) -> np.ndarray:
    w = _weights(g, op)
    oc = w.shape[0]
    bias = _fc_folded_bias(g, op) if op.kind == "FULLY_CONNECTED" else _bias64(g, op, oc)
    rq, mc, ec, kc = _rq_constants(op, oc, bias)
    # the row's columns in segment order: per segment its pairs (as words), then its odd tail
    rows = []  # per ky: (oc, ROWW) words in the stream's order per step (interleaved per block below)
    for ky in range(args["KH"]):
        taps = []  # per segment (oc, n) int16 values along the segment
        if len(args["SEGS"]) == 1:
            taps.append(w[:, ky].reshape(oc, -1))
        else:
            taps += [w[:, ky, kx, :] for kx in range(args["KW"])]
        words = []
        for t in taps:
            n2 = t.shape[1] // 2 * 2
            words.append((pack16(t[:, 0:n2:2], t[:, 1:n2:2]).astype(np.int64), False))
            if t.shape[1] % 2:
                words.append((t[:, n2:n2 + 1], True))
        rows.append(words)
    parts = []
    ocb = args["OCB"]
    for c0 in range(0, oc, ocb):
        c1 = min(c0 + ocb, oc)
        for words in rows:
            for part, tail in words:  # a step's NB weight words in the load order POS; tails in channel order
                parts.append(part[c0:c1].T.reshape(-1) if tail else interleave(part[c0:c1]))
        for k in kc[c0:c1]:  # per channel: low word, high word (as int32)
            parts.append(np.array([k & 0xFFFFFFFF, k >> 32], dtype=np.uint64).astype(np.uint32).view(np.int32)
                         .astype(np.int64))
        if args["UNIFORM"] is None:
            parts += [np.where(mc[c0:c1] >= 1 << 31, mc[c0:c1] - (1 << 32), mc[c0:c1]), ec[c0:c1]]
    return finish_stream(parts)


def reorder(g, op):
    return add_stream(g, op, build_stream(g, op, template_args(g, op)), "s16_stream")


def scratch_bytes(g, op) -> int:
    a = template_args(g, op)
    return 2 * a["KH"] * a["SLOTW"] if a["HPAD"] else 0


def variant(args: dict, fc: bool) -> str:
    if fc:
        return variant_name(n=args["B"], k=args["IC"], r=args["OC"], b=args["OCB"],
                            rq="u" if args["UNIFORM"] else None) + "__dsp"
    return variant_name(k=f"{args['KH']}x{args['KW']}", s=f"{args['SH']}x{args['SW']}",
                        d=f"{args['DH']}x{args['DW']}" if args["DH"] > 1 or args["DW"] > 1 else None,
                        p=f"{args['PT']}x{args['PL']}", c=f"{args['IC']}x{args['OC']}", b=args["OCB"],
                        rq="u" if args["UNIFORM"] else None) + "__dsp"


def _emit(ctx, fc: bool):
    op = ctx.op
    args = template_args(ctx.g, op)
    fn = ctx.fn(variant=variant(args, fc), **args)
    x, y = ctx.inp(0), ctx.out()
    buf = ctx.scratch("int16_t") if args["HPAD"] else "(int16_t *)0"
    ctx.call(f"{fn}({ctx.ptr(x.id)}, {ctx.ptr(op.stream)}, {ctx.ptr(y.id)}, {buf});")


CONV_ENTRY = KernelEntry(name="conv2d_s16_dsp", ops=("CONV_2D",), template=TEMPLATE,
                         emit=lambda ctx: _emit(ctx, False), reject=conv_reject, template_args=template_args,
                         scratch_bytes=scratch_bytes, priority=10, generic=False, requires=frozenset({"dsp"}),
                         reorder=reorder)
FC_ENTRY = KernelEntry(name="fully_connected_s16_dsp", ops=("FULLY_CONNECTED",), template=TEMPLATE,
                       emit=lambda ctx: _emit(ctx, True), reject=fc_reject, template_args=template_args,
                       scratch_bytes=scratch_bytes, priority=10, generic=False, requires=frozenset({"dsp"}),
                       reorder=reorder)


# ---- DEPTHWISE_CONV_2D 16x8 (depth multiplier 1) -----------------------------------------------------------------
DW_GROUP = 3  # (input word, weight word) pairs loaded in one run before their multiply-accumulates (32-bit sums)
DW_GROUP64 = 2  # the same with 64-bit sums (four accumulator registers)
DW_MAX_TAPS = 1000  # a channel pair's stream words (taps + 8) stay within an LDR's immediate offset (4095 bytes)


def dw_reject(g, op, core):
    why = generic_conv16._dw_reject(g, op, core)
    if why:
        return why
    x, y = g.t(op.inputs[0]), g.t(op.outputs[0])
    if x.shape[3] != y.shape[3]:
        return "depth multiplier > 1 (generic kernel)"
    if not _int64_bias(g, op):
        return "int32 bias (generic kernel)"
    w = g.t(op.inputs[1])
    if w.shape[1] * w.shape[2] > DW_MAX_TAPS:
        return (f"{w.shape[1] * w.shape[2]} taps: beyond {DW_MAX_TAPS} (stream offsets past an LDR's 4 KB; "
                "generic kernel)")
    return None


def _dw_weights(g, op) -> np.ndarray:
    """(taps, C) int8 weights as int64, taps in (ky, kx) order."""
    w = g.t(op.inputs[1])
    return w.data.astype(np.int64).reshape(-1, w.shape[3])


def dw_acc64(g, op) -> bool:
    """True when some channel's sum of taps could leave int32 (32768 * sum |w| >= 2^31): 64-bit accumulators."""
    return int(32768 * np.abs(_dw_weights(g, op)).sum(axis=0).max(initial=0)) >= 1 << 31


def dw_template_args(g, op) -> dict:
    from .depthwise import _geometry, classes_and_segments

    geo = _geometry(g, op)
    c, kh, kw = geo["C"], geo["KH"], geo["KW"]
    t = kh * kw
    lo, hi = tuple(op.clamp) if op.clamp is not None else (-32768, 32767)
    classes, segs = classes_and_segments(geo)
    rowsegs = []
    for oy0, oy1, ox0, ox1, ci in segs:
        if not rowsegs or rowsegs[-1][:2] != (oy0, oy1):
            rowsegs.append((oy0, oy1, []))
        rowsegs[-1][2].append((ox0, ox1, ci))
    acc64 = dw_acc64(g, op)
    grp = DW_GROUP64 if acc64 else DW_GROUP
    fns = []
    for ci, (r0, r1, c0, c1) in enumerate(classes):
        taps = [(ky * kw + kx, 2 * ((ky - r0) * geo["DH"] * geo["IW"] + (kx - c0) * geo["DW"]) * c)
                for ky in range(r0, r1) for kx in range(c0, c1)]
        fns.append((ci, tuple(tuple(taps[i:i + grp]) for i in range(0, len(taps), grp))))
    if any(sg[4] < 0 for sg in segs):
        taps = [(i, 0) for i in range(t)]
        fns.append((-1, tuple(tuple(taps[i:i + grp]) for i in range(0, len(taps), grp))))
    rq, mc, ec, _ = _rq_constants(op, c, np.zeros(c, dtype=np.int64))
    uniform = (int(mc[0]), int(ec[0])) if np.all(mc == mc[0]) and np.all(ec == ec[0]) else None
    e0 = rq == "hi" and bool(np.all(ec == 0))
    ms = rq == "hi" and bool(np.all(mc < 1 << 31))
    per = 0 if uniform else (1 if e0 else 2)  # multiplier (and shift) words per channel
    sat = None  # the clamp as one SSAT/USAT where its range is [-2^(n-1), 2^(n-1) - 1] or [0, 2^n - 1]
    for n in range(1, 17):
        if (lo, hi) == (-(1 << (n - 1)), (1 << (n - 1)) - 1):
            sat = ("__ssat", n)
        elif (lo, hi) == (0, (1 << n) - 1) and n < 16:
            sat = ("__usat", n)
    return dict(geo, NP=c // 2, ODD=c % 2, T=t, CLASSES=classes, ROWSEGS=tuple((a, b, tuple(s)) for a, b, s in rowsegs),
                FNS=tuple(fns), ACC64=acc64, RQ=rq, MS=ms, UNIFORM=uniform, E0=e0, ACT_MIN=int(lo), ACT_MAX=int(hi),
                SAT=sat,
                GW2=t + 2 * (2 + per), GW1=t + 1 * (2 + per))


def dw_build_stream(g, op, args: dict) -> np.ndarray:
    w = _dw_weights(g, op)
    c = w.shape[1]
    rq, mc, ec, kc = _rq_constants(op, c, _bias64(g, op, c))
    assert rq == args["RQ"]

    def k_words(ch):
        return [kc[ch] & 0xFFFFFFFF, kc[ch] >> 32]

    def consts(chs):
        out = [np.array([v for ch in chs for v in k_words(ch)], dtype=np.uint64).astype(np.uint32).view(np.int32)
               .astype(np.int64)]
        if args["UNIFORM"] is None:
            m = mc[chs]
            out.append(np.where(m >= 1 << 31, m - (1 << 32), m))
            if not args["E0"]:
                out.append(ec[chs])
        return out

    parts = []
    for p in range(c // 2):
        parts.append(pack16(w[:, 2 * p], w[:, 2 * p + 1]).astype(np.int64))
        parts += consts([2 * p, 2 * p + 1])
    if c % 2:
        parts.append(w[:, c - 1])
        parts += consts([c - 1])
    stream = finish_stream(parts)
    assert stream.size == c // 2 * args["GW2"] + c % 2 * args["GW1"]
    return stream


def dw_reorder(g, op):
    return add_stream(g, op, dw_build_stream(g, op, dw_template_args(g, op)), "dw16_stream")


def dw_variant(args: dict) -> str:
    return variant_name(k=f"{args['KH']}x{args['KW']}", s=f"{args['SH']}x{args['SW']}",
                        d=f"{args['DH']}x{args['DW']}" if args["DH"] > 1 or args["DW"] > 1 else None,
                        p=f"{args['PT']}x{args['PL']}", c=args["C"], cls=len(args["CLASSES"]),
                        a="64" if args["ACC64"] else None, rq="u" if args["UNIFORM"] else None) + "__dsp"


def dw_emit(ctx):
    op = ctx.op
    args = dw_template_args(ctx.g, op)
    fn = ctx.fn(variant=dw_variant(args), **args)
    x, y = ctx.inp(0), ctx.out()
    ctx.call(f"{fn}({ctx.ptr(x.id)}, {ctx.ptr(op.stream)}, {ctx.ptr(y.id)});")


DW_ENTRY = KernelEntry(name="depthwise_conv2d_s16_dsp", ops=("DEPTHWISE_CONV_2D",), template=DW_TEMPLATE,
                       emit=dw_emit, reject=dw_reject, template_args=dw_template_args, priority=10, generic=False,
                       requires=frozenset({"dsp"}), reorder=dw_reorder)
