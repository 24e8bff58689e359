"""Golden model: executes a lowered Program in NumPy integer arithmetic.

Each KernelCall is computed from its fields only (the same precomputed constants the C
kernels read), so the golden output and the firmware output must be equal byte for byte.
The arithmetic mirrors runtime_c/kernels/ref/*.c (and so TFLite's reference integer
kernels): int32 accumulation, double-rounding requantization, the same clamps.

Accumulations run as float64 matrix products where that is exact: every partial sum is an
integer below 2^31 (the lowering checks the int32 accumulator bound), well inside float64's
53-bit integer range, so any summation order gives the exact integer.
"""
from __future__ import annotations

from typing import Callable

import numpy as np

from . import golden_s16 as _golden_s16
from . import golden_transformer as _golden_transformer
from . import quant_math as qm
from .errors import EdgecError
from .lower.opt_layout import REFERENCE_OF
from .lower.program import ConstArray, FieldValue, KernelCall, Program

Fields = dict[str, FieldValue]
KernelFn = Callable[..., np.ndarray]


def _arr(v: FieldValue) -> np.ndarray | None:
    if v is None:
        return None
    if isinstance(v, ConstArray):
        return np.asarray(v.data).reshape(-1)
    raise TypeError(f"expected a ConstArray, got {type(v).__name__}")


def _requantize_acc(acc: np.ndarray, f: Fields, mbqm=qm.mbqm) -> np.ndarray:
    """bias (already added) -> MBQM per channel (last axis) -> + output_offset -> clamp."""
    mult = _arr(f["output_multiplier"]).astype(np.int64)
    shift = _arr(f["output_shift"]).astype(np.int64)
    out = qm.wrap_i32(mbqm(acc, mult, shift) + int(f["output_offset"]))
    return np.clip(out, int(f["act_min"]), int(f["act_max"])).astype(np.int8)


def _pad_nhwc(x: np.ndarray, pad_top: int, pad_left: int, need_h: int, need_w: int,
              value) -> np.ndarray:
    """Embed x [n, h, w, c] at (pad_top, pad_left) in a [n, need_h, need_w, c] array."""
    n, h, w, c = x.shape
    need_h = max(need_h, pad_top + h)
    need_w = max(need_w, pad_left + w)
    out = np.full((n, need_h, need_w, c), value, dtype=x.dtype)
    out[:, pad_top:pad_top + h, pad_left:pad_left + w, :] = x
    return out


def _taps(xp: np.ndarray, ky: int, kx: int, oh: int, ow: int, stride, dilation) -> np.ndarray:
    y0, x0 = ky * dilation[0], kx * dilation[1]
    return xp[:, y0:y0 + (oh - 1) * stride[0] + 1:stride[0],
              x0:x0 + (ow - 1) * stride[1] + 1:stride[1], :]


def conv2d_s8(f: Fields, x: np.ndarray) -> np.ndarray:
    n, h, w, ci = f["input"]
    co, kh, kw, _ = f["filter"]
    on, oh, ow, _ = f["output"]
    stride, dilation, (pt, pl) = f["stride"], f["dilation"], f["padding"]
    # Taps outside the image are skipped: pad (x + input_offset) with zeros.
    xo = x.reshape(n, h, w, ci).astype(np.float64) + float(f["input_offset"])
    xp = _pad_nhwc(xo, pt, pl, (oh - 1) * stride[0] + (kh - 1) * dilation[0] + 1,
                   (ow - 1) * stride[1] + (kw - 1) * dilation[1] + 1, 0.0)
    wts = _arr(f["weights"]).reshape(co, kh, kw, ci).astype(np.float64)
    acc = np.zeros((n, oh, ow, co), np.float64)
    for ky in range(kh):
        for kx in range(kw):
            acc += _taps(xp, ky, kx, oh, ow, stride, dilation) @ wts[:, ky, kx, :].T
    acc = np.rint(acc).astype(np.int64)
    b = _arr(f["bias"])
    if b is not None:
        acc += b.astype(np.int64)
    return _requantize_acc(acc, f).reshape(-1)


