"""fully_connected -> edgec_fully_connected_s8."""
from __future__ import annotations

import numpy as np

from ..ir import Graph, Node
from ..quant_math import quantize_multiplier
from .common import (
    activation,
    bias,
    check_accumulator,
    input_name,
    node_error,
    requant_fields,
    weights,
)
from .program import ConstArray, KernelCall


def lower_fully_connected(graph: Graph, node: Node) -> KernelCall:
    x, xq = activation(graph, node, input_name(node, 0))
    y, yq = activation(graph, node, node.outputs[0])
    w_name = input_name(node, 1)
    w_shape = graph.tensors[w_name].shape if w_name in graph.tensors else ()
    if len(w_shape) != 2:
        raise node_error(node, f"weights must be [C_OUT, C_IN], got shape {w_shape}")
    c_out, c_in = int(w_shape[0]), int(w_shape[1])
    w_data, w_scales, per_channel = weights(graph, node, w_name, c_out, axis=0)
    x_size = int(np.prod(x.shape, dtype=np.int64))
    if x_size % c_in:
        raise node_error(node, f"input of {x_size} values is not a multiple of C_IN={c_in}")
    rows = x_size // c_in
    if int(np.prod(y.shape, dtype=np.int64)) != rows * c_out:
        raise node_error(node, f"output shape {y.shape} is not [{rows}, {c_out}]")
    b = bias(graph, node, input_name(node, 2), c_out)
    check_accumulator(node, w_data.reshape(c_out, c_in), b)
    if per_channel:
        mult = shift = None  # requant_fields: per_channel_multipliers
    else:
        # GetQuantizedConvolutionMultipler: the scale product is a float32 product.
        product = float(xq.scale) * float(w_scales[0])
        m, s = quantize_multiplier(product / yq.scale)
        mult = ConstArray("int32_t", np.full(c_out, m, np.int32))
        shift = ConstArray("int32_t", np.full(c_out, s, np.int32))
    fields = {"rows": rows, "in_depth": c_in, "out_depth": c_out,
              **requant_fields(node, xq, yq, w_data, w_scales, b, mult, shift)}
    return KernelCall(node.name, node.op, "edgec_fully_connected_s8",
                      "edgec_fully_connected_params", fields, inputs=[x.name],
                      outputs=[y.name], macs=rows * c_in * c_out)


LOWERINGS = {"fully_connected": lower_fully_connected}
