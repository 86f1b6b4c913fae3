"""Memory placement: give every arena buffer a byte offset so that buffers live at the same step never overlap.

How it works
1. `passes.liveness.buffers(g)` lists the buffers (alias groups, variables, op scratch) with their lifetimes, and
   `inplace_candidates` the (output, input) pairs whose kernel may write the output over the dying input.
2. Placement is greedy first-fit in address order: buffers are taken one by one in some *ordering*; each goes at
   the lowest aligned offset where it does not collide with an already placed buffer whose lifetime intersects
   its own.
3. In-place is a choice the placement makes, not a rewrite made before it: for a candidate pair, the second of
   the two buffers to be placed may also go at exactly the offset of the first (same size, so full overlap), if
   nothing else collides there. Likewise a "chasing" pair (a kernel that writes its output in the order it
   finishes reading its dying input, e.g. a convolution row by row: `op.kernel.overlap` gives the minimum input
   offset - output offset) may overlap at that distance. Mode 'off' never does either, mode 'inplace' takes it
   when it is the lowest legal offset, mode 'inplace-prefer' takes it whenever it is legal.
4. Several orderings (size descending as in TFLM's greedy planner, lifetime length, first use, size x lifetime,
   contention, ...) times the three in-place modes are tried; the smallest arena wins, ties go to the earliest
   variant in the list (so 'off' wins ties and in-place can only help). The winner's name is `strategy`.
5. The arena size is exact: the largest end offset rounded up to the alignment. Offsets are recorded for every
   planned tensor (alias group members share their group's offset), scratch offsets per `Op.index`, and the
   in-place pairs that ended up at the same offset in `MemoryPlan.inplace[out_tid] = in_tid`.
6. `check_plan(g)` re-derives liveness and proves the plan: every planned tensor/scratch has an aligned offset
   inside the arena, alias members agree, and two buffers live at a common step never overlap unless they are a
   recorded, legal in-place pair. `timeline(g)` prints one row per buffer with a bar over the steps.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Optional

from specializer.ir import Graph, IRError, MemoryPlan, Op

from .liveness import Buffer, buffer_of, buffers, inplace_candidates, kernel_inplace_positions, \
    live_bytes, overlap_candidates, slices

INPLACE_MODES = ("off", "inplace", "inplace-prefer")


def _align_up(x: int, a: int) -> int:
    return (x + a - 1) // a * a


# ---- orderings ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class _Ctx:
    """Per-buffer facts the orderings look at."""

    conflict_bytes: dict[int, int]  # buffer id -> total size of the buffers whose lifetime meets its own
    contention: dict[int, int]  # buffer id -> max live bytes over the steps of its lifetime


def _span(b: Buffer) -> int:
    return b.last - b.first + 1


ORDERINGS: tuple[tuple[str, Callable[[Buffer, _Ctx], tuple]], ...] = (
    ("size_desc", lambda b, c: (-b.size, b.first, b.id)),  # TFLM GreedyMemoryPlanner
    ("size_desc_long_first", lambda b, c: (-b.size, -_span(b), b.id)),
    ("contention", lambda b, c: (-c.contention[b.id], -b.size, b.first, b.id)),
    ("conflict_bytes", lambda b, c: (-c.conflict_bytes[b.id], -b.size, b.id)),
    ("size_x_lifetime", lambda b, c: (-b.size * _span(b), -b.size, b.id)),
    ("lifetime_desc", lambda b, c: (-_span(b), -b.size, b.id)),
    ("first_use", lambda b, c: (b.first, -b.size, b.id)),
    ("last_use_desc", lambda b, c: (-b.last, -b.size, b.id)),
    ("first_use_desc", lambda b, c: (-b.first, -b.size, b.id)),
)


def _conflicts(bufs: list[Buffer]) -> list[list[int]]:
    out: list[list[int]] = [[] for _ in bufs]
    by_first = sorted(bufs, key=lambda b: (b.first, b.id))
    for i, a in enumerate(by_first):
        for b in by_first[i + 1:]:
            if b.first > a.last:
                break
            out[a.id].append(b.id)
            out[b.id].append(a.id)
    return out


def _place(bufs: list[Buffer], order: list[int], conf: list[list[int]], partners: dict[int, list[int]],
           mode: str, alignment: int, chase: Optional[dict[int, list]] = None) -> tuple[dict[int, int], int]:
    """Greedy first-fit of `bufs` taken in `order`. Returns (buffer id -> offset, arena size).

    `chase[bid]` = [(other buffer, gap, bid is the output)]: bid may overlap `other` if in_off - out_off >= gap."""
    off: dict[int, int] = {}
    for bid in order:
        size = bufs[bid].size
        ranges = sorted((off[o], off[o] + bufs[o].size, o) for o in conf[bid] if o in off)

        def fits(x: int, exclude: int) -> bool:
            return all(o == exclude or e <= x or s >= x + size for s, e, o in ranges)

        x = 0
        for s, e, _ in ranges:
            if s >= x + size:
                break
            if e > x:
                x = _align_up(e, alignment)
        choice = x
        if mode != "off":
            shared = sorted(off[p] for p in partners.get(bid, ()) if p in off and fits(off[p], p))
            for other, gap, is_out in (chase or {}).get(bid, ()):
                if other not in off:
                    continue
                if is_out:  # the highest aligned offset <= in_off - gap
                    c = (off[other] - gap) // alignment * alignment
                else:  # the lowest aligned offset >= out_off + gap
                    c = _align_up(max(off[other] + gap, 0), alignment)
                if c >= 0 and fits(c, other):
                    shared.append(c)
            shared.sort()
            if shared and (mode == "inplace-prefer" or shared[0] < choice):
                choice = shared[0]
        off[bid] = choice
    arena = _align_up(max((off[b.id] + b.size for b in bufs), default=0), alignment)
    return off, arena


def _check_alignment(alignment: int) -> None:
    if not isinstance(alignment, int) or alignment < 1 or alignment & (alignment - 1):
        raise IRError(f"memory alignment must be a power of two, got {alignment!r}")


# ---- the pass ----------------------------------------------------------------------------------------------
def plan_memory(g: Graph, alignment: int = 4,
                inplace_positions: Callable[[Op], tuple[int, ...]] = kernel_inplace_positions,
                share_all: bool = False) -> Graph:
    """Place every non-constant tensor and op scratch buffer in one arena; return `g` with `memory_plan` set.

    before (no plan; steps 0, 1 and E = after the last op)     after
      %0 input      1000 B  #..                                   %0 @ 2000  [2000, 3000)
      %1 conv out   2000 B  ##.        -- plan_memory -->         %1 @ 0     [0, 2000)
      %2 pool out    500 B  .##                                   %2 @ 2000  [2000, 2500)  reuses %0's bytes
                                                                  arena_size = 3000, strategy = 'size_desc'
    Deterministic: the same graph always gives the same plan. `inplace_positions(op)` says which input buffers the
    op's kernel may overwrite (default: its registry entry's `inplace`). `share_all` (tests, ablations) keeps
    only the mode that takes every legal in-place and chasing placement, smallest arena or not.
    """
    _check_alignment(alignment)
    bufs = buffers(g)
    cands = inplace_candidates(g, bufs, inplace_positions)
    conf = _conflicts(bufs)
    steps = live_bytes(bufs, len(g.ops))
    ctx = _Ctx(
        conflict_bytes={b.id: b.size + sum(bufs[o].size for o in conf[b.id]) for b in bufs},
        contention={b.id: max(steps[max(b.first, 0):b.last + 1], default=0) for b in bufs},
    )
    partners: dict[int, list[int]] = {}
    for c in cands:
        partners.setdefault(c.out_buffer, []).append(c.in_buffer)
        partners.setdefault(c.in_buffer, []).append(c.out_buffer)
    chases = overlap_candidates(g, bufs)
    chase: dict[int, list] = {}
    for c in chases:
        chase.setdefault(c.out_buffer, []).append((c.in_buffer, c.gap, True))
        chase.setdefault(c.in_buffer, []).append((c.out_buffer, c.gap, False))
    modes = INPLACE_MODES if (cands or chases) else ("off",)
    if share_all and (cands or chases):
        modes = ("inplace-prefer",)

    best: Optional[tuple[int, str, dict[int, int]]] = None
    for oname, key in ORDERINGS:
        order = [b.id for b in sorted(bufs, key=lambda b: key(b, ctx))]
        for mode in modes:
            off, arena = _place(bufs, order, conf, partners, mode, alignment, chase)
            if best is None or arena < best[0]:
                best = (arena, oname if mode == "off" else f"{oname}+{mode}", off)
    assert best is not None
    arena, strategy, off = best

    offsets: dict[int, int] = {}
    scratch: dict[int, int] = {}
    sliced = slices(g)
    for b in bufs:
        if b.kind == "scratch":
            scratch[b.op_index] = off[b.id]
        else:
            for tid in b.tensors:  # a concatenation's slice lies inside its group's bytes
                offsets[tid] = off[b.id] + (sliced[tid].offset if tid in sliced else 0)
    inplace: dict[int, int] = {}
    for c in cands:
        if off[c.out_buffer] == off[c.in_buffer] and c.out_tid not in inplace:
            inplace[c.out_tid] = c.in_tid
    overlaps: dict[int, int] = {}
    for c in chases:
        ob, ib = bufs[c.out_buffer], bufs[c.in_buffer]
        o_out, o_in = off[c.out_buffer], off[c.in_buffer]
        if (o_out < o_in + ib.size and o_in < o_out + ob.size) and c.out_tid not in inplace:
            overlaps[c.out_tid] = c.in_tid
    plan = MemoryPlan(arena_size=arena, alignment=alignment, offsets=dict(sorted(offsets.items())),
                      scratch_offsets=dict(sorted(scratch.items())), strategy=strategy,
                      inplace=dict(sorted(inplace.items())), overlaps=dict(sorted(overlaps.items())))
    check_clobbers(g, bufs)  # cheap, so every build proves it (check_plan, in tests, proves the rest)
    return g.replace(memory_plan=plan)


def check_clobbers(g: Graph, bufs: Optional[list] = None) -> None:
    """A kernel that works in its input's bytes (`KernelChoice.clobbers`) must be where that buffer dies."""
    owner = buffer_of(bufs if bufs is not None else buffers(g))
    for step, op in enumerate(g.ops):
        for pos in (op.kernel.clobbers if op.kernel is not None else ()):
            b = owner.get(op.inputs[pos])
            if b is None or b.last != step or b.kind != "tensor" or set(b.tensors) & set(g.outputs):
                raise IRError(f"memory plan: op #{op.index} {op.kind} overwrites its input {pos} while it runs, "
                              "but that buffer does not die there")


