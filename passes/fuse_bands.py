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
    """`n` output rows of C from oy on: rows moved to the band's top, the P sub-layer that fills the rest, the C
    sub-layer; in a residual block also the shortcut sub-layer S (on rows of x) and the ADD sub-layer A."""

    oy: int
    keep_from: int  # band row (before the move) of the first row kept; rows [keep_from, keep_from + keep)
    keep: int
    x_row: int  # first row of x the P sub-layer reads (-1: no P this step)
    p_op: int  # sub-graph op index of P for this step (-1: none)
    p_at: int  # band row P writes its first row to
    c_op: int  # sub-graph op index of C
    n: int = 1  # output rows of this step
    s_op: int = -1  # shortcut sub-layer (-1: none)
    s_x_row: int = -1  # first row of x it reads
    a_op: int = -1  # residual ADD sub-layer (-1: not a residual block)
    s_at: int = -1  # byte offset in the band where S writes its rows (band rows C no longer needs), -1: S's buffer


@dataclass(frozen=True)
class BandedPair:
    """attrs of BANDED_PAIR: the sub-graph of row-shaped sub-layers and the schedule (steps of `rows` rows)."""

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
    rows: int = 1
    a_index: int = -1  # residual block: the ADD's index, the shortcut convolution's (-1: identity)
    s_index: int = -1
    s_macs: int = 0
    res_pos: int = 0  # the ADD input that takes C's output
    s_in_band: bool = False  # every step's shortcut rows fit in band rows the next step does not keep

    @property
    def macs(self) -> int:
        return self.p_macs + self.c_macs + self.s_macs

    @property
    def members(self) -> tuple:
        """The original layers the op runs, the last one (whose output the op writes) last."""
        return tuple(i for i in (self.p_index, self.s_index, self.c_index, self.a_index) if i >= 0)

    @property
    def c_out_bytes(self) -> int:
        """Scratch after the band for C's rows (residual blocks: A reads them) and for S's rows."""
        return (self.rows * self.y_row_bytes + 3) // 4 * 4 if self.a_index >= 0 else 0

    @property
    def s_out_bytes(self) -> int:
        return (self.rows * self.y_row_bytes + 3) // 4 * 4 if self.s_index >= 0 and not self.s_in_band else 0

    def __repr__(self) -> str:  # the sub-graph is large: dumps show the schedule's size only
        res = (f" + ADD #{self.a_index}" + (f" (shortcut #{self.s_index})" if self.s_index >= 0 else " (identity)")
               if self.a_index >= 0 else "")
        return (f"BandedPair(P #{self.p_index} -> C #{self.c_index}{res}, {len(self.steps)} steps of {self.rows} "
                f"rows, band {self.band_rows}x{self.row_bytes} B, {len(self.sub.ops)} sub-layers)")


@dataclass(frozen=True)
class FcStep:
    """One output row of P in a BANDED_FC: P's sub-layer computes it from input rows x_row.. into the band, the
    fully connected layer adds it to its accumulators."""

    row: int
    x_row: int
    p_op: int


@dataclass(frozen=True, eq=False)
class BandedFC:
    """attrs of BANDED_FC: P's row sub-layers (a small sub-graph), one step per output row of P, and the fully
    connected layer's constants laid out per row (targets/cortex_m/kernels/fc_band.fc_plan)."""

    sub: Any  # Graph
    steps: tuple
    p_index: int
    c_index: int
    row_bytes: int  # one output row of P: the inputs the fully connected layer takes per step
    x_row_bytes: int
    p_macs: int
    c_macs: int
    depth: int  # the fully connected layer's depth (its practical ceiling)
    plan: Any
    zero_scratch: bool = False  # the sub-layers' scratch is zeroed once before the rows (their variant BZ)

    @property
    def macs(self) -> int:
        return self.p_macs + self.c_macs

    @property
    def members(self) -> tuple:
        return (self.p_index, self.c_index)

    def __repr__(self) -> str:
        return (f"BandedFC(P #{self.p_index} -> FULLY_CONNECTED #{self.c_index}, {len(self.steps)} rows of "
                f"{self.row_bytes} B, {len(self.sub.ops)} sub-layers)")


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


