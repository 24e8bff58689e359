/*
 * fully_connected_s8.c - int8 fully connected layer, per-channel quantized
 * (reference kernel).
 *
 * The int32 accumulation of TFLite's reference_integer_ops::FullyConnected[PerChannel]
 * (tensorflow/lite/kernels/internal/reference/integer_ops/fully_connected.h): same sums,
 * bias and clamp. The requantization follows what LiteRT's FULLY_CONNECTED computes for
 * int8 with its reference op resolver (BUILTIN_REF): round(acc * s_in * s_w / s_out), ONE
 * rounding, half away from zero, here exact in 64-bit integers on the Q31 multiplier
 * (edgec_mul_round_away). Verified against LiteRT 2.3 on exact ties and random data
 * (tests/test_kernels_host.py). TFLite Micro's reference FC instead uses the
 * double-rounding MultiplyByQuantizedMultiplier and can differ by one step near ties.
 */
#include "edgec_kernels.h"
#include "edgec_fixedpoint.h"

#include <stddef.h>

edgec_status edgec_fully_connected_s8(const edgec_fully_connected_params *p,
                                      const int8_t *in, int8_t *out)
{
    int32_t row, out_c, d;

    if (p == NULL || in == NULL || out == NULL || p->weights == NULL ||
        p->output_multiplier == NULL || p->output_shift == NULL) {
        return EDGEC_ERR_ARG;
    }
    if (p->rows < 0 || p->in_depth < 1 || p->out_depth < 1 || p->act_min > p->act_max) {
        return EDGEC_ERR_ARG;
    }

    for (row = 0; row < p->rows; ++row) {
        const int8_t *x = in + row * p->in_depth;
        for (out_c = 0; out_c < p->out_depth; ++out_c) {
            const int8_t *w = p->weights + out_c * p->in_depth;
            /* in_depth products of at most 128 * 255 each: no overflow below 2^16 inputs. */
            int32_t acc = 0;
            for (d = 0; d < p->in_depth; ++d) {
                acc += (int32_t)w[d] * ((int32_t)x[d] + p->input_offset);
            }
            if (p->bias != NULL) {
                acc += p->bias[out_c];
            }
            acc = edgec_mul_round_away(acc, p->output_multiplier[out_c], p->output_shift[out_c]);
            acc = edgec_add_wrap(acc, p->output_offset);
            acc = edgec_max_i32(acc, p->act_min);
            acc = edgec_min_i32(acc, p->act_max);
            out[row * p->out_depth + out_c] = (int8_t)acc;
        }
    }
    return EDGEC_OK;
}
