"""Liveness: which arena buffers exist and during which op steps each must hold its bytes.

How it works
1. A *step* is an op's position in `g.ops` (0..n-1); step n stands for "after the last op" (graph outputs are
   read there). A buffer is live on the closed interval [first, last] of steps.
2. Planned tensors are the non-constant, non-empty tensors that the graph reads or writes (graph inputs/outputs,
   op inputs/outputs). Constants live in flash and zero-size tensors (LSTM quantization carriers) need no bytes;
   neither is planned. Op `intermediates` are quantization carriers only and are never planned.
3. Alias groups: an op with `alias_of` set (RESHAPE/SQUEEZE/EXPAND_DIMS turned into views) makes its output the
   same bytes as `alias_of`. A union-find joins such tensors (chains work); the group is one buffer whose size is
   the largest member and whose lifetime is the union of the members' lifetimes.
4. Lifetimes: a tensor starts at the step that produces it (graph inputs at step 0) and ends at the last step
   that reads it (graph outputs at step n; a tensor nobody reads ends where it is produced). Variable tensors
   (LSTM state) and any group containing one live over the whole run [0, n].
5. Scratch: an op whose `kernel.scratch_bytes > 0` gets a buffer of kind 'scratch' live at its own step only.
6. In-place candidates (`inplace_candidates`): the op's chosen kernel entry lists input positions p whose buffer
   the output may overwrite. The pair is a candidate when the input's buffer dies at this op, both buffers have the
   same size (and the two tensors too), neither is a graph output, a variable or a constant, and no other input
   position the kernel may not overwrite reads the same bytes (x and a view of x). Whether a candidate is taken
   is the placement's decision (`passes.plan_memory`).
7. Slices: a CONCATENATION's `views` are inputs its producers wrote straight into their slice of its output
   (`passes.concat_views`). They join the output's group like aliases, but at a byte offset, and along the last
   axis as `outer` chunks at a stride (`slices`), and a tensor is the slice of one output at most. A slice is
   never an in-place or chasing output; where a contiguous slice is read by a later layer that may chase its
   input, the distance is measured from the group's first byte, which only lies further below the slice (safe).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Optional

from specializer.ir import DTYPE_BYTES, Graph, IRError, Op

KINDS = ("tensor", "scratch", "variable")


@dataclass(frozen=True)
class Buffer:
    """One block of arena bytes: an alias group of tensors, or one op's scratch.

    `id` is the buffer's position in the list `buffers(g)` returns. `tensors` are the tensor ids sharing the bytes
    (sorted; empty for scratch). `first`/`last` are inclusive op steps. `op_index` is the owning op's `Op.index`
    for scratch buffers, None otherwise. `name` is for humans (root tensor name, or `scratch#<op index>`).
    """

    id: int
    tensors: tuple[int, ...]
    size: int
    first: int
    last: int
    kind: str
    op_index: Optional[int] = None
    name: str = ""

    def live_at(self, step: int) -> bool:
        return self.first <= step <= self.last

    def overlaps_in_time(self, other: "Buffer") -> bool:
        return self.first <= other.last and other.first <= self.last


@dataclass(frozen=True)
class Slice:
    """Where a CONCATENATION input written in place lies in the output's bytes: `outer` chunks of `chunk` bytes,
    `stride` bytes apart, the first `offset` bytes after the output's first byte."""

    of: int
    offset: int
    outer: int
    chunk: int
    stride: int

    def ranges(self, base: int) -> list[tuple[int, int]]:
        """The byte ranges [lo, hi) the slice covers when its own first byte is at `base`."""
        if self.outer == 1 or self.chunk == self.stride:
            return [(base, base + self.outer * self.chunk)]
        return [(base + k * self.stride, base + k * self.stride + self.chunk) for k in range(self.outer)]


def concat_layout(g: Graph, op: Op) -> list[Slice]:
    """Where each input of a CONCATENATION lies in its output's bytes (views or not), in input order."""
    y = g.t(op.outputs[0])
    rank = len(y.shape)
    axis = op.attrs.axis + rank if op.attrs.axis < 0 else op.attrs.axis
    inner = DTYPE_BYTES[y.dtype]
    for d in y.shape[axis + 1:]:
        inner *= d
    outer = 1
    for d in y.shape[:axis]:
        outer *= d
    out, off = [], 0
    for tid in op.inputs:
        chunk = g.t(tid).shape[axis] * inner
        out.append(Slice(of=y.id, offset=off, outer=outer, chunk=chunk, stride=y.shape[axis] * inner))
        off += chunk
    return out


def slices(g: Graph) -> dict[int, Slice]:
    """tensor id -> its Slice, for every CONCATENATION input written in place (`Op.views`). A tensor is the
    slice of one concatenation at most (IRError otherwise: two outputs would share its bytes)."""
    out: dict[int, Slice] = {}
    for op in g.ops:
        if op.kind != "CONCATENATION" or not op.views:
            continue
        layout = concat_layout(g, op)
        for pos in op.views:
            tid = op.inputs[pos]
            if tid in out:
                raise IRError(f"op #{op.index} CONCATENATION: input %{tid} is already a slice of another "
                              "concatenation's output")
            out[tid] = layout[pos]
    return out


