"""logistic, tanh -> edgec_lut_s8; hard_swish, leaky_relu; quantize / dequantize at the float
boundaries of a model.

Every constant is prepared as TFLite's Prepare does (tensorflow/lite/kernels/activations.cc,
quantize.cc, dequantize.cc), float32 arithmetic included: TFLite computes these ratios from
the tensors' float scales in float, not in double, and the last bit of a multiplier can
change an output.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import math
from collections.abc import Callable
from functools import cache

import numpy as np

from ..ir import Graph, Node, Tensor
from ..quant_math import f32, quantize_multiplier
from .common import activation, input_name, node_error
from .elementwise import lower_requantize
from .program import ConstArray, KernelCall

_F = np.float32


# ---------------------------------------------------------------------------------------
# LOGISTIC / TANH: TFLite's int8 lookup table
# ---------------------------------------------------------------------------------------

@cache
def _libm() -> ctypes.CDLL:
    """The C math library: LiteRT's table uses std::exp(float) / std::tanh(float), i.e. the
    platform's expf / tanhf; NumPy's float32 exp may differ from them in the last bit."""
    name = ctypes.util.find_library("m") or "libm.so.6"
    lib = ctypes.CDLL(name)
    for fn in ("expf", "tanhf"):
        getattr(lib, fn).restype = ctypes.c_float
        getattr(lib, fn).argtypes = [ctypes.c_float]
    return lib


def sigmoid_f32(x: np.float32) -> np.float32:
    # [](float value) { return 1.0f / (1.0f + std::exp(-value)); }
    e = _F(_libm().expf(float(-x)))
    return _F(1.0) / (_F(1.0) + e)


def tanh_f32(x: np.float32) -> np.float32:
    return _F(_libm().tanhf(float(x)))


def _round_half_away_f32(x: np.float32) -> np.float32:
    """std::round(float): half away from zero (x + 0.5 in double is exact for a float x)."""
    v = float(x)
    return _F(math.copysign(math.floor(abs(v) + 0.5), v))


def lookup_table(transform: Callable[[np.float32], np.float32], in_scale: float, in_zp: int,
                 out_scale: float, out_zp: int) -> np.ndarray:
    """activations.cc PopulateLookupTable<int8_t>, step by step in float32. Returns the
    256 int8 outputs indexed by (uint8_t)input."""
    inverse_scale = _F(1.0) / _F(out_scale)
    table = np.zeros(256, np.int8)
    with np.errstate(over="ignore"):
        for val in range(-128, 128):
            dequantized = _F(in_scale) * _F(val - in_zp)
            transformed = transform(dequantized)
            rescaled = _round_half_away_f32(transformed * inverse_scale)
            quantized = int(rescaled + _F(out_zp))  # static_cast<int32_t>: truncation
            table[val & 0xFF] = min(max(quantized, -128), 127)
    return table


def _lut_call(graph: Graph, node: Node, transform) -> KernelCall:
    x, xq = activation(graph, node, input_name(node, 0))
    y, yq = activation(graph, node, node.outputs[0])
    _same_size(node, x, y)
    table = lookup_table(transform, xq.scale, xq.zero_point, yq.scale, yq.zero_point)
    fields = {"size": _size(y), "table": ConstArray("int8_t", table)}
    return KernelCall(node.name, node.op, "edgec_lut_s8", "edgec_lut_params", fields,
                      inputs=[x.name], outputs=[y.name], inplace={0: 0})


def lower_logistic(graph: Graph, node: Node) -> KernelCall:
    """Any output quant works with a table; TFLite itself requires scale 1/256 (zp -128)."""
    return _lut_call(graph, node, sigmoid_f32)


def lower_tanh(graph: Graph, node: Node) -> KernelCall:
    return _lut_call(graph, node, tanh_f32)


# ---------------------------------------------------------------------------------------
# HARD_SWISH
# ---------------------------------------------------------------------------------------

def downscale_to_int16_multiplier(m32: int) -> int:
    """activations.cc DownScaleInt32ToInt16Multiplier: a Q31 multiplier -> Q15, rounded."""
    rounding_offset = 1 << 15
    if m32 >= (1 << 31) - 1 - rounding_offset:
        return (1 << 15) - 1
    return (m32 + rounding_offset) >> 16


def lower_hard_swish(graph: Graph, node: Node) -> KernelCall:
    x, xq = activation(graph, node, input_name(node, 0))
    y, yq = activation(graph, node, node.outputs[0])
    _same_size(node, x, y)
    # HardSwishPrepare, in float32 as there
    hires_input_scale = _F(1.0 / 128.0) * _F(xq.scale)
    reluish_scale = _F(3.0) / _F(32768.0)
    output_multiplier = hires_input_scale / _F(yq.scale)
    reluish_multiplier = hires_input_scale / reluish_scale
    m_out, e_out = quantize_multiplier(float(output_multiplier))
    m_rel, e_rel = quantize_multiplier(float(reluish_multiplier))
    if not -15 <= e_out <= 0:
        raise node_error(node, f"output/input scale ratio {yq.scale / xq.scale:g} is out of "
                               "the range of TFLite's int8 HardSwish (output exponent "
                               f"{e_out} not in [-15, 0])")
    if not -15 <= e_rel <= 15:
        raise node_error(node, f"input scale {xq.scale:g} is out of the range of the int8 "
                               f"HardSwish (reluish exponent {e_rel})")
    fields = {
        "size": _size(y),
        "input_offset": -xq.zero_point,
        "output_offset": yq.zero_point,
        "output_multiplier_fixedpoint": downscale_to_int16_multiplier(m_out),
        "output_multiplier_exponent": e_out,
        "reluish_multiplier_fixedpoint": downscale_to_int16_multiplier(m_rel),
        "reluish_multiplier_exponent": e_rel,
    }
    return KernelCall(node.name, node.op, "edgec_hard_swish_s8", "edgec_hard_swish_params",
                      fields, inputs=[x.name], outputs=[y.name], inplace={0: 0})


# ---------------------------------------------------------------------------------------
# LEAKY_RELU
# ---------------------------------------------------------------------------------------

def quantize_multiplier_signed(real: float) -> tuple[int, int]:
    """QuantizeMultiplier for any sign (TFLite's double-rounding build accepts a negative
    multiplier: frexp keeps the sign; only a *positive* significand of 2^31 is halved)."""
    if real >= 0:
        return quantize_multiplier(real)
    q, shift = math.frexp(real)
    q_fixed = -math.floor(abs(q) * (1 << 31) + 0.5)  # TfLiteRound, half away from 0
    if shift < -31:
        return 0, 0
    return q_fixed, shift


def lower_leaky_relu(graph: Graph, node: Node) -> KernelCall:
    x, xq = activation(graph, node, input_name(node, 0))
    y, yq = activation(graph, node, node.outputs[0])
    _same_size(node, x, y)
    alpha = node.attrs.get("alpha")
    if alpha is None or not math.isfinite(float(alpha)):
        raise node_error(node, f"needs a finite 'alpha', got {alpha}")
    # LeakyReluPrepare: `input->params.scale * params->alpha / output->params.scale` and
    # `input->params.scale / output->params.scale` are float32 expressions.
    alpha_real = _F(xq.scale) * _F(alpha) / _F(yq.scale)
    identity_real = _F(xq.scale) / _F(yq.scale)
    m_alpha, s_alpha = quantize_multiplier_signed(float(alpha_real))
    m_id, s_id = quantize_multiplier(float(identity_real))
    if max(s_alpha, s_id) > 22:  # 255 * 2^shift must stay below 2^31
        raise node_error(node, f"scale ratio {xq.scale / yq.scale:g} (alpha {alpha}) is too "
                               "large for int8 LeakyReLU")
    fields = {
        "size": _size(y),
        "input_offset": -xq.zero_point,
        "output_offset": yq.zero_point,
        "multiplier_identity": m_id,
        "shift_identity": s_id,
        "multiplier_alpha": m_alpha,
        "shift_alpha": s_alpha,
    }
    return KernelCall(node.name, node.op, "edgec_leaky_relu_s8", "edgec_leaky_relu_params",
                      fields, inputs=[x.name], outputs=[y.name], inplace={0: 0})


# ---------------------------------------------------------------------------------------
# QUANTIZE / DEQUANTIZE
# ---------------------------------------------------------------------------------------

def _float_tensor(graph: Graph, node: Node, name: str) -> Tensor:
    t = graph.tensors[name]
    if t.is_const or t.dtype != "float32":
        raise node_error(node, f"tensor '{name}' must be a float32 activation, got "
                               f"{'a constant ' if t.is_const else ''}{t.dtype}")
    return t


def lower_quantize(graph: Graph, node: Node) -> KernelCall:
    """float32 -> int8 (a float model input): edgec_quantize_f32_s8; int8 -> int8
    (QUANTIZE as a requantization): edgec_requantize_s8."""
    src = graph.tensors[input_name(node, 0)]
    if src.dtype != "float32":
        return lower_requantize(graph, node)
    x = _float_tensor(graph, node, src.name)
    y, yq = activation(graph, node, node.outputs[0])
    _same_size(node, x, y)
    fields = {"size": _size(y), "scale": yq.scale, "zero_point": yq.zero_point}
    return KernelCall(node.name, node.op, "edgec_quantize_f32_s8", "edgec_quantize_f32_params",
                      fields, inputs=[x.name], outputs=[y.name], inplace={0: 0})


def lower_dequantize(graph: Graph, node: Node) -> KernelCall:
    x, xq = activation(graph, node, input_name(node, 0))
    y = _float_tensor(graph, node, node.outputs[0])
    _same_size(node, x, y)
    fields = {"size": _size(y), "scale": f32(xq.scale), "zero_point": xq.zero_point}
    return KernelCall(node.name, node.op, "edgec_dequantize_s8_f32",
                      "edgec_dequantize_f32_params", fields, inputs=[x.name],
                      outputs=[y.name])


# ---------------------------------------------------------------------------------------

def _size(t: Tensor) -> int:
    return int(np.prod(t.shape, dtype=np.int64))


def _same_size(node: Node, x: Tensor, y: Tensor) -> None:
    if _size(x) != _size(y):
        raise node_error(node, f"input shape {x.shape} and output shape {y.shape} differ")


LOWERINGS = {
    "logistic": lower_logistic,
    "tanh": lower_tanh,
    "hard_swish": lower_hard_swish,
    "leaky_relu": lower_leaky_relu,
    "quantize": lower_quantize,
    "dequantize": lower_dequantize,
}