# ---- the checker -------------------------------------------------------------------------------------------
def _label(g: Graph, b: Buffer) -> str:
    if b.kind == "scratch":
        return f"scratch of op #{b.op_index} {g.op_by_index(b.op_index).kind}"
    names = ", ".join(f"%{t} '{g.tensors[t].name}'" for t in b.tensors)
    return f"tensor {names}" if len(b.tensors) == 1 else f"alias group [{names}]"


def _steps(g: Graph, lo: int, hi: int) -> str:
    def one(s: int) -> str:
        return f"{s} (op #{g.ops[s].index} {g.ops[s].kind})" if s < len(g.ops) else f"{s} (graph outputs)"

    return f"step {one(lo)}" if lo == hi else f"steps {one(lo)} .. {one(hi)}"


def check_plan(g: Graph) -> None:
    """Prove `g.memory_plan` against freshly computed liveness. Raises IRError naming the culprits.

    Checks: alignment is a power of two; every planned tensor and every scratch buffer has an offset (and nothing
    else has one); alias group members share one offset (a concatenation's slice: that offset plus its place in
    the output; a tensor is the slice of one output at most, `slices`); offsets, slices' included, are aligned and
    buffers lie inside the arena;
    every recorded in-place pair is legal (the kernel allows it, the input dies at the op producing the output,
    same size, same offset); and no two buffers live at a common step overlap in memory except such a pair.
    """
    plan = g.memory_plan
    if plan is None:
        raise IRError("check_plan: the graph has no memory plan")
    _check_alignment(plan.alignment)
    a = plan.alignment
    bufs = buffers(g)
    owner = buffer_of(bufs)
    sliced = slices(g)

    extra = sorted(set(plan.offsets) - set(owner))
    if extra:
        t = extra[0]
        why = "does not exist" if t not in g.tensors else (
            "is a constant" if g.tensors[t].is_const else "is not planned (zero-size or unused)")
        raise IRError(f"memory plan: tensor %{t} has an offset but {why}")
    scratch_ops = {b.op_index for b in bufs if b.kind == "scratch"}
    extra_s = sorted(set(plan.scratch_offsets) - scratch_ops)
    if extra_s:
        raise IRError(f"memory plan: op #{extra_s[0]} has a scratch offset but needs no scratch")

    off: dict[int, int] = {}
    for b in bufs:
        if b.kind == "scratch":
            if b.op_index not in plan.scratch_offsets:
                raise IRError(f"memory plan: {_label(g, b)} ({b.size} bytes) has no offset")
            o = plan.scratch_offsets[b.op_index]
        else:
            missing = [t for t in b.tensors if t not in plan.offsets]
            if missing:
                raise IRError(f"memory plan: tensor %{missing[0]} '{g.tensors[missing[0]].name}' has no offset")
            offs = {plan.offsets[t] - (sliced[t].offset if t in sliced else 0) for t in b.tensors}
            if len(offs) != 1:
                raise IRError(f"memory plan: {_label(g, b)} are aliases but have different offsets "
                              f"{[plan.offsets[t] for t in b.tensors]} (a concatenation slice's less its place in "
                              "the output)")
            o = offs.pop()
        if not isinstance(o, int) or o < 0 or o % a:
            raise IRError(f"memory plan: {_label(g, b)} offset {o} is negative or not a multiple of {a}")
        bad = [t for t in b.tensors if t in sliced and plan.offsets[t] % a]
        if bad:
            raise IRError(f"memory plan: concatenation slice %{bad[0]} at {plan.offsets[bad[0]]} is not a multiple "
                          f"of {a}")
        if o + b.size > plan.arena_size:
            raise IRError(f"memory plan: {_label(g, b)} [bytes {o}..{o + b.size}) ends beyond the arena "
                          f"({plan.arena_size} bytes)")
        off[b.id] = o

    shared: set[tuple[int, int]] = set()
    allowed = ({(c.out_tid, c.in_tid) for c in inplace_candidates(g, bufs, kernel_inplace_positions)}
               if plan.inplace else set())  # only consult the kernel registry when in-place is recorded
    for out_tid, in_tid in plan.inplace.items():
        if (out_tid, in_tid) not in allowed:
            prod = g.producer(out_tid)
            where = f"op #{prod.index} {prod.kind}" if prod is not None else "no op"
            raise IRError(f"memory plan: in-place %{out_tid} <- %{in_tid} ({where}) is not legal: the kernel must "
                          "allow it, the input must die at that op, sizes must match, and neither may be a graph "
                          "output, variable or constant")
        ob, ib = owner[out_tid], owner[in_tid]
        if off[ob.id] != off[ib.id]:
            raise IRError(f"memory plan: in-place %{out_tid} <- %{in_tid} recorded but offsets differ "
                          f"({off[ob.id]} vs {off[ib.id]})")
        shared.add((min(ob.id, ib.id), max(ob.id, ib.id)))

    check_clobbers(g, bufs)  # a kernel that works in its input's bytes: they die here

    chase_ok = {(c.out_tid, c.in_tid): c.gap for c in overlap_candidates(g, bufs)} if plan.overlaps else {}
    for out_tid, in_tid in plan.overlaps.items():
        gap = chase_ok.get((out_tid, in_tid))
        ob, ib = owner[out_tid], owner[in_tid]
        if gap is None:
            raise IRError(f"memory plan: overlap %{out_tid} over %{in_tid} is not legal: the kernel must allow it "
                          "and the input must die at the op producing the output")
        if off[ib.id] - off[ob.id] < gap:
            raise IRError(f"memory plan: %{out_tid} at {off[ob.id]} overlaps %{in_tid} at {off[ib.id]} closer than "
                          f"the kernel allows (input - output offset must be >= {gap})")
        shared.add((min(ob.id, ib.id), max(ob.id, ib.id)))

    by_first = sorted(bufs, key=lambda b: (b.first, b.id))
    for i, x in enumerate(by_first):
        for y in by_first[i + 1:]:
            if y.first > x.last:
                break
            ox, oy = off[x.id], off[y.id]
            if ox + x.size <= oy or oy + y.size <= ox:
                continue
            if (min(x.id, y.id), max(x.id, y.id)) in shared:
                continue
            lo, hi = max(x.first, y.first), min(x.last, y.last)
            raise IRError(f"memory plan: {_label(g, x)} [bytes {ox}..{ox + x.size}) and {_label(g, y)} "
                          f"[bytes {oy}..{oy + y.size}) overlap in memory and are both live at {_steps(g, lo, hi)}")


