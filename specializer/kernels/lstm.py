"""UNIDIRECTIONAL_SEQUENCE_LSTM kernels: int8 activations and weights, int32 biases, int16 cell state (`lstm_s8`);
int16 activations, int8 weights, int64 biases, int16 cell state (`lstm_s16`).

How it works
1. TFLite Micro's integer LSTM (the "8x8->16" kernel behind UNIDIRECTIONAL_SEQUENCE_LSTM): every gate is
   FC(x) + FC(h) into Q3.12 int16, then sigmoid (tanh for the cell gate) to Q0.15;
   the cell state becomes sat16(f * c) + sat16(i * g) (optionally clipped), the hidden state
   o * tanh(c) requantized to int8 with its zero point, and each step's hidden state is copied to the output.
   The `intermediates` tensors of converter models are not read (TFLM ignores them as well).
2. `passes.precompute_requant` (LstmRequant) holds every multiplier; here the four gates' weights are packed into
   one flash array per kind (input, recurrent), and the input / hidden zero points are folded into per-gate
   biases (bias - zp_x * sum(w_in), -zp_h * sum(w_rec)), exact in int32.
3. The two state tensors are variables: the emitter resets them (int8 to its zero point, int16 to 0) at the start
   of every run, as a fresh TFLM interpreter does. Gate outputs live in the entry's scratch (4 x batch x cell int16).
4. Peephole, projection, layer norm, CIFG (absent input gate), per-channel weights, hybrid / float activation
   models are rejected with a one-line reason (each entry refuses the other's activation width).
5. `lstm_s16`, TFLM's "16x8" integer LSTM (EvalLstm<int16_t, int8_t, int16_t, int64_t>): the same steps, but the
   gate FCs read int16 input / hidden state, accumulate in int64 on int64 biases and rescale with TFLite's 64-bit
   MultiplyByQuantizedMultiplier (16-bit rounded multiplier); the hidden state saturates to int16 (its zero point
   added, as TFLM does). TFLM applies both zero points, so they are folded into the int64 biases like the int8
   kernel's. Refused: int32 biases (TFLM reads the bias buffer as int64 and misreads them), gate FC shifts
   outside -31..7 and accumulators that could pass 2^47 (the 64-bit rescale's assumptions). The int16 hidden
   state restarts at 0 (TFLM resets only int8 variables to their zero point).
"""
from __future__ import annotations

import math

import numpy as np

from ..registry import KernelEntry

_ABSENT = (9, 10, 11, 16, 17, 20, 21, 22, 23)  # peephole, projection, layer norm inputs


# The 256-entry unsigned Q0.16 sigmoid table that TFLite's int16 sigmoid/tanh interpolate (about sigmoid(i / 24),
# not exactly: these values were measured from the oracle's int16 TANH, see tests/kernels/test_lstm.py).
SIGMOID_TABLE = (
    32768, 33451, 34133, 34813, 35493, 36169, 36843, 37513, 38180, 38841, 39498, 40149, 40794, 41432, 42064, 42688,
    43304, 43912, 44511, 45102, 45683, 46255, 46817, 47369, 47911, 48443, 48964, 49475, 49975, 50464, 50942, 51409,
    51865, 52311, 52745, 53169, 53581, 53983, 54374, 54755, 55125, 55485, 55834, 56174, 56503, 56823, 57133, 57433,
    57724, 58007, 58280, 58544, 58800, 59048, 59288, 59519, 59743, 59959, 60168, 60370, 60565, 60753, 60935, 61110,
    61279, 61441, 61599, 61750, 61896, 62036, 62172, 62302, 62428, 62549, 62666, 62778, 62886, 62990, 63090, 63186,
    63279, 63368, 63454, 63536, 63615, 63691, 63765, 63835, 63903, 63968, 64030, 64090, 64148, 64204, 64257, 64308,
    64357, 64405, 64450, 64494, 64536, 64576, 64614, 64652, 64687, 64721, 64754, 64786, 64816, 64845, 64873, 64900,
    64926, 64950, 64974, 64997, 65019, 65039, 65060, 65079, 65097, 65115, 65132, 65149, 65164, 65179, 65194, 65208,
    65221, 65234, 65246, 65258, 65269, 65280, 65291, 65301, 65310, 65319, 65328, 65337, 65345, 65352, 65360, 65367,
    65374, 65381, 65387, 65393, 65399, 65404, 65410, 65415, 65420, 65425, 65429, 65433, 65438, 65442, 65445, 65449,
    65453, 65456, 65459, 65462, 65465, 65468, 65471, 65474, 65476, 65479, 65481, 65483, 65485, 65488, 65489, 65491,
    65493, 65495, 65497, 65498, 65500, 65501, 65503, 65504, 65505, 65507, 65508, 65509, 65510, 65511, 65512, 65513,
    65514, 65515, 65516, 65517, 65517, 65518, 65519, 65520, 65520, 65521, 65522, 65522, 65523, 65523, 65524, 65524,
    65525, 65525, 65526, 65526, 65526, 65527, 65527, 65528, 65528, 65528, 65529, 65529, 65529, 65529, 65530, 65530,
    65530, 65530, 65531, 65531, 65531, 65531, 65531, 65532, 65532, 65532, 65532, 65532, 65532, 65533, 65533, 65533,
    65533, 65533, 65533, 65533, 65533, 65534, 65534, 65534, 65534, 65534, 65534, 65534, 65534, 65534, 65534, 65535,
)


