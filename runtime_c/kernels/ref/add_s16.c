/*
 * add_s16.c - int16 element-wise addition with rescaling and broadcasting (reference kernel).
 *
 * TFLite's general int16 ADD (add.cc with pot_scale_int16 false, as the converter writes
 * 16x8 models): add_s8.c's arithmetic on int16 values with left_shift 15, zero points 0,
 * the int16 clamp. |x| << 15 <= 2^30 and each rescaled input is at most half of that: the
 * int32 sum cannot overflow. Broadcasting as edgec_broadcast_binary (edgec_kernels.h).
 */
#include "edgec_kernels.h"
#include "edgec_elementwise_s16.h"
#include "edgec_fixedpoint.h"

#include <stddef.h>

static int16_t add_one(const void *params, int16_t a, int16_t b)
{
    const edgec_add_params *p = (const edgec_add_params *)params;
    const int32_t shifted1 = ((int32_t)a + p->input1_offset) * ((int32_t)1 << p->left_shift);
    const int32_t shifted2 = ((int32_t)b + p->input2_offset) * ((int32_t)1 << p->left_shift);
    const int32_t raw_sum = edgec_mbqm(shifted1, p->input1_multiplier, p->input1_shift)
                            + edgec_mbqm(shifted2, p->input2_multiplier, p->input2_shift);
    int32_t acc = edgec_mbqm(raw_sum, p->output_multiplier, p->output_shift) + p->output_offset;
    acc = edgec_max_i32(acc, p->act_min);
    acc = edgec_min_i32(acc, p->act_max);
    return (int16_t)acc;
}

edgec_status edgec_add_s16(const edgec_add_params *p, const int16_t *a, const int16_t *b,
                           int16_t *out)
{
    const edgec_dims *d;

    if (p == NULL || a == NULL || b == NULL || out == NULL) {
        return EDGEC_ERR_ARG;
    }
    d = &p->output;
    if (d->n < 1 || d->h < 1 || d->w < 1 || d->c < 1 || p->left_shift != 15 ||
        p->input1_offset != 0 || p->input2_offset != 0 || p->output_offset != 0 ||
        p->input1_shift > 0 || p->input2_shift > 0 || p->output_shift > 0 ||
        p->act_min > p->act_max || p->act_min < -32768 || p->act_max > 32767) {
        return EDGEC_ERR_ARG;
    }
    /* in place with an input of the output's shape (edgec_elementwise_s16.h) */
    edgec_broadcast_binary_s16(d, &p->input1_stride, &p->input2_stride, a, b, out, add_one, p);
    return EDGEC_OK;
}
