"""Golden NumPy kernels of TFLite's 16x8 mode (int16 activations, int8 weights):
quantize_s16.c, fully_connected_s16.c, conv2d_s16.c, batch_matmul_s16.c, add_s16.c and
mul_s16.c.

Registered in toolchain/golden.py's KERNELS. Same contract as there: computed from the
KernelCall fields only, with the C kernels' integer arithmetic (int64 arrays holding their
int32 / int64 values), so golden and firmware agree byte for byte.
"""
from __future__ import annotations

import numpy as np

from . import quant_math as qm
from .golden_transformer import _operand
from .lower.program import ConstArray, FieldValue

Fields = dict[str, FieldValue]
_LIMITS = {np.int8: (-128, 127), np.int16: (-32768, 32767)}


def _arr(v: FieldValue) -> np.ndarray:
    if not isinstance(v, ConstArray):
        raise TypeError(f"expected a ConstArray, got {type(v).__name__}")
    return np.asarray(v.data).reshape(-1)


def mul_round_away_i64(x, multiplier, shift) -> np.ndarray:
    """x * multiplier * 2^(shift - 31) rounded once, half away from zero, from the exact
    product (Python integers: |x| < 2^47 times a Q31 multiplier needs 78 bits). LiteRT's
    16x8 FULLY_CONNECTED (BUILTIN_REF) rescales its int64 accumulator so, as its int8 one
    does (golden.fully_connected_s8); the C kernel splits the product in 32-bit halves."""
    x = np.asarray(x, np.int64)
    m = np.broadcast_to(np.asarray(multiplier, np.int64), x.shape)
    s = np.broadcast_to(np.asarray(shift, np.int64), x.shape)
    out = np.empty(x.shape, np.int64)
    for i, (v, mm, ss) in enumerate(zip(x.reshape(-1).tolist(), m.reshape(-1).tolist(),
                                        s.reshape(-1).tolist())):
        total = 31 - ss
        q = (abs(v) * mm + (1 << (total - 1))) >> total
        out.reshape(-1)[i] = q if v >= 0 else -q
    return out


def mbqm_i64(x, multiplier, shift) -> np.ndarray:
    """TFLite's MultiplyByQuantizedMultiplier(int64 x, int32 m, int shift) (common.h,
    TFLITE_SINGLE_ROUNDING off): the multiplier rounded to 16 bits, then one rounding
    shift by 15 - shift (half up). The int16 kernels with int64 accumulators use it."""
    x = np.asarray(x, np.int64)
    m = np.asarray(multiplier, np.int64)
    s = np.asarray(shift, np.int64)
    reduced = np.where(m < 0x7FFF0000, (m + (1 << 15)) >> 16, 0x7FFF)
    total = 15 - s
    return qm.wrap_i32((x * reduced + (np.int64(1) << (total - 1))) >> total)


def _requantize(out_type):
    """reference_ops::Requantize: clamp(zp_out + MBQM(in - zp_in)) to the output type."""
    lo, hi = _LIMITS[out_type]

    def kernel(f: Fields, x: np.ndarray) -> np.ndarray:
        v = x.astype(np.int64) + int(f["input_offset"])
        out = qm.wrap_i32(qm.mbqm(v, int(f["multiplier"]), int(f["shift"]))
                          + int(f["output_offset"]))
        lo_f, hi_f = max(lo, int(f["act_min"])), min(hi, int(f["act_max"]))
        return np.clip(out, lo_f, hi_f).astype(out_type)
    return kernel


def fully_connected_s16(f: Fields, x: np.ndarray) -> np.ndarray:
    """fully_connected.cc on int16 input, int8 weights and int64 bias: an int64
    accumulator, rescaled with one rounding (mul_round_away_i64), clamped."""
    rows, cin, cout = int(f["rows"]), int(f["in_depth"]), int(f["out_depth"])
    xs = x.reshape(rows, cin).astype(np.int64)
    wts = _arr(f["weights"]).reshape(cout, cin).astype(np.int64)
    acc = xs @ wts.T  # |acc| <= 2^15 * 2^7 * cin: exact in int64
    if f["bias"] is not None:
        acc = acc + _arr(f["bias"]).astype(np.int64)
    out = mul_round_away_i64(acc, _arr(f["output_multiplier"]).astype(np.int64),
                             _arr(f["output_shift"]).astype(np.int64))
    return np.clip(out, int(f["act_min"]), int(f["act_max"])).astype(np.int16).reshape(-1)


def conv2d_s16(f: Fields, x: np.ndarray) -> np.ndarray:
    """conv.cc's 16x8 per-channel conv: fully_connected_s16's accumulate and rescale over
    each output pixel's window (taps in the padding skipped)."""
    n, h, w, ci = f["input"]
    co, kh, kw, _ = f["filter"]
    _, oh, ow, _ = f["output"]
    (sh, sw), (dh, dw), (pt, pl) = f["stride"], f["dilation"], f["padding"]
    need_h = max((oh - 1) * sh + (kh - 1) * dh + 1, pt + h)
    need_w = max((ow - 1) * sw + (kw - 1) * dw + 1, pl + w)
    xp = np.zeros((n, need_h, need_w, ci), np.int64)
    xp[:, pt:pt + h, pl:pl + w, :] = x.reshape(n, h, w, ci)
    wts = _arr(f["weights"]).reshape(co, kh, kw, ci).astype(np.int64)
    acc = np.zeros((n, oh, ow, co), np.int64)
    for ky in range(kh):
        for kx in range(kw):
            taps = xp[:, ky * dh:ky * dh + (oh - 1) * sh + 1:sh,
                      kx * dw:kx * dw + (ow - 1) * sw + 1:sw, :]
            acc += taps @ wts[:, ky, kx, :].T
    if f["bias"] is not None:
        acc = acc + _arr(f["bias"]).astype(np.int64)
    out = mbqm_i64(acc, _arr(f["output_multiplier"]).astype(np.int64),
                   _arr(f["output_shift"]).astype(np.int64))
    return np.clip(out, int(f["act_min"]), int(f["act_max"])).astype(np.int16).reshape(-1)