def sigmoid_table() -> np.ndarray:
    return np.asarray(SIGMOID_TABLE, dtype=np.uint16)


def _sizes(g, op):
    x = g.t(op.inputs[0])
    tm = op.attrs.time_major
    batches, steps = (x.shape[1], x.shape[0]) if tm else (x.shape[0], x.shape[1])
    return batches, steps, x.shape[2], g.t(op.inputs[2]).shape[0]


def _tanh_scaling(power: int) -> tuple[int, int]:
    """(multiplier, right shift) applied to the cell state before the tanh table, from log2(cell scale)."""
    left = 15 + power - 3
    return (3 << left, 0) if left >= 0 else (3, -left)


def _reject(g, op, core):
    return _reject_form(g, op, "int8", "int32")


def _reject_form(g, op, act: str, bias: str):
    """Why this layer is not the integer LSTM with `act` input / hidden / output and `bias` gate biases (int8 /
    int32: the 8x8->16 form; int16 / int64: the 16x8 form), or None."""
    n_in = len(op.inputs)
    if n_in != 24:
        return f"needs the 24 LSTM inputs, got {n_in}"
    x, y = g.t(op.inputs[0]), g.t(op.outputs[0])
    if (x.dtype, y.dtype) != (act, act):
        return f"needs {act} input/output, got {x.dtype}/{y.dtype}"
    if len(x.shape) != 3:
        return f"needs a 3-D input, got shape {x.shape}"
    for i in _ABSENT:
        if op.input(i) is not None:
            return "peephole, projection and layer-norm LSTMs are not supported (TFLM rejects them too)"
    for i in range(1, 9):
        if op.input(i) is None:
            return "needs all eight gate weight tensors (CIFG is not supported)"
    batches, steps, n_input, n_cell = _sizes(g, op)
    for i in range(1, 9):
        w = g.t(op.input(i))
        want = (n_cell, n_input) if i < 5 else (n_cell, n_cell)
        if not w.is_const or w.dtype != "int8" or tuple(w.shape) != want:
            return f"gate weights (input {i}) must be constant int8 of shape {want}, got {w.dtype}{list(w.shape)}"
        if w.quant is None or w.quant.per_channel or w.quant.zp != 0:
            return "gate weights must be per-tensor symmetric int8 (zero point 0)"
    for i in range(12, 16):
        b = g.t(op.input(i)) if op.input(i) is not None else None
        if b is None or not b.is_const or b.size != n_cell:
            return f"gate biases must be constant {bias} of {n_cell} values"
        if b.dtype != bias:
            return (f"gate biases must be {bias}, got {b.dtype}" + (
                " (TFLM's 16x8 LSTM reads its biases as int64: an int32 bias would be misread)"
                if act == "int16" else ""))
    hid, cell = op.input(18), op.input(19)
    if hid is None or cell is None:
        return "needs the hidden and cell state tensors"
    h, c = g.t(hid), g.t(cell)
    if not (h.variable and c.variable):
        return "hidden and cell state must be variable tensors"
    if (h.dtype, c.dtype) != (act, "int16"):
        return f"needs {act} hidden state and int16 cell state, got {h.dtype}/{c.dtype}"
    if h.size != batches * n_cell or c.size != batches * n_cell:
        return f"state tensors must hold batch x cell = {batches * n_cell} values"
    if tuple(y.shape) != (x.shape[0], x.shape[1], n_cell):
        return f"output shape {y.shape} does not match input {x.shape} and {n_cell} cells"
    if x.quant is None or h.quant is None or c.quant is None or x.quant.per_channel or h.quant.per_channel:
        return "input and state tensors need per-tensor quantization"
    if op.attrs.activation != "TANH":
        return f"cell gate activation {op.attrs.activation} (TFLM's integer LSTM takes TANH)"
    if not op.attrs.cell_clip >= 0 or math.isinf(op.attrs.cell_clip):
        return f"invalid cell_clip {op.attrs.cell_clip}"
    if op.requant is None:
        return "missing requantization constants"
    left = 15 + op.requant.cell_scale_power - 3
    if not -27 <= left <= 14:
        return f"cell state scale 2^{op.requant.cell_scale_power} is out of the supported range"
    return None


