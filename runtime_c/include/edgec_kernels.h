/*
 * edgec_kernels.h - int8 reference kernels of the edgec runtime.
 *
 * Every kernel is bit-exact with TensorFlow Lite's reference integer kernels
 * (tensorflow/lite/kernels/internal/reference/integer_ops/, TFLITE_SINGLE_ROUNDING off):
 * the same int32 accumulation, the same double-rounding fixed-point requantization
 * (MultiplyByQuantizedMultiplier) and the same clamps.
 *
 * Conventions
 *  - Activations are int8, NHWC, C order, quantized per tensor:
 *        real = scale * (q - zero_point).
 *  - Weights are int8 with a per-output-channel scale and zero point 0; bias is int32
 *    with scale input_scale * weight_scale[c] and zero point 0.
 *  - Everything a kernel needs is computed ahead of time on the host (edgec's lowering)
 *    and passed in a const params struct; no float and no allocation at run time.
 *  - "*_offset" fields are ADDED to a value: input offsets are the negated input zero
 *    point (range [-127, 128]), output offsets are the output zero point ([-128, 127]).
 *  - A requantization multiplier is a Q31 significand in [2^30, 2^31) (or 0) with a
 *    shift: shift > 0 shifts left, shift < 0 shifts right, real ~= m * 2^(shift - 31).
 *  - act_min/act_max are the fused activation clamp in output quantized units
 *    (-128..127 when there is none), act_min <= act_max.
 *
 * Call convention (fixed by edgec's lowering, see toolchain/lower/program.py):
 *     edgec_status kernel(const params *p, const int8_t *in0[, const int8_t *in1],
 *                         int8_t *out0[, int8_t *scratch]);
 * N-ary kernels (edgec_concat_s8) take their inputs as one array instead:
 *     edgec_status kernel(const params *p, const int8_t *const *inputs, int8_t *out0);
 * Kernels with no activation input (edgec_constant_s8) take only the output:
 *     edgec_status kernel(const params *p, int8_t *out0);
 * Kernels return EDGEC_OK, or EDGEC_ERR_ARG when a precondition fails (nothing written
 * in that case unless stated). Output buffers must not overlap the inputs unless stated.
 */
#ifndef EDGEC_KERNELS_H
#define EDGEC_KERNELS_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/** Status returned by every kernel. */
typedef enum {
    EDGEC_OK = 0,      /**< success */
    EDGEC_ERR_ARG = 1  /**< a null pointer, a bad shape or a bad parameter */
} edgec_status;

/** A 4-D shape, NHWC for activations; [C_OUT, KH, KW, C_IN] for conv filters. */
typedef struct {
    int32_t n;
    int32_t h;
    int32_t w;
    int32_t c;
} edgec_dims;

/** A (height, width) pair: strides, dilations, pooling windows, or the top/left padding. */
typedef struct {
    int32_t h;
    int32_t w;
} edgec_hw;

/* ------------------------------------------------------------------------------------ */
/* CONV_2D                                                                               */
/* ------------------------------------------------------------------------------------ */

/** Parameters of edgec_conv2d_s8 (TFLite reference_integer_ops::ConvPerChannel). */
typedef struct {
    edgec_dims input;           /**< [N, H, W, C_IN] */
    edgec_dims filter;          /**< [C_OUT, KH, KW, C_IN] (n = C_OUT, c = C_IN) */
    edgec_dims output;          /**< [N, OH, OW, C_OUT] */
    edgec_hw stride;            /**< >= 1 */
    edgec_hw dilation;          /**< >= 1 */
    edgec_hw padding;           /**< top (h) and left (w) padding in input pixels, >= 0 */
    int32_t input_offset;       /**< -input zero point, [-127, 128] */
    int32_t output_offset;      /**< output zero point, [-128, 127] */
    int32_t act_min;            /**< clamp, output units */
    int32_t act_max;            /**< clamp, output units */
    const int8_t *weights;      /**< [C_OUT, KH, KW, C_IN] */
    const int32_t *bias;        /**< [C_OUT], or NULL for no bias */
    const int32_t *output_multiplier; /**< [C_OUT], Q31 significands */
    const int32_t *output_shift;      /**< [C_OUT], left shift if > 0, right if < 0 */
} edgec_conv2d_params;

/**
 * 2-D convolution, int8 in/out, per-channel quantized int8 weights, int32 bias.
 *
 * out[n, y, x, co] = clamp(output_offset + MBQM(acc, output_multiplier[co],
 *                          output_shift[co]), act_min, act_max) with
 * acc = bias[co] + sum_{ky, kx, ci} w[co, ky, kx, ci] * (in[n, iy, ix, ci] + input_offset),
 * iy = y * stride.h - padding.h + ky * dilation.h (same for x); taps outside the image
 * are skipped (zero padding in real units).
 *
 * Accumulator: each product is at most 128 * 255 = 32640 < 2^15 in magnitude, so the
 * int32 accumulator cannot overflow for up to 2^16 taps (KH * KW * C_IN); edgec's lowering
 * additionally checks the exact bound sum|w| * 255 + |bias| < 2^31 per channel.
 *
 * @param[in]  p    parameters
 * @param[in]  in   input activations [N, H, W, C_IN]
 * @param[out] out  output activations [N, OH, OW, C_OUT]
 * @return EDGEC_OK or EDGEC_ERR_ARG
 */
edgec_status edgec_conv2d_s8(const edgec_conv2d_params *p, const int8_t *in, int8_t *out);

/* ------------------------------------------------------------------------------------ */
/* DEPTHWISE_CONV_2D                                                                     */
/* ------------------------------------------------------------------------------------ */

/** Parameters of edgec_depthwise_conv2d_s8 (reference_integer_ops::DepthwiseConvPerChannel). */
typedef struct {
    edgec_dims input;           /**< [N, H, W, C_IN] */
    edgec_dims filter;          /**< [1, KH, KW, C_OUT], C_OUT = C_IN * depth_multiplier */
    edgec_dims output;          /**< [N, OH, OW, C_OUT] */
    edgec_hw stride;
    edgec_hw dilation;
    edgec_hw padding;           /**< top (h), left (w) */
    int32_t depth_multiplier;   /**< >= 1 */
    int32_t input_offset;       /**< -input zero point */
    int32_t output_offset;      /**< output zero point */
    int32_t act_min;
    int32_t act_max;
    const int8_t *weights;      /**< [1, KH, KW, C_OUT] */
    const int32_t *bias;        /**< [C_OUT] or NULL */
    const int32_t *output_multiplier; /**< [C_OUT] */
    const int32_t *output_shift;      /**< [C_OUT] */
} edgec_depthwise_conv2d_params;

