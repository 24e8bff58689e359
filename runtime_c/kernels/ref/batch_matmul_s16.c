/*
 * batch_matmul_s16.c - int16 x int16 -> int16 batch matrix multiplication (reference kernel).
 *
 * TFLite's BATCH_MATMUL on int16 (reference_ops::BatchMatMul<int16_t, int64_t>): zero points
 * 0 (LiteRT enforces it), an int64 accumulator, TFLite's 64-bit MultiplyByQuantizedMultiplier,
 * the int16 clamp. Operands addressed through edgec_batch_matmul_params' strides, as
 * edgec_batch_matmul_s8 (offsets must be 0).
 */
#include "edgec_kernels.h"
#include "edgec_fixedpoint.h"
#include "edgec_fixedpoint_s64.h"

#include <stddef.h>

edgec_status edgec_batch_matmul_s16(const edgec_batch_matmul_params *p, const int16_t *lhs,
                                    const int16_t *rhs, int16_t *out)
{
    int32_t b0, b1, b2, row, col, d;

    if (p == NULL || lhs == NULL || rhs == NULL || out == NULL) {
        return EDGEC_ERR_ARG;
    }
    if (p->batch[0] < 1 || p->batch[1] < 1 || p->batch[2] < 1 || p->rows < 1 ||
        p->cols < 1 || p->depth < 1 || p->depth > 131072 || p->act_min > p->act_max ||
        p->lhs_offset != 0 || p->rhs_offset != 0 || p->output_offset != 0 ||
        p->output_multiplier < 0 || p->output_shift > 14 || p->output_shift < -31) {
        return EDGEC_ERR_ARG;
    }
    for (b0 = 0; b0 < p->batch[0]; ++b0) {
        for (b1 = 0; b1 < p->batch[1]; ++b1) {
            for (b2 = 0; b2 < p->batch[2]; ++b2) {
                const int16_t *a = lhs + b0 * p->lhs_batch_stride[0] +
                                   b1 * p->lhs_batch_stride[1] + b2 * p->lhs_batch_stride[2];
                const int16_t *b = rhs + b0 * p->rhs_batch_stride[0] +
                                   b1 * p->rhs_batch_stride[1] + b2 * p->rhs_batch_stride[2];
                for (row = 0; row < p->rows; ++row) {
                    const int16_t *a_row = a + row * p->lhs_row_stride;
                    for (col = 0; col < p->cols; ++col) {
                        const int16_t *b_col = b + col * p->rhs_col_stride;
                        /* products <= 2^30, depth <= 2^17: |acc| < 2^47 */
                        int64_t acc = 0;
                        int32_t scaled;
                        for (d = 0; d < p->depth; ++d) {
                            acc += (int64_t)((int32_t)a_row[d * p->lhs_depth_stride] *
                                             (int32_t)b_col[d * p->rhs_depth_stride]);
                        }
                        scaled = edgec_mbqm_s64(acc, p->output_multiplier, p->output_shift);
                        scaled = edgec_max_i32(scaled, p->act_min);
                        scaled = edgec_min_i32(scaled, p->act_max);
                        *out++ = (int16_t)scaled;
                    }
                }
            }
        }
    }
    return EDGEC_OK;
}
