"""fold_constants: evaluate data-movement ops whose inputs are all constant, and drop dead ops.

How it works
1. An op whose every input is a constant and whose semantics are pure data movement (RESHAPE, SQUEEZE,
   EXPAND_DIMS, TRANSPOSE, CONCATENATION with equal quantization) is evaluated in numpy; its output tensor becomes
   a constant and the op disappears. Arithmetic ops are not folded here: their int8 semantics live in the kernels.
2. Ops none of whose outputs reach a graph output are removed (dead code), repeatedly.

    before:  W(const) -> RESHAPE -> w2 -> CONV_2D          after:  w2(const) -> CONV_2D
"""
from __future__ import annotations

import dataclasses

import numpy as np

from specializer.ir import Graph, Op

_FOLDABLE = ("RESHAPE", "SQUEEZE", "EXPAND_DIMS", "TRANSPOSE", "CONCATENATION")


def _evaluate(g: Graph, op: Op):
    ins = [g.t(i) for i in op.inputs if i is not None]
    out = g.t(op.outputs[0])
    if op.kind in ("RESHAPE", "SQUEEZE", "EXPAND_DIMS"):
        return ins[0].data.reshape(out.shape)
    if op.kind == "TRANSPOSE":
        return np.transpose(ins[0].data, tuple(int(p) for p in ins[1].data.reshape(-1)))
    if op.kind == "CONCATENATION":
        if any(t.quant != out.quant for t in ins) or op.attrs.activation != "NONE":
            return None
        return np.concatenate([t.data for t in ins], axis=op.attrs.axis % len(out.shape))
    return None


def fold_constants(g: Graph) -> Graph:
    ops = []
    updates = {}
    for op in g.ops:
        if (op.kind in _FOLDABLE and len(op.outputs) == 1 and op.outputs[0] not in g.outputs
                and all(i is None or (updates.get(i) or g.t(i)).is_const for i in op.inputs)):
            gg = g.with_tensors(updates) if updates else g
            val = _evaluate(gg, op)
            if val is not None:
                out = g.t(op.outputs[0])
                arr = np.ascontiguousarray(val.astype(out.data.dtype if out.is_const else val.dtype))
                arr.setflags(write=False)
                updates[out.id] = dataclasses.replace(out, data=arr, dtype=out.dtype)
                continue
        ops.append(op)
    g = g.with_tensors(updates).with_ops(ops)
    return remove_dead_ops(g).prune()


def remove_dead_ops(g: Graph) -> Graph:
    needed = set(g.outputs)
    keep = []
    for op in reversed(g.ops):
        if any(o in needed for o in op.outputs) or any(g.t(o).variable for o in op.inputs if o is not None):
            keep.append(op)
            needed.update(i for i in op.inputs if i is not None)
    return g.with_ops(reversed(keep))
