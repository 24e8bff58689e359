"""Shared helpers of the per-op lowering modules: tensor checks and requantization constants.

Every function raises EdgecError with the node's name and op in the message, so a user sees
which layer of their model is the problem.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import EdgecError
from ..ir import Graph, Node, Tensor
from ..quant_math import activation_range, f32, quantize_multiplier
from .program import ConstArray


def node_error(node: Node, message: str) -> EdgecError:
    return EdgecError(f"node '{node.name}' ({node.op}): {message}")


@dataclass(frozen=True)
class ActQuant:
    """Per-tensor int8 activation quantization, scale rounded to float32 as TFLite stores it."""

    scale: float
    zero_point: int


def input_name(node: Node, index: int) -> str:
    """The node's index-th input, or "" when absent."""
    return node.inputs[index] if index < len(node.inputs) else ""


def activation(graph: Graph, node: Node, name: str, dtype: str = "int8"
               ) -> tuple[Tensor, ActQuant]:
    """An activation tensor of `dtype` (int8, or int16 where a lowering takes it) with
    per-tensor quantization."""
    t = graph.tensors[name]
    if t.is_const:
        raise node_error(node, f"input '{name}' is a constant; only weights and bias may be "
                               "constant in the int8 lowering")
    if t.dtype != dtype:
        raise node_error(node, f"tensor '{name}' is {t.dtype}, the lowering needs {dtype} "
                               "(quantize the model first)")
    q = t.quant
    if q is None or q.is_per_channel or np.asarray(q.scale).size != 1:
        raise node_error(node, f"activation '{name}' needs per-tensor quantization params")
    scale = f32(float(np.asarray(q.scale).reshape(())))
    zp = int(np.asarray(q.zero_point).reshape(()))
    if not scale > 0.0:
        raise node_error(node, f"activation '{name}' has scale {scale}; it must be > 0")
    lo, hi = np.iinfo(dtype).min, np.iinfo(dtype).max
    if not lo <= zp <= hi:
        raise node_error(node, f"activation '{name}' zero point {zp} is outside {dtype}")
    return t, ActQuant(scale, zp)


def same_quant(a: ActQuant, b: ActQuant) -> bool:
    return a.scale == b.scale and a.zero_point == b.zero_point


def weights(graph: Graph, node: Node, name: str, channels: int, axis: int
            ) -> tuple[np.ndarray, np.ndarray, bool]:
    """Constant int8 weights with a symmetric scale per output channel (or one per tensor).

    Returns (data int8, float32-rounded scales [channels] as float64, per_channel).
    """
    if name == "" or name not in graph.tensors:
        raise node_error(node, "has no weights")
    t = graph.tensors[name]
    if not t.is_const or t.dtype != "int8":
        raise node_error(node, f"weights '{name}' must be a constant int8 tensor, got "
                               f"{'a constant' if t.is_const else 'an activation'} {t.dtype}")
    q = t.quant
    if q is None:
        raise node_error(node, f"weights '{name}' have no quantization params")
    scale = np.asarray(q.scale, np.float64).reshape(-1)
    zp = np.asarray(q.zero_point, np.int64).reshape(-1)
    per_channel = scale.size > 1 or (q.axis is not None and scale.size == channels)
    if per_channel:
        if scale.size != channels:
            raise node_error(node, f"weights '{name}' have {scale.size} scales for "
                                   f"{channels} output channels")
        if q.axis is not None and q.axis % len(t.shape) != axis:
            raise node_error(node, f"weights '{name}' are quantized along axis {q.axis}, "
                                   f"expected axis {axis}")
    if np.any(zp != 0):
        raise node_error(node, f"weights '{name}' must be symmetric (zero point 0)")
    if np.any(~(scale > 0)):
        raise node_error(node, f"weights '{name}' have a scale <= 0")
    scale32 = scale.astype(np.float32).astype(np.float64)
    if not per_channel:
        scale32 = np.full(channels, scale32[0])
    data = np.asarray(t.data)
    if data.dtype != np.int8:
        raise node_error(node, f"weights '{name}' data is {data.dtype}, expected int8")
    return data, scale32, per_channel


def bias(graph: Graph, node: Node, name: str, channels: int) -> np.ndarray | None:
    """Optional constant int32 bias [channels] (scale s_in * s_w[c], zero point 0)."""
    if name == "":
        return None
    t = graph.tensors[name]
    if not t.is_const:
        raise node_error(node, f"bias '{name}' must be a constant")
    data = np.asarray(t.data)
    if data.dtype != np.int32:
        raise node_error(node, f"bias '{name}' is {data.dtype}; the int8 lowering needs int32")
    if data.size != channels:
        raise node_error(node, f"bias '{name}' has {data.size} values for {channels} channels")
    return data.reshape(-1)


