/*
 * dequantize_f32.c - int8 -> float32 at a float model output (reference kernel).
 *
 * Bit-exact with LiteRT's DEQUANTIZE int8 -> float32, reference_ops::Dequantize
 * (tflite/kernels/internal/reference/dequantize.h):
 *     static_cast<float>(double(scale) * (in - zero_point)).
 * Both operands are exact in float (a float32 scale, an integer below 2^9), and their
 * exact product has at most 24 + 9 bits: double holds it exactly, so LiteRT rounds the
 * exact product to float once, as one single-precision multiplication does.
 */
#include "edgec_kernels.h"

#include <stddef.h>

edgec_status edgec_dequantize_s8_f32(const edgec_dequantize_f32_params *p, const int8_t *in,
                                     float *out)
{
    int32_t i;

    if (p == NULL || in == NULL || out == NULL || p->size < 0) {
        return EDGEC_ERR_ARG;
    }
    for (i = 0; i < p->size; ++i) {
        out[i] = (float)((int32_t)in[i] - p->zero_point) * p->scale;
    }
    return EDGEC_OK;
}

/* int16 -> float32 (16x8 models' float output). */
edgec_status edgec_dequantize_s16_f32(const edgec_dequantize_f32_params *p, const int16_t *in,
                                      float *out)
{
    int32_t i;

    if (p == NULL || in == NULL || out == NULL || p->size < 0) {
        return EDGEC_ERR_ARG;
    }
    for (i = 0; i < p->size; ++i) {
        out[i] = (float)((int32_t)in[i] - p->zero_point) * p->scale;
    }
    return EDGEC_OK;
}