/**
 * Depthwise 2-D convolution: output channel co = ci * depth_multiplier + m reads only
 * input channel ci. Same arithmetic and accumulator bound as edgec_conv2d_s8 with
 * KH * KW taps per output.
 *
 * @param[in]  p    parameters
 * @param[in]  in   [N, H, W, C_IN]
 * @param[out] out  [N, OH, OW, C_OUT]
 */
edgec_status edgec_depthwise_conv2d_s8(const edgec_depthwise_conv2d_params *p,
                                       const int8_t *in, int8_t *out);

/* ------------------------------------------------------------------------------------ */
/* FULLY_CONNECTED                                                                       */
/* ------------------------------------------------------------------------------------ */

/** Parameters of edgec_fully_connected_s8 (LiteRT's int8 FULLY_CONNECTED, see below). */
typedef struct {
    int32_t rows;               /**< batch rows: the input is viewed as [rows, in_depth] */
    int32_t in_depth;           /**< C_IN (accumulation depth) */
    int32_t out_depth;          /**< C_OUT */
    int32_t input_offset;       /**< -input zero point */
    int32_t output_offset;      /**< output zero point */
    int32_t act_min;
    int32_t act_max;
    const int8_t *weights;      /**< [C_OUT, C_IN] */
    const int32_t *bias;        /**< [C_OUT] or NULL */
    const int32_t *output_multiplier; /**< [C_OUT] (all equal for per-tensor weights) */
    const int32_t *output_shift;      /**< [C_OUT] */
} edgec_fully_connected_params;

/**
 * y[r, co] = clamp(output_offset + R(bias[co] + sum_ci w[co, ci] * (x[r, ci] +
 * input_offset), mult[co], shift[co]), act_min, act_max), where R rounds
 * acc * mult * 2^(shift - 31) ONCE, half away from zero: LiteRT's int8 FULLY_CONNECTED
 * (BUILTIN_REF) rounds the real-valued rescale with round(), unlike the double rounding
 * of the other kernels (and of TFLite Micro's FC), which can differ by one step on ties.
 * Accumulator bound as for conv: up to 2^16 inputs never overflow int32.
 *
 * @param[in]  p    parameters
 * @param[in]  in   [rows, C_IN]
 * @param[out] out  [rows, C_OUT]
 */
edgec_status edgec_fully_connected_s8(const edgec_fully_connected_params *p,
                                      const int8_t *in, int8_t *out);

/**
 * Parameters of edgec_fully_connected_first_s8 / _partial_s8: one part of a fully connected
 * layer's input (one row, C_IN values) at a time, summed into int32 accumulators
 * (patch-based inference, toolchain/plan/patch.py).
 */
typedef struct {
    int32_t in_depth;           /**< C_IN of the whole layer (the weights' row length) */
    int32_t col_start;          /**< first input value of this part */
    int32_t cols;               /**< input values in this part */
    int32_t out_depth;          /**< C_OUT */
    int32_t input_offset;       /**< -input zero point */
    const int8_t *weights;      /**< [C_OUT, in_depth], the whole layer's */
    const int32_t *bias;        /**< [C_OUT] or NULL; added by the first part only */
} edgec_fully_connected_partial_params;

/**
 * The first part: acc[co] = bias[co] + sum_{d < cols} w[co, col_start + d] * (in[d] +
 * input_offset).
 *
 * @param[in]  p    parameters
 * @param[in]  in   [cols] the part of the input
 * @param[out] acc  [C_OUT] int32
 */
edgec_status edgec_fully_connected_first_s8(const edgec_fully_connected_partial_params *p,
                                            const int8_t *in, int32_t *acc);

/**
 * A later part: acc[co] = acc_in[co] + the part's sum (as above). acc may be acc_in.
 *
 * @param[in]  p       parameters
 * @param[in]  in      [cols] the part of the input
 * @param[in]  acc_in  [C_OUT] the sums of the earlier parts
 * @param[out] acc     [C_OUT]
 */
edgec_status edgec_fully_connected_partial_s8(const edgec_fully_connected_partial_params *p,
                                              const int8_t *in, const int32_t *acc_in,
                                              int32_t *acc);

/** Parameters of edgec_fully_connected_finish_s8 (those of edgec_fully_connected_s8's
 * requantization). */
typedef struct {
    int32_t out_depth;          /**< C_OUT */
    int32_t output_offset;      /**< output zero point */
    int32_t act_min;
    int32_t act_max;
    const int32_t *output_multiplier; /**< [C_OUT] */
    const int32_t *output_shift;      /**< [C_OUT] */
} edgec_fully_connected_finish_params;

/**
 * The summed parts requantized as edgec_fully_connected_s8 does (one rounding, half away
 * from zero): the bytes of the layer run on the whole input at once.
 *
 * @param[in]  p    parameters
 * @param[in]  acc  [C_OUT] int32, every part summed
 * @param[out] out  [C_OUT]
 */
edgec_status edgec_fully_connected_finish_s8(const edgec_fully_connected_finish_params *p,
                                             const int32_t *acc, int8_t *out);

/* ------------------------------------------------------------------------------------ */
/* ADD                                                                                   */
/* ------------------------------------------------------------------------------------ */

/*
 * Broadcasting of the element-wise binary ops (ADD, MUL): TFLite's BroadcastBinaryFunction6DSlow
 * / NumPy rules, ranks right-aligned and padded to 4 with leading 1s. The output [N, H, W, C]
 * is walked in C order; input k reads element n*s.n + h*s.h + w*s.w + c*s.c of its own buffer
 * (s = inputk_stride), with stride 0 on the axes it is broadcast along. Without broadcasting
 * the lowering passes output [1, 1, 1, size] and strides {0, 0, 0, 1}: one flat loop.
 */

/** Parameters of edgec_add_s8 (reference_integer_ops::Add / BroadcastAdd6DSlow, prepared as
 * kernels/add.cc). */