def per_channel_multipliers(node: Node, input_scale: float, weight_scales: np.ndarray,
                            output_scale: float) -> tuple[ConstArray, ConstArray]:
    """PopulateConvolutionQuantizationParams: per channel, in double,
    s_in * s_w[c] / s_out -> QuantizeMultiplier -> (significand, shift)."""
    mults, shifts = [], []
    for s_w in weight_scales:
        m, s = quantize_multiplier(input_scale * float(s_w) / output_scale)
        if s > 30:
            raise node_error(node, f"requantization scale {input_scale * s_w / output_scale:g}"
                                   " is too large (shift > 30)")
        mults.append(m)
        shifts.append(s)
    return (ConstArray("int32_t", np.asarray(mults, np.int32)),
            ConstArray("int32_t", np.asarray(shifts, np.int32)))


def check_accumulator(node: Node, w_per_channel: np.ndarray, bias_data: np.ndarray | None
                      ) -> None:
    """The int32 accumulator of a channel is at most sum|w| * 255 + |bias|: reject models
    where it could overflow (the C kernels accumulate in int32 as TFLite does)."""
    bound = np.abs(w_per_channel.astype(np.int64)).sum(axis=1) * 255
    if bias_data is not None:
        bound = bound + np.abs(bias_data.astype(np.int64))
    if np.any(bound > (1 << 31) - 1):
        raise node_error(node, "the int32 accumulator could overflow "
                               f"(worst case {int(bound.max())} >= 2^31)")


def dims4(node: Node, t: Tensor) -> tuple[int, int, int, int]:
    if len(t.shape) != 4:
        raise node_error(node, f"tensor '{t.name}' must be 4-D NHWC, got shape {t.shape}")
    return tuple(int(d) for d in t.shape)  # type: ignore[return-value]


def pair(node: Node, key: str, default: tuple[int, int]) -> tuple[int, int]:
    v = node.attrs.get(key)
    if v is None:
        return default
    v = tuple(int(x) for x in v)
    if len(v) != 2:
        raise node_error(node, f"attribute {key}={v} must have 2 values")
    return v  # type: ignore[return-value]


def pads4(node: Node) -> tuple[int, int, int, int]:
    v = node.attrs.get("pads")
    if v is None:
        return (0, 0, 0, 0)
    v = tuple(int(x) for x in v)
    if len(v) != 4 or min(v) < 0:
        raise node_error(node, f"pads={v} must be 4 values (top, left, bottom, right) >= 0")
    return v  # type: ignore[return-value]


def expected_out(size: int, pad_a: int, pad_b: int, kernel: int, stride: int,
                 dilation: int = 1) -> int:
    effective = (kernel - 1) * dilation + 1
    return (size + pad_a + pad_b - effective) // stride + 1


def check_spatial(node: Node, in_hw: tuple[int, int], out_hw: tuple[int, int],
                  kernel: tuple[int, int], strides: tuple[int, int],
                  dilations: tuple[int, int], pads: tuple[int, int, int, int]) -> None:
    if min(strides) < 1 or min(dilations) < 1 or min(kernel) < 1:
        raise node_error(node, f"strides {strides}, dilations {dilations} and kernel {kernel}"
                               " must be >= 1")
    exp_h = expected_out(in_hw[0], pads[0], pads[2], kernel[0], strides[0], dilations[0])
    exp_w = expected_out(in_hw[1], pads[1], pads[3], kernel[1], strides[1], dilations[1])
    if (exp_h, exp_w) != tuple(out_hw):
        raise node_error(node, f"output is {out_hw[0]}x{out_hw[1]} but input {in_hw[0]}x"
                               f"{in_hw[1]}, kernel {kernel}, strides {strides}, dilations "
                               f"{dilations}, pads {pads} give {exp_h}x{exp_w}")


def requant_fields(node: Node, xq: ActQuant, yq: ActQuant, w_data: np.ndarray,
                   w_scales: np.ndarray, b: np.ndarray | None, mult: ConstArray | None = None,
                   shift: ConstArray | None = None) -> dict:
    """The requantization block of conv2d / depthwise / fully connected params: offsets,
    clamp, weights, bias and the per-channel (multiplier, shift), computed by
    per_channel_multipliers unless given."""
    if mult is None or shift is None:
        mult, shift = per_channel_multipliers(node, xq.scale, w_scales, yq.scale)
    act_min, act_max = activation_range(node.attrs.get("act_min"), node.attrs.get("act_max"),
                                        yq.scale, yq.zero_point)
    return {
        "input_offset": -xq.zero_point,
        "output_offset": yq.zero_point,
        "act_min": act_min,
        "act_max": act_max,
        "weights": ConstArray("int8_t", np.ascontiguousarray(w_data, np.int8).reshape(-1)),
        "bias": None if b is None else ConstArray("int32_t", b.astype(np.int32)),
        "output_multiplier": mult,
        "output_shift": shift,
    }
