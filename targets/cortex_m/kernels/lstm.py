"""UNIDIRECTIONAL_SEQUENCE_LSTM on DSP cores: the generic kernel's arithmetic with SIMD gate FCs and baked constants.

How it works
1. `reject` is the generic kernel's (same layer semantics, see specializer/kernels/lstm.py).
2. The stream, per gate and block of RB rows: the input-side biases (bias - zp_x * sum(w_in)), the recurrent
   biases (-zp_h * sum(w_rec)), the input weight words (rows in POS order), their 1-3 tail weights, then the
   recurrent weight words and tail.
3. Each gate's input and recurrent requantization gets its form (fast / wide / generic) from the accumulator
   bound of its rows; the constants are baked into the code.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from specializer.kernels import lstm as generic_lstm
from specializer.registry import KernelEntry

from .common import POS, add_stream, finish_stream, interleave, pack8, pack16, requant_plan

TEMPLATE = str(Path(__file__).resolve().parent / "lstm_s8_dsp.c.in")
INT32 = 1 << 31


def _parts(g, op):
    x, h = g.t(op.inputs[0]), g.t(op.input(18))
    w_in = [g.t(op.input(1 + k)).data.astype(np.int64) for k in range(4)]
    w_rec = [g.t(op.input(5 + k)).data.astype(np.int64) for k in range(4)]
    bias = [g.t(op.input(12 + k)).data.astype(np.int64).reshape(-1) for k in range(4)]
    b_in = [bias[k] - x.quant.zp * w_in[k].sum(axis=1) for k in range(4)]
    b_rec = [-h.quant.zp * w_rec[k].sum(axis=1) for k in range(4)]
    return w_in, w_rec, b_in, b_rec


def reject(g, op, core):
    why = generic_lstm._reject(g, op, core)
    if why:
        return why
    _, _, b_in, b_rec = _parts(g, op)
    if max(np.abs(b).max(initial=0) for b in b_in + b_rec) >= INT32:
        return "folded biases do not fit int32"
    return None


def _gate_rq(g, op):
    rq = op.requant
    w_in, w_rec, b_in, b_rec = _parts(g, op)
    out = []
    for k in range(4):
        pair = []
        for w, b, m, s in ((w_in[k], b_in[k], rq.input_mult[k], rq.input_shift[k]),
                           (w_rec[k], b_rec[k], rq.recurrent_mult[k], rq.recurrent_shift[k])):
            pair.append(_plan(m, s, int((np.abs(b) + 128 * np.abs(w).sum(axis=1)).max())))
        out.append(tuple(pair))
    return tuple(out)


def _plan(m: int, sh: int, bound: int) -> tuple:
    plan = requant_plan(np.array([m]), np.array([sh]), np.array([bound]), 0)
    if plan.mode == "generic":
        return ("generic", int(plan.a[0]), int(plan.b[0]), 0)
    return (plan.mode, int(plan.a[0]), int(plan.b[0]), int(plan.c[0]))


def template_args(g, op) -> dict:
    rq = op.requant
    batches, steps, n_input, n_cell = generic_lstm._sizes(g, op)
    rb = next((r for r in (5, 4, 6, 3) if n_cell % r == 0), min(4, n_cell))
    tmult, tshift = generic_lstm._tanh_scaling(rq.cell_scale_power)
    wpw = 2 if 4 * n_cell * (n_input + n_cell) <= I16_WEIGHT_LIMIT else 1
    return dict(B=batches, T=steps, NI=n_input, NC=n_cell, TM=bool(op.attrs.time_major), RB=rb, POS=POS, WPW=wpw,
                GRQ=_gate_rq(g, op), CQ=tuple(_plan(m, sh, 32767 * 32768) for m, sh in
                                              (rq.forget_cell, rq.input_cell, rq.hidden)),
                HZP=g.t(op.input(18)).quant.zp, CLIP=int(rq.cell_clip), TMULT=tmult, TSHIFT=tshift)


I16_WEIGHT_LIMIT = 16 * 1024  # gate weights up to this many bytes are stored as int16 (twice the flash, no unpack)


def _words(w: np.ndarray, wpw: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """(rows, k) int8 -> (the words the kernel reads per input word, in consumption order; tail weights):
    wpw 1: one int8 word per row; wpw 2: the rows' (w0, w2) int16 words, then their (w1, w3) words."""
    n, k = w.shape
    k4 = k // 4 * 4
    q = w[:, :k4].reshape(n, k4 // 4, 4)
    if wpw == 2:
        a = interleave(pack16(q[..., 0], q[..., 2]).astype(np.int64)).reshape(k4 // 4, n)
        b = interleave(pack16(q[..., 1], q[..., 3]).astype(np.int64)).reshape(k4 // 4, n)
        return np.stack([a, b], axis=1).reshape(-1), w[:, k4:].T.reshape(-1)
    return interleave(pack8(q[..., 0], q[..., 1], q[..., 2], q[..., 3]).astype(np.int64)), w[:, k4:].T.reshape(-1)


def build_stream(g, op, args: dict) -> np.ndarray:
    w_in, w_rec, b_in, b_rec = _parts(g, op)
    rb, nc = args["RB"], args["NC"]
    parts = []
    for k in range(4):
        for r0 in range(0, nc, rb):
            r1 = min(r0 + rb, nc)
            parts += [b_in[k][r0:r1], b_rec[k][r0:r1], *_words(w_in[k][r0:r1], args["WPW"]),
                      *_words(w_rec[k][r0:r1], args["WPW"])]
    return finish_stream(parts)


def reorder(g, op):
    return add_stream(g, op, build_stream(g, op, template_args(g, op)), "lstm_stream")


def scratch_bytes(g, op) -> int:
    return 4 * generic_lstm._sizes(g, op)[3] * 2


def emit(ctx):
    op = ctx.op
    args = template_args(ctx.g, op)
    fn = ctx.fn(variant=f"ni{args['NI']}_nc{args['NC']}_t{args['T']}_b{args['RB']}_w{'i16' if args['WPW'] == 2 else 'i8'}__dsp",
                **args)
    lut = ctx.weights(generic_lstm.sigmoid_table(), "uint16_t", hint="sigmoid_q16_table")
    x, y = ctx.inp(0), ctx.out()
    ctx.call(f"{fn}({ctx.ptr(x.id)}, {ctx.ptr(op.stream)}, {lut}, {ctx.ptr(op.input(18))}, "
             f"{ctx.ptr(op.input(19))}, {ctx.ptr(y.id)}, {ctx.scratch('int16_t')});")


ENTRY = KernelEntry(name="lstm_s8_dsp", ops=("UNIDIRECTIONAL_SEQUENCE_LSTM",), template=TEMPLATE, emit=emit,
                    reject=reject, scratch_bytes=scratch_bytes, template_args=template_args, priority=10,
                    generic=False, requires=frozenset({"dsp"}), reorder=reorder)
