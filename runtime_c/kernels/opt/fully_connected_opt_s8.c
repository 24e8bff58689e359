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
static inline void dot4_w16(const int8_t *x, const int32_t **w, int32_t blocks, int32_t acc[4])
{
#if EDGEC_OPT_DSP
    int32_t a0 = acc[0], a1 = acc[1], a2 = acc[2], a3 = acc[3], xe, xo;
    const int32_t *wp = *w;
    if (blocks & 1) { /* one block, so that the loop below runs two per iteration */
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
    blocks >>= 1;
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

static inline void dot4_w8(const int8_t *x, const int32_t **w, int32_t blocks, int32_t acc[4])
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

static EDGEC_ALWAYS_INLINE edgec_status fc_opt(const edgec_fully_connected_opt_params *p,
                                               const int8_t *in, int8_t *out, int w16)
{
    int32_t row, oc, full, tail;
    if (p == NULL || in == NULL || out == NULL || p->weights == NULL || p->rq == NULL) {
        return EDGEC_ERR_ARG;
    }
    if (p->rows < 0 || p->in_depth < 1 || p->out_depth < 1 || p->act_min > p->act_max ||
        p->depth_pad != ((p->in_depth + 3) & ~3)) {
        return EDGEC_ERR_ARG;
    }
    full = p->in_depth / 4;
    tail = p->in_depth - 4 * full;
    for (row = 0; row < p->rows; ++row) {
        const int8_t *x = in + row * p->in_depth;
        int8_t *y = out + row * p->out_depth;
        const int32_t *w = p->weights;
        for (oc = 0; oc < p->out_depth; oc += 4) {
            int32_t acc[4] = {0, 0, 0, 0};
            int32_t j;
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
            for (j = 0; j < 4 && oc + j < p->out_depth; ++j) {
                const int32_t *q = p->rq + 4 * (oc + j);
                y[oc + j] = (int8_t)edgec_opt_requant(acc[j], q, p->flags, p->output_offset,
                                                      p->act_min, p->act_max, 1);
            }
        }
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