typedef struct {
    edgec_dims output;          /**< output shape [N, H, W, C] (see Broadcasting above) */
    edgec_dims input1_stride;   /**< element strides of input 1, 0 on broadcast axes */
    edgec_dims input2_stride;   /**< element strides of input 2, 0 on broadcast axes */
    int32_t left_shift;         /**< 20 for int8 */
    int32_t input1_offset;      /**< -zero point of input 1 */
    int32_t input1_multiplier;  /**< s1 / (2 max(s1, s2)), Q31 */
    int32_t input1_shift;       /**< <= 0 */
    int32_t input2_offset;
    int32_t input2_multiplier;
    int32_t input2_shift;       /**< <= 0 */
    int32_t output_offset;      /**< output zero point */
    int32_t output_multiplier;  /**< 2 max(s1, s2) / (2^left_shift s_out), Q31 */
    int32_t output_shift;       /**< <= 0 */
    int32_t act_min;
    int32_t act_max;
} edgec_add_params;

/**
 * Element-wise a + b of two int8 tensors with different scales, NumPy/TFLite broadcasting.
 * Each input is offset, shifted left by left_shift (|x + off| <= 255, 255 << 20 < 2^28),
 * rescaled to the common scale 2 max(s1, s2) / 2^20 with a multiplier < 1, summed
 * (|sum| < 2^29, no overflow) and rescaled to the output.
 * In-place use (out == a or out == b) is allowed for an input of the output's shape.
 */
edgec_status edgec_add_s8(const edgec_add_params *p, const int8_t *a, const int8_t *b,
                          int8_t *out);

/** Parameters of edgec_add_const_s8: edgec_add_params with input 2 a constant table. */
typedef struct {
    edgec_dims output;
    edgec_dims input1_stride;   /**< of the activation */
    edgec_dims input2_stride;   /**< of the constant */
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
    const int8_t *constant;     /**< input 2, int8 per-tensor quantized (in flash) */
} edgec_add_const_params;

/**
 * a + constant: edgec_add_s8 with b = p->constant (TFLite ADD with a constant input, e.g. a
 * positional embedding). ADD is symmetric, so a constant first operand is passed as input 2
 * too. In-place use (out == a) is allowed when a has the output's shape.
 */
edgec_status edgec_add_const_s8(const edgec_add_const_params *p, const int8_t *a,
                                int8_t *out);

/* ------------------------------------------------------------------------------------ */
/* MUL                                                                                   */
/* ------------------------------------------------------------------------------------ */

/** Parameters of edgec_mul_s8 (reference_integer_ops::Mul / BroadcastMul6DSlow, prepared as
 * kernels/mul.cc). */
typedef struct {
    edgec_dims output;          /**< output shape [N, H, W, C] (see Broadcasting above) */
    edgec_dims input1_stride;   /**< element strides of input 1, 0 on broadcast axes */
    edgec_dims input2_stride;   /**< element strides of input 2, 0 on broadcast axes */
    int32_t input1_offset;      /**< -zero point of input 1, [-127, 128] */
    int32_t input2_offset;      /**< -zero point of input 2 */
    int32_t output_offset;      /**< output zero point */
    int32_t output_multiplier;  /**< s1 * s2 / s_out (float32 product), Q31 */
    int32_t output_shift;       /**< <= 15: |product| <= 65025 << 15 < 2^31 */
    int32_t act_min;
    int32_t act_max;
} edgec_mul_params;

/**
 * Element-wise a * b with broadcasting, as TFLite's MulElementwise:
 * out = clamp(output_offset + MBQM((a + input1_offset) * (b + input2_offset),
 *             output_multiplier, output_shift), act_min, act_max).
 * The product of two offset int8 values is at most 255 * 255 = 65025 in magnitude.
 * In-place use (out == a or out == b) is allowed for an input of the output's shape.
 */
edgec_status edgec_mul_s8(const edgec_mul_params *p, const int8_t *a, const int8_t *b,
                          int8_t *out);

/** Parameters of edgec_mul_const_s8: edgec_mul_params with input 2 a constant table. */
typedef struct {
    edgec_dims output;
    edgec_dims input1_stride;   /**< of the activation */
    edgec_dims input2_stride;   /**< of the constant */
    int32_t input1_offset;
    int32_t input2_offset;
    int32_t output_offset;
    int32_t output_multiplier;
    int32_t output_shift;
    int32_t act_min;
    int32_t act_max;
    const int8_t *constant;     /**< input 2, int8 per-tensor quantized (in flash) */
} edgec_mul_const_params;

/**
 * a * constant: edgec_mul_s8 with b = p->constant (TFLite MUL with a constant input, e.g.
 * attention's 1 / sqrt(d)). In-place use (out == a) is allowed when a has the output's shape.
 */
edgec_status edgec_mul_const_s8(const edgec_mul_const_params *p, const int8_t *a,
                                int8_t *out);

/* ------------------------------------------------------------------------------------ */
/* MAX_POOL_2D / AVERAGE_POOL_2D                                                         */
/* ------------------------------------------------------------------------------------ */

/** Parameters of the pooling kernels (reference_integer_ops::MaxPool / AveragePool). */
typedef struct {
    edgec_dims input;           /**< [N, H, W, C] */
    edgec_dims output;          /**< [N, OH, OW, C] */
    edgec_hw filter;            /**< window (KH, KW) */
    edgec_hw stride;
    edgec_hw padding;           /**< top (h), left (w); padding never enters a window */
    int32_t act_min;
    int32_t act_max;
} edgec_pool2d_params;

typedef edgec_pool2d_params edgec_max_pool2d_params;
typedef edgec_pool2d_params edgec_avg_pool2d_params;

/** Max over each window clipped to the image, then clamp. Input and output share quant. */
edgec_status edgec_max_pool2d_s8(const edgec_max_pool2d_params *p, const int8_t *in,
                                 int8_t *out);

/**
 * Average over each window clipped to the image (the count excludes padding), rounded
 * half away from zero as TFLite: (acc +- count / 2) / count, then clamp. Input and output
 * share quant params. The int32 sum of raw int8 values cannot overflow (< 2^24 taps).
 * Returns EDGEC_ERR_ARG if a window has no pixel inside the image (output then partial).
 */
edgec_status edgec_avg_pool2d_s8(const edgec_avg_pool2d_params *p, const int8_t *in,
                                 int8_t *out);

/* ------------------------------------------------------------------------------------ */
/* MEAN over H and W                                                                     */
/* ------------------------------------------------------------------------------------ */

