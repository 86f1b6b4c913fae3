"""CONV_2D (and DEPTHWISE_CONV_2D with one input channel) on DSP cores: im2col of two pixels + 2 x OCB SMLAD GEMM.

How it works
1. `reject` takes what the generic kernel takes (it is the same layer semantics), minus grouped convolution and
   layers whose column would not fit the 12-bit immediate offsets; a depthwise layer with a single input
   channel is a convolution with depth_multiplier output channels and one input channel, and runs here too.
2. `template_args` fixes every size of the layer in the C template (conv2d_s8_dsp.c.in), plus the variant
   choices: OCB output channels per block, UNROLL column words per K-loop iteration, the requantization form.
3. `reorder` builds the layer's constant stream in exactly the order the kernel reads it: per channel block the
   bias x2, the weights x2 as int16 pairs in the column order of the im2col (see the template), then the
   requantization constants; the original weights and bias are no longer emitted.
4. `emit` instantiates the template (equal arguments share one function) and calls it with the arena pointers,
   the stream, the im2col scratch and the two zero points.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from specializer.kernels import conv as generic_conv
from specializer.kernels.overlap import NONE, first_tap, gap as overlap_gap
from specializer.ops import explicit_padding
from specializer.registry import KernelEntry

from .common import (POS, add_stream, bias_of, call_stream_kernel, clamp_of, finish_stream, grouped, input_span,
                     interleave, pack8, pack16, requant_constants, variant_name)

TEMPLATE = str(Path(__file__).resolve().parent / "conv2d_s8_dsp.c.in")


def _weights_ohwi(g, op) -> np.ndarray:
    w = g.t(op.inputs[1]).data.astype(np.int64)
    if op.kind == "DEPTHWISE_CONV_2D":  # 1 x KH x KW x M with one input channel == M x KH x KW x 1
        return w.transpose(3, 1, 2, 0)
    return w


def reject(g, op, core):
    if op.kind == "CONV_2D":
        why = generic_conv._conv_reject(g, op, core) or grouped(g, op)
        if why:
            return why
    else:
        why = generic_conv._dw_reject(g, op, core)
        if why:
            return why
        if g.t(op.inputs[0]).shape[3] != 1:
            return "depthwise with more than one input channel (depthwise kernels)"
    return None


def _geometry(g, op) -> dict:
    """The layer's fixed sizes (independent of the variant)."""
    x, y = g.t(op.inputs[0]), g.t(op.outputs[0])
    w = _weights_ohwi(g, op)
    oc, kh, kw, ic = w.shape
    a = op.attrs
    top, _, left, _ = explicit_padding(a, x.shape[1:3], y.shape[1:3], (kh, kw))
    dense = a.dilation_w == 1
    run = kw * ic if dense else ic
    return dict(B=x.shape[0], IH=x.shape[1], IW=x.shape[2], IC=ic, OH=y.shape[1], OW=y.shape[2], OC=oc, KH=kh,
                KW=kw, SH=a.stride_h, SW=a.stride_w, DH=a.dilation_h, DW=a.dilation_w, PT=top, PL=left,
                DENSE=dense, RUN=run, NRUN=kh if dense else kh * kw, RUN4=run // 4 * 4,
                NPIX=y.shape[1] * y.shape[2])


# reductions up to this deep loop over the row's pixel pairs inside the GEMM function (one call per row, not per
# pair: the saved and restored registers cost ~25 cycles a call); deeper ones keep a call per pair, where the
# loop's extra live values make gcc spill in the blocks (looping every layer: ResNet-8 +2.6%, CIFAR-10 +1.5%;
# the bench ELF at -O3, 2026-11-30)
PAIR_LOOP_MAX_K = 48


