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
#include "edgec_gemm2x2.h"

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

static int32_t band_bytes(const edgec_conv2d_opt_params *p);

int32_t edgec_conv2d_im2col_s8_scratch_size(const edgec_conv2d_opt_params *p)
{
    /* the band (see fill_band), one int8 patch, then two rows of depth_pad int16 values */
    return band_bytes(p) + 5 * p->depth_pad;
}

/* ---- filling the two int16 rows --------------------------------------------------------- */

/* Copy n bytes, a word at a time (the Cortex-M3/M4/M7 allow unaligned single loads and
 * stores; memcpy of 4 bytes compiles to one LDR / STR). */
static EDGEC_ALWAYS_INLINE void copy_bytes(int8_t *dst, const int8_t *src, int32_t n)
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

static EDGEC_ALWAYS_INLINE void fill_bytes(int8_t *dst, int8_t value, int32_t n)
{
    const uint32_t v4 = 0x01010101u * (uint8_t)value;
    for (; n >= 4; n -= 4, dst += 4) {
        memcpy(dst, &v4, 4);
    }
    for (; n > 0; --n) {
        *dst++ = value;
    }
}

/* The im2col geometry, out of the params (int8 stores could alias them). */
typedef struct {
    int32_t h, w, cin, kh, kw, sh, sw, dh, dw, ph, pw;
    int32_t row_bytes;  /* KW * C_IN: one filter row of the patch */
    int32_t tail;       /* depth_pad - KH * row_bytes */
    int32_t band_row;   /* bytes of one band row: band_w * C_IN */
    int8_t zp;
} patch_geometry;

/* Columns of the band: every input column a tap of the output row reads, from -padding. */
static int32_t band_width(const edgec_conv2d_opt_params *p)
{
    return (p->output.w - 1) * p->stride.w + (p->kernel.w - 1) * p->dilation.w + 1;
}

static int32_t band_bytes(const edgec_conv2d_opt_params *p)
{
    return (p->kernel.h * band_width(p) * p->input.c + 3) & ~3;
}

static patch_geometry patch_geometry_of(const edgec_conv2d_opt_params *p)
{
    patch_geometry g;
    g.h = p->input.h; g.w = p->input.w; g.cin = p->input.c;
    g.kh = p->kernel.h; g.kw = p->kernel.w;
    g.sh = p->stride.h; g.sw = p->stride.w;
    g.dh = p->dilation.h; g.dw = p->dilation.w;
    g.ph = p->padding.h; g.pw = p->padding.w;
    g.row_bytes = p->kernel.w * p->input.c;
    g.tail = p->depth_pad - p->kernel.h * g.row_bytes;
    g.band_row = band_width(p) * p->input.c;
    g.zp = (int8_t)-p->input_offset;
    return g;
}

/*
 * The band of output row oy of batch n: the KH input rows its taps read, each over the
 * band's columns (input column -padding.w onward), the input zero point outside the image.
 * Every patch of the row is then KH plain copies out of it.
 */
static void fill_band(int8_t *band, const patch_geometry *g, const int8_t *in, int32_t n,
                      int32_t oy)
{
    const int32_t cin = g->cin, bw = g->band_row / cin;
    const int32_t lo = g->pw < bw ? g->pw : bw;              /* columns left of the image */
    const int32_t hi = g->pw + g->w < bw ? g->pw + g->w : bw; /* end of the image columns */
    int32_t ky, iy = oy * g->sh - g->ph;
    for (ky = 0; ky < g->kh; ++ky, iy += g->dh, band += g->band_row) {
        if (iy < 0 || iy >= g->h || hi <= lo) {
            fill_bytes(band, g->zp, g->band_row);
            continue;
        }
        fill_bytes(band, g->zp, lo * cin);
        copy_bytes(band + lo * cin, in + ((n * g->h + iy) * g->w + (lo - g->pw)) * cin,
                   (hi - lo) * cin);
        fill_bytes(band + hi * cin, g->zp, (bw - hi) * cin);
    }
}