def _sole_consumers(g: Graph):
    """(P, C): a producer (`_producer`) whose output is not a model output and is read by C alone."""
    for p in g.ops:
        if _producer(g, p) and p.outputs[0] not in g.outputs:
            users = _consumers(g, p.outputs[0])
            if len(users) == 1:
                yield p, users[0]


def candidates(g: Graph) -> list:
    return [(p, c) for p, c in _sole_consumers(g) if _windowed(g, c) and c.inputs[0] == p.outputs[0]]


def fc_candidates(g: Graph) -> list:
    """(P, FC): a convolution (as `_producer` takes it) whose int8 output only a FULLY_CONNECTED with the DSP
    kernel reads, as its one input row (the flattened tensor); the FC then runs on P's rows as they come."""
    out = []
    for p, c in _sole_consumers(g):
        m = p.outputs[0]
        if c.kind != "FULLY_CONNECTED" or c.kernel is None or c.kernel.entry != "fully_connected_s8_dsp" \
                or c.inputs[0] != m or m in c.inputs[1:]:
            continue
        mt, w = g.t(m), g.t(c.inputs[1])
        if mt.dtype == "int8" and len(w.shape) == 2 and w.shape[1] == mt.size:
            out.append((p, c))
    return out


def build_fc(g: Graph, p: Op, c: Op, core: Any, inherit: Any = True) -> Optional[Op]:
    """The BANDED_FC op replacing p and the fully connected layer c (None when a row sub-layer has no kernel)."""
    from specializer.api import op_macs
    from specializer.targets.cortex_m.kernels.fc_band import fc_plan

    x, m = g.t(p.inputs[0]), g.t(p.outputs[0])
    _, h, w_, cm = m.shape
    tensors = {tid: t for tid, t in g.tensors.items() if t.is_const}
    nid = max(g.tensors) + 1
    ops: list = []
    ins, outs, parent, table, steps = [], [], {}, {}, []
    base = SUB_INDEX + 1000 * c.index
    for r in range(h):
        x0, xn, pt_, pb_ = _window(g, p, r, 1)
        if (xn, pt_, pb_) not in table:
            i, o = nid, nid + 1
            tensors[i] = dataclasses.replace(x, id=i, shape=(1, xn) + x.shape[2:], data=None, variable=False)
            tensors[o] = dataclasses.replace(m, id=o, shape=(1, 1) + m.shape[2:], data=None, variable=False)
            nid += 2
            idx = base + len(ops)
            table[(xn, pt_, pb_)] = idx
            parent[idx] = p
            ops.append(dataclasses.replace(p, inputs=(i,) + tuple(p.inputs[1:]), outputs=(o,), index=idx,
                                           attrs=dataclasses.replace(p.attrs, explicit_padding=(pt_, pb_) +
                                                                     _pads(g, p)[2:]), kernel=None, stream=None))
            ins.append(i)
            outs.append(o)
        steps.append(FcStep(r, x0, table[(xn, pt_, pb_)]))
    sub = _choose_kernels(Graph(tensors=tensors, ops=tuple(ops), inputs=tuple(ins), outputs=tuple(outs),
                                name=g.name), parent, core, inherit)
    if sub is None:
        return None
    sub, bz = _borders_once(sub)
    row_bytes = w_ * cm
    plan = fc_plan(g, c, row_bytes)
    attrs = BandedFC(sub=sub, steps=tuple(steps), p_index=p.index, c_index=c.index, row_bytes=row_bytes,
                     x_row_bytes=x.shape[2] * x.shape[3] * DTYPE_BYTES[x.dtype], p_macs=op_macs(g, p),
                     c_macs=op_macs(g, c), depth=m.size, plan=plan, zero_scratch=bz)
    scratch = ((row_bytes + 3) // 4 * 4 + 4 * plan["args"]["R"]
               + max((op.kernel.scratch_bytes for op in sub.ops), default=0))
    return Op(kind="BANDED_FC", inputs=(x.id,), outputs=(c.outputs[0],), attrs=attrs, index=c.index,
              kernel=KernelChoice("band_fc", scratch))


