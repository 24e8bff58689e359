/*
 * tokens_opt_s8.c - fully connected layers on token matrices [rows, C] (optimized kernels):
 *   edgec_fully_connected_rows_s8 / _rows_fast_s8   one layer (a ViT's qkv, proj)
 *   edgec_mlp_opt_s8 / edgec_mlp_fast_s8            fc1 -> [table, e.g. GELU] -> fc2
 * Bit-exact with edgec_fully_connected_s8 (LiteRT's single rounding) and edgec_mlp_s8.
 *
 * Two tokens at a time: their rows (+ input offset) go to scratch as int16 pairs in
 * SXTB16 order, and the 2 x 2 micro-kernels of the convolutions (edgec_gemm2x2.h) give two
 * tokens x two output channels per weight pass: each weight word read serves both tokens
 * (15 instructions per 16 MACs with int8 weights, 11 with int16). The MLP runs fc1 for the
 * token pair into an int8 hidden pair (through the table), expands it, and runs fc2: the
 * hidden layer never exists beyond two tokens.
 *
 * In place (out == in) when out_depth <= in_depth: a pair's input rows are expanded before
 * its outputs are written, and those end no later than the input rows already read.
 */
#include "edgec_kernels_opt.h"
#include "edgec_opt.h"
#include "edgec_gemm2x2.h"

#include <stddef.h>

enum { MODE_FAST = 0, MODE_CLAMP = 1, MODE_EXACT = 2 }; /* as in conv2d_gemm_s8.c */

/* One layer's constants, out of the params (int8 stores could alias them). */
typedef struct {
    int32_t cout, n8, wstride, flags, output_offset, act_min, act_max;
    const int32_t *weights, *rq;
    const int8_t *table; /* applied to the outputs, or NULL */
} layer_consts;

/* One output, LiteRT's single rounding: fast mode (int8 range or a narrower clamp) or
 * exact mode; then the table. */
static EDGEC_GEMM_INLINE int8_t out_fc(int32_t acc, const int32_t *q, const layer_consts *k,
                                       int mode)
{
    int32_t v;
    if (mode == MODE_FAST) {
        v = edgec_opt_sat8(edgec_opt_rq_fc(acc + q[0], q[1], q[2], q[3]));
    } else if (mode == MODE_CLAMP) {
        v = edgec_opt_rq_fc(acc + q[0], q[1], q[2], q[3]);
        v = edgec_min_i32(edgec_max_i32(v, k->act_min), k->act_max);
    } else {
        v = edgec_opt_requant(acc, q, k->flags, k->output_offset, k->act_min, k->act_max, 1);
    }
    return k->table != NULL ? k->table[(uint8_t)v] : (int8_t)v;
}

/*
 * All output channels of the token pair whose rows are in `rows`, into ya and yb (yb may
 * be ya: an odd last token). B's outputs are stored first.
 */
static EDGEC_GEMM_INLINE void pair_channels(const int32_t *rows, const layer_consts *k,
                                            int8_t *ya, int8_t *yb, int w16, int mode)
{
    const int32_t *w = k->weights, *q = k->rq;
    int32_t oc;
    for (oc = 0; oc < k->cout; oc += 2, w += k->wstride, q += 8) {
        int32_t acc[4] = {0, 0, 0, 0};
        if (w16) {
            gemm2x2_w16(rows, w, k->n8, acc);
        } else {
            gemm2x2_w8(rows, w, k->n8, acc);
        }
        if (oc + 1 < k->cout) {
            const int8_t a0 = out_fc(acc[0], q, k, mode), a1 = out_fc(acc[1], q + 4, k, mode);
            const int8_t b0 = out_fc(acc[2], q, k, mode), b1 = out_fc(acc[3], q + 4, k, mode);
            yb[oc] = b0;
            yb[oc + 1] = b1;
            ya[oc] = a0;
            ya[oc + 1] = a1;
        } else { /* an odd last channel (its pair is padded with a zero channel) */
            const int8_t a0 = out_fc(acc[0], q, k, mode), b0 = out_fc(acc[2], q, k, mode);
            yb[oc] = b0;
            ya[oc] = a0;
        }
    }
}

