/* spz_fixedpoint.h: gemmlowp-style Q-format helpers for generated kernels (SOFTMAX's reciprocal, LOG_SOFTMAX's
 * log, the integer LSTM's sigmoid and tanh).
 *
 * How it works
 * 1. Values are int32 fixed point: Qm.(31-m) stores x * 2^(31-m). A product of Qa and Qb values through
 *    spz_srdhm (SaturatingRoundingDoublingHighMul) is a Q(a+b) value.
 * 2. The functions reproduce TFLite Micro's gemmlowp arithmetic bit for bit, including the places where C++
 *    relies on int32 wrap-around: those are written with uint32_t arithmetic so UBSan stays quiet.
 * 3. Their Python twins live in specializer/fixedpoint.py (checked against the TFLM oracle by the tests).
 * Everything is `static inline`; requires spz_runtime.h.
 */
#ifndef SPZ_FIXEDPOINT_H_
#define SPZ_FIXEDPOINT_H_

#include <stdint.h>

#include "spz_runtime.h"

/* a + b with int32 wrap-around (gemmlowp's plain Add on raw values). */
SPZ_INLINE int32_t spz_fp_add(int32_t a, int32_t b) {
    return (int32_t)((uint32_t)a + (uint32_t)b);
}

/* a - b with int32 wrap-around. */
SPZ_INLINE int32_t spz_fp_sub(int32_t a, int32_t b) {
    return (int32_t)((uint32_t)a - (uint32_t)b);
}

/* x * 2^exponent, saturating to the int32 range, exponent in [0, 31]. */
SPZ_INLINE int32_t spz_fp_sat_shl(int32_t x, int exponent) {
    const int32_t threshold = (int32_t)(((uint32_t)1 << (31 - exponent)) - 1u);
    if (x > threshold) {
        return INT32_MAX;
    }
    if (x < -threshold) {
        return INT32_MIN;
    }
    return spz_shl(x, exponent);
}

/* (a + b) / 2 rounded half away from zero. */
SPZ_INLINE int32_t spz_fp_rounding_half_sum(int32_t a, int32_t b) {
    const int64_t sum = (int64_t)a + (int64_t)b;
    return (int32_t)((sum + (sum >= 0 ? 1 : -1)) / 2);
}

/* Number of leading zero bits of x (32 for 0). */
SPZ_INLINE int spz_clz32(uint32_t x) {
#if defined(__GNUC__) || defined(__clang__)
    return x ? __builtin_clz(x) : 32;
#else
    int n = 0;
    if (x == 0u) {
        return 32;
    }
    while (!(x & 0x80000000u)) {
        x <<= 1;
        ++n;
    }
    return n;
#endif
}

/* 1 / (1 + a) for a in [0, 1), Q0.31 in and out: three Newton-Raphson steps on the half denominator (Q2.29). */
SPZ_INLINE int32_t spz_fp_one_over_one_plus_x(int32_t a) {
    const int32_t half_denominator = spz_fp_rounding_half_sum(a, INT32_MAX);
    const int32_t c_48_over_17 = 1515870810;      /* 48/17 in Q2.29 */
    const int32_t c_neg_32_over_17 = -1010580540; /* -32/17 in Q2.29 */
    const int32_t one_q2 = (int32_t)1 << 29;
    int32_t x = spz_fp_add(c_48_over_17, spz_srdhm(half_denominator, c_neg_32_over_17));
    int i;
    for (i = 0; i < 3; ++i) {
        const int32_t half_denominator_times_x = spz_srdhm(half_denominator, x);
        const int32_t one_minus = spz_fp_sub(one_q2, half_denominator_times_x);
        x = spz_fp_add(x, spz_fp_sat_shl(spz_srdhm(x, one_minus), 2));
    }
    return spz_fp_sat_shl(x, 1);
}

/* a + b saturated to the int32 range. */
SPZ_INLINE int32_t spz_fp_sat_add(int32_t a, int32_t b) {
    const int64_t s = (int64_t)a + (int64_t)b;
    return (int32_t)(s > INT32_MAX ? INT32_MAX : (s < INT32_MIN ? INT32_MIN : s));
}

/* log(x) for x >= 1 (TFLite's log_x_for_x_greater_than_or_equal_to_1): x in Q(in_bits), result in Q(out_bits).
 * x is split as 2^k * r with r near 2^-1/4 (whichever of the two normalisations, plain or premultiplied by 2^-1/2,
 * is closer), log r comes from a rational approximation in q = 2 (r - 2^-1/4), and k log 2 is added in
 * Q(out_bits + 1). Products are spz_srdhm (Q0.31 constants), sums wrap like gemmlowp's, and x must be positive
 * with at least 2 bits of headroom (clz(x) >= 2). */
