"""Quantization arithmetic, bit-exact with TFLite Micro's reference kernels (double-rounding build).

How it works
1. `quantize_multiplier` turns a real multiplier into (int32 Q31 multiplier, power-of-two shift) exactly as
   TFLite's QuantizeMultiplier: frexp, round half away from zero, renormalise 2^31, flush shifts below -31.
2. The integer helpers below (`srdhm`, `rdbpot`, `mbqm`) are the numpy/Python twins of the C runtime functions in
   runtime/spz_runtime.h. Tests use them to check the C code and passes use them to precompute constants.
"""
from __future__ import annotations

import math

import numpy as np

INT32_MIN = -(1 << 31)
INT32_MAX = (1 << 31) - 1


def tflite_round(x: float) -> float:
    """std::round: half away from zero."""
    return math.copysign(math.floor(abs(x) + 0.5), x)


def quantize_multiplier(m: float) -> tuple[int, int]:
    """(quantized_multiplier, shift) with m ~= quantized_multiplier * 2^(shift - 31)."""
    if m == 0.0:
        return 0, 0
    q, shift = math.frexp(m)
    q_fixed = int(tflite_round(q * (1 << 31)))
    assert q_fixed <= (1 << 31)
    if q_fixed == (1 << 31):
        q_fixed //= 2
        shift += 1
    assert q_fixed <= INT32_MAX
    if shift < -31:
        shift = 0
        q_fixed = 0
    return q_fixed, shift


def quantize_multiplier_smaller_than_one(m: float) -> tuple[int, int]:
    assert 0.0 <= m < 1.0, m
    qm, shift = quantize_multiplier(m)
    assert shift <= 0
    return qm, shift


def quantize_multiplier_greater_than_one(m: float) -> tuple[int, int]:
    assert m > 1.0, m
    qm, shift = quantize_multiplier(m)
    assert shift >= 0
    return qm, shift


def srdhm(a: int, b: int) -> int:
    """SaturatingRoundingDoublingHighMul (gemmlowp) on int32."""
    if a == b == INT32_MIN:
        return INT32_MAX
    ab = a * b
    nudge = (1 << 30) if ab >= 0 else (1 - (1 << 30))
    v = ab + nudge
    # C++ integer division truncates toward zero
    q = abs(v) >> 31
    return q if v >= 0 else -q


def rdbpot(x: int, exponent: int) -> int:
    """RoundingDivideByPOT (gemmlowp) on int32."""
    mask = (1 << exponent) - 1
    remainder = x & mask
    threshold = (mask >> 1) + (1 if x < 0 else 0)
    return (x >> exponent) + (1 if remainder > threshold else 0)


def mbqm(x: int, qm: int, shift: int) -> int:
    """MultiplyByQuantizedMultiplier (double rounding)."""
    left = shift if shift > 0 else 0
    right = -shift if shift < 0 else 0
    return rdbpot(srdhm(x * (1 << left), qm), right)


def activation_range(activation: str, scale: float, zero_point: int, qmin: int = -128, qmax: int = 127
                     ) -> tuple[int, int]:
    """CalculateActivationRangeQuantized: the output clamp of a fused activation."""

    def q(v: float) -> int:  # TFLite divides in float32 here
        return zero_point + int(tflite_round(float(np.float32(v) / np.float32(scale))))

    if activation == "NONE":
        return qmin, qmax
    if activation == "RELU":
        return max(qmin, q(0.0)), qmax
    if activation == "RELU6":
        return max(qmin, q(0.0)), min(qmax, q(6.0))
    if activation == "RELU_N1_TO_1":
        return max(qmin, q(-1.0)), min(qmax, q(1.0))
    raise ValueError(f"activation {activation} has no integer clamp")


def checked_log2(x: float) -> tuple[int, bool]:
    """TFLite's CheckedLog2 on a float32 scale: (rounded log2, whether x is a power of two within 1e-3)."""
    x_log2 = np.float32(np.log(np.float32(x))) * np.float32(1.0 / np.log(np.float32(2.0)))
    rounded = np.float32(tflite_round(float(x_log2)))
    return int(rounded), abs(float(np.float32(x_log2 - rounded))) < 1e-3