def _layout(geo: dict, im: str, wfmt: str, seg: int = 0) -> dict:
    """Column layout of a variant: words per run and pixel, run offsets, pixel-pair distance, row buffer."""
    i8 = wfmt in ("i8", "x8")
    runw = (geo["RUN"] + 1) // 2
    runw += runw % 2 if i8 else 0
    ic, kw = geo["IC"], geo["KW"]
    out = dict(IM=im, WFMT=wfmt, RUNW=runw, NP=geo["NRUN"] * runw, WSTEP=2 if i8 else 1,
               PLOOP=geo["KH"] * geo["KW"] * ic <= PAIR_LOOP_MAX_K and im != "im2col")
    if im == "im2col":
        # the two pixels' runs interleave (run r of pixel p at word (2r + p) * runw): small load offsets
        out.update(ORDER="perm", SEGS=tuple((8 * r * runw, runw) for r in range(geo["NRUN"])), PX2B=4 * runw,
                   RROW=0, RWB=0, PAIRS=geo["NPIX"] >= 2, SINGLES=geo["NPIX"] % 2 == 1)
    else:
        # halfwords a row must hold: every tap of the last output pixel, its run's read-ahead, plus slack
        # (seg: a buffer row holds one segment of `seg` output pixels, not the whole row)
        need = ((min(seg or geo["OW"], geo["OW"]) - 1) * geo["SW"] + (kw - 1) * geo["DW"] + 1) * ic + 2 * runw + 4
        rrow = need if seg else max(need, (geo["PL"] + geo["IW"]) * ic + 2)
        rwb = (2 * rrow + 3) // 4 * 4
        if geo["DENSE"]:
            segs = tuple((ky * rwb, runw) for ky in range(geo["KH"]))
        else:
            segs = tuple((ky * rwb + 2 * kx * geo["DW"] * ic, runw) for ky in range(geo["KH"]) for kx in range(kw))
        out.update(ORDER="perm" if ic % 4 == 0 else "natural", SEGS=segs, PX2B=2 * geo["SW"] * ic, RROW=rrow,
                   RWB=rwb, PAIRS=geo["OW"] >= 2, SINGLES=geo["OW"] % 2 == 1)
    return out


def _acc_bound(g, op) -> np.ndarray:
    w = _weights_ohwi(g, op)
    x = g.t(op.inputs[0])
    span = input_span(x.quant.zero_point[0])
    return np.abs(bias_of(g, op, w.shape[0])) + span * np.abs(w).reshape(w.shape[0], -1).sum(axis=1)


def _acc_range(g, op) -> tuple[np.ndarray, np.ndarray]:
    """Per output channel, the smallest and largest accumulator TFLite can reach (bias + sum w (x - zp))."""
    w = _weights_ohwi(g, op)
    w = w.reshape(w.shape[0], -1)
    zp = g.t(op.inputs[0]).quant.zero_point[0]
    a, b = w * (-128 - zp), w * (127 - zp)
    bias = bias_of(g, op, w.shape[0])
    return bias + np.minimum(a, b).sum(axis=1), bias + np.maximum(a, b).sum(axis=1)


def _requant(g, op):
    """The requantization plan; channels whose output is constant are folded (`common.constant_channels`): the
    stream then holds zero bias and weights for them."""
    y = g.t(op.outputs[0])
    return requant_constants(op, _acc_bound(g, op), y.quant.zero_point[0], acc_range=_acc_range(g, op))


def default_variant(geo: dict, wfmt: str = "i16", im: str = "im2col", full: bool = None) -> dict:
    """Block and unroll for a weight format: 2x4 with int16 weights, 2x2 with int8 weights (registers).

    full: every run of the column unrolled completely (immediate offsets, no loop register: gcc then keeps all
    accumulators in registers); else runs loop over LOOP_UNROLL-step bodies (less code). Default: full when the
    column takes at most FULL_UNROLL steps."""
    lay = _layout(geo, im, wfmt)
    longest = max(w for _, w in lay["SEGS"]) // lay["WSTEP"]
    if full is None:
        full = lay["NP"] // lay["WSTEP"] <= FULL_UNROLL
    unroll = longest if full else min(longest, LOOP_UNROLL)
    return dict(WFMT=wfmt, IM=im, OCB=min(4 if wfmt == "i16" else 2, geo["OC"]), UNROLL=max(unroll, 1))


X8_LIMIT = 1 << 23  # the x8 form keeps 256 x the accumulator in an int32


