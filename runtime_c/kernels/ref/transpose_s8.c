/*
 * transpose_s8.c - int8 4-D transpose (reference kernel).
 *
 * Same result as TFLite's TRANSPOSE (reference_ops::Transpose in
 * tensorflow/lite/kernels/internal/reference/transpose.h): output axis k is input axis
 * perm[k], i.e. out[o0, o1, o2, o3] = in[i] with i[perm[k]] = o[k]. A pure permutation of
 * bytes: input and output share their quantization.
 */
#include "edgec_kernels.h"

#include <stddef.h>

edgec_status edgec_transpose_s8(const edgec_transpose_params *p, const int8_t *in, int8_t *out)
{
    int32_t in_stride[4];
    int32_t step[4];   /* input stride of each output axis */
    int32_t out_dims[4];
    int32_t k, o0, o1, o2, o3;
    int seen = 0;

    if (p == NULL || in == NULL || out == NULL) {
        return EDGEC_ERR_ARG;
    }
    in_stride[3] = 1;
    for (k = 2; k >= 0; --k) {
        in_stride[k] = in_stride[k + 1] * p->input_dims[k + 1];
    }
    for (k = 0; k < 4; ++k) {
        if (p->perm[k] < 0 || p->perm[k] > 3 || p->input_dims[k] < 0) {
            return EDGEC_ERR_ARG;
        }
        seen |= 1 << p->perm[k];
        step[k] = in_stride[p->perm[k]];
        out_dims[k] = p->input_dims[p->perm[k]];
    }
    if (seen != 0xF) {
        return EDGEC_ERR_ARG; /* not a permutation */
    }
    /* The output is written in order; the input is gathered with the permuted strides. */
    for (o0 = 0; o0 < out_dims[0]; ++o0) {
        for (o1 = 0; o1 < out_dims[1]; ++o1) {
            for (o2 = 0; o2 < out_dims[2]; ++o2) {
                const int8_t *src = in + o0 * step[0] + o1 * step[1] + o2 * step[2];
                for (o3 = 0; o3 < out_dims[3]; ++o3) {
                    *out++ = src[o3 * step[3]];
                }
            }
        }
    }
    return EDGEC_OK;
}
