"""fuse_bands: run a convolution and the windowed layer after it row band by row band, so that the first one's
output (often the largest activation of a network's first stages) never exists whole.

How it works
1. Candidates: a CONV_2D or DEPTHWISE_CONV_2D (P, dilation 1 along H, its input there whole) whose output feeds
   only a DEPTHWISE_CONV_2D, CONV_2D (dilation 1 along H), MAX_POOL_2D or AVERAGE_POOL_2D (C), and is not a model
   output. TFLite's arithmetic is per output pixel, so computing P's output rows on demand (P on the window of
   input rows they read, with that window's vertical padding) and C's output one row at a time gives the same
   bytes.
2. For every output row oy of C, its input rows [oy*SH - PT, oy*SH - PT + KH) clipped to the tensor are kept in
   a band buffer (the op's scratch): rows the previous step already holds move to the top (memmove), P computes
   the missing rows straight into the band, C computes row oy from the band with the vertical padding of that
   row. Each distinct shape (rows P computes; rows, top and bottom padding C reads) is one sub-layer of a small
   graph kept in the fused op's attrs; its kernels are chosen by the registry for the same core, and keep the
   variant (weight format, blocking...) choose_variants picked for the whole layer when the same kernel takes
   them, or their kernels' default variants where that gives the smaller arena. Equal sub-layer shapes share one
   C function; equal constant streams one flash array.
3. Steps whose sub-layers agree and whose pointers move linearly with oy become one C loop (kernels/band.py).
4. The rewrite is kept only where the planned arena gets >= 10% smaller (plan_memory on both graphs, with the variants
   choose_variants picked, in-place ones included), so models whose peak lies elsewhere are unchanged; after a
   fusion `rechoose_variants` runs choose_variants again, whose RAM steps then see the banded plan's new peak.

    before:  CONV_2D(x) -> m -> DEPTHWISE_CONV_2D / POOL(m) -> y      after:  BANDED_PAIR(x) -> y   (band in scratch)
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Optional

from specializer import registry
from specializer.ir import DTYPE_BYTES, Graph, KernelChoice, Op, Tensor
from specializer.ops import explicit_padding


SUB_INDEX = 1 << 20
MIN_GAIN = 0.9  # a fusion must cut the arena by 10%: banding costs a few % of the pair's cycles


@dataclass(frozen=True)
class BandStep:
    """One output row of C: rows moved to the band's top, the P sub-layer that fills the rest, the C sub-layer."""

    oy: int
    keep_from: int  # band row (before the move) of the first row kept; rows [keep_from, keep_from + keep)
    keep: int
    x_row: int  # first row of x the P sub-layer reads (-1: no P this step)
    p_op: int  # sub-graph op index of P for this step (-1: none)
    p_at: int  # band row P writes its first row to
    c_op: int  # sub-graph op index of C


@dataclass(frozen=True)
class BandedPair:
    """attrs of BANDED_PAIR: the sub-graph of row-shaped sub-layers and the per-row schedule."""

    sub: Any  # Graph
    steps: tuple
    p_index: int  # the original ops' indices (names, MAC counts)
    c_index: int
    row_bytes: int  # bytes of one P output row (one band row)
    band_rows: int
    x_row_bytes: int
    y_row_bytes: int
    p_macs: int
    c_macs: int

    @property
    def macs(self) -> int:
        return self.p_macs + self.c_macs

    def __repr__(self) -> str:  # the sub-graph is large: dumps show the schedule's size only
        return (f"BandedPair(P #{self.p_index} -> C #{self.c_index}, {len(self.steps)} rows, band "
                f"{self.band_rows}x{self.row_bytes} B, {len(self.sub.ops)} sub-layers)")


def _consumers(g: Graph, tid: int) -> list:
    return [op for op in g.ops if tid in op.inputs]


def _kernel_hw(g: Graph, op: Op) -> tuple[int, int]:
    if op.kind in ("MAX_POOL_2D", "AVERAGE_POOL_2D"):
        return op.attrs.filter_h, op.attrs.filter_w
    w = g.t(op.inputs[1])
    return w.shape[1], w.shape[2]


def _pads(g: Graph, op: Op) -> tuple:
    x, y = g.t(op.inputs[0]), g.t(op.outputs[0])
    return explicit_padding(op.attrs, x.shape[1:3], y.shape[1:3], _kernel_hw(g, op))


