"""conv2d and depthwise_conv2d -> edgec_conv2d_s8 / edgec_depthwise_conv2d_s8."""
from __future__ import annotations

import numpy as np

from ..ir import Graph, Node
from ..quant_math import activation_range
from .common import (activation, bias, check_accumulator, check_spatial, dims4, input_name,
                     node_error, pads4, pair, per_channel_multipliers, weights)
from .program import ConstArray, KernelCall


def lower_conv2d(graph: Graph, node: Node) -> KernelCall:
    x, xq = activation(graph, node, input_name(node, 0))
    y, yq = activation(graph, node, node.outputs[0])
    n, h, w, c_in = dims4(node, x)
    on, oh, ow, c_out = dims4(node, y)
    w_data, w_scales, _ = weights(graph, node, input_name(node, 1), c_out, axis=0)
    if w_data.ndim != 4 or w_data.shape[0] != c_out or w_data.shape[3] != c_in:
        raise node_error(node, f"weights shape {w_data.shape} does not match [C_OUT={c_out}, "
                               f"KH, KW, C_IN={c_in}]")
    kh, kw = int(w_data.shape[1]), int(w_data.shape[2])
    strides = pair(node, "strides", (1, 1))
    dilations = pair(node, "dilations", (1, 1))
    pads = pads4(node)
    if on != n:
        raise node_error(node, f"batch {n} in, {on} out")
    check_spatial(node, (h, w), (oh, ow), (kh, kw), strides, dilations, pads)
    b = bias(graph, node, input_name(node, 2), c_out)
    check_accumulator(node, w_data.reshape(c_out, -1), b)
    mult, shift = per_channel_multipliers(node, xq.scale, w_scales, yq.scale)
    act_min, act_max = activation_range(node.attrs.get("act_min"), node.attrs.get("act_max"),
                                        yq.scale, yq.zero_point)
    fields = {
        "input": (n, h, w, c_in),
        "filter": (c_out, kh, kw, c_in),
        "output": (on, oh, ow, c_out),
        "stride": strides,
        "dilation": dilations,
        "padding": (pads[0], pads[1]),
        "input_offset": -xq.zero_point,
        "output_offset": yq.zero_point,
        "act_min": act_min,
        "act_max": act_max,
        "weights": ConstArray("int8_t", np.ascontiguousarray(w_data, np.int8).reshape(-1)),
        "bias": None if b is None else ConstArray("int32_t", b.astype(np.int32)),
        "output_multiplier": mult,
        "output_shift": shift,
    }
    return KernelCall(node.name, node.op, "edgec_conv2d_s8", "edgec_conv2d_params", fields,
                      inputs=[x.name], outputs=[y.name],
                      macs=on * oh * ow * c_out * kh * kw * c_in)


def lower_depthwise_conv2d(graph: Graph, node: Node) -> KernelCall:
    x, xq = activation(graph, node, input_name(node, 0))
    y, yq = activation(graph, node, node.outputs[0])
    n, h, w, c_in = dims4(node, x)
    on, oh, ow, c_out = dims4(node, y)
    mult_attr = node.attrs.get("depth_multiplier")
    depth_multiplier = int(mult_attr) if mult_attr is not None else c_out // max(c_in, 1)
    if depth_multiplier < 1 or c_out != c_in * depth_multiplier:
        raise node_error(node, f"C_OUT={c_out} must be C_IN={c_in} * depth_multiplier="
                               f"{depth_multiplier}")
    w_data, w_scales, _ = weights(graph, node, input_name(node, 1), c_out, axis=3)
    if w_data.ndim != 4 or w_data.shape[0] != 1 or w_data.shape[3] != c_out:
        raise node_error(node, f"weights shape {w_data.shape} does not match [1, KH, KW, "
                               f"C_OUT={c_out}]")
    kh, kw = int(w_data.shape[1]), int(w_data.shape[2])
    strides = pair(node, "strides", (1, 1))
    dilations = pair(node, "dilations", (1, 1))
    pads = pads4(node)
    if on != n:
        raise node_error(node, f"batch {n} in, {on} out")
    check_spatial(node, (h, w), (oh, ow), (kh, kw), strides, dilations, pads)
    b = bias(graph, node, input_name(node, 2), c_out)
    check_accumulator(node, w_data.reshape(-1, c_out).T, b)
    mult, shift = per_channel_multipliers(node, xq.scale, w_scales, yq.scale)
    act_min, act_max = activation_range(node.attrs.get("act_min"), node.attrs.get("act_max"),
                                        yq.scale, yq.zero_point)
    fields = {
        "input": (n, h, w, c_in),
        "filter": (1, kh, kw, c_out),
        "output": (on, oh, ow, c_out),
        "stride": strides,
        "dilation": dilations,
        "padding": (pads[0], pads[1]),
        "depth_multiplier": depth_multiplier,
        "input_offset": -xq.zero_point,
        "output_offset": yq.zero_point,
        "act_min": act_min,
        "act_max": act_max,
        "weights": ConstArray("int8_t", np.ascontiguousarray(w_data, np.int8).reshape(-1)),
        "bias": None if b is None else ConstArray("int32_t", b.astype(np.int32)),
        "output_multiplier": mult,
        "output_shift": shift,
    }
    return KernelCall(node.name, node.op, "edgec_depthwise_conv2d_s8",
                      "edgec_depthwise_conv2d_params", fields, inputs=[x.name],
                      outputs=[y.name], macs=on * oh * ow * c_out * kh * kw)


LOWERINGS = {
    "conv2d": lower_conv2d,
    "depthwise_conv2d": lower_depthwise_conv2d,
}
