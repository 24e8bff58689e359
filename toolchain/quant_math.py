"""Host-side quantization arithmetic, bit-exact with TFLite's reference integer kernels.

Two halves:
  - compile-time helpers that turn real scales into the integer constants the kernels use
    (QuantizeMultiplier, the activation clamp, the softmax input scaling), mirroring
    tensorflow/lite/kernels/internal/quantization_util.cc and kernels/kernel_util.cc;
  - vectorized NumPy versions of the fixed-point primitives the C kernels run
    (gemmlowp's SaturatingRoundingDoublingHighMul, RoundingDivideByPOT, exp, 1/(1+x)),
    used by the golden executor (toolchain/golden.py).

All run-time primitives take and return int64 arrays holding int32 values, and reproduce
the int32 C semantics exactly (including the wrap-around of a left shift that overflows,
which is what the C kernels do through uint32 arithmetic). TFLITE_SINGLE_ROUNDING is off
in TFLite by default, so MultiplyByQuantizedMultiplier is the *double rounding* variant.

Scales are rounded to float32 before use wherever TFLite reads them from a tensor
(`TfLiteQuantizationParams.scale` is a float), so constants match what TFLite computes for
the same model stored as a .tflite file.
"""
from __future__ import annotations

import math

import numpy as np

from .errors import EdgecError

INT32_MIN = -(1 << 31)
INT32_MAX = (1 << 31) - 1


class ScaleError(EdgecError, ValueError):
    """A real multiplier (a ratio of scales) the int8 arithmetic cannot represent. A
    ValueError for the callers that add the node's name; an EdgecError if none does."""


# ---------------------------------------------------------------------------------------
# Compile-time helpers
# ---------------------------------------------------------------------------------------

def f32(x: float) -> float:
    """Round a Python float to the nearest float32 and back (TFLite stores scales as float)."""
    return float(np.float32(x))


def tflite_round(x: float) -> int:
    """std::round / TfLiteRound: round half away from zero."""
    return int(math.floor(abs(x) + 0.5)) * (1 if x >= 0 else -1)


def quantize_multiplier(real_multiplier: float) -> tuple[int, int]:
    """QuantizeMultiplier (quantization_util.cc): real ~= q * 2^(shift - 31), q in [2^30, 2^31).

    Returns (q, shift): q an int32 Q31 significand, shift > 0 a left shift, < 0 a right
    shift. 0 -> (0, 0); a significand that rounds up to 2^31 is halved with shift + 1;
    shifts below -31 flush to (0, 0) as TFLite does.
    """
    m = float(real_multiplier)
    if m < 0 or not math.isfinite(m):
        raise ScaleError(f"multiplier must be finite and >= 0, got {m}")
    if m == 0.0:
        return 0, 0
    q, shift = math.frexp(m)
    q_fixed = tflite_round(q * (1 << 31))
    assert q_fixed <= (1 << 31)
    if q_fixed == (1 << 31):
        q_fixed //= 2
        shift += 1
    if shift < -31:
        shift, q_fixed = 0, 0
    return int(q_fixed), int(shift)


def quantize_multiplier_smaller_than_one(real_multiplier: float) -> tuple[int, int]:
    """QuantizeMultiplierSmallerThanOneExp: requires 0 < m < 1 (shift <= 0)."""
    if not 0.0 < real_multiplier < 1.0:
        raise ScaleError(f"multiplier must be in (0, 1), got {real_multiplier}")
    q, shift = quantize_multiplier(real_multiplier)
    assert shift <= 0
    return q, shift


def activation_range(act_min: float | None, act_max: float | None, scale: float,
                     zero_point: int, qmin: int = -128, qmax: int = 127) -> tuple[int, int]:
    """CalculateActivationRangeQuantized (kernel_util.cc), generalised to any clamp.

    TFLite quantizes a bound f as `zp + (int32)TfLiteRound(f / scale)` with f and scale in
    float32, then intersects with [qmin, qmax]. None means unbounded.
    """
    s = np.float32(scale)

    def quantize(f: float) -> int:
        with np.errstate(over="ignore"):
            r = float(np.float32(f) / s)
        # a bound beyond int32 (a huge clamp over a tiny scale) is outside [qmin, qmax] anyway
        return int(zero_point) + tflite_round(min(max(r, -2.0 ** 31), 2.0 ** 31))

    lo = qmin if act_min is None else max(qmin, quantize(act_min))
    hi = qmax if act_max is None else min(qmax, quantize(act_max))
    # A clamp outside the representable range (degenerate, e.g. Clip(200, 300) with a
    # small scale): TFLite's max-then-min sequence then returns the upper bound for every
    # element; keep that result but inside [qmin, qmax] so the kernels' lo <= hi holds.
    lo, hi = min(max(lo, qmin), qmax), min(max(hi, qmin), qmax)
    if lo > hi:
        lo = hi
    return int(lo), int(hi)


