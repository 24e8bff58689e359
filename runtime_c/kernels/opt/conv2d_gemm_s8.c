/*
 * conv2d_gemm_s8.c - CONV_2D as an int16 matrix product (optimized kernels):
 *   edgec_conv2d_1x1_s8 / edgec_conv2d_1x1_fast_s8        1x1 filter, no padding
 *   edgec_conv2d_im2col_s8 / edgec_conv2d_im2col_fast_s8  any filter, via im2col
 * Bit-exact with edgec_conv2d_s8 (TFLite reference_integer_ops::ConvPerChannel).
 *
 * Two output pixels at a time, their depth = KH * KW * C_IN activations (+ input_offset,
 * 0 in the padding) are written to scratch as int16 pairs in SXTB16 order: per block of 4
 * depth values, {xA0, xA2}, {xA1, xA3}, {xB0, xB2}, {xB1, xB3} (one LDM). Then for each
 * pair of output channels a 2 x 2 micro-kernel accumulates 4 outputs with SMLAD (two
 * products per instruction) over depth_pad values, and requantizes them. The _fast kernels
 * read int16 weights (LDRD, 11 instructions per 16 MACs), the compact ones int8 weights
 * expanded with SXTB16 (15 per 16 MACs).
 *
 * Accumulation: the int32 sum is the reference's (the same products, in another order;
 * edgec's lowering bounds every partial sum below 2^31).
 */
#include "edgec_kernels_opt.h"
#include "edgec_opt.h"

#include <stddef.h>

#if defined(__GNUC__)
#define EDGEC_ALWAYS_INLINE __attribute__((always_inline)) inline
#else
#define EDGEC_ALWAYS_INLINE inline
#endif

int32_t edgec_conv2d_1x1_s8_scratch_size(const edgec_conv2d_opt_params *p)
{
    return 4 * p->depth_pad; /* two rows of depth_pad int16 values */
}

int32_t edgec_conv2d_im2col_s8_scratch_size(const edgec_conv2d_opt_params *p)
{
    return 5 * p->depth_pad; /* one int8 patch, then two rows of depth_pad int16 values */
}

/* ---- the 2 x 2 micro-kernels ------------------------------------------------------------ */

/*
 * acc = {pixel A . channel 2j, pixel A . channel 2j+1, pixel B . 2j, pixel B . 2j+1} over
 * n8 iterations of 8 depth values. x: the two expanded rows (4 words per block of 4);
 * w: the channel pair's packed weights.
 */
static inline void gemm2x2_w16(const int32_t *x, const int32_t *w, int32_t n8, int32_t acc[4])
{
#if EDGEC_OPT_DSP
    int32_t a0 = 0, a1 = 0, b0 = 0, b1 = 0, w0, w1;
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
    int32_t a0 = 0, a1 = 0, b0 = 0, b1 = 0, blk;
    for (blk = 0; blk < 2 * n8; ++blk, x += 4, w += 4) {
        a0 += edgec_opt_lo16(x[0]) * edgec_opt_lo16(w[0]) + edgec_opt_hi16(x[0]) * edgec_opt_hi16(w[0]) +
              edgec_opt_lo16(x[1]) * edgec_opt_lo16(w[1]) + edgec_opt_hi16(x[1]) * edgec_opt_hi16(w[1]);
        b0 += edgec_opt_lo16(x[2]) * edgec_opt_lo16(w[0]) + edgec_opt_hi16(x[2]) * edgec_opt_hi16(w[0]) +
              edgec_opt_lo16(x[3]) * edgec_opt_lo16(w[1]) + edgec_opt_hi16(x[3]) * edgec_opt_hi16(w[1]);
        a1 += edgec_opt_lo16(x[0]) * edgec_opt_lo16(w[2]) + edgec_opt_hi16(x[0]) * edgec_opt_hi16(w[2]) +
              edgec_opt_lo16(x[1]) * edgec_opt_lo16(w[3]) + edgec_opt_hi16(x[1]) * edgec_opt_hi16(w[3]);
        b1 += edgec_opt_lo16(x[2]) * edgec_opt_lo16(w[2]) + edgec_opt_hi16(x[2]) * edgec_opt_hi16(w[2]) +
              edgec_opt_lo16(x[3]) * edgec_opt_lo16(w[3]) + edgec_opt_hi16(x[3]) * edgec_opt_hi16(w[3]);
    }
    acc[0] = a0;
    acc[1] = a1;
    acc[2] = b0;
    acc[3] = b1;
#endif
}

