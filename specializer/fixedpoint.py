"""Python twins of TFLite Micro's fixed-point activations (gemmlowp arithmetic), used to build exact tables offline.

How it works
1. The int32 helpers below mirror gemmlowp's scalar primitives bit for bit (`srdhm`/`rdbpot` come from
   `quant`, the saturating power-of-two multiply, rounding half sum, exp on [-1/4, 0), exp of negative values,
   1/(1+x) and (1-x)/(1+x) by Newton-Raphson, logistic, tanh). Python integers never overflow, so every place where
   C++ relies on int32 wrap-around is wrapped explicitly with `_i32`.
2. The per-op functions reproduce TFLite Micro's Prepare (float32/double parameter arithmetic, exactly as the C++
   code orders it) and Eval for one int8 input value. Because LOGISTIC, TANH and HARD_SWISH are pure functions of
   one int8 value with per-tensor parameters, running them for all 256 inputs gives a 256-entry table that *is*
   TFLM's integer algorithm; the generated C code only indexes it.
3. SOFTMAX depends on a whole row, but its only transcendental step, exp(beta * s_in * (x - max)), depends on the
   8-bit difference x - max alone: `softmax_exp_table` holds gemmlowp's Q0.31 exp for the 256 possible differences
   (0 where TFLM skips the element because the difference is below diff_min). The row sum, the reciprocal and the
   output scaling stay in C (runtime/spz_fixedpoint.h) and are mirrored by `softmax_row` here for tests.
4. Every function raises `ValueError` with a one-line reason for parameters TFLM rejects or treats with undefined
   behaviour; kernels turn it into a reject reason.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .quant import INT32_MAX, INT32_MIN, mbqm, quantize_multiplier, rdbpot, srdhm, tflite_round


def _i32(x: int) -> int:
    """Two's complement wrap to int32."""
    return ((int(x) + (1 << 31)) & 0xFFFFFFFF) - (1 << 31)


def _i16(x: int) -> int:
    return ((int(x) + (1 << 15)) & 0xFFFF) - (1 << 15)


# ---- gemmlowp int32 primitives --------------------------------------------------------------------------------
def sat_mul_pot(x: int, exponent: int) -> int:
    """SaturatingRoundingMultiplyByPOT<exponent> on int32 (saturating left shift, or rounding right shift)."""
    if exponent == 0:
        return x
    if exponent < 0:
        return rdbpot(x, -exponent)
    threshold = (1 << (31 - exponent)) - 1
    if x > threshold:
        return INT32_MAX
    if x < -threshold:
        return INT32_MIN
    return x * (1 << exponent)


def rounding_half_sum(a: int, b: int) -> int:
    s = a + b
    v = s + (1 if s >= 0 else -1)
    q = abs(v) // 2
    return q if v >= 0 else -q  # C++ division truncates toward zero


def exp_on_interval_between_negative_one_quarter_and_0_excl(a: int) -> int:
    """exp(a) for a in [-1/4, 0), Q0.31 in and out."""
    constant_term = 1895147668
    constant_1_over_3 = 715827883
    x = _i32(a + (1 << 28))
    x2 = srdhm(x, x)
    x3 = srdhm(x2, x)
    x4 = srdhm(x2, x2)
    x4_over_4 = sat_mul_pot(x4, -2)
    poly = sat_mul_pot(_i32(srdhm(_i32(x4_over_4 + x3), constant_1_over_3) + x2), -1)
    return _i32(constant_term + srdhm(constant_term, _i32(x + poly)))


_EXP_BARREL = ((-2, 1672461947), (-1, 1302514674), (0, 790015084), (1, 290630308), (2, 39332535), (3, 720401),
               (4, 242))


