/*
 * fully_connected_opt_s8.c - FULLY_CONNECTED, four output channels per pass (optimized):
 *   edgec_fully_connected_opt_s8    int8 weights
 *   edgec_fully_connected_fast_s8   int16 weights (twice the flash, fewer instructions)
 * Bit-exact with edgec_fully_connected_s8 (LiteRT's int8 FULLY_CONNECTED, single rounding).
 *
 * The input offset is folded into the bias at compile time, so the activations are used
 * as they are: each word of 4 int8 activations becomes two int16 pairs with SXTB16 and
 * feeds 4 channels x 2 SMLAD. No scratch; the weights stream from flash once.
 */
#include "edgec_kernels_opt.h"
#include "edgec_opt.h"

#include <stddef.h>

#if defined(__GNUC__)
#define EDGEC_ALWAYS_INLINE __attribute__((always_inline)) inline
#else
#define EDGEC_ALWAYS_INLINE inline
#endif

/*
 * acc[0..3] += the dot products of `blocks` blocks of 4 activations (from any address)
 * with 4 channels' packed weights; advances *w past them.
 */
static EDGEC_ALWAYS_INLINE void dot4_w16(const int8_t *x, const int32_t **w, int32_t blocks,
                                         int32_t acc[4])
{
#if EDGEC_OPT_ASM
    int32_t a0 = acc[0], a1 = acc[1], a2 = acc[2], a3 = acc[3], xe, xo;
    const int32_t *wp = *w;
    for (; (blocks & 3) != 0; --blocks) { /* single blocks, then four per iteration */
        __asm__ volatile(
            "ldr    %[xe], [%[x]], #4\n\t"
            "sxtb16 %[xo], %[xe], ror #8\n\t"
            "sxtb16 %[xe], %[xe]\n\t"
            "ldmia  %[w]!, {r4, r5, r6, r8}\n\t"
            "smlad  %[a0], %[xe], r4, %[a0]\n\t"
            "smlad  %[a0], %[xo], r5, %[a0]\n\t"
            "smlad  %[a1], %[xe], r6, %[a1]\n\t"
            "smlad  %[a1], %[xo], r8, %[a1]\n\t"
            "ldmia  %[w]!, {r4, r5, r6, r8}\n\t"
            "smlad  %[a2], %[xe], r4, %[a2]\n\t"
            "smlad  %[a2], %[xo], r5, %[a2]\n\t"
            "smlad  %[a3], %[xe], r6, %[a3]\n\t"
            "smlad  %[a3], %[xo], r8, %[a3]\n\t"
            : [a0] "+r"(a0), [a1] "+r"(a1), [a2] "+r"(a2), [a3] "+r"(a3), [x] "+r"(x),
              [w] "+r"(wp), [xe] "=&r"(xe), [xo] "=&r"(xo)
            :
            : "r4", "r5", "r6", "r8", "memory");
    }
    blocks >>= 2;
    if (blocks > 0) {
        __asm__ volatile(
            "1:\n\t"
            "ldr    %[xe], [%[x]], #4\n\t"
            "sxtb16 %[xo], %[xe], ror #8\n\t"
            "sxtb16 %[xe], %[xe]\n\t"
            "ldmia  %[w]!, {r4, r5, r6, r8}\n\t"
            "smlad  %[a0], %[xe], r4, %[a0]\n\t"
            "smlad  %[a0], %[xo], r5, %[a0]\n\t"
            "smlad  %[a1], %[xe], r6, %[a1]\n\t"
            "smlad  %[a1], %[xo], r8, %[a1]\n\t"
            "ldmia  %[w]!, {r4, r5, r6, r8}\n\t"
            "smlad  %[a2], %[xe], r4, %[a2]\n\t"
            "smlad  %[a2], %[xo], r5, %[a2]\n\t"
            "smlad  %[a3], %[xe], r6, %[a3]\n\t"
            "smlad  %[a3], %[xo], r8, %[a3]\n\t"
            "ldr    %[xe], [%[x]], #4\n\t"
            "sxtb16 %[xo], %[xe], ror #8\n\t"
            "sxtb16 %[xe], %[xe]\n\t"
            "ldmia  %[w]!, {r4, r5, r6, r8}\n\t"
            "smlad  %[a0], %[xe], r4, %[a0]\n\t"
            "smlad  %[a0], %[xo], r5, %[a0]\n\t"
            "smlad  %[a1], %[xe], r6, %[a1]\n\t"
            "smlad  %[a1], %[xo], r8, %[a1]\n\t"
            "ldmia  %[w]!, {r4, r5, r6, r8}\n\t"
            "smlad  %[a2], %[xe], r4, %[a2]\n\t"
            "smlad  %[a2], %[xo], r5, %[a2]\n\t"
            "smlad  %[a3], %[xe], r6, %[a3]\n\t"
            "smlad  %[a3], %[xo], r8, %[a3]\n\t"
            "ldr    %[xe], [%[x]], #4\n\t"
            "sxtb16 %[xo], %[xe], ror #8\n\t"
            "sxtb16 %[xe], %[xe]\n\t"
            "ldmia  %[w]!, {r4, r5, r6, r8}\n\t"
            "smlad  %[a0], %[xe], r4, %[a0]\n\t"
            "smlad  %[a0], %[xo], r5, %[a0]\n\t"
            "smlad  %[a1], %[xe], r6, %[a1]\n\t"
            "smlad  %[a1], %[xo], r8, %[a1]\n\t"
            "ldmia  %[w]!, {r4, r5, r6, r8}\n\t"
            "smlad  %[a2], %[xe], r4, %[a2]\n\t"
            "smlad  %[a2], %[xo], r5, %[a2]\n\t"
            "smlad  %[a3], %[xe], r6, %[a3]\n\t"
            "smlad  %[a3], %[xo], r8, %[a3]\n\t"
            "ldr    %[xe], [%[x]], #4\n\t"
            "sxtb16 %[xo], %[xe], ror #8\n\t"
            "sxtb16 %[xe], %[xe]\n\t"
            "ldmia  %[w]!, {r4, r5, r6, r8}\n\t"
            "smlad  %[a0], %[xe], r4, %[a0]\n\t"
            "smlad  %[a0], %[xo], r5, %[a0]\n\t"
            "smlad  %[a1], %[xe], r6, %[a1]\n\t"
            "smlad  %[a1], %[xo], r8, %[a1]\n\t"
            "ldmia  %[w]!, {r4, r5, r6, r8}\n\t"
            "smlad  %[a2], %[xe], r4, %[a2]\n\t"
            "smlad  %[a2], %[xo], r5, %[a2]\n\t"
            "smlad  %[a3], %[xe], r6, %[a3]\n\t"
            "smlad  %[a3], %[xo], r8, %[a3]\n\t"
            "subs   %[n], %[n], #1\n\t"
            "bne    1b\n\t"
            : [a0] "+r"(a0), [a1] "+r"(a1), [a2] "+r"(a2), [a3] "+r"(a3), [x] "+r"(x),
              [w] "+r"(wp), [n] "+r"(blocks), [xe] "=&r"(xe), [xo] "=&r"(xo)
            :
            : "r4", "r5", "r6", "r8", "cc", "memory");
    }
    *w = wp;
    acc[0] = a0;
    acc[1] = a1;
    acc[2] = a2;
    acc[3] = a3;
#else
    const int32_t *wp = *w;
    int32_t b, j;
    for (b = 0; b < blocks; ++b, x += 4) {
        int32_t xe, xo;
        edgec_opt_expand4(edgec_opt_read_s8x4(x), 0, &xe, &xo);
        for (j = 0; j < 4; ++j, wp += 2) {
            acc[j] += edgec_opt_lo16(xe) * edgec_opt_lo16(wp[0]) +
                      edgec_opt_hi16(xe) * edgec_opt_hi16(wp[0]) +
                      edgec_opt_lo16(xo) * edgec_opt_lo16(wp[1]) +
                      edgec_opt_hi16(xo) * edgec_opt_hi16(wp[1]);
        }
    }
    *w = wp;
#endif
}

