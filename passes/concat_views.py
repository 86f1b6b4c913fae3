"""concat_views: a CONCATENATION's inputs written by their producers straight into their slice of its output.

How it works
1. For each CONCATENATION an input is a candidate when its bytes can simply be the slice: it is produced by a
   layer of ours (not an alias or another CONCATENATION), it is no graph input or output, constant or variable,
   appears once among the inputs, is no other concatenation's slice already, no alias op reads it, and its
   slice starts at a multiple of the arena alignment. Then:
   - contiguous slices (the dimensions before the axis multiply to 1, e.g. vectors joined end to end): any
     producer writes there unchanged and other layers may read it there too;
   - last-axis slices of an int8 tensor with more than one pixel (the channel concatenations of detectors):
     the producer must write its output pixels at a stride (registry entry `ostride`, e.g. the pools and
     RESIZE_NEAREST_NEIGHBOR; `KernelChoice.ostride` = the output's channels), the concatenation must be its
     only reader, and the stride must be a multiple of the alignment.
2. The op records the positions (`Op.views`); `passes.liveness` puts those inputs in the output's buffer at their
   offsets; the concatenation copies only the other inputs (nothing at all when every input is a view).
3. A view makes the whole output live from the first view's producer on, so it is kept only when the planned
   arena does not grow (one `plan_memory` with and one without, per concatenation; the copy it saves is the gain).

    before:  p = MAX_POOL(x) [6x6x48]; y = CONCAT(x, p) [6x6x96]          (p copied into y's channels 48..95)
    after:   MAX_POOL writes pixel k of p at y + 48 + 96 k; CONCAT copies only x
"""
from __future__ import annotations

import dataclasses

from specializer.ir import Graph, Op

from .liveness import concat_layout
from .plan_memory import plan_memory


def _entry(op: Op):
    from specializer.registry import entry_by_name

    return entry_by_name(op.kernel.entry)


def candidates(g: Graph, op: Op, alignment: int = 4) -> dict[int, int]:
    """Input position -> the output pixel stride its producer would write with (0: contiguous slice)."""
    y = g.t(op.outputs[0])
    last_axis = op.attrs.axis in (-1, len(y.shape) - 1)
    fixed = set(g.inputs) | set(g.outputs)
    readers: dict[int, list[Op]] = {}
    for o in g.ops:
        for t in set(o.inputs):
            if t is not None:
                readers.setdefault(t, []).append(o)
    taken = {o.inputs[p] for o in g.ops for p in o.views}  # a tensor is the slice of one output at most
    out: dict[int, int] = {}
    for pos, (tid, s) in enumerate(zip(op.inputs, concat_layout(g, op))):
        t = g.t(tid)
        prod = g.producer(tid)
        if (prod is None or prod.kernel is None or prod.alias_of is not None or prod.kind == "CONCATENATION"
                or tid in fixed or tid in taken or t.is_const or t.variable or t.nbytes == 0
                or op.inputs.count(tid) != 1
                or s.offset % alignment or any(r.alias_of is not None for r in readers.get(tid, ()))):
            continue
        if s.outer == 1 or s.chunk == s.stride:
            out[pos] = 0
        elif (last_axis and y.dtype == "int8" and s.stride % alignment == 0 and len(prod.outputs) == 1
              and [r.index for r in readers[tid]] == [op.index] and _entry(prod).ostride):
            out[pos] = y.shape[-1]
    return out


def with_views(g: Graph, op: Op, views: dict[int, int]) -> Graph:
    """`g` with `op`'s inputs at `views` (position -> producer's output stride) written in place."""
    producers = {g.producer(op.inputs[p]).index: s for p, s in views.items()}
    ops = []
    for o in g.ops:
        if o.index == op.index:
            o = dataclasses.replace(o, views=tuple(sorted(views)))
        elif o.index in producers and producers[o.index]:
            o = dataclasses.replace(o, kernel=dataclasses.replace(o.kernel, ostride=producers[o.index]))
        ops.append(o)
    return g.with_ops(ops)


def without_views(g: Graph) -> Graph:
    """`g` with every concatenation copying all its inputs again (the TFLM + CMSIS-NN side of the benchmark)."""
    ops = [dataclasses.replace(o, views=(), kernel=(dataclasses.replace(o.kernel, ostride=0)
                                                    if o.kernel is not None and o.kernel.ostride else o.kernel))
           for o in g.ops]
    return g.with_ops(ops)


def concat_views(g: Graph, alignment: int = 4, share_all: bool = False) -> Graph:
    """Make every CONCATENATION input a view of the output where that is legal and the arena does not grow."""
    concats = [op.index for op in g.ops if op.kind == "CONCATENATION" and op.kernel is not None
               and op.kernel.entry == "concat_s8" and not op.views]
    arena = None
    for index in concats:
        op = g.op_by_index(index)
        views = candidates(g, op, alignment)
        if not views:
            continue
        if arena is None:
            arena = plan_memory(g, alignment=alignment, share_all=share_all).memory_plan.arena_size
        h = with_views(g, op, views)
        a = plan_memory(h, alignment=alignment, share_all=share_all).memory_plan.arena_size
        if a <= arena:
            g, arena = h, a
    return g
