/*
 * attention_s8.c - memory-frugal int8 attention (reference kernel).
 *
 * One call for softmax(Q K^T [* scale]) V, computed batch (head) by batch and query row by
 * query row, so that only one row of scores (`keys` int8 values, in `scratch`) exists at a
 * time instead of the [heads, N, N] matrix (MCUFormer's operator library). Each step is the
 * integer arithmetic of the unfused kernel it replaces, applied to that row, so the output
 * equals the unfused sequence byte for byte:
 *   1. scores: batch_matmul_s8.c (int32 sum of offset products, MBQM, zero point, clamp);
 *   2. optional scalar scale: mul_s8.c with a one-value constant;
 *   3. softmax_s8.c on the row, in place (it reads x[c] before it writes y[c]), or with
 *      probs_s16 its int16-output form into an int16 row at the start of the scratch;
 *   4. probabilities x V: batch_matmul_s8.c again (edgec_batch_matmul_s16_s8 with int16
 *      probabilities), written through the output strides.
 * Operands and output are addressed through strides, so the transposes and slices between a
 * qkv projection and the heads (and back) cost no copy.
 */
#include "edgec_kernels.h"
#include "edgec_fixedpoint.h"
#include "edgec_softmax_row.h"

#include <stddef.h>
#include <stdint.h>

static int8_t requant(int32_t acc, int32_t multiplier, int32_t shift, int32_t offset,
                      int32_t act_min, int32_t act_max)
{
    acc = edgec_add_wrap(edgec_mbqm(acc, multiplier, shift), offset);
    acc = edgec_max_i32(acc, act_min);
    return (int8_t)edgec_min_i32(acc, act_max);
}

/* softmax_s8.c's exponential: exp(beta * s_in * diff) in Q0.31 for diff >= diff_min */
edgec_status edgec_attention_s8(const edgec_attention_params *p, const int8_t *q,
                                const int8_t *k, const int8_t *v, int8_t *out,
                                int8_t *scratch)
{
    int32_t b0, b1, b2, row, j, d;
    int16_t *probs16;
    int8_t *scores;

    if (p == NULL || q == NULL || k == NULL || v == NULL || out == NULL || scratch == NULL ||
        ((uintptr_t)scratch & 1u) != 0) {
        return EDGEC_ERR_ARG;
    }
    /* int16 probabilities first (aligned), then the int8 scores */
    probs16 = (int16_t *)(void *)scratch;
    scores = p->probs_s16 ? scratch + 2 * p->keys : scratch;
    if (p->batch[0] < 1 || p->batch[1] < 1 || p->batch[2] < 1 || p->rows < 1 ||
        p->keys < 1 || p->depth < 1 || p->value_depth < 1 ||
        p->softmax_input_left_shift < 0 || p->softmax_input_left_shift > 31 ||
        p->softmax_diff_min > 0 || p->score_shift > 30 || p->score_shift < -31 ||
        p->scale_shift > 30 || p->scale_shift < -31 || p->output_shift > 30 ||
        p->output_shift < -31) {
        return EDGEC_ERR_ARG;
    }

    for (b0 = 0; b0 < p->batch[0]; ++b0) {
        for (b1 = 0; b1 < p->batch[1]; ++b1) {
            for (b2 = 0; b2 < p->batch[2]; ++b2) {
                const int8_t *qb = q + p->q_start + b0 * p->q_batch_stride[0] +
                                   b1 * p->q_batch_stride[1] + b2 * p->q_batch_stride[2];
                const int8_t *kb = k + p->k_start + b0 * p->k_batch_stride[0] +
                                   b1 * p->k_batch_stride[1] + b2 * p->k_batch_stride[2];
                const int8_t *vb = v + p->v_start + b0 * p->v_batch_stride[0] +
                                   b1 * p->v_batch_stride[1] + b2 * p->v_batch_stride[2];
                int8_t *ob = out + p->out_start + b0 * p->out_batch_stride[0] +
                             b1 * p->out_batch_stride[1] + b2 * p->out_batch_stride[2];
                for (row = 0; row < p->rows; ++row) {
                    const int8_t *q_row = qb + row * p->q_row_stride;
                    int8_t *o_row = ob + row * p->out_row_stride;
                    edgec_status st;
                    /* 1-2: this row's scores (and their scale) into the scratch row */
                    for (j = 0; j < p->keys; ++j) {
                        const int8_t *k_col = kb + j * p->k_key_stride;
                        int32_t acc = 0;
                        int8_t s;
                        for (d = 0; d < p->depth; ++d) {
                            acc += ((int32_t)q_row[d * p->q_depth_stride] + p->q_offset) *
                                   ((int32_t)k_col[d * p->k_depth_stride] + p->k_offset);
                        }
                        s = requant(acc, p->score_multiplier, p->score_shift, p->score_offset,
                                    p->score_act_min, p->score_act_max);
                        if (p->has_scale) {
                            s = requant(((int32_t)s + p->scale_input_offset) * p->scale_factor,
                                        p->scale_multiplier, p->scale_shift,
                                        p->scale_output_offset, p->scale_act_min,
                                        p->scale_act_max);
                        }
                        scores[j] = s;
                    }
                    /* 3: softmax over the row */
                    if (p->probs_s16) {
                        st = edgec_softmax_row_s16(p->softmax_input_multiplier,
                                                   p->softmax_input_left_shift,
                                                   p->softmax_diff_min, scores, probs16,
                                                   p->keys);
                    } else {
                        st = edgec_softmax_row(p->softmax_input_multiplier,
                                               p->softmax_input_left_shift,
                                               p->softmax_diff_min, scores, scores, p->keys);
                    }
                    if (st != EDGEC_OK) {
                        return st;
                    }
                    /* 4: the row of probabilities times V */
                    for (d = 0; d < p->value_depth; ++d) {
                        const int8_t *v_col = vb + d * p->v_col_stride;
                        int32_t acc = 0;
                        if (p->probs_s16) {
                            for (j = 0; j < p->keys; ++j) {
                                acc += ((int32_t)probs16[j] + p->p_offset) *
                                       ((int32_t)v_col[j * p->v_key_stride] + p->v_offset);
                            }
                        } else {
                            for (j = 0; j < p->keys; ++j) {
                                acc += ((int32_t)scores[j] + p->p_offset) *
                                       ((int32_t)v_col[j * p->v_key_stride] + p->v_offset);
                            }
                        }
                        o_row[d * p->out_col_stride] =
                            requant(acc, p->output_multiplier, p->output_shift,
                                    p->output_offset, p->act_min, p->act_max);
                    }
                }
            }
        }
    }
    return EDGEC_OK;
}
