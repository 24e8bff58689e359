/*
 * add_s8.c - int8 element-wise addition with rescaling and broadcasting (reference kernel).
 *
 * Bit-exact with TFLite reference_integer_ops::Add / AddFunc and BroadcastAdd6DSlow
 * (tensorflow/lite/kernels/internal/reference/integer_ops/add.h), parameters prepared as
 * tensorflow/lite/kernels/add.cc does for int8 (left_shift 20, twice_max_input_scale).
 * Broadcasting changes only which elements meet, never the arithmetic of one element.
 * With double rounding, MultiplyByQuantizedMultiplierSmallerThanOneExp is edgec_mbqm with
 * a shift <= 0.
 */
#include "edgec_kernels.h"
#include "edgec_fixedpoint.h"
#include "edgec_elementwise.h"

#include <stddef.h>

/* One output element from one element of each input (AddFunc). */
static inline int8_t add_one(const void *params, int8_t a, int8_t b)
{
    const edgec_add_params *p = (const edgec_add_params *)params;
    /* |x + offset| <= 255, shifted by <= 22 bits: < 2^30, no overflow. */
    const int32_t shifted1 = ((int32_t)a + p->input1_offset) * ((int32_t)1 << p->left_shift);
    const int32_t shifted2 = ((int32_t)b + p->input2_offset) * ((int32_t)1 << p->left_shift);
    const int32_t scaled1 = edgec_mbqm(shifted1, p->input1_multiplier, p->input1_shift);
    const int32_t scaled2 = edgec_mbqm(shifted2, p->input2_multiplier, p->input2_shift);
    /* each scaled input is at most half of 2^30 in magnitude: the sum fits */
    const int32_t raw_sum = scaled1 + scaled2;
    int32_t acc = edgec_mbqm(raw_sum, p->output_multiplier, p->output_shift) + p->output_offset;
    acc = edgec_max_i32(acc, p->act_min);
    acc = edgec_min_i32(acc, p->act_max);
    return (int8_t)acc;
}

edgec_status edgec_add_s8(const edgec_add_params *p, const int8_t *a, const int8_t *b,
                          int8_t *out)
{
    const edgec_dims *d;

    if (p == NULL || a == NULL || b == NULL || out == NULL) {
        return EDGEC_ERR_ARG;
    }
    d = &p->output;
    if (d->n < 1 || d->h < 1 || d->w < 1 || d->c < 1 || p->left_shift < 0 ||
        p->left_shift > 22 || p->input1_shift > 0 || p->input2_shift > 0 ||
        p->output_shift > 0 || p->act_min > p->act_max) {
        return EDGEC_ERR_ARG;
    }
    /* output in C order: in place with an input of the output's shape (edgec_elementwise.h) */
    edgec_broadcast_binary(d, &p->input1_stride, &p->input2_stride, a, b, out, add_one, p);
    return EDGEC_OK;
}

/* ADD with a constant second operand (a TFLite ADD whose input 2 is a constant tensor): the
 * same arithmetic, the constant read from flash. */
edgec_status edgec_add_const_s8(const edgec_add_const_params *p, const int8_t *a, int8_t *out)
{
    edgec_add_params add;

    if (p == NULL) {
        return EDGEC_ERR_ARG;
    }
    add.output = p->output;
    add.input1_stride = p->input1_stride;
    add.input2_stride = p->input2_stride;
    add.left_shift = p->left_shift;
    add.input1_offset = p->input1_offset;
    add.input1_multiplier = p->input1_multiplier;
    add.input1_shift = p->input1_shift;
    add.input2_offset = p->input2_offset;
    add.input2_multiplier = p->input2_multiplier;
    add.input2_shift = p->input2_shift;
    add.output_offset = p->output_offset;
    add.output_multiplier = p->output_multiplier;
    add.output_shift = p->output_shift;
    add.act_min = p->act_min;
    add.act_max = p->act_max;
    return edgec_add_s8(&add, a, p->constant, out);
}
