"""Offline helpers shared by the Cortex-M kernels: requantization analysis, word packing, streams, names.

How it works
1. `requant_constants` decides per layer whether the 3-4 instruction requantization `spz_rq2` (SMMLAR on a
   doubled accumulator, see runtime/spz_runtime.h) is exact for every output channel, from a bound on the
   accumulator that the weights, bias and input zero point give; else whether the ~9 instruction `spz_rqw`
   (64-bit product, zero point added after the shift) is; else TFLite's generic form. It returns the mode and
   the per-channel constants; the kernel templates take the mode as RQ.
2. `pack16` packs pairs of int16 values into the little-endian words SMLAD reads.
3. `add_stream` stores a kernel's constant stream (int32 words in consumption order) as a new constant tensor
   and points `op.stream` at it; the emitter places it in flash like any weight.
4. `variant_name` spells a layer's specialization with one grammar (DESIGN §5.9):
   k3x3_s1_p1_c16x32 (+ further parts), used in the C function names and in `bench`.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Optional, Sequence

import numpy as np

from specializer.ir import Graph, Op, Tensor

INT32_LIMIT = 1 << 31


@dataclass(frozen=True)
class RequantPlan:
    mode: str  # "fast": (m, k, e) for spz_rq2; "wide": (m, k, e) for spz_rqw; "generic": (multiplier, shift)
    a: np.ndarray  # m or multiplier, per channel (int64 values that fit int32)
    b: np.ndarray  # k or shift
    c: Optional[np.ndarray]  # e (fast only)
    # channels whose output is one constant for every reachable accumulator (`requant_plan`'s acc_range): their
    # constants give it from m = 0 whatever the accumulator, so a kernel may zero their bias and weights
    const: Optional[np.ndarray] = None

    def channels(self, lo: int, hi: int) -> list[np.ndarray]:
        """The constants of channels lo..hi-1 in the order a kernel's stream stores them: a, b (and c)."""
        return [self.a[lo:hi], self.b[lo:hi]] + ([self.c[lo:hi]] if self.c is not None else [])


def per_channel(values: Sequence[int], n: int) -> np.ndarray:
    v = np.asarray(values, dtype=np.int64).reshape(-1)
    return np.broadcast_to(v, (n,)).copy() if v.size == 1 else v


def requant_constants(op: Op, acc_bound: np.ndarray, out_zp: int, acc_range=None) -> RequantPlan:
    """`requant_plan` for an op whose `op.requant` is a ChannelRequant (conv, depthwise, fully connected).
    Memoized on the values (the variant choice asks for the same layer's constants many times)."""
    n = len(acc_bound)
    lo, hi = tuple(op.clamp) if op.clamp is not None else (-128, 127)
    mult, shift = per_channel(op.requant.multiplier, n), per_channel(op.requant.shift, n)
    bound = np.asarray(acc_bound, dtype=np.int64)
    key = (mult.tobytes(), shift.tobytes(), bound.tobytes(), int(out_zp), lo, hi,
           None if acc_range is None else tuple(np.asarray(r, dtype=np.int64).tobytes() for r in acc_range))
    plan = _PLANS.get(key)
    if plan is None:
        if len(_PLANS) > 4096:
            _PLANS.clear()
        plan = _PLANS[key] = requant_plan(mult, shift, bound, out_zp, acc_range=acc_range, clamp=(lo, hi))
    return plan


_PLANS: dict = {}


def constant_channels(mult, shift, acc_range, out_zp: int, clamp) -> tuple[np.ndarray, np.ndarray]:
    """(mask, value): channels (with a right shift and a multiplier >= 0, where TFLite's requantization is
    monotonic in the accumulator) whose clamped output is the same at both ends of the accumulator range."""
    from specializer.quant import mbqm

    lo_acc, hi_acc = acc_range
    mask = np.zeros(len(mult), dtype=bool)
    value = np.zeros(len(mult), dtype=np.int64)
    for ch in range(len(mult)):
        if mult[ch] < 0 or shift[ch] > 0:
            continue
        ys = [min(max(mbqm(int(a), int(mult[ch]), int(shift[ch])) + out_zp, clamp[0]), clamp[1])
              for a in (lo_acc[ch], hi_acc[ch])]
        if ys[0] == ys[1]:
            mask[ch], value[ch] = True, ys[0]
    return mask, value


