/*
 * edgec_gemm2x2.h - the 2 x 2 int16 matrix-product micro-kernels of the optimized kernels
 * (two rows of activations x two output channels per inner loop, SMLAD), shared by the
 * convolutions (conv2d_gemm_s8.c) and the token-matrix kernels (tokens_opt_s8.c).
 *
 * The two activation rows A and B are in scratch as int16 pairs in SXTB16 order: per block
 * of 4 depth values, {xA0, xA2}, {xA1, xA3}, {xB0, xB2}, {xB1, xB3} (one LDM); expand_row
 * writes one of them. The weights are edgec_conv2d_opt_params' layout (pairs of channels,
 * blocks of 4; int8, or int16 pairs for the _fast kernels).
 */
#ifndef EDGEC_GEMM2X2_H
#define EDGEC_GEMM2X2_H

#include "edgec_opt.h"

#if defined(__GNUC__)
#define EDGEC_GEMM_INLINE __attribute__((always_inline)) inline
#define EDGEC_GEMM_CALLED __attribute__((noinline, unused)) /* one copy, called */
#else
#define EDGEC_GEMM_INLINE inline
#define EDGEC_GEMM_CALLED inline
#endif

/* ---- the 2 x 2 micro-kernels ------------------------------------------------------------ */

/*
 * acc += {pixel A . channel 2j, pixel A . channel 2j+1, pixel B . 2j, pixel B . 2j+1} over
 * n8 iterations of 8 depth values. x: the two expanded rows (4 words per block of 4);
 * w: the channel pair's packed weights.
 */
static EDGEC_GEMM_INLINE void gemm2x2_w16(const int32_t *x, const int32_t *w, int32_t n8,
                                            int32_t acc[4])
{
#if EDGEC_OPT_ASM
    int32_t a0 = acc[0], a1 = acc[1], b0 = acc[2], b1 = acc[3], w0, w1;
    /* r4, r5, r6, r8: one LDM of the 4 activation words (a register list is ascending). */
    __asm__ volatile(
        "1:\n\t"
        "ldmia  %[x]!, {r4, r5, r6, r8}\n\t"
        "ldrd   %[w0], %[w1], [%[w]], #8\n\t"
        "smlad  %[a0], r4, %[w0], %[a0]\n\t"
        "smlad  %[a0], r5, %[w1], %[a0]\n\t"
        "smlad  %[b0], r6, %[w0], %[b0]\n\t"
        "smlad  %[b0], r8, %[w1], %[b0]\n\t"
        "ldrd   %[w0], %[w1], [%[w]], #8\n\t"
        "smlad  %[a1], r4, %[w0], %[a1]\n\t"
        "smlad  %[a1], r5, %[w1], %[a1]\n\t"
        "smlad  %[b1], r6, %[w0], %[b1]\n\t"
        "smlad  %[b1], r8, %[w1], %[b1]\n\t"
        "ldmia  %[x]!, {r4, r5, r6, r8}\n\t"
        "ldrd   %[w0], %[w1], [%[w]], #8\n\t"
        "smlad  %[a0], r4, %[w0], %[a0]\n\t"
        "smlad  %[a0], r5, %[w1], %[a0]\n\t"
        "smlad  %[b0], r6, %[w0], %[b0]\n\t"
        "smlad  %[b0], r8, %[w1], %[b0]\n\t"
        "ldrd   %[w0], %[w1], [%[w]], #8\n\t"
        "smlad  %[a1], r4, %[w0], %[a1]\n\t"
        "smlad  %[a1], r5, %[w1], %[a1]\n\t"
        "smlad  %[b1], r6, %[w0], %[b1]\n\t"
        "smlad  %[b1], r8, %[w1], %[b1]\n\t"
        "subs   %[n], %[n], #1\n\t"
        "bne    1b\n\t"
        : [a0] "+r"(a0), [a1] "+r"(a1), [b0] "+r"(b0), [b1] "+r"(b1), [x] "+r"(x),
          [w] "+r"(w), [n] "+r"(n8), [w0] "=&r"(w0), [w1] "=&r"(w1)
        :
        : "r4", "r5", "r6", "r8", "cc", "memory");
    acc[0] = a0;
    acc[1] = a1;
    acc[2] = b0;
    acc[3] = b1;
#else
    int32_t a0 = acc[0], a1 = acc[1], b0 = acc[2], b1 = acc[3], blk;
    for (blk = 0; blk < 2 * n8; ++blk, x += 4, w += 4) {
        a0 += edgec_opt_dot2(x[0], w[0]) + edgec_opt_dot2(x[1], w[1]);
        b0 += edgec_opt_dot2(x[2], w[0]) + edgec_opt_dot2(x[3], w[1]);
        a1 += edgec_opt_dot2(x[0], w[2]) + edgec_opt_dot2(x[1], w[3]);
        b1 += edgec_opt_dot2(x[2], w[2]) + edgec_opt_dot2(x[3], w[3]);
    }
    acc[0] = a0;
    acc[1] = a1;
    acc[2] = b0;
    acc[3] = b1;
#endif
}