SPZ_INLINE int32_t spz_fp_log_x_ge_1(int32_t x, int in_bits, int out_bits) {
    const int32_t log_2 = 1488522236;          /* log 2 */
    const int32_t sqrt_sqrt_half = 1805811301; /* 2^-1/4 */
    const int32_t sqrt_half = 1518500250;      /* 2^-1/2 */
    const int32_t alpha_n = 117049297;         /* the approximation's coefficients, Q0.31 */
    const int32_t alpha_d = 127690142;
    const int32_t alpha_i = 1057819769;
    const int32_t alpha_f = 638450708;
    const int acc_bits = out_bits + 1;
    const int32_t quarter = spz_rdbpot((int32_t)1 << 29, acc_bits); /* 1/4 in Q(acc_bits) */
    const int ha = spz_clz32((uint32_t)x);
    const int hb = spz_clz32((uint32_t)spz_srdhm(x, sqrt_half)) - 1;
    const int32_t r_a = spz_fp_sat_shl(spz_srdhm(spz_fp_sat_shl(x, ha - 1), sqrt_half), 1);
    const int32_t r_b = spz_fp_sat_shl(x, hb);
    const int32_t k_a = spz_fp_sat_add(spz_fp_sat_shl(in_bits - ha, 31 - acc_bits), quarter);
    const int32_t k_b = spz_fp_sat_add(spz_fp_sat_shl(in_bits - hb, 31 - acc_bits), -quarter);
    const int32_t r = r_a < r_b ? r_a : r_b;
    const int32_t k = k_a > k_b ? k_a : k_b;
    const int32_t p = spz_fp_rounding_half_sum(r, sqrt_sqrt_half);
    const int32_t q0 = spz_fp_sub(r, sqrt_sqrt_half);
    const int32_t q = spz_fp_add(q0, q0);
    const int32_t sq = spz_srdhm(q, q);
    const int32_t num = spz_fp_add(spz_srdhm(q, r), spz_srdhm(spz_srdhm(q, sq), alpha_n));
    const int32_t den = spz_fp_add(spz_srdhm(p, spz_fp_add(spz_fp_add(alpha_i, q), spz_srdhm(alpha_d, sq))),
                                   spz_srdhm(alpha_f, q));
    const int32_t recip = spz_fp_one_over_one_plus_x(den);
    const int32_t total = spz_fp_add(spz_srdhm(k, log_2), spz_srdhm(spz_rdbpot(num, acc_bits), recip));
    return spz_fp_sat_shl(total, acc_bits - out_bits);
}

/* floor(x / 2^s) for any sign, without relying on implementation-defined right shifts of negative values. */
SPZ_INLINE int32_t spz_asr_floor(int32_t x, int s) {
    return x >= 0 ? (x >> s) : (int32_t)~(~x >> s);
}

/* TFLite's int16 sigmoid of the integer LSTM: Q3.12 in (as x * 3 at scale 2^-12 / 3), Q0.15 out, by
 * interpolating the 256-entry table `lut` (about sigmoid(i / 24) in unsigned Q0.16). */
SPZ_INLINE int16_t spz_lstm_sigmoid(int32_t x, const uint16_t *lut) {
    const int32_t v = x * 3;
    const uint32_t a = (uint32_t)(v < 0 ? -v : v);
    const uint32_t idx = a >> 9;
    uint32_t r;
    if (idx >= 255u) {
        r = 0x7FFFu << 10;
    } else {
        const uint32_t lo = lut[idx];
        const uint32_t hi = lut[idx + 1u];
        r = (lo << 9) + (a & 0x1FFu) * (hi - lo);
    }
    r = v >= 0 ? r + (1u << 9) : (1u << 25) - r + (1u << 9) - 1u;
    return (int16_t)(int32_t)(r >> 10);
}

/* tanh(x) = 2 sigmoid(2x) - 1 on the same table; `v` is already scaled so that 2^8 steps are one entry. */
SPZ_INLINE int16_t spz_lstm_tanh(int32_t v, const uint16_t *lut) {
    const uint32_t a = (uint32_t)(v < 0 ? -v : v);
    const uint32_t idx = a >> 8;
    int32_t r;
    if (idx >= 255u) {
        r = (int32_t)(0xFFFFu << 8);
    } else {
        const uint32_t lo = lut[idx];
        const uint32_t hi = lut[idx + 1u];
        r = (int32_t)((lo << 8) + (a & 0xFFu) * (hi - lo));
    }
    r = v >= 0 ? r - (1 << 23) + (1 << 7) : -r + (1 << 23) + (1 << 7) - 1;
    return (int16_t)spz_asr_floor(r, 8);
}

#endif /* SPZ_FIXEDPOINT_H_ */