def _borders_once(sub: Graph) -> tuple:
    """Row sub-layers that all use the rows form of conv2d_s8_dsp with one buffer layout need their buffer's border
    bytes zeroed once, not per call (variant BZ; the band zeroes its sub-layer scratch first): (graph, BZ set)."""
    from specializer.targets.cortex_m.kernels import conv as dsp_conv

    ops, layouts = [], set()
    for op in sub.ops:
        if op.kernel is None or op.kernel.entry != "conv2d_s8_dsp":
            return sub, False
        k = dataclasses.replace(op.kernel, variant=tuple(sorted({**dict(op.kernel.variant), "BZ": True}.items())))
        op = dataclasses.replace(op, kernel=k)
        a = dsp_conv.template_args(sub, op)
        if not a["BZ"]:
            return sub, False
        layouts.add((a["RWB"], a["NSLOT"], a["PL"], a["IW"], a["IC"]))
        ops.append(op)
    return (sub.with_ops(ops), True) if len(layouts) == 1 else (sub, False)


def _schedule(h: int, kh: int, sh: int, pt: int, oh: int, rows: int = 1) -> list:
    """Per step of `rows` output rows: (lo, hi) real input rows, top and bottom padding rows, the band moves."""
    out = []
    blo = bhi = 0
    for oy in range(0, oh, rows):
        n = min(rows, oh - oy)
        iy0, iy1 = oy * sh - pt, (oy + n - 1) * sh - pt + kh
        lo, hi = max(iy0, 0), min(iy1, h)
        keep_lo = max(blo, lo)
        keep = max(bhi - keep_lo, 0)
        new_lo = max(bhi, lo)
        out.append(dict(oy=oy, n=n, lo=lo, hi=hi, ptop=lo - iy0, pbot=iy1 - hi, keep_from=keep_lo - blo,
                        keep=keep, p_row=new_lo, p_rows=max(hi - new_lo, 0), p_at=new_lo - lo))
        blo, bhi = lo, hi
    return out


def _window(g: Graph, op: Op, r0: int, n: int) -> tuple:
    """Output rows [r0, r0 + n) of a convolution: (first input row, input rows, top pad, bottom pad)."""
    kh, _ = _kernel_hw(g, op)
    hx = g.t(op.inputs[0]).shape[1]
    pt = _pads(g, op)[0]
    lo = r0 * op.attrs.stride_h - pt
    hi = (r0 + n - 1) * op.attrs.stride_h - pt + kh
    lo_c, hi_c = max(lo, 0), min(hi, hx)
    return lo_c, hi_c - lo_c, lo_c - lo, hi - hi_c


def residual_candidates(g: Graph) -> list:
    """(P, C, A, S or None): x -> P -> C -> A = ADD(C's output, x or S(x)), every intermediate read once."""
    out = []
    for a in g.ops:
        if a.kind != "ADD" or a.kernel is None or len(a.inputs) != 2:
            continue
        y = g.t(a.outputs[0])
        if len(y.shape) != 4 or y.shape[0] != 1 or any(g.t(t).shape != y.shape for t in a.inputs):
            continue
        for pos in (0, 1):
            cm, other = a.inputs[pos], a.inputs[1 - pos]
            c = g.producer(cm)
            if c is None or c.kind != "CONV_2D" or not _windowed(g, c) or cm in g.outputs \
                    or _consumers(g, cm) != [a]:
                continue
            p = g.producer(c.inputs[0])
            if p is None or not _producer(g, p) or c.inputs[0] in g.outputs or _consumers(g, c.inputs[0]) != [c]:
                continue
            x = p.inputs[0]
            s = None
            if other != x:
                s = g.producer(other)
                if s is None or s.kind != "CONV_2D" or not _producer(g, s) or s.inputs[0] != x \
                        or other in g.outputs or _consumers(g, other) != [a]:
                    continue
            if x in g.outputs:
                continue
            out.append((p, c, a, s, pos))
            break
    return out


