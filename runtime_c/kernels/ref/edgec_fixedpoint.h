/*
 * edgec_fixedpoint.h - the fixed-point primitives of TFLite's integer kernels, in C99.
 *
 * Same arithmetic as gemmlowp's fixedpoint.h (scalar int32 paths) and TFLite's
 * MultiplyByQuantizedMultiplier in kernels/internal/common.cc with
 * TFLITE_SINGLE_ROUNDING off (the default): a rounding doubling high multiply followed
 * by a rounding right shift ("double rounding").
 *
 * Implementation assumptions (true for GCC, Clang and Arm Compiler on every target we
 * support): signed right shift is arithmetic, and converting an out-of-range uint32_t to
 * int32_t wraps modulo 2^32. Left shifts that could overflow are done on uint32_t, which
 * reproduces the wrap-around TFLite's int32 code has in practice, without undefined
 * behaviour.
 */
#ifndef EDGEC_FIXEDPOINT_H
#define EDGEC_FIXEDPOINT_H

#include <stdint.h>

#if ((-1) >> 1) != -1
#error "edgec kernels need an arithmetic right shift of negative integers"
#endif

#define EDGEC_INT32_MIN ((int32_t)(-2147483647 - 1))
#define EDGEC_INT32_MAX ((int32_t)2147483647)

static inline int32_t edgec_min_i32(int32_t a, int32_t b) { return a < b ? a : b; }
static inline int32_t edgec_max_i32(int32_t a, int32_t b) { return a > b ? a : b; }

/** a + b with int32 wrap-around (the output offset after a saturated MBQM). */
static inline int32_t edgec_add_wrap(int32_t a, int32_t b)
{
    return (int32_t)((uint32_t)a + (uint32_t)b);
}

/** x * 2^n with int32 wrap-around, n in [0, 31]. */
static inline int32_t edgec_shl_wrap(int32_t x, int n)
{
    return (int32_t)((uint32_t)x << n);
}

/**
 * gemmlowp SaturatingRoundingDoublingHighMul (ARM VQRDMULH): round(a * b / 2^31), ties
 * away from zero, saturating the single overflow case INT32_MIN * INT32_MIN.
 */
static inline int32_t edgec_srdhm(int32_t a, int32_t b)
{
    int64_t ab;
    int64_t v;
    if (a == b && a == EDGEC_INT32_MIN) {
        return EDGEC_INT32_MAX;
    }
    ab = (int64_t)a * (int64_t)b;
    v = ab + (ab >= 0 ? (int64_t)(1 << 30) : (int64_t)(1 - (1 << 30)));
    /* division by 2^31 truncating toward zero, without a division instruction */
    if (v < 0) {
        v += ((int64_t)1 << 31) - 1;
    }
    return (int32_t)(v >> 31);
}

/** gemmlowp RoundingDivideByPOT: x / 2^exponent rounded half away from zero, exponent in [0, 31]. */
static inline int32_t edgec_rdbpot(int32_t x, int exponent)
{
    const int32_t mask = (int32_t)(((int64_t)1 << exponent) - 1);
    const int32_t remainder = x & mask;
    const int32_t threshold = (mask >> 1) + (x < 0 ? 1 : 0);
    return (x >> exponent) + (remainder > threshold ? 1 : 0);
}

/**
 * TFLite MultiplyByQuantizedMultiplier(int32 x, int32 multiplier, int shift): x times
 * multiplier * 2^(shift - 31), double rounding. shift in [-31, 30].
 */
static inline int32_t edgec_mbqm(int32_t x, int32_t multiplier, int32_t shift)
{
    const int left_shift = shift > 0 ? (int)shift : 0;
    const int right_shift = shift > 0 ? 0 : (int)-shift;
    return edgec_rdbpot(edgec_srdhm(edgec_shl_wrap(x, left_shift), multiplier), right_shift);
}

/**
 * x * multiplier * 2^(shift - 31) rounded ONCE, half away from zero, from the exact 64-bit
 * product: what LiteRT's int8 FULLY_CONNECTED computes (it rounds the real-valued rescale
 * acc * s_in * s_w / s_out with round()). shift in [-31, 30]; |x * multiplier| < 2^62.
 */
static inline int32_t edgec_mul_round_away(int32_t x, int32_t multiplier, int32_t shift)
{
    const int total_shift = 31 - (int)shift;
    const int64_t half = (int64_t)1 << (total_shift - 1);
    const int64_t product = (int64_t)x * (int64_t)multiplier;
    return (int32_t)(product >= 0 ? (product + half) >> total_shift
                                  : -((-product + half) >> total_shift));
}

/** gemmlowp SaturatingRoundingMultiplyByPOT with a positive exponent (saturating x * 2^e). */
static inline int32_t edgec_sat_shl(int32_t x, int exponent)
{
    const int32_t threshold = (int32_t)(((int64_t)1 << (31 - exponent)) - 1);
    if (x > threshold) {
        return EDGEC_INT32_MAX;
    }
    if (x < -threshold) {
        return EDGEC_INT32_MIN;
    }
    return edgec_shl_wrap(x, exponent);
}

