/*
 * softmax_s16.c - int16 -> int16 softmax over the last axis (reference kernel).
 *
 * TFLite's reference_ops::SoftmaxInt16: each difference to the row maximum is rescaled
 * (MultiplyByQuantizedMultiplier) so that [-65535, 0] spans [-10, 0], recentred to int16 and
 * exponentiated from a 513-entry table with linear interpolation (Q0.15); the sum's
 * reciprocal comes from a 1/(1 + x) table after normalising the sum to [1, 2); each exp
 * times the reciprocal, rounded, is the Q0.15 output. The exps are cached in the output
 * row, as TFLite does: no scratch, and in-place use is not allowed.
 */
#include "edgec_kernels.h"
#include "edgec_fixedpoint.h"

#include <stddef.h>

/* lut_lookup_with_interpolation: 512 intervals of 128 input steps, linear in between. */
static int16_t lut_lookup(int16_t value, const int16_t *lut)
{
    const int32_t index = 256 + (value >> 7);
    const int32_t offset = value & 0x7F;
    const int32_t base = lut[index];
    const int32_t slope = (int32_t)(int16_t)(lut[index + 1] - lut[index]);
    return (int16_t)(base + ((slope * offset + 64) >> 7));
}

static int16_t saturate_i16(int32_t v)
{
    return (int16_t)edgec_min_i32(edgec_max_i32(v, -32768), 32767);
}

edgec_status edgec_softmax_s16(const edgec_softmax_s16_params *p, const int16_t *in,
                               int16_t *out)
{
    int32_t row, c;

    if (p == NULL || in == NULL || out == NULL || p->exp_lut == NULL ||
        p->one_over_one_plus_x_lut == NULL || p->rows < 0 || p->depth < 1 ||
        p->depth > 65536 || p->input_left_shift > 14) {
        return EDGEC_ERR_ARG;
    }
    for (row = 0; row < p->rows; ++row) {
        const int16_t *x = in + row * p->depth;
        int16_t *y = out + row * p->depth;
        int32_t max_in_row = -32768;
        int32_t sum_of_exps = 0; /* Q16.15: depth <= 2^16 values <= 32767 */
        int32_t headroom_plus_one, shifted_sum, reciprocal, right_shift;
        int64_t round;
        for (c = 0; c < p->depth; ++c) {
            max_in_row = edgec_max_i32(max_in_row, x[c]);
        }
        for (c = 0; c < p->depth; ++c) {
            const int32_t scaled = edgec_mbqm((int32_t)x[c] - max_in_row, p->input_multiplier,
                                              p->input_left_shift);
            y[c] = lut_lookup(saturate_i16(scaled + 32767), p->exp_lut);
            sum_of_exps += y[c];
        }
        if (sum_of_exps <= 0) { /* exp(0) of the maximum is in every row */
            return EDGEC_ERR_ARG;
        }
        headroom_plus_one = edgec_clz32((uint32_t)sum_of_exps);
        shifted_sum = (int32_t)((((int64_t)sum_of_exps << (headroom_plus_one - 1)) +
                                 (1 << 13)) >> 14);
        reciprocal = lut_lookup(saturate_i16(shifted_sum - ((1 << 15) + (1 << 16))),
                                p->one_over_one_plus_x_lut);
        right_shift = 31 - headroom_plus_one;
        round = (int64_t)1 << (right_shift - 1);
        for (c = 0; c < p->depth; ++c) {
            const int64_t result = ((int64_t)y[c] * reciprocal + round) >> right_shift;
            y[c] = (int16_t)(result < 0 ? 0 : (result > 32767 ? 32767 : result));
        }
    }
    return EDGEC_OK;
}