/** Parameters of edgec_mean_s8 (TFLite reference_ops::QuantizedMeanOrSum, int8 MEAN). */
typedef struct {
    edgec_dims input;           /**< [N, H, W, C]; the output is [N, 1, 1, C] (or [N, C]) */
    int32_t input_offset;       /**< -input zero point */
    int32_t output_offset;      /**< output zero point */
    int32_t multiplier;         /**< s_in / s_out with 1 / (H * W) folded in, Q31 */
    int32_t shift;              /**< the matching shift, >= -31 */
    int32_t act_min;
    int32_t act_max;
} edgec_mean_params;

/**
 * Mean over the H and W axes, as TFLite's int8 MEAN: per (n, c)
 * out = clamp(output_offset + MBQM(sum(x) + H * W * input_offset, multiplier, shift)).
 * The sum of H * W values of at most 255 after the offset fits int32 below 2^23 pixels.
 * Note the rounding differs from an average pool over the whole image.
 */
edgec_status edgec_mean_s8(const edgec_mean_params *p, const int8_t *in, int8_t *out);

/** Parameters of edgec_mean_first_s8 / _partial_s8: one row stripe of a mean's input at a
 * time, summed per channel into int32 (patch-based inference, toolchain/plan/patch.py). */
typedef struct {
    int32_t pixels;             /**< pixels (rows * W) in this part */
    int32_t channels;           /**< C */
} edgec_mean_partial_params;

/** The first part: acc[c] = sum over the part's pixels of in[pixel, c]. */
edgec_status edgec_mean_first_s8(const edgec_mean_partial_params *p, const int8_t *in,
                                 int32_t *acc);

/** A later part: acc[c] = acc_in[c] + the part's sum. acc may be acc_in. */
edgec_status edgec_mean_partial_s8(const edgec_mean_partial_params *p, const int8_t *in,
                                   const int32_t *acc_in, int32_t *acc);

/** Parameters of edgec_mean_finish_s8 (those of edgec_mean_s8 for one image). */
typedef struct {
    int32_t channels;           /**< C */
    int32_t count;              /**< H * W of the whole input */
    int32_t input_offset;
    int32_t output_offset;
    int32_t multiplier;
    int32_t shift;
    int32_t act_min;
    int32_t act_max;
} edgec_mean_finish_params;

/** The summed parts, offset and requantized as edgec_mean_s8 does: the whole mean's
 * bytes. */
edgec_status edgec_mean_finish_s8(const edgec_mean_finish_params *p, const int32_t *acc,
                                  int8_t *out);

/* ------------------------------------------------------------------------------------ */
/* SOFTMAX                                                                               */
/* ------------------------------------------------------------------------------------ */

/** Parameters of edgec_softmax_s8 (reference_ops::Softmax, int8 -> int8). */
typedef struct {
    int32_t rows;               /**< product of all but the last dimension */
    int32_t depth;              /**< the last dimension (softmax axis) */
    int32_t input_multiplier;   /**< beta * s_in * 2^26 as Q31 significand */
    int32_t input_left_shift;   /**< >= 0 */
    int32_t diff_min;           /**< x - max(x) below this contributes exactly 0 */
} edgec_softmax_params;

/**
 * Softmax over the last axis with gemmlowp fixed point: differences to the row maximum
 * are scaled to Q5.26, exponentiated (Q0.31), summed in Q12.19, inverted with a
 * Newton-Raphson 1/(1+x) and scaled to the output, whose quantization is fixed:
 * scale 1/256, zero point -128.
 */
edgec_status edgec_softmax_s8(const edgec_softmax_params *p, const int8_t *in, int8_t *out);

/**
 * The same softmax with int16 probabilities (TFLite Softmax<int8_t, int16_t>): output scale
 * 1/65536, zero point -32768. Attention over more than 256 keys needs them: a weight below
 * 1/256 is 0 at int8. out must not overlap in.
 */
edgec_status edgec_softmax_s8_s16(const edgec_softmax_params *p, const int8_t *in,
                                  int16_t *out);

/* ------------------------------------------------------------------------------------ */
/* Requantize (+ clamp): QUANTIZE int8 -> int8, standalone RELU / RELU6 / clip           */
/* ------------------------------------------------------------------------------------ */

/** Parameters of edgec_requantize_s8 (reference_ops::ReluX / Requantize). */
typedef struct {
    int32_t size;               /**< number of elements */
    int32_t input_offset;       /**< -input zero point */
    int32_t output_offset;      /**< output zero point */
    int32_t multiplier;         /**< s_in / s_out, Q31 */
    int32_t shift;
    int32_t act_min;
    int32_t act_max;
} edgec_requantize_params;

/**
 * out = clamp(output_offset + MBQM(in + input_offset, multiplier, shift), act_min, act_max).
 * In-place use (out == in) is allowed.
 */
edgec_status edgec_requantize_s8(const edgec_requantize_params *p, const int8_t *in,
                                 int8_t *out);

/* ------------------------------------------------------------------------------------ */
/* LOGISTIC / TANH: a 256-entry lookup table                                             */
/* ------------------------------------------------------------------------------------ */

/** Parameters of edgec_lut_s8. */
typedef struct {
    int32_t size;               /**< number of elements */
    const int8_t *table;        /**< [256] output for each input, indexed by (uint8_t)in */
} edgec_lut_params;

/**
 * out[i] = table[(uint8_t)in[i]]. TFLite's int8 LOGISTIC and TANH (kReference and
 * kGenericOptimized) are exactly this: activations.cc PopulateLookupTable computes the table
 * at Prepare time in float (dequantize, 1 / (1 + expf(-x)) or tanhf(x), round, add the
 * output zero point, clamp), and edgec computes the same table on the host.
 * In-place use (out == in) is allowed.
 */
edgec_status edgec_lut_s8(const edgec_lut_params *p, const int8_t *in, int8_t *out);

/* ------------------------------------------------------------------------------------ */
/* HARD_SWISH                                                                            */
/* ------------------------------------------------------------------------------------ */

/** Parameters of edgec_hard_swish_s8 (reference_ops::HardSwish, prepared as
 * activations.cc HardSwishPrepare). */
typedef struct {
    int32_t size;                           /**< number of elements */
    int32_t input_offset;                   /**< -input zero point */
    int32_t output_offset;                  /**< output zero point */
    int32_t output_multiplier_fixedpoint;   /**< Q15 (int16 range), s_in / (128 s_out) */
    int32_t output_multiplier_exponent;     /**< [-15, 0] */
    int32_t reluish_multiplier_fixedpoint;  /**< Q15 (int16 range), s_in / 128 / (3 / 32768) */
    int32_t reluish_multiplier_exponent;    /**< [-15, 15] */
} edgec_hard_swish_params;