static inline void gemm2x2_w8(const int32_t *x, const int32_t *w, int32_t n8, int32_t acc[4])
{
#if EDGEC_OPT_DSP
    int32_t a0 = 0, a1 = 0, b0 = 0, b1 = 0, w0, w1, t;
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
    int32_t a0 = 0, a1 = 0, b0 = 0, b1 = 0, blk, k;
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

/* ---- filling the two int16 rows --------------------------------------------------------- */

/* Copy n bytes (word at a time; the arena and scratch allow unaligned single loads). */
static void copy_bytes(int8_t *dst, const int8_t *src, int32_t n)
{
    for (; n >= 4; n -= 4, dst += 4, src += 4) {
        int32_t v;
        memcpy(&v, src, 4);
        memcpy(dst, &v, 4);
    }
    for (; n > 0; --n) {
        *dst++ = *src++;
    }
}

static void fill_bytes(int8_t *dst, int8_t value, int32_t n)
{
    for (; n > 0; --n) {
        *dst++ = value;
    }
}

/*
 * One pixel's `depth` int8 activations (from any address) + offset into row slot `dst`
 * (word 0 and 1 of each block of 4 words), zero beyond depth up to depth_pad.
 */
static void expand_row(int32_t *dst, const int8_t *src, int32_t depth, int32_t depth_pad,
                       int32_t offset)
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

/* im2col of output pixel (n, oy, ox): KH x KW x C_IN int8 values, the input zero point
 * (-input_offset) in the padding, then zero points up to depth_pad. */
static void gather_patch(int8_t *d, const edgec_conv2d_opt_params *p, const int8_t *in,
                         int32_t n, int32_t oy, int32_t ox)
{
    const int32_t cin = p->input.c, kw = p->kernel.w;
    const int8_t zp = (int8_t)-p->input_offset;
    const int32_t ix0 = ox * p->stride.w - p->padding.w;
    int32_t ky, kx;
    int8_t *start = d;
    for (ky = 0; ky < p->kernel.h; ++ky) {
        const int32_t iy = oy * p->stride.h - p->padding.h + ky * p->dilation.h;
        const int8_t *row = in + (n * p->input.h + iy) * p->input.w * cin;
        if (iy < 0 || iy >= p->input.h) {
            fill_bytes(d, zp, kw * cin);
            d += kw * cin;
            continue;
        }
        if (p->dilation.w == 1 && ix0 >= 0 && ix0 + kw <= p->input.w) {
            copy_bytes(d, row + ix0 * cin, kw * cin);
            d += kw * cin;
            continue;
        }
        for (kx = 0; kx < kw; ++kx, d += cin) {
            const int32_t ix = ix0 + kx * p->dilation.w;
            if (ix < 0 || ix >= p->input.w) {
                fill_bytes(d, zp, cin);
            } else {
                copy_bytes(d, row + ix * cin, cin);
            }
        }
    }
    fill_bytes(d, zp, p->depth_pad - (int32_t)(d - start));
}

/* ---- the kernel ------------------------------------------------------------------------- */

/* Everything the channel loop reads, copied out of the params: the output stores (int8)
 * could alias them, which would make the compiler reload them after every store. */
typedef struct {
    int32_t cout, n8, wstride, flags, output_offset, act_min, act_max;
} loop_consts;

/* The 4 outputs of one channel pair (or of the last, odd channel: `two` = 0). */
static EDGEC_ALWAYS_INLINE void store_block(const int32_t acc[4], const int32_t *q,
                                            int8_t *ya, int8_t *yb, const loop_consts *k,
                                            int fast, int two)
{
    if (fast) { /* fast mode, full int8 range: the constants are read before any store */
        const int32_t b0 = q[0], m0 = q[1], r0 = q[2], e0 = q[3];
        const int8_t ya0 = edgec_opt_out_conv(acc[0], b0, m0, r0, e0);
        const int8_t yb0 = edgec_opt_out_conv(acc[2], b0, m0, r0, e0);
        if (two) {
            const int32_t b1 = q[4], m1 = q[5], r1 = q[6], e1 = q[7];
            const int8_t ya1 = edgec_opt_out_conv(acc[1], b1, m1, r1, e1);
            const int8_t yb1 = edgec_opt_out_conv(acc[3], b1, m1, r1, e1);
            yb[1] = yb1;
            ya[1] = ya1;
        }
        yb[0] = yb0; /* B before A: when the pixel count is odd, B is A */
        ya[0] = ya0;
    } else {
        const int8_t ya0 = (int8_t)edgec_opt_requant(acc[0], q, k->flags, k->output_offset,
                                                     k->act_min, k->act_max, 0);
        const int8_t yb0 = (int8_t)edgec_opt_requant(acc[2], q, k->flags, k->output_offset,
                                                     k->act_min, k->act_max, 0);
        if (two) {
            const int8_t ya1 = (int8_t)edgec_opt_requant(acc[1], q + 4, k->flags,
                                                         k->output_offset, k->act_min,
                                                         k->act_max, 0);
            const int8_t yb1 = (int8_t)edgec_opt_requant(acc[3], q + 4, k->flags,
                                                         k->output_offset, k->act_min,
                                                         k->act_max, 0);
            yb[1] = yb1;
            ya[1] = ya1;
        }
        yb[0] = yb0;
        ya[0] = ya0;
    }
}

/* All output channels of the pixel pair whose rows are in scratch. */
static EDGEC_ALWAYS_INLINE void channels(const int32_t *rows, const int32_t *w,
                                         const int32_t *q, int8_t *ya, int8_t *yb,
                                         const loop_consts *k, int w16, int fast)
{
    int32_t oc;
    int32_t acc[4];
    for (oc = 0; oc + 1 < k->cout; oc += 2, w += k->wstride, q += 8) {
        if (w16) {
            gemm2x2_w16(rows, w, k->n8, acc);
        } else {
            gemm2x2_w8(rows, w, k->n8, acc);
        }
        store_block(acc, q, ya + oc, yb + oc, k, fast, 1);
    }
    if (oc < k->cout) { /* an odd last channel (its pair is padded with a zero channel) */
        if (w16) {
            gemm2x2_w16(rows, w, k->n8, acc);
        } else {
            gemm2x2_w8(rows, w, k->n8, acc);
        }
        store_block(acc, q, ya + oc, yb + oc, k, fast, 0);
    }
}

static EDGEC_ALWAYS_INLINE edgec_status conv_gemm(const edgec_conv2d_opt_params *p,
                                                  const int8_t *in, int8_t *out,
                                                  int8_t *scratch, int im2col, int w16)
{
    int32_t depth, npix, pix;
    int32_t n = 0, oy = 0, ox = 0;
    int32_t *rows;
    loop_consts k;

    if (p == NULL || in == NULL || out == NULL || scratch == NULL || p->weights == NULL ||
        p->rq == NULL || ((uintptr_t)scratch & 3u) != 0) {
        return EDGEC_ERR_ARG;
    }
    depth = p->kernel.h * p->kernel.w * p->input.c;
    if (p->input.n != p->output.n || p->kernel.h < 1 || p->kernel.w < 1 || p->stride.h < 1 ||
        p->stride.w < 1 || p->dilation.h < 1 || p->dilation.w < 1 || p->act_min > p->act_max ||
        p->depth_pad < depth || (p->depth_pad & 7) != 0 || p->output.c < 1 ||
        (!im2col && (p->kernel.h != 1 || p->kernel.w != 1 || p->padding.h != 0 ||
                     p->padding.w != 0))) {
        return EDGEC_ERR_ARG;
    }
    k.cout = p->output.c;
    k.n8 = p->depth_pad / 8;
    k.wstride = w16 ? p->depth_pad : p->depth_pad / 2; /* words per channel pair */
    k.flags = p->flags;
    k.output_offset = p->output_offset;
    k.act_min = p->act_min;
    k.act_max = p->act_max;
    npix = p->output.n * p->output.h * p->output.w;
    rows = (int32_t *)(void *)(scratch + (im2col ? p->depth_pad : 0));

    for (pix = 0; pix < npix; pix += 2) {
        /* Pixel A, then pixel B (A again when the count is odd: same bytes, same outputs). */
        int8_t *ya = out + pix * k.cout;
        int8_t *yb = pix + 1 < npix ? ya + k.cout : ya;
        int32_t slot;
        for (slot = 0; slot < 2; ++slot) {
            if (im2col) {
                gather_patch(scratch, p, in, n, oy, ox);
                expand_row(rows + 2 * slot, scratch, p->depth_pad, p->depth_pad,
                           p->input_offset);
            } else {
                const int8_t *src = in + ((n * p->input.h + oy * p->stride.h) * p->input.w +
                                          ox * p->stride.w) * p->input.c;
                expand_row(rows + 2 * slot, src, p->input.c, p->depth_pad, p->input_offset);
            }
            if (slot == 0 && pix + 1 >= npix) {
                continue; /* B = A: expand the same pixel again */
            }
            if (++ox == p->output.w) {
                ox = 0;
                if (++oy == p->output.h) {
                    oy = 0;
                    ++n;
                }
            }
        }
        if (k.flags == 0) {
            channels(rows, p->weights, p->rq, ya, yb, &k, w16, 1);
        } else {
            channels(rows, p->weights, p->rq, ya, yb, &k, w16, 0);
        }
    }
    return EDGEC_OK;
}

edgec_status edgec_conv2d_1x1_s8(const edgec_conv2d_opt_params *p, const int8_t *in,
                                 int8_t *out, int8_t *scratch)
{
    return conv_gemm(p, in, out, scratch, 0, 0);
}

edgec_status edgec_conv2d_1x1_fast_s8(const edgec_conv2d_opt_params *p, const int8_t *in,
                                      int8_t *out, int8_t *scratch)
{
    return conv_gemm(p, in, out, scratch, 0, 1);
}

edgec_status edgec_conv2d_im2col_s8(const edgec_conv2d_opt_params *p, const int8_t *in,
                                    int8_t *out, int8_t *scratch)
{
    return conv_gemm(p, in, out, scratch, 1, 0);
}

edgec_status edgec_conv2d_im2col_fast_s8(const edgec_conv2d_opt_params *p, const int8_t *in,
                                         int8_t *out, int8_t *scratch)
{
    return conv_gemm(p, in, out, scratch, 1, 1);
}
