/*
 * add_s8.c - int8 element-wise addition with rescaling (reference kernel).
 *
 * Bit-exact with TFLite reference_integer_ops::Add / AddFunc
 * (tensorflow/lite/kernels/internal/reference/integer_ops/add.h), parameters prepared as
 * tensorflow/lite/kernels/add.cc does for int8 (left_shift 20, twice_max_input_scale).
 * With double rounding, MultiplyByQuantizedMultiplierSmallerThanOneExp is edgec_mbqm with
 * a shift <= 0.
 */
#include "edgec_kernels.h"
#include "edgec_fixedpoint.h"

#include <stddef.h>

edgec_status edgec_add_s8(const edgec_add_params *p, const int8_t *a, const int8_t *b,
                          int8_t *out)
{
    int32_t i;

    if (p == NULL || a == NULL || b == NULL || out == NULL) {
        return EDGEC_ERR_ARG;
    }
    if (p->size < 0 || p->left_shift < 0 || p->left_shift > 22 || p->input1_shift > 0 ||
        p->input2_shift > 0 || p->output_shift > 0 || p->act_min > p->act_max) {
        return EDGEC_ERR_ARG;
    }

    for (i = 0; i < p->size; ++i) {
        /* |x + offset| <= 255, shifted by <= 22 bits: < 2^30, no overflow. */
        const int32_t shifted1 = ((int32_t)a[i] + p->input1_offset) * ((int32_t)1 << p->left_shift);
        const int32_t shifted2 = ((int32_t)b[i] + p->input2_offset) * ((int32_t)1 << p->left_shift);
        const int32_t scaled1 = edgec_mbqm(shifted1, p->input1_multiplier, p->input1_shift);
        const int32_t scaled2 = edgec_mbqm(shifted2, p->input2_multiplier, p->input2_shift);
        /* each scaled input is at most half of 2^30 in magnitude: the sum fits */
        const int32_t raw_sum = scaled1 + scaled2;
        int32_t acc = edgec_mbqm(raw_sum, p->output_multiplier, p->output_shift) +
                      p->output_offset;
        acc = edgec_max_i32(acc, p->act_min);
        acc = edgec_min_i32(acc, p->act_max);
        out[i] = (int8_t)acc;
    }
    return EDGEC_OK;
}
