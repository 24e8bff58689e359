/*
 * conv2d_s16.c - 16x8 2-D convolution, NHWC (reference kernel).
 *
 * TFLite reference_integer_ops::ConvPerChannel on int16 input and output (zero point 0),
 * int8 weights [C_OUT, KH, KW, C_IN] (zero point 0) and int64 bias: an int64 accumulator
 * per output, rescaled by MultiplyByQuantizedMultiplier(int64_t x, ...) of TFLite's common.h
 * (TFLITE_SINGLE_ROUNDING off): the Q31 multiplier rounded to 16 bits, then one rounding
 * shift by 15 - shift, half up. Taps in the padding contribute nothing.
 */
#include "edgec_kernels.h"
#include "edgec_fixedpoint.h"
#include "edgec_fixedpoint_s64.h"

#include <stddef.h>

edgec_status edgec_conv2d_s16(const edgec_conv2d_s16_params *p, const int16_t *in,
                              int16_t *out)
{
    int32_t batch, out_y, out_x, out_c, filter_y, filter_x, in_c;

    if (p == NULL || in == NULL || out == NULL || p->weights == NULL ||
        p->output_multiplier == NULL || p->output_shift == NULL) {
        return EDGEC_ERR_ARG;
    }
    if (p->input.c != p->filter.c || p->output.c != p->filter.n ||
        p->input.n != p->output.n || p->stride.h < 1 || p->stride.w < 1 ||
        p->dilation.h < 1 || p->dilation.w < 1 || p->act_min > p->act_max) {
        return EDGEC_ERR_ARG;
    }
    for (out_c = 0; out_c < p->output.c; ++out_c) {
        if (p->output_multiplier[out_c] < 0 || p->output_shift[out_c] > 14 ||
            p->output_shift[out_c] < -31) {
            return EDGEC_ERR_ARG;
        }
    }
    for (batch = 0; batch < p->output.n; ++batch) {
        for (out_y = 0; out_y < p->output.h; ++out_y) {
            const int32_t in_y_origin = out_y * p->stride.h - p->padding.h;
            for (out_x = 0; out_x < p->output.w; ++out_x) {
                const int32_t in_x_origin = out_x * p->stride.w - p->padding.w;
                int16_t *out_pixel =
                    out + ((batch * p->output.h + out_y) * p->output.w + out_x) * p->output.c;
                for (out_c = 0; out_c < p->output.c; ++out_c) {
                    int64_t acc = 0;
                    int32_t scaled;
                    for (filter_y = 0; filter_y < p->filter.h; ++filter_y) {
                        const int32_t in_y = in_y_origin + p->dilation.h * filter_y;
                        if (in_y < 0 || in_y >= p->input.h) {
                            continue;
                        }
                        for (filter_x = 0; filter_x < p->filter.w; ++filter_x) {
                            const int32_t in_x = in_x_origin + p->dilation.w * filter_x;
                            const int16_t *in_ptr;
                            const int8_t *w_ptr;
                            if (in_x < 0 || in_x >= p->input.w) {
                                continue;
                            }
                            in_ptr = in + ((batch * p->input.h + in_y) * p->input.w + in_x) *
                                              p->input.c;
                            w_ptr = p->weights +
                                    ((out_c * p->filter.h + filter_y) * p->filter.w + filter_x) *
                                        p->filter.c;
                            for (in_c = 0; in_c < p->input.c; ++in_c) {
                                /* each product < 2^22 */
                                acc += (int32_t)w_ptr[in_c] * (int32_t)in_ptr[in_c];
                            }
                        }
                    }
                    if (p->bias != NULL) {
                        acc += p->bias[out_c];
                    }
                    scaled = edgec_mbqm_s64(acc, p->output_multiplier[out_c],
                                            p->output_shift[out_c]);
                    scaled = edgec_max_i32(scaled, p->act_min);
                    scaled = edgec_min_i32(scaled, p->act_max);
                    out_pixel[out_c] = (int16_t)scaled;
                }
            }
        }
    }
    return EDGEC_OK;
}
