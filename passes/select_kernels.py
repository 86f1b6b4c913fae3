"""select_kernels: the registry picks each op's kernel for the target core; scratch sizes come with it.

How it works
1. For every op that produces code (alias ops do not) `registry.select(g, op, core)` returns the first accepting
   entry in priority order; the op records `KernelChoice(entry.name, entry.scratch_bytes(g, op))`.
2. Because the choice and the scratch size come from the same entry, they cannot disagree. A layer no entry
   accepts is a one-line ShapeError naming the op and every entry's reason.

    before:  CONV_2D(...)                             after:  CONV_2D(..., kernel=conv2d_s8_generic scratch=0)
"""
from __future__ import annotations

import dataclasses
from typing import Any

from specializer import registry
from specializer.ir import Graph, KernelChoice


def select_kernels(g: Graph, core: Any = None, generic_only: bool = False) -> Graph:
    ops = []
    for op in g.ops:
        if op.alias_of is None:
            e = registry.select(g, op, core, generic_only=generic_only)
            op = dataclasses.replace(op, kernel=KernelChoice(e.name, int(e.scratch_bytes(g, op)),
                                                             inplace=registry.inplace_positions(e, g, op)))
            op = dataclasses.replace(op, kernel=dataclasses.replace(
                op.kernel, overlap=registry.overlap_constraints(e, g, op),
                clobbers=registry.clobber_positions(e, g, op)))
        ops.append(op)
    return g.with_ops(ops)