/**
 * x * relu6(x + 3) / 6 in 16-bit fixed point, bit-exact with TFLite's int8 HardSwish: the
 * input on a 2^7 finer scale, a "reluish" factor in [0, 1] from x rescaled so that 3.0 is
 * 2^15 (saturating), their SaturatingDoublingHighMul, and a rounding shift to the output.
 * In-place use (out == in) is allowed.
 */
edgec_status edgec_hard_swish_s8(const edgec_hard_swish_params *p, const int8_t *in,
                                 int8_t *out);

/* ------------------------------------------------------------------------------------ */
/* LEAKY_RELU                                                                            */
/* ------------------------------------------------------------------------------------ */

/** Parameters of edgec_leaky_relu_s8 (reference_ops::QuantizeLeakyRelu, prepared as
 * activations.cc LeakyReluPrepare). */
typedef struct {
    int32_t size;                   /**< number of elements */
    int32_t input_offset;           /**< -input zero point */
    int32_t output_offset;          /**< output zero point */
    int32_t multiplier_identity;    /**< s_in / s_out, Q31 */
    int32_t shift_identity;
    int32_t multiplier_alpha;       /**< s_in * alpha / s_out, Q31 (negative if alpha < 0) */
    int32_t shift_alpha;
} edgec_leaky_relu_params;

/**
 * x >= 0 (after the input offset): out = output_offset + MBQM(x, multiplier_identity, ...),
 * else out = output_offset + MBQM(x, multiplier_alpha, shift_alpha); clamped to int8.
 * In-place use (out == in) is allowed.
 */
edgec_status edgec_leaky_relu_s8(const edgec_leaky_relu_params *p, const int8_t *in,
                                 int8_t *out);

/* ------------------------------------------------------------------------------------ */
/* QUANTIZE float32 -> int8 / DEQUANTIZE int8 -> float32 (the model's float I/O)          */
/* ------------------------------------------------------------------------------------ */

/*
 * These two run only at a float graph input or output, the model's own boundary: they use
 * single-precision float (an FPU instruction each on Cortex-M4F/M7, soft-float elsewhere).
 */

/** Parameters of edgec_quantize_f32_s8 (reference_ops::AffineQuantize). */
typedef struct {
    int32_t size;               /**< number of elements */
    float scale;                /**< output scale (the model's float32 value), > 0 */
    int32_t zero_point;         /**< output zero point */
} edgec_quantize_f32_params;

/**
 * out = clamp((int32)roundf(in / scale) + zero_point, -128, 127), the division in float
 * and the rounding half away from zero, as LiteRT's AffineQuantize. A quotient outside the
 * int32 range or NaN converts to INT32_MIN (what LiteRT's x86-64 build does), so it gives
 * -128 unless zero_point < 0 wraps it to 127. In-place use (out == in) is allowed: byte i
 * is written after float i is read, and never overwrites a later float.
 */
edgec_status edgec_quantize_f32_s8(const edgec_quantize_f32_params *p, const float *in,
                                   int8_t *out);

/** Parameters of edgec_dequantize_s8_f32 (reference_ops::Dequantize). */
typedef struct {
    int32_t size;               /**< number of elements */
    float scale;                /**< input scale */
    int32_t zero_point;         /**< input zero point */
} edgec_dequantize_f32_params;

/**
 * out = (float)(in - zero_point) * scale. A single-precision product of two exact
 * operands is the correctly rounded real product, i.e. what LiteRT's
 * static_cast<float>(double(scale) * (in - zero_point)) gives.
 */
edgec_status edgec_dequantize_s8_f32(const edgec_dequantize_f32_params *p, const int8_t *in,
                                     float *out);

/* ------------------------------------------------------------------------------------ */
/* Data movement: PAD / PADV2, TRANSPOSE, STRIDED_SLICE, CONCATENATION,                  */
/* RESIZE_NEAREST_NEIGHBOR. Tensors of rank < 4 are extended to 4-D with leading 1s (and  */
/* higher ranks folded to 4-D) by edgec's lowering; the dims arrays are in C order.       */
/* ------------------------------------------------------------------------------------ */

/** Parameters of edgec_pad_s8 (TFLite PAD / PADV2, int8). */
typedef struct {
    int32_t input_dims[4];      /**< input shape */
    int32_t output_dims[4];     /**< output shape: input + before + after on each axis */
    int32_t before[4];          /**< values padded before the input on each axis, >= 0 */
    int32_t pad_value;          /**< int8 value of the padding (PAD: the output zero point) */
} edgec_pad_params;

/**
 * Constant padding: out[o] = in[o - before] where that is inside the input, else
 * pad_value. Input and output share quant params (no requantization).
 */
edgec_status edgec_pad_s8(const edgec_pad_params *p, const int8_t *in, int8_t *out);

/** Parameters of edgec_transpose_s8 (TFLite TRANSPOSE). */
typedef struct {
    int32_t input_dims[4];      /**< input shape */
    int32_t perm[4];            /**< output axis k is input axis perm[k]; a permutation of 0..3 */
} edgec_transpose_params;

/** out[o0, o1, o2, o3] = in[i] with i[perm[k]] = o[k]. Output shape: input_dims[perm[k]]. */
edgec_status edgec_transpose_s8(const edgec_transpose_params *p, const int8_t *in,
                                int8_t *out);

/** Parameters of edgec_strided_slice_s8 (TFLite STRIDED_SLICE, resolved on the host). */
typedef struct {
    int32_t input_dims[4];      /**< input shape */
    int32_t output_dims[4];     /**< elements taken on each axis (shrunk axes count 1) */
    int32_t start[4];           /**< input index of the first element on each axis */
    int32_t stride[4];          /**< input step between elements on each axis, != 0 */
} edgec_strided_slice_params;

/**
 * out[o] = in[start + o * stride] on each axis. Every index read must lie inside the input
 * (EDGEC_ERR_ARG otherwise, nothing written).
 */
edgec_status edgec_strided_slice_s8(const edgec_strided_slice_params *p, const int8_t *in,
                                    int8_t *out);

