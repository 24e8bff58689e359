/*
 * edgec_elementwise_s16.h - the broadcasting walk of edgec_elementwise.h on int16 values,
 * shared by the 16x8 binary kernels (add_s16.c, mul_s16.c).
 */
#ifndef EDGEC_ELEMENTWISE_S16_H
#define EDGEC_ELEMENTWISE_S16_H

#include "edgec_kernels.h"

/** One output value from one value of each input, under the kernel's parameters. */
typedef int16_t (*edgec_binary_s16_fn)(const void *params, int16_t a, int16_t b);

/**
 * out[i] = fn(params, a[.], b[.]) over the output d in C order, input k read with its
 * strides sk (0 on broadcast axes); as edgec_broadcast_binary, in place is allowed with an
 * input of the output's shape.
 */
static inline void edgec_broadcast_binary_s16(const edgec_dims *d, const edgec_dims *s1,
                                              const edgec_dims *s2, const int16_t *a,
                                              const int16_t *b, int16_t *out,
                                              edgec_binary_s16_fn fn, const void *params)
{
    int32_t n, y, x, c;
    int32_t i = 0;
    for (n = 0; n < d->n; ++n) {
        for (y = 0; y < d->h; ++y) {
            for (x = 0; x < d->w; ++x) {
                const int16_t *row1 = a + n * s1->n + y * s1->h + x * s1->w;
                const int16_t *row2 = b + n * s2->n + y * s2->h + x * s2->w;
                for (c = 0; c < d->c; ++c) {
                    out[i++] = fn(params, row1[c * s1->c], row2[c * s2->c]);
                }
            }
        }
    }
}

#endif /* EDGEC_ELEMENTWISE_S16_H */
