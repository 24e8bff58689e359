"""softmax (last axis) -> edgec_softmax_s8, or edgec_softmax_s8_s16 for int16 probabilities
(TFLite's Softmax<int8, int16>: output scale 1/65536, zero point -32768)."""
from __future__ import annotations

import numpy as np

from ..ir import Graph, Node
from ..quant_math import softmax_input_scaling
from .common import activation, input_name, node_error
from .program import KernelCall

OUTPUT_SCALE = 1.0 / 256
OUTPUT_ZERO_POINT = -128
OUTPUT_S16 = (1.0 / 65536, -32768)


def lower_softmax(graph: Graph, node: Node) -> KernelCall:
    x, xq = activation(graph, node, input_name(node, 0))
    s16 = graph.tensors[node.outputs[0]].dtype == "int16"
    y, yq = activation(graph, node, node.outputs[0], "int16" if s16 else "int8")
    if tuple(x.shape) != tuple(y.shape) or len(x.shape) < 1:
        raise node_error(node, f"input {x.shape} and output {y.shape} must have one shape")
    # SoftmaxPrepare: the output's fixed params, the scale within 0.1 %.
    scale, zero_point = OUTPUT_S16 if s16 else (OUTPUT_SCALE, OUTPUT_ZERO_POINT)
    if yq.zero_point != zero_point or abs(yq.scale - scale) > 0.001 * scale:
        raise node_error(node, f"{y.dtype} softmax output must have scale 1/{round(1 / scale)} "
                               f"and zero point {zero_point}, got {yq.scale:g} and "
                               f"{yq.zero_point}")
    beta_attr = node.attrs.get("beta")
    beta = 1.0 if beta_attr is None else float(beta_attr)
    try:
        mult, left_shift, diff_min = softmax_input_scaling(beta, xq.scale)
    except ValueError as e:
        raise node_error(node, str(e)) from None
    depth = int(x.shape[-1])
    fields = {
        "rows": int(np.prod(x.shape, dtype=np.int64)) // depth,
        "depth": depth,
        "input_multiplier": mult,
        "input_left_shift": left_shift,
        "diff_min": diff_min,
    }
    kernel = "edgec_softmax_s8_s16" if s16 else "edgec_softmax_s8"
    return KernelCall(node.name, node.op, kernel, "edgec_softmax_params", fields,
                      inputs=[x.name], outputs=[y.name])


LOWERINGS = {"softmax": lower_softmax}
