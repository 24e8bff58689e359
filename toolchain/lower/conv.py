"""conv2d and depthwise_conv2d -> edgec_conv2d_s8 / edgec_depthwise_conv2d_s8."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..ir import Graph, Node, Tensor
from .common import (
    ActQuant,
    activation,
    bias,
    check_accumulator,
    check_spatial,
    dims4,
    input_name,
    node_error,
    pads4,
    pair,
    requant_fields,
    weights,
)
from .program import KernelCall


@dataclass
class _Window:
    """What conv2d and depthwise share: activations, shapes, the window and the bias."""
    x: Tensor
    y: Tensor
    xq: ActQuant
    yq: ActQuant
    in_dims: tuple[int, int, int, int]
    out_dims: tuple[int, int, int, int]
    strides: tuple[int, int]
    dilations: tuple[int, int]
    pads: tuple[int, int, int, int]
    bias: np.ndarray | None

    def fields(self) -> dict:
        return {"input": self.in_dims, "output": self.out_dims, "stride": self.strides,
                "dilation": self.dilations, "padding": (self.pads[0], self.pads[1])}


def _window(graph: Graph, node: Node, kernel_of) -> tuple[_Window, np.ndarray, np.ndarray]:
    """The shared setup; kernel_of(w_data, in_dims, out_dims) checks the weights' layout and
    returns (w_data, w_scales, (KH, KW))."""
    x, xq = activation(graph, node, input_name(node, 0))
    y, yq = activation(graph, node, node.outputs[0])
    in_dims, out_dims = dims4(node, x), dims4(node, y)
    w_data, w_scales, kernel = kernel_of(in_dims, out_dims)
    strides = pair(node, "strides", (1, 1))
    dilations = pair(node, "dilations", (1, 1))
    pads = pads4(node)
    if out_dims[0] != in_dims[0]:
        raise node_error(node, f"batch {in_dims[0]} in, {out_dims[0]} out")
    check_spatial(node, in_dims[1:3], out_dims[1:3], kernel, strides, dilations, pads)
    b = bias(graph, node, input_name(node, 2), out_dims[3])
    return (_Window(x, y, xq, yq, in_dims, out_dims, strides, dilations, pads, b),
            w_data, w_scales)


def lower_conv2d(graph: Graph, node: Node) -> KernelCall:
    def kernel_of(in_dims, out_dims):
        c_in, c_out = in_dims[3], out_dims[3]
        w_data, w_scales, _ = weights(graph, node, input_name(node, 1), c_out, axis=0)
        if w_data.ndim != 4 or w_data.shape[0] != c_out or w_data.shape[3] != c_in:
            raise node_error(node, f"weights shape {w_data.shape} does not match [C_OUT="
                                   f"{c_out}, KH, KW, C_IN={c_in}]")
        return w_data, w_scales, (int(w_data.shape[1]), int(w_data.shape[2]))

    win, w_data, w_scales = _window(graph, node, kernel_of)
    c_in, (on, oh, ow, c_out) = win.in_dims[3], win.out_dims
    kh, kw = int(w_data.shape[1]), int(w_data.shape[2])
    check_accumulator(node, w_data.reshape(c_out, -1), win.bias)
    fields = {**win.fields(), "filter": (c_out, kh, kw, c_in),
              **requant_fields(node, win.xq, win.yq, w_data, w_scales, win.bias)}
    fields = {k: fields[k] for k in _CONV_ORDER}
    return KernelCall(node.name, node.op, "edgec_conv2d_s8", "edgec_conv2d_params", fields,
                      inputs=[win.x.name], outputs=[win.y.name],
                      macs=on * oh * ow * c_out * kh * kw * c_in)


def lower_depthwise_conv2d(graph: Graph, node: Node) -> KernelCall:
    mult_attr = node.attrs.get("depth_multiplier")

    def kernel_of(in_dims, out_dims):
        c_in, c_out = in_dims[3], out_dims[3]
        dm = int(mult_attr) if mult_attr is not None else c_out // max(c_in, 1)
        if dm < 1 or c_out != c_in * dm:
            raise node_error(node, f"C_OUT={c_out} must be C_IN={c_in} * depth_multiplier="
                                   f"{dm}")
        w_data, w_scales, _ = weights(graph, node, input_name(node, 1), c_out, axis=3)
        if w_data.ndim != 4 or w_data.shape[0] != 1 or w_data.shape[3] != c_out:
            raise node_error(node, f"weights shape {w_data.shape} does not match [1, KH, KW, "
                                   f"C_OUT={c_out}]")
        return w_data, w_scales, (int(w_data.shape[1]), int(w_data.shape[2]))

    win, w_data, w_scales = _window(graph, node, kernel_of)
    c_in, (on, oh, ow, c_out) = win.in_dims[3], win.out_dims
    kh, kw = int(w_data.shape[1]), int(w_data.shape[2])
    check_accumulator(node, w_data.reshape(-1, c_out).T, win.bias)
    fields = {**win.fields(), "filter": (1, kh, kw, c_out), "depth_multiplier": c_out // c_in,
              **requant_fields(node, win.xq, win.yq, w_data, w_scales, win.bias)}
    fields = {k: fields[k] for k in _DW_ORDER}
    return KernelCall(node.name, node.op, "edgec_depthwise_conv2d_s8",
                      "edgec_depthwise_conv2d_params", fields, inputs=[win.x.name],
                      outputs=[win.y.name], macs=on * oh * ow * c_out * kh * kw)


# the C structs' field order (edgec_kernels.h): the emitted initializers follow it
_CONV_ORDER = ("input", "filter", "output", "stride", "dilation", "padding", "input_offset",
               "output_offset", "act_min", "act_max", "weights", "bias", "output_multiplier",
               "output_shift")
_DW_ORDER = _CONV_ORDER[:6] + ("depth_multiplier",) + _CONV_ORDER[6:]

LOWERINGS = {
    "conv2d": lower_conv2d,
    "depthwise_conv2d": lower_depthwise_conv2d,
}
