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

/* ------------------------------------------------------------------------------------ */
/* ADD                                                                                   */
/* ------------------------------------------------------------------------------------ */

/** Parameters of edgec_add_s8 (reference_integer_ops::Add, prepared as kernels/add.cc). */
typedef struct {
    int32_t size;               /**< number of elements (both inputs and the output) */
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
 * Element-wise a + b of two int8 tensors of the same shape and different scales.
 * Each input is offset, shifted left by left_shift (|x + off| <= 255, 255 << 20 < 2^28),
 * rescaled to the common scale 2 max(s1, s2) / 2^20 with a multiplier < 1, summed
 * (|sum| < 2^29, no overflow) and rescaled to the output.
 * In-place use (out == a or out == b) is allowed.
 */
edgec_status edgec_add_s8(const edgec_add_params *p, const int8_t *a, const int8_t *b,
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

#ifdef __cplusplus
}
#endif

#endif /* EDGEC_KERNELS_H */