def exp_on_negative_values(a: int, integer_bits: int) -> int:
    """exp(a) for a <= 0 given as Q(integer_bits).(31-integer_bits); result Q0.31."""
    frac = 31 - integer_bits
    one_quarter = 1 << (frac - 2)
    mask = one_quarter - 1
    a_mod_quarter_minus_one_quarter = _i32((a & mask) - one_quarter)
    result = exp_on_interval_between_negative_one_quarter_and_0_excl(
        sat_mul_pot(a_mod_quarter_minus_one_quarter, integer_bits))
    remainder = _i32(a_mod_quarter_minus_one_quarter - a)
    for exponent, multiplier in _EXP_BARREL:
        if integer_bits > exponent and remainder & (1 << (frac + exponent)):
            result = srdhm(result, multiplier)
    if integer_bits > 5 and a < -(1 << (36 - integer_bits)):
        result = 0
    if a == 0:
        result = INT32_MAX
    return result


def _newton_reciprocal_half_denominator(half_denominator: int) -> int:
    """The Q2.29 Newton-Raphson iterate shared by 1/(1+x) and (1-x)/(1+x)."""
    constant_48_over_17 = 1515870810
    constant_neg_32_over_17 = -1010580540
    one_q2 = 1 << 29
    x = _i32(constant_48_over_17 + srdhm(half_denominator, constant_neg_32_over_17))
    for _ in range(3):
        half_denominator_times_x = srdhm(half_denominator, x)
        one_minus = _i32(one_q2 - half_denominator_times_x)
        x = _i32(x + sat_mul_pot(srdhm(x, one_minus), 2))
    return x


def one_over_one_plus_x_for_x_in_0_1(a: int) -> int:
    x = _newton_reciprocal_half_denominator(rounding_half_sum(a, INT32_MAX))
    return sat_mul_pot(x, 1)


def one_minus_x_over_one_plus_x_for_x_in_0_1(a: int) -> int:
    x = _newton_reciprocal_half_denominator(rounding_half_sum(a, INT32_MAX))
    return sat_mul_pot(_i32(x - (1 << 29)), 2)


def logistic_q(a: int, integer_bits: int) -> int:
    """gemmlowp::logistic: a in Q(integer_bits), result Q0.31."""
    if a == 0:
        return 1 << 30
    abs_a = a if a > 0 else _i32(-a)
    pos = one_over_one_plus_x_for_x_in_0_1(exp_on_negative_values(_i32(-abs_a), integer_bits))
    return pos if a > 0 else _i32(INT32_MAX - pos)


def tanh_q(a: int, integer_bits: int) -> int:
    """gemmlowp::tanh: a in Q(integer_bits), result Q0.31."""
    if a == 0:
        return 0
    n = a if a < 0 else _i32(-a)
    t = one_minus_x_over_one_plus_x_for_x_in_0_1(exp_on_negative_values(n, integer_bits + 1))
    return _i32(-t) if a < 0 else t


# ---- LOGISTIC / TANH (int8) -----------------------------------------------------------------------------------
def calculate_input_radius(integer_bits: int, left_shift: int, total_signed_bits: int = 31) -> int:
    if left_shift < 0 or left_shift > 62:
        raise ValueError(f"input left shift {left_shift} is outside what TFLM computes without undefined behaviour")
    v = ((1 << integer_bits) - 1) * float(1 << (total_signed_bits - integer_bits)) / float(1 << left_shift)
    return int(math.floor(v))


@dataclass(frozen=True)
class SigmoidParams:
    """TFLM's Prepare-time constants of int8 LOGISTIC / TANH."""

    input_zero_point: int
    input_multiplier: int
    input_left_shift: int
    input_range_radius: int