def depthwise_conv2d_s8(f: Fields, x: np.ndarray) -> np.ndarray:
    n, h, w, ci = f["input"]
    _, kh, kw, co = f["filter"]
    on, oh, ow, _ = f["output"]
    dm = int(f["depth_multiplier"])
    stride, dilation, (pt, pl) = f["stride"], f["dilation"], f["padding"]
    xo = x.reshape(n, h, w, ci).astype(np.int64) + int(f["input_offset"])
    if dm > 1:  # output channel c reads input channel c // dm
        xo = np.repeat(xo, dm, axis=3)
    xp = _pad_nhwc(xo, pt, pl, (oh - 1) * stride[0] + (kh - 1) * dilation[0] + 1,
                   (ow - 1) * stride[1] + (kw - 1) * dilation[1] + 1, 0)
    wts = _arr(f["weights"]).reshape(kh, kw, co).astype(np.int64)
    acc = np.zeros((n, oh, ow, co), np.int64)
    for ky in range(kh):
        for kx in range(kw):
            acc += _taps(xp, ky, kx, oh, ow, stride, dilation) * wts[ky, kx]
    b = _arr(f["bias"])
    if b is not None:
        acc += b.astype(np.int64)
    return _requantize_acc(acc, f).reshape(-1)


def fully_connected_s8(f: Fields, x: np.ndarray) -> np.ndarray:
    rows, cin, cout = int(f["rows"]), int(f["in_depth"]), int(f["out_depth"])
    xo = x.reshape(rows, cin).astype(np.float64) + float(f["input_offset"])
    wts = _arr(f["weights"]).reshape(cout, cin).astype(np.float64)
    acc = np.rint(xo @ wts.T).astype(np.int64)
    b = _arr(f["bias"])
    if b is not None:
        acc += b.astype(np.int64)
    # LiteRT's int8 FULLY_CONNECTED rounds once, half away from zero (see the C kernel)
    return _requantize_acc(acc, f, qm.mul_round_away).reshape(-1)


def fully_connected_partial_s8(f: Fields, x: np.ndarray,
                               acc: np.ndarray | None = None) -> np.ndarray:
    """One part of a fully connected layer's input, summed into int32 (plan/patch.py):
    the first part starts from the bias, a later one from `acc`."""
    start, cols = int(f["col_start"]), int(f["cols"])
    wts = _arr(f["weights"]).reshape(int(f["out_depth"]), int(f["in_depth"]))
    part = wts[:, start:start + cols].astype(np.int64)
    s = part @ (x.reshape(cols).astype(np.int64) + int(f["input_offset"]))
    if acc is not None:
        s += acc.astype(np.int64)
    elif f["bias"] is not None:
        s += _arr(f["bias"]).astype(np.int64)
    return qm.wrap_i32(s).astype(np.int32)


def fully_connected_finish_s8(f: Fields, acc: np.ndarray) -> np.ndarray:
    """The summed parts requantized as fully_connected_s8 (one rounding, half away)."""
    return _requantize_acc(acc.astype(np.int64), f, qm.mul_round_away).reshape(-1)


def _broadcast_inputs(f: Fields, a: np.ndarray, b: np.ndarray):
    """The elements of each input that meet at each output element, in the output's C order:
    input k's element n*s.n + h*s.h + w*s.w + c*s.c (strides 0 on broadcast axes), as the
    kernels walk them (edgec_kernels.h, Broadcasting)."""
    dims = tuple(int(d) for d in f["output"])
    grid = np.indices(dims).reshape(4, -1)
    idx1 = np.asarray(f["input1_stride"], np.int64) @ grid
    idx2 = np.asarray(f["input2_stride"], np.int64) @ grid
    return a[idx1], b[idx2]


