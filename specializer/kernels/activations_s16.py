"""int16 LOGISTIC and TANH (the int16x8 mode), bit-exact with TFLite Micro's int16 algorithm.

How it works
1. TFLM's int16 LOGISTIC/TANH prepare (checked against the oracle): zero points 0 on input and output, an
   output scale of 2^-15 (its CheckedLog2: within 1e-3 in log2), and an input rescale to steps of 1/(3 * 4096):
   - power-of-two form: an input scale within 1e-3 (in log2) of 2^-12 (TANH: also 2^-11) is taken as exactly
     that power of two, the multiplier is 3 (TANH at 2^-11: 6) and there is no shift;
   - general form: m = scale * 4096 * 3 in double, doubled (left shift + 1) while m <= 32767 / 2 and the shift
     <= 30, then truncated to an integer.
   `sigmoid_tanh_params` computes (mult, left) the same way; the kernel computes v = (x * mult + round) >> left.
2. A 256-entry table of sigmoid(i / 24) in 0.16 fixed point is interpolated linearly; TANH reads it at twice
   the rate (tanh(x) = 2 sigmoid(2x) - 1). TFLM's entries are not a plain rounding of sigmoid(i / 24) (35493 at
   i = 4 where the rounding gives 35492, ...): the table is the one the LSTM kernel uses (`lstm.SIGMOID_TABLE`,
   measured from the oracle); `measured_sigmoid_table` re-measures it from tflite-micro and checks it over all
   65536 inputs of both ops (tests). The C kernel (`sigmoid_tanh_s16.c.in`) holds the table as a const array.
3. Refused with a one-line reason: nonzero zero points and output scales other than 2^-15 (TFLM's prepare fails),
   input scales above 2^15 / (3 * 4096) (TFLM's multiplier would exceed 32767 and its int32 product overflow).
"""
from __future__ import annotations

import functools
from typing import Optional

import numpy as np

from ..quant import checked_log2
from ..registry import KernelEntry


# The probe scale: float32 just above 1/3072, so TFLM's general rescale is exactly v = 4x (mult 16384, left 12)
_PROBE_SCALE = float(np.nextafter(np.float32(1.0 / 3072.0), np.float32(1.0)))


def twin(kind: str, x: np.ndarray, mult: int, left: int, table) -> np.ndarray:
    """Python twin of the C kernel (TFLM's int16 LOGISTIC/TANH), vectorized; x int16 -> int16."""
    t = np.asarray(table, dtype=np.int64)
    v = (x.astype(np.int64) * mult + ((1 << (left - 1)) if left > 0 else 0)) >> left
    a = np.abs(v)
    sh = 9 if kind == "LOGISTIC" else 8
    idx = a >> sh
    lo = t[np.minimum(idx, 254)]
    hi = t[np.minimum(idx, 254) + 1]
    r = (lo << sh) + (a & ((1 << sh) - 1)) * (hi - lo)
    if kind == "LOGISTIC":
        r = np.where(idx >= 255, 0x7FFF << 10, r)
        r = np.where(v >= 0, r + 512, (1 << 25) - r + 511) >> 10
    else:
        r = np.where(idx >= 255, 0xFFFF << 8, r)
        r = np.where(v >= 0, r - (1 << 23) + 128, -r + (1 << 23) + 127) >> 8
    return r.astype(np.int16)


def _probe_model(kind: str, n: int) -> bytes:
    from ..tflite_writer import ModelBuilder

    mb = ModelBuilder()
    x = mb.input("x", (n,), "int16", _PROBE_SCALE, 0)
    y = mb.tensor("y", (n,), "int16", 1.0 / 32768.0, 0)
    mb.op(kind, [x], [y])
    mb.output(y)
    return mb.build()


def sigmoid_table() -> tuple[int, ...]:
    """TFLM's 256-entry sigmoid table (the LSTM kernel's, measured from the oracle once and kept in the source)."""
    from .lstm import SIGMOID_TABLE

    return tuple(int(v) for v in SIGMOID_TABLE)