def sigmoid_params(input_scale: float, input_zero_point: int) -> SigmoidParams:
    """LogisticPrepare / TanhPrepare for int8 (4 integer bits; frexp without renormalisation)."""
    real = float(np.float32(input_scale)) * float(1 << 27)
    q, shift = math.frexp(real)
    mult = int(tflite_round(q * (1 << 31)))
    if mult > INT32_MAX:  # cannot happen for float32 scales (24-bit mantissa), kept as a guard
        raise ValueError("input multiplier overflows int32")
    if shift < 0:
        raise ValueError(f"input scale {input_scale:g} is below 2^-28 (TFLM's input radius is undefined there)")
    return SigmoidParams(int(input_zero_point), mult, shift, calculate_input_radius(4, shift))


def logistic_s8(x: int, p: SigmoidParams) -> int:
    inp = x - p.input_zero_point
    if inp <= -p.input_range_radius:
        return -128
    if inp >= p.input_range_radius:
        return 127
    q4 = mbqm(inp, p.input_multiplier, p.input_left_shift)
    out = rdbpot(logistic_q(q4, 4), 23) - 128
    return min(max(out, -128), 127)


def tanh_s8(x: int, p: SigmoidParams) -> int:
    inp = x - p.input_zero_point
    if inp <= -p.input_range_radius:
        return -128
    if inp >= p.input_range_radius:
        return 127
    q4 = mbqm(inp, p.input_multiplier, p.input_left_shift)
    out = rdbpot(tanh_q(q4, 4), 24)
    return min(max(out, -128), 127)


# ---- HARD_SWISH (int8, int16 fixed point) ---------------------------------------------------------------------
@dataclass(frozen=True)
class HardSwishParams:
    input_zero_point: int
    output_zero_point: int
    reluish_multiplier: int  # int16
    reluish_exponent: int
    output_multiplier: int  # int16
    output_exponent: int


def _downscale_to_int16(m: int) -> int:
    if m >= INT32_MAX - (1 << 15):
        return 32767
    return (m + (1 << 15)) >> 16


def hard_swish_params(input_scale: float, input_zero_point: int, output_scale: float,
                      output_zero_point: int) -> HardSwishParams:
    """HardSwishPrepare: the scale ratios are formed in float32 as TFLM does, then quantized in double."""
    f32 = np.float32
    hires_input_scale = f32(1.0 / 128.0) * f32(input_scale)
    reluish_scale = f32(3.0) / f32(32768.0)
    out_m, out_e = quantize_multiplier(float(f32(hires_input_scale / f32(output_scale))))
    if out_e > 0:
        raise ValueError(f"output scale {output_scale:g} is too small for input scale {input_scale:g} "
                         "(TFLM needs input_scale / 128 / output_scale < 1)")
    rel_m, rel_e = quantize_multiplier(float(f32(hires_input_scale / reluish_scale)))
    return HardSwishParams(int(input_zero_point), int(output_zero_point), _downscale_to_int16(rel_m), rel_e,
                           _downscale_to_int16(out_m), out_e)


def _srdhm16(a: int, b: int) -> int:
    if a == b == -32768:
        return 32767
    ab = a * b
    v = ab + ((1 << 14) if ab >= 0 else 1 - (1 << 14))
    q = abs(v) >> 15
    return _i16(q if v >= 0 else -q)


def _sdhm16(a: int, b: int) -> int:
    """SaturatingDoublingHighMul: truncating toward zero instead of rounding."""
    if a == b == -32768:
        return 32767
    ab = a * b
    q = abs(ab) >> 15
    return _i16(q if ab >= 0 else -q)


def _sat_shl16(v: int, amount: int) -> int:
    return min(max(v * (1 << amount), -32768), 32767)


def _rdbpot16(x: int, exponent: int) -> int:
    """gemmlowp RoundingDivideByPOT instantiated for int16 (the mask is truncated to 16 bits)."""
    if not 0 <= exponent <= 31:
        raise ValueError(f"rounding shift {exponent} out of range")
    mask = _i16((1 << exponent) - 1)
    remainder = _i16(x & mask)
    threshold = _i16((mask >> 1) + (1 if x < 0 else 0))
    return _i16((x >> exponent) + (1 if remainder > threshold else 0))


