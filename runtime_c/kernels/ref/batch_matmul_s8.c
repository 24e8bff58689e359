/*
 * batch_matmul_s8.c - int8 x int8 batched matrix product of two activations (reference
 * kernel).
 *
 * Bit-exact with TFLite's int8 BATCH_MATMUL (tensorflow/lite/kernels/batch_matmul.cc,
 * EvalInt8Int8 -> reference_ops::BatchMatMul<int8_t, int32_t> in
 * kernels/internal/reference/batch_matmul.h): both operands asymmetric per tensor, each
 * offset by its own zero point, int32 accumulation, then the double-rounding
 * MultiplyByQuantizedMultiplier with the multiplier s_lhs * s_rhs / s_out prepared as
 * GetQuantizedConvolutionMultipler (float32 product), the output zero point and the int8
 * clamp. TFLite transposes operands into temporaries for adj_x / !adj_y; here the operand
 * layouts are strides, so no scratch memory is needed.
 *
 * edgec_batch_matmul_s16_s8 is the same arithmetic with an int16 lhs of softmax
 * probabilities (the attention's P x V when the precision search keeps them at int16).
 */
#include "edgec_kernels.h"
#include "edgec_fixedpoint.h"

#include <stddef.h>

/* One body for both lhs types (exactly one of lhs8 / lhs16 is non-NULL). */
static edgec_status batch_matmul(const edgec_batch_matmul_params *p, const int8_t *lhs8,
                                 const int16_t *lhs16, const int8_t *rhs, int8_t *out)
{
    int32_t b0, b1, b2, row, col, d;

    if (p == NULL || (lhs8 == NULL && lhs16 == NULL) || rhs == NULL || out == NULL) {
        return EDGEC_ERR_ARG;
    }
    if (p->batch[0] < 1 || p->batch[1] < 1 || p->batch[2] < 1 || p->rows < 1 ||
        p->cols < 1 || p->depth < 1 || p->act_min > p->act_max || p->output_shift > 30 ||
        p->output_shift < -31) {
        return EDGEC_ERR_ARG;
    }

    for (b0 = 0; b0 < p->batch[0]; ++b0) {
        for (b1 = 0; b1 < p->batch[1]; ++b1) {
            for (b2 = 0; b2 < p->batch[2]; ++b2) {
                const int32_t a = b0 * p->lhs_batch_stride[0] + b1 * p->lhs_batch_stride[1] +
                                  b2 * p->lhs_batch_stride[2];
                const int8_t *b = rhs + b0 * p->rhs_batch_stride[0] +
                                  b1 * p->rhs_batch_stride[1] + b2 * p->rhs_batch_stride[2];
                for (row = 0; row < p->rows; ++row) {
                    const int32_t a_row = a + row * p->lhs_row_stride;
                    for (col = 0; col < p->cols; ++col) {
                        const int8_t *b_col = b + col * p->rhs_col_stride;
                        /* int8 lhs: depth products of at most 255 * 255 = 65025 < 2^16
                         * each, and the lowering keeps depth <= 33025; int16 lhs (softmax
                         * probabilities): the sum of (a + lhs_offset) is <= 65536 + depth.
                         * Either way the sum fits int32. */
                        int32_t acc = 0;
                        for (d = 0; d < p->depth; ++d) {
                            const int32_t at = a_row + d * p->lhs_depth_stride;
                            const int32_t x = lhs16 != NULL ? lhs16[at] : lhs8[at];
                            acc += (x + p->lhs_offset) *
                                   ((int32_t)b_col[d * p->rhs_depth_stride] + p->rhs_offset);
                        }
                        acc = edgec_add_wrap(
                            edgec_mbqm(acc, p->output_multiplier, p->output_shift),
                            p->output_offset);
                        acc = edgec_max_i32(acc, p->act_min);
                        acc = edgec_min_i32(acc, p->act_max);
                        *out++ = (int8_t)acc;
                    }
                }
            }
        }
    }
    return EDGEC_OK;
}

edgec_status edgec_batch_matmul_s8(const edgec_batch_matmul_params *p, const int8_t *lhs,
                                   const int8_t *rhs, int8_t *out)
{
    return lhs == NULL ? EDGEC_ERR_ARG : batch_matmul(p, lhs, NULL, rhs, out);
}

edgec_status edgec_batch_matmul_s16_s8(const edgec_batch_matmul_params *p, const int16_t *lhs,
                                       const int8_t *rhs, int8_t *out)
{
    return lhs == NULL ? EDGEC_ERR_ARG : batch_matmul(p, NULL, lhs, rhs, out);
}