static EDGEC_GEMM_INLINE void run_pair(const int32_t *rows, const layer_consts *k, int8_t *ya,
                                       int8_t *yb, int w16)
{
    if (k->flags == 0) {
        pair_channels(rows, k, ya, yb, w16, MODE_FAST);
    } else if (k->flags == EDGEC_OPT_CLAMP) {
        pair_channels(rows, k, ya, yb, w16, MODE_CLAMP);
    } else {
        pair_channels(rows, k, ya, yb, w16, MODE_EXACT);
    }
}

static layer_consts consts_of(int32_t cout, int32_t depth_pad, int32_t flags,
                              int32_t output_offset, int32_t act_min, int32_t act_max,
                              const int32_t *weights, const int32_t *rq, const int8_t *table,
                              int w16)
{
    layer_consts k;
    k.cout = cout;
    k.n8 = depth_pad / 8;
    k.wstride = w16 ? depth_pad : depth_pad / 2; /* words per channel pair */
    k.flags = flags;
    k.output_offset = output_offset;
    k.act_min = act_min;
    k.act_max = act_max;
    k.weights = weights;
    k.rq = rq;
    k.table = table;
    return k;
}

/* Tokens t and t + 1 (t again when it is the last one) of [rows, depth] into `rows_buf`. */
static void expand_pair(int32_t *rows_buf, const int8_t *in, int32_t t, int32_t rows,
                        int32_t depth, int32_t depth_pad, int32_t offset)
{
    const int32_t t1 = t + 1 < rows ? t + 1 : t;
    expand_row(rows_buf, in + t * depth, depth, depth_pad, offset);
    expand_row(rows_buf + 2, in + t1 * depth, depth, depth_pad, offset);
}

/* ---- one layer ---------------------------------------------------------------------- */

int32_t edgec_fully_connected_rows_s8_scratch_size(const edgec_fully_connected_rows_params *p)
{
    return 4 * p->depth_pad; /* two rows of depth_pad int16 values */
}

static EDGEC_GEMM_INLINE edgec_status fc_rows(const edgec_fully_connected_rows_params *p,
                                              const int8_t *in, int8_t *out, int8_t *scratch,
                                              int w16)
{
    int32_t t, rows, depth, depth_pad, offset;
    layer_consts k;
    int32_t *buf = (int32_t *)(void *)scratch;

    if (p == NULL || in == NULL || out == NULL || scratch == NULL || p->weights == NULL ||
        p->rq == NULL || ((uintptr_t)scratch & 3u) != 0) {
        return EDGEC_ERR_ARG;
    }
    if (p->rows < 0 || p->in_depth < 1 || p->out_depth < 1 || p->act_min > p->act_max ||
        p->depth_pad < p->in_depth || (p->depth_pad & 7) != 0) {
        return EDGEC_ERR_ARG;
    }
    rows = p->rows;
    depth = p->in_depth;
    depth_pad = p->depth_pad;
    offset = p->input_offset;
    k = consts_of(p->out_depth, depth_pad, p->flags, p->output_offset, p->act_min, p->act_max,
                  p->weights, p->rq, NULL, w16);
    for (t = 0; t < rows; t += 2) {
        int8_t *ya = out + t * k.cout;
        expand_pair(buf, in, t, rows, depth, depth_pad, offset);
        run_pair(buf, &k, ya, t + 1 < rows ? ya + k.cout : ya, w16);
    }
    return EDGEC_OK;
}

edgec_status edgec_fully_connected_rows_s8(const edgec_fully_connected_rows_params *p,
                                           const int8_t *in, int8_t *out, int8_t *scratch)
{
    return fc_rows(p, in, out, scratch, 0);
}

