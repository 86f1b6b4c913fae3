"""choose_variants: pick each specialized layer's variant (weight format, blocking) within a flash budget.

How it works
1. A registry entry may offer `variants(g, op) -> [Variant]`: each candidate's template-argument overrides, its
   estimated cycles and the flash bytes of its constant stream. Entries without it keep their defaults.
2. Every such layer starts at its smallest-flash candidate. While the budget allows, the upgrade with the most
   cycles saved per extra flash byte is applied (greedy knapsack); ties go to the earlier layer, so the result is
   deterministic. `budget=None` keeps the fastest candidate everywhere; `budget=0` the smallest everywhere.
3. The budget counts the constant streams of the layers with variants; everything else (other weights, code) is
   the caller's margin. `default_budget(g)` is the rule `compile` uses when the user gives none: the smallest
   streams plus max(32 KiB, 8% of them).
4. RAM: a variant whose scratch would raise the arena above the peak the tensors themselves need is swapped for
   the fastest candidate of no more flash whose scratch fits under that peak, if that costs the layer at most
   RAM_CYCLE_SLACK (10%) of its estimated cycles.
5. In place: while the step with the most live bytes is a layer with an in-place variant (its output may take
   its dying input's bytes), that variant is taken if it lowers that step.
6. The real plan has the last word: a candidate of no more flash that needs less scratch or may share its input's
   bytes is taken where the planned arena (`plan_memory`, with in-place and chasing overlaps) gets smaller, as
   long as these swaps together cost at most ARENA_CYCLE_SLACK (5%, issue 7's bound) of the estimated cycles
   and each saves at least ARENA_WORTH (3) times as large a fraction of the arena as of the cycles.
   With `optimize="ram"` (`--optimize ram`) steps 4 and 6 may give up more (RAM_FIRST_SLACKS: 20% of a layer,
   10% of the total), e.g. the autoencoder's first FULLY_CONNECTED drops the XT form's 1,280-byte scratch.
7. The choice is stored in `op.kernel.variant` ((name, value) pairs), and the scratch size is asked again of
   the entry for that variant; `reorder_weights` and the emitter read it through the entry's template arguments.

    before:  CONV_2D(kernel=conv2d_s8_dsp)            after:  CONV_2D(kernel=conv2d_s8_dsp variant=(('WFMT','i8'),))
"""
from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from typing import Any, Mapping, Optional

from specializer import registry
from specializer.ir import Graph


@dataclass(frozen=True)
class Variant:
    params: Mapping[str, Any]  # template-argument overrides
    cycles: float  # estimated cycles of the layer
    flash: int  # bytes of the layer's constant stream plus its code
    inplace: bool = False  # the output may take its input's bytes (the kernel keeps what it still needs)
    code: int = 0  # the part of `flash` that is code, shared by layers of equal shape (counted once per group)


def _share_key(g: Graph, op):
    """Layers with equal keys get equal kernel functions for equal variants (their code is emitted once)."""
    return (op.kernel.entry, op.kind, tuple(g.t(t).shape for t in op.inputs if t is not None and t >= 0),
            tuple(g.t(t).shape for t in op.outputs), repr(op.attrs))


def params_key(params: Mapping[str, Any]) -> str:
    """A variant's parameters as one canonical string (the key of measured cycles, specializer/tune.py)."""
    return json.dumps(sorted((str(k), v) for k, v in dict(params).items()))


def _measured(cands, measured: Optional[Mapping[str, Mapping[str, float]]]):
    """The candidates with their estimated cycles replaced by the simulator's (specializer/tune.py) where measured."""
    if not measured:
        return cands
    out = []
    for idx, cs in cands:
        m = measured.get(str(idx), {})
        out.append((idx, [dataclasses.replace(c, cycles=float(m[params_key(c.params)]))
                          if params_key(c.params) in m else c for c in cs]))
    return out


