/*
 * mean_partial_s8.c - a mean over H and W fed part by part (reference kernel).
 *
 * Patch-based inference (toolchain/plan/patch.py) may hand the stripes of the layer
 * before a MEAN straight to it: each row stripe adds its pixels to C int32 per-channel
 * sums, and edgec_mean_finish_s8 applies the input offset and requantizes once, as
 * edgec_mean_s8 does. Integer sums are exact, so the bytes are the whole layer's.
 */
#include "edgec_kernels.h"
#include "edgec_fixedpoint.h"

#include <stddef.h>

static edgec_status partial_sum(const edgec_mean_partial_params *p, const int8_t *in,
                                const int32_t *acc_in, int32_t *acc)
{
    int32_t c, pixel;

    if (p == NULL || in == NULL || acc == NULL || p->pixels < 1 || p->channels < 1) {
        return EDGEC_ERR_ARG;
    }
    for (c = 0; c < p->channels; ++c) {
        /* fewer than 2^23 pixels in all (as edgec_mean_s8): no overflow */
        int32_t sum = acc_in != NULL ? acc_in[c] : 0;
        for (pixel = 0; pixel < p->pixels; ++pixel) {
            sum += in[pixel * p->channels + c];
        }
        acc[c] = sum;
    }
    return EDGEC_OK;
}

edgec_status edgec_mean_first_s8(const edgec_mean_partial_params *p, const int8_t *in,
                                 int32_t *acc)
{
    return partial_sum(p, in, NULL, acc);
}

edgec_status edgec_mean_partial_s8(const edgec_mean_partial_params *p, const int8_t *in,
                                   const int32_t *acc_in, int32_t *acc)
{
    if (acc_in == NULL) {
        return EDGEC_ERR_ARG;
    }
    return partial_sum(p, in, acc_in, acc);
}

edgec_status edgec_mean_finish_s8(const edgec_mean_finish_params *p, const int32_t *acc,
                                  int8_t *out)
{
    int32_t c;

    if (p == NULL || acc == NULL || out == NULL || p->count < 1 || p->count >= (1 << 23) ||
        p->channels < 1 || p->shift < -31 || p->shift > 30 || p->act_min > p->act_max) {
        return EDGEC_ERR_ARG;
    }
    for (c = 0; c < p->channels; ++c) {
        int32_t v = acc[c] + p->count * p->input_offset;
        v = edgec_add_wrap(edgec_mbqm(v, p->multiplier, p->shift), p->output_offset);
        v = edgec_max_i32(v, p->act_min);
        v = edgec_min_i32(v, p->act_max);
        out[c] = (int8_t)v;
    }
    return EDGEC_OK;
}