def _choose_kernels(sub: Graph, parent: dict, core: Any, inherit: Any) -> Optional[Graph]:
    """The registry's kernel for every sub-layer (None if a sub-shape has none); `inherit` as in `build`."""
    chosen = []
    for op in sub.ops:
        par = parent[op.index]
        try:
            e = registry.select(sub, op, core)
        except Exception:  # a sub-shape no kernel takes: leave the layers alone
            return None
        same = par.kernel is not None and e.name == par.kernel.entry
        variant = par.kernel.variant if (inherit and same) else ()
        if op.kind == "FULLY_CONNECTED":  # a sub-layer's input is a band row other steps read: never its scratch
            variant = tuple((k, v) for k, v in variant if k != "IP")
        if not inherit and same and "WFMT" in dict(par.kernel.variant):  # defaults, in the weight format (flash)
            variant = (("WFMT", dict(par.kernel.variant)["WFMT"]),)
        if inherit == "rows" and e.name == "conv2d_s8_dsp" and dict(variant).get("RING"):
            # the layer's variant without its ring (a band's sub-layer computes a few rows per call): KH rows
            # converted per output row, against KH x KW pixels per output pixel for im2col
            variant = tuple(sorted({**dict(variant), "RING": False}.items()))
        if isinstance(inherit, str) and inherit.startswith("seg") and e.name == "conv2d_s8_dsp":
            # row segments ("seg": SEG output pixels per buffer row, "seg<n>": n): the rows kernel's speed, little
            # scratch
            seg = int(inherit[3:]) if inherit[3:] else SEG
            variant = tuple(sorted({**dict(variant), "IM": "rows", "RING": False, "SEG": seg}.items()))
        k = KernelChoice(e.name, 0, variant=variant)
        op = dataclasses.replace(op, kernel=k)
        op = dataclasses.replace(op, kernel=dataclasses.replace(k, scratch_bytes=int(e.scratch_bytes(sub, op))))
        chosen.append(op)
    return sub.with_ops(chosen).prune()


