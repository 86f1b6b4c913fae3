"""precompute_requant: every op's requantization constants, computed offline exactly as TFLite Micro does.

How it works
1. `REQUANT[kind](g, op)` returns a frozen `Requant` dataclass for that op kind (or None when the op needs none);
   the pass stores it in `op.requant`. Kernels read only these integers: no float math reaches the C code
   unless the op is float by nature (QUANTIZE from float, DEQUANTIZE).
2. Multipliers use `quant.quantize_multiplier` (TFLite's QuantizeMultiplier: frexp, round half away from zero),
   fed with the same double-precision products TFLM forms from the float32 scales, in the same order.

    before:  CONV_2D(x: s_x, w: s_w[c], y: s_y)        after:  CONV_2D(requant=ChannelRequant(mult[c], shift[c]))
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Callable, Optional

from specializer.ir import Graph, Op, Requant
from specializer.quant import quantize_multiplier


@dataclass(frozen=True)
class ChannelRequant(Requant):
    """Per-output-channel (or per-tensor, length 1) multiplier/shift of conv, depthwise, fully connected."""

    multiplier: tuple[int, ...]
    shift: tuple[int, ...]


def _channel_requant(g: Graph, op: Op) -> Optional[Requant]:
    x, w, y = g.t(op.inputs[0]), g.t(op.inputs[1]), g.t(op.outputs[0])
    if x.quant is None or w.quant is None or y.quant is None:
        return None
    n = y.shape[-1] if op.kind != "FULLY_CONNECTED" else w.shape[0]
    scales = w.quant.scale
    mult, shift = [], []
    for c in range(n if len(scales) > 1 else 1):
        real = float(x.quant.scale[0]) * float(scales[c if len(scales) > 1 else 0]) / float(y.quant.scale[0])
        m, s = quantize_multiplier(real)
        mult.append(m)
        shift.append(s)
    return ChannelRequant(tuple(mult), tuple(shift))


# op kind -> function computing its constants. Ops absent here need none (pure data movement).
REQUANT: dict[str, Callable[[Graph, Op], Optional[Requant]]] = {
    "CONV_2D": _channel_requant,
    "DEPTHWISE_CONV_2D": _channel_requant,
    "FULLY_CONNECTED": _channel_requant,
}


def register(kind: str):
    """Decorator used by this module's sections below to add an op kind's requantization."""

    def deco(fn):
        REQUANT[kind] = fn
        return fn

    return deco


def precompute_requant(g: Graph) -> Graph:
    ops = []
    for op in g.ops:
        fn = REQUANT.get(op.kind)
        if fn is not None and op.requant is None and op.alias_of is None:
            op = dataclasses.replace(op, requant=fn(g, op))
        ops.append(op)
    return g.with_ops(ops)


# ---- SOFTMAX, LOGISTIC, TANH, HARD_SWISH (int8): exact tables from specializer/fixedpoint.py ----------------
@dataclass(frozen=True)
class SoftmaxRequant(Requant):
    """TFLM's int8 SOFTMAX constants and the int32[256] exp table they imply (entry d: exp of difference -d)."""

    input_multiplier: int
    input_left_shift: int
    diff_min: int
    exp_table: tuple[int, ...]


@dataclass(frozen=True)
class TableRequant(Requant):
    """An int8 unary op as a 256-entry int8 table of TFLM's integer results, indexed by uint8(x)."""

    table: tuple[int, ...]


def _softmax_requant(g: Graph, op: Op) -> Optional[Requant]:
    from specializer import fixedpoint

    x = g.t(op.inputs[0])
    if x.dtype != "int8" or x.quant is None or x.quant.per_channel:
        return None
    try:
        p = fixedpoint.softmax_params(x.quant.scale[0], op.attrs.beta)
    except ValueError:
        return None
    tab = fixedpoint.softmax_exp_table(p)
    return SoftmaxRequant(p.input_multiplier, p.input_left_shift, p.diff_min, tuple(int(v) for v in tab))


def _unary_table_requant(g: Graph, op: Op) -> Optional[Requant]:
    from specializer import fixedpoint

    x, y = g.t(op.inputs[0]), g.t(op.outputs[0])
    if (x.dtype, y.dtype) != ("int8", "int8") or x.quant is None or y.quant is None:
        return None
    if x.quant.per_channel or y.quant.per_channel:
        return None
    try:
        tab = fixedpoint.unary_s8_table(op.kind, x.quant.scale[0], x.quant.zero_point[0], y.quant.scale[0],
                                        y.quant.zero_point[0])
    except ValueError:
        return None
    return TableRequant(tuple(int(v) for v in tab))


REQUANT["SOFTMAX"] = _softmax_requant
for _kind in ("LOGISTIC", "TANH", "HARD_SWISH"):
    REQUANT[_kind] = _unary_table_requant
