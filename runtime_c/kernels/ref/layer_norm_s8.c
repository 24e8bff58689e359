/*
 * layer_norm_s8.c - int8 layer normalization over the last axis (reference kernel).
 *
 * TFLite has no int8 LayerNorm builtin; this is edgec's own integer algorithm, mirrored bit
 * for bit by the golden model (toolchain/golden_transformer.py) and prepared on the host by
 * toolchain/lower/layer_norm.py. Per row of C int8 values x (raw codes; the zero point
 * cancels in x - mean):
 *
 *   1. sum = sum(x), sumsq = sum(x^2)                        int32: |sum| <= 128 C,
 *                                                            sumsq <= 16384 C < 2^28
 *   2. V = C * sumsq - sum^2 = C^2 * var(x)  (exact, >= 0)   int64: V < C^2 2^14 <= 2^40
 *   3. T = V * 4^p + epsilon                                 int64: < 2^57 (p <= 8)
 *      with epsilon = round(C^2 eps / s_in^2 * 4^p): T = 4^p C^2 (var + eps / s_in^2),
 *      the variance in input units with LayerNorm's eps added.
 *   4. 1 / sqrt(T) ~= m * 2^(e - 31) by TFLite's GetInvSqrtQuantizedMultiplierExp
 *      (kernels/internal/common.h; Newton-Raphson in gemmlowp fixed point), extended to an
 *      int64 input (the same "divide by 4 while >= 2^29" normalization loop).
 *   5. r = C * x - sum = C (x - mean)                        |r| <= 255 C < 2^21
 *      z = round(r * m * 2^(e + p + F - 31))                 the normalized value
 *      (x - mean) / sqrt(var + eps) in Q.F (F = 16): |r * m| < 2^52, and |z| <=
 *      sqrt(C - 1) 2^F < 2^23 (a value is at most sqrt(C - 1) deviations from the mean).
 *   6. y = clamp(zp_out + round((z * gamma[c] + beta[c] * 2^F) / 2^(F + G)), -128, 127)
 *      with gamma[c] = round(gamma_c / s_out * 2^G), beta[c] = round(beta_c / s_out * 2^G)
 *      (int32, G chosen per tensor on the host): |z * gamma| < 2^54 in int64.
 *
 * Every rounding is half away from zero. Bounds hold for 1 <= C <= 8192 (checked here and
 * by the lowering). The row statistics are computed before any output is written, and
 * output c is written after input c is read: in-place use (out == in) is allowed.
 */
#include "edgec_kernels.h"
#include "edgec_fixedpoint.h"
#include "edgec_layer_norm.h"

#include <stddef.h>

edgec_status edgec_layer_norm_s8(const edgec_layer_norm_params *p, const int8_t *in,
                                 int8_t *out)
{
    int32_t row, c;

    if (p == NULL || in == NULL || out == NULL || p->gamma == NULL || p->beta == NULL) {
        return EDGEC_ERR_ARG;
    }
    if (!edgec_layer_norm_params_ok(p)) {
        return EDGEC_ERR_ARG;
    }

    for (row = 0; row < p->rows; ++row) {
        const int8_t *x = in + row * p->depth;
        int8_t *y = out + row * p->depth;
        int32_t sum = 0;
        int32_t sumsq = 0;
        int32_t multiplier, norm_shift;

        for (c = 0; c < p->depth; ++c) {
            sum += x[c];
            sumsq += (int32_t)x[c] * x[c];
        }
        if (edgec_layer_norm_row(p, sum, sumsq, &multiplier, &norm_shift) != EDGEC_OK) {
            return EDGEC_ERR_ARG;
        }
        for (c = 0; c < p->depth; ++c) {
            const int32_t r = p->depth * (int32_t)x[c] - sum;
            const int64_t z = rshift_round_s64((int64_t)r * multiplier, (int)norm_shift);
            const int64_t acc = z * p->gamma[c] +
                                (int64_t)p->beta[c] * ((int64_t)1 << LAYER_NORM_FRAC_BITS);
            int64_t q = rshift_round_s64(acc, LAYER_NORM_FRAC_BITS + (int)p->output_shift) +
                        p->output_offset;
            q = q < -128 ? -128 : (q > 127 ? 127 : q);
            y[c] = (int8_t)q;
        }
    }
    return EDGEC_OK;
}
