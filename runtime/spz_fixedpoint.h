/* spz_fixedpoint.h: gemmlowp-style Q-format helpers for generated kernels (SOFTMAX's reciprocal).
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

/* x * 2^exponent, saturating to the int32 range, exponent in [1, 30]. */
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

#endif /* SPZ_FIXEDPOINT_H_ */
