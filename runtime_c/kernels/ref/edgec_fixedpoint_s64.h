/*
 * edgec_fixedpoint_s64.h - TFLite's MultiplyByQuantizedMultiplier(int64_t x, ...) for the
 * 16x8 kernels with int64 accumulators (conv2d_s16.c, batch_matmul_s16.c).
 */
#ifndef EDGEC_FIXEDPOINT_S64_H
#define EDGEC_FIXEDPOINT_S64_H

#include <stdint.h>

/**
 * common.h, TFLITE_SINGLE_ROUNDING off: the Q31 multiplier rounded to 16 bits, then one
 * rounding shift by 15 - shift, half up; the result cast to int32 as TFLite's
 * static_cast<int32_t>. |x| < 2^47 (the lowering bounds the accumulator), 0 <= m < 2^31,
 * shift in [-31, 14].
 */
static inline int32_t edgec_mbqm_s64(int64_t x, int32_t m, int32_t shift)
{
    const int64_t reduced = m < 0x7FFF0000 ? (((int64_t)m + (1 << 15)) >> 16) : 0x7FFF;
    const int total = 15 - (int)shift;
    const int64_t result = (x * reduced + ((int64_t)1 << (total - 1))) >> total;
    return (int32_t)(uint32_t)(uint64_t)result;
}

#endif /* EDGEC_FIXEDPOINT_S64_H */