# ---- the timeline printer ----------------------------------------------------------------------------------
def timeline(g: Graph, name_width: int = 36) -> str:
    """One row per buffer: name, size, offset and a bar over steps 0..n (`#` live, `.` not; the last column is
    "after the last op", where graph outputs are read). Rows are sorted by offset when a plan is present."""
    bufs = buffers(g)
    n = len(g.ops)
    plan = g.memory_plan
    peak = max(live_bytes(bufs, n), default=0)

    def offset(b: Buffer) -> Optional[int]:
        if plan is None:
            return None
        if b.kind == "scratch":
            return plan.scratch_offsets.get(b.op_index)
        return plan.offsets.get(b.tensors[0])

    head = f"memory timeline of '{g.name}': {n} ops, {len(bufs)} buffers, peak live {peak} bytes"
    if plan is not None:
        head += f", arena {plan.arena_size} bytes (align {plan.alignment}, strategy {plan.strategy or '-'})"
    lines = [head]
    ruler = "".join(str(s % 10) for s in range(n)) + "E"
    lines.append(f"  {'buffer':<{name_width}} {'size':>8} {'offset':>8}  {ruler}")
    inplace_of = dict(plan.inplace) if plan is not None else {}
    rows = sorted(bufs, key=lambda b: (offset(b) if offset(b) is not None else -1, b.first, b.id))
    for b in rows:
        if b.kind == "scratch":
            label = f"scratch #{b.op_index} {g.op_by_index(b.op_index).kind}"
        else:
            label = f"%{b.tensors[0]} {g.tensors[b.tensors[0]].name}"
            if len(b.tensors) > 1:
                label += " =" + ",".join(f"%{t}" for t in b.tensors[1:])
        if len(label) > name_width:
            label = label[:name_width - 1] + "~"
        o = offset(b)
        bar = "".join("#" if b.live_at(s) else "." for s in range(n + 1))
        notes = []
        if b.kind == "variable":
            notes.append("variable")
        for t in b.tensors:
            if t in inplace_of:
                notes.append(f"in-place over %{inplace_of[t]}")
        lines.append(f"  {label:<{name_width}} {b.size:>8} {('-' if o is None else o):>8}  {bar}"
                     + (f"  ({'; '.join(notes)})" if notes else ""))
    if plan is not None and bufs:
        top, step, where, live = arena_peak(g)
        lines.append(f"  arena peak {top} bytes at step {step} ({where}): "
                     + ", ".join(f"{label} {size} B" for label, size in live))
    return "\n".join(lines) + "\n"


