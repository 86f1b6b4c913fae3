"""reorder_weights: rewrite each layer's constant weights into the layout its chosen kernel consumes.

How it works
1. A registry entry may carry `reorder(g, op) -> (g, op)`: it adds new constant tensors in the kernel's layout
   (interleaved for SIMD, int16-expanded, blocked by output channel...) and points the op at them.
2. Entries without it (the generic kernels, which read TFLite's layouts directly) leave the op as it is.
3. The original tensors become unreferenced and are pruned, so flash holds only the layout in use.

    before:  CONV_2D(x, w[OHWI])                      after:  CONV_2D(x, w'[kernel layout])
"""
from __future__ import annotations

from specializer import registry
from specializer.ir import Graph


def reorder_weights(g: Graph) -> Graph:
    for op in list(g.ops):
        if op.kernel is None:
            continue
        e = registry.entry_by_name(op.kernel.entry)
        if e.reorder is not None:
            g, new_op = e.reorder(g, op)
            g = g.with_ops([new_op if o.index == op.index else o for o in g.ops])
    return g.prune()
