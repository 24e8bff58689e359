/*
 * requantize_s8.c - int8 -> int8 requantization with a clamp (reference kernel).
 *
 * One kernel for TFLite's QUANTIZE int8 -> int8 (reference_ops::Requantize) and the
 * quantized RELU / RELU6 / RELU_N1_TO_1 (reference_ops::ReluX), which compute
 *     out = clamp(zp_out + MultiplyByQuantizedMultiplier(in - zp_in, m, shift)).
 */
#include "edgec_kernels.h"
#include "edgec_fixedpoint.h"

#include <stddef.h>

edgec_status edgec_requantize_s8(const edgec_requantize_params *p, const int8_t *in,
                                 int8_t *out)
{
    int32_t i;

    if (p == NULL || in == NULL || out == NULL || p->size < 0 || p->act_min > p->act_max) {
        return EDGEC_ERR_ARG;
    }
    for (i = 0; i < p->size; ++i) {
        /* |in + offset| <= 255; wrap-around as TFLite's int32 code if the ratio is absurd */
        int32_t acc = edgec_add_wrap(
            edgec_mbqm((int32_t)in[i] + p->input_offset, p->multiplier, p->shift),
            p->output_offset);
        acc = edgec_max_i32(acc, p->act_min);
        acc = edgec_min_i32(acc, p->act_max);
        out[i] = (int8_t)acc;
    }
    return EDGEC_OK;
}
