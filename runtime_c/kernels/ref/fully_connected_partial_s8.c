/*
 * fully_connected_partial_s8.c - a fully connected layer fed part by part (reference).
 *
 * Patch-based inference (toolchain/plan/patch.py) may run the layers before a FULLY_CONNECTED
 * stripe by stripe and hand each stripe straight to it: in NHWC a row stripe is a
 * contiguous run [col_start, col_start + cols) of the flattened input, so it meets those
 * weight columns only. The int32 sums of the parts add up exactly to the whole layer's
 * sum, so requantizing once at the end (edgec_fully_connected_finish_s8, the same steps as
 * edgec_fully_connected_s8) gives the same bytes as the unstriped layer.
 */
#include "edgec_kernels.h"
#include "edgec_fixedpoint.h"

#include <stddef.h>

static edgec_status partial_sum(const edgec_fully_connected_partial_params *p,
                                const int8_t *in, const int32_t *acc_in, int32_t *acc)
{
    int32_t out_c, d;

    if (p == NULL || in == NULL || acc == NULL || p->weights == NULL) {
        return EDGEC_ERR_ARG;
    }
    if (p->in_depth < 1 || p->out_depth < 1 || p->cols < 1 || p->col_start < 0 ||
        p->col_start + p->cols > p->in_depth) {
        return EDGEC_ERR_ARG;
    }
    for (out_c = 0; out_c < p->out_depth; ++out_c) {
        const int8_t *w = p->weights + out_c * p->in_depth + p->col_start;
        /* As edgec_fully_connected_s8: below 2^16 inputs in all, no part overflows. */
        int32_t sum = acc_in != NULL ? acc_in[out_c]
                      : (p->bias != NULL ? p->bias[out_c] : 0);
        for (d = 0; d < p->cols; ++d) {
            sum += (int32_t)w[d] * ((int32_t)in[d] + p->input_offset);
        }
        acc[out_c] = sum;
    }
    return EDGEC_OK;
}

edgec_status edgec_fully_connected_first_s8(const edgec_fully_connected_partial_params *p,
                                            const int8_t *in, int32_t *acc)
{
    return partial_sum(p, in, NULL, acc);
}

edgec_status edgec_fully_connected_partial_s8(const edgec_fully_connected_partial_params *p,
                                              const int8_t *in, const int32_t *acc_in,
                                              int32_t *acc)
{
    if (acc_in == NULL) {
        return EDGEC_ERR_ARG;
    }
    return partial_sum(p, in, acc_in, acc);
}

edgec_status edgec_fully_connected_finish_s8(const edgec_fully_connected_finish_params *p,
                                             const int32_t *acc, int8_t *out)
{
    int32_t out_c;

    if (p == NULL || acc == NULL || out == NULL || p->output_multiplier == NULL ||
        p->output_shift == NULL) {
        return EDGEC_ERR_ARG;
    }
    if (p->out_depth < 1 || p->act_min > p->act_max) {
        return EDGEC_ERR_ARG;
    }
    for (out_c = 0; out_c < p->out_depth; ++out_c) {
        int32_t v = edgec_mul_round_away(acc[out_c], p->output_multiplier[out_c],
                                         p->output_shift[out_c]);
        v = edgec_add_wrap(v, p->output_offset);
        v = edgec_max_i32(v, p->act_min);
        v = edgec_min_i32(v, p->act_max);
        out[out_c] = (int8_t)v;
    }
    return EDGEC_OK;
}
