/*
 * quantize_s16.c - QUANTIZE between int8 and int16 (16x8 models), reference kernels.
 *
 * TFLite's reference_ops::Requantize for int8 -> int16, int16 -> int8 and int16 -> int16:
 *     out = clamp(zp_out + MultiplyByQuantizedMultiplier(in - zp_in, m, shift))
 * to the output type (act_min/act_max, set to that type's range by the lowering). The
 * lowering bounds the shift so (in - zp_in) << shift stays inside int32.
 */
#include "edgec_kernels.h"
#include "edgec_fixedpoint.h"

#include <stddef.h>

static inline int32_t requantize_one(const edgec_requantize_params *p, int32_t in)
{
    int32_t acc = edgec_add_wrap(edgec_mbqm(in + p->input_offset, p->multiplier, p->shift),
                                 p->output_offset);
    acc = edgec_max_i32(acc, p->act_min);
    return edgec_min_i32(acc, p->act_max);
}

static int args_ok(const edgec_requantize_params *p, const void *in, const void *out,
                   int32_t lo, int32_t hi)
{
    return p != NULL && in != NULL && out != NULL && p->size >= 0 && p->act_min <= p->act_max
           && p->act_min >= lo && p->act_max <= hi;
}

edgec_status edgec_requantize_s8_s16(const edgec_requantize_params *p, const int8_t *in,
                                     int16_t *out)
{
    int32_t i;

    if (!args_ok(p, in, out, -32768, 32767)) {
        return EDGEC_ERR_ARG;
    }
    for (i = 0; i < p->size; ++i) {
        out[i] = (int16_t)requantize_one(p, in[i]);
    }
    return EDGEC_OK;
}

edgec_status edgec_requantize_s16_s8(const edgec_requantize_params *p, const int16_t *in,
                                     int8_t *out)
{
    int32_t i;

    if (!args_ok(p, in, out, -128, 127)) {
        return EDGEC_ERR_ARG;
    }
    for (i = 0; i < p->size; ++i) {
        out[i] = (int8_t)requantize_one(p, in[i]);
    }
    return EDGEC_OK;
}

edgec_status edgec_requantize_s16_s16(const edgec_requantize_params *p, const int16_t *in,
                                      int16_t *out)
{
    int32_t i;

    if (!args_ok(p, in, out, -32768, 32767)) {
        return EDGEC_ERR_ARG;
    }
    for (i = 0; i < p->size; ++i) {
        out[i] = (int16_t)requantize_one(p, in[i]);
    }
    return EDGEC_OK;
}
