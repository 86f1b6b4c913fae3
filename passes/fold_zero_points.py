"""fold_zero_points: fold the input zero point of conv / depthwise / fully connected layers into the bias.

How it works
1. TFLite accumulates acc = bias + sum((x - zp_in) * w) over the taps that fall inside the input; padded taps
   are skipped, which is the same as reading x = zp_in there. So with folded = bias - zp_in * sum(w) (per output
   channel, sum over the whole filter) acc = folded + sum(x' * w), where x' is the input with padded taps read
   as zp_in. That is exact everywhere **provided the kernel reads padding as zp_in**: kernels that consume
   `op.folded_bias` must do so (at borders they add zp_in * w for every padded tap, or read a zp-filled border).
2. The fold is skipped where it would not be exact in int32: weights with a non-zero zero point, or a folded
   value outside int32.
3. The original bias stays in the graph (unused tensors are dropped by the emitter); `op.folded_bias` names the
   new constant int32 tensor, one value per output channel.

    before:  CONV_2D(x, w, b)                          after:  CONV_2D(x, w, b, folded_bias = b - zp_x * sum(w))
"""
from __future__ import annotations

import dataclasses

import numpy as np

from specializer.ir import Graph, Tensor

_REDUCE_AXES = {"CONV_2D": (1, 2, 3), "DEPTHWISE_CONV_2D": (0, 1, 2), "FULLY_CONNECTED": (1,)}


def fold_zero_points(g: Graph) -> Graph:
    ops = []
    new_tensors = {}
    next_id = g.new_tensor_id()
    for op in g.ops:
        if op.kind in _REDUCE_AXES and op.folded_bias is None:
            x, w = g.t(op.inputs[0]), g.t(op.inputs[1])
            b = g.t(op.input(2)) if op.input(2) is not None else None
            if (x.dtype == "int8" and w.is_const and w.dtype == "int8" and w.quant is not None
                    and not any(w.quant.zero_point) and (b is None or (b.is_const and b.dtype == "int32"))):
                wsum = w.data.astype(np.int64).sum(axis=_REDUCE_AXES[op.kind])
                if op.kind == "DEPTHWISE_CONV_2D":
                    wsum = wsum.reshape(-1)
                bias = (b.data.astype(np.int64).reshape(-1) if b is not None
                        else np.zeros(wsum.shape[0], dtype=np.int64))
                folded = bias - int(x.quant.zero_point[0]) * wsum
                if folded.min() >= -(1 << 31) and folded.max() < (1 << 31):
                    arr = folded.astype(np.int32)
                    arr.setflags(write=False)
                    t = Tensor(id=next_id, name=f"{g.t(op.outputs[0]).name}/folded_bias", shape=arr.shape,
                               dtype="int32", quant=b.quant if b is not None else None, data=arr)
                    new_tensors[next_id] = t
                    op = dataclasses.replace(op, folded_bias=next_id)
                    next_id += 1
        ops.append(op)
    return g.with_tensors(new_tensors).with_ops(ops)