def softmax_input_scaling(beta: float, input_scale: float,
                          input_integer_bits: int = 5) -> tuple[int, int, int]:
    """PreprocessSoftmaxScaling + CalculateInputRadius as SoftmaxPrepare (kReference) does.

    Returns (input_multiplier, input_left_shift, diff_min). beta and the input scale are
    float32 in TFLite; their product is taken in double, capped at 2^31 - 1.
    """
    real = min(f32(beta) * f32(input_scale) * float(1 << (31 - input_integer_bits)),
               float((1 << 31) - 1))
    if not real > 1.0:
        raise ScaleError(f"softmax beta * input_scale too small ({real / (1 << 26)})")
    mult, left_shift = quantize_multiplier(real)
    assert left_shift >= 0
    # CalculateInputRadius(input_integer_bits, left_shift, total_signed_bits=31)
    max_input_rescaled = (1.0 * ((1 << input_integer_bits) - 1)
                          * float(1 << (31 - input_integer_bits)) / float(1 << left_shift))
    diff_min = -int(math.floor(max_input_rescaled))
    return mult, left_shift, diff_min


# ---------------------------------------------------------------------------------------
# Run-time primitives (vectorized, int64 arrays holding int32 values)
# ---------------------------------------------------------------------------------------

def _i64(x) -> np.ndarray:
    return np.asarray(x, dtype=np.int64)


def wrap_i32(x) -> np.ndarray:
    """Two's complement wrap to int32 (what a uint32 round trip does in the C kernels)."""
    x = _i64(x)
    return ((x + (1 << 31)) & 0xFFFFFFFF) - (1 << 31)


def srdhm(a, b) -> np.ndarray:
    """gemmlowp SaturatingRoundingDoublingHighMul for int32 (VQRDMULH)."""
    a, b = _i64(a), _i64(b)
    overflow = (a == b) & (a == INT32_MIN)
    ab = a * b  # |ab| <= 2^62: fits in int64
    nudge = np.where(ab >= 0, 1 << 30, 1 - (1 << 30))
    v = ab + nudge
    # C division truncates toward zero.
    q = np.where(v >= 0, v >> 31, -((-v) >> 31))
    return np.where(overflow, INT32_MAX, q)


def rounding_divide_by_pot(x, exponent) -> np.ndarray:
    """gemmlowp RoundingDivideByPOT: round-half-away-from-zero arithmetic right shift."""
    x, e = _i64(x), _i64(exponent)
    mask = (np.int64(1) << e) - 1
    remainder = x & mask
    threshold = (mask >> 1) + (x < 0)
    return (x >> e) + (remainder > threshold)


def mbqm(x, multiplier, shift) -> np.ndarray:
    """MultiplyByQuantizedMultiplier(int32 x, int32 m, int shift), double rounding."""
    x, m, s = _i64(x), _i64(multiplier), _i64(shift)
    left = np.maximum(s, 0)
    right = np.maximum(-s, 0)
    return rounding_divide_by_pot(srdhm(wrap_i32(x << left), m), right)


def mul_round_away(x, multiplier, shift) -> np.ndarray:
    """x * multiplier * 2^(shift - 31) rounded once, half away from zero, from the exact
    product: LiteRT's int8 FULLY_CONNECTED (BUILTIN_REF) rescale, round(acc * s_in * s_w /
    s_out), on the Q31 multiplier."""
    x, m, s = _i64(x), _i64(multiplier), _i64(shift)
    total = 31 - s
    half = np.int64(1) << (total - 1)
    p = x * m  # |p| < 2^62
    return wrap_i32(np.where(p >= 0, (p + half) >> total, -((-p + half) >> total)))


