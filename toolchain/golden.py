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

from . import quant_math as qm
from .errors import EdgecError
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


def add_s8(f: Fields, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    ls = int(f["left_shift"])
    s1 = (a.astype(np.int64) + int(f["input1_offset"])) << ls
    s2 = (b.astype(np.int64) + int(f["input2_offset"])) << ls
    raw_sum = (qm.mbqm(s1, int(f["input1_multiplier"]), int(f["input1_shift"]))
               + qm.mbqm(s2, int(f["input2_multiplier"]), int(f["input2_shift"])))
    out = qm.mbqm(raw_sum, int(f["output_multiplier"]), int(f["output_shift"])) \
        + int(f["output_offset"])
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


def softmax_s8(f: Fields, x: np.ndarray) -> np.ndarray:
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
    exponent = num_bits_over_unit + 31 - 8
    if np.any((exponent < 0) | (exponent > 31)):
        raise EdgecError("softmax: exponent out of range")
    unsat = qm.rounding_divide_by_pot(qm.srdhm(shifted_scale, exps), exponent)
    out = np.where(valid, np.clip(unsat - 128, -128, 127), -128)
    return out.astype(np.int8).reshape(-1)


def requantize_s8(f: Fields, x: np.ndarray) -> np.ndarray:
    acc = qm.wrap_i32(qm.mbqm(x.astype(np.int64) + int(f["input_offset"]),
                              int(f["multiplier"]), int(f["shift"]))
                      + int(f["output_offset"]))
    return np.clip(acc, int(f["act_min"]), int(f["act_max"])).astype(np.int8)


KERNELS: dict[str, KernelFn] = {
    "edgec_conv2d_s8": conv2d_s8,
    "edgec_depthwise_conv2d_s8": depthwise_conv2d_s8,
    "edgec_fully_connected_s8": fully_connected_s8,
    "edgec_add_s8": add_s8,
    "edgec_max_pool2d_s8": max_pool2d_s8,
    "edgec_avg_pool2d_s8": avg_pool2d_s8,
    "edgec_mean_s8": mean_s8,
    "edgec_softmax_s8": softmax_s8,
    "edgec_requantize_s8": requantize_s8,
}


def run_call(call: KernelCall, *inputs: np.ndarray) -> np.ndarray:
    """One kernel call on flat int8 inputs; returns the flat int8 output."""
    fn = KERNELS.get(call.kernel)
    if fn is None:
        raise EdgecError(f"golden model has no kernel '{call.kernel}' (node '{call.name}')")
    flat = [np.ascontiguousarray(a, dtype=np.int8).reshape(-1) for a in inputs]
    return fn(call.fields, *flat)


def run_program(program: Program, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Run every call in order. `inputs` maps graph input names to int8 arrays.

    Returns every activation tensor (graph inputs and each call's outputs) as int8 arrays
    in their graph shapes.
    """
    graph = program.graph
    values: dict[str, np.ndarray] = {}
    for name in graph.inputs:
        if name not in inputs:
            raise EdgecError(f"missing input '{name}'")
        arr = np.asarray(inputs[name])
        if arr.dtype != np.int8:
            raise EdgecError(f"input '{name}' must be int8, got {arr.dtype}")
        shape = tuple(graph.tensors[name].shape)
        if arr.size != int(np.prod(shape, dtype=np.int64)):
            raise EdgecError(f"input '{name}' has {arr.size} values, shape {shape} needs "
                             f"{int(np.prod(shape, dtype=np.int64))}")
        values[name] = arr.reshape(shape)
    for call in program.calls:
        out = run_call(call, *(values[t] for t in call.inputs))
        values[call.outputs[0]] = out.reshape(tuple(graph.tensors[call.outputs[0]].shape))
    return values
