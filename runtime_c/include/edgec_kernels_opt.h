/*
 * edgec_kernels_opt.h - optimized int8 kernels of the edgec runtime (runtime_c/kernels/opt).
 *
 * Each optimized kernel computes exactly the bytes of a reference kernel of edgec_kernels.h
 * (and so of TFLite's reference integer kernels) from parameters that edgec's kernel
 * selection (toolchain/lower/select.py) derives from the reference ones at compile time:
 * weights re-laid out for the inner loop, a per-channel requantization table, padded depths.
 * Codegen picks the variant per layer (recorded in the generated call); a kernel re-checks
 * what it relies on and returns EDGEC_ERR_ARG otherwise.
 *
 * Every kernel has two paths in one function: under __ARM_FEATURE_DSP (Cortex-M4/M7/M33
 * with the DSP extension) the inner loops use SXTB16/SXTAB16/SMLAD; otherwise a portable C
 * path computes the same integers. Both equal the reference bit for bit.
 *
 * Same call convention as edgec_kernels.h:
 *     edgec_status kernel(const params *p, const int8_t *in, int8_t *out[, int8_t *scratch]);
 * Every kernel that takes a scratch buffer has a `<kernel>_scratch_size(p)` twin giving its
 * size in bytes (toolchain/lower/select.py computes the same number for the planner; a test
 * checks both agree). Scratch must be 4-byte aligned.
 *
 * Requantization table ("rq", int32 [C_OUT][4]) - per output channel c:
 *   rq[c][0]  bias'   the int32 bias, plus input_offset * sum(w[c]) where the kernel folds
 *                     the input offset into the bias (fully connected only)
 *   rq[c][1]  mult    fast mode: 2 * multiplier as a 32-bit pattern (the multiplier is in
 *                     [2^30, 2^31), so 2m in [2^31, 2^32); read as int32 it is 2m - 2^32)
 *                     exact mode: the reference Q31 multiplier
 *   rq[c][2]  round   fast mode: 2^(e-1) + output_offset * 2^e, e = -shift >= 1
 *                     exact mode: unused (0)
 *   rq[c][3]  shift   fast mode: e = -shift (>= 1); exact mode: the reference shift
 * Fast mode (flags without EDGEC_OPT_RQ_EXACT) needs every shift <= -1, and the compile-time
 * bounds checked at compile time (|acc| small enough that the 64-bit sums below cannot
 * overflow); it then computes, for an int32 accumulator a and t = a >> 31 (0 or -1):
 *     hi:lo  = (round + a + t) : L,          L = 2^31 (conv, depthwise) or t (fc)
 *     hi:lo += a * (int32)mult               (one SMLAL)
 *     y      = hi >> e                       = MBQM(a) + output_offset  (conv, depthwise)
 *                                            = round-half-away(a * m * 2^(shift-31))
 *                                              + output_offset          (fully connected)
 * which equals the reference's double-rounding MultiplyByQuantizedMultiplier (resp. the
 * single rounding of the reference fully connected kernel) for every int32 a: the proof is
 * in toolchain/lower/opt_layout.py (requant_table); tests/test_kernels_opt.py checks it on
 * random and tie values. A zero multiplier (a tiny scale) is stored as (2^30, -e) with
 * 2^e above the channel's accumulator bound, which also gives 0. Exact mode calls the
 * reference primitives.
 */
#ifndef EDGEC_KERNELS_OPT_H
#define EDGEC_KERNELS_OPT_H

#include "edgec_kernels.h"

