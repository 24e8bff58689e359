/*
 * lut_s8.c - int8 -> int8 through a 256-entry table (reference kernel for LOGISTIC, TANH).
 *
 * TFLite's int8 LOGISTIC and TANH, in kReference as in kGenericOptimized, evaluate a table
 * built at Prepare time (tensorflow/lite/kernels/activations.cc: PopulateLookupTable, then
 * EvalUsingLookupTable). edgec builds the same table on the host with the same float
 * arithmetic (toolchain/lower/activations.py), so this kernel is only the lookup.
 */
#include "edgec_kernels.h"

#include <stddef.h>

edgec_status edgec_lut_s8(const edgec_lut_params *p, const int8_t *in, int8_t *out)
{
    int32_t i;

    if (p == NULL || p->table == NULL || in == NULL || out == NULL || p->size < 0) {
        return EDGEC_ERR_ARG;
    }
    for (i = 0; i < p->size; ++i) {
        out[i] = p->table[(uint8_t)in[i]];
    }
    return EDGEC_OK;
}
