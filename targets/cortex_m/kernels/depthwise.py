"""DEPTHWISE_CONV_2D on DSP cores: the rows kernel (int16 row window per 4 channels, 1-D filters along W) or NHWC
with 4 channels per word, SMLABB/SMLATT and per-border-class unrolled code.

How it works
1. `reject` takes depth multiplier 1 with a channel count that is a multiple of 4 (a single input channel goes
   to the conv kernel; anything else to the generic kernel).
2. `classes_and_segments` splits the output into rectangles whose pixels see the same window of inside taps;
   each distinct window (at most MAX_CLASSES of them) gets its own unrolled function in the template, the rest
   share a tap-pointer-table function (BORDER = "table" keeps only the interior unrolled).
3. The stream per group of 4 channels: bias - zp_in * sum(w) (the padding reads zp_in, so the fold is exact),
   two int16 weight words per tap, the requantization constants; x2 for the fast requantization.
4. The rows variant (RW, depthwise_rows_s8_dsp.c.in): `rows_args` lays out the window (NW int16-pair words per
   channel row), the transposition and, per chunk of output columns, the loads and SMLAD/SMLAxy of a kernel row;
   its stream per channel: the folded bias, the kernel-row words (k_i, k_i+1), the requantization constants.
   `variants` offers it with estimated cycles and code bytes; `choose_variants` decides.
5. The planar variant (PN, depthwise_planar_s8_dsp.c.in): one channel's plane as int16 columns, 1-D filters along
   H on 4-row blocks. Chunked (PC = 8, 12 or 16 output rows, stride 1 SAME, `planar_chunks`): the plane is
   gathered a chunk at a time into the scratch of a PC-row plane, the chunk's first words (its halo) copied from
   the last chunk's bottom ones, so a layer whose whole plane would not fit the RAM still runs planar, in place
   (the face detector's 96x96x8 layer 6: 2,519,716 -> 1,622,358 cycles with 1,920 instead of 2,336 bytes of
   scratch; `benchmarks/run_models.py`, 2026-11-30).
"""
from __future__ import annotations

import functools
from pathlib import Path

import numpy as np

from specializer.kernels import conv as generic_conv
from specializer.ops import explicit_padding
from specializer.registry import KernelEntry

from specializer.kernels.overlap import NONE, first_tap, gap as overlap_gap

from .common import add_stream, bias_of, clamp_of, finish_stream, pack16, requant_constants, variant_name

