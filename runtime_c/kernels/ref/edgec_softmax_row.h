/*
 * edgec_softmax_row.h - one row of the int8-input softmax (TFLite reference_ops::Softmax),
 * int8 or int16 output, shared by softmax_s8.c and the fused attention (attention_s8.c), so
 * both compute it identically.
 *
 * The exponentials are computed twice per element (once for the sum, once for the output)
 * so that no scratch memory is needed, as in TFLite. y may be x (in place): every element
 * is read before it is written.
 */
#ifndef EDGEC_SOFTMAX_ROW_H
#define EDGEC_SOFTMAX_ROW_H

#include "edgec_fixedpoint.h"
#include "edgec_kernels.h"

#include <stddef.h>

/* exp(beta * s_in * diff) in Q0.31 for diff = x - max(x) >= diff_min */
static inline int32_t edgec_softmax_exp(int32_t input_multiplier, int32_t input_left_shift,
                                        int32_t diff)
{
    /* MultiplyByQuantizedMultiplierGreaterThanOne: diff_min keeps the result in Q5.26 */
    const int32_t scaled_diff = edgec_srdhm(edgec_shl_wrap(diff, (int)input_left_shift),
                                            input_multiplier);
    return edgec_exp_on_negative_values_q5_26(scaled_diff);
}

/* 1 / sum_of_exps (Q12.19, > 0) as shifted_scale * 2^-exponent for an output of
 * `output_bits` bits: GetReciprocal(sum_of_exps, 12), and reference_ops::Softmax's
 * exponent = num_bits_over_unit + 31 - bits. */
static inline edgec_status edgec_softmax_reciprocal(int32_t sum_of_exps, int32_t output_bits,
                                                    int32_t *shifted_scale, int32_t *exponent)
{
    const int32_t headroom_plus_one = edgec_clz32((uint32_t)sum_of_exps);
    const int32_t num_bits_over_unit = 12 - headroom_plus_one;
    *shifted_scale = edgec_one_over_one_plus_x((int32_t)(
        ((uint32_t)sum_of_exps << headroom_plus_one) - ((uint32_t)1 << 31)));
    *exponent = num_bits_over_unit + 31 - output_bits;
    return (*exponent < 0 || *exponent > 31) ? EDGEC_ERR_ARG : EDGEC_OK;
}

/* The row's maximum and 1 / sum of exps as shifted_scale * 2^-exponent, for an output of
 * `output_bits` bits. */
static inline edgec_status edgec_softmax_row_scale(int32_t input_multiplier,
                                                   int32_t input_left_shift, int32_t diff_min,
                                                   const int8_t *x, int32_t n,
                                                   int32_t output_bits, int32_t *max_in_row,
                                                   int32_t *shifted_scale, int32_t *exponent)
{
    int32_t c, max_x = -128;
    int32_t sum_of_exps = 0; /* Q12.19: up to 4096 terms of at most 1.0 */

    for (c = 0; c < n; ++c) {
        max_x = edgec_max_i32(max_x, x[c]);
    }
    for (c = 0; c < n; ++c) {
        const int32_t diff = (int32_t)x[c] - max_x;
        if (diff >= diff_min) {
            /* Rescale Q0.31 -> Q12.19 */
            sum_of_exps += edgec_rdbpot(
                edgec_softmax_exp(input_multiplier, input_left_shift, diff), 12);
        }
    }

    *max_in_row = max_x;
    /* sum_of_exps >= exp(0) = 2^19 > 0 (the maximum always contributes) */
    return edgec_softmax_reciprocal(sum_of_exps, output_bits, shifted_scale, exponent);
}

/* One probability before its zero point: exp(diff) / sum in units of 2^-output_bits. */
static inline int32_t edgec_softmax_unsat(int32_t input_multiplier, int32_t input_left_shift,
                                          int32_t shifted_scale, int32_t exponent,
                                          int32_t diff)
{
    return edgec_rdbpot(
        edgec_srdhm(shifted_scale, edgec_softmax_exp(input_multiplier, input_left_shift, diff)),
        exponent);
}

/* Softmax of the n values of x into y8 (int8: scale 1/256, zero point -128) or y16
 * (int16: scale 1/65536, zero point -32768); exactly one of them is non-NULL. */
static inline edgec_status edgec_softmax_row_to(int32_t input_multiplier,
                                                int32_t input_left_shift, int32_t diff_min,
                                                const int8_t *x, int8_t *y8, int16_t *y16,
                                                int32_t n)
{
    const int32_t lo = y16 != NULL ? -32768 : -128, hi = y16 != NULL ? 32767 : 127;
    int32_t c, max_in_row, shifted_scale, exponent;
    const edgec_status st = edgec_softmax_row_scale(input_multiplier, input_left_shift,
                                                    diff_min, x, n, y16 != NULL ? 16 : 8,
                                                    &max_in_row, &shifted_scale, &exponent);
    if (st != EDGEC_OK) {
        return st;
    }
    for (c = 0; c < n; ++c) {
        const int32_t diff = (int32_t)x[c] - max_in_row;
        int32_t y = lo;
        if (diff >= diff_min) {
            y = edgec_min_i32(edgec_max_i32(edgec_softmax_unsat(input_multiplier,
                                                                input_left_shift,
                                                                shifted_scale, exponent, diff)
                                                + lo, lo), hi);
        }
        if (y16 != NULL) {
            y16[c] = (int16_t)y;
        } else {
            y8[c] = (int8_t)y;
        }
    }
    return EDGEC_OK;
}

/* int8 probabilities; y may be x (in place). */
static inline edgec_status edgec_softmax_row(int32_t input_multiplier, int32_t input_left_shift,
                                             int32_t diff_min, const int8_t *x, int8_t *y,
                                             int32_t n)
{
    return edgec_softmax_row_to(input_multiplier, input_left_shift, diff_min, x, y, NULL, n);
}

/* int16 probabilities (TFLite's Softmax<int8_t, int16_t>), for attention that int8 cannot
 * resolve (1/256 is coarser than a uniform weight over more than 256 keys). y must not
 * overlap x. */
static inline edgec_status edgec_softmax_row_s16(int32_t input_multiplier,
                                                 int32_t input_left_shift, int32_t diff_min,
                                                 const int8_t *x, int16_t *y, int32_t n)
{
    return edgec_softmax_row_to(input_multiplier, input_left_shift, diff_min, x, NULL, y, n);
}

#endif /* EDGEC_SOFTMAX_ROW_H */
