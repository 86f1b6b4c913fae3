"""order_ops: run the ops in the topological order whose memory plan is smallest (issue #7 part 5).

How it works
1. Dependencies are the data: an op waits for the producers of its inputs (a view's consumers wait for the view,
   the view for its source). Ops that read or write a variable tensor (state) also keep their relative order.
2. Where only one op is ever ready (a chain, most keyword spotters and MobileNets) there is one order: nothing
   changes.
3. Candidate orders: the model's own; a greedy one that at every step runs, of the ready ops, the one that frees
   the most bytes net (the bytes of inputs it reads last minus the bytes it writes; ties: the model's order);
   and, where a graph has at most EXACT_LIMIT (120) topological orders, every one of them (enumerated depth-first),
   ranked by their peak of live bytes (`liveness.live_bytes`, kernel scratch included).
4. The best EXACT_PLANNED of those by peak live bytes and the greedy order, where their peak is below the
   model order's, are planned with the model's (`plan_memory`: placement, in-place and chasing overlaps as the
   final plan does them); the smallest arena wins, ties go to the model's order. (The enumeration gives up
   after 20 x EXACT_LIMIT partial orders, so wide graphs cost little.) Op indices stay as they are, so names, profile marks and per-layer
   reports do not change, only the order of the calls in `<name>_run`.

    before:  conv P(x) -> y1; conv C(y1) -> y2; conv S(x) -> s; ADD(y2, s)
    after:   (if it plans smaller) conv S(x) -> s; conv P(x) -> y1; conv C(y1) -> y2; ADD(y2, s)
"""
from __future__ import annotations

from specializer.ir import Graph

EXACT_LIMIT = 120  # topological orders enumerated at most (a graph with more gets the greedy order)
EXACT_PLANNED = 3  # of those, the best by peak live bytes are planned


def _dependencies(g: Graph) -> list[set[int]]:
    """Per op position, the positions it must run after."""
    producer = {}
    for k, op in enumerate(g.ops):
        for t in op.outputs:
            producer[t] = k
    deps: list[set[int]] = []
    last_state = None
    for k, op in enumerate(g.ops):
        d = {producer[t] for t in op.inputs if t is not None and t in producer}
        touches_state = any(t is not None and t in g.tensors and g.t(t).variable for t in op.inputs + op.outputs)
        if touches_state:
            if last_state is not None:
                d.add(last_state)
            last_state = k
        d.discard(k)
        deps.append(d)
    return deps


def _orders(deps: list[set[int]], limit: int):
    """Every topological order (lists of positions), or None when there are more than `limit` (or the search
    visits more than 20 x `limit` partial orders: models of many independent layers stop early)."""
    n = len(deps)
    succ: list[list[int]] = [[] for _ in range(n)]
    indeg = [len(d) for d in deps]
    for k, d in enumerate(deps):
        for p in d:
            succ[p].append(k)
    ready = [k for k in range(n) if indeg[k] == 0]
    out: list[list[int]] = []
    order: list[int] = []
    budget = [20 * limit]

    def rec() -> bool:
        budget[0] -= 1
        if budget[0] < 0:
            return False
        if len(order) == n:
            out.append(list(order))
            return len(out) <= limit
        for k in sorted(ready):
            ready.remove(k)
            order.append(k)
            for t in succ[k]:
                indeg[t] -= 1
                if indeg[t] == 0:
                    ready.append(t)
            ok = rec()
            for t in succ[k]:
                if indeg[t] == 0:
                    ready.remove(t)
                indeg[t] += 1
            order.pop()
            ready.append(k)
            if not ok:
                return False
        return True

    return out if rec() else None


def _greedy(g: Graph, deps: list[set[int]]) -> list[int]:
    n = len(g.ops)
    readers: dict[int, set[int]] = {}
    for k, op in enumerate(g.ops):
        for t in op.inputs:
            if t is not None:
                readers.setdefault(t, set()).add(k)
    done: set[int] = set()
    order = []

    def size(t) -> int:
        x = g.tensors.get(t)
        return 0 if x is None or x.is_const else x.nbytes

    while len(order) < n:
        ready = [k for k in range(n) if k not in done and deps[k] <= done]

        def net(k):
            op = g.ops[k]
            freed = sum(size(t) for t in set(op.inputs) if t is not None and t not in g.outputs
                        and readers.get(t, set()) - done <= {k})
            return (sum(size(t) for t in op.outputs) - freed, k)

        k = min(ready, key=net)
        done.add(k)
        order.append(k)
    return order


def _peak(g: Graph, order: list[int]) -> int:
    from .liveness import buffers, live_bytes

    h = g.with_ops([g.ops[k] for k in order])
    return max(live_bytes(buffers(h), len(order)), default=0)


def _one_order(deps: list[set[int]]) -> bool:
    """True when the model's order is the only one: at every step a single op is ready."""
    done: set[int] = set()
    for j in range(len(deps)):
        if sum(1 for k in range(j, len(deps)) if deps[k] <= done) > 1:
            return False
        done.add(j)
    return True


def order_ops(g: Graph, alignment: int = 4, share_all: bool = False) -> Graph:
    from .plan_memory import plan_memory

    deps = _dependencies(g)
    n = len(g.ops)
    if _one_order(deps):
        return g  # a chain: one order
    model = list(range(n))
    candidates = [_greedy(g, deps)]
    every = _orders(deps, EXACT_LIMIT)
    if every:
        candidates += sorted(every, key=lambda o: (_peak(g, o), o))[:EXACT_PLANNED]
    # only orders whose peak of live bytes is below the model order's are worth a plan
    base = _peak(g, model)
    candidates = [model] + [o for o in candidates if _peak(g, o) < base]
    if len(candidates) == 1:
        return g
    best, best_arena = g, None
    seen = set()
    for order in candidates:
        if tuple(order) in seen:
            continue
        seen.add(tuple(order))
        h = g.with_ops([g.ops[k] for k in order])
        arena = plan_memory(h, alignment=alignment, share_all=share_all).memory_plan.arena_size
        if best_arena is None or arena < best_arena:
            best, best_arena = h, arena
    return best