/* im2col of output pixel ox from its row's band: KH x KW x C_IN int8 values, then zero
 * points up to depth_pad. */
static void gather_patch(int8_t *d, const patch_geometry *g, const int8_t *band, int32_t ox)
{
    const int32_t row_bytes = g->row_bytes, cin = g->cin;
    const int8_t *src = band + ox * g->sw * cin;
    int32_t ky, kx;
    for (ky = 0; ky < g->kh; ++ky, src += g->band_row, d += row_bytes) {
        if (g->dw == 1) {
            copy_bytes(d, src, row_bytes);
        } else {
            for (kx = 0; kx < g->kw; ++kx) {
                copy_bytes(d + kx * cin, src + kx * g->dw * cin, cin);
            }
        }
    }
    if (g->tail > 0) {
        fill_bytes(d, g->zp, g->tail);
    }
}

/* ---- the kernel ------------------------------------------------------------------------- */

/* Everything the channel loop reads, copied out of the params: the output stores (int8)
 * could alias them, which would make the compiler reload them after every store. */
typedef struct {
    int32_t cout, n8, wstride, flags, output_offset, act_min, act_max;
} loop_consts;

/*
 * Fast mode, full int8 range: channel q's outputs of pixels A and B (accumulators a, b)
 * into ya[0] and yb[0]: bias, edgec_opt_rq_conv (SMMLAR), SSAT, STRB: 15 instructions for
 * the two. B is stored first: when the pixel count is odd, B is A.
 */
static EDGEC_ALWAYS_INLINE void store_pair_fast(int32_t a, int32_t b, const int32_t *q,
                                                int8_t *ya, int8_t *yb)
{
#if EDGEC_OPT_ASM
    int32_t h;
    __asm__ volatile(
        "ldmia  %[q], {r4, r5, r6, r8}\n\t" /* bias, mult, round, e */
        "add    %[a], %[a], r4\n\t"
        "add    %[b], %[b], r4\n\t"
        "add    %[h], r6, %[b]\n\t"
        "add    %[h], %[h], %[b], asr #31\n\t"
        "smmlar %[h], %[b], r5, %[h]\n\t"
        "asr    %[h], %[h], r8\n\t"
        "ssat   %[h], #8, %[h]\n\t"
        "strb   %[h], [%[yb]]\n\t"
        "add    %[h], r6, %[a]\n\t"
        "add    %[h], %[h], %[a], asr #31\n\t"
        "smmlar %[h], %[a], r5, %[h]\n\t"
        "asr    %[h], %[h], r8\n\t"
        "ssat   %[h], #8, %[h]\n\t"
        "strb   %[h], [%[ya]]\n\t"
        : [h] "=&r"(h), [a] "+r"(a), [b] "+r"(b)
        : [q] "r"(q), [ya] "r"(ya), [yb] "r"(yb)
        : "r4", "r5", "r6", "r8", "memory");
#else
    const int32_t bias = q[0], mult = q[1], round = q[2], e = q[3];
    const int8_t ya0 = (int8_t)edgec_opt_sat8(edgec_opt_rq_conv(a + bias, mult, round, e));
    *yb = (int8_t)edgec_opt_sat8(edgec_opt_rq_conv(b + bias, mult, round, e));
    *ya = ya0;
#endif
}

/* Fast mode with a narrower clamp (ReLU6 and the like): the same arithmetic, then
 * act_min / act_max instead of SSAT. */
static EDGEC_ALWAYS_INLINE void store_pair_clamp(int32_t a, int32_t b, const int32_t *q,
                                                 int8_t *ya, int8_t *yb, const loop_consts *k)
{
    const int32_t bias = q[0], mult = q[1], round = q[2], e = q[3];
    const int32_t lo = k->act_min, hi = k->act_max;
    const int32_t va = edgec_opt_rq_conv(a + bias, mult, round, e);
    const int32_t vb = edgec_opt_rq_conv(b + bias, mult, round, e);
    const int8_t ya0 = (int8_t)edgec_min_i32(edgec_max_i32(va, lo), hi);
    *yb = (int8_t)edgec_min_i32(edgec_max_i32(vb, lo), hi);
    *ya = ya0;
}