static EDGEC_GEMM_INLINE void gemm2x2_w8(const int32_t *x, const int32_t *w, int32_t n8,
                                           int32_t acc[4])
{
#if EDGEC_OPT_ASM
    int32_t a0 = acc[0], a1 = acc[1], b0 = acc[2], b1 = acc[3], w0, w1, t;
    __asm__ volatile(
        "1:\n\t"
        "ldmia  %[x]!, {r4, r5, r6, r8}\n\t"
        "ldrd   %[w0], %[w1], [%[w]], #8\n\t"
        "sxtb16 %[t], %[w0], ror #8\n\t"
        "sxtb16 %[w0], %[w0]\n\t"
        "smlad  %[a0], r4, %[w0], %[a0]\n\t"
        "smlad  %[a0], r5, %[t], %[a0]\n\t"
        "smlad  %[b0], r6, %[w0], %[b0]\n\t"
        "smlad  %[b0], r8, %[t], %[b0]\n\t"
        "sxtb16 %[t], %[w1], ror #8\n\t"
        "sxtb16 %[w1], %[w1]\n\t"
        "smlad  %[a1], r4, %[w1], %[a1]\n\t"
        "smlad  %[a1], r5, %[t], %[a1]\n\t"
        "smlad  %[b1], r6, %[w1], %[b1]\n\t"
        "smlad  %[b1], r8, %[t], %[b1]\n\t"
        "ldmia  %[x]!, {r4, r5, r6, r8}\n\t"
        "ldrd   %[w0], %[w1], [%[w]], #8\n\t"
        "sxtb16 %[t], %[w0], ror #8\n\t"
        "sxtb16 %[w0], %[w0]\n\t"
        "smlad  %[a0], r4, %[w0], %[a0]\n\t"
        "smlad  %[a0], r5, %[t], %[a0]\n\t"
        "smlad  %[b0], r6, %[w0], %[b0]\n\t"
        "smlad  %[b0], r8, %[t], %[b0]\n\t"
        "sxtb16 %[t], %[w1], ror #8\n\t"
        "sxtb16 %[w1], %[w1]\n\t"
        "smlad  %[a1], r4, %[w1], %[a1]\n\t"
        "smlad  %[a1], r5, %[t], %[a1]\n\t"
        "smlad  %[b1], r6, %[w1], %[b1]\n\t"
        "smlad  %[b1], r8, %[t], %[b1]\n\t"
        "subs   %[n], %[n], #1\n\t"
        "bne    1b\n\t"
        : [a0] "+r"(a0), [a1] "+r"(a1), [b0] "+r"(b0), [b1] "+r"(b1), [x] "+r"(x),
          [w] "+r"(w), [n] "+r"(n8), [w0] "=&r"(w0), [w1] "=&r"(w1), [t] "=&r"(t)
        :
        : "r4", "r5", "r6", "r8", "cc", "memory");
    acc[0] = a0;
    acc[1] = a1;
    acc[2] = b0;
    acc[3] = b1;
#else
    int32_t a0 = acc[0], a1 = acc[1], b0 = acc[2], b1 = acc[3], blk, k;
    for (blk = 0; blk < 2 * n8; ++blk, x += 4, w += 2) {
        int32_t c0[4], c1[4], xa[4], xb[4];
        /* {x0, x2}, {x1, x3} back to x0..x3 */
        xa[0] = edgec_opt_lo16(x[0]); xa[2] = edgec_opt_hi16(x[0]);
        xa[1] = edgec_opt_lo16(x[1]); xa[3] = edgec_opt_hi16(x[1]);
        xb[0] = edgec_opt_lo16(x[2]); xb[2] = edgec_opt_hi16(x[2]);
        xb[1] = edgec_opt_lo16(x[3]); xb[3] = edgec_opt_hi16(x[3]);
        for (k = 0; k < 4; ++k) { /* byte k of the word: bits 8k..8k+7, as SXTB16 reads it */
            c0[k] = (int32_t)(int8_t)(uint8_t)(((uint32_t)w[0] >> (8 * k)) & 0xFFu);
            c1[k] = (int32_t)(int8_t)(uint8_t)(((uint32_t)w[1] >> (8 * k)) & 0xFFu);
        }
        for (k = 0; k < 4; ++k) {
            a0 += xa[k] * c0[k];
            b0 += xb[k] * c0[k];
            a1 += xa[k] * c1[k];
            b1 += xb[k] * c1[k];
        }
    }
    acc[0] = a0;
    acc[1] = a1;
    acc[2] = b0;
    acc[3] = b1;
#endif
}

/*
 * One pixel's `depth` int8 activations (from any address) + offset into row slot `dst`
 * (word 0 and 1 of each block of 4 words), zero beyond depth up to depth_pad.
 */
static EDGEC_GEMM_CALLED void expand_row(int32_t *dst, const int8_t *src, int32_t depth,
                                         int32_t depth_pad, int32_t offset)
{
    int32_t k = 0;
    for (; k + 4 <= depth; k += 4, dst += 4) {
        edgec_opt_expand4(edgec_opt_read_s8x4(src + k), offset, &dst[0], &dst[1]);
    }
    if (k < depth) { /* a partial block: the missing values are -offset, i.e. 0 after it */
        int8_t tail[4];
        int32_t i;
        for (i = 0; i < 4; ++i) {
            tail[i] = (int8_t)(k + i < depth ? src[k + i] : -offset);
        }
        edgec_opt_expand4(edgec_opt_read_s8x4(tail), offset, &dst[0], &dst[1]);
        k += 4;
        dst += 4;
    }
    for (; k < depth_pad; k += 4, dst += 4) {
        dst[0] = 0;
        dst[1] = 0;
    }
}

#endif /* EDGEC_GEMM2X2_H */
