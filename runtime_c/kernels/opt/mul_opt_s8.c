/*
 * mul_opt_s8.c - int8 MUL with the fast output requantization.
 *
 * TFLite's int8 MUL is one product of the offset inputs and one MBQM per element; here the
 * offsets are added four bytes at a time (SXTAB16), the products are halfword multiplies
 * and the requantization is edgec_opt_rq_conv's SMMLAR (or the reference primitives in exact
 * mode). The bytes equal edgec_mul_s8's.
 */
#include "edgec_opt.h"
#include "edgec_elementwise.h"

#include <stddef.h>

/* mul_flat is instantiated twice (exact or not): inlined, each copy loses its branch. */
#if defined(__GNUC__)
#define MUL_INLINE static inline __attribute__((always_inline))
#else
#define MUL_INLINE static inline
#endif

/* The output requantization, copied out of the params (stores through `out` may alias
 * them, see add_lut_s8.c). */
typedef struct {
    int32_t mult, round, shift, offset, act_min, act_max;
} mul_rq;

static inline mul_rq mul_rq_of(const edgec_mul_opt_params *p, int exact)
{
    mul_rq q;
    q.mult = exact ? p->output_multiplier : p->rq_mult;
    q.round = p->rq_round;
    q.shift = exact ? p->output_shift : p->rq_shift;
    q.offset = p->output_offset;
    q.act_min = p->act_min;
    q.act_max = p->act_max;
    return q;
}

MUL_INLINE int8_t mul_out(mul_rq q, int32_t product, int exact)
{
    int32_t v;
    if (exact) {
        v = edgec_add_wrap(edgec_mbqm(product, q.mult, q.shift), q.offset);
    } else {
        v = edgec_opt_rq_conv(product, q.mult, q.round, q.shift);
    }
    v = edgec_max_i32(v, q.act_min);
    return (int8_t)edgec_min_i32(v, q.act_max);
}

static inline int8_t mul_one(const void *params, int8_t a, int8_t b)
{
    const edgec_mul_opt_params *p = (const edgec_mul_opt_params *)params;
    const int exact = (p->flags & EDGEC_OPT_RQ_EXACT) != 0;
    return mul_out(mul_rq_of(p, exact),
                   ((int32_t)a + p->input1_offset) * ((int32_t)b + p->input2_offset), exact);
}

/* Same-shape inputs: four elements per pass; each pass reads before it writes. */
MUL_INLINE void mul_flat(const edgec_mul_opt_params *p, const int8_t *a, const int8_t *b,
                         int8_t *out, int32_t size, int exact)
{
    const int32_t off1 = p->input1_offset;
    const int32_t off2 = p->input2_offset;
    const mul_rq q = mul_rq_of(p, exact);
    int32_t i = 0;
    for (; i + 4 <= size; i += 4) {
        int32_t a02, a13, b02, b13;
        edgec_opt_expand4(edgec_opt_read_s8x4(a + i), off1, &a02, &a13);
        edgec_opt_expand4(edgec_opt_read_s8x4(b + i), off2, &b02, &b13);
        {
            const int8_t y0 = mul_out(q, edgec_opt_lo16(a02) * edgec_opt_lo16(b02), exact);
            const int8_t y1 = mul_out(q, edgec_opt_lo16(a13) * edgec_opt_lo16(b13), exact);
            const int8_t y2 = mul_out(q, edgec_opt_hi16(a02) * edgec_opt_hi16(b02), exact);
            const int8_t y3 = mul_out(q, edgec_opt_hi16(a13) * edgec_opt_hi16(b13), exact);
            out[i] = y0;
            out[i + 1] = y1;
            out[i + 2] = y2;
            out[i + 3] = y3;
        }
    }
    for (; i < size; ++i) {
        out[i] = mul_out(q, ((int32_t)a[i] + off1) * ((int32_t)b[i] + off2), exact);
    }
}

edgec_status edgec_mul_opt_s8(const edgec_mul_opt_params *p, const int8_t *a, const int8_t *b,
                              int8_t *out)
{
    const edgec_dims *d;

    if (p == NULL || a == NULL || b == NULL || out == NULL) {
        return EDGEC_ERR_ARG;
    }
    d = &p->output;
    if (d->n < 1 || d->h < 1 || d->w < 1 || d->c < 1 || p->output_shift > 15 ||
        p->output_shift < -31 || p->act_min > p->act_max ||
        (!(p->flags & EDGEC_OPT_RQ_EXACT) && (p->rq_shift < 1 || p->rq_shift > 31))) {
        return EDGEC_ERR_ARG;
    }
    if (d->n == 1 && d->h == 1 && d->w == 1 && p->input1_stride.c == 1 &&
        p->input2_stride.c == 1) {
        if (p->flags & EDGEC_OPT_RQ_EXACT) {
            mul_flat(p, a, b, out, d->c, 1);
        } else {
            mul_flat(p, a, b, out, d->c, 0);
        }
        return EDGEC_OK;
    }
    edgec_broadcast_binary(d, &p->input1_stride, &p->input2_stride, a, b, out, mul_one, p);
    return EDGEC_OK;
}