@dataclass(frozen=True)
class InplaceCandidate:
    """The output `out_tid` of the op at `step` may take the bytes of its input `in_tid` (position `position`)."""

    out_buffer: int
    in_buffer: int
    out_tid: int
    in_tid: int
    step: int
    position: int


def planned_tensors(g: Graph) -> list[int]:
    """Ids of the tensors that get arena bytes, sorted (see point 2 of the module docstring)."""
    seen: set[int] = set(g.inputs) | set(g.outputs)
    for op in g.ops:
        seen.update(t for t in op.inputs if t is not None)
        seen.update(op.outputs)
    out = []
    for tid in sorted(seen):
        t = g.tensors.get(tid)
        if t is None:
            raise IRError(f"tensor %{tid} is referenced but does not exist")
        if t.is_const or t.nbytes == 0:
            continue
        out.append(tid)
    return out


def _alias_groups(g: Graph, planned: list[int]) -> dict[int, int]:
    """tensor id -> root tensor id of its alias group (the smallest id in the group, for determinism)."""
    parent = {tid: tid for tid in planned}

    def find(x: int) -> int:
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for op in g.ops:
        for p in op.views:  # a slice written in place shares the concatenation output's bytes
            a, b = find(op.inputs[p]), find(op.outputs[0])
            if a != b:
                parent[max(a, b)] = min(a, b)
        if op.alias_of is None:
            continue
        where = f"op #{op.index} {op.kind}"
        if op.alias_of not in op.inputs:
            raise IRError(f"{where}: alias_of %{op.alias_of} is not one of its inputs")
        src = g.t(op.alias_of)
        if src.is_const:
            raise IRError(f"{where}: output aliases constant %{op.alias_of}; fold the op instead")
        for out in op.outputs:
            if out not in parent or op.alias_of not in parent:
                continue  # zero-size on either side: nothing to share
            a, b = find(out), find(op.alias_of)
            if a != b:
                lo, hi = min(a, b), max(a, b)
                parent[hi] = lo
    return {tid: find(tid) for tid in planned}


def buffers(g: Graph) -> list[Buffer]:
    """All arena buffers of `g` with their lifetimes: alias groups and variables first (ordered by first step,
    then smallest tensor id), then one scratch buffer per op that needs scratch (in op order). Pure."""
    n = len(g.ops)
    planned = planned_tensors(g)
    root = _alias_groups(g, planned)
    first: dict[int, int] = {}
    last: dict[int, int] = {}

    def touch(tid: int, step: int) -> None:
        if tid not in root:
            return
        first[tid] = min(first.get(tid, step), step)
        last[tid] = max(last.get(tid, step), step)

    for tid in g.inputs:
        touch(tid, 0)
    for step, op in enumerate(g.ops):
        for tid in op.inputs:
            if tid is not None:
                touch(tid, step)
        for tid in op.outputs:
            touch(tid, step)
    for tid in g.outputs:
        touch(tid, n)
    for tid in planned:
        if g.tensors[tid].variable:
            touch(tid, 0)
            touch(tid, n)
        if tid not in first:  # referenced only as an (unused) graph input edge case
            touch(tid, 0)

    groups: dict[int, list[int]] = {}
    for tid in planned:
        groups.setdefault(root[tid], []).append(tid)
    protos = []
    for r, members in groups.items():
        members.sort()
        variable = any(g.tensors[t].variable for t in members)
        f = 0 if variable else min(first[t] for t in members)
        l_ = n if variable else max(last[t] for t in members)
        size = max(g.tensors[t].nbytes for t in members)
        source = min(members, key=lambda t: (first[t], t))  # the member that exists first names the buffer
        protos.append((f, r, tuple(members), size, l_, "variable" if variable else "tensor", g.tensors[source].name))
    protos.sort(key=lambda p: (p[0], p[1]))
    out = [Buffer(id=i, tensors=m, size=s, first=f, last=l_, kind=k, name=nm)
           for i, (f, r, m, s, l_, k, nm) in enumerate(protos)]
    for step, op in enumerate(g.ops):
        if op.kernel is not None and op.kernel.scratch_bytes > 0:
            out.append(Buffer(id=len(out), tensors=(), size=int(op.kernel.scratch_bytes), first=step, last=step,
                              kind="scratch", op_index=op.index, name=f"scratch#{op.index}"))
    return out


def buffer_of(bufs: list[Buffer]) -> dict[int, Buffer]:
    """tensor id -> the buffer holding it."""
    return {tid: b for b in bufs for tid in b.tensors}


