/*
 * edgec_layer_norm.h - the per-row part of edgec's int8 layer normalization (steps 2-4 of
 * layer_norm_s8.c: variance, epsilon, TFLite's inverse square root), shared by the
 * reference kernel and the optimized one (runtime_c/kernels/opt/layer_norm_opt_s8.c).
 */
#ifndef EDGEC_LAYER_NORM_H
#define EDGEC_LAYER_NORM_H

#include "edgec_kernels.h"
#include "edgec_fixedpoint.h"

#define LAYER_NORM_FRAC_BITS 16 /* F: fractional bits of the normalized value z */
#define LAYER_NORM_MAX_DEPTH 8192

/* x / 2^n rounded half away from zero, n in [1, 62]. */
static inline int64_t rshift_round_s64(int64_t x, int n)
{
    const int64_t half = (int64_t)1 << (n - 1);
    return x >= 0 ? (x + half) >> n : -((-x + half) >> n);
}

/*
 * GetInvSqrtQuantizedMultiplierExp(input, reverse_shift = -1) for an int64 input:
 * 1 / sqrt(input) ~= *multiplier * 2^(*shift - 31). Inputs <= 1 give (INT32_MAX, 0), as in
 * TFLite.
 */
static inline void inv_sqrt_s64(int64_t input, int32_t *multiplier, int32_t *shift)
{
    int32_t out_shift = 11;
    int32_t in32, half_input, x;
    int left_shift_bit_pairs, i;
    const int32_t half_three = ((int32_t)1 << 28) + ((int32_t)1 << 27); /* 1.5 in Q3.28 */

    if (input <= 1) {
        *multiplier = EDGEC_INT32_MAX;
        *shift = 0;
        return;
    }
    while (input >= ((int64_t)1 << 29)) {
        input /= 4;
        ++out_shift;
    }
    in32 = (int32_t)input;
    left_shift_bit_pairs = (edgec_clz32((uint32_t)in32) - 1) / 2 - 1;
    out_shift -= left_shift_bit_pairs;
    in32 <<= 2 * left_shift_bit_pairs; /* now in [2^27, 2^29) */

    /* Newton-Raphson for 1 / sqrt(a), a = in32 / 2^29 in [1/4, 1), in Q3.28 from x = 1 */
    half_input = edgec_rdbpot(in32 >> 1, 1);
    x = (int32_t)1 << 28;
    for (i = 0; i < 5; ++i) {
        const int32_t x3 = edgec_sat_shl(edgec_srdhm(edgec_srdhm(x, x), x), 6);
        x = edgec_sat_shl(edgec_srdhm(half_three, x) - edgec_srdhm(half_input, x3), 3);
    }
    x = edgec_srdhm(x, 1518500250); /* times sqrt(2) / 2 in Q0.31 */
    if (out_shift < 0) {
        x = edgec_shl_wrap(x, (int)-out_shift);
        out_shift = 0;
    }
    *multiplier = x;
    *shift = -out_shift;
}

/* The parameters the kernels rely on (the bounds of layer_norm_s8.c). */
static inline int edgec_layer_norm_params_ok(const edgec_layer_norm_params *p)
{
    return p->rows >= 0 && p->depth >= 1 && p->depth <= LAYER_NORM_MAX_DEPTH &&
           p->variance_shift >= -15 && p->variance_shift <= 8 && p->epsilon >= 0 &&
           p->output_shift >= 0 && p->output_shift <= 30;
}

/*
 * Steps 2-4 for a row with sum(x) = sum and sum(x^2) = sumsq: the multiplier m and the
 * right shift of step 5, z = round(r * m / 2^norm_shift); EDGEC_ERR_ARG if that shift is
 * outside [1, 62].
 */
static inline edgec_status edgec_layer_norm_row(const edgec_layer_norm_params *p, int32_t sum,
                                                int32_t sumsq, int32_t *multiplier,
                                                int32_t *norm_shift)
{
    int32_t shift;
    int64_t variance = (int64_t)p->depth * sumsq - (int64_t)sum * sum;
    if (p->variance_shift >= 0) {
        variance = variance * ((int64_t)1 << (2 * p->variance_shift));
    } else {
        variance = rshift_round_s64(variance, -2 * p->variance_shift);
    }
    inv_sqrt_s64(variance + p->epsilon, multiplier, &shift);
    /* z = r * m * 2^(shift + p + F - 31): a right shift by norm_shift in [7, 58] */
    *norm_shift = 31 - shift - p->variance_shift - LAYER_NORM_FRAC_BITS;
    return *norm_shift < 1 || *norm_shift > 62 ? EDGEC_ERR_ARG : EDGEC_OK;
}

#endif /* EDGEC_LAYER_NORM_H */
