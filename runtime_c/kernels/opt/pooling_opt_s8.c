/*
 * pooling_opt_s8.c - MAX_POOL_2D, AVERAGE_POOL_2D and MEAN with the channels innermost.
 *
 * The reference kernels walk each window once per channel; here each window is walked
 * once per four channels, one word per pixel: SXTAB16 adds the four bytes into two int16
 * pairs (exact while the window has at most 255 pixels: 255 * 128 < 2^15), SSUB8 + SEL keep
 * the four byte maxima. The average is then divided per output exactly as the reference
 * (edgec_pool_average), MEAN requantized as edgec_mean_s8: the same bytes.
 */
#include "edgec_opt.h"
#include "edgec_elementwise.h"

#include <stddef.h>

#define SUM16_MAX_PIXELS 255

/* Sums of channels 0..3 from px over rows x cols pixels (pixel (r, k) at px + r * row_step
 * + k * pixel_step). */
static void sum4(const int8_t *px, int32_t rows, int32_t cols, int32_t row_step,
                 int32_t pixel_step, int32_t s[4])
{
    int32_t r, k;
#if EDGEC_OPT_DSP
    if (rows * cols <= SUM16_MAX_PIXELS) {
        int32_t even = 0; /* {s0, s2} */
        int32_t odd = 0;  /* {s1, s3} */
        for (r = 0; r < rows; ++r) {
            const int8_t *q = px + r * row_step;
            for (k = 0; k < cols; ++k) {
                const int32_t v = edgec_opt_read_s8x4(q);
                even = __sxtab16(even, v);
                odd = edgec_opt_sxtab16_ror8(odd, v);
                q += pixel_step;
            }
        }
        s[0] = edgec_opt_lo16(even);
        s[1] = edgec_opt_lo16(odd);
        s[2] = edgec_opt_hi16(even);
        s[3] = edgec_opt_hi16(odd);
        return;
    }
#endif
    s[0] = s[1] = s[2] = s[3] = 0;
    for (r = 0; r < rows; ++r) {
        const int8_t *q = px + r * row_step;
        for (k = 0; k < cols; ++k) {
            s[0] += q[0];
            s[1] += q[1];
            s[2] += q[2];
            s[3] += q[3];
            q += pixel_step;
        }
    }
}

/* The sum of one channel (the channels past the last group of four). */
static int32_t sum1(const int8_t *px, int32_t rows, int32_t cols, int32_t row_step,
                    int32_t pixel_step)
{
    int32_t r, k, acc = 0;
    for (r = 0; r < rows; ++r) {
        const int8_t *q = px + r * row_step;
        for (k = 0; k < cols; ++k) {
            acc += q[k * pixel_step];
        }
    }
    return acc;
}

/* Maxima of channels 0..3 (as edgec_sum4), starting from -128. */
static void max4(const int8_t *px, int32_t rows, int32_t cols, int32_t row_step,
                 int32_t pixel_step, int32_t m[4])
{
    int32_t r, k;
#if EDGEC_OPT_DSP
    uint32_t best = 0x80808080u;
    for (r = 0; r < rows; ++r) {
        const int8_t *q = px + r * row_step;
        for (k = 0; k < cols; ++k) {
            const uint32_t v = (uint32_t)edgec_opt_read_s8x4(q);
            (void)__ssub8(v, best); /* GE[i] = v[i] >= best[i] */
            best = __sel(v, best);
            q += pixel_step;
        }
    }
    m[0] = (int8_t)(best & 0xFFu);
    m[1] = (int8_t)((best >> 8) & 0xFFu);
    m[2] = (int8_t)((best >> 16) & 0xFFu);
    m[3] = (int8_t)(best >> 24);
#else
    m[0] = m[1] = m[2] = m[3] = -128;
    for (r = 0; r < rows; ++r) {
        const int8_t *q = px + r * row_step;
        for (k = 0; k < cols; ++k) {
            m[0] = edgec_max_i32(m[0], q[0]);
            m[1] = edgec_max_i32(m[1], q[1]);
            m[2] = edgec_max_i32(m[2], q[2]);
            m[3] = edgec_max_i32(m[3], q[3]);
            q += pixel_step;
        }
    }
#endif
}

