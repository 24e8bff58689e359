"""gelu -> edgec_lut_s8 with TFLite's int8 GELU table.

TFLite's int8 GELU (tensorflow/lite/kernels/gelu.cc) is a 256-entry lookup table built at
Prepare time by LUTPopulate<int8_t> (kernels/internal/common.h: dequantize in float32,
transform, TfLiteRound(y / s_out), + zero point, clamp), with the transform of
kernels/internal/reference/gelu.h:

  exact        GeluTransform(x)            = 0.5f * x * erfc(x * (float)-M_SQRT1_2)
  approximate  GeluTransformApproximate(x) = 0.5f * x * (1.f + tanh(kSqrt2dPi *
                                                (x + 0.044715f * x * x * x)))

all in float32 with the C library's erfcf / tanhf (evaluated here through ctypes, as the
LOGISTIC / TANH tables are), so the table is LiteRT's own, bit for bit.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import math
from functools import cache

import numpy as np

from ..ir import Graph, Node
from .activations import lookup_table
from .common import activation, input_name, node_error
from .program import ConstArray, KernelCall

_F = np.float32
SQRT_2_OVER_PI = _F(2.0 / math.sqrt(math.pi) * math.sqrt(0.5))  # M_2_SQRTPI * M_SQRT1_2
NEG_SQRT1_2 = _F(-math.sqrt(0.5))  # static_cast<float>(-M_SQRT1_2)


@cache
def _libm() -> ctypes.CDLL:
    lib = ctypes.CDLL(ctypes.util.find_library("m") or "libm.so.6")
    for fn in ("erfcf", "tanhf"):
        getattr(lib, fn).restype = ctypes.c_float
        getattr(lib, fn).argtypes = [ctypes.c_float]
    return lib


def gelu_f32(x: np.float32) -> np.float32:
    """GeluTransform: 0.5f * in * std::erfc(in * static_cast<float>(-M_SQRT1_2))."""
    x = _F(x)
    return (_F(0.5) * x) * _F(_libm().erfcf(float(x * NEG_SQRT1_2)))


def gelu_approximate_f32(x: np.float32) -> np.float32:
    """GeluTransformApproximate, evaluated left to right in float32 as the C++ expression."""
    x = _F(x)
    cube = ((_F(0.044715) * x) * x) * x
    t = _F(_libm().tanhf(float(SQRT_2_OVER_PI * (x + cube))))
    return (_F(0.5) * x) * (_F(1.0) + t)


def gelu_table(in_scale: float, in_zp: int, out_scale: float, out_zp: int,
               approximate: bool = False) -> np.ndarray:
    """The 256 int8 outputs of TFLite's int8 GELU, indexed by (uint8_t)input."""
    return lookup_table(gelu_approximate_f32 if approximate else gelu_f32,
                        in_scale, in_zp, out_scale, out_zp)


def lower_gelu(graph: Graph, node: Node) -> KernelCall:
    x, xq = activation(graph, node, input_name(node, 0))
    y, yq = activation(graph, node, node.outputs[0])
    size = int(np.prod(y.shape, dtype=np.int64))
    if int(np.prod(x.shape, dtype=np.int64)) != size:
        raise node_error(node, f"input shape {x.shape} and output shape {y.shape} differ")
    table = gelu_table(xq.scale, xq.zero_point, yq.scale, yq.zero_point,
                       bool(node.attrs.get("approximate", False)))
    fields = {"size": size, "table": ConstArray("int8_t", table)}
    return KernelCall(node.name, node.op, "edgec_lut_s8", "edgec_lut_params", fields,
                      inputs=[x.name], outputs=[y.name], inplace={0: 0})


LOWERINGS = {"gelu": lower_gelu}
