/*
 * depthwise_conv2d_planar_s8.c - DEPTHWISE_CONV_2D one channel plane at a time
 * (optimized kernels):
 *   edgec_depthwise_conv2d_opt_s8   any filter, stride, dilation, padding, depth multiplier
 *   edgec_depthwise_conv2d_3x3_s8   3x3 filter, dilation 1: the 9 taps unrolled
 * Bit-exact with edgec_depthwise_conv2d_s8 (reference_integer_ops::DepthwiseConvPerChannel).
 *
 * Input channel c is copied, plus input_offset, into an int16 plane in scratch whose border
 * (the padding) stays 0, so every tap of every output reads the plane and no tap needs a
 * bounds check. Two taps next to each other along a plane row are one word: SMLAD
 * multiplies them by the weight pair {w[.][k], w[.][k+1]} in one instruction.
 *
 * Plane coordinates: the plane rows run along the output's H (or, with
 * EDGEC_OPT_DW_TRANSPOSED, along W, so that the inner loop runs over the longer side of
 * the output, e.g. the 25 rows of a 25x5 image instead of its 5 columns); the weights are
 * packed in plane coordinates by edgec's kernel selection.
 *
 * Each plane row of outputs is computed in two passes: the int32 accumulators into a row
 * buffer in scratch (with the filter in registers; for a 3x3 filter with an inner stride
 * of 1, two outputs per iteration share their loads), then requantized into the output
 * (with the channel's requantization constants in registers).
 *
 * In place (depth_multiplier 1): output channel c is written after input channel c is in
 * the plane, and output pixel i of channel c lies on input pixel i's channel c byte.
 */
#include "edgec_kernels_opt.h"
#include "edgec_opt.h"

#include <stddef.h>

#if defined(__GNUC__)
#define EDGEC_ALWAYS_INLINE __attribute__((always_inline)) inline
#else
#define EDGEC_ALWAYS_INLINE inline
#endif

/* Output geometry in plane coordinates (outer = plane rows, inner = along a plane row). */
typedef struct {
    int32_t outer, inner;           /* output rows / columns */
    int32_t s_outer, s_inner;       /* strides */
    int32_t d_outer, d_inner;       /* dilations */
    int32_t k_outer, k_inner;       /* filter */
    int32_t pad_outer, pad_inner;   /* padding before */
    int32_t in_outer, in_inner;     /* input size */
    int32_t y_outer, y_inner;       /* output steps in bytes */
} geometry;

static geometry plane_geometry(const edgec_depthwise_conv2d_opt_params *p)
{
    geometry g;
    const int32_t row_bytes = p->output.w * p->output.c;
    if (p->flags & EDGEC_OPT_DW_TRANSPOSED) {
        g.outer = p->output.w; g.inner = p->output.h;
        g.s_outer = p->stride.w; g.s_inner = p->stride.h;
        g.d_outer = p->dilation.w; g.d_inner = p->dilation.h;
        g.k_outer = p->kernel.w; g.k_inner = p->kernel.h;
        g.pad_outer = p->padding.w; g.pad_inner = p->padding.h;
        g.in_outer = p->input.w; g.in_inner = p->input.h;
        g.y_outer = p->output.c; g.y_inner = row_bytes;
    } else {
        g.outer = p->output.h; g.inner = p->output.w;
        g.s_outer = p->stride.h; g.s_inner = p->stride.w;
        g.d_outer = p->dilation.h; g.d_inner = p->dilation.w;
        g.k_outer = p->kernel.h; g.k_inner = p->kernel.w;
        g.pad_outer = p->padding.h; g.pad_inner = p->padding.w;
        g.in_outer = p->input.h; g.in_inner = p->input.w;
        g.y_outer = row_bytes; g.y_inner = p->output.c;
    }
    return g;
}

static int32_t plane_bytes(const edgec_depthwise_conv2d_opt_params *p)
{
    return (2 * p->plane.h * p->plane.w + 3) & ~3;
}

/* Planes filled per pass: 4 channels at once (one LDR of their 4 bytes) when the depth
 * multiplier is 1 and there are at least 4 channels, else 1. */