def build(g: Graph, p: Op, c: Op, core: Any, inherit: bool = True, rows: int = 1, a: Optional[Op] = None,
          s: Optional[Op] = None, res_pos: int = 0) -> Optional[Op]:
    """The BANDED_PAIR op replacing p and c (and, for a residual block, the ADD a and the shortcut s), or None
    when a sub-layer has no kernel. `inherit`: the sub-layers keep the variant choose_variants picked for their
    layer; else their kernels' defaults (less scratch, often). `rows`: output rows per step. The output may
    overlap the input (kernels/band.py overlap; a residual block's output takes the input's place)."""
    x, m, y = g.t(p.inputs[0]), g.t(p.outputs[0]), g.t(c.outputs[0])
    yy = g.t(a.outputs[0]) if a is not None else y
    kh, _ = _kernel_hw(g, c)
    _, hx, wx, cin = x.shape
    _, h, w_, cm = m.shape
    oh, ow, cout = y.shape[1], y.shape[2], y.shape[3]
    top, _, left, right = _pads(g, c)
    sched = _schedule(h, kh, c.attrs.stride_h, top, oh, rows)
    tensors = {tid: t for tid, t in g.tensors.items() if t.is_const}
    nid = max(g.tensors) + 1
    ops: list = []
    p_of: dict = {}
    c_of: dict = {}
    s_of: dict = {}
    a_of: dict = {}
    parent: dict = {}

    def new_tensor(like: Tensor, shape) -> int:
        nonlocal nid
        tensors[nid] = dataclasses.replace(like, id=nid, shape=tuple(shape), data=None, variable=False)
        nid += 1
        return nid - 1

    ins, outs = [], []
    base = SUB_INDEX + 1000 * (a or c).index  # sub-layer indices: never a model op's (names, profile marks)

    def windowed(orig: Op, table: dict, r0: int, n: int, src: Tensor, dst: Tensor, pad_lr: tuple) -> tuple:
        """The sub-layer of `orig` computing its output rows [r0, r0 + n) (shared by equal shapes)."""
        x0, xn, pt_, pb_ = _window(g, orig, r0, n)
        key = (n, xn, pt_, pb_)
        if key not in table:
            i, o = new_tensor(src, (1, xn) + src.shape[2:]), new_tensor(dst, (1, n) + dst.shape[2:])
            attrs = dataclasses.replace(orig.attrs, explicit_padding=(pt_, pb_) + pad_lr)
            table[key] = base + len(ops)
            parent[base + len(ops)] = orig
            ops.append(dataclasses.replace(orig, inputs=(i,) + tuple(orig.inputs[1:]), outputs=(o,),
                                           index=base + len(ops), attrs=attrs, kernel=None, stream=None))
            ins.append(i)
            outs.append(o)
        return x0, table[key]

    for r in sched:
        if r["p_rows"]:
            r["x_row"], r["p_op"] = windowed(p, p_of, r["p_row"], r["p_rows"], x, m, _pads(g, p)[2:])
        key = (r["hi"] - r["lo"], r["ptop"], r["pbot"], r["n"])
        if key not in c_of:
            i, o = new_tensor(m, (1, key[0], w_, cm)), new_tensor(y, (1, r["n"], ow, cout))
            attrs = dataclasses.replace(c.attrs, explicit_padding=(key[1], key[2], left, right))
            c_of[key] = base + len(ops)
            parent[base + len(ops)] = c
            ops.append(dataclasses.replace(c, inputs=(i,) + tuple(c.inputs[1:]), outputs=(o,), index=base + len(ops),
                                           attrs=attrs, kernel=None, stream=None))
            ins.append(i)
            outs.append(o)
        if a is not None:
            if s is not None:
                r["s_x_row"], r["s_op"] = windowed(s, s_of, r["oy"], r["n"], x, g.t(s.outputs[0]), _pads(g, s)[2:])
            if r["n"] not in a_of:
                ai = [new_tensor(g.t(t), (1, r["n"], ow, cout)) for t in a.inputs]
                o = new_tensor(yy, (1, r["n"], ow, cout))
                a_of[r["n"]] = base + len(ops)
                parent[base + len(ops)] = a
                ops.append(dataclasses.replace(a, inputs=tuple(ai), outputs=(o,), index=base + len(ops),
                                               kernel=None, stream=None))
                ins += ai
                outs.append(o)
            r["a_op"] = a_of[r["n"]]
    sub = _choose_kernels(Graph(tensors=tensors, ops=tuple(ops), inputs=tuple(ins), outputs=tuple(outs),
                                name=g.name), parent, core, inherit)
    if sub is None:
        return None
    row_bytes = w_ * cm * DTYPE_BYTES[m.dtype]
    band_rows = max(r["hi"] - r["lo"] for r in sched)
    if s is not None:  # the shortcut's rows go where the band holds rows C has read and the next step drops
        need = rows * ow * cout * DTYPE_BYTES[yy.dtype]
        for k, r in enumerate(sched):
            used = r["hi"] - r["lo"]
            drop = min(sched[k + 1]["keep_from"] if k + 1 < len(sched) else used, band_rows)
            if drop * row_bytes >= need:
                r["s_at"] = 0
            elif (band_rows - used) * row_bytes >= need:
                r["s_at"] = used * row_bytes
    s_in_band = s is not None and all("s_at" in r for r in sched)
    steps = tuple(BandStep(r["oy"], r["keep_from"], r["keep"], r.get("x_row", -1), r.get("p_op", -1), r["p_at"],
                           c_of[(r["hi"] - r["lo"], r["ptop"], r["pbot"], r["n"])], r["n"], r.get("s_op", -1),
                           r.get("s_x_row", -1), r.get("a_op", -1), r.get("s_at", -1) if s_in_band else -1)
                  for r in sched)
    from specializer.api import op_macs

    attrs = BandedPair(sub=sub, steps=steps, p_index=p.index, c_index=c.index, row_bytes=w_ * cm * DTYPE_BYTES[m.dtype],
                       band_rows=max(r["hi"] - r["lo"] for r in sched), x_row_bytes=wx * cin * DTYPE_BYTES[x.dtype],
                       y_row_bytes=ow * cout * DTYPE_BYTES[yy.dtype], p_macs=op_macs(g, p),
                       c_macs=op_macs(g, c), rows=rows, a_index=a.index if a is not None else -1,
                       s_index=s.index if s is not None else -1, s_macs=op_macs(g, s) if s is not None else 0,
                       res_pos=res_pos, s_in_band=s_in_band)
    band = attrs.band_rows * attrs.row_bytes
    scratch = ((band + 3) // 4 * 4 + attrs.c_out_bytes + attrs.s_out_bytes
               + max((op.kernel.scratch_bytes for op in sub.ops), default=0))
    from specializer.kernels.band import overlap

    fused = Op(kind="BANDED_PAIR", inputs=(x.id,), outputs=(yy.id,), attrs=attrs, index=(a or c).index,
               kernel=KernelChoice("band_pair", scratch))
    return dataclasses.replace(fused, kernel=dataclasses.replace(
        fused.kernel, overlap=overlap(g, fused)))