def _producer(g: Graph, op: Op) -> bool:
    """A convolution or depthwise convolution (dilation 1 along H, batch 1) whose input is there whole: any band
    of its output rows is the same layer on a window of input rows with that band's vertical padding."""
    return op.kind in ("CONV_2D", "DEPTHWISE_CONV_2D") and op.kernel is not None and op.attrs.dilation_h == 1 \
        and g.t(op.inputs[0]).shape[0] == 1 and len(g.t(op.inputs[0]).shape) == 4


def _windowed(g: Graph, op: Op) -> bool:
    if op.kernel is None or g.t(op.inputs[0]).shape[0] != 1 or len(g.t(op.inputs[0]).shape) != 4:
        return False
    if op.kind in ("MAX_POOL_2D", "AVERAGE_POOL_2D"):
        return True
    return op.kind in ("DEPTHWISE_CONV_2D", "CONV_2D") and op.attrs.dilation_h == 1


def candidates(g: Graph) -> list:
    out = []
    for p in g.ops:
        if not _producer(g, p):
            continue
        m = p.outputs[0]
        users = _consumers(g, m)
        if len(users) == 1 and _windowed(g, users[0]) and users[0].inputs[0] == m and m not in g.outputs:
            out.append((p, users[0]))
    return out


def _schedule(h: int, kh: int, sh: int, pt: int, oh: int) -> list:
    """Per output row: (lo, hi) real input rows, top and bottom padding rows, and the band moves."""
    rows = []
    blo = bhi = 0
    for oy in range(oh):
        iy0 = oy * sh - pt
        lo, hi = max(iy0, 0), min(iy0 + kh, h)
        keep_lo = max(blo, lo)
        keep = max(bhi - keep_lo, 0)
        new_lo = max(bhi, lo)
        rows.append(dict(oy=oy, lo=lo, hi=hi, ptop=lo - iy0, pbot=iy0 + kh - hi, keep_from=keep_lo - blo,
                         keep=keep, p_row=new_lo, p_rows=max(hi - new_lo, 0), p_at=new_lo - lo))
        blo, bhi = lo, hi
    return rows


