/*
 * mean_s8.c - int8 mean over the spatial axes H and W (reference kernel).
 *
 * Bit-exact with TFLite's int8 MEAN, reference_ops::QuantizedMeanOrSum
 * (tensorflow/lite/kernels/internal/reference/reduce.h): the sum of the raw values minus
 * count * zero point, requantized by s_in / s_out with the 1 / count folded into the
 * multiplier (done on the host by edgec's lowering, as TFLite does before its loop).
 */
#include "edgec_kernels.h"
#include "edgec_fixedpoint.h"

#include <stddef.h>

edgec_status edgec_mean_s8(const edgec_mean_params *p, const int8_t *in, int8_t *out)
{
    int32_t batch, c, pixel;
    int32_t count;

    if (p == NULL || in == NULL || out == NULL || p->input.h < 1 || p->input.w < 1 ||
        p->input.h > (1 << 23) / p->input.w || p->shift < -31 || p->shift > 30 ||
        p->act_min > p->act_max) {
        return EDGEC_ERR_ARG;
    }
    count = p->input.h * p->input.w;
    for (batch = 0; batch < p->input.n; ++batch) {
        const int8_t *image = in + batch * count * p->input.c;
        for (c = 0; c < p->input.c; ++c) {
            /* |sum + count * input_offset| <= count * 255 < 2^31 */
            int32_t acc = 0;
            for (pixel = 0; pixel < count; ++pixel) {
                acc += image[pixel * p->input.c + c];
            }
            acc += count * p->input_offset;
            acc = edgec_add_wrap(edgec_mbqm(acc, p->multiplier, p->shift), p->output_offset);
            acc = edgec_max_i32(acc, p->act_min);
            acc = edgec_min_i32(acc, p->act_max);
            out[batch * p->input.c + c] = (int8_t)acc;
        }
    }
    return EDGEC_OK;
}
