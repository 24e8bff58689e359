/*
 * edgec_softmax_row.h - one row of the int8 softmax (TFLite reference_ops::Softmax), shared
 * by softmax_s8.c and the fused attention (attention_s8.c), so both compute it identically.
 *
 * The exponentials are computed twice per element (once for the sum, once for the output)
 * so that no scratch memory is needed, as in TFLite. y may be x (in place): every element
 * is read before it is written.
 */
#ifndef EDGEC_SOFTMAX_ROW_H
#define EDGEC_SOFTMAX_ROW_H

#include "edgec_fixedpoint.h"
#include "edgec_kernels.h"

/* exp(beta * s_in * diff) in Q0.31 for diff = x - max(x) >= diff_min */
static inline int32_t edgec_softmax_exp(int32_t input_multiplier, int32_t input_left_shift,
                                        int32_t diff)
{
    /* MultiplyByQuantizedMultiplierGreaterThanOne: diff_min keeps the result in Q5.26 */
    const int32_t scaled_diff = edgec_srdhm(edgec_shl_wrap(diff, (int)input_left_shift),
                                            input_multiplier);
    return edgec_exp_on_negative_values_q5_26(scaled_diff);
}

/* Softmax of the n values of x into y (scale 1/256, zero point -128). */
static inline edgec_status edgec_softmax_row(int32_t input_multiplier, int32_t input_left_shift,
                                             int32_t diff_min, const int8_t *x, int8_t *y,
                                             int32_t n)
{
    int32_t c, max_in_row = -128;
    int32_t sum_of_exps = 0; /* Q12.19: up to 4096 terms of at most 1.0 */
    int32_t headroom_plus_one, num_bits_over_unit, shifted_scale, exponent;

    for (c = 0; c < n; ++c) {
        max_in_row = edgec_max_i32(max_in_row, x[c]);
    }
    for (c = 0; c < n; ++c) {
        const int32_t diff = (int32_t)x[c] - max_in_row;
        if (diff >= diff_min) {
            /* Rescale Q0.31 -> Q12.19 */
            sum_of_exps += edgec_rdbpot(
                edgec_softmax_exp(input_multiplier, input_left_shift, diff), 12);
        }
    }

    /* GetReciprocal(sum_of_exps, 12): 1 / sum = shifted_scale * 2^-num_bits_over_unit.
     * sum_of_exps >= exp(0) = 2^19 > 0 (the maximum always contributes). */
    headroom_plus_one = edgec_clz32((uint32_t)sum_of_exps);
    num_bits_over_unit = 12 - headroom_plus_one;
    shifted_scale = edgec_one_over_one_plus_x((int32_t)(
        ((uint32_t)sum_of_exps << headroom_plus_one) - ((uint32_t)1 << 31)));
    exponent = num_bits_over_unit + 31 - 8;
    if (exponent < 0 || exponent > 31) {
        return EDGEC_ERR_ARG;
    }

    for (c = 0; c < n; ++c) {
        const int32_t diff = (int32_t)x[c] - max_in_row;
        if (diff >= diff_min) {
            const int32_t unsat = edgec_rdbpot(
                edgec_srdhm(shifted_scale,
                            edgec_softmax_exp(input_multiplier, input_left_shift, diff)),
                exponent);
            /* output zero point -128, scale 1/256 */
            y[c] = (int8_t)edgec_min_i32(edgec_max_i32(unsat - 128, -128), 127);
        } else {
            y[c] = -128;
        }
    }
    return EDGEC_OK;
}

#endif /* EDGEC_SOFTMAX_ROW_H */