def _scratch(g, op) -> int:
    batches, _, _, n_cell = _sizes(g, op)
    return 4 * batches * n_cell * 2


def _emit(ctx):
    g, op = ctx.g, ctx.op
    rq = op.requant
    batches, steps, n_input, n_cell = _sizes(g, op)
    x, y = ctx.inp(0), ctx.out()
    h, c = ctx.inp(18), ctx.inp(19)
    w_in = [g.t(op.input(1 + k)).data.astype(np.int64) for k in range(4)]
    w_rec = [g.t(op.input(5 + k)).data.astype(np.int64) for k in range(4)]
    bias = [g.t(op.input(12 + k)).data.astype(np.int64).reshape(-1) for k in range(4)]
    b_in = np.concatenate([bias[k] - x.quant.zp * w_in[k].sum(axis=1) for k in range(4)])
    b_rec = np.concatenate([-h.quant.zp * w_rec[k].sum(axis=1) for k in range(4)])
    if np.abs(b_in).max(initial=0) > 2**31 - 1 or np.abs(b_rec).max(initial=0) > 2**31 - 1:
        from ..errors import ShapeError

        raise ShapeError(f"op #{op.index} UNIDIRECTIONAL_SEQUENCE_LSTM: folded bias exceeds int32")
    wi = ctx.weights(np.concatenate(w_in).astype(np.int8), hint=f"l{op.index}_w_in")
    wr = ctx.weights(np.concatenate(w_rec).astype(np.int8), hint=f"l{op.index}_w_rec")
    bi = ctx.weights(b_in.astype(np.int32), hint=f"l{op.index}_b_in")
    br = ctx.weights(b_rec.astype(np.int32), hint=f"l{op.index}_b_rec")
    _emit_call(ctx, op, rq, (batches, steps, n_input, n_cell), (x, h, c, y), (wi, wr, bi, br))


def _emit_call(ctx, op, rq, dims, tensors, consts) -> None:
    """The parameter struct and the call both LSTM kernels (int8 and 16x8) take."""
    batches, steps, n_input, n_cell = dims
    x, h, c, y = tensors
    wi, wr, bi, br = consts
    lut = ctx.weights(sigmoid_table(), "uint16_t", hint="sigmoid_q16_table")
    fn = ctx.fn()
    tmult, tshift = _tanh_scaling(rq.cell_scale_power)

    def arr(v):
        return "{ " + ", ".join(str(int(e)) for e in v) + " }"

    p = ctx.sym("p")
    ctx.static(f"static const {fn}_params {p} = {{ {batches}, {steps}, {n_input}, {n_cell}, "
               f"{int(op.attrs.time_major)}, "
               f"{arr(rq.input_mult)}, {arr(rq.input_shift)}, {arr(rq.recurrent_mult)}, {arr(rq.recurrent_shift)}, "
               f"{rq.forget_cell[0]}, {rq.forget_cell[1]}, {rq.input_cell[0]}, {rq.input_cell[1]}, "
               f"{rq.hidden[0]}, {rq.hidden[1]}, {h.quant.zp}, {rq.cell_clip}, {tmult}, {tshift} }};")
    ctx.call(f"{fn}(&{p}, {ctx.ptr(x.id)}, {wi}, {wr}, {bi}, {br}, {lut}, {ctx.ptr(h.id)}, {ctx.ptr(c.id)}, "
             f"{ctx.ptr(y.id)}, {ctx.scratch('int16_t')});")


