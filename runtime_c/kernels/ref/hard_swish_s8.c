/*
 * hard_swish_s8.c - int8 HardSwish, x * relu6(x + 3) / 6 (reference kernel).
 *
 * Bit-exact with TFLite reference_ops::HardSwish for int8
 * (tensorflow/lite/kernels/internal/reference/hard_swish.h), parameters prepared as
 * activations.cc HardSwishPrepare (float32 scale ratios, QuantizeMultiplier, then
 * DownScaleInt32ToInt16Multiplier). All the arithmetic is 16-bit gemmlowp fixed point,
 * carried here in int32 variables holding int16 values.
 */
#include "edgec_kernels.h"

#include <stddef.h>

#define I16_MIN (-32768)
#define I16_MAX 32767

static inline int32_t sat_i16(int32_t x)
{
    return x < I16_MIN ? I16_MIN : (x > I16_MAX ? I16_MAX : x);
}

/* gemmlowp SaturatingRoundingDoublingHighMul for int16: round(a * b / 2^15), ties away
 * from zero (by the nudge and truncating division), saturating -32768 * -32768. */
static inline int32_t srdhm16(int32_t a, int32_t b)
{
    int32_t ab;
    int32_t nudge;
    if (a == I16_MIN && b == I16_MIN) {
        return I16_MAX;
    }
    ab = a * b;
    nudge = ab >= 0 ? (1 << 14) : (1 - (1 << 14));
    /* C division truncates toward zero, as the C++ original; the quotient fits int16 */
    return (int32_t)(int16_t)((ab + nudge) / (1 << 15));
}

/* reference_ops::SaturatingDoublingHighMul: a * b / 2^15 truncated toward zero. */
static inline int32_t sdhm16(int32_t a, int32_t b)
{
    if (a == I16_MIN && b == I16_MIN) {
        return I16_MAX;
    }
    return (int32_t)(int16_t)((a * b) / (1 << 15));
}

/* gemmlowp RoundingDivideByPOT on an int16 value, exponent in [0, 15]. */
static inline int32_t rdbpot16(int32_t x, int exponent)
{
    const int32_t mask = (1 << exponent) - 1;
    const int32_t remainder = x & mask;
    const int32_t threshold = (mask >> 1) + (x < 0 ? 1 : 0);
    return (x >> exponent) + (remainder > threshold ? 1 : 0);
}

/* reference_ops::SaturatingLeftShift: x * 2^amount saturated to int16, amount in [0, 15]. */
static inline int32_t sat_shl16(int32_t x, int amount)
{
    return sat_i16(x * (1 << amount));
}

edgec_status edgec_hard_swish_s8(const edgec_hard_swish_params *p, const int8_t *in,
                                 int8_t *out)
{
    int32_t i;
    int reluish_exponent;
    int output_exponent;

    if (p == NULL || in == NULL || out == NULL || p->size < 0 ||
        p->output_multiplier_exponent > 0 || p->output_multiplier_exponent < -15 ||
        p->reluish_multiplier_exponent > 15 || p->reluish_multiplier_exponent < -15 ||
        p->output_multiplier_fixedpoint < I16_MIN || p->output_multiplier_fixedpoint > I16_MAX ||
        p->reluish_multiplier_fixedpoint < I16_MIN || p->reluish_multiplier_fixedpoint > I16_MAX) {
        return EDGEC_ERR_ARG;
    }
    reluish_exponent = (int)p->reluish_multiplier_exponent;
    output_exponent = (int)-p->output_multiplier_exponent;

    for (i = 0; i < p->size; ++i) {
        /* |x - zp| <= 255, times 2^7: |.| <= 32640 fits int16 */
        const int32_t input_value = (int32_t)in[i] + p->input_offset;
        const int32_t input_on_hires_scale = input_value * (1 << 7);
        const int32_t input_on_preshift_output_scale =
            srdhm16(input_on_hires_scale, p->output_multiplier_fixedpoint);
        int32_t reluish = input_on_hires_scale;
        int32_t preshift_output;
        int32_t output;

        if (reluish_exponent > 0) {
            reluish = sat_shl16(reluish, reluish_exponent - 1);
        }
        reluish = srdhm16(reluish, p->reluish_multiplier_fixedpoint);
        if (reluish_exponent > 0) {
            reluish = sat_shl16(reluish, 1);
        }
        if (reluish_exponent < 0) {
            reluish = rdbpot16(reluish, -reluish_exponent);
        }
        /* [-1, 1] -> [0, 1] in Q15 */
        reluish = (reluish + (1 << 15)) >> 1;
        preshift_output = sdhm16(reluish, input_on_preshift_output_scale);
        output = rdbpot16(preshift_output, output_exponent);
        /* int16 in TFLite: |output| <= 2^15 and the offset keeps it inside int16 range */
        output = (int32_t)(int16_t)(output + p->output_offset);
        output = output < -128 ? -128 : (output > 127 ? 127 : output);
        out[i] = (int8_t)output;
    }
    return EDGEC_OK;
}
