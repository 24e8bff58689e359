/*
 * layer_norm_opt_s8.c - int8 layer normalization over the last axis (optimized kernel):
 * the bytes of edgec_layer_norm_s8, from the same parameters.
 *
 * The row sums take four values per word (SXTB16, SMLAD: x^2 and x * 1 pairwise); the
 * per-row inverse square root is the reference's (edgec_layer_norm.h). Per value, the two
 * roundings half away from zero are done without branches, as floor((v + half - [v < 0])
 * / 2^n) (the same integer: for v < 0, -floor((-v + half) / 2^n) = ceil((v - half) / 2^n)
 * = floor((v + half - 1) / 2^n)), and the normalized value z (|z| < 2^23, layer_norm_s8.c)
 * is multiplied by gamma as an int32 (one SMULL). Where a row's bound shows that z and
 * the output before its clamp fit int32 (always, in practice), only their word is formed
 * out of the 64-bit sums; otherwise the row runs on the reference's int64 values.
 *
 * In place (out == in) as the reference: a row's sums are taken before any of its
 * outputs is written, and output c after input c is read.
 */
#include "edgec_kernels_opt.h"
#include "edgec_opt.h"
#include "edgec_layer_norm.h"

#include <stddef.h>

/* sum(x) and sum(x^2) of a row of n values (from any address) */
static void row_sums(const int8_t *x, int32_t n, int32_t *sum, int32_t *sumsq)
{
    int32_t s = 0, q = 0, c = 0;
#if EDGEC_OPT_DSP
    const int32_t ones = 0x00010001;
    for (; c + 4 <= n; c += 4) {
        const int32_t v = edgec_opt_read_s8x4(x + c);
        const int32_t e = __sxtb16(v), o = edgec_opt_sxtb16_ror8(v);
        q = __smlad(e, e, q);
        q = __smlad(o, o, q);
        s = __smlad(e, ones, s);
        s = __smlad(o, ones, s);
    }
#endif
    for (; c < n; ++c) {
        s += x[c];
        q += (int32_t)x[c] * x[c];
    }
    *sum = s;
    *sumsq = q;
}

/* v / 2^n rounded half away from zero (half = 2^(n-1), n in [1, 62], |v| < 2^62) */
static inline int64_t round_shift(int64_t v, int n, int64_t half)
{
    return (v + half + (v >> 63)) >> n;
}

/* The same when the result fits int32: only its word is formed out of the 64-bit sum. */
static inline int32_t round_shift32(int64_t v, int n, int64_t half)
{
    const uint64_t w = (uint64_t)(v + half + (v >> 63));
    const uint32_t lo = (uint32_t)w, hi = (uint32_t)(w >> 32);
    if (n >= 32) {
        return (int32_t)hi >> (n - 32);
    }
    return (int32_t)((lo >> n) | (hi << (32 - n)));
}

/* max |v| over n int32 values (as int64: |INT32_MIN| fits) */
static int64_t max_abs(const int32_t *v, int32_t n)
{
    int64_t m = 0;
    int32_t i;
    for (i = 0; i < n; ++i) {
        const int64_t a = v[i] < 0 ? -(int64_t)v[i] : (int64_t)v[i];
        m = a > m ? a : m;
    }
    return m;
}

/*
 * Whether every z and output of a row fit int32 (round_shift32 applies): |r| <= 255 C,
 * so |z| <= 255 C m / 2^n1 + 1 (m >= 0) and |z gamma + beta 2^16| <= that times max
 * |gamma| + max |beta| 2^16 (< 2^63: |z| < 2^30, |gamma| <= 2^31); with half2 added,
 * below 2^(30 + n2), so that the output plus the zero point fits int32 too.
 */
static int row_is_narrow(int32_t depth, int32_t multiplier, int n1, int n2, int64_t gmax,
                         int64_t bmax)
{
    const int64_t zmax = (((int64_t)255 * depth * multiplier) >> n1) + 1;
    int64_t amax;
    if (multiplier < 0 || zmax >= ((int64_t)1 << 30)) {
        return 0;
    }
    amax = zmax * gmax + bmax * 65536 + ((int64_t)1 << (n2 - 1));
    return 30 + n2 >= 63 || amax < ((int64_t)1 << (30 + n2));
}

edgec_status edgec_layer_norm_opt_s8(const edgec_layer_norm_params *p, const int8_t *in,
                                     int8_t *out)
{
    int32_t row, c, depth, zp;
    int n2;
    int64_t half2, gmax, bmax;
    const int32_t *gamma, *beta;

    if (p == NULL || in == NULL || out == NULL || p->gamma == NULL || p->beta == NULL) {
        return EDGEC_ERR_ARG;
    }
    if (!edgec_layer_norm_params_ok(p)) {
        return EDGEC_ERR_ARG;
    }
    /* the params in locals: the int8 stores could alias them */
    depth = p->depth;
    zp = p->output_offset;
    gamma = p->gamma;
    beta = p->beta;
    n2 = LAYER_NORM_FRAC_BITS + (int)p->output_shift;
    half2 = (int64_t)1 << (n2 - 1);
    gmax = max_abs(gamma, depth);
    bmax = max_abs(beta, depth);
    for (row = 0; row < p->rows; ++row) {
        const int8_t *x = in + row * depth;
        int8_t *y = out + row * depth;
        int32_t sum, sumsq, multiplier, norm_shift;
        int64_t half1;
        int n1;

        row_sums(x, depth, &sum, &sumsq);
        if (edgec_layer_norm_row(p, sum, sumsq, &multiplier, &norm_shift) != EDGEC_OK) {
            return EDGEC_ERR_ARG;
        }
        n1 = (int)norm_shift;
        half1 = (int64_t)1 << (n1 - 1);
        if (row_is_narrow(depth, multiplier, n1, n2, gmax, bmax)) {
            for (c = 0; c < depth; ++c) {
                const int32_t r = depth * (int32_t)x[c] - sum;
                const int32_t z = round_shift32((int64_t)r * multiplier, n1, half1);
                const int64_t acc = (int64_t)z * gamma[c] + (int64_t)beta[c] * 65536;
                y[c] = (int8_t)edgec_opt_sat8(round_shift32(acc, n2, half2) + zp);
            }
            continue;
        }
        for (c = 0; c < depth; ++c) { /* the reference's int64 values */
            const int32_t r = depth * (int32_t)x[c] - sum;
            const int64_t z = round_shift((int64_t)r * multiplier, n1, half1);
            const int64_t acc = z * gamma[c] + (int64_t)beta[c] * 65536;
            const int64_t q = round_shift(acc, n2, half2) + zp;
            y[c] = (int8_t)(q < -128 ? -128 : (q > 127 ? 127 : q));
        }
    }
    return EDGEC_OK;
}