ROWS = (1, 2, 4)  # output rows per step tried for residual blocks: more rows, fewer calls, a larger band


def fuse_bands(g: Graph, core: Any = None, generic_only: bool = False, force: bool = False,
               optimize: str = "balanced", rechoose: Any = None) -> Graph:
    """`force` (tests: prefer={"BAND": True}) fuses every candidate, whatever the arena says. `optimize`: "time"
    fuses nothing, "balanced" layer pairs (their output chasing their input) and residual blocks (their output over
    their input), each pair in its fastest form that cuts the arena enough; "ram" the smallest forms, then relaxes
    every band (not only the blocks) to the fastest that keeps the arena."""
    from specializer.passes.plan_memory import plan_memory

    if generic_only or (optimize == "time" and not force):  # the ablation build keeps the model's layers
        return g
    arena = None if force else plan_memory(g).memory_plan.arena_size
    orig = g
    chosen: dict = {}  # fused op index -> (build arguments, (inherit, rows) taken)

    def best_of(trials: list, smallest: bool = optimize == "ram"):
        best = None
        for key, make in trials:
            fused = make()
            if fused is None:
                continue
            gone = set(fused.attrs.members)
            trial = g.with_ops([fused if op.index == fused.index else op for op in g.ops
                                if op.index not in gone or op.index == fused.index]).prune()
            if force:
                return 0, trial, key
            # the smallest arena; in ram mode on a tie the smaller scratch (the peak may move here once other
            # layers fuse; _relax then takes the fastest form the final arena allows), else the first (faster)
            a = (plan_memory(trial).memory_plan.arena_size, fused.kernel.scratch_bytes if smallest else 0)
            if a[0] < MIN_GAIN * arena and (best is None or a < best[0]):
                best = (a, trial, key)
                if not smallest:  # balanced pairs: the first (fastest) form that cuts the arena enough
                    break
        return (best[0][0], best[1], best[2]) if best is not None else None

    blocks = residual_candidates(g)
    # a pair's output chases its input in every mode (it used to be RAM-first only; `benchmarks/run_models.py`,
    # 2026-11-30: VWW 31,020 -> 29,756 B and the CIFAR-10 seed 19,612 -> 17,812 B of RAM at equal cycles)
    for p, c, a, s, pos in blocks:  # residual blocks first: their input can take their output
        if any(op not in g.ops for op in (p, c, a) + ((s,) if s is not None else ())):
            continue
        best = best_of([((inh, r), lambda inh=inh, r=r: build(g, p, c, core, inh, r, a, s, pos))
                        for r in ROWS for inh in (True, False)], smallest=True)
        if best is not None:
            arena, g, key = best
            chosen[a.index] = ((p, c, a, s, pos), key)
    for p, c in candidates(g):
        if p not in g.ops or c not in g.ops:
            continue
        # the layers' own variants first (faster); defaults where they need less
        best = best_of([((inh, 1), lambda inh=inh: build(g, p, c, core, inh))
                        for inh in _forms(p)])
        if best is not None:
            arena, g, key = best
            chosen[c.index] = ((p, c, None, None, 0), key)
    for p, c in fc_candidates(g):  # a convolution whose output only a fully connected layer reads
        if p not in g.ops or c not in g.ops:
            continue
        best = best_of([((inh, 1), lambda inh=inh: build_fc(g, p, c, core, inh)) for inh in (True, False)])
        if best is not None:
            arena, g, key = best
    if not force:  # balanced: only the residual blocks relax (pairs took their fastest form that fits)
        g = _relax(g, orig, chosen if optimize == "ram" else {k: v for k, v in chosen.items() if v[0][2] is not None},
                   core, rechoose or (lambda h: h))
    return g


