"""fuse_activations: fused activation functions and standalone RELU/RELU6/RELU_N1_TO_1 become output clamps.

How it works
1. Every op whose kernel applies an output clamp (conv, depthwise, fully connected, pooling, ADD/SUB/MUL) gets
   `op.clamp = (min, max)` from its fused activation, computed as TFLite's CalculateActivationRangeQuantized on
   the output quantization; its `activation` attribute becomes NONE.
2. A standalone RELU-family op whose input and output have identical quantization, and whose input is produced by
   a clamping op with no other consumer, is removed: the producer writes the RELU's output tensor and its clamp
   is intersected with the RELU's range. With equal quantization TFLite's ReluQuantized multiplies by exactly 1.0
   (QuantizeMultiplier(1.0) = 2^30 << 1 is exact), so this is bit-exact. Other RELUs stay and run their kernel.

    before:  CONV_2D(act=NONE) -> t -> RELU6 -> y          after:  CONV_2D(clamp=relu6 range of y) -> y
"""
from __future__ import annotations

import dataclasses

from specializer.ir import Graph
from specializer.quant import activation_range

CLAMPING_OPS = ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED", "AVERAGE_POOL_2D", "MAX_POOL_2D", "ADD",
                "SUB", "MUL", "TRANSPOSE_CONV")
_RELUS = {"RELU": "RELU", "RELU6": "RELU6", "RELU_N1_TO_1": "RELU_N1_TO_1"}


def _qrange(dtype: str) -> tuple[int, int]:
    return {"int8": (-128, 127), "int16": (-32768, 32767)}.get(dtype, (-(1 << 31), (1 << 31) - 1))


def fuse_activations(g: Graph) -> Graph:
    ops = []
    for op in g.ops:
        if op.kind in CLAMPING_OPS and op.clamp is None:
            out = g.t(op.outputs[0])
            lo, hi = _qrange(out.dtype)
            act = getattr(op.attrs, "activation", "NONE")
            if out.quant is not None and act in ("NONE", "RELU", "RELU6", "RELU_N1_TO_1"):
                clamp = activation_range(act, out.quant.scale[0], out.quant.zero_point[0], lo, hi)
                op = dataclasses.replace(op, clamp=clamp, attrs=dataclasses.replace(op.attrs, activation="NONE"))
        ops.append(op)
    g = g.with_ops(ops)

    changed = True
    while changed:
        changed = False
        for op in g.ops:
            if op.kind not in _RELUS:
                continue
            src, dst = g.t(op.inputs[0]), g.t(op.outputs[0])
            prod = g.producer(src.id)
            if (prod is None or prod.clamp is None or src.quant != dst.quant or src.dtype != dst.dtype
                    or src.id in g.outputs or len(g.consumers(src.id)) != 1 or len(prod.outputs) != 1):
                continue
            lo, hi = _qrange(dst.dtype)
            rlo, rhi = activation_range(_RELUS[op.kind], dst.quant.scale[0], dst.quant.zero_point[0], lo, hi)
            clamp = (max(prod.clamp[0], rlo), min(prod.clamp[1], rhi))
            if clamp[0] > clamp[1]:
                continue
            new_prod = dataclasses.replace(prod, outputs=(dst.id,), clamp=clamp)
            g = g.with_ops([new_prod if o is prod else o for o in g.ops if o is not op]).prune()
            changed = True
            break
    return g
