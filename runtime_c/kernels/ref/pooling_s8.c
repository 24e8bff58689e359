/*
 * pooling_s8.c - int8 max and average 2-D pooling (reference kernels).
 *
 * Bit-exact with TFLite reference_integer_ops::MaxPool / AveragePool
 * (tensorflow/lite/kernels/internal/reference/integer_ops/pooling.h). Input and output
 * share their quantization, so both work on the raw int8 values.
 */
#include "edgec_kernels.h"
#include "edgec_fixedpoint.h"

#include <stddef.h>

static int pool_args_ok(const edgec_pool2d_params *p, const int8_t *in, const int8_t *out)
{
    return p != NULL && in != NULL && out != NULL && p->input.n == p->output.n &&
           p->input.c == p->output.c && p->filter.h >= 1 && p->filter.w >= 1 &&
           p->stride.h >= 1 && p->stride.w >= 1 && p->act_min <= p->act_max;
}

edgec_status edgec_max_pool2d_s8(const edgec_max_pool2d_params *p, const int8_t *in,
                                 int8_t *out)
{
    int32_t batch, out_y, out_x, c, fy, fx;

    if (!pool_args_ok(p, in, out)) {
        return EDGEC_ERR_ARG;
    }
    for (batch = 0; batch < p->output.n; ++batch) {
        for (out_y = 0; out_y < p->output.h; ++out_y) {
            /* the window clipped to the image: [fy_start, fy_end) x [fx_start, fx_end) */
            const int32_t in_y_origin = out_y * p->stride.h - p->padding.h;
            const int32_t fy_start = edgec_max_i32(0, -in_y_origin);
            const int32_t fy_end = edgec_min_i32(p->filter.h, p->input.h - in_y_origin);
            for (out_x = 0; out_x < p->output.w; ++out_x) {
                const int32_t in_x_origin = out_x * p->stride.w - p->padding.w;
                const int32_t fx_start = edgec_max_i32(0, -in_x_origin);
                const int32_t fx_end = edgec_min_i32(p->filter.w, p->input.w - in_x_origin);
                int8_t *out_pixel =
                    out + ((batch * p->output.h + out_y) * p->output.w + out_x) * p->output.c;
                for (c = 0; c < p->output.c; ++c) {
                    int32_t max = -128;
                    for (fy = fy_start; fy < fy_end; ++fy) {
                        const int8_t *row =
                            in + ((batch * p->input.h + in_y_origin + fy) * p->input.w +
                                  in_x_origin) * p->input.c + c;
                        for (fx = fx_start; fx < fx_end; ++fx) {
                            max = edgec_max_i32(max, row[fx * p->input.c]);
                        }
                    }
                    max = edgec_max_i32(max, p->act_min);
                    max = edgec_min_i32(max, p->act_max);
                    out_pixel[c] = (int8_t)max;
                }
            }
        }
    }
    return EDGEC_OK;
}

edgec_status edgec_avg_pool2d_s8(const edgec_avg_pool2d_params *p, const int8_t *in,
                                 int8_t *out)
{
    int32_t batch, out_y, out_x, c, fy, fx;

    if (!pool_args_ok(p, in, out)) {
        return EDGEC_ERR_ARG;
    }
    for (batch = 0; batch < p->output.n; ++batch) {
        for (out_y = 0; out_y < p->output.h; ++out_y) {
            const int32_t in_y_origin = out_y * p->stride.h - p->padding.h;
            const int32_t fy_start = edgec_max_i32(0, -in_y_origin);
            const int32_t fy_end = edgec_min_i32(p->filter.h, p->input.h - in_y_origin);
            for (out_x = 0; out_x < p->output.w; ++out_x) {
                const int32_t in_x_origin = out_x * p->stride.w - p->padding.w;
                const int32_t fx_start = edgec_max_i32(0, -in_x_origin);
                const int32_t fx_end = edgec_min_i32(p->filter.w, p->input.w - in_x_origin);
                const int32_t count = (fy_end - fy_start) * (fx_end - fx_start);
                int8_t *out_pixel =
                    out + ((batch * p->output.h + out_y) * p->output.w + out_x) * p->output.c;
                if (fy_end <= fy_start || fx_end <= fx_start) {
                    return EDGEC_ERR_ARG; /* a window entirely in the padding */
                }
                for (c = 0; c < p->output.c; ++c) {
                    /* count * 128 < 2^31 for any window below 2^24 pixels */
                    int32_t acc = 0;
                    for (fy = fy_start; fy < fy_end; ++fy) {
                        const int8_t *row =
                            in + ((batch * p->input.h + in_y_origin + fy) * p->input.w +
                                  in_x_origin) * p->input.c + c;
                        for (fx = fx_start; fx < fx_end; ++fx) {
                            acc += row[fx * p->input.c];
                        }
                    }
                    /* round half away from zero; one division per output */
                    acc = acc > 0 ? (acc + count / 2) / count : (acc - count / 2) / count;
                    acc = edgec_max_i32(acc, p->act_min);
                    acc = edgec_min_i32(acc, p->act_max);
                    out_pixel[c] = (int8_t)acc;
                }
            }
        }
    }
    return EDGEC_OK;
}
