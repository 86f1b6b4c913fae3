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
    if len(scales) > 1 and len(scales) != n:  # inconsistent with the output: the kernels refuse the layer
        return None
    mult, shift = [], []
    for c in range(n if len(scales) > 1 else 1):
        real = float(x.quant.scale[0]) * float(scales[c if len(scales) > 1 else 0]) / float(y.quant.scale[0])
        m, s = quantize_multiplier(real)
        mult.append(m)
        shift.append(s)
    return ChannelRequant(tuple(mult), tuple(shift))


def _transpose_conv_requant(g: Graph, op: Op) -> Optional[Requant]:
    """TRANSPOSE_CONV: inputs (output shape, weights, input, bias); per output channel as CONV_2D."""
    if len(op.inputs) < 3 or op.input(1) is None or op.input(2) is None:
        return None
    x, w, y = g.t(op.inputs[2]), g.t(op.inputs[1]), g.t(op.outputs[0])
    if x.quant is None or w.quant is None or y.quant is None or not y.shape:
        return None
    n = y.shape[-1]
    scales = w.quant.scale
    if len(scales) > 1 and len(scales) != n:
        return None
    mult, shift = [], []
    for c in range(n if len(scales) > 1 else 1):
        m, s = quantize_multiplier(float(x.quant.scale[0]) * float(scales[c if len(scales) > 1 else 0])
                                   / float(y.quant.scale[0]))
        mult.append(m)
        shift.append(s)
    return ChannelRequant(tuple(mult), tuple(shift))


def _batch_matmul_requant(g: Graph, op: Op) -> Optional[Requant]:
    """BATCH_MATMUL: one multiplier, lhs scale x rhs scale / output scale."""
    a, b, y = g.t(op.inputs[0]), g.t(op.inputs[1]), g.t(op.outputs[0])
    if a.quant is None or b.quant is None or y.quant is None:
        return None
    m, s = quantize_multiplier(float(a.quant.scale[0]) * float(b.quant.scale[0]) / float(y.quant.scale[0]))
    return ChannelRequant((m,), (s,))


