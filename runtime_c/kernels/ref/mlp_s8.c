/*
 * mlp_s8.c - token-blocked int8 MLP (reference kernel).
 *
 * fully_connected -> [256-entry table, e.g. GELU] -> fully_connected over [rows, C], `block`
 * tokens at a time: the first layer's outputs for the block go to `scratch` (block x hidden
 * int8), the table is applied there in place, and the second layer writes the block's output
 * rows. So the [rows, hidden] tensor (4x the width in a ViT) never exists. Each layer is
 * fully_connected_s8.c's arithmetic (int32 sum, bias, one rounding half away from zero,
 * zero point, clamp) and the table lut_s8.c's, so the bytes equal the unfused calls'.
 *
 * Token overwriting: block b's input rows are all read (into scratch) before its output
 * rows are written; with out_depth <= in_depth those end no later than the input rows
 * already read, so `out` may be `in`.
 */
#include "edgec_kernels.h"
#include "edgec_fixedpoint.h"

#include <stddef.h>

/* fully_connected_s8.c on `rows` rows */
static void dense(int32_t rows, int32_t in_depth, int32_t out_depth, int32_t input_offset,
                  int32_t output_offset, int32_t act_min, int32_t act_max,
                  const int8_t *weights, const int32_t *bias, const int32_t *multiplier,
                  const int32_t *shift, const int8_t *in, int8_t *out)
{
    int32_t row, out_c, d;

    for (row = 0; row < rows; ++row) {
        const int8_t *x = in + row * in_depth;
        for (out_c = 0; out_c < out_depth; ++out_c) {
            const int8_t *w = weights + out_c * in_depth;
            int32_t acc = 0;
            for (d = 0; d < in_depth; ++d) {
                acc += (int32_t)w[d] * ((int32_t)x[d] + input_offset);
            }
            if (bias != NULL) {
                acc += bias[out_c];
            }
            acc = edgec_mul_round_away(acc, multiplier[out_c], shift[out_c]);
            acc = edgec_add_wrap(acc, output_offset);
            acc = edgec_max_i32(acc, act_min);
            acc = edgec_min_i32(acc, act_max);
            out[row * out_depth + out_c] = (int8_t)acc;
        }
    }
}

edgec_status edgec_mlp_s8(const edgec_mlp_params *p, const int8_t *in, int8_t *out,
                          int8_t *scratch)
{
    int32_t t0, i;

    if (p == NULL || in == NULL || out == NULL || scratch == NULL || p->fc1_weights == NULL ||
        p->fc2_weights == NULL || p->fc1_output_multiplier == NULL ||
        p->fc1_output_shift == NULL || p->fc2_output_multiplier == NULL ||
        p->fc2_output_shift == NULL) {
        return EDGEC_ERR_ARG;
    }
    if (p->rows < 0 || p->in_depth < 1 || p->hidden < 1 || p->out_depth < 1 ||
        p->block < 1 || p->fc1_act_min > p->fc1_act_max || p->fc2_act_min > p->fc2_act_max) {
        return EDGEC_ERR_ARG;
    }
    for (t0 = 0; t0 < p->rows; t0 += p->block) {
        const int32_t n = edgec_min_i32(p->block, p->rows - t0);
        dense(n, p->in_depth, p->hidden, p->fc1_input_offset, p->fc1_output_offset,
              p->fc1_act_min, p->fc1_act_max, p->fc1_weights, p->fc1_bias,
              p->fc1_output_multiplier, p->fc1_output_shift, in + t0 * p->in_depth, scratch);
        if (p->table != NULL) {
            for (i = 0; i < n * p->hidden; ++i) {
                scratch[i] = p->table[(uint8_t)scratch[i]];
            }
        }
        dense(n, p->hidden, p->out_depth, p->fc2_input_offset, p->fc2_output_offset,
              p->fc2_act_min, p->fc2_act_max, p->fc2_weights, p->fc2_bias,
              p->fc2_output_multiplier, p->fc2_output_shift, scratch,
              out + t0 * p->out_depth);
    }
    return EDGEC_OK;
}
