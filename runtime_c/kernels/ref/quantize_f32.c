/*
 * quantize_f32.c - float32 -> int8 quantization at a float model input (reference kernel).
 *
 * Bit-exact with LiteRT's QUANTIZE float32 -> int8, reference_ops::AffineQuantize
 * (tflite/kernels/internal/reference/quantize.h): per element
 *     clamp((int32)TfLiteRound(val / (float)scale) + zero_point, -128, 127)
 * with the division in single precision (the scale is the tensor's float32) and
 * TfLiteRound = std::round on float: half away from zero. Float is used deliberately here:
 * the model's input is float by the model's own definition.
 */
#include "edgec_kernels.h"
#include "edgec_fixedpoint.h"

#include <stddef.h>

/* (int32)roundf(r), and INT32_MIN for NaN or a value outside the int32 range: the result of
 * x86-64's cvttss2si that LiteRT's static_cast<int32_t> compiles to. */
static inline int32_t round_to_i32(float r)
{
    int32_t t;
    float frac;
    if (!(r >= -2147483648.0f && r < 2147483648.0f)) {
        return EDGEC_INT32_MIN;
    }
    t = (int32_t)r; /* truncation toward zero, exact */
    /* r - trunc(r) is exact in float (Sterbenz), so the tie test is exact */
    frac = r - (float)t;
    if (frac >= 0.5f) {
        return t + 1; /* t < 2^31 - 1 here: floats >= 2^23 have no fraction */
    }
    if (frac <= -0.5f) {
        return t - 1;
    }
    return t;
}

edgec_status edgec_quantize_f32_s8(const edgec_quantize_f32_params *p, const float *in,
                                   int8_t *out)
{
    int32_t i;

    if (p == NULL || in == NULL || out == NULL || p->size < 0 || !(p->scale > 0.0f)) {
        return EDGEC_ERR_ARG;
    }
    for (i = 0; i < p->size; ++i) {
        const float value = in[i]; /* read before out[i] may overwrite its first byte */
        int32_t q = edgec_add_wrap(round_to_i32(value / p->scale), p->zero_point);
        q = edgec_max_i32(q, -128);
        q = edgec_min_i32(q, 127);
        out[i] = (int8_t)q;
    }
    return EDGEC_OK;
}

/* float32 -> int16 (16x8 models' float input): the same rounding, the int16 clamp. */
edgec_status edgec_quantize_f32_s16(const edgec_quantize_f32_params *p, const float *in,
                                    int16_t *out)
{
    int32_t i;

    if (p == NULL || in == NULL || out == NULL || p->size < 0 || !(p->scale > 0.0f)) {
        return EDGEC_ERR_ARG;
    }
    for (i = 0; i < p->size; ++i) {
        const float value = in[i];
        int32_t q = edgec_add_wrap(round_to_i32(value / p->scale), p->zero_point);
        q = edgec_max_i32(q, -32768);
        q = edgec_min_i32(q, 32767);
        out[i] = (int16_t)q;
    }
    return EDGEC_OK;
}
