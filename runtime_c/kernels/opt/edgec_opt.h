/*
 * edgec_opt.h - helpers shared by the optimized kernels (runtime_c/kernels/opt): the fast
 * requantization, the clamp, and the DSP primitives that GCC's <arm_acle.h> lacks.
 *
 * Everything here is static inline; the DSP forms are compiled only when the compiler
 * defines __ARM_FEATURE_DSP (-mcpu=cortex-m4/m7/m33 ...), next to a portable C form that
 * computes the same integers.
 */
#ifndef EDGEC_OPT_H
#define EDGEC_OPT_H

#include "edgec_kernels_opt.h"
#include "edgec_fixedpoint.h"

#include <stdint.h>
#include <string.h>

#if defined(__ARM_FEATURE_DSP)
#include <arm_acle.h>
#define EDGEC_OPT_DSP 1
#else
#define EDGEC_OPT_DSP 0
#endif

/* The inner loops written in inline assembly (fixed registers for LDM lists, up to 14
 * registers live) need an optimizing build: at -O0 the frame pointer takes r7. Without
 * them the same functions run their C form. */
#if EDGEC_OPT_DSP && defined(__OPTIMIZE__)
#define EDGEC_OPT_ASM 1
#else
#define EDGEC_OPT_ASM 0
#endif

/** Four bytes from any address as an int32 (one LDR on Cortex-M3/M4/M7, which allow
 *  unaligned single loads; never LDRD/LDM, which fault on unaligned addresses). */
static inline int32_t edgec_opt_read_s8x4(const int8_t *src)
{
    int32_t v;
    memcpy(&v, src, sizeof v);
    return v;
}

/** Low and high signed halfwords of a word (the portable view of an int16 pair). */
static inline int32_t edgec_opt_lo16(int32_t v)
{
    return (int32_t)(int16_t)(uint16_t)((uint32_t)v & 0xFFFFu);
}
static inline int32_t edgec_opt_hi16(int32_t v) { return v >> 16; }

/** The portable SMUAD: lo(x) * lo(w) + hi(x) * hi(w) of two int16 pairs. */
static inline int32_t edgec_opt_dot2(int32_t x, int32_t w)
{
    return edgec_opt_lo16(x) * edgec_opt_lo16(w) + edgec_opt_hi16(x) * edgec_opt_hi16(w);
}

/** Two int16 values as one word, low halfword first. */
static inline int32_t edgec_opt_pack16(int32_t lo, int32_t hi)
{
    return (int32_t)(((uint32_t)hi << 16) | ((uint32_t)lo & 0xFFFFu));
}

#if EDGEC_OPT_DSP
/** SXTB16 Rd, Rm, ROR #8: bytes 1 and 3 sign-extended into the two halfwords. */
static inline int32_t edgec_opt_sxtb16_ror8(int32_t v)
{
    int32_t r;
    __asm__("sxtb16 %0, %1, ror #8" : "=r"(r) : "r"(v));
    return r;
}

/** SXTAB16 Rd, Rn, Rm, ROR #8: a + bytes 1 and 3 of v, per halfword. */
static inline int32_t edgec_opt_sxtab16_ror8(int32_t a, int32_t v)
{
    int32_t r;
    __asm__("sxtab16 %0, %1, %2, ror #8" : "=r"(r) : "r"(a), "r"(v));
    return r;
}
#endif

/**
 * Four int8 values + offset as two int16 pairs, in SXTB16 order: *even = {x0, x2},
 * *odd = {x1, x3} (low halfword first). |x + offset| <= 255 fits int16.
 */