# op kind -> function computing its constants. Ops absent here need none (pure data movement).
REQUANT: dict[str, Callable[[Graph, Op], Optional[Requant]]] = {
    "CONV_2D": _channel_requant,
    "DEPTHWISE_CONV_2D": _channel_requant,
    "FULLY_CONNECTED": _channel_requant,
    "TRANSPOSE_CONV": _transpose_conv_requant,
    "BATCH_MATMUL": _batch_matmul_requant,
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


# ---- SOFTMAX, LOG_SOFTMAX, LOGISTIC, TANH, HARD_SWISH (int8): exact tables from specializer/fixedpoint.py ------
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


def _measured_table_requant(g: Graph, op: Op) -> Optional[Requant]:
    """ABS, NEG, LEAKY_RELU, ELU, EXP, RSQRT: the table TFLite Micro itself computes (specializer/measured.py)."""
    from specializer.measured import measured_table

    x, y = g.t(op.inputs[0]), g.t(op.outputs[0])
    if (x.dtype, y.dtype) != ("int8", "int8") or x.quant is None or y.quant is None:
        return None
    if x.quant.per_channel or y.quant.per_channel or x.size != y.size:
        return None
    try:
        tab = measured_table(op.kind, op.attrs, float(x.quant.scale[0]), int(x.quant.zero_point[0]),
                             float(y.quant.scale[0]), int(y.quant.zero_point[0]))
    except ValueError:
        return None
    return TableRequant(tab)


def prelu_alpha(g: Graph, op: Op):
    """PRELU's alpha as one value per channel (the input's last dimension) when it is a constant that varies
    along that dimension only (or not at all); else None."""
    x, a = g.t(op.inputs[0]), g.t(op.inputs[1])
    if not a.is_const or a.dtype != "int8" or a.quant is None or a.quant.per_channel or not x.shape:
        return None
    c = x.shape[-1]
    if a.size == 1:
        return tuple(int(a.data.reshape(-1)[0]) for _ in range(c))
    if len(a.shape) > len(x.shape) or a.shape[-1] != c or a.size != c:
        return None
    return tuple(int(v) for v in a.data.reshape(-1))


def _prelu_requant(g: Graph, op: Op) -> Optional[Requant]:
    """PRELU: per channel, the table TFLite Micro itself computes (specializer/measured.py)."""
    from specializer.measured import measured_prelu_table

    x, a, y = g.t(op.inputs[0]), g.t(op.inputs[1]), g.t(op.outputs[0])
    alpha = prelu_alpha(g, op)
    if alpha is None or (x.dtype, y.dtype) != ("int8", "int8") or x.quant is None or y.quant is None:
        return None
    if x.quant.per_channel or y.quant.per_channel or x.shape != y.shape:
        return None
    try:
        tab = measured_prelu_table(alpha, float(a.quant.scale[0]), int(a.quant.zero_point[0]),
                                   float(x.quant.scale[0]), int(x.quant.zero_point[0]), float(y.quant.scale[0]),
                                   int(y.quant.zero_point[0]))
    except ValueError:
        return None
    return TableRequant(tab)


@dataclass(frozen=True)
class LogSoftmaxRequant(Requant):
    """TFLM's int8 LOG_SOFTMAX constants and the two int32[256] tables they imply (entry d: input difference -d):
    the Q12.19 exp summed per row, and the Q5.26 rescaled difference."""

    reverse_multiplier: int
    reverse_shift: int
    diff_min: int
    exp_q12: tuple[int, ...]
    diff_q5: tuple[int, ...]


@register("LOG_SOFTMAX")
def _log_softmax_requant(g: Graph, op: Op) -> Optional[Requant]:
    from specializer import fixedpoint

    x = g.t(op.inputs[0])
    if x.dtype != "int8" or x.quant is None or x.quant.per_channel:
        return None
    try:
        p = fixedpoint.log_softmax_params(x.quant.scale[0])
    except ValueError:
        return None
    exp_q12, diff_q5 = fixedpoint.log_softmax_tables(p)
    return LogSoftmaxRequant(p.reverse_multiplier, p.reverse_shift, p.diff_min,
                             tuple(int(v) for v in exp_q12), tuple(int(v) for v in diff_q5))


REQUANT["PRELU"] = _prelu_requant
REQUANT["SOFTMAX"] = _softmax_requant
for _kind in ("LOGISTIC", "TANH", "HARD_SWISH"):
    REQUANT[_kind] = _unary_table_requant
for _kind in ("ABS", "NEG", "LEAKY_RELU", "ELU", "EXP", "RSQRT"):
    REQUANT[_kind] = _measured_table_requant


# ---- elementwise, quantize, relu, mean (kernels/elementwise.py, quantize.py, reduce.py) --------------------
@dataclass(frozen=True)
class AddSubRequant(Requant):
    """ADD/SUB int8: both inputs scaled to 2^left_shift * (s_i / 2 max(s1, s2)), the sum back to the output."""

    left_shift: int
    in1_multiplier: int
    in1_shift: int
    in2_multiplier: int
    in2_shift: int
    out_multiplier: int
    out_shift: int


def _per_tensor(g: Graph, op: Op, n_in: int):
    ts = [g.t(op.inputs[i]) for i in range(n_in)] + [g.t(op.outputs[0])]
    if any(t.quant is None or t.quant.per_channel for t in ts):
        return None
    return ts


def _add_sub_requant(g: Graph, op: Op) -> Optional[Requant]:
    """TFLM CalculateOpDataAdd / CalculateOpDataSub: double-precision ratios of the float32 scales (the
    installed TFLM does SUB in double too; a float32 variant seen in some sources is off by 1 LSB here)."""
    ts = _per_tensor(g, op, 2)
    if ts is None:
        return None
    s1, s2, so = (float(t.quant.s) for t in ts)
    left = 15 if ts[-1].dtype == "int16" else 20  # int16x8: TFLM shifts the inputs left by 15
    twice = 2 * max(s1, s2)
    r1, r2 = s1 / twice, s2 / twice
    ro = twice / ((1 << left) * so)
    if not (0.0 < r1 < 1.0 and 0.0 < r2 < 1.0 and 0.0 < ro < 1.0):
        return None  # TFLM's QuantizeMultiplierSmallerThanOneExp would abort
    (m1, e1), (m2, e2), (mo, eo) = (quantize_multiplier(r) for r in (r1, r2, ro))
    if max(e1, e2, eo) > 0:
        return None
    return AddSubRequant(left, m1, e1, m2, e2, mo, eo)


def _scale_ratio_requant(g: Graph, op: Op) -> Optional[Requant]:
    """One multiplier: s_in / s_out (RELU, QUANTIZE int8 -> int8, MEAN before its 1/n), or s1*s2/s_out (MUL)."""
    n_in = 2 if op.kind == "MUL" else 1
    ts = _per_tensor(g, op, n_in)
    if ts is None:
        return None
    real = float(ts[0].quant.s) * float(ts[1].quant.s) if op.kind == "MUL" else float(ts[0].quant.s)
    real /= float(ts[-1].quant.s)
    m, s = quantize_multiplier(real)
    return ChannelRequant((m,), (s,))


def _mean_requant(g: Graph, op: Op) -> Optional[Requant]:
    """TFLM QuantizedMeanOrSum: s_in / s_out with 1/n folded in (shift by floor(log2 n), integer division)."""
    base = _scale_ratio_requant(g, op)
    axes_t = g.t(op.inputs[1]) if op.input(1) is not None else None
    if base is None or axes_t is None or not axes_t.is_const:
        return None
    x = g.t(op.inputs[0])
    rank = len(x.shape)
    axes = {int(a) + rank if int(a) < 0 else int(a) for a in axes_t.data.reshape(-1)}
    if any(a < 0 or a >= rank for a in axes):
        return None
    n = 1
    for a in axes:
        n *= x.shape[a]
    if n <= 0:
        return None
    m, s = base.multiplier[0], base.shift[0]
    shift = min(n.bit_length() - 1, 32, 31 + s)
    if shift < 0:
        return None
    return ChannelRequant((int((m << shift) // n),), (s - shift,))


for _kind in ("ADD", "SUB"):
    REQUANT[_kind] = _add_sub_requant
for _kind in ("MUL", "RELU", "QUANTIZE"):
    REQUANT[_kind] = _scale_ratio_requant
REQUANT["MEAN"] = _mean_requant
REQUANT["SUM"] = _scale_ratio_requant  # QuantizedMeanOrSum without the 1/n


# ---- ADD_N, SQUARED_DIFFERENCE (kernels/elementwise.py) ------------------------------------------------------
@dataclass(frozen=True)
class AddNRequant(Requant):
    """ADD_N int8 (every input shares one quantization): each input scaled to 2^left_shift * s / 2s, the sum
    back to the output with 2s / (2^left_shift s_out)."""

    left_shift: int
    in_multiplier: int
    in_shift: int
    out_multiplier: int
    out_shift: int


def add_n_same_quant(g: Graph, op: Op) -> bool:
    """TFLM's ADD_N prepare: every input has the first one's scale and zero point (float32 compare)."""
    ts = [g.t(i) for i in op.inputs if i is not None]
    q0 = ts[0].quant
    return all(t.quant is not None and q0 is not None and not t.quant.per_channel and t.quant.zp == q0.zp
               and float(t.quant.s) == float(q0.s) for t in ts)


@register("ADD_N")
def _add_n_requant(g: Graph, op: Op) -> Optional[Requant]:
    """TFLM add_n.cc CalculateOpData: double ratios of the float32 scales, left shift 20."""
    ins = [i for i in op.inputs if i is not None]
    if len(ins) < 2 or not add_n_same_quant(g, op):
        return None
    y = g.t(op.outputs[0])
    if y.quant is None or y.quant.per_channel:
        return None
    left = 20
    s, so = float(g.t(ins[0]).quant.s), float(y.quant.s)
    twice = 2 * s
    ri, ro = s / twice, twice / ((1 << left) * so)
    if not (0.0 < ri < 1.0 and 0.0 < ro < 1.0):
        return None  # QuantizeMultiplierSmallerThanOneExp's domain
    (mi, ei), (mo, eo) = quantize_multiplier(ri), quantize_multiplier(ro)
    if max(ei, eo) > 0:
        return None
    return AddNRequant(left, mi, ei, mo, eo)


@register("SQUARED_DIFFERENCE")
def _squared_difference_requant(g: Graph, op: Op) -> Optional[Requant]:
    """TFLM squared_difference.cc PrepareQuantized (int8: left shift 7): the input ratios in double from the
    float32 scales, the output's (2 max(s1, s2))^2 / float32(2^14 s_out) in double, any size (QuantizeMultiplier)."""
    import numpy as np

    ts = _per_tensor(g, op, 2)
    if ts is None:
        return None
    s1, s2, so = (float(t.quant.s) for t in ts)
    left = 7
    twice = 2.0 * max(s1, s2)
    r1, r2 = s1 / twice, s2 / twice
    ro = (twice * twice) / float(np.float32(1 << (2 * left)) * np.float32(so))
    if not (0.0 < r1 < 1.0 and 0.0 < r2 < 1.0) or not 0.0 < ro < float("inf"):
        return None
    (m1, e1), (m2, e2), (mo, eo) = (quantize_multiplier(r) for r in (r1, r2, ro))
    if max(e1, e2) > 0 or eo > 30:
        return None
    return AddSubRequant(left, m1, e1, m2, e2, mo, eo)


# ---- UNIDIRECTIONAL_SEQUENCE_LSTM (int8 activations, int16 cell state) ------------------------------------------
@dataclass(frozen=True)
class LstmRequant(Requant):
    """TFLM's integer LSTM constants. Gate order everywhere: input, forget, cell, output.

    Gate FCs produce Q3.12 (scale 2^-12) int16, the gate nonlinearities Q0.15; the three element-wise products
    are (gate x cell -> cell), (gate x gate -> cell) and (gate x tanh(cell) -> hidden, with the hidden zero
    point). `cell_clip` 0 means no clipping; `cell_scale_power` is log2 of the cell state scale.
    """

    input_mult: tuple[int, ...]
    input_shift: tuple[int, ...]
    recurrent_mult: tuple[int, ...]
    recurrent_shift: tuple[int, ...]
    forget_cell: tuple[int, int]
    input_cell: tuple[int, int]
    hidden: tuple[int, int]
    cell_clip: int
    cell_scale_power: int


@register("UNIDIRECTIONAL_SEQUENCE_LSTM")
def _lstm_requant(g: Graph, op: Op) -> Optional[Requant]:
    import numpy as np

    from specializer.quant import checked_log2

    def scale(tid):
        t = g.t(tid) if tid is not None else None
        return None if t is None or t.quant is None or t.quant.per_channel else float(np.float32(t.quant.s))

    s_x, s_h, s_c = scale(op.input(0)), scale(op.input(18)), scale(op.input(19))
    w_in = [scale(op.input(1 + k)) for k in range(4)]
    w_rec = [scale(op.input(5 + k)) for k in range(4)]
    if None in (s_x, s_h, s_c, *w_in, *w_rec) or s_c <= 0 or s_h <= 0:
        return None
    gate_in = float(np.float32(2.0 ** -12))  # FC output = nonlinearity input, Q3.12
    gate_out = float(np.float32(2.0 ** -15))  # nonlinearity output, Q0.15
    fc_in = [quantize_multiplier(s_x * w / gate_in) for w in w_in]
    fc_rec = [quantize_multiplier(s_h * w / gate_in) for w in w_rec]
    clip = float(np.float32(op.attrs.cell_clip))
    qclip = int(min(max(clip / s_c, -32768.0), 32767.0)) if clip > 0 else 0  # static_cast<int16_t> truncates
    return LstmRequant(
        input_mult=tuple(m for m, _ in fc_in), input_shift=tuple(s for _, s in fc_in),
        recurrent_mult=tuple(m for m, _ in fc_rec), recurrent_shift=tuple(s for _, s in fc_rec),
        forget_cell=quantize_multiplier(gate_out * s_c / s_c),
        input_cell=quantize_multiplier(gate_out * gate_out / s_c),
        hidden=quantize_multiplier(gate_out * gate_out / s_h),
        cell_clip=qclip, cell_scale_power=checked_log2(s_c)[0])


# ---- SVDF (int8 input/output, int16 or int8 state) -------------------------------------------------------------
@dataclass(frozen=True)
class SvdfRequant(Requant):
    """TFLM's integer SVDF constants: the feature stage (int8 input x int8 feature weights -> state, scale
    s_x s_wf / s_state) and the output stage (time weights x state, summed over the rank, + bias -> int8 output,
    scale s_state s_wt / s_y). The installed TFLM forms both products and quotients in double from the float32
    scales (measured: the all-float32 product gives other multipliers, and other outputs, on some scales)."""

    feature_mult: int
    feature_shift: int
    output_mult: int
    output_shift: int


def svdf_bias_scale_ok(g: Graph, op: Op) -> bool:
    """TFLM's PrepareSvdf check on the bias scale: |s_bias - s_state * s_wt| < 1e-5 (in double)."""
    b = op.input(3)
    if b is None:
        return True
    bt, st, wt = g.t(b), g.t(op.inputs[4]), g.t(op.inputs[2])
    if bt.quant is None or st.quant is None or wt.quant is None:
        return False
    return abs(float(bt.quant.scale[0]) - float(st.quant.scale[0]) * float(wt.quant.scale[0])) < 1e-5


@register("SVDF")
def _svdf_requant(g: Graph, op: Op) -> Optional[Requant]:
    if len(op.inputs) != 5 or op.input(4) is None:
        return None
    ts = tuple(g.t(op.inputs[i]) for i in (0, 1, 2, 4)) + (g.t(op.outputs[0]),)
    if any(t.quant is None or t.quant.per_channel for t in ts):
        return None
    s_x, s_wf, s_wt, s_st, s_y = (float(t.quant.scale[0]) for t in ts)
    m1, e1 = quantize_multiplier(s_x * s_wf / s_st)
    m2, e2 = quantize_multiplier(s_st * s_wt / s_y)
    return SvdfRequant(m1, e1, m2, e2)
