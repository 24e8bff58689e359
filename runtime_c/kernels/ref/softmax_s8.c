/*
 * softmax_s8.c - int8 softmax over the last axis (reference kernel).
 *
 * Bit-exact with TFLite reference_ops::Softmax<int8_t, int8_t>
 * (tensorflow/lite/kernels/internal/reference/softmax.h), which is what TFLite's SOFTMAX
 * runs for int8 with the reference kernel type: gemmlowp fixed point, no lookup table
 * (the LUT path is only the optimized kernel's). Parameters are prepared as SoftmaxPrepare
 * does for kReference: PreprocessSoftmaxScaling(beta, s_in, 5) and
 * diff_min = -CalculateInputRadius(5, input_left_shift).
 *
 * The exponentials are computed twice per element (once for the sum, once for the
 * output) so that no scratch memory is needed, as in TFLite.
 */
#include "edgec_kernels.h"
#include "edgec_fixedpoint.h"

#include <stddef.h>

/* exp(beta * s_in * diff) in Q0.31 for diff = x - max(x) >= diff_min */
static int32_t softmax_exp(const edgec_softmax_params *p, int32_t diff)
{
    /* MultiplyByQuantizedMultiplierGreaterThanOne: diff_min keeps the result in Q5.26 */
    const int32_t scaled_diff = edgec_srdhm(edgec_shl_wrap(diff, (int)p->input_left_shift),
                                            p->input_multiplier);
    return edgec_exp_on_negative_values_q5_26(scaled_diff);
}

edgec_status edgec_softmax_s8(const edgec_softmax_params *p, const int8_t *in, int8_t *out)
{
    int32_t row, c;

    if (p == NULL || in == NULL || out == NULL || p->rows < 0 || p->depth < 1 ||
        p->input_left_shift < 0 || p->input_left_shift > 31 || p->diff_min > 0) {
        return EDGEC_ERR_ARG;
    }

    for (row = 0; row < p->rows; ++row) {
        const int8_t *x = in + row * p->depth;
        int8_t *y = out + row * p->depth;
        int32_t max_in_row = -128;
        int32_t sum_of_exps = 0; /* Q12.19: up to 4096 terms of at most 1.0 */
        int32_t headroom_plus_one, num_bits_over_unit, shifted_scale, exponent;

        for (c = 0; c < p->depth; ++c) {
            max_in_row = edgec_max_i32(max_in_row, x[c]);
        }
        for (c = 0; c < p->depth; ++c) {
            const int32_t diff = (int32_t)x[c] - max_in_row;
            if (diff >= p->diff_min) {
                /* Rescale Q0.31 -> Q12.19 */
                sum_of_exps += edgec_rdbpot(softmax_exp(p, diff), 12);
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

        for (c = 0; c < p->depth; ++c) {
            const int32_t diff = (int32_t)x[c] - max_in_row;
            if (diff >= p->diff_min) {
                const int32_t unsat =
                    edgec_rdbpot(edgec_srdhm(shifted_scale, softmax_exp(p, diff)), exponent);
                /* output zero point -128, scale 1/256 */
                y[c] = (int8_t)edgec_min_i32(edgec_max_i32(unsat - 128, -128), 127);
            } else {
                y[c] = -128;
            }
        }
    }
    return EDGEC_OK;
}