static int32_t max1(const int8_t *px, int32_t rows, int32_t cols, int32_t row_step,
                    int32_t pixel_step)
{
    int32_t r, k, best = -128;
    for (r = 0; r < rows; ++r) {
        const int8_t *q = px + r * row_step;
        for (k = 0; k < cols; ++k) {
            best = edgec_max_i32(best, q[k * pixel_step]);
        }
    }
    return best;
}

static inline int8_t clamp_out(int32_t v, int32_t act_min, int32_t act_max)
{
    return (int8_t)edgec_min_i32(edgec_max_i32(v, act_min), act_max);
}

/* One pooling kernel; `average` is a constant at each call site. */
static inline edgec_status pool(const edgec_pool2d_params *p, const int8_t *in, int8_t *out,
                                int average)
{
    const int32_t channels = p->input.c;
    const int32_t row_step = p->input.w * channels;
    int32_t batch, out_y, out_x, c, j;

    if (!edgec_pool_args_ok(p, in, out)) {
        return EDGEC_ERR_ARG;
    }
    for (batch = 0; batch < p->output.n; ++batch) {
        for (out_y = 0; out_y < p->output.h; ++out_y) {
            for (out_x = 0; out_x < p->output.w; ++out_x) {
                const edgec_pool_window win = edgec_pool_window_at(p, batch, out_y, out_x);
                const int32_t count = win.rows * win.cols;
                const int8_t *px = in + win.offset;
                int8_t *o = out + ((batch * p->output.h + out_y) * p->output.w + out_x) *
                                      channels;
                int32_t v[4];
                if (average && (win.rows <= 0 || win.cols <= 0)) {
                    return EDGEC_ERR_ARG; /* a window entirely in the padding */
                }
                for (c = 0; c + 4 <= channels; c += 4) {
                    if (average) {
                        sum4(px + c, win.rows, win.cols, row_step, channels, v);
                    } else {
                        max4(px + c, win.rows, win.cols, row_step, channels, v);
                    }
                    for (j = 0; j < 4; ++j) {
                        const int32_t y = average ? edgec_pool_average(v[j], count) : v[j];
                        o[c + j] = clamp_out(y, p->act_min, p->act_max);
                    }
                }
                for (; c < channels; ++c) {
                    const int32_t y =
                        average ? edgec_pool_average(sum1(px + c, win.rows, win.cols,
                                                          row_step, channels), count)
                                : max1(px + c, win.rows, win.cols, row_step, channels);
                    o[c] = clamp_out(y, p->act_min, p->act_max);
                }
            }
        }
    }
    return EDGEC_OK;
}

edgec_status edgec_max_pool2d_opt_s8(const edgec_max_pool2d_params *p, const int8_t *in,
                                     int8_t *out)
{
    return pool(p, in, out, 0);
}

edgec_status edgec_avg_pool2d_opt_s8(const edgec_avg_pool2d_params *p, const int8_t *in,
                                     int8_t *out)
{
    return pool(p, in, out, 1);
}

edgec_status edgec_mean_opt_s8(const edgec_mean_params *p, const int8_t *in, int8_t *out)
{
    int32_t batch, c, j;
    int32_t count;

    if (p == NULL || in == NULL || out == NULL || p->input.h < 1 || p->input.w < 1 ||
        p->input.h > (1 << 23) / p->input.w || p->shift < -31 || p->shift > 30 ||
        p->act_min > p->act_max) {
        return EDGEC_ERR_ARG;
    }
    count = p->input.h * p->input.w;
    for (batch = 0; batch < p->input.n; ++batch) {
        const int8_t *image = in + batch * count * p->input.c;
        int8_t *o = out + batch * p->input.c;
        for (c = 0; c < p->input.c; c += 4) {
            int32_t v[4];
            const int32_t n = edgec_min_i32(4, p->input.c - c);
            if (n == 4) {
                sum4(image + c, 1, count, 0, p->input.c, v);
            } else {
                for (j = 0; j < n; ++j) {
                    v[j] = sum1(image + c + j, 1, count, 0, p->input.c);
                }
            }
            for (j = 0; j < n; ++j) {
                /* |sum + count * input_offset| <= count * 255 < 2^31, as edgec_mean_s8 */
                const int32_t acc = v[j] + count * p->input_offset;
                o[c + j] = clamp_out(edgec_add_wrap(edgec_mbqm(acc, p->multiplier, p->shift),
                                                    p->output_offset),
                                     p->act_min, p->act_max);
            }
        }
    }
    return EDGEC_OK;
}