TEMPLATE = str(Path(__file__).resolve().parent / "depthwise_s8_dsp.c.in")
ROWS_TEMPLATE = str(Path(__file__).resolve().parent / "depthwise_rows_s8_dsp.c.in")
PLANAR_TEMPLATE = str(Path(__file__).resolve().parent / "depthwise_planar_s8_dsp.c.in")
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
    chosen = dict(op.kernel.variant) if op.kernel is not None else {}
    ip = bool(chosen.get("IP", False))
    cr = int(chosen.get("PC", 0)) if chosen.get("PN") else 0
    if cr not in planar_chunks(geo) or not planar_ok(dict(geo, IH=cr, OH=cr)):
        cr = 0
    if chosen.get("PN") and (cr or planar_ok(geo)) and _planar_fits(g, op, geo):
        if cr:
            a = planar_args(dict(geo, IH=cr, OH=cr))  # the column functions of a CR-row plane
            a.update(chunk_args(geo, cr, a["NWH"]))
        else:
            a = planar_args(geo)
            a.update(GSPECS=(("g", a["MIXED"], a["JD0"], a["NFULL"], (), 0),), CR=0, CRUNS=())
        a["UNROLLB"] = a["UNROLLB"] and bool(chosen.get("PU", True))
        return dict(geo, RW=False, PN=True, IP=False, **a, RQ=rq.mode, ACT_MIN=lo, ACT_MAX=hi,
                    CLAMP=lo > -128 or hi < 127, ESET=_planar_shifts(g, op) if chosen.get("PS", True) else ())
    if chosen.get("RW") and rows_ok(geo):
        return dict(geo, RW=True, PN=False, IP=False, **rows_args(geo), RQ=rq.mode, ACT_MIN=lo, ACT_MAX=hi,
                    CLAMP=lo > -128 or hi < 127)
    if ip and can_be_inplace(geo):
        full = (0, geo["KH"], 0, geo["KW"])
        rowpx = geo["IW"] + max(geo["PL"], geo["KW"] - 1 - geo["PL"])  # rows share their border pixels
        winbytes = ((geo["KH"] - 1) * rowpx + geo["IW"] + geo["KW"] - 1) * geo["C"]
        return dict(geo, RW=False, PN=False, IP=True, ROWPX=rowpx, WINBYTES=winbytes, CLASSES=(full,), SEGS=(), ROWSEGS=(), INTERIOR=0,
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
    return dict(geo, RW=False, PN=False, IP=False, ROWPX=geo["IW"], CLASSES=classes, SEGS=segs, ROWSEGS=rowsegs, INTERIOR=interior,
                PAIR=pair,
                RQ=rq.mode, ACT_MIN=lo, ACT_MAX=hi, CLAMP=lo > -128 or hi < 127)


ROW_CHUNK = 5  # rows variant: output columns whose accumulators are live at once
ROW_UNROLL_MAX_OW = 8  # rows variant: the 4 channels of a group unrolled in the row function up to this width
ROW_LOADS = 2  # rows variant: window words loaded in one run before their multiply-accumulates


def rows_ok(geo: dict) -> bool:
    """The rows variant unrolls a whole output row per channel: kept to moderate widths and kernels."""
    return geo["KH"] <= 7 and geo["KW"] <= 7 and geo["OW"] <= 128 and geo["IW"] <= 256


def rows_args(geo: dict) -> dict:
    """Template arguments of the rows variant (see depthwise_rows_s8_dsp.c.in): the window word layout, the
    transposition's word list and, per chunk of output columns, the loads and multiply-accumulates of one row."""
    kh, kw, sw, dw, pl, iw, ow = geo["KH"], geo["KW"], geo["SW"], geo["DW"], geo["PL"], geo["IW"], geo["OW"]
    ring = (kh - 1) * geo["DH"] + 1
    nq = (ow - 1) * sw + (kw - 1) * dw + 1  # window positions read; position q holds input column q - PL
    nw = (nq + 1) // 2
    nk = max(1, kw - 1)
    tr = []
    for j in range(nw):
        lo, hi = 2 * j - pl, 2 * j + 1 - pl
        lo, hi = (lo if 0 <= lo < iw else -1), (hi if 0 <= hi < iw else -1)
        if lo >= 0 or hi >= 0:
            tr.append((j, lo, hi))

    def items(ox):
        out, kx = [], 0
        while kx < kw:
            q = ox * sw + kx * dw
            if dw == 1 and q % 2 == 0 and kx + 1 < kw:
                out.append((ox, q // 2, "d", kx, ""))
                kx += 2
            else:
                ki, khalf = (kx, "b") if (kx <= kw - 2 or kw == 1) else (kw - 2, "t")
                out.append((ox, q // 2, "s", ki, ("b" if q % 2 == 0 else "t") + khalf))
                kx += 1
        return out

    n = -(-ow // ROW_CHUNK)
    bounds = [round(i * ow / n) for i in range(n + 1)]
    chunks = []
    for c0, c1 in zip(bounds, bounds[1:]):
        its = [it for ox in range(c0, c1) for it in items(ox)]
        words = sorted({it[1] for it in its})
        groups = []
        for i in range(0, len(words), ROW_LOADS):
            ws = tuple(words[i:i + ROW_LOADS])
            groups.append((ws, tuple(it for it in its if it[1] in ws)))
        chunks.append((c0, c1, tuple(sorted({it[3] for it in its})), tuple(groups)))
    # Output row oy needs input rows oy*SH - PT .. oy*SH - PT + RING - 1; before the first, rows up to
    # RING - SH - PT - 1 are brought in (PRE of them), then each output row brings SH more (fewer when SH > RING:
    # rows no output reads are skipped). In a step of RING output rows (oy a multiple of RING) the slots are fixed.
    sh, pt = geo["SH"], geo["PT"]
    pre = max(0, min(ring - sh - pt, geo["IH"]))
    steps = []
    for r in range(min(ring, geo["OH"])):
        new = tuple((r * sh + ring - sh - pt + j, (r * sh + ring - sh - pt + j) % ring)
                    for j in range(max(0, sh - ring), sh))
        steps.append((r, (r * sh - pt) % ring, new))
    return dict(UNROLL4=ow <= ROW_UNROLL_MAX_OW and kh * kw <= 9, RING=ring, NW=nw, NK=nk, SLOT=4 * nw, TR=tuple(tr), CHUNKS=tuple(chunks), PRE=pre,
                STEPS=tuple(steps), ZPROW=(geo["OH"] - 1) * sh - pt + ring - 1 >= geo["IH"])


# ---- planar variant (PN): one channel at a time, its whole plane as int16 columns ------------------------------
PN_BLOCK = 4  # output rows per block (accumulators live at once)
PN_CHUNKS = (8, 12, 16)  # chunk heights of the chunked planar variant (PC): a smaller scratch, in place
PN_XLOADS = 3  # column words loaded in one run before their multiply-accumulates
PN_MAX_SCRATCH = 24 * 1024
PN_MAX_SHIFTS = 4
PN_GATHER_COLS = 8  # the gather unrolls up to 2x this many columns, else runs chunks of this many  # distinct requantization shifts the column functions are specialized on (else e is loaded)
PN_UNROLL_BLOCKS = 8  # column functions with at most this many blocks of 4 rows are unrolled (immediate offsets)


def _taps_1d(o: int, s: int, d: int, k: int) -> list:
    """Output position o of a 1-D filter (stride s, dilation d, k taps) over int16 pairs: per step (word, "d" for a
    pair tap (k_i, k_i+1) meeting one word in an SMLAD or "s" for one tap, the kernel word, the SMLAxy halves)."""
    out, t = [], 0
    while t < k:
        q = o * s + t * d
        if d == 1 and q % 2 == 0 and t + 1 < k:
            out.append((q // 2, "d", t, ""))
            t += 2
        else:
            ki, khalf = (t, "b") if (t <= k - 2 or k == 1) else (k - 2, "t")
            out.append((q // 2, "s", ki, ("b" if q % 2 == 0 else "t") + khalf))
            t += 1
    return out


def _planar_fits(g, op, geo: dict) -> bool:
    """Every column function's bias fits int32 (the stream's word)."""
    rq, _ = _requant(g, op)
    b = _planar_biases(g, op, dict(geo, **planar_args(geo)), 2 if rq.mode == "fast" else 1)
    return bool(np.abs(b).max(initial=0) < INT32)


def planar_ok(geo: dict) -> bool:
    if geo["KH"] > 5 or geo["KW"] > 7 or geo["OW"] > 128 or geo["IW"] > 128 or geo["OH"] < 2:
        return False
    return 4 * geo["IW"] * _planar_nwh(geo) <= PN_MAX_SCRATCH


def planar_chunks(geo: dict) -> tuple:
    """Chunk heights (output rows) the planar variant may gather the plane in (variant PC): stride 1 and the
    output as large as the input (so a chunk's outputs overwrite only rows no later chunk reads), a multiple of 4
    rows (whole blocks) dividing the output's height, at least two chunks."""
    if not can_be_inplace(geo) or geo["KH"] > 5:
        return ()
    return tuple(r for r in PN_CHUNKS if geo["OH"] % r == 0 and geo["OH"] // r >= 2)


def chunk_args(geo: dict, cr: int, nwh: int) -> dict:
    """The chunked planar variant's gathers: per chunk, its words (positions 2j, 2j+1 from the chunk's first
    output row, input rows 2j - PT and 2j + 1 - PT from it) that are the halo (the last chunk's words j + CR/2),
    all padding, half padding or all data; one gather per distinct kind, runs of chunks sharing one."""
    ih, pt, n = geo["IH"], geo["PT"], geo["OH"] // cr
    halo = nwh - cr // 2
    specs, runs = [], []
    for k in range(n):
        y0, first = k * cr, (halo if k else 0)
        padw, mixed, full = [], [], []
        for j in range(first, nwh):
            lo, hi = 2 * j - pt, 2 * j + 1 - pt
            lo_ok, hi_ok = 0 <= y0 + lo < ih, 0 <= y0 + hi < ih
            if lo_ok and hi_ok:
                full.append(j)
            elif lo_ok or hi_ok:
                mixed.append((j, lo if lo_ok else -1, hi if hi_ok else -1))
            else:
                padw.append(j)
        assert full == list(range(full[0], full[0] + len(full))) if full else True
        spec = (tuple(mixed), full[0] if full else 0, len(full), tuple(padw), halo if k else 0)
        if spec not in specs:
            specs.append(spec)
        t = specs.index(spec)
        if runs and runs[-1][2] == t:
            runs[-1][1] = k + 1
        else:
            runs.append([k, k + 1, t])
    return dict(GSPECS=tuple((f"k{t}_",) + s for t, s in enumerate(specs)), CR=cr, PADW=(),
                CRUNS=tuple(tuple(r) for r in runs))


def _planar_nwh(geo: dict) -> int:
    maxq = (geo["OH"] - 1) * geo["SH"] + (geo["KH"] - 1) * geo["DH"]
    return maxq // 2 + 1


def planar_args(geo: dict) -> dict:
    """Template arguments of the planar variant (see depthwise_planar_s8_dsp.c.in); a fresh copy of the memoized
    ones (the variant choice asks for them many times)."""
    return dict(_planar_args(tuple(sorted(geo.items()))))


@functools.lru_cache(maxsize=1024)
def _planar_args(key: tuple) -> dict:
    geo = dict(key)
    kh, kw, sh, dh, pt = geo["KH"], geo["KW"], geo["SH"], geo["DH"], geo["PT"]
    ih, iw, ow = geo["IH"], geo["IW"], geo["OW"]
    nwh = _planar_nwh(geo)
    nk = max(1, kh - 1)
    # column words: (word, input row of the low half or -1, of the high half or -1)
    kinds = []
    for j in range(nwh):
        lo, hi = 2 * j - pt, 2 * j + 1 - pt
        kinds.append((lo if 0 <= lo < ih else -1, hi if 0 <= hi < ih else -1))
    padw = tuple(j for j, (lo, hi) in enumerate(kinds) if lo < 0 and hi < 0)
    full = [j for j, (lo, hi) in enumerate(kinds) if lo >= 0 and hi >= 0]
    mixed = tuple((j, lo, hi) for j, (lo, hi) in enumerate(kinds) if (lo < 0) != (hi < 0))
    jd0, nfull = (full[0], len(full)) if full else (0, 0)
    assert full == list(range(jd0, jd0 + nfull))
    # output columns: runs of equal inside-tap sets; each set one column function
    sets, runs = [], []
    for ox in range(ow):
        taps = tuple(kx for kx in range(kw) if 0 <= ox * geo["SW"] - geo["PL"] + kx * geo["DW"] < iw)
        if taps not in sets:
            sets.append(taps)
        fi = sets.index(taps)
        if runs and runs[-1][2] == fi and runs[-1][1] == ox:
            runs[-1][1] = ox + 1
        else:
            runs.append([ox, ox + 1, fi])

    def block(rows: int, taps: tuple) -> tuple:
        """Per tap column: (kx, column offset from the first tap's, ((words, items), ...)) for `rows` rows."""
        out = []
        for kx in taps:
            its = [(i,) + it for i in range(rows) for it in _taps_1d(i, sh, dh, kh)]
            words = sorted({it[1] for it in its})
            groups = []
            for a in range(0, len(words), PN_XLOADS):
                ws = tuple(words[a:a + PN_XLOADS])
                groups.append((ws, tuple(it for it in its if it[1] in ws)))
            out.append((kx, (kx - taps[0]) * geo["DW"], tuple(sorted({it[3] for it in its})), tuple(groups)))
        return tuple(out)

    nb, tail = divmod(geo["OH"], PN_BLOCK)
    fns = tuple((taps, block(PN_BLOCK, taps), block(tail, taps) if tail else ()) for taps in sets)
    if iw <= 2 * PN_GATHER_COLS:
        gchunks = ((0, iw, 1),)
    else:
        n8 = iw // PN_GATHER_COLS
        gchunks = ((0, PN_GATHER_COLS, n8),) + (((n8 * PN_GATHER_COLS, iw % PN_GATHER_COLS, 1),) if iw % PN_GATHER_COLS else ())
    return dict(NWH=nwh, NK=nk, PADW=padw, GCHUNKS=gchunks, MIXED=mixed, JD0=jd0, NFULL=nfull, NB=nb, TAIL=tail,
                FNS=fns, RUNS=tuple(tuple(r) for r in runs), XG=2,
                UNROLLB=_planar_unrollable(geo, nb, nwh))


def _planar_unrollable(geo: dict, nb: int, nwh: int) -> bool:
    """Blocks unrolled in the column functions: every column load keeps an immediate offset (< 4096)."""
    return nb <= PN_UNROLL_BLOCKS and 8 * nb * geo["SH"] + 4 * ((geo["KW"] - 1) * geo["DW"] + 2) * nwh <= 4095


def _planar_biases(g, op, args: dict, scale: int) -> np.ndarray:
    """(column functions, C): the folded bias (bias - zp_in * sum(w), scaled) plus zp_in times the weights of the
    kernel columns a column function leaves out (its taps fall in the padding along W, which TFLite reads as
    the zero point)."""
    bias, w = _folded(g, op, scale)
    wk = w.reshape(args["KH"], args["KW"], -1)
    zp = int(g.t(op.inputs[0]).quant.zero_point[0])
    out = []
    for taps, _, _ in args["FNS"]:
        missing = [kx for kx in range(args["KW"]) if kx not in taps]
        out.append(bias + zp * wk[:, missing, :].sum(axis=(0, 1)))
    return np.array(out, dtype=np.int64)


def planar_cycles(geo: dict, unroll: bool = True, shifts: bool = True) -> float:
    """Estimated cycles of the planar variant: per channel the gather (~3 cycles per input value), per block and
    tap column the loads and multiply-accumulates, ~7.5 cycles per output for requantization, store and the
    column functions' entry and exit (6.5 with the shift specialized), the block loop (6 per block unless
    unrolled), calls. Calibrated on KWS's depthwise layers (within ~2%)."""
    a = planar_args(geo)
    unroll = unroll and a["UNROLLB"]
    per_ch = 3.0 * geo["IH"] * geo["IW"] + 40 + 25 * len(a["RUNS"])
    for (ox0, ox1, fi) in a["RUNS"]:
        taps, full, tail = a["FNS"][fi]
        for blk, n in ((full, a["NB"]), (tail, 1 if a["TAIL"] else 0)):
            cyc = 1 if unroll else 6
            for _, _, ks, groups in blk:
                cyc += sum(len(ws) + 1 + len(its) for ws, its in groups) + len(ks)
            per_ch += (ox1 - ox0) * n * cyc
    per_ch += geo["OH"] * geo["OW"] * (6.5 if shifts else 7.5)
    return geo["B"] * geo["C"] * per_ch


def planar_code_bytes(geo: dict, unroll: bool = True, shifts: int = 1) -> int:
    """Rough code of the planar variant: the column functions (blocks unrolled or not, one copy per specialized
    shift), the gather and the driver, ~3.3 bytes per instruction."""
    a = planar_args(geo)
    unroll = unroll and a["UNROLLB"]
    instr = 0
    for taps, full, tail in a["FNS"]:
        for blk, n in ((full, a["NB"] if unroll else 1), (tail, 1)):
            per = sum(len(ks) + sum(len(ws) + len(its) for ws, its in groups) for _, _, ks, groups in blk)
            instr += n * (per + 5 * (a["TAIL"] if blk is tail else PN_BLOCK) + 4) + 12
    instr *= max(1, shifts)
    gcols = sum(n for _, n, _ in a["GCHUNKS"])  # the gather: ~4-byte instructions
    gather = (a["NFULL"] % 2 + len(a["MIXED"]) + 2) * gcols * 4 + 30 * len(a["GCHUNKS"])
    return int(3.3 * (instr + 40 + 6 * len(a["RUNS"])) + 4.2 * gather)


def _row_weights(w: np.ndarray, kh: int, kw: int) -> list:
    """Per channel (w: taps x 1): per kernel row the words (k_i, k_i+1), i < KW-1 ((k0, 0) when KW == 1)."""
    out = []
    k = w.reshape(kh, kw)
    for ky in range(kh):
        if kw == 1:
            out.append(pack16(k[ky, :1], np.zeros(1, dtype=np.int64)))
        else:
            out.append(pack16(k[ky, :-1], k[ky, 1:]))
    return out


def build_stream(g, op, args: dict) -> np.ndarray:
    rq, _ = _requant(g, op)
    scale = 2 if rq.mode == "fast" else 1
    bias, w = _folded(g, op, scale)
    c = w.shape[1]
    parts = []
    if args["PN"]:  # per channel: a bias per column function, kernel-column words, requantization constants
        kh, kw = args["KH"], args["KW"]
        biases = _planar_biases(g, op, args, scale)

        def record(ch, with_e=True):
            parts.append(biases[:, ch])
            parts.extend(_row_weights(w[:, ch].reshape(kh, kw).T.reshape(-1), kw, kh))
            parts.extend(rq.channels(ch, ch + 1) if with_e else rq.channels(ch, ch + 1)[:2])

        if args["ESET"]:  # grouped by shift: per shift its channel count, then (index, record) per channel
            for e in args["ESET"]:
                chans = [ch for ch in range(c) if int(rq.c[ch]) == e]
                parts.append([len(chans)])
                for ch in chans:
                    parts.append([ch])
                    record(ch, with_e=False)
        else:
            for ch in range(c):
                record(ch)
        return finish_stream(parts)
    if args["RW"]:  # per channel: bias, kernel-row words, requantization constants
        for ch in range(c):
            parts.append(bias[ch:ch + 1])
            parts += _row_weights(w[:, ch], args["KH"], args["KW"])
            parts += rq.channels(ch, ch + 1)
        return finish_stream(parts)
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
    form = dict(w=args["IW"], rw="") if args["RW"] else dict(pn="", ch=args["CR"] or None) if args["PN"] else dict(cls=len(args["CLASSES"]), ip="" if args["IP"] else None)
    return variant_name(k=f"{args['KH']}x{args['KW']}", s=f"{args['SH']}x{args['SW']}",
                        d=f"{args['DH']}x{args['DW']}" if args["DH"] > 1 or args["DW"] > 1 else None,
                        p=f"{args['PT']}x{args['PL']}", c=args["C"], **form, rq=args["RQ"][0]) + "__dsp"


def variants(g, op) -> list:
    """Out of place (border classes) or in place (window in the scratch: the output may take the input's bytes;
    the row copies cost a little). Equal flash; choose_variants takes in place where the layer sets the RAM peak."""
    from specializer.passes.choose_variants import Variant

    geo = _geometry(g, op)
    macs = geo["B"] * geo["OH"] * geo["OW"] * geo["C"] * geo["KH"] * geo["KW"]
    base = macs * 3.5
    taps = geo["KH"] * geo["KW"]
    nhwc_fn = 3.3 * (taps * 10 + 40)  # one unrolled pixel function (4 channels per iteration)
    classes = len(classes_and_segments(geo)[0])
    code = int(nhwc_fn * (classes + 1) + 400)
    out = [Variant({"IP": False}, base, code, code=code)]
    if can_be_inplace(geo):
        copies = geo["B"] * geo["OH"] * geo["KH"] * (geo["IW"] + geo["KW"] - 1) * geo["C"] * 0.6
        code = int(nhwc_fn * 2 + 500)
        out.append(Variant({"IP": True}, base + copies, code, inplace=True, code=code))
    if rows_ok(geo):
        code = rows_code_bytes(geo)
        out.append(Variant({"RW": True}, rows_cycles(geo), code, inplace=can_be_inplace(geo), code=code))
    # chunks of r output rows (the scratch of an r-row plane, halo copies, one gather per kind of chunk), then the
    # whole plane (r = 0)
    planes = [r for r in planar_chunks(geo) if planar_ok(dict(geo, IH=r, OH=r))] + ([0] if planar_ok(geo) else [])
    if planes and _planar_fits(g, op, geo):
        nshift = len(_planar_shifts(g, op))
        for r in planes:
            gv, n = (dict(geo, IH=r, OH=r), geo["OH"] // r) if r else (geo, 1)
            gathers = 160 * (len(chunk_args(geo, r, _planar_nwh(gv))["GSPECS"]) - 1) if r else 0
            halo = geo["B"] * geo["C"] * n * geo["IW"] * 3 if r else 0
            forms = [(False, False), (True, False)] + ([(True, True)] if nshift else [])
            if not planar_args(gv)["UNROLLB"]:  # looped blocks, shifts loaded or specialized
                forms = [(False, False)] + ([(False, True)] if nshift else [])
            for pu, ps in forms:
                code = planar_code_bytes(gv, unroll=pu, shifts=nshift if ps else 1) + gathers
                # shift-specialized code is shared only by layers with the same shifts: counted whole for each layer
                params = dict({"PN": True, "PU": pu, "PS": ps}, **({"PC": r} if r else {}))
                out.append(Variant(params, n * planar_cycles(gv, unroll=pu, shifts=ps) + halo, code, inplace=True,
                                   code=0 if ps else code))
    return out


def _planar_shifts(g, op) -> tuple:
    """The distinct right shifts of a fast requantization, when few enough to specialize the code on each."""
    rq, _ = _requant(g, op)
    eset = tuple(sorted({int(e) for e in rq.c})) if rq.mode == "fast" else ()
    return eset if len(eset) <= PN_MAX_SHIFTS else ()


def rows_code_bytes(geo: dict) -> int:
    """Rough code of the rows variant: one row function per ring phase used (its 4 channels unrolled for narrow
    rows), the transposition and the driver, ~3.3 bytes per instruction."""
    a = rows_args(geo)
    per_channel = sum(geo["KH"] * (len(ks) + sum(len(ws) + len(its) for ws, its in groups))
                      for _, _, ks, groups in a["CHUNKS"]) + geo["OW"] * 6 + 12
    phases = len({st[1] for st in a["STEPS"]})
    return int(3.3 * (phases * per_channel * (4 if a["UNROLL4"] else 1) + len(a["TR"]) * 14 + 120))


def rows_cycles(geo: dict) -> float:
    """Estimated cycles of the rows variant: per channel and output row, the window loads, the multiply-
    accumulates and ~7 cycles per output for requantization and store; the transposition of each input row."""
    a = rows_args(geo)
    per_row = 0.0
    for _, _, ks, groups in a["CHUNKS"]:
        loads = sum(len(ws) + 1 for ws, _ in groups) + len(ks)
        macs = sum(len(its) for _, its in groups)
        per_row += geo["KH"] * (loads + macs + 2)
    per_row += geo["OW"] * 7 + 6
    trans = len(a["TR"]) * 16 + 10
    return geo["B"] * (geo["C"] * geo["OH"] * per_row + geo["C"] // 4 * geo["IH"] * trans)


def scratch_bytes(g, op) -> int:
    a = template_args(g, op)
    if a["PN"]:
        return 4 * a["IW"] * a["NWH"]
    if a["RW"]:
        return 4 * a["RING"] * a["SLOT"]
    return a["WINBYTES"] if a["IP"] else 0


def inplace(g, op) -> tuple:
    a = template_args(g, op)
    return (0,) if a["IP"] or a["PN"] or (a["RW"] and can_be_inplace(a)) else ()


def overlap(g, op) -> tuple:
    """Out-of-place variant: pixels are visited in raster order (pairs of interior pixels together), each
    pixel's channel groups read then written in turn; the output may overlap the input at `overlap.gap(own=True)`."""
    a = template_args(g, op)
    if a["IP"] or a["RW"] or a["PN"]:
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
    tpl = ROWS_TEMPLATE if args["RW"] else PLANAR_TEMPLATE if args["PN"] else None
    fn = ctx.fn(template=tpl, variant=variant(args), **args)
    x, y = ctx.inp(0), ctx.out()
    extra = f", {ctx.scratch('int8_t')}" if args["IP"] else f", {ctx.scratch('int32_t')}" if args["RW"] or args["PN"] else ""
    ctx.call(f"{fn}({ctx.ptr(x.id)}, {ctx.ptr(op.stream)}, {ctx.ptr(y.id)}, {x.quant.zero_point[0]}, "
             f"{y.quant.zero_point[0]}{extra});")


ENTRY = KernelEntry(name="depthwise_s8_dsp", ops=("DEPTHWISE_CONV_2D",), template=TEMPLATE, emit=emit,
                    reject=reject, template_args=template_args, scratch_bytes=scratch_bytes, priority=10,
                    generic=False, requires=frozenset({"dsp"}), reorder=reorder, variants=variants, inplace=inplace,
                    overlap=overlap)
