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

#include <stddef.h>

#define LAYER_NORM_FRAC_BITS 16 /* F: fractional bits of the normalized value z */
#define LAYER_NORM_MAX_DEPTH 8192

/* x / 2^n rounded half away from zero, n in [1, 62]. */
static int64_t rshift_round_s64(int64_t x, int n)
{
    const int64_t half = (int64_t)1 << (n - 1);
    return x >= 0 ? (x + half) >> n : -((-x + half) >> n);
}

/*
 * GetInvSqrtQuantizedMultiplierExp(input, reverse_shift = -1) for an int64 input:
 * 1 / sqrt(input) ~= *multiplier * 2^(*shift - 31). Inputs <= 1 give (INT32_MAX, 0), as in
 * TFLite.
 */
static void inv_sqrt_s64(int64_t input, int32_t *multiplier, int32_t *shift)
{
    int32_t out_shift = 11;
    int32_t in32, half_input, x;
    int left_shift_bit_pairs, i;
    const int32_t half_three = ((int32_t)1 << 28) + ((int32_t)1 << 27); /* 1.5 in Q3.28 */

    if (input <= 1) {
        *multiplier = EDGEC_INT32_MAX;
        *shift = 0;
        return;
    }
    while (input >= ((int64_t)1 << 29)) {
        input /= 4;
        ++out_shift;
    }
    in32 = (int32_t)input;
    left_shift_bit_pairs = (edgec_clz32((uint32_t)in32) - 1) / 2 - 1;
    out_shift -= left_shift_bit_pairs;
    in32 <<= 2 * left_shift_bit_pairs; /* now in [2^27, 2^29) */

    /* Newton-Raphson for 1 / sqrt(a), a = in32 / 2^29 in [1/4, 1), in Q3.28 from x = 1 */
    half_input = edgec_rdbpot(in32 >> 1, 1);
    x = (int32_t)1 << 28;
    for (i = 0; i < 5; ++i) {
        const int32_t x3 = edgec_sat_shl(edgec_srdhm(edgec_srdhm(x, x), x), 6);
        x = edgec_sat_shl(edgec_srdhm(half_three, x) - edgec_srdhm(half_input, x3), 3);
    }
    x = edgec_srdhm(x, 1518500250); /* times sqrt(2) / 2 in Q0.31 */
    if (out_shift < 0) {
        x = edgec_shl_wrap(x, (int)-out_shift);
        out_shift = 0;
    }
    *multiplier = x;
    *shift = -out_shift;
}

edgec_status edgec_layer_norm_s8(const edgec_layer_norm_params *p, const int8_t *in,
                                 int8_t *out)
{
    int32_t row, c;

    if (p == NULL || in == NULL || out == NULL || p->gamma == NULL || p->beta == NULL) {
        return EDGEC_ERR_ARG;
    }
    if (p->rows < 0 || p->depth < 1 || p->depth > LAYER_NORM_MAX_DEPTH ||
        p->variance_shift < -15 || p->variance_shift > 8 || p->epsilon < 0 ||
        p->output_shift < 0 || p->output_shift > 30) {
        return EDGEC_ERR_ARG;
    }

    for (row = 0; row < p->rows; ++row) {
        const int8_t *x = in + row * p->depth;
        int8_t *y = out + row * p->depth;
        int32_t sum = 0;
        int32_t sumsq = 0;
        int32_t multiplier, shift, norm_shift;
        int64_t variance;

        for (c = 0; c < p->depth; ++c) {
            sum += x[c];
            sumsq += (int32_t)x[c] * x[c];
        }
        variance = (int64_t)p->depth * sumsq - (int64_t)sum * sum;
        if (p->variance_shift >= 0) {
            variance = variance * ((int64_t)1 << (2 * p->variance_shift));
        } else {
            variance = rshift_round_s64(variance, -2 * p->variance_shift);
        }
        inv_sqrt_s64(variance + p->epsilon, &multiplier, &shift);
        /* z = r * m * 2^(shift + p + F - 31): a right shift by norm_shift in [7, 58] */
        norm_shift = 31 - shift - p->variance_shift - LAYER_NORM_FRAC_BITS;
        if (norm_shift < 1 || norm_shift > 62) {
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