def hard_swish_s8(x: int, p: HardSwishParams) -> int:
    input_value = _i16(x - p.input_zero_point)
    hires = _i16(input_value * (1 << 7))
    preshift_out_scale = _srdhm16(hires, p.output_multiplier)
    reluish = hires
    if p.reluish_exponent > 0:
        reluish = _sat_shl16(reluish, p.reluish_exponent - 1)
    reluish = _srdhm16(reluish, p.reluish_multiplier)
    if p.reluish_exponent > 0:
        reluish = _sat_shl16(reluish, 1)
    if p.reluish_exponent < 0:
        reluish = _rdbpot16(reluish, -p.reluish_exponent)
    reluish = _i16((reluish + (1 << 15)) >> 1)
    preshift_output = _sdhm16(reluish, preshift_out_scale)
    out = _rdbpot16(preshift_output, -p.output_exponent)
    out = _i16(out + p.output_zero_point)
    return min(max(out, -128), 127)


# ---- tables ---------------------------------------------------------------------------------------------------
def s8_table(fn) -> np.ndarray:
    """256-entry int8 table indexed by the input byte reinterpreted as uint8 (0..127, then -128..-1)."""
    return np.array([fn(int(np.int8(np.uint8(i)))) for i in range(256)], dtype=np.int8)


# ---- SOFTMAX (int8 in, int8 out) -----------------------------------------------------------------------------
SOFTMAX_SCALED_DIFF_INTEGER_BITS = 5
SOFTMAX_ACCUM_INTEGER_BITS = 12


@dataclass(frozen=True)
class SoftmaxParams:
    input_multiplier: int
    input_left_shift: int
    diff_min: int


def softmax_params(input_scale: float, beta: float) -> SoftmaxParams:
    """CalculateSoftmaxParams (PreprocessSoftmaxScaling + CalculateInputRadius), double-rounding build."""
    ib = SOFTMAX_SCALED_DIFF_INTEGER_BITS
    real = min(float(np.float32(beta)) * float(np.float32(input_scale)) * float(1 << (31 - ib)), (1 << 31) - 1.0)
    if not real > 1.0:
        raise ValueError(f"beta * input scale = {real / (1 << (31 - ib)):g} is below 2^-26 "
                         "(TFLM's QuantizeMultiplierGreaterThanOne check fails)")
    mult, shift = quantize_multiplier(real)
    diff_min = int(-1.0 * calculate_input_radius(ib, shift))
    return SoftmaxParams(mult, shift, diff_min)


def softmax_exp_table(p: SoftmaxParams) -> np.ndarray:
    """int32[256]: entry d is TFLM's Q0.31 exp for an input difference of -d (0 when -d < diff_min)."""
    tab = np.zeros(256, dtype=np.int32)
    for d in range(256):
        diff = -d
        if diff >= p.diff_min:
            rescaled = srdhm(_i32(diff * (1 << p.input_left_shift)), p.input_multiplier)
            tab[d] = exp_on_negative_values(rescaled, SOFTMAX_SCALED_DIFF_INTEGER_BITS)
    return tab


def _clz32(x: int) -> int:
    x &= 0xFFFFFFFF
    return 32 - x.bit_length()


def softmax_exp_sum(row, p: SoftmaxParams) -> int:
    """The row's sum of exps in Q12.19 (int32, wrapping). TFLM aborts on rows where it reaches 2^28."""
    row = [int(v) for v in row]
    tab = softmax_exp_table(p)
    m = max(row)
    acc = 0
    for v in row:
        acc = _i32(acc + rdbpot(int(tab[m - v]), SOFTMAX_ACCUM_INTEGER_BITS))
    return acc