#ifdef __cplusplus
extern "C" {
#endif

/* params.flags */
#define EDGEC_OPT_RQ_EXACT 1 /**< rq holds the reference (multiplier, shift): exact mode */
#define EDGEC_OPT_CLAMP 2    /**< [act_min, act_max] is narrower than [-128, 127] */
#define EDGEC_OPT_DW_TRANSPOSED 4 /**< depthwise: plane rows run along W (see below) */

/* ------------------------------------------------------------------------------------ */
/* CONV_2D as an int16 matrix product: 1x1 and im2col                                    */
/* ------------------------------------------------------------------------------------ */

/**
 * Parameters of edgec_conv2d_1x1_s8 / edgec_conv2d_im2col_s8 and their _fast twins.
 *
 * The convolution is a matrix product: out[pixel, co] = rq(sum_k w[co, k] * x[pixel, k]),
 * k = (ky, kx, ci) over depth = KH * KW * C_IN values, x = input + input_offset (0 for taps
 * in the padding). Two output pixels and two output channels are computed per inner loop,
 * over the depth padded to `depth_pad` (a multiple of 8) with zero weights.
 *
 * weights, _fast kernels (int16 pairs, one int32 each): for each pair of output channels
 * (2j, 2j+1) (a zero channel pads an odd C_OUT), for each block of 4 depth values k..k+3:
 *     {w[2j][k], w[2j][k+2]}, {w[2j][k+1], w[2j][k+3]}, the same two words for 2j + 1
 * (low halfword first), i.e. the order SXTB16 / SXTB16 ROR #8 give the activations.
 * weights, compact kernels (int8, 4 per int32): for each pair of output channels, for each
 * block of 4 depth values: the 4 bytes of channel 2j, then the 4 bytes of channel 2j + 1.
 */
typedef struct {
    edgec_dims input;           /**< [N, H, W, C_IN] */
    edgec_dims output;          /**< [N, OH, OW, C_OUT] */
    edgec_hw kernel;            /**< (KH, KW); (1, 1) for the 1x1 kernels */
    edgec_hw stride;            /**< >= 1 */
    edgec_hw dilation;          /**< >= 1 */
    edgec_hw padding;           /**< top (h) and left (w); 0 for the 1x1 kernels */
    int32_t depth_pad;          /**< KH * KW * C_IN rounded up to a multiple of 8 */
    int32_t input_offset;       /**< -input zero point, [-127, 128] */
    int32_t output_offset;      /**< output zero point (folded into rq in fast mode) */
    int32_t act_min;            /**< clamp, output units */
    int32_t act_max;
    int32_t flags;              /**< EDGEC_OPT_* */
    const int32_t *weights;     /**< packed, see above */
    const int32_t *rq;          /**< [C_OUT][4] requantization table, see the file header */
} edgec_conv2d_opt_params;

/** 1x1 convolution, no padding, any stride: int8 weights. In place: with C_OUT <= C_IN
 *  `out` may equal `in` (each pixel pair is read into scratch before it is written). */
edgec_status edgec_conv2d_1x1_s8(const edgec_conv2d_opt_params *p, const int8_t *in,
                                 int8_t *out, int8_t *scratch);
/** As edgec_conv2d_1x1_s8 with int16 weights (twice the flash, fewer instructions). */
edgec_status edgec_conv2d_1x1_fast_s8(const edgec_conv2d_opt_params *p, const int8_t *in,
                                      int8_t *out, int8_t *scratch);
/** Scratch of both 1x1 kernels: two int16 rows of depth_pad values. */
int32_t edgec_conv2d_1x1_s8_scratch_size(const edgec_conv2d_opt_params *p);

/** Any convolution (kernel, stride, dilation, padding) through im2col of two pixels into
 *  scratch: int8 weights. Also runs a depthwise convolution with one input channel. */
edgec_status edgec_conv2d_im2col_s8(const edgec_conv2d_opt_params *p, const int8_t *in,
                                    int8_t *out, int8_t *scratch);
/** As edgec_conv2d_im2col_s8 with int16 weights. */
edgec_status edgec_conv2d_im2col_fast_s8(const edgec_conv2d_opt_params *p, const int8_t *in,
                                         int8_t *out, int8_t *scratch);
/** Scratch of both im2col kernels: two int8 patches and two int16 rows of depth_pad. */
int32_t edgec_conv2d_im2col_s8_scratch_size(const edgec_conv2d_opt_params *p);

/* ------------------------------------------------------------------------------------ */
/* DEPTHWISE_CONV_2D, one channel plane at a time                                       */
/* ------------------------------------------------------------------------------------ */

/**
 * Parameters of edgec_depthwise_conv2d_opt_s8 / edgec_depthwise_conv2d_3x3_s8.
 *
 * Each input channel is copied, plus input_offset, into an int16 plane in scratch with a
 * zero border (`plane` = rows x row stride, in int16 values), so every tap of every output
 * is inside the plane and contributes w * (x + input_offset) or 0, as the reference.
 * Output channel c * depth_multiplier + m is then computed from plane c. The plane rows
 * run along H (plane[y][x]), or along W with EDGEC_OPT_DW_TRANSPOSED (plane[x][y]); below,
 * "rows" and "along a row" are in these plane coordinates: (y, x), or (x, y) transposed.
 *
 * weights (int16 pairs in int32): for each output channel, for each filter row, the
 * row's taps two by two {w[r][k], w[r][k + 1]}, the last pair of an odd row padded
 * with 0: ceil(taps along a row / 2) words per filter row.
 * plane.h >= (out rows - 1) * stride + (filter rows - 1) * dilation + 1 and >= padding +
 * input rows; plane.w >= (out cols - 1 + out cols % 2) * stride + (filter cols - 1) *
 * dilation + 2 and >= padding + input cols (room for paired loads).
 */
typedef struct {
    edgec_dims input;           /**< [N, H, W, C_IN] */
    edgec_dims output;          /**< [N, OH, OW, C_OUT], C_OUT = C_IN * depth_multiplier */
    edgec_hw kernel;            /**< (KH, KW) */
    edgec_hw stride;
    edgec_hw dilation;          /**< (1, 1) for edgec_depthwise_conv2d_3x3_s8 */
    edgec_hw padding;           /**< top (h), left (w) */
    edgec_hw plane;             /**< int16 plane: rows, row stride (values; >= W + pads,
                                     and one more than the last tap column) */
    int32_t depth_multiplier;   /**< >= 1 */
    int32_t input_offset;
    int32_t output_offset;
    int32_t act_min;
    int32_t act_max;
    int32_t flags;              /**< EDGEC_OPT_* */
    const int32_t *weights;     /**< packed, see above */
    const int32_t *rq;          /**< [C_OUT][4] */
} edgec_depthwise_conv2d_opt_params;

/** Any depthwise convolution. In place: with depth_multiplier 1 `out` may equal `in`
 *  (channel c of the output is written only after input channel c is in the plane). */
edgec_status edgec_depthwise_conv2d_opt_s8(const edgec_depthwise_conv2d_opt_params *p,
                                           const int8_t *in, int8_t *out, int8_t *scratch);
/** 3x3 filter, dilation 1 (any stride, padding, depth multiplier); in place as above. */
edgec_status edgec_depthwise_conv2d_3x3_s8(const edgec_depthwise_conv2d_opt_params *p,
                                           const int8_t *in, int8_t *out, int8_t *scratch);
/** Scratch of both: the int16 plane (2 * plane.h * plane.w bytes, rounded up to a multiple
 *  of 4), then one row of int32 accumulators (4 * (output columns + 1) bytes, columns in
 *  plane coordinates). */
int32_t edgec_depthwise_conv2d_opt_s8_scratch_size(const edgec_depthwise_conv2d_opt_params *p);

/* ------------------------------------------------------------------------------------ */
/* FULLY_CONNECTED, four output channels per pass                                        */
/* ------------------------------------------------------------------------------------ */

/**
 * Parameters of edgec_fully_connected_opt_s8 / edgec_fully_connected_fast_s8.
 *
 * The input offset is folded into rq's bias (bias + input_offset * sum(w[c])), so the
 * inner loop multiplies raw int8 activations. Output channels go four at a time (zero
 * channels pad C_OUT to a multiple of 4), the depth four at a time (zero weights pad it to
 * depth_pad, a multiple of 4; the activations' last partial block is read byte by byte).
 *
 * weights, fast (int16 pairs): for each group of 4 output channels, for each block of 4
 * depth values k..k+3, for each channel of the group: {w[k], w[k+2]}, {w[k+1], w[k+3]}.
 * weights, compact (int8): for each group of 4 channels, for each block of 4 depth
 * values, for each channel of the group: its 4 bytes.
 */
typedef struct {
    int32_t rows;               /**< batch rows: the input is [rows, in_depth] */
    int32_t in_depth;           /**< C_IN */
    int32_t out_depth;          /**< C_OUT */
    int32_t depth_pad;          /**< C_IN rounded up to a multiple of 4 */
    int32_t input_offset;       /**< -input zero point: already in rq's bias (not read;
                                     kept so the reference parameters can be recovered) */
    int32_t output_offset;      /**< output zero point (folded into rq in fast mode) */
    int32_t act_min;
    int32_t act_max;
    int32_t flags;              /**< EDGEC_OPT_* */
    const int32_t *weights;     /**< packed, see above */
    const int32_t *rq;          /**< [C_OUT][4]; bias' includes the input offset */
} edgec_fully_connected_opt_params;

/** Fully connected, int8 weights (LiteRT's single rounding, as edgec_fully_connected_s8). */
edgec_status edgec_fully_connected_opt_s8(const edgec_fully_connected_opt_params *p,
                                          const int8_t *in, int8_t *out);
/** As edgec_fully_connected_opt_s8 with int16 weights. */
edgec_status edgec_fully_connected_fast_s8(const edgec_fully_connected_opt_params *p,
                                           const int8_t *in, int8_t *out);

/* ------------------------------------------------------------------------------------ */
/* ADD through two 256-entry tables; pooling and MEAN with the channels innermost        */
/* ------------------------------------------------------------------------------------ */

/**
 * Parameters of edgec_add_lut_s8: the reference parameters of edgec_add_s8 (same fields,
 * same order; the kernel reads only output, the strides, output_* and act_*), then
 * what the selection precomputes from them:
 *
 *   table1[u]  = MBQM((int8)u + input1_offset) << left_shift, input1_multiplier,
 *                input1_shift), u = the input byte read as uint8 (TFLite's scaled input
 *                1, exactly); table2 the same for input 2
 *   rq_*       the output requantization of the sum table1[a] + table2[b] in fast mode
 *              (2m, round, e as one row of the rq table above, output offset folded in),
 *              or unused with EDGEC_OPT_RQ_EXACT (then edgec_mbqm on output_multiplier,
 *              output_shift, as the reference)
 *
 * Same-shape inputs (output [1, 1, 1, size], strides {0, 0, 0, 1}) run four elements per
 * loop; any other broadcast walks the output as the reference does.
 */
typedef struct {
    edgec_dims output;
    edgec_dims input1_stride;
    edgec_dims input2_stride;
    int32_t left_shift;
    int32_t input1_offset;
    int32_t input1_multiplier;
    int32_t input1_shift;
    int32_t input2_offset;
    int32_t input2_multiplier;
    int32_t input2_shift;
    int32_t output_offset;
    int32_t output_multiplier;
    int32_t output_shift;
    int32_t act_min;
    int32_t act_max;
    int32_t flags;              /**< EDGEC_OPT_RQ_EXACT, EDGEC_OPT_CLAMP */
    int32_t rq_mult;            /**< fast mode: 2 * output_multiplier (mod 2^32) */
    int32_t rq_round;           /**< fast mode: 2^(e-1) + output_offset * 2^e */
    int32_t rq_shift;           /**< fast mode: e = -output_shift >= 1 */
    const int32_t *table1;      /**< [256] */
    const int32_t *table2;      /**< [256] */
} edgec_add_lut_params;

/** Element-wise int8 ADD, the bytes of edgec_add_s8. In place like edgec_add_s8: an input
 *  of the output's shape may share the output's buffer. */
edgec_status edgec_add_lut_s8(const edgec_add_lut_params *p, const int8_t *a, const int8_t *b,
                              int8_t *out);

/**
 * Parameters of edgec_mul_opt_s8: the reference parameters of edgec_mul_s8 (same fields,
 * same order), then the output requantization of the product in fast mode (rq_*, as for
 * edgec_add_lut_params; output offset folded in), or EDGEC_OPT_RQ_EXACT.
 */
typedef struct {
    edgec_dims output;
    edgec_dims input1_stride;
    edgec_dims input2_stride;
    int32_t input1_offset;
    int32_t input2_offset;
    int32_t output_offset;
    int32_t output_multiplier;
    int32_t output_shift;
    int32_t act_min;
    int32_t act_max;
    int32_t flags;
    int32_t rq_mult;
    int32_t rq_round;
    int32_t rq_shift;
} edgec_mul_opt_params;

/** Element-wise int8 MUL, the bytes of edgec_mul_s8: same-shape inputs four elements per
 *  loop; in place like edgec_mul_s8. */
edgec_status edgec_mul_opt_s8(const edgec_mul_opt_params *p, const int8_t *a, const int8_t *b,
                              int8_t *out);

/** The bytes of edgec_max_pool2d_s8 / edgec_avg_pool2d_s8 / edgec_mean_s8 (same
 *  parameters): each window is walked once for four channels at a time (SXTAB16 sums,
 *  SEL maxima), the average still divided per output as the reference (rounding half away
 *  from zero). */
edgec_status edgec_max_pool2d_opt_s8(const edgec_max_pool2d_params *p, const int8_t *in,
                                     int8_t *out);
edgec_status edgec_avg_pool2d_opt_s8(const edgec_avg_pool2d_params *p, const int8_t *in,
                                     int8_t *out);
edgec_status edgec_mean_opt_s8(const edgec_mean_params *p, const int8_t *in, int8_t *out);

/** The bytes of edgec_attention_s8 (same parameters; q and k contiguous along depth, depth
 *  a multiple of 4): scores by SMLAD on a once-expanded query row, the softmax's
 *  exponentials from a per-call table of the 256 possible int8 differences, P x V keys
 *  outer into int32 accumulators (attention_opt_s8.c). */
edgec_status edgec_attention_opt_s8(const edgec_attention_params *p, const int8_t *q,
                                    const int8_t *k, const int8_t *v, int8_t *out,
                                    int8_t *scratch);
int32_t edgec_attention_opt_s8_scratch_size(const edgec_attention_params *p);

/** The bytes of edgec_layer_norm_s8 (same parameters): the row sums four values per word,
 *  the per-value roundings without branches. In place like edgec_layer_norm_s8. */
edgec_status edgec_layer_norm_opt_s8(const edgec_layer_norm_params *p, const int8_t *in,
                                     int8_t *out);

/* ------------------------------------------------------------------------------------ */
/* Token matrices [rows, C]: fully connected and the token MLP, two tokens per pass      */
/* ------------------------------------------------------------------------------------ */

/**
 * Parameters of edgec_fully_connected_rows_s8 / _rows_fast_s8: a fully connected layer on
 * rows >= 2 tokens, two tokens x two output channels per inner loop (the 1x1 convolution's
 * scheme, with LiteRT's single rounding). The input offset is added to the activations
 * (not folded: rq's bias is the reference bias), the depth is padded to depth_pad (a
 * multiple of 8) with zero weights, and the weights are edgec_conv2d_opt_params' layout
 * (pairs of channels, blocks of 4; int8, or int16 pairs for _fast).
 */
typedef struct {
    int32_t rows;               /**< tokens: the input is [rows, in_depth] */
    int32_t in_depth;           /**< C_IN */
    int32_t out_depth;          /**< C_OUT */
    int32_t depth_pad;          /**< C_IN rounded up to a multiple of 8 */
    int32_t input_offset;       /**< -input zero point */
    int32_t output_offset;      /**< output zero point (folded into rq in fast mode) */
    int32_t act_min;
    int32_t act_max;
    int32_t flags;              /**< EDGEC_OPT_* */
    const int32_t *weights;     /**< packed, see above */
    const int32_t *rq;          /**< [C_OUT][4] */
} edgec_fully_connected_rows_params;

/** Fully connected on a token matrix, int8 weights; the bytes of edgec_fully_connected_s8.
 *  In place (out == in) when out_depth <= in_depth. Scratch: two int16 rows. */
edgec_status edgec_fully_connected_rows_s8(const edgec_fully_connected_rows_params *p,
                                           const int8_t *in, int8_t *out, int8_t *scratch);
/** As edgec_fully_connected_rows_s8 with int16 weights. */
edgec_status edgec_fully_connected_rows_fast_s8(const edgec_fully_connected_rows_params *p,
                                                const int8_t *in, int8_t *out,
                                                int8_t *scratch);
int32_t edgec_fully_connected_rows_s8_scratch_size(const edgec_fully_connected_rows_params *p);

/**
 * Parameters of edgec_mlp_opt_s8 / edgec_mlp_fast_s8: edgec_mlp_s8's computation (fc1 ->
 * [table] -> fc2 over [rows, C]) with each layer as edgec_fully_connected_rows_params
 * (fc1_ and fc2_ fields; in_pad and hidden_pad are their depth_pad). Tokens go two at a
 * time: the hidden layer exists for two tokens only, in scratch.
 */
typedef struct {
    int32_t rows;               /**< tokens */
    int32_t in_depth;           /**< C */
    int32_t hidden;             /**< H: fc1's outputs */
    int32_t out_depth;          /**< fc2's outputs */
    int32_t in_pad;             /**< C rounded up to a multiple of 8 */
    int32_t hidden_pad;         /**< H rounded up to a multiple of 8 */
    int32_t fc1_input_offset;
    int32_t fc1_output_offset;
    int32_t fc1_act_min;
    int32_t fc1_act_max;
    int32_t fc1_flags;
    const int32_t *fc1_weights; /**< [H, C] packed */
    const int32_t *fc1_rq;      /**< [H][4] */
    const int8_t *table;        /**< [256] applied to fc1's outputs, or NULL */
    int32_t fc2_input_offset;
    int32_t fc2_output_offset;
    int32_t fc2_act_min;
    int32_t fc2_act_max;
    int32_t fc2_flags;
    const int32_t *fc2_weights; /**< [out_depth, H] packed */
    const int32_t *fc2_rq;      /**< [out_depth][4] */
} edgec_mlp_opt_params;

/** The bytes of edgec_mlp_s8, int8 weights; in place like it. Scratch: see _scratch_size. */
edgec_status edgec_mlp_opt_s8(const edgec_mlp_opt_params *p, const int8_t *in, int8_t *out,
                              int8_t *scratch);
/** As edgec_mlp_opt_s8 with int16 weights. */
edgec_status edgec_mlp_fast_s8(const edgec_mlp_opt_params *p, const int8_t *in, int8_t *out,
                               int8_t *scratch);
/** Two int16 rows of max(in_pad, hidden_pad), then the int8 hidden pair (2 hidden_pad). */
int32_t edgec_mlp_opt_s8_scratch_size(const edgec_mlp_opt_params *p);

#ifdef __cplusplus
}
#endif

#endif /* EDGEC_KERNELS_OPT_H */