/** Parameters of edgec_concat_s8 (TFLite CONCATENATION, int8, with requantization). */
typedef struct {
    int32_t num_inputs;         /**< N >= 1 */
    int32_t outer_size;         /**< product of the dims before the concatenation axis */
    int32_t inner_size;         /**< product of the dims after the concatenation axis */
    int32_t output_offset;      /**< output zero point */
    const int32_t *axis_sizes;  /**< [N] each input's size along the axis */
    const int32_t *input_offset; /**< [N] -zero point of each input */
    const int32_t *multiplier;  /**< [N] s_in / s_out, Q31 (2^30 with shift 1: identity) */
    const int32_t *shift;       /**< [N] in [-31, 22] */
} edgec_concat_params;

/**
 * Concatenation of N inputs along one axis: for each outer index, input i contributes
 * axis_sizes[i] * inner_size values, copied when its quant equals the output's, else
 * requantized: clamp(output_offset + MBQM(x + input_offset, multiplier, shift), -128, 127).
 *
 * @param[in]  p       parameters
 * @param[in]  inputs  [N] pointers to the inputs, [outer_size, axis_sizes[i], inner_size]
 * @param[out] out     [outer_size, sum(axis_sizes), inner_size]
 */
edgec_status edgec_concat_s8(const edgec_concat_params *p, const int8_t *const *inputs,
                             int8_t *out);

/** Parameters of edgec_resize_nearest_s8 (TFLite RESIZE_NEAREST_NEIGHBOR). */
typedef struct {
    edgec_dims input;           /**< [N, H, W, C] */
    edgec_dims output;          /**< [N, OH, OW, C] */
    const int32_t *y_index;     /**< [OH] input row of each output row */
    const int32_t *x_index;     /**< [OW] input column of each output column */
} edgec_resize_nearest_params;

/**
 * out[n, y, x, :] = in[n, y_index[y], x_index[x], :]. The tables hold TFLite's
 * GetNearestNeighbor (align_corners, half_pixel_centers), evaluated on the host.
 * Input and output share quant params.
 */
edgec_status edgec_resize_nearest_s8(const edgec_resize_nearest_params *p, const int8_t *in,
                                     int8_t *out);

/* ------------------------------------------------------------------------------------ */
/* Transformer ops: BATCH_MATMUL, LAYER_NORM, and a constant copied into the arena       */
/* (GELU is edgec_lut_s8 with a table of TFLite's GELU)                                   */
/* ------------------------------------------------------------------------------------ */

/** Parameters of edgec_batch_matmul_s8 (TFLite BATCH_MATMUL, int8 x int8). Operands are
 * addressed through strides, in elements, so adj_x / adj_y and broadcasting of the batch
 * dims cost no copy. */
typedef struct {
    int32_t batch[3];           /**< output batch dims (broadcast), leading 1s */
    int32_t lhs_batch_stride[3]; /**< lhs step per batch index, 0 on a broadcast dim */
    int32_t rhs_batch_stride[3]; /**< rhs step per batch index, 0 on a broadcast dim */
    int32_t rows;               /**< M: output rows */
    int32_t cols;               /**< N: output columns */
    int32_t depth;              /**< K: accumulation depth, <= 33025 (int32 bound) */
    int32_t lhs_row_stride;     /**< lhs step from row m to m + 1 (K, or 1 with adj_x) */
    int32_t lhs_depth_stride;   /**< lhs step from k to k + 1 (1, or M with adj_x) */
    int32_t rhs_depth_stride;   /**< rhs step from k to k + 1 (N, or 1 with adj_y) */
    int32_t rhs_col_stride;     /**< rhs step from column n to n + 1 (1, or K with adj_y) */
    int32_t lhs_offset;         /**< -lhs zero point, [-127, 128] */
    int32_t rhs_offset;         /**< -rhs zero point */
    int32_t output_offset;      /**< output zero point */
    int32_t output_multiplier;  /**< s_lhs * s_rhs / s_out (float32 product), Q31 */
    int32_t output_shift;
    int32_t act_min;
    int32_t act_max;
} edgec_batch_matmul_params;

/**
 * out[b, m, n] = clamp(output_offset + MBQM(sum_k (lhs[b, m, k] + lhs_offset) *
 * (rhs[b, k, n] + rhs_offset), output_multiplier, output_shift), act_min, act_max), the
 * output [batch..., M, N] in C order. Each product is at most 255 * 255 in magnitude.
 *
 * @param[in]  p    parameters
 * @param[in]  lhs  left operand (layout by the strides)
 * @param[in]  rhs  right operand (layout by the strides)
 * @param[out] out  [batch[0], batch[1], batch[2], M, N]
 */
edgec_status edgec_batch_matmul_s8(const edgec_batch_matmul_params *p, const int8_t *lhs,
                                   const int8_t *rhs, int8_t *out);

/**
 * The same product with an int16 lhs that is a row of softmax probabilities (scale 1/65536,
 * zero point -32768, from edgec_softmax_s8_s16) and an int8 rhs, int8 output: edgec's own
 * op (TFLite's int16 BATCH_MATMUL wants int16 on both sides, zero points 0). A row of
 * probabilities sums to at most 65536 + depth after the offset, so |acc| <=
 * (65536 + depth) * 255 fits int32 (the lowering checks the lhs is such a softmax).
 */
edgec_status edgec_batch_matmul_s16_s8(const edgec_batch_matmul_params *p, const int16_t *lhs,
                                       const int8_t *rhs, int8_t *out);

/** Parameters of edgec_layer_norm_s8 (edgec's integer LayerNorm, see layer_norm_s8.c). */
typedef struct {
    int32_t rows;               /**< product of all but the last dimension */
    int32_t depth;              /**< C: the normalized (last) axis, 1..8192 */
    int32_t variance_shift;     /**< p in [-15, 8]: C^2 var(x) is scaled by 4^p */
    int32_t epsilon;            /**< round(C^2 eps / s_in^2 * 4^p), >= 0 */
    int32_t output_shift;       /**< G in [0, 30]: gamma and beta carry G fractional bits */
    int32_t output_offset;      /**< output zero point */
    const int32_t *gamma;       /**< [C] round(gamma_c / s_out * 2^G) */
    const int32_t *beta;        /**< [C] round(beta_c / s_out * 2^G) */
} edgec_layer_norm_params;

