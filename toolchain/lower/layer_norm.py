"""layer_norm (last axis, int8 in and out) -> edgec_layer_norm_s8.

TFLite has no int8 LayerNorm, so this is edgec's own integer algorithm; the arithmetic and
its overflow bounds are documented in runtime_c/kernels/ref/layer_norm_s8.c. Here, on the
host, the float parameters become integers:

  variance_shift p   the largest p in [-15, 8] for which epsilon below fits int32: the
                     variance C^2 var(x) (< 2^40 for C <= 8192) is scaled by 4^p < 2^16
                     before eps is added, so a small eps keeps its precision;
  epsilon            round(C^2 * eps / s_in^2 * 4^p): eps in the units of C^2 var(x);
  output_shift G     the largest G in [0, 30] with max(|gamma|, |beta|) / s_out * 2^G < 2^31;
  gamma[c], beta[c]  round(gamma_c / s_out * 2^G), round(beta_c / s_out * 2^G), int32.

The output is then y = zp_out + round(gamma_c / s_out * n + beta_c / s_out) with the
normalized value n = (x - mean) / sqrt(var + eps) in Q.16: the error against float LayerNorm
is the final rounding (1/2 step) plus a few 2^-16 of n, the inverse square root's error
(< 1.3e-6 relative: 5 Newton steps from 1, and the truncating normalization of its input)
and the 2^-G rounding of gamma and beta.
"""
from __future__ import annotations

import math

import numpy as np

from ..ir import Graph, Node
from ..quant_math import tflite_round
from .common import activation, input_name, node_error
from .program import ConstArray, KernelCall

FRAC_BITS = 16  # F: fractional bits of the normalized value (LAYER_NORM_FRAC_BITS in C)
MAX_DEPTH = 8192  # keeps every intermediate of the C kernel inside its int32/int64 bound
VARIANCE_SHIFTS = range(8, -16, -1)  # p, tried from the most precise
MAX_OUTPUT_SHIFT = 30
INT32_MAX = (1 << 31) - 1


def _float_vector(graph: Graph, node: Node, name: str, what: str, depth: int) -> np.ndarray:
    if name == "" or name not in graph.tensors or not graph.tensors[name].is_const:
        raise node_error(node, f"{what} must be a constant")
    t = graph.tensors[name]
    data = np.asarray(t.data)
    if t.dtype != "float32" or data.size != depth:
        raise node_error(node, f"{what} '{name}' must be {depth} float32 values (one per "
                               f"channel of the last axis), got {data.size} {t.dtype}")
    return data.astype(np.float32).astype(np.float64).reshape(-1)


def layer_norm_constants(node: Node, depth: int, in_scale: float, out_scale: float,
                         gamma: np.ndarray, beta: np.ndarray, eps: float) -> dict:
    """The integer fields of edgec_layer_norm_params (see the module docstring)."""
    if not eps >= 0 or not math.isfinite(eps):
        raise node_error(node, f"epsilon {eps} must be finite and >= 0")
    eps_units = depth * depth * float(np.float32(eps)) / (in_scale * in_scale)
    for p in VARIANCE_SHIFTS:
        epsilon = tflite_round(eps_units * 4.0 ** p)
        if epsilon <= INT32_MAX:
            break
    else:
        raise node_error(node, f"epsilon {eps:g} is too large for the input scale {in_scale:g}")
    largest = float(max(np.abs(gamma).max(initial=0.0), np.abs(beta).max(initial=0.0))) / out_scale
    if not math.isfinite(largest) or largest >= INT32_MAX:
        raise node_error(node, f"gamma / beta up to {largest * out_scale:g} are too large for "
                               f"the output scale {out_scale:g}")
    g = MAX_OUTPUT_SHIFT
    while g > 0 and largest * 2.0 ** g >= INT32_MAX:
        g -= 1

    def fixed(v: np.ndarray) -> ConstArray:
        return ConstArray("int32_t", np.array([tflite_round(float(c) / out_scale * 2.0 ** g)
                                               for c in v], np.int32))

    return {"variance_shift": p, "epsilon": epsilon, "output_shift": g,
            "gamma": fixed(gamma), "beta": fixed(beta)}


def lower_layer_norm(graph: Graph, node: Node) -> KernelCall:
    x, xq = activation(graph, node, input_name(node, 0))
    y, yq = activation(graph, node, node.outputs[0])
    if tuple(x.shape) != tuple(y.shape) or len(x.shape) < 1:
        raise node_error(node, f"input {list(x.shape)} and output {list(y.shape)} must have "
                               "one shape")
    depth = int(x.shape[-1])
    if not 1 <= depth <= MAX_DEPTH:
        raise node_error(node, f"the normalized axis has {depth} values; 1..{MAX_DEPTH} are "
                               "supported")
    gamma = _float_vector(graph, node, input_name(node, 1), "gamma", depth)
    beta = _float_vector(graph, node, input_name(node, 2), "beta", depth)
    eps = node.attrs.get("epsilon")
    consts = layer_norm_constants(node, depth, xq.scale, yq.scale, gamma, beta,
                                  1e-5 if eps is None else float(eps))
    fields = {
        "rows": int(np.prod(x.shape, dtype=np.int64)) // depth,
        "depth": depth,
        "variance_shift": consts["variance_shift"],
        "epsilon": consts["epsilon"],
        "output_shift": consts["output_shift"],
        "output_offset": yq.zero_point,
        "gamma": consts["gamma"],
        "beta": consts["beta"],
    }
    return KernelCall(node.name, node.op, "edgec_layer_norm_s8", "edgec_layer_norm_params",
                      fields, inputs=[x.name], outputs=[y.name], inplace={0: 0})


LOWERINGS = {"layer_norm": lower_layer_norm}