def softmax_row(row, p: SoftmaxParams) -> np.ndarray:
    """TFLM's int8 softmax for one row (Python twin of the generated C, for tests)."""
    row = [int(v) for v in row]
    tab = softmax_exp_table(p)
    m = max(row)
    acc = softmax_exp_sum(row, p)
    hpo = _clz32(acc)
    num_bits_over_unit = SOFTMAX_ACCUM_INTEGER_BITS - hpo
    shifted_sum_minus_one = _i32(((acc & 0xFFFFFFFF) << hpo) - (1 << 31))
    scale = one_over_one_plus_x_for_x_in_0_1(shifted_sum_minus_one)
    exponent = min(num_bits_over_unit + 31 - 8, 31)
    out = []
    for v in row:
        if v - m >= p.diff_min:
            o = rdbpot(srdhm(scale, int(tab[m - v])), exponent) - 128
            out.append(min(max(o, -128), 127))
        else:
            out.append(-128)
    return np.array(out, dtype=np.int8)


def unary_s8_table(kind: str, input_scale: float, input_zero_point: int, output_scale: float,
                   output_zero_point: int) -> np.ndarray:
    """TFLM's int8 LOGISTIC / TANH / HARD_SWISH for all 256 inputs (see `s8_table` for the index order)."""
    if kind in ("LOGISTIC", "TANH"):
        p = sigmoid_params(input_scale, input_zero_point)
        f = logistic_s8 if kind == "LOGISTIC" else tanh_s8
        return s8_table(lambda x: f(x, p))
    if kind == "HARD_SWISH":
        hp = hard_swish_params(input_scale, input_zero_point, output_scale, output_zero_point)
        return s8_table(lambda x: hard_swish_s8(x, hp))
    raise ValueError(f"no int8 table for {kind}")


# ---- LOG_SOFTMAX (int8) ---------------------------------------------------------------------------------------
LOG_SOFTMAX_INPUT_INTEGER_BITS = 5  # the rescaled differences are Q5.26
LOG_SOFTMAX_ACCUM_INTEGER_BITS = 12  # the sum of exps is Q12.19
LOG_SOFTMAX_OUTPUT_INTEGER_BITS = 4  # the output (scale 16/256, zero point 127) is Q4 before the 8-bit cut

# gemmlowp's Q0.31 constants of log(x): log 2, 2^-1/4, 2^-1/2, 1/4, and the rational approximation's alpha_n,
# alpha_d, alpha_i, alpha_f (values fixed by TFLite's log_x_for_x_greater_than_or_equal_to_1)
_LOG_CONSTANTS = (1488522236, 1805811301, 1518500250, 536870912, 117049297, 127690142, 1057819769, 638450708)


@dataclass(frozen=True)
class LogSoftmaxParams:
    input_multiplier: int
    input_left_shift: int
    reverse_multiplier: int
    reverse_shift: int
    diff_min: int


def log_softmax_params(input_scale: float) -> LogSoftmaxParams:
    """TFLM log_softmax.cc Prepare: PreprocessLogSoftmaxScalingExp (beta 1, double-rounding build) and
    CalculateInputRadius."""
    ib = LOG_SOFTMAX_INPUT_INTEGER_BITS
    real = min(1.0 * float(np.float32(input_scale)) * float(1 << (31 - ib)), (1 << 31) - 1.0)
    if not real > 1.0:
        raise ValueError(f"input scale {input_scale:g} is below 2^-26 (TFLM's QuantizeMultiplierGreaterThanOne "
                         "check fails)")
    mult, shift = quantize_multiplier(real)
    rmult, rshift = quantize_multiplier(float(1 << (31 - shift)) / float(mult))
    return LogSoftmaxParams(mult, shift, rmult, rshift, -calculate_input_radius(ib, shift))