SEG = 8  # output pixels per buffer row of the convolution sub-layers' "seg" form
RELAX_SLACK = 1.015  # a faster band form may take the arena up to 1.5% above the smallest plan
PREFERENCE = tuple((inh, r) for inh in (True, "rows", "seg", "seg2", False) for r in sorted(ROWS, reverse=True))


def _forms(p: Op) -> tuple:
    """The sub-layer forms a pair tries, faster first: the layer's own variant, the same without its ring (when
    it has one), its kernel's defaults."""
    return (True, "rows", False) if _has_ring(p) else (True, False)


def _has_ring(op: Optional[Op]) -> bool:
    """A convolution whose chosen variant keeps a ring row buffer (which a band's sub-layer cannot keep)."""
    return op is not None and op.kernel is not None and bool(dict(op.kernel.variant).get("RING"))


def _relax(g: Graph, orig: Graph, chosen: dict, core: Any, rechoose) -> Graph:
    """Once every fusion is made the arena's peak is known: each band takes the fastest form (its layers' own
    variants, more rows per step, row segments) that keeps the arena within RELAX_SLACK of where it will be once
    the other layers' variants are chosen again (`rechoose`: what rechoose_variants will do)."""
    from specializer.passes.plan_memory import plan_memory

    if not chosen:
        return g
    arena = plan_memory(rechoose(g)).memory_plan.arena_size
    for idx, ((p, c, a, s, pos), taken) in chosen.items():
        ring = any(_has_ring(o) for o in (p, c, s))
        for key in PREFERENCE:
            if key == taken:
                break
            inh, rows = key
            if inh == "rows" and not ring:  # the same build as the layers' own variants
                continue
            fused = build(orig, p, c, core, inh, rows, a, s, pos)
            if fused is None:
                continue
            trial = g.with_ops([fused if op.index == idx else op for op in g.ops])
            # residual blocks: checked after the other layers' variants are chosen again (their scratch moves
            # the peak); pairs: against the plan as it stands (one choose_variants per trial is too slow on
            # models with dozens of bands)
            if plan_memory(rechoose(trial) if a is not None else trial).memory_plan.arena_size <= arena * RELAX_SLACK:
                g = trial
                break
    return g


def rechoose_variants(g: Graph, budget: Any = "default", prefer: Any = None, optimize: str = "balanced") -> Graph:
    """After a fusion the peak may sit elsewhere: choose_variants again (its RAM steps now see the banded plan)."""
    if not any(op.kind in ("BANDED_PAIR", "BANDED_FC") for op in g.ops):
        return g
    from specializer.passes.choose_variants import choose_variants, default_budget

    if budget is not None:  # the bands' sub-layers keep their variants: their streams count against the budget
        small, used = band_streams(g)
        budget = (default_budget(g, small) if budget == "default" else budget) - used
    return choose_variants(g, max(budget, 0) if budget is not None else None, prefer, optimize)


def band_streams(g: Graph) -> tuple:
    """(smallest, taken): the flash of the row bands' sub-layer variants (one per distinct weight stream) at
    their smallest and as chosen."""
    small = used = 0
    seen = set()
    for op in g.ops:
        if op.kind not in ("BANDED_PAIR", "BANDED_FC"):
            continue
        sub = op.attrs.sub
        for sop in sub.ops:
            e = registry.entry_by_name(sop.kernel.entry) if sop.kernel is not None else None
            if e is None or e.variants is None:
                continue
            key = tuple(t for t in sop.inputs if t is not None and sub.t(t).is_const)
            cands = e.variants(sub, sop)
            if key in seen or len(cands) < 2:  # as choose_variants' candidates: layers with a choice
                continue
            seen.add(key)
            small += min(c.flash for c in cands)
            used += _taken(e, sub, sop, cands)
    return small, used


def _taken(e, sub: Graph, sop: Op, cands: list) -> int:
    """The flash of the candidate the sub-layer runs: the most specific one whose every parameter its template
    arguments carry (a parameter a candidate leaves out is off); the largest when none does (not undercounted)."""
    args = e.template_args(sub, sop)

    def fits(c) -> bool:
        return all(args.get(k, False if isinstance(v, bool) else None) == v for k, v in c.params.items())

    match = [c for c in cands if fits(c)]
    return max(match, key=lambda c: len(c.params)).flash if match else max(c.flash for c in cands)