def requant_plan(mult: np.ndarray, shift: np.ndarray, acc_bound: np.ndarray, out_zp: int, acc_range=None,
                 clamp=(-128, 127)) -> RequantPlan:
    """Per-channel requantization constants for an accumulator whose |value| is at most `acc_bound[c]`.

    The fast form needs, for every channel: multiplier in [2^30, 2^31), shift <= -1 (a right shift e >= 1),
    |2 acc| < 2^31, and k = 2^(e-1) + (out_zp << e) added to |SRDHM(acc, m)| staying inside int32.
    """
    mult = np.asarray(mult, dtype=np.int64)
    shift = np.asarray(shift, dtype=np.int64)
    bound = np.asarray(acc_bound, dtype=np.int64)
    if acc_range is not None:  # constant channels: the kernel zeroes their bias and weights (accumulator 0)
        const, value = constant_channels(mult, shift, acc_range, out_zp, clamp)
        if const.any():
            plan = requant_plan(np.where(const, 0, mult), np.where(const, -1, shift),
                                np.where(const, 0, bound), out_zp)
            if plan.mode == "fast":  # m = 0: (k + sign) >> 1 with k = 1 + 2 y
                return dataclasses.replace(plan, b=np.where(const, 1 + 2 * value, plan.b),
                                           c=np.where(const, 1, plan.c), const=const)
            if plan.mode == "wide":  # m = 0: (k >> 1) + out_zp with k = 2 (y - out_zp)
                return dataclasses.replace(plan, b=np.where(const, 2 * (value - out_zp), plan.b),
                                           c=np.where(const, 1, plan.c), const=const)
    # A channel whose output is out_zp for every reachable accumulator (multiplier 0, or a right shift that
    # rounds every |SRDHM(acc, m)| <= bound * m / 2^31 + 1 to 0) gets m = 0, e = 1, k = 1 + 2 out_zp:
    # (k + sign) >> 1 = out_zp.
    e = -shift
    head = (bound * mult) // INT32_LIMIT + 1  # >= |SRDHM(acc, m)|
    dead = (mult == 0) | ((e >= 1) & (head < (np.int64(1) << np.clip(e - 1, 0, 62))))
    live = ~dead
    fast = bool(np.all(mult[live] >= (1 << 30)) and np.all(mult[live] < INT32_LIMIT) and np.all(e[live] >= 1)
                and np.all(2 * bound < INT32_LIMIT))
    if fast:
        el = np.where(live, e, 1)
        k = (np.int64(1) << (el - 1)) + (np.int64(out_zp) << el)
        fast = bool(np.all(head + 1 + (np.int64(1) << (el - 1)) + abs(out_zp) * (np.int64(1) << el) < INT32_LIMIT)
                    and np.all(np.abs(k) < INT32_LIMIT))
    if fast:
        m = np.where(live, mult, 0)
        k = np.where(live, k, 1 + 2 * out_zp)
        return RequantPlan("fast", m, k, el)
    # "wide" (spz_rqw): the undoubled accumulator through a 64-bit product, out_zp added after the shift. Needs a
    # right shift e >= 1 on every live channel and x + 2^(e-1) + sign inside int32.
    el = np.where(live, e, 1)
    if bool(np.all(el >= 1) and np.all(mult >= 0) and np.all(head + 1 + (np.int64(1) << (el - 1)) < INT32_LIMIT)):
        m = np.where(live, mult, 0)
        return RequantPlan("wide", m, np.int64(1) << (el - 1), el)
    return RequantPlan("generic", mult, shift, None)


