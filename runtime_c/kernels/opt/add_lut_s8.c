/*
 * add_lut_s8.c - int8 ADD with the per-input rescale read from two 256-entry tables.
 *
 * TFLite's int8 ADD rescales each input alone (offset, << left_shift, MBQM), so each
 * rescaled input is a function of one byte: the selection tabulates it at compile time
 * (toolchain/lower/select.py, edgec_kernels_opt.h). What remains per element is the sum
 * and the output requantization, in fast mode one SMMLAR (edgec_opt_rq_conv). The bytes
 * equal edgec_add_s8's.
 */
#include "edgec_opt.h"
#include "edgec_elementwise.h"

#include <stddef.h>

/* add_flat is instantiated twice (exact or not): inlined, each copy loses its branch. */
#if defined(__GNUC__)
#define ADD_INLINE static inline __attribute__((always_inline))
#else
#define ADD_INLINE static inline
#endif

/* The output requantization, copied out of the params: stores through `out` (int8_t) may
 * alias anything, so fields read in the loop would be re-read after every store. */
typedef struct {
    int32_t mult, round, shift, offset, act_min, act_max;
} add_rq;

static inline add_rq add_rq_of(const edgec_add_lut_params *p, int exact)
{
    add_rq q;
    q.mult = exact ? p->output_multiplier : p->rq_mult;
    q.round = p->rq_round;
    q.shift = exact ? p->output_shift : p->rq_shift;
    q.offset = p->output_offset;
    q.act_min = p->act_min;
    q.act_max = p->act_max;
    return q;
}

/* One output from the two rescaled inputs; `exact` is a constant at each call site. */
ADD_INLINE int8_t add_out(add_rq q, int32_t sum, int exact)
{
    int32_t v;
    if (exact) {
        v = edgec_mbqm(sum, q.mult, q.shift) + q.offset;
    } else {
        v = edgec_opt_rq_conv(sum, q.mult, q.round, q.shift);
    }
    v = edgec_max_i32(v, q.act_min);
    return (int8_t)edgec_min_i32(v, q.act_max);
}

static inline int8_t add_one(const void *params, int8_t a, int8_t b)
{
    const edgec_add_lut_params *p = (const edgec_add_lut_params *)params;
    const int exact = (p->flags & EDGEC_OPT_RQ_EXACT) != 0;
    return add_out(add_rq_of(p, exact), p->table1[(uint8_t)a] + p->table2[(uint8_t)b], exact);
}

/* Same-shape inputs: four elements per pass (one word of each input), then the tail. Each
 * pass reads its words before it writes, so out may equal a or b. */
ADD_INLINE void add_flat(const edgec_add_lut_params *p, const int8_t *a, const int8_t *b,
                            int8_t *out, int32_t size, int exact)
{
    const int32_t *t1 = p->table1;
    const int32_t *t2 = p->table2;
    const add_rq q = add_rq_of(p, exact);
    int32_t i = 0;
    for (; i + 4 <= size; i += 4) {
        const uint32_t va = (uint32_t)edgec_opt_read_s8x4(a + i);
        const uint32_t vb = (uint32_t)edgec_opt_read_s8x4(b + i);
        const int8_t y0 = add_out(q, t1[va & 0xFFu] + t2[vb & 0xFFu], exact);
        const int8_t y1 = add_out(q, t1[(va >> 8) & 0xFFu] + t2[(vb >> 8) & 0xFFu], exact);
        const int8_t y2 = add_out(q, t1[(va >> 16) & 0xFFu] + t2[(vb >> 16) & 0xFFu], exact);
        const int8_t y3 = add_out(q, t1[va >> 24] + t2[vb >> 24], exact);
        out[i] = y0;
        out[i + 1] = y1;
        out[i + 2] = y2;
        out[i + 3] = y3;
    }
    for (; i < size; ++i) {
        out[i] = add_out(q, t1[(uint8_t)a[i]] + t2[(uint8_t)b[i]], exact);
    }
}

edgec_status edgec_add_lut_s8(const edgec_add_lut_params *p, const int8_t *a, const int8_t *b,
                              int8_t *out)
{
    const edgec_dims *d;

    if (p == NULL || a == NULL || b == NULL || out == NULL || p->table1 == NULL ||
        p->table2 == NULL) {
        return EDGEC_ERR_ARG;
    }
    d = &p->output;
    if (d->n < 1 || d->h < 1 || d->w < 1 || d->c < 1 || p->output_shift > 0 ||
        p->act_min > p->act_max ||
        (!(p->flags & EDGEC_OPT_RQ_EXACT) && (p->rq_shift < 1 || p->rq_shift > 31))) {
        return EDGEC_ERR_ARG;
    }
    if (d->n == 1 && d->h == 1 && d->w == 1 && p->input1_stride.c == 1 &&
        p->input2_stride.c == 1) {
        if (p->flags & EDGEC_OPT_RQ_EXACT) {
            add_flat(p, a, b, out, d->c, 1);
        } else {
            add_flat(p, a, b, out, d->c, 0);
        }
        return EDGEC_OK;
    }
    edgec_broadcast_binary(d, &p->input1_stride, &p->input2_stride, a, b, out, add_one, p);
    return EDGEC_OK;
}
