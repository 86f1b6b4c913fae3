"""eliminate_reshapes: RESHAPE, SQUEEZE and EXPAND_DIMS become aliases (no copy).

How it works
1. These ops only reinterpret the same bytes (TFLite's int8 kernels copy the buffer unchanged). The op stays in
   the graph, so every tensor keeps its own shape for the kernels that read it, but gets `alias_of = input`.
2. The memory planner puts an alias group in one buffer whose lifetime is the union of its members; the emitter
   writes no code for alias ops.

    before:  t[1,1,1,64] -> RESHAPE -> r[1,64] (memcpy)      after:  r aliases t (same arena bytes)
"""
from __future__ import annotations

import dataclasses

from specializer.ir import Graph

ALIAS_OPS = ("RESHAPE", "SQUEEZE", "EXPAND_DIMS")


def eliminate_reshapes(g: Graph) -> Graph:
    ops = []
    for op in g.ops:
        if op.kind in ALIAS_OPS and op.alias_of is None:
            src, dst = g.t(op.inputs[0]), g.t(op.outputs[0])
            if not src.is_const and src.nbytes == dst.nbytes and not src.variable:
                op = dataclasses.replace(op, alias_of=src.id)
        ops.append(op)
    return g.with_ops(ops)