def tensor_ranges(g: Graph, tid: int, sliced: Optional[dict] = None) -> list[tuple[int, int]]:
    """The arena byte ranges [lo, hi) holding planned tensor `tid`'s elements, in element order: one range, or a
    concatenation slice's chunks (`passes.liveness.slices`; pass `sliced`, its result, when asking many times)."""
    off = g.memory_plan.offsets[tid]
    s = (slices(g) if sliced is None else sliced).get(tid)
    return s.ranges(off) if s is not None else [(off, off + g.t(tid).nbytes)]


def arena_peak(g: Graph) -> tuple:
    """What sets a planned graph's arena: (highest byte used, its step, "op #i KIND", [(buffer label, bytes), ...]
    of the buffers live there, largest first; labels are `%tid` or `scratch #op`)."""
    bufs = buffers(g)
    n = len(g.ops)
    plan = g.memory_plan

    def offset(b: Buffer) -> Optional[int]:
        return plan.scratch_offsets.get(b.op_index) if b.kind == "scratch" else plan.offsets.get(b.tensors[0])

    def top(s):
        return max((offset(b) + b.size for b in bufs if b.live_at(s) and offset(b) is not None), default=0)

    step = max(range(n + 1), key=top)
    live = sorted((b for b in bufs if b.live_at(step)), key=lambda b: -b.size)
    where = f"op #{g.ops[step].index} {g.ops[step].kind}" if step < n else "after the last op"
    return top(step), step, where, [((f"scratch #{b.op_index}" if b.kind == "scratch" else f"%{b.tensors[0]}"), b.size)
                                    for b in live]
