/*
 * strided_slice_s8.c - int8 strided slice of a 4-D tensor (reference kernel).
 *
 * Same result as TFLite's STRIDED_SLICE (reference_ops::StridedSlice in
 * tensorflow/lite/kernels/internal/reference/strided_slice.h). The begin/end/stride
 * arithmetic of TFLite (strided_slice_logic.h: masks, negative indices, clamping,
 * shrink_axis_mask) is done on the host by edgec's lowering, which passes the resolved
 * first index, element count and step of each axis: out[o] = in[start + o * stride] per
 * axis. Input and output share their quantization.
 */
#include "edgec_kernels.h"

#include <stddef.h>

edgec_status edgec_strided_slice_s8(const edgec_strided_slice_params *p, const int8_t *in,
                                    int8_t *out)
{
    int32_t in_stride[4];
    int32_t step[4];   /* input elements between consecutive outputs along each axis */
    int32_t k, o0, o1, o2, o3;
    const int8_t *base;

    if (p == NULL || in == NULL || out == NULL) {
        return EDGEC_ERR_ARG;
    }
    for (k = 0; k < 4; ++k) {
        const int32_t last = p->start[k] + (p->output_dims[k] - 1) * p->stride[k];
        if (p->input_dims[k] < 1 || p->output_dims[k] < 0 || p->stride[k] == 0 ||
            (p->output_dims[k] > 0 &&
             (p->start[k] < 0 || p->start[k] >= p->input_dims[k] || last < 0 ||
              last >= p->input_dims[k]))) {
            return EDGEC_ERR_ARG; /* an index outside the input */
        }
    }
    in_stride[3] = 1;
    for (k = 2; k >= 0; --k) {
        in_stride[k] = in_stride[k + 1] * p->input_dims[k + 1];
    }
    for (k = 0; k < 4; ++k) {
        step[k] = in_stride[k] * p->stride[k];
    }
    base = in + p->start[0] * in_stride[0] + p->start[1] * in_stride[1] +
           p->start[2] * in_stride[2] + p->start[3];
    for (o0 = 0; o0 < p->output_dims[0]; ++o0) {
        for (o1 = 0; o1 < p->output_dims[1]; ++o1) {
            for (o2 = 0; o2 < p->output_dims[2]; ++o2) {
                const int8_t *src = base + o0 * step[0] + o1 * step[1] + o2 * step[2];
                for (o3 = 0; o3 < p->output_dims[3]; ++o3) {
                    *out++ = src[o3 * step[3]];
                }
            }
        }
    }
    return EDGEC_OK;
}
