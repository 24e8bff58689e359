/*
 * concat_s8.c - int8 concatenation of N tensors along one axis (reference kernel).
 *
 * The loop is TFLite's reference_ops::Concatenation / ConcatenationWithScaling
 * (tensorflow/lite/kernels/internal/reference/concatenation.h): the tensors are viewed as
 * [outer_size, axis_size_i, inner_size] and, for each outer index, each input's block of
 * axis_size_i * inner_size values is appended to the output in turn.
 *
 * An input whose quantization differs from the output's is requantized with the fixed-point
 * branch of ConcatenationWithScaling:
 *     out = clamp(output_offset + MBQM(in + input_offset, multiplier, shift), -128, 127),
 * which is also exactly LiteRT's int8 QUANTIZE (reference_ops::Requantize) followed by a
 * same-scale CONCATENATION, the form the TFLite converter emits (its int8 CONCATENATION
 * requires equal scales). Inputs with the output's quantization (multiplier 2^30, shift 1,
 * input_offset == -output_offset: the exact identity) are copied.
 */
#include "edgec_kernels.h"
#include "edgec_fixedpoint.h"

#include <stddef.h>
#include <string.h>

static int is_identity(const edgec_concat_params *p, int32_t i)
{
    return p->multiplier[i] == ((int32_t)1 << 30) && p->shift[i] == 1 &&
           p->input_offset[i] == -p->output_offset;
}

edgec_status edgec_concat_s8(const edgec_concat_params *p, const int8_t *const *inputs,
                             int8_t *out)
{
    int32_t outer, i, j;

    if (p == NULL || inputs == NULL || out == NULL || p->num_inputs < 1 ||
        p->outer_size < 0 || p->inner_size < 0 || p->axis_sizes == NULL ||
        p->input_offset == NULL || p->multiplier == NULL || p->shift == NULL) {
        return EDGEC_ERR_ARG;
    }
    for (i = 0; i < p->num_inputs; ++i) {
        if (inputs[i] == NULL || p->axis_sizes[i] < 0 || p->shift[i] < -31 ||
            p->shift[i] > 22) {
            return EDGEC_ERR_ARG;
        }
    }
    for (outer = 0; outer < p->outer_size; ++outer) {
        for (i = 0; i < p->num_inputs; ++i) {
            const int32_t copy_size = p->axis_sizes[i] * p->inner_size;
            const int8_t *src = inputs[i] + outer * copy_size;
            if (is_identity(p, i)) {
                memcpy(out, src, (size_t)copy_size);
            } else {
                for (j = 0; j < copy_size; ++j) {
                    /* |in + offset| <= 255 and shift <= 22: the left shift cannot overflow */
                    int32_t value = edgec_add_wrap(
                        edgec_mbqm((int32_t)src[j] + p->input_offset[i], p->multiplier[i],
                                   p->shift[i]),
                        p->output_offset);
                    value = edgec_max_i32(value, -128);
                    value = edgec_min_i32(value, 127);
                    out[j] = (int8_t)value;
                }
            }
            out += copy_size;
        }
    }
    return EDGEC_OK;
}