static int32_t plane_count(const edgec_depthwise_conv2d_opt_params *p)
{
    return (p->depth_multiplier == 1 && p->input.c >= 4) ? 4 : 1;
}

int32_t edgec_depthwise_conv2d_opt_s8_scratch_size(const edgec_depthwise_conv2d_opt_params *p)
{
    const int32_t inner = (p->flags & EDGEC_OPT_DW_TRANSPOSED) ? p->output.h : p->output.w;
    return plane_count(p) * plane_bytes(p) + 4 * (inner + 1); /* planes, accumulator row */
}

/* Two adjacent int16 values of the plane (one LDR, halfword aligned: allowed unaligned). */
static inline int32_t pair_at(const int16_t *src)
{
    int32_t v;
    memcpy(&v, src, sizeof v);
    return v;
}

static inline int32_t dual_mac(int32_t x, int32_t w, int32_t acc)
{
#if EDGEC_OPT_DSP
    return __smlad(x, w, acc);
#else
    return acc + edgec_opt_lo16(x) * edgec_opt_lo16(w) + edgec_opt_hi16(x) * edgec_opt_hi16(w);
#endif
}

/* Channels c..c+count-1 (count 1 or 4) of batch n + input_offset into the interiors of
 * `count` planes, plane_step int16 apart (their borders stay 0). */
static void fill_planes(int16_t *plane, int32_t plane_step, int32_t count,
                        const edgec_depthwise_conv2d_opt_params *p, const int8_t *in, int32_t n,
                        int32_t c)
{
    const int32_t cin = p->input.c, stride = p->plane.w, off = p->input_offset;
    const int32_t h = p->input.h, w = p->input.w;
    const int8_t *src = in + n * h * w * cin + c;
    /* plane steps per input pixel and per input row: rows along H, or along W */
    const int transposed = (p->flags & EDGEC_OPT_DW_TRANSPOSED) != 0;
    const int32_t step_x = transposed ? stride : 1, step_y = transposed ? 1 : stride;
    int16_t *row = plane + (transposed ? p->padding.w * stride + p->padding.h
                                       : p->padding.h * stride + p->padding.w);
    int32_t iy, ix;
    for (iy = 0; iy < h; ++iy, row += step_y) {
        int16_t *dst = row;
        if (count == 4) {
            const int32_t ps1 = plane_step, ps2 = 2 * plane_step, ps3 = 3 * plane_step;
            const int8_t *end = src + w * cin;
            for (; src != end; src += cin, dst += step_x) {
                int32_t even, odd; /* {x0, x2}, {x1, x3} + offset */
                edgec_opt_expand4(edgec_opt_read_s8x4(src), off, &even, &odd);
                dst[0] = (int16_t)edgec_opt_lo16(even);
                dst[ps1] = (int16_t)edgec_opt_lo16(odd);
                dst[ps2] = (int16_t)edgec_opt_hi16(even);
                dst[ps3] = (int16_t)edgec_opt_hi16(odd);
            }
        } else {
            for (ix = 0; ix < w; ++ix, src += cin, dst += step_x) {
                *dst = (int16_t)(*src + off);
            }
        }
    }
}

/* ---- pass 1: accumulators of one output row ----------------------------------------- */

/* 3x3, inner stride 1: two outputs per iteration; `pairs` iterations (the row buffer and
 * the plane have room for the extra output of an odd row). r0: the first tap of output 0. */
