"""DEPTHWISE_CONV_2D (depth multiplier 1) for cores without the DSP extension (Cortex-M0+, Cortex-M3).

How it works
1. Channel-planar: per channel the input plane (with its padding, which reads as the input zero point) goes to a
   scratch plane of int32 "pixel-pair" words P[r][j] = v[r][j] + 65536 * v[r][j + SW] (v = the padded input):
   output pixels ox, ox + 1 of one row read padded columns ox*SW + kx and ox*SW + SW + kx, one word holds both.
   When that leaves fewer unpaired pixels (odd OW, e.g. KWS's 25x5), the pair is two rows instead (VERT):
   P[r][j] = v[r][j] + 65536 * v[r + SH][j], pixels (oy, ox), (oy + 1, ox).
2. Lane-paired multiply (as scalar.py, with the pixels in the lanes): P * w = v0 w + 65536 v1 w exactly; two taps
   p = P_a w_a + P_b w_b = S0 + 65536 S1 with |S0|, |S1| <= 2 * 128 * 127 < 2^15, split exactly:
   lo = (int16)p, hi = (p - lo) >> 16. So one MULS is two MACs (one per pixel), one split per two taps.
3. The input zero point is folded into the bias (bias - zp * sum(w)); padded taps read zp from the plane, so the
   fold is exact at every border and the tap loop has no bounds checks. The plane's padding words are written
   once per call (they are the same for every channel); per channel only the words with an inside lane are
   rebuilt, straight from the NHWC input, in runs whose lanes' insideness is a compile-time constant.
   A channel's accumulators go to the scratch, then one loop requantizes them (constants hoisted).
4. Every size is a compile-time constant and the taps are unrolled; requantization as scalar.py ("splitz": its
   32-bit-only "split" form with the output zero point folded into the rounding term, "wide", or TFLite's
   generic form).
5. `reject` refuses DSP cores and the portable host build (core None), dilation, depth multipliers > 1, kernels
   above 5x5, strides above 2, weights of -128 and planes above MAX_SCRATCH bytes.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from specializer.kernels import conv as generic_conv
from specializer.registry import KernelEntry

from .common import add_stream, bias_of, call_stream_kernel, clamp_of, finish_stream, input_span, variant_name
from .depthwise import _geometry
from .scalar import INT32, SPLIT_LIMIT, _core_reject, rqw_form

TEMPLATE = str(Path(__file__).resolve().parent / "depthwise_s8_scalar.c.in")
MAX_SCRATCH = 24 * 1024


def _weights(g, op) -> np.ndarray:
    """(taps, C) int64."""
    w = g.t(op.inputs[1])
    return w.data.astype(np.int64).reshape(-1, w.shape[3])


def _folded(g, op):
    w = _weights(g, op)
    zp = g.t(op.inputs[0]).quant.zero_point[0]
    bias = bias_of(g, op, w.shape[1])
    return w, bias - zp * w.sum(axis=0), bias, zp


def _vertical(geo: dict) -> bool:
    """Pair pixels of two rows (oy, oy + 1) when that leaves fewer odd ones than pairing columns (ox, ox + 1)."""
    return geo["OW"] * ((geo["OH"] + 1) // 2) < geo["OH"] * ((geo["OW"] + 1) // 2)


def _runs(n: int, inside) -> tuple:
    """Runs (i0, i1, lo inside, hi inside) of equal insideness over 0..n-1, runs with neither left out."""
    runs = []
    for i in range(n):
        cls = inside(i)
        if runs and runs[-1][2:] == cls:
            runs[-1][1] = i + 1
        else:
            runs.append([i, i + 1, *cls])
    return tuple(tuple(r) for r in runs if r[2] or r[3])


def _plane(geo: dict) -> dict:
    """The pixel-pair plane: PH rows x PW words, P[r][j] = v(r, j) + 65536 v(r + SH, j) (VERT) or
    v(r, j) + 65536 v(r, j + SW), v = the padded input. Its padding words (no lane inside the input) are the same
    for every channel. ROWRUNS (VERT): runs of rows by (lo lane inside, hi lane inside) over the inside columns
    COLS; else COLSEGS: runs of columns of the inside rows ROWS."""
    ph, pw = (geo["OH"] - 1) * geo["SH"] + geo["KH"], (geo["OW"] - 1) * geo["SW"] + geo["KW"]
    ih, iw, pt, pl, sh, sw = geo["IH"], geo["IW"], geo["PT"], geo["PL"], geo["SH"], geo["SW"]
    vert = _vertical(geo)
    rows = (pt, min(ph, pt + ih))
    cols = (pl, min(pw, pl + iw))
    rowruns = _runs(ph, lambda r: (pt <= r < pt + ih, pt <= r + sh < pt + ih)) if vert else ()
    colsegs = () if vert else _runs(pw, lambda j: (pl <= j < pl + iw, pl <= j + sw < pl + iw))
    return dict(VERT=vert, PH=ph, PW=pw, RS=pw, WORDS=ph * pw, ROWS=rows, COLS=cols, ROWRUNS=rowruns,
                COLSEGS=colsegs)


def _scratch(geo: dict) -> int:
    """The plane, then one channel's accumulators."""
    return 4 * (_plane(geo)["WORDS"] + geo["OH"] * geo["OW"])


