/*
 * leaky_relu_s8.c - int8 LeakyReLU with two requantization multipliers (reference kernel).
 *
 * Bit-exact with TFLite reference_ops::QuantizeLeakyRelu
 * (tensorflow/lite/kernels/internal/reference/leaky_relu.h), parameters prepared as
 * activations.cc LeakyReluPrepare: identity s_in / s_out and alpha s_in * alpha / s_out,
 * each computed in float32 and turned into (multiplier, shift) by QuantizeMultiplier.
 */
#include "edgec_kernels.h"
#include "edgec_fixedpoint.h"

#include <stddef.h>

edgec_status edgec_leaky_relu_s8(const edgec_leaky_relu_params *p, const int8_t *in,
                                 int8_t *out)
{
    int32_t i;

    if (p == NULL || in == NULL || out == NULL || p->size < 0 || p->shift_identity > 22 ||
        p->shift_alpha > 22 || p->shift_identity < -31 || p->shift_alpha < -31) {
        return EDGEC_ERR_ARG;
    }
    for (i = 0; i < p->size; ++i) {
        /* |x| <= 255 and shift <= 22: the left shift of MBQM stays below 2^31 */
        const int32_t x = (int32_t)in[i] + p->input_offset;
        const int32_t scaled = x >= 0 ? edgec_mbqm(x, p->multiplier_identity, p->shift_identity)
                                      : edgec_mbqm(x, p->multiplier_alpha, p->shift_alpha);
        int32_t acc = edgec_add_wrap(scaled, p->output_offset);
        acc = edgec_max_i32(acc, -128);
        acc = edgec_min_i32(acc, 127);
        out[i] = (int8_t)acc;
    }
    return EDGEC_OK;
}
