"""max_pool2d / avg_pool2d -> edgec_{max,avg}_pool2d_s8; mean over H, W -> edgec_mean_s8."""
from __future__ import annotations

from ..ir import Graph, Node
from ..quant_math import activation_range, quantize_multiplier
from .common import (activation, check_spatial, dims4, input_name, node_error, pads4, pair,
                     same_quant)
from .program import KernelCall


def _empty_window(size: int, out: int, kernel: int, stride: int, pad: int) -> bool:
    """True if some output's window lies entirely in the padding."""
    for o in range(out):
        origin = o * stride - pad
        if min(kernel, size - origin) <= max(0, -origin):
            return True
    return False


def _lower_pool(graph: Graph, node: Node, kernel_name: str) -> KernelCall:
    x, xq = activation(graph, node, input_name(node, 0))
    y, yq = activation(graph, node, node.outputs[0])
    if not same_quant(xq, yq):
        raise node_error(node, f"input quant (scale {xq.scale:g}, zero point {xq.zero_point}) "
                               f"and output quant (scale {yq.scale:g}, zero point "
                               f"{yq.zero_point}) must be equal for int8 pooling")
    n, h, w, c = dims4(node, x)
    on, oh, ow, oc = dims4(node, y)
    if (on, oc) != (n, c):
        raise node_error(node, f"pooling keeps N and C: {x.shape} -> {y.shape}")
    kernel = pair(node, "kernel", (0, 0))
    strides = pair(node, "strides", kernel)
    pads = pads4(node)
    check_spatial(node, (h, w), (oh, ow), kernel, strides, (1, 1), pads)
    if kernel_name == "edgec_avg_pool2d_s8" and (
            _empty_window(h, oh, kernel[0], strides[0], pads[0])
            or _empty_window(w, ow, kernel[1], strides[1], pads[1])):
        raise node_error(node, "a pooling window lies entirely in the padding")
    act_min, act_max = activation_range(node.attrs.get("act_min"), node.attrs.get("act_max"),
                                        yq.scale, yq.zero_point)
    fields = {
        "input": (n, h, w, c),
        "output": (on, oh, ow, oc),
        "filter": kernel,
        "stride": strides,
        "padding": (pads[0], pads[1]),
        "act_min": act_min,
        "act_max": act_max,
    }
    params_type = kernel_name.replace("_s8", "_params")
    return KernelCall(node.name, node.op, kernel_name, params_type, fields,
                      inputs=[x.name], outputs=[y.name])


def lower_max_pool2d(graph: Graph, node: Node) -> KernelCall:
    return _lower_pool(graph, node, "edgec_max_pool2d_s8")


def lower_avg_pool2d(graph: Graph, node: Node) -> KernelCall:
    return _lower_pool(graph, node, "edgec_avg_pool2d_s8")


def mean_multiplier(input_scale: float, output_scale: float, count: int) -> tuple[int, int]:
    """TFLite's int8 MEAN constants: QuantizeMultiplier(s_in / s_out) in double
    (PrepareMeanOrSum), then QuantizedMeanOrSum folds 1 / count into it:
    shift = min(floor(log2 count), 32, 31 + s), m' = (m << shift) // count, s' = s - shift."""
    m, s = quantize_multiplier(input_scale / output_scale)
    shift = min(count.bit_length() - 1, 32, 31 + s)
    return int((m << shift) // count), s - shift


def lower_mean(graph: Graph, node: Node) -> KernelCall:
    """Mean over H and W (axes 1, 2 of NHWC), keepdims or not, with TFLite's int8 MEAN
    arithmetic (which rounds differently from an average pool over the whole image)."""
    x, xq = activation(graph, node, input_name(node, 0))
    y, yq = activation(graph, node, node.outputs[0])
    axes = tuple(sorted(int(a) % 4 for a in node.attrs.get("axes", ())))
    if len(x.shape) != 4 or axes != (1, 2):
        raise node_error(node, f"only a mean over axes (1, 2) of a 4-D NHWC tensor is "
                               f"supported, got axes {node.attrs.get('axes')} on {x.shape}")
    n, h, w, c = dims4(node, x)
    if tuple(y.shape) not in ((n, 1, 1, c), (n, c)):
        raise node_error(node, f"output shape {y.shape} is not [N, 1, 1, C] or [N, C]")
    if h * w >= (1 << 23):
        raise node_error(node, f"mean over {h * w} pixels would overflow the int32 sum")
    mult, shift = mean_multiplier(xq.scale, yq.scale, h * w)
    if shift > 30:
        raise node_error(node, f"scale ratio {xq.scale / yq.scale:g} is too large")
    fields = {
        "input": (n, h, w, c),
        "input_offset": -xq.zero_point,
        "output_offset": yq.zero_point,
        "multiplier": mult,
        "shift": shift,
        "act_min": -128,
        "act_max": 127,
    }
    return KernelCall(node.name, node.op, "edgec_mean_s8", "edgec_mean_params", fields,
                      inputs=[x.name], outputs=[y.name])


LOWERINGS = {
    "max_pool2d": lower_max_pool2d,
    "avg_pool2d": lower_avg_pool2d,
    "mean": lower_mean,
}