def log_softmax_tables(p: LogSoftmaxParams) -> tuple[np.ndarray, np.ndarray]:
    """(exp_q12, diff_q5), int32[256] each, indexed by d = max(row) - x: TFLM's Rescale<12>(exp) of the Q5.26
    difference (0 where the difference -d is below diff_min: TFLM leaves it out of the sum), and that Q5.26
    difference itself (0 where unused)."""
    exp_q12 = np.zeros(256, dtype=np.int32)
    diff_q5 = np.zeros(256, dtype=np.int32)
    for d in range(256):
        if -d >= p.diff_min:
            q5 = mbqm(-d, p.input_multiplier, p.input_left_shift)
            diff_q5[d] = q5
            exp_q12[d] = rdbpot(exp_on_negative_values(q5, LOG_SOFTMAX_INPUT_INTEGER_BITS),
                                LOG_SOFTMAX_ACCUM_INTEGER_BITS)
    return exp_q12, diff_q5


def _sat_add(a: int, b: int) -> int:
    return min(max(a + b, INT32_MIN), INT32_MAX)


def log_x_ge_1(x: int, input_bits: int, output_bits: int) -> int:
    """TFLite's log_x_for_x_greater_than_or_equal_to_1<output_bits>(Q(input_bits) x): Q(output_bits) log(x),
    accumulated with one more integer bit. Every gemmlowp product is srdhm, sums wrap, Rescale saturates."""
    log_2, sqrt_sqrt_half, sqrt_half, quarter, a_n, a_d, a_i, a_f = _LOG_CONSTANTS
    acc_bits = output_bits + 1
    shifted_quarter = sat_mul_pot(quarter, -acc_bits)
    ha = _clz32(x)
    r_a = sat_mul_pot(srdhm(sat_mul_pot(x, ha - 1), sqrt_half), 1)
    z_a_adj = _sat_add(sat_mul_pot(input_bits - ha, 31 - acc_bits), shifted_quarter)
    hb = _clz32(srdhm(x, sqrt_half)) - 1
    r_b = sat_mul_pot(x, hb)
    z_b_adj = _sat_add(sat_mul_pot(input_bits - hb, 31 - acc_bits), -shifted_quarter)
    r = min(r_a, r_b)
    z_adj = max(z_a_adj, z_b_adj)
    p = rounding_half_sum(r, sqrt_sqrt_half)
    q = _i32(r - sqrt_sqrt_half)
    q = _i32(q + q)
    sq = srdhm(q, q)
    num = _i32(srdhm(q, r) + srdhm(srdhm(q, sq), a_n))
    denom_minus_one = _i32(srdhm(p, _i32(_i32(a_i + q) + srdhm(a_d, sq))) + srdhm(a_f, q))
    recip = one_over_one_plus_x_for_x_in_0_1(denom_minus_one)
    total = _i32(srdhm(z_adj, log_2) + srdhm(sat_mul_pot(num, -acc_bits), recip))
    return sat_mul_pot(total, acc_bits - output_bits)


def log_softmax_row(row, p: LogSoftmaxParams) -> np.ndarray:
    """TFLM's int8 LOG_SOFTMAX of one row (Python twin of the generated C, for tests)."""
    row = [int(v) for v in row]
    exp_q12, diff_q5 = log_softmax_tables(p)
    m = max(row)
    total = 0
    for v in row:
        total = _i32(total + int(exp_q12[m - v]))
    log_sum = log_x_ge_1(total, LOG_SOFTMAX_ACCUM_INTEGER_BITS, LOG_SOFTMAX_INPUT_INTEGER_BITS)
    adjusted = max(p.diff_min - 1, mbqm(_i32(log_sum + INT32_MIN), p.reverse_multiplier, p.reverse_shift))
    shift = 31 - LOG_SOFTMAX_INPUT_INTEGER_BITS - LOG_SOFTMAX_OUTPUT_INTEGER_BITS
    out = []
    for v in row:
        if v - m > adjusted:
            o = rdbpot(_i32(int(diff_q5[m - v]) - log_sum), shift) + 127
            out.append(min(max(o, -128), 127))
        else:
            out.append(-128)
    return np.array(out, dtype=np.int8)
