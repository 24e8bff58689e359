/*
 * fully_connected_s16.c - 16x8 fully connected layer (reference kernel).
 *
 * int16 input and output (zero point 0), int8 weights (per channel or per tensor, zero
 * point 0), optional int64 bias: an int64 accumulator per output, as TFLite's 16x8
 * FULLY_CONNECTED, rescaled as LiteRT's BUILTIN_REF does it: acc * m * 2^(shift - 31)
 * rounded once, half away from zero, from the exact product (up to 78 bits, computed from
 * 32-bit halves of |acc|), then clamped.
 */
#include "edgec_kernels.h"

#include <stddef.h>

/* round(|acc| * m / 2^total) for |acc| < 2^48, 0 <= m < 2^31, 17 <= total <= 62. */
static uint64_t scale_magnitude(uint64_t a, uint64_t m, int total)
{
    const uint64_t high = (a >> 32) * m;                              /* < 2^47 */
    const uint64_t low = (a & 0xFFFFFFFFu) * m + ((uint64_t)1 << (total - 1)); /* < 2^64 */
    if (total >= 32) {
        return (high + (low >> 32)) >> (total - 32);
    }
    return (high << (32 - total)) + (low >> total);
}

edgec_status edgec_fully_connected_s16(const edgec_fully_connected_s16_params *p,
                                       const int16_t *in, int16_t *out)
{
    int32_t row, out_c, d;

    if (p == NULL || in == NULL || out == NULL || p->weights == NULL ||
        p->output_multiplier == NULL || p->output_shift == NULL) {
        return EDGEC_ERR_ARG;
    }
    if (p->rows < 0 || p->in_depth < 1 || p->out_depth < 1 || p->act_min > p->act_max) {
        return EDGEC_ERR_ARG;
    }
    for (out_c = 0; out_c < p->out_depth; ++out_c) {
        if (p->output_multiplier[out_c] < 0 || p->output_shift[out_c] > 14 ||
            p->output_shift[out_c] < -31) {
            return EDGEC_ERR_ARG;
        }
    }
    for (row = 0; row < p->rows; ++row) {
        const int16_t *x = in + row * p->in_depth;
        for (out_c = 0; out_c < p->out_depth; ++out_c) {
            const int8_t *w = p->weights + out_c * p->in_depth;
            const int total = 31 - (int)p->output_shift[out_c];
            int64_t acc = 0;
            int64_t scaled;
            uint64_t magnitude;
            for (d = 0; d < p->in_depth; ++d) {
                acc += (int32_t)w[d] * (int32_t)x[d]; /* each product < 2^22 */
            }
            if (p->bias != NULL) {
                acc += p->bias[out_c];
            }
            magnitude = scale_magnitude(acc < 0 ? (uint64_t)(-acc) : (uint64_t)acc,
                                        (uint64_t)p->output_multiplier[out_c], total);
            scaled = acc < 0 ? -(int64_t)magnitude : (int64_t)magnitude;
            if (scaled < p->act_min) {
                scaled = p->act_min;
            }
            if (scaled > p->act_max) {
                scaled = p->act_max;
            }
            out[row * p->out_depth + out_c] = (int16_t)scaled;
        }
    }
    return EDGEC_OK;
}