#if defined(__GNUC__)
__attribute__((noinline)) /* the assembly needs 13 free registers: its own frame */
#endif
static void row_3x3_s1(const int16_t *r0, int32_t stride, const int32_t *wc,
                              int32_t pairs, int32_t *acc)
{
#if EDGEC_OPT_ASM
    const int16_t *r1 = r0 + stride, *r2 = r1 + stride;
    const int32_t w0 = wc[0], w1 = wc[2], w2 = wc[4], s2 = wc[5];
    const int32_t s01 = edgec_opt_pack16(wc[1], wc[3]); /* {w[0][2], w[1][2]} */
    int32_t a0, a1, t;
    /* weights: w<k> = {w[k][0], w[k][1]}; per output pair and plane row: LDR {c2, c3},
     * {c1, c2}, {c0, c1} (halfword aligned), 4 multiplies; 13 registers in all */
    __asm__ volatile(
        "1:\n\t"
        "ldr    %[t], [%[r0], #4]\n\t"
        "smulbb %[a0], %[t], %[s01]\n\t"
        "smultb %[a1], %[t], %[s01]\n\t"
        "ldr    %[t], [%[r0], #2]\n\t"
        "smlad  %[a1], %[t], %[w0], %[a1]\n\t"
        "ldr    %[t], [%[r0]], #4\n\t"
        "smlad  %[a0], %[t], %[w0], %[a0]\n\t"
        "ldr    %[t], [%[r1], #4]\n\t"
        "smlabt %[a0], %[t], %[s01], %[a0]\n\t"
        "smlatt %[a1], %[t], %[s01], %[a1]\n\t"
        "ldr    %[t], [%[r1], #2]\n\t"
        "smlad  %[a1], %[t], %[w1], %[a1]\n\t"
        "ldr    %[t], [%[r1]], #4\n\t"
        "smlad  %[a0], %[t], %[w1], %[a0]\n\t"
        "ldr    %[t], [%[r2], #4]\n\t"
        "smlabb %[a0], %[t], %[s2], %[a0]\n\t"
        "smlatb %[a1], %[t], %[s2], %[a1]\n\t"
        "ldr    %[t], [%[r2], #2]\n\t"
        "smlad  %[a1], %[t], %[w2], %[a1]\n\t"
        "ldr    %[t], [%[r2]], #4\n\t"
        "smlad  %[a0], %[t], %[w2], %[a0]\n\t"
        "strd   %[a0], %[a1], [%[acc]], #8\n\t"
        "subs   %[n], %[n], #1\n\t"
        "bne    1b\n\t"
        : [r0] "+r"(r0), [r1] "+r"(r1), [r2] "+r"(r2), [acc] "+r"(acc), [n] "+r"(pairs),
          [a0] "=&r"(a0), [a1] "=&r"(a1), [t] "=&r"(t)
        : [w0] "r"(w0), [w1] "r"(w1), [w2] "r"(w2), [s01] "r"(s01), [s2] "r"(s2)
        : "cc", "memory");
#else
    int32_t i, ky;
    for (i = 0; i < 2 * pairs; ++i, ++r0) {
        const int16_t *r = r0;
        int32_t a = 0;
        for (ky = 0; ky < 3; ++ky, r += stride) {
            a = dual_mac(pair_at(r), wc[2 * ky], a);
            a = dual_mac(pair_at(r + 2), wc[2 * ky + 1], a);
        }
        acc[i] = a;
    }
#endif
}

/* 3x3, any inner stride: one output per iteration. */
static inline void row_3x3(const int16_t *r0, int32_t stride, int32_t step, const int32_t *wc,
                           int32_t count, int32_t *acc)
{
    const int32_t w0 = wc[0], s0 = wc[1], w1 = wc[2], s1 = wc[3], w2 = wc[4], s2 = wc[5];
    int32_t i;
    for (i = 0; i < count; ++i, r0 += step) {
        const int16_t *r1 = r0 + stride, *r2 = r1 + stride;
        int32_t a = dual_mac(pair_at(r0), w0, 0);
        a = dual_mac(pair_at(r0 + 2), s0, a);
        a = dual_mac(pair_at(r1), w1, a);
        a = dual_mac(pair_at(r1 + 2), s1, a);
        a = dual_mac(pair_at(r2), w2, a);
        a = dual_mac(pair_at(r2 + 2), s2, a);
        acc[i] = a;
    }
}

/* Any filter: taps along the row in pairs (dilation 1) or one by one. */
static void row_any(const int16_t *r0, int32_t stride, const geometry *g, const int32_t *wc,
                    int32_t *acc)
{
    const int32_t pairs = (g->k_inner + 1) / 2, dy = g->d_outer * stride, dx = g->d_inner;
    int32_t i, ko, j;
    for (i = 0; i < g->inner; ++i, r0 += g->s_inner) {
        const int16_t *r = r0;
        const int32_t *w = wc;
        int32_t a = 0;
        for (ko = 0; ko < g->k_outer; ++ko, r += dy) {
            if (dx == 1) {
                for (j = 0; j < pairs; ++j) {
                    a = dual_mac(pair_at(r + 2 * j), *w++, a);
                }
            } else {
                for (j = 0; j < pairs; ++j, ++w) {
                    a += r[2 * j * dx] * edgec_opt_lo16(*w);
                    if (2 * j + 1 < g->k_inner) {
                        a += r[(2 * j + 1) * dx] * edgec_opt_hi16(*w);
                    }
                }
            }
        }
        acc[i] = a;
    }
}