def _candidates(g: Graph, seg: bool = False):
    """Per layer with a choice, its kernel's variants. Row-segment forms (SEG) only when asked for (`seg`: a
    `prefer` naming SEG): they trade a little speed for scratch, which only fused row bands need."""
    out = []
    groups: dict = {}
    for op in g.ops:
        if op.kernel is not None and registry.entry_by_name(op.kernel.entry).variants is not None:
            k = _share_key(g, op)
            groups[k] = groups.get(k, 0) + 1
    for op in g.ops:
        if op.kernel is None:
            continue
        e = registry.entry_by_name(op.kernel.entry)
        if e.variants is None:
            continue
        n = groups[_share_key(g, op)]
        cands = [dataclasses.replace(c, flash=c.flash - c.code + (c.code + n - 1) // n) if c.code and n > 1 else c
                 for c in e.variants(g, op) if "SEG" not in c.params or seg]
        if len(cands) > 1:
            out.append((op.index, cands))
    return out


def default_budget(g: Graph, more_small: int = 0) -> int:
    """Flash the variants may take by default: their smallest streams plus EXTRA_MIN (a model whose smallest
    streams are below LARGE_STREAMS) or EXTRA_FRACTION of them, whichever is more. `more_small`: the smallest
    streams of layers that are not in `g`'s list (the layers inside row bands)."""
    total_small = more_small
    for _, cands in _candidates(g):
        total_small += min(c.flash for c in cands)
    extra_min = EXTRA_MIN if total_small < LARGE_STREAMS else 0
    return total_small + max(extra_min, int(total_small * EXTRA_FRACTION))


EXTRA_MIN = 40 * 1024  # a small model may take all its fast variants
EXTRA_FRACTION = 0.08  # a large one grows by at most 8% of its smallest streams and code
LARGE_STREAMS = 256 * 1024  # (the face detector's 351 KB: with 40 KB more it would pass TFLM + CMSIS-NN's flash)


def _with_variant(op, params):
    return dataclasses.replace(op, kernel=dataclasses.replace(op.kernel, variant=tuple(sorted(params.items()))))


def _keep_peak_ram(g: Graph, cands, pick, chosen, slack: float = None):
    """A variant whose scratch would raise the arena above the tensors' own peak is swapped for the fastest
    candidate of no more flash whose scratch fits under it (or the one with the least scratch)."""
    from specializer.passes.liveness import buffers, live_bytes

    bufs = [b for b in buffers(g) if b.kind != "scratch"]
    live = live_bytes(bufs, len(g.ops))
    peak = max(live, default=0)
    step_of = {op.index: k for k, op in enumerate(g.ops)}
    others = [0] * len(g.ops)  # scratch of ops without variants
    for k, op in enumerate(g.ops):
        if op.kernel is not None and op.index not in chosen:
            others[k] = op.kernel.scratch_bytes
    peak = max([peak] + [live[k] + others[k] for k in range(len(g.ops))])
    out = dict(chosen)
    for idx, cs in cands:
        op = g.op_by_index(idx)
        e = registry.entry_by_name(op.kernel.entry)
        k = step_of[idx]

        def scratch(params):
            return int(e.scratch_bytes(g, _with_variant(op, params)))

        if live[k] + scratch(chosen[idx]) <= peak:
            continue
        cur = cs[pick[idx]]
        options = [c for c in cs if c.flash <= cur.flash]
        fits = [c for c in options if live[k] + scratch(c.params) <= peak]
        if fits:
            best = min(fits, key=lambda c: c.cycles)
            if best.cycles <= cur.cycles * (1 + (RAM_CYCLE_SLACK if slack is None else slack)):
                out[idx] = dict(best.params)
    return out


ARENA_CYCLE_SLACK = 0.05  # the real-plan swaps together give up at most 5% of the variants' estimated cycles
PEAK_STEPS = 8  # layers tried by the real-plan swaps: those at the steps with the most live bytes
ARENA_WORTH = 3.0  # and each one saves at least 3x as large a fraction of the arena as of the cycles it costs
RAM_CYCLE_SLACK = 0.10  # a layer gives up at most 10% of its (estimated) cycles to keep the arena at its peak
# --optimize ram (the RAM-first build): a layer may give up 20% and the real-plan swaps 10% of the cycles
RAM_FIRST_SLACKS = (0.20, 0.10)


def _inplace_at_peak(g: Graph, cands, chosen):
    """Where a layer sets the peak of live bytes and has an in-place variant whose output can take its dying
    input's bytes, take it (repeatedly, as the peak moves): the arena loses the output's size, gains the variant's
    scratch."""
    from specializer.passes.liveness import buffer_of, buffers, live_bytes

    bufs = buffers(g)
    owner = buffer_of(bufs)
    live = live_bytes([b for b in bufs if b.kind != "scratch"], len(g.ops))
    step_of = {op.index: k for k, op in enumerate(g.ops)}
    options = {idx: [c for c in cs if c.inplace] for idx, cs in cands}
    out = dict(chosen)

    def scratch(idx, params):
        op = g.op_by_index(idx)
        return int(registry.entry_by_name(op.kernel.entry).scratch_bytes(g, _with_variant(op, params)))

    def saving(idx):
        op = g.op_by_index(idx)
        ib, ob = owner.get(op.inputs[0]), owner.get(op.outputs[0])
        k = step_of[idx]
        if ib is None or ob is None or ib.last != k or ib.kind != "tensor" or ib.size != ob.size:
            return 0
        return ob.size

    level = [live[k] + (g.ops[k].kernel.scratch_bytes if g.ops[k].kernel is not None else 0)
             - (saving(g.ops[k].index) if g.ops[k].kernel is not None and g.ops[k].kernel.inplace else 0)
             for k in range(len(g.ops))]
    for idx in out:
        k = step_of[idx]
        op = g.ops[k]
        e = registry.entry_by_name(op.kernel.entry)
        ip = registry.inplace_positions(e, g, _with_variant(op, out[idx]))
        level[k] = live[k] + scratch(idx, out[idx]) - (saving(idx) if ip else 0)
    done = set()
    while level:
        k = max(range(len(level)), key=lambda i: level[i])
        idx = g.ops[k].index
        if idx in done or not options.get(idx):
            break
        done.add(idx)
        best = min(options[idx], key=lambda c: c.cycles)
        new = live[k] - saving(idx) + scratch(idx, best.params)
        if new >= level[k]:
            break
        out[idx] = dict(best.params)
        level[k] = new
    return out



def choose_variants(g: Graph, budget: Optional[int] = "default", prefer: Optional[Mapping[str, Any]] = None,
                    optimize: str = "balanced") -> Graph:
    """`prefer`: template arguments to force where a layer has candidates with them (ablations, tests), e.g.
    {"WFMT": "i8"} or {"IP": True}; layers without such a candidate keep the normal choice. Two keys come from
    variant tuning (specializer/tune.py): "@cycles" ({layer index: {params_key: cycles}}) replaces estimates by the
    simulator's measurements; "@force" ({layer index: params}) takes exactly those variants (the measuring
    builds)."""
    if budget == "default":
        budget = default_budget(g)
    cands = _candidates(g, seg=bool(prefer and "SEG" in prefer))
    cands = _measured(cands, (prefer or {}).get("@cycles"))
    force = (prefer or {}).get("@force")
    if force is not None:
        chosen = {idx: dict(force[idx]) if idx in force else dict(cs[0].params) for idx, cs in cands}
        return _applied(g, chosen)
    # BAND is fuse_bands' (tests); "@" keys are tuning's
    prefer = {k: v for k, v in (prefer or {}).items() if k != "BAND" and not k.startswith("@")}
    if prefer:
        forced = []
        for idx, cs in cands:
            match = [c for c in cs if all(c.params.get(k, v) == v for k, v in prefer.items())
                     and any(k in c.params for k in prefer)]
            forced.append((idx, match or cs))
        cands = forced
    pick = {}
    for idx, cs in cands:
        if budget is None:
            pick[idx] = min(range(len(cs)), key=lambda i: (cs[i].cycles, cs[i].flash))
        else:
            pick[idx] = min(range(len(cs)), key=lambda i: (cs[i].flash, cs[i].cycles))
    if budget is not None:
        used = sum(cs[pick[idx]].flash for idx, cs in cands)
        while True:
            best = None
            for idx, cs in cands:
                cur = cs[pick[idx]]
                for i, c in enumerate(cs):
                    extra = c.flash - cur.flash
                    saved = cur.cycles - c.cycles
                    if saved <= 0 or used + extra > budget:
                        continue
                    gain = saved / max(extra, 1)
                    if best is None or gain > best[0]:
                        best = (gain, idx, i, extra)
            if best is None:
                break
            _, idx, i, extra = best
            pick[idx] = i
            used += extra
    chosen = {idx: dict(cs[pick[idx]].params) for idx, cs in cands}
    if not prefer:
        ram_first = optimize == "ram"
        chosen = _keep_peak_ram(g, cands, pick, chosen, RAM_FIRST_SLACKS[0] if ram_first else None)
        chosen = _inplace_at_peak(g, cands, chosen)
        chosen = _lower_arena(g, cands, pick, chosen, RAM_FIRST_SLACKS[1] if ram_first else None)
    return _applied(g, chosen)


def _applied(g: Graph, chosen) -> Graph:
    """`g` with each chosen layer's variant stored, and its scratch, in-place and overlap abilities asked again
    of the entry for that variant."""
    ops = []
    for op in g.ops:
        if op.index in chosen:
            op = _with_variant(op, chosen[op.index])
            e = registry.entry_by_name(op.kernel.entry)
            op = dataclasses.replace(op, kernel=dataclasses.replace(op.kernel, scratch_bytes=int(e.scratch_bytes(g, op)),
                                                                    inplace=registry.inplace_positions(e, g, op),
                                                                    overlap=registry.overlap_constraints(e, g, op),
                                                                    clobbers=registry.clobber_positions(e, g, op)))
        ops.append(op)
    return g.with_ops(ops)


def _ram_traits(g: Graph, op, params) -> tuple:
    e = registry.entry_by_name(op.kernel.entry)
    v = _with_variant(op, params)
    return int(e.scratch_bytes(g, v)), bool(registry.inplace_positions(e, g, v)), \
        bool(registry.overlap_constraints(e, g, v))


def _lower_arena(g: Graph, cands, pick, chosen, slack: float = None):
    """The planned arena decides: where another candidate of no more flash gives a smaller arena in the real plan
    (scratch, in-place and chasing overlaps all counted, which the steps above estimate), take it, the largest
    saving first (then the fewest cycles), until none does. Only candidates that need less scratch or can share
    their input's bytes where the current one cannot are tried, on the layers at the PEAK_STEPS highest steps of the
    current plan (the peak is there; this keeps compile time short on large graphs)."""
    from specializer.passes.liveness import buffers
    from specializer.passes.plan_memory import plan_memory

    def arena(ch):
        return plan_memory(_applied(g, ch)).memory_plan.arena_size

    cur = arena(chosen)
    applied = _applied(g, chosen)
    # each step's height in the real plan (the highest byte any buffer live there reaches): in-place layers are
    # low there even when their input and output are large
    mp = plan_memory(applied).memory_plan
    height = [0] * (len(g.ops) + 1)
    for b in buffers(applied):
        off = mp.scratch_offsets.get(b.op_index) if b.kind == "scratch" else mp.offsets.get(b.tensors[0])
        if off is None:
            continue
        for k in range(max(b.first, 0), min(b.last, len(g.ops)) + 1):
            height[k] = max(height[k], off + b.size)
    level = {op.index: height[k] for k, op in enumerate(applied.ops)}
    near_peak = set(sorted(level, key=lambda i: -level[i])[:PEAK_STEPS])

    def cycles_of(idx, params):
        return next((c.cycles for c in dict(cands)[idx] if dict(c.params) == params), 0.0)

    total = sum(cycles_of(idx, chosen[idx]) for idx, _ in cands)
    spare = (ARENA_CYCLE_SLACK if slack is None else slack) * total
    # layers of equal shape may set the peak together: a swap is tried on the layer alone and on its whole group
    key_of = {idx: _share_key(g, g.op_by_index(idx)) for idx, _ in cands}
    for _ in range(len(cands)):
        best = None
        for idx, cs in cands:
            if idx not in near_peak:
                continue
            op = g.op_by_index(idx)
            have = _ram_traits(g, op, chosen[idx])
            group = [j for j, _ in cands if key_of[j] == key_of[idx] and chosen[j] == chosen[idx]]
            for c in cs:
                if dict(c.params) == chosen[idx] or c.flash > cs[pick[idx]].flash:
                    continue
                t = _ram_traits(g, op, c.params)
                if not (t[0] < have[0] or (t[1] and not have[1]) or (t[2] and not have[2])):
                    continue
                for members in ([idx], group) if len(group) > 1 else ([idx],):
                    extra = (c.cycles - cycles_of(idx, chosen[idx])) * len(members)
                    if extra > spare:
                        continue
                    a = arena({**chosen, **{j: dict(c.params) for j in members}})
                    # worth it: at least ARENA_WORTH times more of the arena saved than of the cycles spent
                    if a < cur and extra / max(total, 1) * ARENA_WORTH > (cur - a) / cur:
                        continue
                    if a < cur and (best is None or (a, extra) < (best[0], best[3])):
                        best = (a, members, dict(c.params), extra)
        if best is None:
            break
        spare -= best[3]
        cur = best[0]
        chosen = {**chosen, **{j: best[2] for j in best[1]}}
    # a swap may have made an earlier one unnecessary: give back the faster variants that keep the arena
    for idx, cs in sorted(cands, key=lambda ic: -max(c.cycles for c in ic[1])):
        if chosen[idx] == dict(cs[pick[idx]].params):  # only layers a RAM step moved off their pick
            continue
        faster = sorted((c for c in cs if c.flash <= cs[pick[idx]].flash and dict(c.params) != chosen[idx]),
                        key=lambda c: c.cycles)
        now = cycles_of(idx, chosen[idx])
        for c in faster:
            if c.cycles >= now:
                break
            trial = {**chosen, idx: dict(c.params)}
            if arena(trial) <= cur:
                chosen = trial
                break
    return chosen
