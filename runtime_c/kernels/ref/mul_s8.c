/*
 * mul_s8.c - int8 element-wise multiplication with broadcasting (reference kernel).
 *
 * Bit-exact with TFLite reference_integer_ops::Mul / MulElementwise and BroadcastMul6DSlow
 * (tensorflow/lite/kernels/internal/reference/integer_ops/mul.h), parameters prepared as
 * tensorflow/lite/kernels/mul.cc does for int8: real multiplier s1 * s2 / s_out computed in
 * float32, then QuantizeMultiplier (may be > 1: a left shift).
 */
#include "edgec_kernels.h"
#include "edgec_fixedpoint.h"
#include "edgec_elementwise.h"

#include <stddef.h>

/* One output element from one element of each input (MulElementwise). */
static inline int8_t mul_one(const void *params, int8_t a, int8_t b)
{
    const edgec_mul_params *p = (const edgec_mul_params *)params;
    /* |a + off1| <= 255 and |b + off2| <= 255: |product| <= 65025, and output_shift <= 15
     * keeps the left shift of MultiplyByQuantizedMultiplier below 2^31. */
    const int32_t product = ((int32_t)a + p->input1_offset) * ((int32_t)b + p->input2_offset);
    int32_t acc = edgec_add_wrap(edgec_mbqm(product, p->output_multiplier, p->output_shift),
                                 p->output_offset);
    acc = edgec_max_i32(acc, p->act_min);
    acc = edgec_min_i32(acc, p->act_max);
    return (int8_t)acc;
}

edgec_status edgec_mul_s8(const edgec_mul_params *p, const int8_t *a, const int8_t *b,
                          int8_t *out)
{
    const edgec_dims *d;

    if (p == NULL || a == NULL || b == NULL || out == NULL) {
        return EDGEC_ERR_ARG;
    }
    d = &p->output;
    if (d->n < 1 || d->h < 1 || d->w < 1 || d->c < 1 || p->output_shift > 15 ||
        p->output_shift < -31 || p->act_min > p->act_max) {
        return EDGEC_ERR_ARG;
    }
    /* output in C order: in place as edgec_add_s8 */
    edgec_broadcast_binary(d, &p->input1_stride, &p->input2_stride, a, b, out, mul_one, p);
    return EDGEC_OK;
}

/* MUL with a constant second operand (a TFLite MUL whose input 2 is a constant tensor, e.g.
 * attention's 1 / sqrt(d)): the same arithmetic, the constant read from flash. */
edgec_status edgec_mul_const_s8(const edgec_mul_const_params *p, const int8_t *a, int8_t *out)
{
    edgec_mul_params mul;

    if (p == NULL) {
        return EDGEC_ERR_ARG;
    }
    mul.output = p->output;
    mul.input1_stride = p->input1_stride;
    mul.input2_stride = p->input2_stride;
    mul.input1_offset = p->input1_offset;
    mul.input2_offset = p->input2_offset;
    mul.output_offset = p->output_offset;
    mul.output_multiplier = p->output_multiplier;
    mul.output_shift = p->output_shift;
    mul.act_min = p->act_min;
    mul.act_max = p->act_max;
    return edgec_mul_s8(&mul, a, p->constant, out);
}
