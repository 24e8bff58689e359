/*
 * edgec_elementwise.h - the walks shared by the element-wise and pooling kernels: the
 * broadcast walk of the binary ops (ADD, MUL; edgec_kernels.h, Broadcasting) and the
 * clipped window of a pooling output.
 *
 * Static inline: each kernel passes its per-element function as a constant pointer, which
 * the compiler inlines, so the walk costs what the hand-written loops did.
 */
#ifndef EDGEC_ELEMENTWISE_H
#define EDGEC_ELEMENTWISE_H

#include "edgec_kernels.h"
#include "edgec_fixedpoint.h"

/** One output byte from one byte of each input, under the kernel's parameters. */
typedef int8_t (*edgec_binary_fn)(const void *params, int8_t a, int8_t b);

/**
 * out[i] = fn(params, a[.], b[.]) over the output d in C order, input k read with its
 * strides sk (0 on broadcast axes). out[i] is written after every input element it needs is
 * read, so an input of the output's shape may share the output's buffer.
 */
static inline void edgec_broadcast_binary(const edgec_dims *d, const edgec_dims *s1,
                                          const edgec_dims *s2, const int8_t *a,
                                          const int8_t *b, int8_t *out, edgec_binary_fn fn,
                                          const void *params)
{
    int32_t n, y, x, c;
    int32_t i = 0;
    for (n = 0; n < d->n; ++n) {
        for (y = 0; y < d->h; ++y) {
            for (x = 0; x < d->w; ++x) {
                const int8_t *row1 = a + n * s1->n + y * s1->h + x * s1->w;
                const int8_t *row2 = b + n * s2->n + y * s2->h + x * s2->w;
                for (c = 0; c < d->c; ++c) {
                    out[i++] = fn(params, row1[c * s1->c], row2[c * s2->c]);
                }
            }
        }
    }
}

/** A pooling window clipped to the image: its first pixel and its size. */
typedef struct {
    int32_t offset; /**< element offset of the window's first in-image pixel, channel 0 */
    int32_t rows;   /**< in-image rows (<= 0: the window lies in the padding) */
    int32_t cols;   /**< in-image columns */
} edgec_pool_window;

/** The window of output pixel (batch, out_y, out_x); pixel (r, k) of it, channel c, is
 *  in[offset + (r * W + k) * C + c]. */
static inline edgec_pool_window edgec_pool_window_at(const edgec_pool2d_params *p,
                                                     int32_t batch, int32_t out_y,
                                                     int32_t out_x)
{
    edgec_pool_window win;
    const int32_t in_y = out_y * p->stride.h - p->padding.h;
    const int32_t in_x = out_x * p->stride.w - p->padding.w;
    const int32_t fy_start = edgec_max_i32(0, -in_y);
    const int32_t fy_end = edgec_min_i32(p->filter.h, p->input.h - in_y);
    const int32_t fx_start = edgec_max_i32(0, -in_x);
    const int32_t fx_end = edgec_min_i32(p->filter.w, p->input.w - in_x);
    win.rows = fy_end - fy_start;
    win.cols = fx_end - fx_start;
    win.offset = ((batch * p->input.h + in_y + fy_start) * p->input.w + in_x + fx_start) *
                 p->input.c;
    return win;
}

/** The pooling parameters every pooling kernel relies on. */
static inline int edgec_pool_args_ok(const edgec_pool2d_params *p, const int8_t *in,
                                     const int8_t *out)
{
    return p != 0 && in != 0 && out != 0 && p->input.n == p->output.n &&
           p->input.c == p->output.c && p->filter.h >= 1 && p->filter.w >= 1 &&
           p->stride.h >= 1 && p->stride.w >= 1 && p->act_min <= p->act_max;
}

/** TFLite's int8 average: the sum over count values divided, rounding half away from zero. */
static inline int32_t edgec_pool_average(int32_t acc, int32_t count)
{
    return acc > 0 ? (acc + count / 2) / count : (acc - count / 2) / count;
}

#endif /* EDGEC_ELEMENTWISE_H */