def reject(g, op, core):
    why = _core_reject(core) or generic_conv._dw_reject(g, op, core)
    if why:
        return why
    x, y = g.t(op.inputs[0]), g.t(op.outputs[0])
    if x.shape[3] != y.shape[3]:
        return "depth multiplier > 1 (generic kernel)"
    geo = _geometry(g, op)
    if geo["DH"] != 1 or geo["DW"] != 1:
        return "dilation (generic kernel)"
    if geo["KH"] > 5 or geo["KW"] > 5 or geo["SH"] > 2 or geo["SW"] > 2:
        return "kernel above 5x5 or stride above 2 (generic kernel)"
    if _scratch(geo) > MAX_SCRATCH:
        return f"pixel-pair plane of {_scratch(geo)} bytes above {MAX_SCRATCH}"
    w, folded, _, _ = _folded(g, op)
    if w.min(initial=0) < -127:
        return "a weight of -128 (the paired lanes need |w| <= 127)"
    if (np.abs(folded) + 128 * np.abs(w).sum(axis=0)).max(initial=0) >= INT32:
        return "bias - zp * sum(w) plus the taps does not fit int32"
    return None


def _requant(g, op):
    """As scalar._requant, for the depthwise weights: ("splitz", [ml, 2 mh, k + (out_zp << e), e]),
    ("wide", [m, k, e]) or ("generic", [multiplier, shift])."""
    w, folded, bias, zp = _folded(g, op)
    aw = np.abs(w).sum(axis=0)
    bound = np.minimum(np.abs(bias) + input_span(zp) * aw, np.abs(folded) + 128 * aw)
    mult, shift, rqw = rqw_form(op, bound)
    if rqw is not None:
        m, el, head = rqw
        # "splitz": scalar.py's 32-bit-only spz_rqw (|acc| < 2^24) with the output zero point folded into the
        # rounding term: ((x + k + s) >> e) + zp = (x + k + (zp << e) + s) >> e, exact inside int32 (always: a
        # live channel with |acc| < 2^24 has e <= 23, so |zp << e| < 2^30)
        zpo = int(g.t(op.outputs[0]).quant.zero_point[0])
        kz = (np.int64(1) << (el - 1)) + (np.int64(zpo) << el)
        if bool(np.all(bound < SPLIT_LIMIT) and np.all(head + 1 + np.abs(kz) < INT32)):
            return "splitz", [m & 0xFFFF, 2 * (m >> 16), kz, el]
        return "wide", [m, np.int64(1) << (el - 1), el]
    return "generic", [mult, shift]


def template_args(g, op) -> dict:
    geo = _geometry(g, op)
    lo, hi = clamp_of(op)
    mode, consts = _requant(g, op)
    pl = _plane(geo)
    taps = tuple((ky * pl["RS"] + kx) for ky in range(geo["KH"]) for kx in range(geo["KW"]))
    return dict(geo, **pl, TAPS=taps, T=len(taps), NRQ=len(consts), RQ=mode, ACT_MIN=max(lo, -128),
                ACT_MAX=min(hi, 127), CLAMP=lo > -128 or hi < 127)


def build_stream(g, op, args: dict) -> np.ndarray:
    w, folded, _, _ = _folded(g, op)
    _, consts = _requant(g, op)
    per = [folded.reshape(1, -1), w] + [np.asarray(q, dtype=np.int64).reshape(1, -1) for q in consts]
    return finish_stream([np.concatenate(per, axis=0).T])  # per channel: bias, taps, requantization


def reorder(g, op):
    return add_stream(g, op, build_stream(g, op, template_args(g, op)), "scalar_dw_stream")


def scratch_bytes(g, op) -> int:
    return _scratch(_geometry(g, op))


def variant(a: dict) -> str:
    return variant_name(k=f"{a['KH']}x{a['KW']}", s=f"{a['SH']}x{a['SW']}", p=f"{a['PT']}x{a['PL']}",
                        c=a["C"], v="" if a["VERT"] else None,
                        rq=dict(splitz="z").get(a["RQ"], a["RQ"][0])) + "__scalar"


def emit(ctx):
    args = template_args(ctx.g, ctx.op)
    call_stream_kernel(ctx, ctx.fn(variant=variant(args), **args))


ENTRY = KernelEntry(name="depthwise_s8_scalar", ops=("DEPTHWISE_CONV_2D",), template=TEMPLATE, emit=emit,
                    reject=reject, template_args=template_args, scratch_bytes=scratch_bytes, priority=5,
                    generic=False, reorder=reorder)
