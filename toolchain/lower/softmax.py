"""softmax (last axis) -> edgec_softmax_s8."""
from __future__ import annotations

import numpy as np

from ..ir import Graph, Node
from ..quant_math import softmax_input_scaling
from .common import activation, input_name, node_error
from .program import KernelCall

OUTPUT_SCALE = 1.0 / 256
OUTPUT_ZERO_POINT = -128


def lower_softmax(graph: Graph, node: Node) -> KernelCall:
    x, xq = activation(graph, node, input_name(node, 0))
    y, yq = activation(graph, node, node.outputs[0])
    if tuple(x.shape) != tuple(y.shape) or len(x.shape) < 1:
        raise node_error(node, f"input {x.shape} and output {y.shape} must have one shape")
    # SoftmaxPrepare: zero point -128 and scale 1/256 within 0.1 %.
    if yq.zero_point != OUTPUT_ZERO_POINT or abs(yq.scale - OUTPUT_SCALE) > 0.001 * OUTPUT_SCALE:
        raise node_error(node, f"int8 softmax output must have scale 1/256 and zero point "
                               f"-128, got {yq.scale:g} and {yq.zero_point}")
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
    return KernelCall(node.name, node.op, "edgec_softmax_s8", "edgec_softmax_params", fields,
                      inputs=[x.name], outputs=[y.name])


LOWERINGS = {"softmax": lower_softmax}