def saturating_rounding_mul_by_pot(x, exponent: int) -> np.ndarray:
    """gemmlowp SaturatingRoundingMultiplyByPOT<exponent> for int32."""
    x = _i64(x)
    if exponent == 0:
        return x
    if exponent < 0:
        return rounding_divide_by_pot(x, -exponent)
    threshold = (1 << (31 - exponent)) - 1
    out = x << exponent
    out = np.where(x > threshold, INT32_MAX, out)
    return np.where(x < -threshold, INT32_MIN, out)


def rounding_half_sum(a, b) -> np.ndarray:
    s = _i64(a) + _i64(b)
    v = s + np.where(s >= 0, 1, -1)
    return np.where(v >= 0, v // 2, -((-v) // 2))  # truncating division


def exp_on_interval_between_negative_one_quarter_and_0_excl(a) -> np.ndarray:
    """gemmlowp: exp(a) for a in [-1/4, 0), Q0.31 in and out."""
    a = _i64(a)
    constant_term = 1895147668  # exp(-1/8)
    constant_1_over_3 = 715827883
    x = wrap_i32(a + (1 << 28))
    x2 = srdhm(x, x)
    x3 = srdhm(x2, x)
    x4 = srdhm(x2, x2)
    x4_over_4 = rounding_divide_by_pot(x4, 2)
    poly = rounding_divide_by_pot(
        wrap_i32(srdhm(wrap_i32(x4_over_4 + x3), constant_1_over_3) + x2), 1)
    return wrap_i32(constant_term + srdhm(constant_term, wrap_i32(x + poly)))


_EXP_BARREL = ((-2, 1672461947), (-1, 1302514674), (0, 790015084), (1, 290630308),
               (2, 39332535), (3, 720401), (4, 242))


def exp_on_negative_values(a, integer_bits: int = 5) -> np.ndarray:
    """gemmlowp exp_on_negative_values: Q(integer_bits) input <= 0 -> Q0.31 output."""
    a = _i64(a)
    frac_bits = 31 - integer_bits
    one_quarter = 1 << (frac_bits - 2)
    mask = one_quarter - 1
    a_mod_quarter_minus_one_quarter = (a & mask) - one_quarter
    result = exp_on_interval_between_negative_one_quarter_and_0_excl(
        saturating_rounding_mul_by_pot(a_mod_quarter_minus_one_quarter, integer_bits))
    remainder = wrap_i32(a_mod_quarter_minus_one_quarter - a)
    for exponent, multiplier in _EXP_BARREL:
        if integer_bits > exponent:
            bit = 1 << (frac_bits + exponent)
            result = np.where((remainder & bit) != 0, srdhm(result, multiplier), result)
    if integer_bits > 5:
        clamp = -(1 << (36 - integer_bits))
        result = np.where(a < clamp, 0, result)
    return np.where(a == 0, INT32_MAX, result)


def one_over_one_plus_x_for_x_in_0_1(a) -> np.ndarray:
    """gemmlowp: 1 / (1 + a) for a in [0, 1), Q0.31 in and out (Newton-Raphson, 3 steps)."""
    half_denominator = rounding_half_sum(a, INT32_MAX)
    x = wrap_i32(1515870810 + srdhm(half_denominator, -1010580540))  # 48/17 - 32/17 * d
    one_q2 = 1 << 29
    for _ in range(3):
        half_denominator_times_x = srdhm(half_denominator, x)
        one_minus = wrap_i32(one_q2 - half_denominator_times_x)
        x = wrap_i32(x + saturating_rounding_mul_by_pot(srdhm(x, one_minus), 2))
    return saturating_rounding_mul_by_pot(x, 1)


def clz32(x) -> np.ndarray:
    """Count leading zeros of a uint32 (32 for 0)."""
    x = _i64(x) & 0xFFFFFFFF
    n = np.full(x.shape, 32, dtype=np.int64)
    nz = x != 0
    # floor(log2(x)) exactly via frexp on float64 (exact for x < 2^53)
    _, e = np.frexp(np.where(nz, x, 1).astype(np.float64))
    return np.where(nz, 32 - e.astype(np.int64), n)