def batch_matmul_s16(f: Fields, lhs: np.ndarray, rhs: np.ndarray) -> np.ndarray:
    """batch_matmul.cc on int16: an int64 accumulator, mbqm_i64, the int16 clamp."""
    rows, cols, depth = int(f["rows"]), int(f["cols"]), int(f["depth"])
    a = _operand(lhs, f["batch"], f["lhs_batch_stride"], rows, depth,
                 int(f["lhs_row_stride"]), int(f["lhs_depth_stride"]))
    b = _operand(rhs, f["batch"], f["rhs_batch_stride"], depth, cols,
                 int(f["rhs_depth_stride"]), int(f["rhs_col_stride"]))
    acc = a @ b  # int64, exact
    out = mbqm_i64(acc, int(f["output_multiplier"]), int(f["output_shift"]))
    return np.clip(out, int(f["act_min"]), int(f["act_max"])).astype(np.int16).reshape(-1)


def lut_lookup(value: np.ndarray, lut: np.ndarray) -> np.ndarray:
    """lut_lookup_with_interpolation (int16): 512 intervals, linear in between, rounded."""
    v = value.astype(np.int64)
    index = 256 + (v >> 7)
    base = lut[index].astype(np.int64)
    slope = ((lut[index + 1].astype(np.int64) - base + 32768) & 0xFFFF) - 32768  # int16
    return (base + ((slope * (v & 0x7F) + 64) >> 7)).astype(np.int64)


def softmax_s16(f: Fields, x: np.ndarray) -> np.ndarray:
    """reference_ops::SoftmaxInt16: exp of the rescaled differences to the row maximum from
    a table, their sum's reciprocal from another, products rounded to Q0.15."""
    rows, depth = int(f["rows"]), int(f["depth"])
    exp_lut, recip_lut = _arr(f["exp_lut"]), _arr(f["one_over_one_plus_x_lut"])
    v = x.reshape(rows, depth).astype(np.int64)
    diff = v - v.max(axis=1, keepdims=True)
    scaled = qm.mbqm(diff, int(f["input_multiplier"]), int(f["input_left_shift"]))
    e = lut_lookup(np.clip(scaled + 32767, -32768, 32767), exp_lut)
    total = e.sum(axis=1, keepdims=True)  # >= exp(0) in Q0.15: positive
    headroom_plus_one = 32 - np.array([[int(t).bit_length()] for t in total[:, 0]],
                                      np.int64)  # CountLeadingZeros(uint32)
    shifted = ((total << (headroom_plus_one - 1)) + (1 << 13)) >> 14
    recip = lut_lookup(np.clip(shifted - ((1 << 15) + (1 << 16)), -32768, 32767), recip_lut)
    right = 31 - headroom_plus_one
    out = (e * recip + (np.int64(1) << (right - 1))) >> right
    return np.clip(out, 0, 32767).astype(np.int16).reshape(-1)


def add_s16(f: Fields, a: np.ndarray, b: np.ndarray, broadcast) -> np.ndarray:
    """add.cc's general int16 path: golden add_s8's arithmetic with left_shift 15 and the
    int16 clamp (|x| <= 32768 << 15 = 2^30: no overflow)."""
    a, b = broadcast(f, a, b)
    ls = int(f["left_shift"])
    s1 = (a.astype(np.int64) + int(f["input1_offset"])) << ls
    s2 = (b.astype(np.int64) + int(f["input2_offset"])) << ls
    raw_sum = (qm.mbqm(s1, int(f["input1_multiplier"]), int(f["input1_shift"]))
               + qm.mbqm(s2, int(f["input2_multiplier"]), int(f["input2_shift"])))
    out = qm.mbqm(raw_sum, int(f["output_multiplier"]), int(f["output_shift"])) \
        + int(f["output_offset"])
    return np.clip(out, int(f["act_min"]), int(f["act_max"])).astype(np.int16)


def mul_s16(f: Fields, a: np.ndarray, b: np.ndarray, broadcast) -> np.ndarray:
    """mul.cc on int16: MBQM of the int32 product (|a * b| <= 2^30), the int16 clamp."""
    a, b = broadcast(f, a, b)
    product = ((a.astype(np.int64) + int(f["input1_offset"]))
               * (b.astype(np.int64) + int(f["input2_offset"])))
    out = qm.mbqm(product, int(f["output_multiplier"]), int(f["output_shift"])) \
        + int(f["output_offset"])
    return np.clip(out, int(f["act_min"]), int(f["act_max"])).astype(np.int16)


def kernels(broadcast_inputs) -> dict:
    """The entries for golden.KERNELS (broadcast_inputs: golden.py's broadcasting walk)."""
    return {
        "edgec_requantize_s8_s16": _requantize(np.int16),
        "edgec_requantize_s16_s8": _requantize(np.int8),
        "edgec_requantize_s16_s16": _requantize(np.int16),
        "edgec_fully_connected_s16": fully_connected_s16,
        "edgec_conv2d_s16": conv2d_s16,
        "edgec_batch_matmul_s16": batch_matmul_s16,
        "edgec_softmax_s16": softmax_s16,
        "edgec_add_s16": lambda f, a, b: add_s16(f, a, b, broadcast_inputs),
        "edgec_mul_s16": lambda f, a, b: mul_s16(f, a, b, broadcast_inputs),
    }