GENERIC = KernelEntry(name="lstm_s8", ops=("UNIDIRECTIONAL_SEQUENCE_LSTM",), template="lstm_s8.c.in",
                      emit=_emit, reject=_reject, scratch_bytes=_scratch)


# ---- int16x8: TFLM's 16x8 integer LSTM (int16 input / hidden / output, int8 weights, int64 biases) ----------
_ACC_LIMIT = 1 << 47  # TFLite's 64-bit MultiplyByQuantizedMultiplier assumes |acc| < 2^47


def _folded_s16(g, op):
    """Per-gate int64 biases with the zero points folded in (input side: bias - zp_x sum(w_in); recurrent side:
    -zp_h sum(w_rec)), as Python ints, and the accumulators' worst-case magnitude."""
    x, h = g.t(op.inputs[0]), g.t(op.input(18))
    w_in = [g.t(op.input(1 + k)).data.astype(np.int64) for k in range(4)]
    w_rec = [g.t(op.input(5 + k)).data.astype(np.int64) for k in range(4)]
    bias = [g.t(op.input(12 + k)).data.astype(np.int64).reshape(-1).astype(object) for k in range(4)]
    # Python ints: an int64 bias minus the zero-point term may leave int64 (then refused by the bound)
    b_in = [bias[k] - int(x.quant.zp) * w_in[k].sum(axis=1).astype(object) for k in range(4)]
    b_rec = [-int(h.quant.zp) * w_rec[k].sum(axis=1).astype(object) for k in range(4)]
    worst = 0
    for b, w in zip(b_in + b_rec, w_in + w_rec):
        span = (32768 * np.abs(w).sum(axis=1)).astype(object)  # |x| <= 32768
        worst = max([worst] + [abs(int(v)) + int(r) for v, r in zip(b, span)])
    return b_in, b_rec, worst


def _reject_s16(g, op, core):
    why = _reject_form(g, op, "int16", "int64")
    if why:
        return why
    rq = op.requant
    if any(not -31 <= s <= 7 for s in (*rq.input_shift, *rq.recurrent_shift)):
        return ("a gate FC multiplier's shift is outside -31..7 (TFLite's 64-bit MultiplyByQuantizedMultiplier "
                "takes no other; input or hidden scale x weight scale too far from 2^-12)")
    if _folded_s16(g, op)[2] >= _ACC_LIMIT:
        return ("a gate accumulator could exceed +-2^47 (TFLite's 64-bit MultiplyByQuantizedMultiplier would "
                "overflow); the biases are too large")
    return None


def _emit_s16(ctx):
    g, op = ctx.g, ctx.op
    rq = op.requant
    batches, steps, n_input, n_cell = _sizes(g, op)
    x, y = ctx.inp(0), ctx.out()
    h, c = ctx.inp(18), ctx.inp(19)
    b_in, b_rec, _ = _folded_s16(g, op)
    w_in = [g.t(op.input(1 + k)).data for k in range(4)]
    w_rec = [g.t(op.input(5 + k)).data for k in range(4)]
    wi = ctx.weights(np.concatenate(w_in).astype(np.int8), hint=f"l{op.index}_w_in")
    wr = ctx.weights(np.concatenate(w_rec).astype(np.int8), hint=f"l{op.index}_w_rec")
    bi = ctx.weights(np.array([int(v) for b in b_in for v in b], dtype=np.int64), hint=f"l{op.index}_b_in")
    br = ctx.weights(np.array([int(v) for b in b_rec for v in b], dtype=np.int64), hint=f"l{op.index}_b_rec")
    _emit_call(ctx, op, rq, (batches, steps, n_input, n_cell), (x, h, c, y), (wi, wr, bi, br))


INT16 = KernelEntry(name="lstm_s16", ops=("UNIDIRECTIONAL_SEQUENCE_LSTM",), template="lstm_s16.c.in",
                    emit=_emit_s16, reject=_reject_s16, scratch_bytes=_scratch)

ENTRIES = (GENERIC, INT16)
