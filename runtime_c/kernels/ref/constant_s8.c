/*
 * constant_s8.c - copy a constant int8 tensor from flash into the arena (reference kernel).
 *
 * For constants that a kernel reads through the arena like any activation: e.g. a ViT's
 * class token, concatenated in front of the patch tokens (CONCATENATION's inputs are an
 * array of arena tensors). The table is already quantized with the consumer's params.
 */
#include "edgec_kernels.h"

#include <stddef.h>

edgec_status edgec_constant_s8(const edgec_constant_params *p, int8_t *out)
{
    int32_t i;

    if (p == NULL || p->data == NULL || out == NULL || p->size < 0) {
        return EDGEC_ERR_ARG;
    }
    for (i = 0; i < p->size; ++i) {
        out[i] = p->data[i];
    }
    return EDGEC_OK;
}