def dies_at(g: Graph, op: Op, tid: int) -> bool:
    """Whether tensor `tid`'s bytes may be overwritten by `op` whatever the op order: no other op reads them (views
    only pass them on), and no tensor sharing them is a graph output, a variable or a constant."""
    b = buffer_of(buffers(g)).get(tid)
    if b is None or b.kind != "tensor":
        return False
    group = set(b.tensors)
    if group & set(g.outputs) or any(g.t(t).variable or g.t(t).is_const for t in group):
        return False
    for other in g.ops:
        if other.index == op.index or other.alias_of is not None:
            continue
        if group & {t for t in other.inputs if t is not None}:
            return False
    return [t for t in op.inputs if t in group] == [tid]


def kernel_inplace_positions(op: Op) -> tuple[int, ...]:
    """Input positions whose buffer `op`'s chosen kernel may overwrite with its output (registry entry field)."""
    if op.kernel is None or op.alias_of is not None:
        return ()
    from specializer.registry import entry_by_name

    try:
        e = entry_by_name(op.kernel.entry)
        return tuple(op.kernel.inplace) if callable(e.inplace) else tuple(e.inplace)
    except KeyError as e:
        raise IRError(f"op #{op.index} {op.kind}: kernel {op.kernel.entry!r} is not in the registry") from e


def inplace_candidates(g: Graph, bufs: list[Buffer],
                       positions: Callable[[Op], tuple[int, ...]] = kernel_inplace_positions
                       ) -> list[InplaceCandidate]:
    """The legal in-place (output takes input's bytes) pairs of `g`, in op order then position order."""
    owner = buffer_of(bufs)
    outputs = set(g.outputs)
    sliced = slices(g)
    out = []
    seen = set()
    for step, op in enumerate(g.ops):
        pos = positions(op)
        if not pos:
            continue
        for p in pos:
            ib = _dying_input(op, step, p, pos, owner, outputs)
            if ib is None:
                continue
            in_tid = op.input(p)
            for out_tid in op.outputs:
                ob = None if out_tid in sliced else _fresh_output(out_tid, step, ib, owner)
                if ob is None:
                    continue
                if ob.size != ib.size or g.tensors[out_tid].nbytes != g.tensors[in_tid].nbytes:
                    continue
                key = (ob.id, ib.id)
                if key in seen:
                    continue
                seen.add(key)
                out.append(InplaceCandidate(out_buffer=ob.id, in_buffer=ib.id, out_tid=out_tid, in_tid=in_tid,
                                            step=step, position=p))
    return out


def _dying_input(op, step, p, shared_ok, owner, outputs):
    """The tensor buffer read at input position `p` of the op at `step` if its bytes may be overwritten there:
    its last reader is this op, it holds no graph output, and no other input (positions outside `shared_ok`)
    reads through the same bytes (x and a view of x). None otherwise."""
    in_tid = op.input(p)
    if in_tid is None or in_tid not in owner:
        return None
    ib = owner[in_tid]
    if ib.kind != "tensor" or ib.last != step or any(t in outputs for t in ib.tensors):
        return None
    if any(q not in shared_ok and t is not None and owner.get(t) is ib for q, t in enumerate(op.inputs)):
        return None
    return ib


def _fresh_output(out_tid, step, ib, owner):
    """The tensor buffer of `out_tid` if it is first written at `step` and is not the input buffer `ib`."""
    ob = owner.get(out_tid)
    if ob is None or ob.kind != "tensor" or ob.first != step or ob.id == ib.id:
        return None
    return ob


@dataclass(frozen=True)
class OverlapCandidate:
    """The output `out_tid` of the op at `step` may overlap its dying input `in_tid` if in_off - out_off >= `gap`."""

    out_buffer: int
    in_buffer: int
    out_tid: int
    in_tid: int
    step: int
    gap: int


def overlap_candidates(g: Graph, bufs: list[Buffer]) -> list[OverlapCandidate]:
    """The legal "chasing" overlaps: kernels that finish reading an input region before writing over it
    (`op.kernel.overlap`: (input position, minimum input offset - output offset)), the input dying at the op."""
    owner = buffer_of(bufs)
    outputs = set(g.outputs)
    sliced = slices(g)
    out = []
    for step, op in enumerate(g.ops):
        if op.kernel is None or op.alias_of is not None or not op.kernel.overlap or op.outputs[0] in sliced:
            continue
        for p, gap in op.kernel.overlap:
            ib = _dying_input(op, step, p, (p,), owner, outputs)
            if ib is None:
                continue
            out_tid = op.outputs[0]
            ob = _fresh_output(out_tid, step, ib, owner)
            if ob is None:
                continue
            out.append(OverlapCandidate(ob.id, ib.id, out_tid, op.input(p), step, int(gap)))
    return out


def live_bytes(bufs: list[Buffer], n_steps: int) -> list[int]:
    """Total bytes of the buffers live at each step 0..n_steps (a lower bound on the arena without in-place)."""
    totals = [0] * (n_steps + 1)
    for b in bufs:
        for s in range(max(b.first, 0), min(b.last, n_steps) + 1):
            totals[s] += b.size
    return totals


def peak_live_bytes(g: Graph) -> int:
    """max over steps of the live bytes: no plan without in-place can have a smaller arena."""
    return max(live_bytes(buffers(g), len(g.ops)), default=0)