def add_s8(f: Fields, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    a, b = _broadcast_inputs(f, a, b)
    ls = int(f["left_shift"])
    s1 = (a.astype(np.int64) + int(f["input1_offset"])) << ls
    s2 = (b.astype(np.int64) + int(f["input2_offset"])) << ls
    raw_sum = (qm.mbqm(s1, int(f["input1_multiplier"]), int(f["input1_shift"]))
               + qm.mbqm(s2, int(f["input2_multiplier"]), int(f["input2_shift"])))
    out = qm.mbqm(raw_sum, int(f["output_multiplier"]), int(f["output_shift"])) \
        + int(f["output_offset"])
    return np.clip(out, int(f["act_min"]), int(f["act_max"])).astype(np.int8)


def mul_s8(f: Fields, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    a, b = _broadcast_inputs(f, a, b)
    product = ((a.astype(np.int64) + int(f["input1_offset"]))
               * (b.astype(np.int64) + int(f["input2_offset"])))
    out = qm.wrap_i32(qm.mbqm(product, int(f["output_multiplier"]), int(f["output_shift"]))
                      + int(f["output_offset"]))
    return np.clip(out, int(f["act_min"]), int(f["act_max"])).astype(np.int8)


def _pool_windows(f: Fields, x: np.ndarray, pad_value: int):
    n, h, w, c = f["input"]
    _, oh, ow, _ = f["output"]
    kh, kw = f["filter"]
    stride, (pt, pl) = f["stride"], f["padding"]
    xp = _pad_nhwc(x.reshape(n, h, w, c).astype(np.int64), pt, pl,
                   (oh - 1) * stride[0] + kh, (ow - 1) * stride[1] + kw, pad_value)
    inside = _pad_nhwc(np.ones((1, h, w, 1), np.int64), pt, pl,
                       (oh - 1) * stride[0] + kh, (ow - 1) * stride[1] + kw, 0)
    for ky in range(kh):
        for kx in range(kw):
            yield (_taps(xp, ky, kx, oh, ow, stride, (1, 1)),
                   _taps(inside, ky, kx, oh, ow, stride, (1, 1)))


def max_pool2d_s8(f: Fields, x: np.ndarray) -> np.ndarray:
    n, _, _, c = f["input"]
    _, oh, ow, _ = f["output"]
    out = np.full((n, oh, ow, c), -128, np.int64)  # TFLite starts from the int8 lowest
    for vals, _ in _pool_windows(f, x, -128):
        out = np.maximum(out, vals)
    return np.clip(out, int(f["act_min"]), int(f["act_max"])).astype(np.int8).reshape(-1)


def avg_pool2d_s8(f: Fields, x: np.ndarray) -> np.ndarray:
    n, _, _, c = f["input"]
    _, oh, ow, _ = f["output"]
    acc = np.zeros((n, oh, ow, c), np.int64)
    count = np.zeros((1, oh, ow, 1), np.int64)
    for vals, inside in _pool_windows(f, x, 0):
        acc += vals
        count += inside
    if np.any(count == 0):
        raise EdgecError("avg_pool2d: a window lies entirely in the padding")
    half = count // 2
    # (acc +- count / 2) / count with C's truncating division
    out = np.where(acc > 0, (acc + half) // count, -((half - acc) // count))
    return np.clip(out, int(f["act_min"]), int(f["act_max"])).astype(np.int8).reshape(-1)


def mean_s8(f: Fields, x: np.ndarray) -> np.ndarray:
    n, h, w, c = f["input"]
    acc = x.reshape(n, h * w, c).astype(np.int64).sum(axis=1) + h * w * int(f["input_offset"])
    out = qm.wrap_i32(qm.mbqm(acc, int(f["multiplier"]), int(f["shift"]))
                      + int(f["output_offset"]))
    return np.clip(out, int(f["act_min"]), int(f["act_max"])).astype(np.int8).reshape(-1)


def mean_partial_s8(f: Fields, x: np.ndarray, acc: np.ndarray | None = None) -> np.ndarray:
    """One row stripe of a mean's input, summed per channel into int32 (plan/patch.py)."""
    s = x.reshape(int(f["pixels"]), int(f["channels"])).astype(np.int64).sum(axis=0)
    if acc is not None:
        s += acc.astype(np.int64)
    return qm.wrap_i32(s).astype(np.int32)


def mean_finish_s8(f: Fields, acc: np.ndarray) -> np.ndarray:
    """The summed parts as mean_s8 finishes them."""
    v = acc.astype(np.int64) + int(f["count"]) * int(f["input_offset"])
    out = qm.wrap_i32(qm.mbqm(v, int(f["multiplier"]), int(f["shift"]))
                      + int(f["output_offset"]))
    return np.clip(out, int(f["act_min"]), int(f["act_max"])).astype(np.int8).reshape(-1)


def softmax_s8(f: Fields, x: np.ndarray) -> np.ndarray:
    return _softmax(f, x, 8)


def softmax_s8_s16(f: Fields, x: np.ndarray) -> np.ndarray:
    """int16 probabilities (scale 1/65536, zero point -32768): TFLite Softmax<int8, int16>."""
    return _softmax(f, x, 16)


def _softmax(f: Fields, x: np.ndarray, bits: int) -> np.ndarray:
    rows, depth = int(f["rows"]), int(f["depth"])
    xi = x.reshape(rows, depth).astype(np.int64)
    diff = xi - np.maximum(xi.max(axis=1, keepdims=True), -128)
    valid = diff >= int(f["diff_min"])
    scaled = qm.srdhm(qm.wrap_i32(diff << int(f["input_left_shift"])),
                      int(f["input_multiplier"]))
    exps = np.where(valid, qm.exp_on_negative_values(np.where(valid, scaled, 0)), 0)
    sum_of_exps = qm.wrap_i32(np.where(valid, qm.rounding_divide_by_pot(exps, 12), 0)
                              .sum(axis=1, keepdims=True))
    headroom_plus_one = qm.clz32(sum_of_exps)
    num_bits_over_unit = 12 - headroom_plus_one
    shifted_scale = qm.one_over_one_plus_x_for_x_in_0_1(
        qm.wrap_i32((sum_of_exps << headroom_plus_one) - (1 << 31)))
    exponent = num_bits_over_unit + 31 - bits
    if np.any((exponent < 0) | (exponent > 31)):
        raise EdgecError("softmax: exponent out of range")
    unsat = qm.rounding_divide_by_pot(qm.srdhm(shifted_scale, exps), exponent)
    lo, hi = -(1 << (bits - 1)), (1 << (bits - 1)) - 1
    out = np.where(valid, np.clip(unsat + lo, lo, hi), lo)
    return out.astype(np.int8 if bits == 8 else np.int16).reshape(-1)


def requantize_s8(f: Fields, x: np.ndarray) -> np.ndarray:
    acc = qm.wrap_i32(qm.mbqm(x.astype(np.int64) + int(f["input_offset"]),
                              int(f["multiplier"]), int(f["shift"]))
                      + int(f["output_offset"]))
    return np.clip(acc, int(f["act_min"]), int(f["act_max"])).astype(np.int8)


# --- data movement (runtime_c/kernels/ref/{pad,transpose,strided_slice,concat,
# resize_nearest}_s8.c): index arithmetic only, except concat's requantized inputs ---------

def pad_s8(f: Fields, x: np.ndarray) -> np.ndarray:
    in_dims, out_dims, before = f["input_dims"], f["output_dims"], f["before"]
    out = np.full(out_dims, int(f["pad_value"]), np.int8)
    out[tuple(slice(b, b + d) for b, d in zip(before, in_dims))] = x.reshape(in_dims)
    return out.reshape(-1)


def transpose_s8(f: Fields, x: np.ndarray) -> np.ndarray:
    return x.reshape(f["input_dims"]).transpose(f["perm"]).reshape(-1)


def strided_slice_s8(f: Fields, x: np.ndarray) -> np.ndarray:
    index = [s + st * np.arange(n) for s, n, st in zip(f["start"], f["output_dims"],
                                                       f["stride"])]
    return x.reshape(f["input_dims"])[np.ix_(*index)].reshape(-1)


def concat_s8(f: Fields, *xs: np.ndarray) -> np.ndarray:
    outer, inner = int(f["outer_size"]), int(f["inner_size"])
    sizes, offsets = _arr(f["axis_sizes"]), _arr(f["input_offset"])
    mults, shifts = _arr(f["multiplier"]), _arr(f["shift"])
    blocks = []
    for i, x in enumerate(xs):
        v = x.reshape(outer, int(sizes[i]) * inner).astype(np.int64)
        v = qm.wrap_i32(qm.mbqm(v + int(offsets[i]), int(mults[i]), int(shifts[i]))
                        + int(f["output_offset"]))
        blocks.append(np.clip(v, -128, 127))  # the identity (a copy) gives the same bytes
    return np.concatenate(blocks, axis=1).astype(np.int8).reshape(-1)


def resize_nearest_s8(f: Fields, x: np.ndarray) -> np.ndarray:
    img = x.reshape(f["input"])
    ys, xs = _arr(f["y_index"]), _arr(f["x_index"])
    return img[:, ys][:, :, xs].reshape(-1)


# --- activations and float boundaries (runtime_c/kernels/ref/{lut,hard_swish,leaky_relu}_s8.c,
# quantize_f32.c, dequantize_f32.c) ---------------------------------------------------------

def lut_s8(f: Fields, x: np.ndarray) -> np.ndarray:
    return _arr(f["table"]).astype(np.int8)[x.astype(np.uint8)]


def _wrap_i16(x: np.ndarray) -> np.ndarray:
    return ((x + (1 << 15)) & 0xFFFF) - (1 << 15)


def _trunc_div_pot(x: np.ndarray, bits: int) -> np.ndarray:
    """C's x / 2^bits (truncation toward zero)."""
    return np.where(x >= 0, x >> bits, -((-x) >> bits))


def _srdhm16(a: np.ndarray, b) -> np.ndarray:
    """gemmlowp SaturatingRoundingDoublingHighMul<int16_t>."""
    ab = a * b
    q = _wrap_i16(_trunc_div_pot(ab + np.where(ab >= 0, 1 << 14, 1 - (1 << 14)), 15))
    return np.where((a == -32768) & (b == -32768), 32767, q)


def _sdhm16(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """reference_ops::SaturatingDoublingHighMul (int16, truncating)."""
    q = _wrap_i16(_trunc_div_pot(a * b, 15))
    return np.where((a == -32768) & (b == -32768), 32767, q)


def hard_swish_s8(f: Fields, x: np.ndarray) -> np.ndarray:
    e_rel = int(f["reluish_multiplier_exponent"])
    v = x.astype(np.int64) + int(f["input_offset"])
    hires = v * (1 << 7)
    preshift = _srdhm16(hires, int(f["output_multiplier_fixedpoint"]))
    reluish = hires
    if e_rel > 0:
        reluish = np.clip(reluish << (e_rel - 1), -32768, 32767)
    reluish = _srdhm16(reluish, int(f["reluish_multiplier_fixedpoint"]))
    if e_rel > 0:
        reluish = np.clip(reluish << 1, -32768, 32767)
    if e_rel < 0:
        reluish = qm.rounding_divide_by_pot(reluish, -e_rel)
    reluish = (reluish + (1 << 15)) >> 1
    out = qm.rounding_divide_by_pot(_sdhm16(reluish, preshift),
                                    -int(f["output_multiplier_exponent"]))
    out = _wrap_i16(out + int(f["output_offset"]))
    return np.clip(out, -128, 127).astype(np.int8)


def leaky_relu_s8(f: Fields, x: np.ndarray) -> np.ndarray:
    v = x.astype(np.int64) + int(f["input_offset"])
    scaled = np.where(v >= 0,
                      qm.mbqm(v, int(f["multiplier_identity"]), int(f["shift_identity"])),
                      qm.mbqm(v, int(f["multiplier_alpha"]), int(f["shift_alpha"])))
    return np.clip(qm.wrap_i32(scaled + int(f["output_offset"])), -128, 127).astype(np.int8)


def quantize_f32_s8(f: Fields, x: np.ndarray) -> np.ndarray:
    return _affine_quantize(f, x, np.int8)


def quantize_f32_s16(f: Fields, x: np.ndarray) -> np.ndarray:
    return _affine_quantize(f, x, np.int16)


def _affine_quantize(f: Fields, x: np.ndarray, dtype) -> np.ndarray:
    """LiteRT AffineQuantize: float32 division, round half away from zero; NaN and quotients
    outside int32 convert to INT32_MIN (x86-64 cvttss2si), then + zero point (wrapping), then
    the clamp to `dtype`."""
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        r = x.astype(np.float32) / np.float32(f["scale"])
        inside = (r >= np.float32(-2.0 ** 31)) & (r < np.float32(2.0 ** 31))
        r64 = np.where(inside, r, 0).astype(np.float64)
        rounded = np.sign(r64) * np.floor(np.abs(r64) + 0.5)
    q = np.where(inside, rounded.astype(np.int64), qm.INT32_MIN)
    q = qm.wrap_i32(q + int(f["zero_point"]))
    info = np.iinfo(dtype)
    return np.clip(q, info.min, info.max).astype(dtype)


def dequantize_f32(f: Fields, x: np.ndarray) -> np.ndarray:
    return ((x.astype(np.int32) - int(f["zero_point"])).astype(np.float32)
            * np.float32(f["scale"])).astype(np.float32)


KERNELS: dict[str, KernelFn] = {
    "edgec_conv2d_s8": conv2d_s8,
    "edgec_depthwise_conv2d_s8": depthwise_conv2d_s8,
    "edgec_fully_connected_s8": fully_connected_s8,
    "edgec_fully_connected_first_s8": fully_connected_partial_s8,
    "edgec_fully_connected_partial_s8": fully_connected_partial_s8,
    "edgec_fully_connected_finish_s8": fully_connected_finish_s8,
    "edgec_add_s8": add_s8,
    "edgec_max_pool2d_s8": max_pool2d_s8,
    "edgec_avg_pool2d_s8": avg_pool2d_s8,
    "edgec_mean_s8": mean_s8,
    "edgec_mean_first_s8": mean_partial_s8,
    "edgec_mean_partial_s8": mean_partial_s8,
    "edgec_mean_finish_s8": mean_finish_s8,
    "edgec_softmax_s8": softmax_s8,
    "edgec_softmax_s8_s16": softmax_s8_s16,
    "edgec_requantize_s8": requantize_s8,
    "edgec_mul_s8": mul_s8,
    "edgec_lut_s8": lut_s8,
    "edgec_hard_swish_s8": hard_swish_s8,
    "edgec_leaky_relu_s8": leaky_relu_s8,
    "edgec_quantize_f32_s8": quantize_f32_s8,
    "edgec_dequantize_s8_f32": dequantize_f32,
    "edgec_quantize_f32_s16": quantize_f32_s16,
    "edgec_dequantize_s16_f32": dequantize_f32,
    "edgec_pad_s8": pad_s8,
    "edgec_transpose_s8": transpose_s8,
    "edgec_strided_slice_s8": strided_slice_s8,
    "edgec_concat_s8": concat_s8,
    "edgec_resize_nearest_s8": resize_nearest_s8,
}


# Transformer ops (toolchain/golden_transformer.py)
KERNELS.update(_golden_transformer.kernels(add_s8, mul_s8))
KERNELS.update(_golden_transformer.fused_kernels(KERNELS))
# 16x8 ops (toolchain/golden_s16.py)
KERNELS.update(_golden_s16.kernels(_broadcast_inputs))


def _via_reference(reference: str, to_reference) -> KernelFn:
    return lambda f, *x: KERNELS[reference](to_reference(f), *x)


# Optimized variants (toolchain/lower/select.py): the reference math on the reference
# parameters recovered from theirs, so a firmware check still checks the reference semantics.
KERNELS.update({name: _via_reference(ref, fn) for name, (ref, fn) in REFERENCE_OF.items()})


def run_call(call: KernelCall, *inputs: np.ndarray) -> np.ndarray:
    """One kernel call on flat inputs (int8; int16 in 16x8 models and attention
    probabilities; float32 for a float graph input; int32 accumulators); returns the flat
    output (int8, int16, float32 from a dequantize, int32 accumulators). A view returns its
    input's bytes."""
    if call.view:
        return np.asarray(inputs[0]).reshape(-1)
    fn = KERNELS.get(call.kernel)
    if fn is None:
        raise EdgecError(f"golden model has no kernel '{call.kernel}' (node '{call.name}')")
    flat = [np.ascontiguousarray(a, dtype=np.asarray(a).dtype
                                 if np.asarray(a).dtype in (np.float32, np.int32, np.int16)
                                 else np.int8).reshape(-1) for a in inputs]
    return fn(call.fields, *flat)


def run_program(program: Program, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Run every call in order. `inputs` maps graph input names to arrays of the input
    tensors' dtypes: int8, or float32 for a float input (a model with float I/O).

    Returns every activation tensor (graph inputs and each call's outputs) in their graph
    shapes and dtypes.
    """
    graph = program.graph
    values: dict[str, np.ndarray] = {}
    for name in graph.inputs:
        if name not in inputs:
            raise EdgecError(f"missing input '{name}'")
        arr = np.asarray(inputs[name])
        want = np.dtype(graph.tensors[name].dtype)
        if arr.dtype != want:
            raise EdgecError(f"input '{name}' must be {want}, got {arr.dtype}")
        shape = tuple(graph.tensors[name].shape)
        if arr.size != int(np.prod(shape, dtype=np.int64)):
            raise EdgecError(f"input '{name}' has {arr.size} values, shape {shape} needs "
                             f"{int(np.prod(shape, dtype=np.int64))}")
        values[name] = arr.reshape(shape)
    slices = program.slices
    for call in program.calls:
        ins = []
        for t in call.inputs:  # a row slice reads its parent's rows
            if t in slices:
                parent, row = slices[t]
                ins.append(values[parent][:, row:row + graph.tensors[t].shape[1]])
            else:
                ins.append(values[t])
        out = run_call(call, *ins)
        name = call.outputs[0]
        values[name] = out.reshape(tuple(graph.tensors[name].shape))
        if name in slices:  # a row slice writes into its parent's rows
            parent, row = slices[name]
            if parent not in values:
                values[parent] = np.zeros(tuple(graph.tensors[parent].shape),
                                          np.dtype(graph.tensors[parent].dtype))
            values[parent][:, row:row + values[name].shape[1]] = values[name]
    return values