/**
 * y = gamma * (x - mean) / sqrt(var + eps) + beta over the last axis of int8 rows, in integer
 * arithmetic only: int32 sums, the variance in int64, a fixed-point inverse square root
 * (TFLite's GetInvSqrtQuantizedMultiplierExp), gamma and the output scale folded into a
 * per-channel multiplier. In-place use (out == in) is allowed.
 */
edgec_status edgec_layer_norm_s8(const edgec_layer_norm_params *p, const int8_t *in,
                                 int8_t *out);

/** Parameters of edgec_constant_s8. */
typedef struct {
    int32_t size;               /**< number of elements */
    const int8_t *data;         /**< [size] the quantized constant (in flash) */
} edgec_constant_params;

/** out[i] = data[i]: a constant made an arena tensor (takes no input). */
edgec_status edgec_constant_s8(const edgec_constant_params *p, int8_t *out);

/* ------------------------------------------------------------------------------------ */
/* Memory-frugal attention (toolchain/lower/attention.py)                                */
/* ------------------------------------------------------------------------------------ */

/** Parameters of edgec_attention_s8: the fields of the batch_matmul -> [mul by a scalar
 * constant] -> softmax -> batch_matmul chain it replaces, every operand and the output
 * addressed through strides in elements (from their `start` element). */
typedef struct {
    int32_t batch[3];            /**< batch dims (e.g. 1, 1, heads), leading 1s */
    int32_t q_batch_stride[3];   /**< step per batch index, 0 on a broadcast dim */
    int32_t k_batch_stride[3];
    int32_t v_batch_stride[3];
    int32_t out_batch_stride[3];
    int32_t q_start;             /**< first element of Q, K, V, the output */
    int32_t k_start;
    int32_t v_start;
    int32_t out_start;
    int32_t rows;                /**< queries */
    int32_t keys;                /**< keys (= values): the softmax axis and scratch bytes */
    int32_t depth;               /**< query / key depth, <= 33025 */
    int32_t value_depth;         /**< output columns, <= 33025 keys (int32 bound) */
    int32_t q_row_stride;
    int32_t q_depth_stride;
    int32_t k_depth_stride;
    int32_t k_key_stride;
    int32_t v_key_stride;
    int32_t v_col_stride;
    int32_t out_row_stride;
    int32_t out_col_stride;
    int32_t q_offset;            /**< first matmul (scores) as edgec_batch_matmul_params */
    int32_t k_offset;
    int32_t score_offset;
    int32_t score_multiplier;
    int32_t score_shift;
    int32_t score_act_min;
    int32_t score_act_max;
    int32_t has_scale;           /**< 1: scores times a scalar constant (edgec_mul_const_s8) */
    int32_t scale_input_offset;
    int32_t scale_factor;        /**< the constant plus its offset */
    int32_t scale_multiplier;
    int32_t scale_shift;
    int32_t scale_output_offset;
    int32_t scale_act_min;
    int32_t scale_act_max;
    int32_t softmax_input_multiplier; /**< as edgec_softmax_params */
    int32_t softmax_input_left_shift;
    int32_t softmax_diff_min;
    int32_t probs_s16;           /**< 1: int16 probabilities (edgec_softmax_s8_s16) */
    int32_t p_offset;            /**< second matmul (probabilities x V) */
    int32_t v_offset;
    int32_t output_offset;
    int32_t output_multiplier;
    int32_t output_shift;
    int32_t act_min;
    int32_t act_max;
} edgec_attention_params;

/**
 * softmax(Q K^T [* scale]) V batch by batch and query row by query row: the scores of one
 * row go to `scratch` (`keys` bytes; with probs_s16, 3 * keys bytes, 2-byte aligned: the
 * int16 probabilities first), so the [batch, rows, keys] score matrix never exists.
 * Bit-exact with edgec_batch_matmul_s8, edgec_mul_const_s8 (scalar constant),
 * edgec_softmax_s8 (or edgec_softmax_s8_s16) and edgec_batch_matmul_s8 (or
 * edgec_batch_matmul_s16_s8) run one after the other. The output must not
 * overlap Q, K or V.
 */
edgec_status edgec_attention_s8(const edgec_attention_params *p, const int8_t *q,
                                const int8_t *k, const int8_t *v, int8_t *out,
                                int8_t *scratch);

/** Parameters of edgec_mlp_s8: two edgec_fully_connected_params' fields (fc1_, fc2_) and
 * an optional edgec_lut_s8 table between them (e.g. GELU). */
typedef struct {
    int32_t rows;                /**< tokens */
    int32_t in_depth;            /**< C: the input's and the first layer's depth */
    int32_t hidden;              /**< H: the first layer's outputs */
    int32_t out_depth;           /**< the second layer's outputs */
    int32_t block;               /**< tokens per block: scratch holds block x H int8 */
    int32_t fc1_input_offset;
    int32_t fc1_output_offset;
    int32_t fc1_act_min;
    int32_t fc1_act_max;
    const int8_t *fc1_weights;   /**< [H, C] */
    const int32_t *fc1_bias;     /**< [H] or NULL */
    const int32_t *fc1_output_multiplier;
    const int32_t *fc1_output_shift;
    const int8_t *table;         /**< [256] applied to the hidden values, or NULL */
    int32_t fc2_input_offset;
    int32_t fc2_output_offset;
    int32_t fc2_act_min;
    int32_t fc2_act_max;
    const int8_t *fc2_weights;   /**< [out_depth, H] */
    const int32_t *fc2_bias;
    const int32_t *fc2_output_multiplier;
    const int32_t *fc2_output_shift;
} edgec_mlp_params;

/**
 * fc2(table(fc1(x))) over [rows, C] `block` tokens at a time, the hidden block in
 * `scratch`: bit-exact with edgec_fully_connected_s8, edgec_lut_s8, edgec_fully_connected_s8
 * run one after the other. In place (out == in) is allowed when out_depth <= in_depth:
 * a block's inputs are read before its outputs are written.
 */
edgec_status edgec_mlp_s8(const edgec_mlp_params *p, const int8_t *in, int8_t *out,
                          int8_t *scratch);

/* ------------------------------------------------------------------------------------ */
/* 16x8 mode: int16 activations (symmetric, zero point 0), int8 weights, int64 bias       */
/* ------------------------------------------------------------------------------------ */

/*
 * TFLite's EXPERIMENTAL_TFLITE_BUILTINS_ACTIVATIONS_INT16_WEIGHTS_INT8 models. Same
 * conventions as above with int16 in place of int8 activations; the clamps act_min/act_max
 * are in the output type's units. int16 activation pointers are 2-byte aligned.
 */