@functools.lru_cache(maxsize=1)
def measured_sigmoid_table() -> tuple[int, ...]:
    """TFLM's 256-entry sigmoid table (sigmoid(i / 24) in 0.16 fixed point, tuned by TFLM: not a plain rounding),
    measured once per process from the oracle: an int16 TANH at the probe scale (v = 4x) returns entry k - 32768
    exactly at x = 64k (no interpolation), and entry 255 shows in the slope at x = 64 * 254 + 63. The table is then
    checked by running both ops over all 65536 inputs against the twin; any difference raises ValueError."""
    try:
        from ..oracle import run_tflm
    except ImportError as e:  # pragma: no cover - the package is a dependency
        raise ValueError(f"int16 LOGISTIC/TANH take their table from tflite-micro, which is not installed ({e})")
    assert sigmoid_tanh_params("TANH", _PROBE_SCALE) == (16384, 12)
    everything = np.arange(-32768, 32768, dtype=np.int64).astype(np.int16)
    got = {k: np.asarray(run_tflm(_probe_model(k, everything.size), [everything])[0], dtype=np.int16)
           for k in ("TANH", "LOGISTIC")}
    tanh = got["TANH"].astype(np.int64)
    table = [int(tanh[32768 + 64 * k]) + 32768 for k in range(255)]
    x_last = 64 * 254 + 63
    ut = (4 * x_last) & 0xFF
    step = int(tanh[32768 + x_last]) - (table[254] - 32768)
    cands = [d for d in range(0, 1 << 12) if (ut * d + 128) >> 8 == step]
    for d in cands:
        trial = tuple(table + [table[254] + d])
        if all(np.array_equal(twin(k, everything, 16384, 12, trial), got[k]) for k in got):
            return trial
    raise ValueError("int16 LOGISTIC/TANH: the installed tflite-micro does not follow the table algorithm this "
                     "compiler reproduces (measured table fails the full-range check)")


def sigmoid_tanh_params(kind: str, scale: float) -> tuple[int, int]:
    """(mult, left) of TFLM's int16 LOGISTIC/TANH prepare for an input scale (power-of-two form resolved)."""
    log2, pot = checked_log2(scale)
    left = 12 + log2
    if pot and (left == 0 or (kind == "TANH" and left == 1)):
        return 3 << left, 0
    m = float(np.float32(scale)) * 4096.0 * 3.0
    left = 0
    while m <= 32767.0 / 2.0 and left <= 30:
        left += 1
        m *= 2.0
    return int(m), left


def _reject(g, op, core) -> Optional[str]:
    x, y = g.t(op.inputs[0]), g.t(op.outputs[0])
    if (x.dtype, y.dtype) != ("int16", "int16"):
        return f"needs int16 input and output, got {x.dtype}/{y.dtype}"
    if x.quant is None or y.quant is None or x.quant.per_channel or y.quant.per_channel:
        return "needs per-tensor quantized input and output"
    if x.size != y.size:
        return f"input and output sizes differ ({x.size} vs {y.size})"
    if x.quant.zp or y.quant.zp:
        return f"int16 {op.kind} needs zero points 0, got {x.quant.zp}/{y.quant.zp} (TFLite Micro's prepare fails)"
    log2, pot = checked_log2(y.quant.s)
    if not pot or log2 != -15:
        return (f"int16 {op.kind} needs the output scale 2^-15 (1/32768), got {y.quant.s:g} (TFLite Micro's "
                "prepare fails)")
    mult, _ = sigmoid_tanh_params(op.kind, x.quant.s)
    if mult > 32767:
        return (f"input scale {x.quant.s:g} too large (above 2^15 / (3 * 4096)): TFLite Micro's input multiplier "
                "would pass 32767 and its int32 product overflow")
    return None


def _emit(ctx):
    op = ctx.op
    x, y = ctx.inp(0), ctx.out()
    fn = ctx.fn(OP=op.kind, TABLE=", ".join(str(v) for v in sigmoid_table()))
    mult, left = sigmoid_tanh_params(op.kind, x.quant.s)
    p = ctx.sym("p")
    ctx.static(f"static const {fn}_params {p} = {{ {x.size}, {mult}, {left} }};")
    ctx.call(f"{fn}(&{p}, {ctx.ptr(x.id)}, {ctx.ptr(y.id)});")


LOGISTIC_S16 = KernelEntry(name="logistic_s16", ops=("LOGISTIC",), template="sigmoid_tanh_s16.c.in",
                           emit=_emit, reject=_reject, inplace=(0,))
TANH_S16 = KernelEntry(name="tanh_s16", ops=("TANH",), template="sigmoid_tanh_s16.c.in",
                       emit=_emit, reject=_reject, inplace=(0,))

ENTRIES = (LOGISTIC_S16, TANH_S16)
