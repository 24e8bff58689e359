/*
 * softmax_s8.c - softmax of int8 values over the last axis, int8 or int16 probabilities
 * (reference kernel).
 *
 * Bit-exact with TFLite reference_ops::Softmax<int8_t, int8_t>
 * (tensorflow/lite/kernels/internal/reference/softmax.h), which is what TFLite's SOFTMAX
 * runs for int8 with the reference kernel type: gemmlowp fixed point, no lookup table
 * (the LUT path is only the optimized kernel's). Parameters are prepared as SoftmaxPrepare
 * does for kReference: PreprocessSoftmaxScaling(beta, s_in, 5) and
 * diff_min = -CalculateInputRadius(5, input_left_shift).
 *
 * The row arithmetic is in edgec_softmax_row.h (shared with the fused attention).
 */
#include "edgec_kernels.h"
#include "edgec_softmax_row.h"

#include <stddef.h>

static edgec_status softmax(const edgec_softmax_params *p, const int8_t *in, int8_t *out8,
                            int16_t *out16)
{
    int32_t row;

    if (p == NULL || in == NULL || p->rows < 0 || p->depth < 1 || p->input_left_shift < 0 ||
        p->input_left_shift > 31 || p->diff_min > 0) {
        return EDGEC_ERR_ARG;
    }
    for (row = 0; row < p->rows; ++row) {
        const int32_t at = row * p->depth;
        const edgec_status st = edgec_softmax_row_to(
            p->input_multiplier, p->input_left_shift, p->diff_min, in + at,
            out8 != NULL ? out8 + at : NULL, out16 != NULL ? out16 + at : NULL, p->depth);
        if (st != EDGEC_OK) {
            return st;
        }
    }
    return EDGEC_OK;
}

edgec_status edgec_softmax_s8(const edgec_softmax_params *p, const int8_t *in, int8_t *out)
{
    return out == NULL ? EDGEC_ERR_ARG : softmax(p, in, out, NULL);
}

edgec_status edgec_softmax_s8_s16(const edgec_softmax_params *p, const int8_t *in, int16_t *out)
{
    return out == NULL ? EDGEC_ERR_ARG : softmax(p, in, NULL, out);
}