/**
 * QUANTIZE int8 -> int16, int16 -> int8, int16 -> int16 (reference_ops::Requantize), with
 * edgec_requantize_params: out = clamp(output_offset + MBQM(in + input_offset, multiplier,
 * shift), act_min, act_max), the clamp the output type's range. In-place use is not allowed.
 */
edgec_status edgec_requantize_s8_s16(const edgec_requantize_params *p, const int8_t *in,
                                     int16_t *out);
edgec_status edgec_requantize_s16_s8(const edgec_requantize_params *p, const int16_t *in,
                                     int8_t *out);
edgec_status edgec_requantize_s16_s16(const edgec_requantize_params *p, const int16_t *in,
                                      int16_t *out);

/** QUANTIZE float32 -> int16: edgec_quantize_f32_s8 with the clamp [-32768, 32767]. */
edgec_status edgec_quantize_f32_s16(const edgec_quantize_f32_params *p, const float *in,
                                    int16_t *out);

/** DEQUANTIZE int16 -> float32: out = (float)(in - zero_point) * scale (exact operands,
 * one rounding, as LiteRT's double product rounded to float). */
edgec_status edgec_dequantize_s16_f32(const edgec_dequantize_f32_params *p, const int16_t *in,
                                      float *out);

/** Parameters of edgec_fully_connected_s16 (16x8 FULLY_CONNECTED). */
typedef struct {
    int32_t rows;               /**< batch rows: the input is viewed as [rows, in_depth] */
    int32_t in_depth;           /**< C_IN */
    int32_t out_depth;          /**< C_OUT */
    int32_t act_min;            /**< int16 units */
    int32_t act_max;
    const int8_t *weights;      /**< [C_OUT, C_IN], zero point 0 */
    const int64_t *bias;        /**< [C_OUT] or NULL, scale s_in * s_w[c] */
    const int32_t *output_multiplier; /**< [C_OUT], Q31 significands >= 0 */
    const int32_t *output_shift;      /**< [C_OUT], in [-31, 14] */
} edgec_fully_connected_s16_params;

/**
 * out[r][c] = clamp(round_half_away(acc * multiplier[c] * 2^(shift[c] - 31))) with
 * acc = bias[c] + sum_d w[c][d] * in[r][d] in int64 (|acc| < 2^47, checked by the
 * lowering), the product exact: what LiteRT's BUILTIN_REF 16x8 FULLY_CONNECTED computes.
 */
edgec_status edgec_fully_connected_s16(const edgec_fully_connected_s16_params *p,
                                       const int16_t *in, int16_t *out);

/** Parameters of edgec_conv2d_s16 (16x8 CONV_2D). */
typedef struct {
    edgec_dims input;           /**< [N, H, W, C_IN] */
    edgec_dims filter;          /**< [C_OUT, KH, KW, C_IN] (n = C_OUT, c = C_IN) */
    edgec_dims output;          /**< [N, OH, OW, C_OUT] */
    edgec_hw stride;            /**< >= 1 */
    edgec_hw dilation;          /**< >= 1 */
    edgec_hw padding;           /**< top (h) and left (w) padding in input pixels, >= 0 */
    int32_t act_min;            /**< int16 units */
    int32_t act_max;
    const int8_t *weights;      /**< [C_OUT, KH, KW, C_IN], zero point 0 */
    const int64_t *bias;        /**< [C_OUT] or NULL */
    const int32_t *output_multiplier; /**< [C_OUT], Q31 significands >= 0 */
    const int32_t *output_shift;      /**< [C_OUT], in [-31, 14] */
} edgec_conv2d_s16_params;

/**
 * reference_integer_ops::ConvPerChannel on int16: int64 accumulator (|acc| < 2^47, checked
 * by the lowering), rescaled by TFLite's 64-bit MultiplyByQuantizedMultiplier (multiplier
 * rounded to 16 bits, one half-up rounding), clamped.
 */
edgec_status edgec_conv2d_s16(const edgec_conv2d_s16_params *p, const int16_t *in,
                              int16_t *out);

/**
 * BATCH_MATMUL int16 x int16 -> int16 with edgec_batch_matmul_params (offsets 0, depth
 * <= 2^17): an int64 accumulator rescaled as edgec_conv2d_s16, the int16 clamp.
 */
edgec_status edgec_batch_matmul_s16(const edgec_batch_matmul_params *p, const int16_t *lhs,
                                    const int16_t *rhs, int16_t *out);

/** Parameters of edgec_softmax_s16 (reference_ops::SoftmaxInt16). */
typedef struct {
    int32_t rows;               /**< product of all but the last dimension */
    int32_t depth;              /**< the last dimension (softmax axis), <= 65536 */
    int32_t input_multiplier;   /**< s_in * beta / (10 / 65535), Q31 */
    int32_t input_left_shift;   /**< <= 14 */
    const int16_t *exp_lut;     /**< [513] exp on [-10, 0], Q0.15 (TFLite's gen_lut) */
    const int16_t *one_over_one_plus_x_lut; /**< [513] 1 / (1 + x) on [0, 1], Q0.15 */
} edgec_softmax_s16_params;

/**
 * Softmax over the last axis of int16 input (zero point 0) into Q0.15 int16 output (scale
 * 1/32768, zero point 0). Out must not overlap in: the exps are cached in the output row.
 */
edgec_status edgec_softmax_s16(const edgec_softmax_s16_params *p, const int16_t *in,
                               int16_t *out);

/**
 * int16 ADD with edgec_add_params (add.cc's general int16 path): left_shift 15, offsets 0,
 * the int16 clamp; broadcasting and in-place use as edgec_add_s8.
 */
edgec_status edgec_add_s16(const edgec_add_params *p, const int16_t *a, const int16_t *b,
                           int16_t *out);

/**
 * int16 MUL with edgec_mul_params (mul.cc on int16): offsets 0, output_shift <= 0,
 * out = clamp(MBQM(a * b, output_multiplier, output_shift)); broadcasting and in place as
 * edgec_mul_s8.
 */
edgec_status edgec_mul_s16(const edgec_mul_params *p, const int16_t *a, const int16_t *b,
                           int16_t *out);

#ifdef __cplusplus
}
#endif

#endif /* EDGEC_KERNELS_H */