def build(g: Graph, p: Op, c: Op, core: Any, inherit: bool = True) -> Optional[Op]:
    """The BANDED_PAIR op replacing p and c, or None when a sub-layer has no kernel. `inherit`: the sub-layers
    keep the variant choose_variants picked for their layer; else their kernels' defaults (less scratch, often)."""
    x, m, y = g.t(p.inputs[0]), g.t(p.outputs[0]), g.t(c.outputs[0])
    kh, _ = _kernel_hw(g, c)
    khp, _ = _kernel_hw(g, p)
    _, hx, wx, cin = x.shape
    _, h, w_, cm = m.shape
    oh, ow, cout = y.shape[1], y.shape[2], y.shape[3]
    top, _, left, right = _pads(g, c)
    ptop_p, _, pleft, pright = _pads(g, p)
    shp = p.attrs.stride_h
    sched = _schedule(h, kh, c.attrs.stride_h, top, oh)
    tensors = {tid: t for tid, t in g.tensors.items() if t.is_const}
    nid = max(g.tensors) + 1
    ops: list = []
    p_of: dict = {}
    c_of: dict = {}

    def new_tensor(like: Tensor, shape) -> int:
        nonlocal nid
        tensors[nid] = dataclasses.replace(like, id=nid, shape=tuple(shape), data=None, variable=False)
        nid += 1
        return nid - 1

    def p_window(r0: int, n: int) -> tuple:
        """P's output rows [r0, r0 + n): (first input row, input rows, top pad, bottom pad)."""
        lo = r0 * shp - ptop_p
        hi = (r0 + n - 1) * shp - ptop_p + khp
        lo_c, hi_c = max(lo, 0), min(hi, hx)
        return lo_c, hi_c - lo_c, lo_c - lo, hi - hi_c

    ins, outs = [], []
    base = SUB_INDEX + 1000 * c.index  # sub-layer indices: never a model op's (names, profile marks)
    for r in sched:
        if r["p_rows"]:
            x0, xn, pt_, pb_ = p_window(r["p_row"], r["p_rows"])
            r["x_row"] = x0
            key = (r["p_rows"], xn, pt_, pb_)
            if key not in p_of:
                a, b = new_tensor(x, (1, xn, wx, cin)), new_tensor(m, (1, r["p_rows"], w_, cm))
                attrs = dataclasses.replace(p.attrs, explicit_padding=(pt_, pb_, pleft, pright))
                p_of[key] = base + len(ops)
                ops.append(dataclasses.replace(p, inputs=(a,) + tuple(p.inputs[1:]), outputs=(b,),
                                               index=base + len(ops), attrs=attrs, kernel=None, stream=None))
                ins.append(a)
                outs.append(b)
            r["p_op"] = p_of[key]
        key = (r["hi"] - r["lo"], r["ptop"], r["pbot"])
        if key not in c_of:
            a, b = new_tensor(m, (1, key[0], w_, cm)), new_tensor(y, (1, 1, ow, cout))
            attrs = dataclasses.replace(c.attrs, explicit_padding=(key[1], key[2], left, right))
            c_of[key] = base + len(ops)
            ops.append(dataclasses.replace(c, inputs=(a,) + tuple(c.inputs[1:]), outputs=(b,), index=base + len(ops),
                                           attrs=attrs, kernel=None, stream=None))
            ins.append(a)
            outs.append(b)
    sub = Graph(tensors=tensors, ops=tuple(ops), inputs=tuple(ins), outputs=tuple(outs), name=g.name)
    chosen = []
    for op in sub.ops:
        parent = p if op.index in p_of.values() else c
        try:
            e = registry.select(sub, op, core)
        except Exception:  # a sub-shape no kernel takes: leave the pair alone
            return None
        variant = parent.kernel.variant if (inherit and e.name == parent.kernel.entry) else ()
        k = KernelChoice(e.name, 0, variant=variant)
        op = dataclasses.replace(op, kernel=k)
        op = dataclasses.replace(op, kernel=dataclasses.replace(k, scratch_bytes=int(e.scratch_bytes(sub, op))))
        chosen.append(op)
    sub = sub.with_ops(chosen).prune()
    steps = tuple(BandStep(r["oy"], r["keep_from"], r["keep"], r.get("x_row", -1), r.get("p_op", -1), r["p_at"],
                           c_of[(r["hi"] - r["lo"], r["ptop"], r["pbot"])]) for r in sched)
    from specializer.api import op_macs

    attrs = BandedPair(sub=sub, steps=steps, p_index=p.index, c_index=c.index, row_bytes=w_ * cm * DTYPE_BYTES[m.dtype],
                       band_rows=max(r["hi"] - r["lo"] for r in sched), x_row_bytes=wx * cin * DTYPE_BYTES[x.dtype],
                       y_row_bytes=ow * cout * DTYPE_BYTES[y.dtype], p_macs=op_macs(g, p),
                       c_macs=op_macs(g, c))
    band = attrs.band_rows * attrs.row_bytes
    scratch = (band + 3) // 4 * 4 + max((op.kernel.scratch_bytes for op in sub.ops), default=0)
    return Op(kind="BANDED_PAIR", inputs=(x.id,), outputs=(y.id,), attrs=attrs, index=c.index,
              kernel=KernelChoice("band_pair", scratch))


def fuse_bands(g: Graph, core: Any = None, generic_only: bool = False, force: bool = False) -> Graph:
    """`force` (tests: prefer={"BAND": True}) fuses every candidate, whatever the arena says."""
    from specializer.passes.plan_memory import plan_memory

    if generic_only:  # the unspecialized ablation build keeps the model's own layer structure
        return g
    arena = None if force else plan_memory(g).memory_plan.arena_size
    for p, c in candidates(g):
        if p not in g.ops or c not in g.ops:
            continue
        best = None
        for inherit in (True, False):  # the layers' own variants first (faster); defaults where they need less
            fused = build(g, p, c, core, inherit)
            if fused is None:
                continue
            trial = g.with_ops([fused if op is c else op for op in g.ops if op is not p]).prune()
            if force:
                best = (0, trial)
                break
            a = plan_memory(trial).memory_plan.arena_size
            if a < MIN_GAIN * arena and (best is None or a < best[0]):
                best = (a, trial)
        if best is not None:
            arena, g = best
    return g


def rechoose_variants(g: Graph, budget: Any = "default", prefer: Any = None) -> Graph:
    """After a fusion the peak may sit elsewhere: choose_variants again (its RAM steps now see the banded plan)."""
    if not any(op.kind == "BANDED_PAIR" for op in g.ops):
        return g
    from specializer.passes.choose_variants import choose_variants

    return choose_variants(g, budget, prefer)
