"""DEPTHWISE_CONV_2D on DSP cores: NHWC, 4 channels per word, SMLABB/SMLATT, per-border-class unrolled code.

How it works
1. `reject` takes depth multiplier 1 with a channel count that is a multiple of 4 (a single input channel goes
   to the conv kernel; anything else to the generic kernel).
2. `classes_and_segments` splits the output into rectangles whose pixels see the same window of inside taps;
   each distinct window (at most MAX_CLASSES of them) gets its own unrolled function in the template, the rest
   share a tap-pointer-table function (BORDER = "table" keeps only the interior unrolled).
3. The stream per group of 4 channels: bias - zp_in * sum(w) (the padding reads zp_in, so the fold is exact),
   two int16 weight words per tap, the requantization constants; x2 for the fast requantization.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from specializer.kernels import conv as generic_conv
from specializer.ops import explicit_padding
from specializer.registry import KernelEntry

from specializer.kernels.overlap import NONE, first_tap, gap as overlap_gap

from .common import add_stream, bias_of, clamp_of, finish_stream, pack16, requant_constants, variant_name

TEMPLATE = str(Path(__file__).resolve().parent / "depthwise_s8_dsp.c.in")
MAX_CLASSES = 9
INT32 = 1 << 31


def _geometry(g, op) -> dict:
    x, w, y = g.t(op.inputs[0]), g.t(op.inputs[1]), g.t(op.outputs[0])
    a = op.attrs
    kh, kw = w.shape[1], w.shape[2]
    top, _, left, _ = explicit_padding(a, x.shape[1:3], y.shape[1:3], (kh, kw))
    return dict(B=x.shape[0], IH=x.shape[1], IW=x.shape[2], C=x.shape[3], OH=y.shape[1], OW=y.shape[2], KH=kh,
                KW=kw, SH=a.stride_h, SW=a.stride_w, DH=a.dilation_h, DW=a.dilation_w, PT=top, PL=left)


def _ranges(n_out, n_in, k, s, d, pad):
    """Per output index: the (first, end) kernel taps inside the input; then the runs of equal windows."""
    wins = []
    for o in range(n_out):
        inside = [t for t in range(k) if 0 <= o * s - pad + t * d < n_in]
        wins.append((inside[0], inside[-1] + 1) if inside else (0, 0))
    runs = []
    for o, wdw in enumerate(wins):
        if runs and runs[-1][2] == wdw:
            runs[-1][1] = o + 1
        else:
            runs.append([o, o + 1, wdw])
    return runs


def classes_and_segments(geo: dict, border: str = "classes"):
    rows = _ranges(geo["OH"], geo["IH"], geo["KH"], geo["SH"], geo["DH"], geo["PT"])
    cols = _ranges(geo["OW"], geo["IW"], geo["KW"], geo["SW"], geo["DW"], geo["PL"])
    full = (0, geo["KH"], 0, geo["KW"])
    windows = []
    for _, _, (r0, r1) in rows:
        for _, _, (c0, c1) in cols:
            if (r0, r1, c0, c1) not in windows:
                windows.append((r0, r1, c0, c1))
    if border == "classes" and len(windows) <= MAX_CLASSES:
        classes = windows
    else:
        classes = [full] if full in windows else []
    segs = []
    for oy0, oy1, (r0, r1) in rows:
        for ox0, ox1, (c0, c1) in cols:
            wdw = (r0, r1, c0, c1)
            segs.append((oy0, oy1, ox0, ox1, classes.index(wdw) if wdw in classes else -1))
    return tuple(classes), tuple(segs)


def _folded(g, op, scale: int):
    w = g.t(op.inputs[1]).data.astype(np.int64).reshape(-1, g.t(op.inputs[1]).shape[3])  # (taps, C)
    zp = g.t(op.inputs[0]).quant.zero_point[0]
    bias = bias_of(g, op, w.shape[1]) - zp * w.sum(axis=0)
    return scale * bias, scale * w


def _requant(g, op):
    w = g.t(op.inputs[1]).data.astype(np.int64).reshape(-1, g.t(op.inputs[1]).shape[3])
    zp = g.t(op.inputs[0]).quant.zero_point[0]
    folded = bias_of(g, op, w.shape[1]) - zp * w.sum(axis=0)
    # two bounds on the same accumulator: TFLite's view (x - zp) and the kernel's (raw x from the folded bias)
    span = max(127 - zp, zp + 128)
    bound = np.minimum(np.abs(bias_of(g, op, w.shape[1])) + span * np.abs(w).sum(axis=0),
                       np.abs(folded) + 128 * np.abs(w).sum(axis=0))
    rq = requant_constants(op, bound, g.t(op.outputs[0]).quant.zero_point[0])
    return rq, folded


def reject(g, op, core):
    why = generic_conv._dw_reject(g, op, core)
    if why:
        return why
    x, y = g.t(op.inputs[0]), g.t(op.outputs[0])
    if x.shape[3] != y.shape[3]:
        return "depth multiplier > 1 (generic kernel)"
    if x.shape[3] % 4:
        return f"{x.shape[3]} channels: not a multiple of 4 (generic kernel)"
    _, folded = _requant(g, op)
    if np.abs(folded).max(initial=0) >= INT32:
        return "bias - zp * sum(w) does not fit int32"
    return None


def can_be_inplace(geo: dict) -> bool:
    """Same-size output (stride 1, SAME padding, no dilation): the in-place window variant applies."""
    return (geo["OH"], geo["OW"], geo["SH"], geo["SW"], geo["DH"], geo["DW"]) == (geo["IH"], geo["IW"], 1, 1, 1, 1)


def template_args(g, op) -> dict:
    geo = _geometry(g, op)
    lo, hi = clamp_of(op)
    rq, _ = _requant(g, op)
    ip = bool(dict(op.kernel.variant).get("IP", False)) if op.kernel is not None else False
    if ip and can_be_inplace(geo):
        full = (0, geo["KH"], 0, geo["KW"])
        rowpx = geo["IW"] + max(geo["PL"], geo["KW"] - 1 - geo["PL"])  # rows share their border pixels
        winbytes = ((geo["KH"] - 1) * rowpx + geo["IW"] + geo["KW"] - 1) * geo["C"]
        return dict(geo, IP=True, ROWPX=rowpx, WINBYTES=winbytes, CLASSES=(full,), SEGS=(), ROWSEGS=(), INTERIOR=0,
                    PAIR=geo["OW"] >= 2, RQ=rq.mode, ACT_MIN=lo, ACT_MAX=hi, CLAMP=lo > -128 or hi < 127)
    classes, segs = classes_and_segments(geo)
    full = (0, geo["KH"], 0, geo["KW"])
    interior = classes.index(full) if full in classes else -1
    pair = interior >= 0 and any(s[4] == interior and s[3] - s[2] >= 2 for s in segs)
    rowsegs = []
    for oy0, oy1, ox0, ox1, ci in segs:
        if not rowsegs or rowsegs[-1][:2] != (oy0, oy1):
            rowsegs.append((oy0, oy1, []))
        rowsegs[-1][2].append((ox0, ox1, ci))
    rowsegs = tuple((a, b, tuple(c)) for a, b, c in rowsegs)
    return dict(geo, IP=False, ROWPX=geo["IW"], CLASSES=classes, SEGS=segs, ROWSEGS=rowsegs, INTERIOR=interior,
                PAIR=pair,
                RQ=rq.mode, ACT_MIN=lo, ACT_MAX=hi, CLAMP=lo > -128 or hi < 127)


def build_stream(g, op, args: dict) -> np.ndarray:
    rq, _ = _requant(g, op)
    scale = 2 if rq.mode == "fast" else 1
    bias, w = _folded(g, op, scale)
    c = w.shape[1]
    parts = []
    for c0 in range(0, c, 4):
        parts.append(bias[c0:c0 + 4])
        wa = pack16(w[:, c0], w[:, c0 + 2]).astype(np.int64)
        wb = pack16(w[:, c0 + 1], w[:, c0 + 3]).astype(np.int64)
        parts += [wa, wb]
        parts += rq.channels(c0, c0 + 4)
    return finish_stream(parts)


def reorder(g, op):
    return add_stream(g, op, build_stream(g, op, template_args(g, op)), "dw_stream")


def variant(args: dict) -> str:
    return variant_name(k=f"{args['KH']}x{args['KW']}", s=f"{args['SH']}x{args['SW']}",
                        d=f"{args['DH']}x{args['DW']}" if args["DH"] > 1 or args["DW"] > 1 else None,
                        p=f"{args['PT']}x{args['PL']}", c=args["C"], cls=len(args["CLASSES"]),
                        ip="" if args["IP"] else None, rq=args["RQ"][0]) + "__dsp"


def variants(g, op) -> list:
    """Out of place (border classes) or in place (window in the scratch: the output may take the input's bytes;
    the row copies cost a little). Equal flash; choose_variants takes in place where the layer sets the RAM peak."""
    from specializer.passes.choose_variants import Variant

    geo = _geometry(g, op)
    macs = geo["B"] * geo["OH"] * geo["OW"] * geo["C"] * geo["KH"] * geo["KW"]
    base = macs * 3.5
    out = [Variant({"IP": False}, base, 0)]
    if can_be_inplace(geo):
        copies = geo["B"] * geo["OH"] * geo["KH"] * (geo["IW"] + geo["KW"] - 1) * geo["C"] * 0.6
        out.append(Variant({"IP": True}, base + copies, 0, inplace=True))
    return out


def scratch_bytes(g, op) -> int:
    a = template_args(g, op)
    return a["WINBYTES"] if a["IP"] else 0


def inplace(g, op) -> tuple:
    return (0,) if template_args(g, op)["IP"] else ()


def overlap(g, op) -> tuple:
    """Out-of-place variant: pixels are visited in raster order (pairs of interior pixels together), each
    pixel's channel groups read then written in turn; the output may overlap the input at `overlap.gap(own=True)`."""
    a = template_args(g, op)
    if a["IP"]:
        return ()
    ih, iw, c = a["IH"], a["IW"], a["C"]

    steps = []
    for b in range(a["B"]):
        for oy0, oy1, cols in a["ROWSEGS"]:
            for oy in range(oy0, oy1):
                iy = first_tap(oy, a["SH"], a["PT"], a["KH"], a["DH"], ih)
                for ox0, ox1, ci in cols:
                    ox = ox0
                    while ox < ox1:
                        n = 2 if (a["PAIR"] and ci == a["INTERIOR"] and ox + 1 < ox1) else 1
                        ix = first_tap(ox, a["SW"], a["PL"], a["KW"], a["DW"], iw)
                        read = NONE if iy is None or ix is None else ((b * ih + iy) * iw + ix) * c
                        steps.append((((b * a["OH"] + oy) * a["OW"] + ox + n) * c, read))
                        ox += n
    d = overlap_gap(steps, own=True)
    return ((0, d),) if d is not None else ()


def emit(ctx):
    op = ctx.op
    args = template_args(ctx.g, op)
    fn = ctx.fn(variant=variant(args), **args)
    x, y = ctx.inp(0), ctx.out()
    extra = f", {ctx.scratch('int8_t')}" if args["IP"] else ""
    ctx.call(f"{fn}({ctx.ptr(x.id)}, {ctx.ptr(op.stream)}, {ctx.ptr(y.id)}, {x.quant.zero_point[0]}, "
             f"{y.quant.zero_point[0]}{extra});")


ENTRY = KernelEntry(name="depthwise_s8_dsp", ops=("DEPTHWISE_CONV_2D",), template=TEMPLATE, emit=emit,
                    reject=reject, template_args=template_args, scratch_bytes=scratch_bytes, priority=10,
                    generic=False, requires=frozenset({"dsp"}), reorder=reorder, variants=variants, inplace=inplace,
                    overlap=overlap)