static EDGEC_ALWAYS_INLINE void dot4_w8(const int8_t *x, const int32_t **w, int32_t blocks,
                                        int32_t acc[4])
{
    const int32_t *wp = *w;
    int32_t b, j;
#if EDGEC_OPT_DSP
    int32_t a0 = acc[0], a1 = acc[1], a2 = acc[2], a3 = acc[3];
    for (b = 0; b < blocks; ++b, x += 4, wp += 4) {
        const int32_t xv = edgec_opt_read_s8x4(x);
        const int32_t xe = __sxtb16(xv), xo = edgec_opt_sxtb16_ror8(xv);
        const int32_t w0 = wp[0], w1 = wp[1], w2 = wp[2], w3 = wp[3];
        a0 = __smlad(xe, __sxtb16(w0), a0);
        a0 = __smlad(xo, edgec_opt_sxtb16_ror8(w0), a0);
        a1 = __smlad(xe, __sxtb16(w1), a1);
        a1 = __smlad(xo, edgec_opt_sxtb16_ror8(w1), a1);
        a2 = __smlad(xe, __sxtb16(w2), a2);
        a2 = __smlad(xo, edgec_opt_sxtb16_ror8(w2), a2);
        a3 = __smlad(xe, __sxtb16(w3), a3);
        a3 = __smlad(xo, edgec_opt_sxtb16_ror8(w3), a3);
    }
    (void)j;
    acc[0] = a0;
    acc[1] = a1;
    acc[2] = a2;
    acc[3] = a3;
#else
    for (b = 0; b < blocks; ++b, x += 4) {
        for (j = 0; j < 4; ++j, ++wp) {
            int32_t k;
            for (k = 0; k < 4; ++k) {
                acc[j] += (int32_t)x[k] *
                          (int32_t)(int8_t)(uint8_t)(((uint32_t)*wp >> (8 * k)) & 0xFFu);
            }
        }
    }
#endif
    *w = wp;
}