/* The 4 outputs of one channel pair (or of the last, odd channel: `two` = 0); mode:
 * MODE_FAST (fast, int8 range), MODE_CLAMP (fast, narrower clamp), MODE_EXACT. */
enum { MODE_FAST = 0, MODE_CLAMP = 1, MODE_EXACT = 2 };

static EDGEC_ALWAYS_INLINE void store_block(const int32_t acc[4], const int32_t *q,
                                            int8_t *ya, int8_t *yb, const loop_consts *k,
                                            int mode, int two)
{
    if (mode == MODE_FAST) {
        store_pair_fast(acc[0], acc[2], q, ya, yb);
        if (two) {
            store_pair_fast(acc[1], acc[3], q + 4, ya + 1, yb + 1);
        }
    } else if (mode == MODE_CLAMP) {
        store_pair_clamp(acc[0], acc[2], q, ya, yb, k);
        if (two) {
            store_pair_clamp(acc[1], acc[3], q + 4, ya + 1, yb + 1, k);
        }
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
                                         const loop_consts *k, int w16, int mode)
{
    int32_t oc;
    int32_t acc[4];
    for (oc = 0; oc + 1 < k->cout; oc += 2, w += k->wstride, q += 8) {
        acc[0] = acc[1] = acc[2] = acc[3] = 0;
        if (w16) {
            gemm2x2_w16(rows, w, k->n8, acc);
        } else {
            gemm2x2_w8(rows, w, k->n8, acc);
        }
        store_block(acc, q, ya + oc, yb + oc, k, mode, 1);
    }
    if (oc < k->cout) { /* an odd last channel (its pair is padded with a zero channel) */
        acc[0] = acc[1] = acc[2] = acc[3] = 0;
        if (w16) {
            gemm2x2_w16(rows, w, k->n8, acc);
        } else {
            gemm2x2_w8(rows, w, k->n8, acc);
        }
        store_block(acc, q, ya + oc, yb + oc, k, mode, 0);
    }
}

static EDGEC_ALWAYS_INLINE edgec_status conv_gemm(const edgec_conv2d_opt_params *p,
                                                  const int8_t *in, int8_t *out,
                                                  int8_t *scratch, int im2col, int w16)
{
    int32_t depth, npix, pix;
    int32_t n = 0, oy = 0, ox = 0;
    int32_t *rows;
    int8_t *band = scratch, *patch = scratch;
    int32_t band_n = -1, band_y = -1; /* the output row whose band is in scratch */
    loop_consts k;
    patch_geometry pg;

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
    if (im2col) {
        patch = band + band_bytes(p);
        rows = (int32_t *)(void *)(patch + p->depth_pad);
    } else {
        rows = (int32_t *)(void *)scratch;
    }
    pg = patch_geometry_of(p);

    for (pix = 0; pix < npix; pix += 2) {
        /* Pixel A, then pixel B (A again when the count is odd: same bytes, same outputs). */
        int8_t *ya = out + pix * k.cout;
        int8_t *yb = pix + 1 < npix ? ya + k.cout : ya;
        int32_t slot;
        for (slot = 0; slot < 2; ++slot) {
            if (im2col) {
                if (n != band_n || oy != band_y) {
                    fill_band(band, &pg, in, n, oy);
                    band_n = n;
                    band_y = oy;
                }
                gather_patch(patch, &pg, band, ox);
                expand_row(rows + 2 * slot, patch, p->depth_pad, p->depth_pad,
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
            channels(rows, p->weights, p->rq, ya, yb, &k, w16, MODE_FAST);
        } else if (k.flags == EDGEC_OPT_CLAMP) {
            channels(rows, p->weights, p->rq, ya, yb, &k, w16, MODE_CLAMP);
        } else {
            channels(rows, p->weights, p->rq, ya, yb, &k, w16, MODE_EXACT);
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
