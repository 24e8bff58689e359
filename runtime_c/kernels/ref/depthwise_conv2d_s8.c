/*
 * depthwise_conv2d_s8.c - int8 depthwise 2-D convolution, per-channel quantized
 * (reference kernel).
 *
 * Bit-exact with TFLite reference_integer_ops::DepthwiseConvPerChannel
 * (tensorflow/lite/kernels/internal/reference/integer_ops/depthwise_conv.h).
 */
#include "edgec_kernels.h"
#include "edgec_fixedpoint.h"

#include <stddef.h>

edgec_status edgec_depthwise_conv2d_s8(const edgec_depthwise_conv2d_params *p,
                                       const int8_t *in, int8_t *out)
{
    int32_t batch, out_y, out_x, in_c, m, filter_y, filter_x;

    if (p == NULL || in == NULL || out == NULL || p->weights == NULL ||
        p->output_multiplier == NULL || p->output_shift == NULL) {
        return EDGEC_ERR_ARG;
    }
    if (p->depth_multiplier < 1 || p->output.c != p->input.c * p->depth_multiplier ||
        p->filter.c != p->output.c || p->input.n != p->output.n || p->stride.h < 1 ||
        p->stride.w < 1 || p->dilation.h < 1 || p->dilation.w < 1 ||
        p->act_min > p->act_max) {
        return EDGEC_ERR_ARG;
    }

    for (batch = 0; batch < p->output.n; ++batch) {
        for (out_y = 0; out_y < p->output.h; ++out_y) {
            const int32_t in_y_origin = out_y * p->stride.h - p->padding.h;
            for (out_x = 0; out_x < p->output.w; ++out_x) {
                const int32_t in_x_origin = out_x * p->stride.w - p->padding.w;
                int8_t *out_pixel =
                    out + ((batch * p->output.h + out_y) * p->output.w + out_x) * p->output.c;
                for (in_c = 0; in_c < p->input.c; ++in_c) {
                    for (m = 0; m < p->depth_multiplier; ++m) {
                        const int32_t out_c = m + in_c * p->depth_multiplier;
                        /* KH * KW taps of at most 128 * 255 each: no int32 overflow. */
                        int32_t acc = 0;
                        for (filter_y = 0; filter_y < p->filter.h; ++filter_y) {
                            const int32_t in_y = in_y_origin + p->dilation.h * filter_y;
                            if (in_y < 0 || in_y >= p->input.h) {
                                continue;
                            }
                            for (filter_x = 0; filter_x < p->filter.w; ++filter_x) {
                                const int32_t in_x = in_x_origin + p->dilation.w * filter_x;
                                int32_t x_val;
                                int32_t w_val;
                                if (in_x < 0 || in_x >= p->input.w) {
                                    continue;
                                }
                                x_val = in[((batch * p->input.h + in_y) * p->input.w + in_x) *
                                               p->input.c + in_c];
                                w_val = p->weights[(filter_y * p->filter.w + filter_x) *
                                                       p->filter.c + out_c];
                                acc += w_val * (x_val + p->input_offset);
                            }
                        }
                        if (p->bias != NULL) {
                            acc += p->bias[out_c];
                        }
                        acc = edgec_mbqm(acc, p->output_multiplier[out_c],
                                         p->output_shift[out_c]);
                        acc = edgec_add_wrap(acc, p->output_offset);
                        acc = edgec_max_i32(acc, p->act_min);
                        acc = edgec_min_i32(acc, p->act_max);
                        out_pixel[out_c] = (int8_t)acc;
                    }
                }
            }
        }
    }
    return EDGEC_OK;
}