enum { MODE_FAST = 0, MODE_CLAMP = 1, MODE_EXACT = 2 }; /* as in conv2d_gemm_s8.c */

/* One output: fast mode with the int8 range (SSAT) or a narrower clamp, or exact mode. */
static EDGEC_ALWAYS_INLINE int8_t fc_out(int32_t acc, const int32_t *q, int32_t flags,
                                         int32_t zp, int32_t lo, int32_t hi, int mode)
{
    if (mode == MODE_FAST) {
        return (int8_t)edgec_opt_sat8(edgec_opt_rq_fc(acc + q[0], q[1], q[2], q[3]));
    }
    if (mode == MODE_CLAMP) {
        const int32_t v = edgec_opt_rq_fc(acc + q[0], q[1], q[2], q[3]);
        return (int8_t)edgec_min_i32(edgec_max_i32(v, lo), hi);
    }
    return (int8_t)edgec_opt_requant(acc, q, flags, zp, lo, hi, 1);
}

static EDGEC_ALWAYS_INLINE void fc_rows(const edgec_fully_connected_opt_params *p,
                                        const int8_t *in, int8_t *out, int w16, int mode)
{
    /* the params in locals: the int8 stores could alias them */
    const int32_t rows = p->rows, depth = p->in_depth, cout = p->out_depth;
    const int32_t flags = p->flags, zp = p->output_offset, lo = p->act_min, hi = p->act_max;
    const int32_t full = depth / 4, tail = depth - 4 * (depth / 4);
    const int32_t *weights = p->weights, *rq = p->rq;
    int32_t row, oc, j;
    for (row = 0; row < rows; ++row) {
        const int8_t *x = in + row * depth;
        int8_t *y = out + row * cout;
        const int32_t *w = weights;
        const int32_t *q = rq;
        for (oc = 0; oc < cout; oc += 4, q += 16) {
            int32_t acc[4] = {0, 0, 0, 0};
            if (w16) {
                dot4_w16(x, &w, full, acc);
            } else {
                dot4_w8(x, &w, full, acc);
            }
            if (tail > 0) { /* the last partial block, zero-extended (zero weights there) */
                int8_t last[4] = {0, 0, 0, 0};
                for (j = 0; j < tail; ++j) {
                    last[j] = x[4 * full + j];
                }
                if (w16) {
                    dot4_w16(last, &w, 1, acc);
                } else {
                    dot4_w8(last, &w, 1, acc);
                }
            }
            if (oc + 4 <= cout) {
                const int8_t y0 = fc_out(acc[0], q, flags, zp, lo, hi, mode);
                const int8_t y1 = fc_out(acc[1], q + 4, flags, zp, lo, hi, mode);
                const int8_t y2 = fc_out(acc[2], q + 8, flags, zp, lo, hi, mode);
                const int8_t y3 = fc_out(acc[3], q + 12, flags, zp, lo, hi, mode);
                y[oc] = y0;
                y[oc + 1] = y1;
                y[oc + 2] = y2;
                y[oc + 3] = y3;
            } else {
                for (j = 0; oc + j < cout; ++j) {
                    y[oc + j] = fc_out(acc[j], q + 4 * j, flags, zp, lo, hi, mode);
                }
            }
        }
    }
}

static EDGEC_ALWAYS_INLINE edgec_status fc_opt(const edgec_fully_connected_opt_params *p,
                                               const int8_t *in, int8_t *out, int w16)
{
    if (p == NULL || in == NULL || out == NULL || p->weights == NULL || p->rq == NULL) {
        return EDGEC_ERR_ARG;
    }
    if (p->rows < 0 || p->in_depth < 1 || p->out_depth < 1 || p->act_min > p->act_max ||
        p->depth_pad != ((p->in_depth + 3) & ~3)) {
        return EDGEC_ERR_ARG;
    }
    if (p->flags == 0) {
        fc_rows(p, in, out, w16, MODE_FAST);
    } else if (p->flags == EDGEC_OPT_CLAMP) {
        fc_rows(p, in, out, w16, MODE_CLAMP);
    } else {
        fc_rows(p, in, out, w16, MODE_EXACT);
    }
    return EDGEC_OK;
}

edgec_status edgec_fully_connected_opt_s8(const edgec_fully_connected_opt_params *p,
                                          const int8_t *in, int8_t *out)
{
    return fc_opt(p, in, out, 0);
}

edgec_status edgec_fully_connected_fast_s8(const edgec_fully_connected_opt_params *p,
                                           const int8_t *in, int8_t *out)
{
    return fc_opt(p, in, out, 1);
}
