/*
 * pooling_s8.c - int8 max and average 2-D pooling (reference kernels).
 *
 * Bit-exact with TFLite reference_integer_ops::MaxPool / AveragePool
 * (tensorflow/lite/kernels/internal/reference/integer_ops/pooling.h). Input and output
 * share their quantization, so both work on the raw int8 values.
 */
#include "edgec_kernels.h"
#include "edgec_fixedpoint.h"
#include "edgec_elementwise.h"

#include <stddef.h>

edgec_status edgec_max_pool2d_s8(const edgec_max_pool2d_params *p, const int8_t *in,
                                 int8_t *out)
{
    int32_t batch, out_y, out_x, c, r, k;

    if (!edgec_pool_args_ok(p, in, out)) {
        return EDGEC_ERR_ARG;
    }
    for (batch = 0; batch < p->output.n; ++batch) {
        for (out_y = 0; out_y < p->output.h; ++out_y) {
            for (out_x = 0; out_x < p->output.w; ++out_x) {
                const edgec_pool_window win = edgec_pool_window_at(p, batch, out_y, out_x);
                int8_t *out_pixel =
                    out + ((batch * p->output.h + out_y) * p->output.w + out_x) * p->output.c;
                for (c = 0; c < p->output.c; ++c) {
                    int32_t max = -128;
                    for (r = 0; r < win.rows; ++r) {
                        const int8_t *row = in + win.offset + r * p->input.w * p->input.c + c;
                        for (k = 0; k < win.cols; ++k) {
                            max = edgec_max_i32(max, row[k * p->input.c]);
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
    int32_t batch, out_y, out_x, c, r, k;

    if (!edgec_pool_args_ok(p, in, out)) {
        return EDGEC_ERR_ARG;
    }
    for (batch = 0; batch < p->output.n; ++batch) {
        for (out_y = 0; out_y < p->output.h; ++out_y) {
            for (out_x = 0; out_x < p->output.w; ++out_x) {
                const edgec_pool_window win = edgec_pool_window_at(p, batch, out_y, out_x);
                const int32_t count = win.rows * win.cols;
                int8_t *out_pixel =
                    out + ((batch * p->output.h + out_y) * p->output.w + out_x) * p->output.c;
                if (win.rows <= 0 || win.cols <= 0) {
                    return EDGEC_ERR_ARG; /* a window entirely in the padding */
                }
                for (c = 0; c < p->output.c; ++c) {
                    /* count * 128 < 2^31 for any window below 2^24 pixels */
                    int32_t acc = 0;
                    for (r = 0; r < win.rows; ++r) {
                        const int8_t *row = in + win.offset + r * p->input.w * p->input.c + c;
                        for (k = 0; k < win.cols; ++k) {
                            acc += row[k * p->input.c];
                        }
                    }
                    /* round half away from zero; one division per output */
                    acc = edgec_pool_average(acc, count);
                    acc = edgec_max_i32(acc, p->act_min);
                    acc = edgec_min_i32(acc, p->act_max);
                    out_pixel[c] = (int8_t)acc;
                }
            }
        }
    }
    return EDGEC_OK;
}