def x8_ok(g, op, geo: dict) -> bool:
    """The x8 weight format (raw int8 weight words, columns in the A/B form, zero point in the bias): input
    channels a multiple of 4, and 256 x every reachable accumulator (raw inputs, folded bias) and 256 x the
    per-channel start constant inside int32 (the two bounds summed: conservative); folded constant channels are
    exempt (zero bias and weights)."""
    if geo["IC"] % 4:
        return False
    w = _weights_ohwi(g, op).reshape(geo["OC"], -1)
    zp = g.t(op.inputs[0]).quant.zero_point[0]
    folded = bias_of(g, op, geo["OC"]) - zp * w.sum(axis=1)
    bound = np.abs(folded) + 128 * np.abs(w).sum(axis=1) + 127 * np.abs(w).sum(axis=1)
    const = _requant(g, op).const
    if const is not None:  # folded channels: zero bias and weights
        bound = np.where(const, 0, bound)
    return bool(np.all(bound < X8_LIMIT))


FULL_UNROLL = 96  # default limit of a fully unrolled column (steps)
MAX_FULL_UNROLL = 288  # beyond this, full unrolling is not even offered
LOOP_UNROLL = 24


def _step_instrs(wfmt: str, n: int, npx: int) -> int:
    """Instructions of one K step of a block of n channels and npx pixels: column loads, then per channel its
    weight load, unpacking (x8: one AND, i8: two SXTB16) and SMLADs."""
    if wfmt == "i16":
        return npx + n * (1 + npx)
    return 2 * npx + n * (1 + (1 if wfmt == "x8" else 2) + 2 * npx)