/** Count leading zeros of a uint32 (32 for 0). */
static inline int edgec_clz32(uint32_t x)
{
#if defined(__GNUC__)
    return x ? __builtin_clz(x) : 32;
#else
    int n = 0;
    if (x == 0u) {
        return 32;
    }
    while ((x & 0x80000000u) == 0u) {
        x <<= 1;
        ++n;
    }
    return n;
#endif
}

/** gemmlowp exp_on_interval_between_negative_one_quarter_and_0_excl: Q0.31 -> Q0.31. */
static inline int32_t edgec_exp_on_interval_m025_0(int32_t a)
{
    const int32_t constant_term = 1895147668;     /* exp(-1/8) in Q0.31 */
    const int32_t constant_1_over_3 = 715827883;  /* 1/3 in Q0.31 */
    /* Taylor expansion around -1/8: x = a + 1/8 */
    const int32_t x = a + (1 << 28);
    const int32_t x2 = edgec_srdhm(x, x);
    const int32_t x3 = edgec_srdhm(x2, x);
    const int32_t x4 = edgec_srdhm(x2, x2);
    const int32_t x4_over_4 = edgec_rdbpot(x4, 2);
    const int32_t poly =
        edgec_rdbpot(edgec_srdhm(x4_over_4 + x3, constant_1_over_3) + x2, 1);
    return constant_term + edgec_srdhm(constant_term, x + poly);
}

/**
 * gemmlowp exp_on_negative_values for a Q5.26 input a <= 0 (the softmax format):
 * returns exp(a) in Q0.31. exp of the fractional part modulo 1/4 is a polynomial, the
 * integer quarters are applied by a barrel of constant multipliers exp(-2^k).
 */
static inline int32_t edgec_exp_on_negative_values_q5_26(int32_t a)
{
    enum { kIntegerBits = 5, kFractionalBits = 26 };
    const int32_t one_quarter = (int32_t)1 << (kFractionalBits - 2);
    const int32_t mask = one_quarter - 1;
    const int32_t a_mod_quarter_minus_one_quarter = (a & mask) - one_quarter;
    int32_t result = edgec_exp_on_interval_m025_0(
        edgec_sat_shl(a_mod_quarter_minus_one_quarter, kIntegerBits));
    const int32_t remainder = a_mod_quarter_minus_one_quarter - a;

    if (remainder & ((int32_t)1 << (kFractionalBits - 2))) { result = edgec_srdhm(result, 1672461947); }
    if (remainder & ((int32_t)1 << (kFractionalBits - 1))) { result = edgec_srdhm(result, 1302514674); }
    if (remainder & ((int32_t)1 << (kFractionalBits + 0))) { result = edgec_srdhm(result, 790015084); }
    if (remainder & ((int32_t)1 << (kFractionalBits + 1))) { result = edgec_srdhm(result, 290630308); }
    if (remainder & ((int32_t)1 << (kFractionalBits + 2))) { result = edgec_srdhm(result, 39332535); }
    if (remainder & ((int32_t)1 << (kFractionalBits + 3))) { result = edgec_srdhm(result, 720401); }
    if (remainder & ((int32_t)1 << (kFractionalBits + 4))) { result = edgec_srdhm(result, 242); }
    /* kIntegerBits == 5: gemmlowp's clamp below -32 does not apply. */
    return a == 0 ? EDGEC_INT32_MAX : result;
}

/** gemmlowp one_over_one_plus_x_for_x_in_0_1: 1 / (1 + a), a in [0, 1), Q0.31 in and out. */
static inline int32_t edgec_one_over_one_plus_x(int32_t a)
{
    const int32_t constant_48_over_17 = 1515870810;      /* Q2.29 */
    const int32_t constant_neg_32_over_17 = -1010580540; /* Q2.29 */
    const int32_t one_q2_29 = (int32_t)1 << 29;
    /* RoundingHalfSum(a, 1.0): (a + INT32_MAX + 1) / 2, a >= 0 */
    const int64_t sum = (int64_t)a + EDGEC_INT32_MAX;
    const int32_t half_denominator = (int32_t)((sum + (sum >= 0 ? 1 : -1)) / 2);
    int32_t x = constant_48_over_17 + edgec_srdhm(half_denominator, constant_neg_32_over_17);
    int i;
    for (i = 0; i < 3; ++i) {
        const int32_t half_denominator_times_x = edgec_srdhm(half_denominator, x);
        const int32_t one_minus_half_denominator_times_x = one_q2_29 - half_denominator_times_x;
        x = x + edgec_sat_shl(edgec_srdhm(x, one_minus_half_denominator_times_x), 2);
    }
    return edgec_sat_shl(x, 1);
}

#endif /* EDGEC_FIXEDPOINT_H */