/* ---- pass 2: requantize a row --------------------------------------------------------- */

static EDGEC_ALWAYS_INLINE void requant_row(const int32_t *acc, int32_t count, const int32_t *q,
                                            int8_t *y, int32_t step,
                                            const edgec_depthwise_conv2d_opt_params *p)
{
    int32_t i;
    if (p->flags == EDGEC_OPT_CLAMP) { /* fast mode, narrower clamp */
        const int32_t bias = q[0], mult = q[1], round = q[2], e = q[3];
        const int32_t lo = p->act_min, hi = p->act_max;
        for (i = 0; i < count; ++i, y += step) {
            const int32_t v = edgec_opt_rq_conv(acc[i] + bias, mult, round, e);
            *y = (int8_t)edgec_min_i32(edgec_max_i32(v, lo), hi);
        }
    } else if (p->flags & (EDGEC_OPT_RQ_EXACT | EDGEC_OPT_CLAMP)) {
        const int32_t flags = p->flags, zp = p->output_offset;
        const int32_t lo = p->act_min, hi = p->act_max;
        for (i = 0; i < count; ++i, y += step) {
            *y = (int8_t)edgec_opt_requant(acc[i], q, flags, zp, lo, hi, 0);
        }
    } else {
        const int32_t bias = q[0], mult = q[1], round = q[2], e = q[3];
        int32_t pairs = count / 2;
#if EDGEC_OPT_ASM
        if (pairs > 0) { /* two outputs per iteration: 19 instructions */
            int32_t a0, a1, h;
            __asm__ volatile(
                "1:\n\t"
                "ldrd   %[a0], %[a1], [%[acc]], #8\n\t"
                "add    %[a0], %[a0], %[bias]\n\t"
                "add    %[a1], %[a1], %[bias]\n\t"
                "add    %[h], %[round], %[a0]\n\t"
                "add    %[h], %[h], %[a0], asr #31\n\t"
                "smmlar %[h], %[a0], %[mult], %[h]\n\t"
                "asr    %[h], %[h], %[e]\n\t"
                "ssat   %[h], #8, %[h]\n\t"
                "strb   %[h], [%[y]]\n\t"
                "add    %[y], %[y], %[step]\n\t"
                "add    %[h], %[round], %[a1]\n\t"
                "add    %[h], %[h], %[a1], asr #31\n\t"
                "smmlar %[h], %[a1], %[mult], %[h]\n\t"
                "asr    %[h], %[h], %[e]\n\t"
                "ssat   %[h], #8, %[h]\n\t"
                "strb   %[h], [%[y]]\n\t"
                "add    %[y], %[y], %[step]\n\t"
                "subs   %[n], %[n], #1\n\t"
                "bne    1b\n\t"
                : [acc] "+r"(acc), [y] "+r"(y), [n] "+r"(pairs), [a0] "=&r"(a0),
                  [a1] "=&r"(a1), [h] "=&r"(h)
                : [bias] "r"(bias), [mult] "r"(mult), [round] "r"(round), [e] "r"(e),
                  [step] "r"(step)
                : "cc", "memory");
        }
#else
        for (; pairs > 0; --pairs, acc += 2, y += 2 * step) {
            y[0] = (int8_t)edgec_opt_sat8(edgec_opt_rq_conv(acc[0] + bias, mult, round, e));
            y[step] = (int8_t)edgec_opt_sat8(edgec_opt_rq_conv(acc[1] + bias, mult, round, e));
        }
#endif
        if (count & 1) {
            *y = (int8_t)edgec_opt_sat8(edgec_opt_rq_conv(*acc + bias, mult, round, e));
        }
    }
}

/* ---- the kernel --------------------------------------------------------------------- */