def code_bytes(geo: dict, var: dict) -> int:
    """Flash of the kernel's code: the GEMM bodies (one per block size: full blocks and the tail, each for a
    pixel pair and, where an odd count needs it, a single pixel) at ~4 bytes per instruction, plus the column
    conversion and the driver. Calibrated on the x8 layers of ResNet-8 (within ~5%)."""
    lay = _layout(geo, var["IM"], var["WFMT"])
    steps = sum(min(w // lay["WSTEP"], var["UNROLL"]) + (w // lay["WSTEP"]) % var["UNROLL"] for _, w in lay["SEGS"])
    ocb = min(var["OCB"], geo["OC"])
    sizes = [ocb] if geo["OC"] >= ocb else []
    if geo["OC"] % ocb:
        sizes.append(geo["OC"] % ocb)
    npxs = [2] if geo["NPIX"] >= 2 else []
    if (geo["NPIX"] % 2) if var["IM"] == "im2col" else (geo["OW"] % 2):
        npxs.append(1)
    tu = tail_unroll(dict(var, OCB=ocb))
    tsteps = sum(min(w // lay["WSTEP"], tu) + (w // lay["WSTEP"]) % tu for _, w in lay["SEGS"])
    instrs = sum((steps if i == 0 else tsteps) * _step_instrs(var["WFMT"], n, p) + 60 + 12 * n
                 for i, n in enumerate(sizes) for p in npxs)
    return int(4 * instrs + 300)


def template_args(g, op) -> dict:
    geo = _geometry(g, op)
    lo, hi = clamp_of(op)
    chosen = dict(op.kernel.variant) if op.kernel is not None else {}
    var = default_variant(geo, chosen.get("WFMT", "i16"), chosen.get("IM", "im2col"))
    var.update(chosen)
    var["RING"] = bool(var.get("RING", False)) and var["IM"] == "rows" and geo["DH"] == 1
    var["SEG"] = int(var.get("SEG", 0)) if seg_ok(geo, var) else 0
    var["OCB"] = min(var["OCB"], geo["OC"])
    # BZ: the caller zeroed the buffer's border bytes once (a band calling the same layout again and again)
    var["BZ"] = bool(var.get("BZ", False)) and var["IM"] == "rows" and not var["RING"] and not var["SEG"] \
        and var["WFMT"] != "x8"
    rq = _requant(g, op)
    lay = {k: v for k, v in _layout(geo, var["IM"], var["WFMT"], var["SEG"]).items() if k not in var}
    if var["SEG"]:
        lay["SEGLIST"] = segments(geo, var["SEG"])
    lay["PARTS"] = k_parts(lay["SEGS"], lay["WSTEP"], var["UNROLL"])
    lay["TUNROLL"] = tail_unroll(var)
    lay["TPARTS"] = k_parts(lay["SEGS"], lay["WSTEP"], lay["TUNROLL"])
    nslot = (2 * geo["KH"] - 1) if var["RING"] else geo["KH"]
    return dict(geo, **var, **lay, NSLOT=nslot, RQ=rq.mode, ACT_MIN=lo, ACT_MAX=hi,
                NFULL=geo["OC"] // var["OCB"], TAIL=geo["OC"] % var["OCB"], CLAMP=lo > -128 or hi < 127, POS=POS)


def seg_ok(geo: dict, var: dict) -> bool:
    """Segments (SEG output pixels per buffer row): rows variant, no ring, int16 columns of whole 4-channel words."""
    return (var.get("IM") == "rows" and not var.get("RING") and var.get("WFMT") in ("i16", "i8")
            and geo["IC"] % 4 == 0 and int(var.get("SEG", 0)) % 2 == 0 and int(var.get("SEG", 0)) < geo["OW"])


def segments(geo: dict, seg: int) -> tuple:
    """Per segment of an output row: (first output pixel, pixels, left pad pixels, first input pixel, input
    pixels, right pad pixels) of the input pixels its columns read."""
    out = []
    for ox0 in range(0, geo["OW"], seg):
        n = min(seg, geo["OW"] - ox0)
        px0 = ox0 * geo["SW"] - geo["PL"]
        width = (n - 1) * geo["SW"] + (geo["KW"] - 1) * geo["DW"] + 1
        lo, hi = max(px0, 0), min(px0 + width, geo["IW"])
        nreal = max(hi - lo, 0)
        lp = min(max(-px0, 0), width)
        out.append((ox0, n, lp, lo, nreal, width - lp - nreal))
    return tuple(out)


def tail_unroll(var: dict) -> int:
    """K steps per looped body of the tail block: 4 for x8 blocks of 3 (the tail is 1 or 2 channels of many, its
    own fully unrolled column would cost nearly half the kernel's code), else the blocks' own unroll."""
    return min(var["UNROLL"], 4) if var["WFMT"] == "x8" and var["OCB"] == 3 else var["UNROLL"]


def k_parts(segs, wstep: int, unroll: int) -> tuple:
    """The K loop over the column's runs as (pointer advance, looped, steps) parts: a run longer than `unroll`
    steps is a loop of `unroll`-step bodies (the pointer walks) plus an unrolled remainder (immediate offsets)."""
    parts, pos = [], 0
    for soff, words in segs:
        steps = words // wstep
        if steps > unroll:
            n = steps // unroll
            parts.append((soff - pos, True, n))
            pos = soff + n * unroll * 4 * wstep
            if steps % unroll:
                parts.append((0, False, steps % unroll))
        elif steps:
            parts.append((soff - pos, False, steps))
            pos = soff
    return tuple(parts)


def column_sources(geo: dict) -> list:
    """For each halfword of a pixel's column: (ky, kx, c) of the input tap it holds, or None (a zero pad)."""
    kh, kw, ic, run = geo["KH"], geo["KW"], geo["IC"], geo["RUN"]
    run4, runw = geo["RUN4"], geo["RUNW"]
    out = []
    for r in range(geo["NRUN"]):
        slots = [None] * (2 * runw)
        for i in range(run):
            if geo["DENSE"]:
                ky, kx, c = r, i // ic, i % ic
            else:
                ky, kx, c = r // kw, r % kw, i
            pos = ((i & ~3) | ((i & 1) << 1) | ((i >> 1) & 1)) if (i < run4 and geo["ORDER"] == "perm") else i
            slots[pos] = (ky, kx, c)
        out += slots
    assert len(out) == 2 * geo["NP"] and kh >= 1
    return out


def build_stream(g, op, args: dict) -> np.ndarray:
    w = _weights_ohwi(g, op)
    oc = w.shape[0]
    rq = _requant(g, op)
    if rq.const is not None:  # constant channels: the accumulator does not matter, keep it 0
        w = np.where(rq.const[:, None, None, None], 0, w)
    i8 = args["WFMT"] in ("i8", "x8")
    scale = 2 if (args["RQ"] == "fast" and not i8) else 1
    src = column_sources(args)
    cols = np.zeros((oc, len(src)), dtype=np.int64)
    for q, s in enumerate(src):
        if s is not None:
            cols[:, q] = scale * w[:, s[0], s[1], s[2]]
    if args["WFMT"] == "x8":  # the input bytes' order (q0, q2, q1, q3), the first and third offset by 128
        words = pack8(cols[:, 0::4] + 128, cols[:, 2::4], cols[:, 1::4] + 128, cols[:, 3::4]).astype(np.int64)
    elif i8:  # one word per two column words: bytes (q0, q2, q1, q3) so SXTB16 / SXTB16-ROR#8 give (q0, q1), (q2, q3)
        words = pack8(cols[:, 0::4], cols[:, 2::4], cols[:, 1::4], cols[:, 3::4]).astype(np.int64)
    else:
        words = pack16(cols[:, 0::2], cols[:, 1::2]).astype(np.int64)  # (oc, NP)
    b0 = bias_of(g, op, oc)
    if rq.const is not None:
        b0 = np.where(rq.const, 0, b0)
    bias = scale * b0
    if args["WFMT"] == "x8":  # 256 (bias - zp sum(w) + 127 * the weights of inputs 1 and 3 of each group)
        zp = g.t(op.inputs[0]).quant.zero_point[0]
        wf = w.reshape(oc, -1)
        bias = 256 * (b0 - zp * wf.sum(axis=1) + 127 * (cols[:, 2::4].sum(axis=1) + cols[:, 3::4].sum(axis=1)))
    parts = []
    ocb = args["OCB"]
    for c0 in range(0, oc, ocb):
        c1 = min(c0 + ocb, oc)
        parts.append(bias[c0:c1])
        parts.append(interleave(words[c0:c1]))
        parts += rq.channels(c0, c1)
    return finish_stream(parts)


def reorder(g, op):
    return add_stream(g, op, build_stream(g, op, template_args(g, op)), "conv_stream")


def scratch_bytes(g, op) -> int:
    a = template_args(g, op)
    return a["NSLOT"] * a["RWB"] if a["IM"] == "rows" else 2 * 4 * a["NP"]


def variant(args: dict) -> str:
    return variant_name(k=f"{args['KH']}x{args['KW']}", s=f"{args['SH']}x{args['SW']}",
                        d=f"{args['DH']}x{args['DW']}" if args["DH"] > 1 or args["DW"] > 1 else None,
                        p=f"{args['PT']}x{args['PL']}", c=f"{args['IC']}x{args['OC']}",
                        b=f"2x{args['OCB']}", w=args["WFMT"], u=args["UNROLL"], ring="" if args["RING"] else None,
                        sg=args.get("SEG") or None, bz="" if args.get("BZ") else None,
                        rq=args["RQ"][0]) + "__dsp"


def _block_cost(oc: int, ocb: int) -> float:
    """Relative x8 GEMM cost per channel of `oc` channels in blocks of `ocb` (and a tail block), pixel pairs."""
    full, tail = divmod(oc, ocb)
    inst = full * _step_instrs("x8", ocb, 2) + (_step_instrs("x8", tail, 2) if tail else 0)
    return inst / oc


def variants(g, op) -> list:
    """Column source (im2col, rows) x weights (int16: fast, 2x flash; int8) x unroll (full, looped), with cycle
    estimates and flash (stream + code) estimates for passes/choose_variants."""
    from specializer.passes.choose_variants import Variant

    geo = _geometry(g, op)
    pixels = geo["NPIX"] * geo["B"]
    outs = pixels * geo["OC"]
    params = 16 * geo["OC"]
    out = []
    x8 = x8_ok(g, op, geo)
    for im in ("im2col", "rows"):
        for wfmt in ("i16", "i8", "x8") if x8 else ("i16", "i8"):
            lay = _layout(geo, im, wfmt)
            total = lay["NP"] // lay["WSTEP"]
            seen = []
            for full, ocb in [(f, b) for f in ((True, False) if total <= MAX_FULL_UNROLL else (False,))
                              for b in ((2, 3) if wfmt == "x8" and geo["OC"] >= 3 else (None,))]:
                if ocb == 3 and full and total > FULL_UNROLL:
                    continue  # measured: 6 accumulators over a long straight column spill (slower than looped)
                if full and total * 4 * (ocb or (4 if wfmt == "i16" else 2)) > 4095:
                    continue  # weight offsets beyond LDR's 12-bit immediate: gcc adds address arithmetic
                var = default_variant(geo, wfmt, im, full)
                if ocb:
                    var["OCB"] = ocb
                if var in seen:  # a column short enough that the looped form is the full one
                    continue
                seen.append(dict(var))
                macs = outs * lay["NP"] * 2  # including the zero-weight pads the kernel multiplies
                factor = {"i16": 1.0, "i8": 1.25, "x8": 1.13}[wfmt]
                if wfmt == "x8":  # blocks of 3 share each column load among more channels (tail block: fewer)
                    factor *= _block_cost(geo["OC"], var["OCB"]) / _block_cost(geo["OC"], 2)
                cyc = macs * factor + outs * (12.0 if wfmt == "i16" else 13.0)
                if wfmt == "x8":  # the per-pixel sum over the column
                    cyc += pixels * lay["NP"] * 1.5
                if not full:  # loop control per looped body of a pixel pair (measured ~11 cycles, ResNet-8)
                    cyc += (outs / (2 * var["OCB"])) * (total / var["UNROLL"]) * 11
                if im == "im2col":
                    # measured: ~7 cycles per column word (conversion, calls) and ~20 per run (row checks, call):
                    # KWS's 1-channel first layer, 10 runs of 2 words per pixel, takes 370 cycles per pixel
                    cyc += pixels * (lay["NP"] * 7.0 + geo["NRUN"] * 20.0)
                else:  # KH rows converted per output row; single pixels at odd row ends run ~1.4x per MAC
                    cyc += geo["B"] * geo["OH"] * (geo["OW"] % 2) * geo["OC"] * lay["NP"] * 2 * 0.4
                    per_byte = CVT_PERM if geo["IC"] % 4 == 0 else CVT_NATURAL
                    conv_rows = geo["B"] * geo["OH"] * geo["KH"] * geo["IW"] * geo["IC"] * per_byte
                    if geo["DH"] == 1 and geo["KH"] > 1:  # RING: each input row once, plus the copies
                        rows_in = geo["B"] * min(geo["IH"], geo["OH"] * max(geo["SH"], geo["KH"]))
                        ring = rows_in * (geo["IW"] * geo["IC"] * per_byte + (2 * geo["IW"] * geo["IC"]) * 0.6)
                        code = code_bytes(geo, var) + 200
                        flash = 4 * geo["OC"] * total + params + code
                        out.append(Variant(dict(var, RING=True), cyc + ring, flash, code=code))
                    for seg in SEG_SIZES:  # row segments: KH short buffer rows (fuse_bands' sub-layers, tests)
                        sv = dict(var, SEG=seg)
                        if not seg_ok(geo, sv):
                            continue
                        width = sum((n - 1) * geo["SW"] + (geo["KW"] - 1) * geo["DW"] + 1
                                    for _, n, *_ in segments(geo, seg))
                        conv_seg = geo["B"] * geo["OH"] * geo["KH"] * (width * geo["IC"] * per_byte
                                                                      + 30 * len(segments(geo, seg)))
                        code = code_bytes(geo, var) + 60 * len(segments(geo, seg))
                        out.append(Variant(sv, cyc + conv_seg, 4 * geo["OC"] * total + params + code, code=code))
                    cyc += conv_rows
                code = code_bytes(geo, var)
                flash = 4 * geo["OC"] * total + params + code
                out.append(Variant(dict(var), cyc, flash, code=code))
    return out


SEG_SIZES = (2, 8)
# cycles per input byte of the row conversion to int16 columns. Perm order, 4 words per step: ResNet-8's two 16x16
# layers' drivers take 254,610 cycles for 98,304 converted bytes and ~1,000 calls (`benchmarks/func_profile.py
# mlperf_ic_resnet8.tflite --optimize time`, 2026-11-30). Natural order keeps its earlier figure: VWW's 3-channel
# first layer measures ~4, but at 4.0 micro_speech's banded convolution takes a slower form (449,864 -> 526,906)
CVT_PERM = 2.4
CVT_NATURAL = 1.25


def inplace(g, op) -> tuple:
    """A 1x1, stride-1, unpadded convolution with as many output as input channels may write its output over its
    input: every pixel's column is copied into the scratch (im2col) or the row buffer before that pixel's outputs
    are stored, and no later pixel reads it."""
    geo = _geometry(g, op)
    if (geo["KH"], geo["KW"], geo["SH"], geo["SW"], geo["PT"], geo["PL"]) == (1, 1, 1, 1, 0, 0) \
            and geo["IC"] == geo["OC"] and op.kind == "CONV_2D":
        return (0,)
    return ()


def overlap(g, op) -> tuple:
    """((0, D),): the output may overlap the dying input when input offset - output offset >= D. The kernel writes
    each pixel pair (im2col) or output row (rows) only after every read it needs, in increasing addresses, so D is
    the largest lead the writes take over the first input byte any later pixel still reads."""
    a = template_args(g, op)
    ih, iw, ic, oc = a["IH"], a["IW"], a["IC"], a["OC"]

    def start(oy, ox):  # first input byte the pixel reads (None: all taps in the padding)
        iy = first_tap(oy, a["SH"], a["PT"], a["KH"], a["DH"], ih)
        ix = first_tap(ox, a["SW"], a["PL"], a["KW"], a["DW"], iw)
        return (iy * iw + ix) * ic if iy is not None and ix is not None else None

    big = NONE
    steps = []  # (output bytes written once the step is done, first input byte the step reads)
    for b in range(a["B"]):
        if a["IM"] == "im2col":
            units = [list(range(p, min(p + 2, a["NPIX"]))) for p in range(0, a["NPIX"], 2)]
            for u in units:
                first = [start(p // a["OW"], p % a["OW"]) for p in u]
                first = [f for f in first if f is not None]
                steps.append(((b * a["NPIX"] + u[-1] + 1) * oc,
                              b * ih * iw * ic + min(first) if first else big))
        elif a.get("SEG"):  # segment by segment: a segment's outputs are written before the next one reads
            for oy in range(a["OH"]):
                iy = first_tap(oy, a["SH"], a["PT"], a["KH"], a["DH"], ih)
                for ox0, n, _, x0, nreal, _ in a["SEGLIST"]:
                    read = b * ih * iw * ic + (iy * iw + x0) * ic if iy is not None and nreal else big
                    steps.append(((b * a["NPIX"] + oy * a["OW"] + ox0 + n) * oc, read))
        else:
            for oy in range(a["OH"]):
                iy = first_tap(oy, a["SH"], a["PT"], a["KH"], a["DH"], ih)
                steps.append(((b * a["NPIX"] + (oy + 1) * a["OW"]) * oc,
                              b * ih * iw * ic + iy * iw * ic if iy is not None else big))
    d = overlap_gap(steps)
    return ((0, d),) if d is not None else ()


def emit(ctx):
    args = template_args(ctx.g, ctx.op)
    call_stream_kernel(ctx, ctx.fn(variant=variant(args), **args))


ENTRY = KernelEntry(name="conv2d_s8_dsp", ops=("CONV_2D", "DEPTHWISE_CONV_2D"), template=TEMPLATE, emit=emit,
                    reject=reject, scratch_bytes=scratch_bytes, template_args=template_args, priority=10,
                    generic=False, requires=frozenset({"dsp"}), reorder=reorder, variants=variants, inplace=inplace,
                    overlap=overlap)