def pack16(lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """int16 pairs -> int32 words (lo in bits 0-15, hi in bits 16-31). Values must fit int16."""
    lo = np.asarray(lo, dtype=np.int64)
    hi = np.asarray(hi, dtype=np.int64)
    assert lo.min(initial=0) >= -32768 and lo.max(initial=0) <= 32767, "pack16: low half out of int16 range"
    assert hi.min(initial=0) >= -32768 and hi.max(initial=0) <= 32767, "pack16: high half out of int16 range"
    w = (lo & 0xFFFF) | ((hi & 0xFFFF) << 16)
    return w.astype(np.uint32).view(np.int32)


def pack8(b0, b1, b2, b3) -> np.ndarray:
    """int8 quadruples -> int32 words (b0 in bits 0-7)."""
    parts = [np.asarray(b, dtype=np.int64) & 0xFF for b in (b0, b1, b2, b3)]
    w = parts[0] | (parts[1] << 8) | (parts[2] << 16) | (parts[3] << 24)
    return w.astype(np.uint32).view(np.int32)


# Order of a block's rows (output channels) inside one input word's group of weight words: kernels load rows in
# pairs (0, 1), (2, 3), ...; placing them apart in memory keeps gcc from fusing each pair into one LDRD, which the
# cost model charges 3 cycles and never pipelines (two LDRs in a run cost 1 + 1). POS[n][j] = position of row j.
POS = {1: (0,), 2: (0, 1), 3: (0, 2, 1), 4: (0, 2, 1, 3), 5: (0, 3, 1, 4, 2), 6: (0, 3, 1, 4, 2, 5)}


def interleave(words: np.ndarray) -> np.ndarray:
    """(n rows, k words) -> k groups of n words in the kernel's load order (POS[n]), flattened."""
    n, k = words.shape
    out = np.zeros((k, n), dtype=np.int64)
    for j in range(n):
        out[:, POS[n][j]] = words[j]
    return out.reshape(-1)


def finish_stream(parts) -> np.ndarray:
    """Concatenate a stream's parts into the int32 words the kernel reads (every value must fit int32)."""
    stream = np.concatenate([np.asarray(p, dtype=np.int64).reshape(-1) for p in parts])
    assert stream.min(initial=0) >= -INT32_LIMIT and stream.max(initial=0) < INT32_LIMIT, "stream value out of int32"
    return stream.astype(np.int32)


def add_stream(g: Graph, op: Op, words: np.ndarray, what: str) -> tuple[Graph, Op]:
    arr = np.ascontiguousarray(np.asarray(words, dtype=np.int32).reshape(-1))
    arr.setflags(write=False)
    tid = g.new_tensor_id()
    t = Tensor(id=tid, name=f"{g.t(op.outputs[0]).name}/{what}", shape=arr.shape, dtype="int32", data=arr)
    op = dataclasses.replace(op, stream=tid)
    return g.with_tensors({tid: t}), op


def grouped(g: Graph, op: Op) -> Optional[str]:
    """Why a grouped CONV_2D (more input channels than its filters have) stays on the generic kernel, else None."""
    if g.t(op.inputs[0]).shape[3] != g.t(op.inputs[1]).shape[3]:
        return "grouped convolution (generic kernel)"
    return None


def call_stream_kernel(ctx, fn: str, in_zp: bool = True) -> None:
    """The call of a kernel that reads one constant stream: fn(input, stream, output, int32 scratch, [input zero
    point,] output zero point)."""
    op = ctx.op
    x, y = ctx.inp(0), ctx.out()
    zps = (f"{x.quant.zero_point[0]}, " if in_zp else "") + f"{y.quant.zero_point[0]}"
    ctx.call(f"{fn}({ctx.ptr(x.id)}, {ctx.ptr(op.stream)}, {ctx.ptr(y.id)}, {ctx.scratch('int32_t')}, {zps});")


def clamp_of(op: Op) -> tuple[int, int]:
    return tuple(op.clamp) if op.clamp is not None else (-128, 127)


def bias_of(g: Graph, op: Op, n: int) -> np.ndarray:
    b = op.input(2)
    if b is None:
        return np.zeros(n, dtype=np.int64)
    return g.t(b).data.astype(np.int64).reshape(-1)


def input_span(zp: int) -> int:
    """The largest |x - zp| over int8 x."""
    return max(127 - zp, zp + 128)


def variant_name(**parts) -> str:
    """k3x3_s1_p1_c16x32-style name from ordered parts (value None = omitted)."""
    return "_".join(f"{k}{v}" for k, v in parts.items() if v is not None)