static EDGEC_ALWAYS_INLINE edgec_status depthwise_planar(
    const edgec_depthwise_conv2d_opt_params *p, const int8_t *in, int8_t *out,
    int8_t *scratch, int is3x3)
{
    int16_t *planes = (int16_t *)(void *)scratch;
    int32_t *acc;
    int32_t n, c, m, i, words, need_outer, need_inner, count, plane_step;
    geometry g;

    if (p == NULL || in == NULL || out == NULL || scratch == NULL || p->weights == NULL ||
        p->rq == NULL || ((uintptr_t)scratch & 3u) != 0) {
        return EDGEC_ERR_ARG;
    }
    g = plane_geometry(p);
    need_outer = (g.outer - 1) * g.s_outer + (g.k_outer - 1) * g.d_outer + 1;
    /* the last tap pair, and for the 3x3 pair loop the extra output of an odd row */
    need_inner = (g.inner - 1 + (g.inner & 1)) * g.s_inner + (g.k_inner - 1) * g.d_inner + 2;
    if (p->depth_multiplier < 1 || p->output.c != p->input.c * p->depth_multiplier ||
        p->input.n != p->output.n || g.s_outer < 1 || g.s_inner < 1 || g.d_outer < 1 ||
        g.d_inner < 1 || p->act_min > p->act_max || p->plane.h < need_outer ||
        p->plane.w < need_inner || p->plane.h < g.pad_outer + g.in_outer ||
        p->plane.w < g.pad_inner + g.in_inner ||
        (is3x3 && (g.k_outer != 3 || g.k_inner != 3 || g.d_outer != 1 || g.d_inner != 1))) {
        return EDGEC_ERR_ARG;
    }
    count = plane_count(p);
    plane_step = plane_bytes(p) / 2;
    acc = (int32_t *)(void *)(scratch + count * plane_bytes(p));
    words = g.k_outer * ((g.k_inner + 1) / 2); /* weight words per output channel */
    for (i = 0; i < count * plane_step; ++i) {
        planes[i] = 0;
    }
    for (n = 0; n < p->input.n; ++n) {
        int8_t *out_n = out + n * p->output.h * p->output.w * p->output.c;
        int32_t left = 0, slot = 0; /* channels left in the planes filled last; this one's */
        for (c = 0; c < p->input.c; ++c, ++slot, --left) {
            const int16_t *plane;
            if (left == 0) { /* fill the next 4 planes, or 1 for the last channels */
                left = (count == 4 && c + 4 <= p->input.c) ? 4 : 1;
                slot = 0;
                fill_planes(planes, plane_step, left, p, in, n, c);
            }
            plane = planes + slot * plane_step;
            for (m = 0; m < p->depth_multiplier; ++m) {
                const int32_t co = c * p->depth_multiplier + m;
                const int32_t *wc = p->weights + co * words;
                const int32_t *q = p->rq + 4 * co;
                int8_t *y = out_n + co;
                const int16_t *r0 = plane;
                int32_t row;
                for (row = 0; row < g.outer; ++row, y += g.y_outer,
                     r0 += g.s_outer * p->plane.w) {
                    if (is3x3 && g.s_inner == 1) {
                        row_3x3_s1(r0, p->plane.w, wc, (g.inner + 1) / 2, acc);
                    } else if (is3x3) {
                        row_3x3(r0, p->plane.w, g.s_inner, wc, g.inner, acc);
                    } else {
                        row_any(r0, p->plane.w, &g, wc, acc);
                    }
                    requant_row(acc, g.inner, q, y, g.y_inner, p);
                }
            }
        }
    }
    return EDGEC_OK;
}

edgec_status edgec_depthwise_conv2d_opt_s8(const edgec_depthwise_conv2d_opt_params *p,
                                           const int8_t *in, int8_t *out, int8_t *scratch)
{
    return depthwise_planar(p, in, out, scratch, 0);
}

edgec_status edgec_depthwise_conv2d_3x3_s8(const edgec_depthwise_conv2d_opt_params *p,
                                           const int8_t *in, int8_t *out, int8_t *scratch)
{
    return depthwise_planar(p, in, out, scratch, 1);
}
