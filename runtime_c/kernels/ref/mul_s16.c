/*
 * mul_s16.c - int16 element-wise multiplication with broadcasting (reference kernel).
 *
 * TFLite's int16 MUL (reference_integer_ops::Mul / BroadcastMul6DSlow on int16, prepared
 * by mul.cc): zero points 0, out = clamp(MultiplyByQuantizedMultiplier(a * b, m, shift)).
 * |a * b| <= 2^30 and the lowering keeps shift <= 0: no overflow.
 */
#include "edgec_kernels.h"
#include "edgec_elementwise_s16.h"
#include "edgec_fixedpoint.h"

#include <stddef.h>

static int16_t mul_one(const void *params, int16_t a, int16_t b)
{
    const edgec_mul_params *p = (const edgec_mul_params *)params;
    const int32_t product = ((int32_t)a + p->input1_offset) * ((int32_t)b + p->input2_offset);
    int32_t acc = edgec_mbqm(product, p->output_multiplier, p->output_shift) + p->output_offset;
    acc = edgec_max_i32(acc, p->act_min);
    acc = edgec_min_i32(acc, p->act_max);
    return (int16_t)acc;
}

edgec_status edgec_mul_s16(const edgec_mul_params *p, const int16_t *a, const int16_t *b,
                           int16_t *out)
{
    const edgec_dims *d;

    if (p == NULL || a == NULL || b == NULL || out == NULL) {
        return EDGEC_ERR_ARG;
    }
    d = &p->output;
    if (d->n < 1 || d->h < 1 || d->w < 1 || d->c < 1 || p->input1_offset != 0 ||
        p->input2_offset != 0 || p->output_offset != 0 || p->output_shift > 0 ||
        p->output_shift < -31 || p->act_min > p->act_max || p->act_min < -32768 ||
        p->act_max > 32767) {
        return EDGEC_ERR_ARG;
    }
    /* in place with an input of the output's shape (edgec_elementwise_s16.h) */
    edgec_broadcast_binary_s16(d, &p->input1_stride, &p->input2_stride, a, b, out, mul_one, p);
    return EDGEC_OK;
}