edgec_status edgec_fully_connected_rows_fast_s8(const edgec_fully_connected_rows_params *p,
                                                const int8_t *in, int8_t *out,
                                                int8_t *scratch)
{
    return fc_rows(p, in, out, scratch, 1);
}

/* ---- the MLP ------------------------------------------------------------------------ */

/* The int16 rows (of the input, then of the hidden pair), then the int8 hidden pair. */
static int32_t mlp_rows_bytes(const edgec_mlp_opt_params *p)
{
    return 4 * (p->in_pad > p->hidden_pad ? p->in_pad : p->hidden_pad);
}

int32_t edgec_mlp_opt_s8_scratch_size(const edgec_mlp_opt_params *p)
{
    return mlp_rows_bytes(p) + 2 * p->hidden_pad;
}

static EDGEC_GEMM_INLINE edgec_status mlp(const edgec_mlp_opt_params *p, const int8_t *in,
                                          int8_t *out, int8_t *scratch, int w16)
{
    int32_t t, rows, depth, hidden, in_pad, hidden_pad, off1, off2;
    layer_consts k1, k2;
    int32_t *buf = (int32_t *)(void *)scratch;
    int8_t *h;

    if (p == NULL || in == NULL || out == NULL || scratch == NULL || p->fc1_weights == NULL ||
        p->fc1_rq == NULL || p->fc2_weights == NULL || p->fc2_rq == NULL ||
        ((uintptr_t)scratch & 3u) != 0) {
        return EDGEC_ERR_ARG;
    }
    if (p->rows < 0 || p->in_depth < 1 || p->hidden < 1 || p->out_depth < 1 ||
        p->fc1_act_min > p->fc1_act_max || p->fc2_act_min > p->fc2_act_max ||
        p->in_pad < p->in_depth || (p->in_pad & 7) != 0 || p->hidden_pad < p->hidden ||
        (p->hidden_pad & 7) != 0) {
        return EDGEC_ERR_ARG;
    }
    rows = p->rows;
    depth = p->in_depth;
    hidden = p->hidden;
    in_pad = p->in_pad;
    hidden_pad = p->hidden_pad;
    off1 = p->fc1_input_offset;
    off2 = p->fc2_input_offset;
    h = scratch + mlp_rows_bytes(p);
    k1 = consts_of(hidden, in_pad, p->fc1_flags, p->fc1_output_offset, p->fc1_act_min,
                   p->fc1_act_max, p->fc1_weights, p->fc1_rq, p->table, w16);
    k2 = consts_of(p->out_depth, hidden_pad, p->fc2_flags, p->fc2_output_offset,
                   p->fc2_act_min, p->fc2_act_max, p->fc2_weights, p->fc2_rq, NULL, w16);
    for (t = 0; t < rows; t += 2) {
        int8_t *ya = out + t * k2.cout;
        /* fc1 (and the table) of tokens t, t + 1 into h[0..H) and h[H..2H) (the same
         * token twice when t is the last), then fc2 of the pair from them */
        expand_pair(buf, in, t, rows, depth, in_pad, off1);
        run_pair(buf, &k1, h, h + hidden, w16);
        expand_pair(buf, h, 0, 2, hidden, hidden_pad, off2);
        run_pair(buf, &k2, ya, t + 1 < rows ? ya + k2.cout : ya, w16);
    }
    return EDGEC_OK;
}

edgec_status edgec_mlp_opt_s8(const edgec_mlp_opt_params *p, const int8_t *in, int8_t *out,
                              int8_t *scratch)
{
    return mlp(p, in, out, scratch, 0);
}

edgec_status edgec_mlp_fast_s8(const edgec_mlp_opt_params *p, const int8_t *in, int8_t *out,
                               int8_t *scratch)
{
    return mlp(p, in, out, scratch, 1);
}