static inline void edgec_opt_expand4(int32_t v, int32_t offset, int32_t *even, int32_t *odd)
{
#if EDGEC_OPT_DSP
    const int32_t off2 = edgec_opt_pack16(offset, offset);
    *even = __sxtab16(off2, v);
    *odd = edgec_opt_sxtab16_ror8(off2, v);
#else
    const uint32_t u = (uint32_t)v;
    const int32_t x0 = (int32_t)(int8_t)(uint8_t)(u & 0xFFu);
    const int32_t x1 = (int32_t)(int8_t)(uint8_t)((u >> 8) & 0xFFu);
    const int32_t x2 = (int32_t)(int8_t)(uint8_t)((u >> 16) & 0xFFu);
    const int32_t x3 = (int32_t)(int8_t)(uint8_t)(u >> 24);
    *even = edgec_opt_pack16(x0 + offset, x2 + offset);
    *odd = edgec_opt_pack16(x1 + offset, x3 + offset);
#endif
}

/**
 * Fast-mode requantization (see edgec_kernels_opt.h): MBQM(a) + output_offset for a
 * multiplier m in [2^30, 2^31) given as mult = 2m (mod 2^32), a right shift e >= 1 and
 * round = 2^(e-1) + output_offset * 2^e. The 64-bit sum is exact (select.py checks its
 * bound); in C it is formed modulo 2^64, as SMLAL does. `lo` is 2^31 for the
 * double rounding of conv / depthwise, t = a >> 31 for the single rounding of FC.
 */
static inline int32_t edgec_opt_rq_conv(int32_t a, int32_t mult, int32_t round, int32_t e)
{
    const uint32_t hi = (uint32_t)round + (uint32_t)a + (uint32_t)(a >> 31);
#if EDGEC_OPT_DSP
    /* SMMLAR: (hi << 32) + a * mult + 2^31, high word: the same 64-bit sum */
    int32_t r;
    __asm__("smmlar %0, %1, %2, %3" : "=r"(r) : "r"(a), "r"(mult), "r"((int32_t)hi));
    return r >> e;
#else
    const uint64_t v = ((((uint64_t)hi) << 32) | 0x80000000u) +
                       (uint64_t)((int64_t)a * (int64_t)mult);
    return (int32_t)(uint32_t)(v >> 32) >> e;
#endif
}

static inline int32_t edgec_opt_rq_fc(int32_t a, int32_t mult, int32_t round, int32_t e)
{
    const uint32_t t = (uint32_t)(a >> 31);
    const uint32_t hi = (uint32_t)round + (uint32_t)a + t;
    const uint64_t v = ((((uint64_t)hi) << 32) | t) + (uint64_t)((int64_t)a * (int64_t)mult);
    return (int32_t)(uint32_t)(v >> 32) >> e;
}

/** Saturate to [-128, 127] (SSAT #8). */
static inline int32_t edgec_opt_sat8(int32_t v)
{
#if EDGEC_OPT_DSP
    return __builtin_arm_ssat(v, 8);
#else
    return v < -128 ? -128 : (v > 127 ? 127 : v);
#endif
}

/**
 * The general requantization of one accumulator (any flags): exact mode through the
 * reference primitives, fast mode through the formula above; then the clamp. `fc` selects
 * LiteRT's single rounding (fully connected) instead of the double rounding.
 */
static inline int32_t edgec_opt_requant(int32_t acc, const int32_t *q, int32_t flags,
                                        int32_t output_offset, int32_t act_min,
                                        int32_t act_max, int fc)
{
    int32_t v;
    acc = edgec_add_wrap(acc, q[0]);
    if (flags & EDGEC_OPT_RQ_EXACT) {
        v = fc ? edgec_mul_round_away(acc, q[1], q[3]) : edgec_mbqm(acc, q[1], q[3]);
        v = edgec_add_wrap(v, output_offset);
    } else {
        v = fc ? edgec_opt_rq_fc(acc, q[1], q[2], q[3]) : edgec_opt_rq_conv(acc, q[1], q[2], q[3]);
    }
    v = edgec_max_i32(v, act_min);
    return edgec_min_i32(v, act_max);
}

/** One fast-mode output with the full int8 range (flags == 0), double rounding. */
static inline int8_t edgec_opt_out_conv(int32_t acc, int32_t bias, int32_t mult, int32_t round,
                                        int32_t e)
{
    return (int8_t)edgec_opt_sat8(edgec_opt_rq_conv(acc + bias, mult, round, e));
}

#endif /* EDGEC_OPT_H */
