/*
 * pad_s8.c - int8 constant padding (reference kernel).
 *
 * Same result as TFLite's PAD / PADV2 for int8 (tensorflow/lite/kernels/pad.cc EvalInt,
 * reference_ops::Pad in kernels/internal/reference/pad.h): every output element inside the
 * copied block is the input element, every other one is pad_value (the output zero point for
 * PAD, the int8 constant for PADV2). Input and output share their quantization, so the
 * values are copied as they are.
 */
#include "edgec_kernels.h"

#include <stddef.h>
#include <string.h>

edgec_status edgec_pad_s8(const edgec_pad_params *p, const int8_t *in, int8_t *out)
{
    int32_t k, d0, d1, d2;
    int32_t after[4];

    if (p == NULL || in == NULL || out == NULL || p->pad_value < -128 || p->pad_value > 127) {
        return EDGEC_ERR_ARG;
    }
    for (k = 0; k < 4; ++k) {
        after[k] = p->output_dims[k] - p->input_dims[k] - p->before[k];
        if (p->input_dims[k] < 0 || p->before[k] < 0 || after[k] < 0) {
            return EDGEC_ERR_ARG;
        }
    }
    /* One output row along the last axis at a time: either entirely padding (its outer
     * index lies in the padding of axis 0, 1 or 2), or before[3] pad values, the input row
     * and after[3] pad values. */
    for (d0 = 0; d0 < p->output_dims[0]; ++d0) {
        const int32_t i0 = d0 - p->before[0];
        for (d1 = 0; d1 < p->output_dims[1]; ++d1) {
            const int32_t i1 = d1 - p->before[1];
            for (d2 = 0; d2 < p->output_dims[2]; ++d2) {
                const int32_t i2 = d2 - p->before[2];
                int8_t *row = out + ((d0 * p->output_dims[1] + d1) * p->output_dims[2] + d2) *
                                        p->output_dims[3];
                if (i0 < 0 || i0 >= p->input_dims[0] || i1 < 0 || i1 >= p->input_dims[1] ||
                    i2 < 0 || i2 >= p->input_dims[2]) {
                    memset(row, p->pad_value, (size_t)p->output_dims[3]);
                    continue;
                }
                memset(row, p->pad_value, (size_t)p->before[3]);
                memcpy(row + p->before[3],
                       in + ((i0 * p->input_dims[1] + i1) * p->input_dims[2] + i2) *
                                p->input_dims[3],
                       (size_t)p->input_dims[3]);
                memset(row + p->before[3] + p->input_dims[3], p->pad_value, (size_t)after[3]);
            }
        }
    }
    return EDGEC_OK;
}
