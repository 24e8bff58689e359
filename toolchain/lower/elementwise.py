"""add -> edgec_add_s8, mul -> edgec_mul_s8 (both broadcasting); relu, clip and requantize
-> edgec_requantize_s8."""
from __future__ import annotations

import numpy as np

from ..ir import Graph, Node, Tensor
from ..quant_math import (activation_range, f32, quantize_multiplier,
                          quantize_multiplier_smaller_than_one)
from .common import activation, input_name, node_error
from .program import KernelCall

ADD_LEFT_SHIFT = 20  # kernels/add.cc, int8 path


def broadcast_fields(node: Node, a: Tensor, b: Tensor, y: Tensor) -> dict[str, tuple]:
    """The output walk and the input strides of a broadcasting binary op (edgec_kernels.h,
    Broadcasting): NumPy's rules, ranks right-aligned and padded to 4. Same element counts
    everywhere (same shapes, or views of them) need no broadcasting: one flat loop."""
    size = int(np.prod(y.shape, dtype=np.int64))
    flat = {"output": (1, 1, 1, size), "input1_stride": (0, 0, 0, 1),
            "input2_stride": (0, 0, 0, 1)}
    if int(np.prod(a.shape, dtype=np.int64)) == size == int(np.prod(b.shape, dtype=np.int64)):
        return flat
    if max(len(a.shape), len(b.shape), len(y.shape)) > 4:
        raise node_error(node, f"broadcasting {list(a.shape)} with {list(b.shape)}: only up "
                               "to 4-D tensors are supported")
    try:
        out = tuple(int(d) for d in np.broadcast_shapes(tuple(a.shape), tuple(b.shape)))
    except ValueError:
        raise node_error(node, f"shapes {list(a.shape)} and {list(b.shape)} do not "
                               "broadcast") from None
    if out != tuple(y.shape):
        raise node_error(node, f"inputs {list(a.shape)} and {list(b.shape)} broadcast to "
                               f"{list(out)}, but the output is {list(y.shape)}")
    out4 = (1,) * (4 - len(out)) + out

    def strides(shape) -> tuple[int, ...]:
        shape4 = (1,) * (4 - len(shape)) + tuple(int(d) for d in shape)
        result, step = [0] * 4, 1
        for axis in (3, 2, 1, 0):
            result[axis] = step if shape4[axis] == out4[axis] and out4[axis] > 1 else 0
            step *= shape4[axis]
        return tuple(result)

    return {"output": out4, "input1_stride": strides(a.shape), "input2_stride": strides(b.shape)}


def _inplace_binary(a: Tensor, b: Tensor, y: Tensor) -> dict[int, int]:
    """An input with as many elements as the output is read at the output's own index."""
    size = int(np.prod(y.shape, dtype=np.int64))
    for k, t in enumerate((a, b)):
        if int(np.prod(t.shape, dtype=np.int64)) == size:
            return {0: k}
    return {}


def lower_add(graph: Graph, node: Node) -> KernelCall:
    a, aq = activation(graph, node, input_name(node, 0))
    b, bq = activation(graph, node, input_name(node, 1))
    y, yq = activation(graph, node, node.outputs[0])
    shape = broadcast_fields(node, a, b, y)
    # add.cc Prepare: std::max of the two float scales, doubled, in double.
    twice_max_input_scale = 2.0 * max(aq.scale, bq.scale)
    real_1 = aq.scale / twice_max_input_scale
    real_2 = bq.scale / twice_max_input_scale
    real_out = twice_max_input_scale / (f32((1 << ADD_LEFT_SHIFT) * yq.scale))
    try:
        m1, s1 = quantize_multiplier_smaller_than_one(real_1)
        m2, s2 = quantize_multiplier_smaller_than_one(real_2)
        mo, so = quantize_multiplier_smaller_than_one(real_out)
    except ValueError as e:
        raise node_error(node, f"input/output scales {aq.scale:g}, {bq.scale:g} -> "
                               f"{yq.scale:g} are out of the int8 ADD range ({e})") from None
    act_min, act_max = activation_range(node.attrs.get("act_min"), node.attrs.get("act_max"),
                                        yq.scale, yq.zero_point)
    fields = {
        **shape,
        "left_shift": ADD_LEFT_SHIFT,
        "input1_offset": -aq.zero_point,
        "input1_multiplier": m1,
        "input1_shift": s1,
        "input2_offset": -bq.zero_point,
        "input2_multiplier": m2,
        "input2_shift": s2,
        "output_offset": yq.zero_point,
        "output_multiplier": mo,
        "output_shift": so,
        "act_min": act_min,
        "act_max": act_max,
    }
    return KernelCall(node.name, node.op, "edgec_add_s8", "edgec_add_params", fields,
                      inputs=[a.name, b.name], outputs=[y.name],
                      inplace=_inplace_binary(a, b, y))


def lower_mul(graph: Graph, node: Node) -> KernelCall:
    a, aq = activation(graph, node, input_name(node, 0))
    b, bq = activation(graph, node, input_name(node, 1))
    y, yq = activation(graph, node, node.outputs[0])
    shape = broadcast_fields(node, a, b, y)
    # mul.cc Prepare: `input1->params.scale * input2->params.scale / output->params.scale`
    # is a float32 expression, widened to double for QuantizeMultiplier.
    real = float(np.float32(aq.scale) * np.float32(bq.scale) / np.float32(yq.scale))
    mult, shift = quantize_multiplier(real)
    if shift > 15:  # 65025 * 2^shift must fit int32 in MultiplyByQuantizedMultiplier
        raise node_error(node, f"scale ratio s1 * s2 / s_out = {real:g} is too large for "
                               "int8 MUL (shift > 15)")
    act_min, act_max = activation_range(node.attrs.get("act_min"), node.attrs.get("act_max"),
                                        yq.scale, yq.zero_point)
    fields = {
        **shape,
        "input1_offset": -aq.zero_point,
        "input2_offset": -bq.zero_point,
        "output_offset": yq.zero_point,
        "output_multiplier": mult,
        "output_shift": shift,
        "act_min": act_min,
        "act_max": act_max,
    }
    return KernelCall(node.name, node.op, "edgec_mul_s8", "edgec_mul_params", fields,
                      inputs=[a.name, b.name], outputs=[y.name],
                      inplace=_inplace_binary(a, b, y))


def _requantize_call(graph: Graph, node: Node, real_multiplier_of, act_min_f, act_max_f
                     ) -> KernelCall:
    x, xq = activation(graph, node, input_name(node, 0))
    y, yq = activation(graph, node, node.outputs[0])
    if int(np.prod(x.shape, dtype=np.int64)) != int(np.prod(y.shape, dtype=np.int64)):
        raise node_error(node, f"input shape {x.shape} and output shape {y.shape} differ")
    mult, shift = quantize_multiplier(real_multiplier_of(xq.scale, yq.scale))
    if shift > 22:
        # 255 * 2^shift must fit in int32 for MultiplyByQuantizedMultiplier
        raise node_error(node, f"scale ratio {xq.scale / yq.scale:g} is too large")
    act_min, act_max = activation_range(act_min_f, act_max_f, yq.scale, yq.zero_point)
    fields = {
        "size": int(np.prod(y.shape, dtype=np.int64)),
        "input_offset": -xq.zero_point,
        "output_offset": yq.zero_point,
        "multiplier": mult,
        "shift": shift,
        "act_min": act_min,
        "act_max": act_max,
    }
    return KernelCall(node.name, node.op, "edgec_requantize_s8", "edgec_requantize_params",
                      fields, inputs=[x.name], outputs=[y.name])


def _relu_multiplier(s_in: float, s_out: float) -> float:
    # activations.cc ReluPrepare: `double real_multiplier = input->params.scale /
    # output->params.scale;` is a float32 division.
    return float(np.float32(s_in) / np.float32(s_out))


def lower_relu(graph: Graph, node: Node) -> KernelCall:
    return _requantize_call(graph, node, _relu_multiplier, 0.0, None)


def lower_clip(graph: Graph, node: Node) -> KernelCall:
    return _requantize_call(graph, node, _relu_multiplier, node.attrs.get("act_min"),
                            node.attrs.get("act_max"))


def lower_requantize(graph: Graph, node: Node) -> KernelCall:
    """int8 -> int8 QUANTIZE (quantize.cc: the ratio in double), no clamp beyond int8."""
    return _requantize_call(graph, node, lambda s_in, s_out: s_in / s_out, None, None)


LOWERINGS = {
    "add": lower_add,
    "mul": lower_mul,
    "relu": lower_relu,
    "clip": lower_clip,
    # Not an IR op of toolchain/ops.py yet; lowered if a pass inserts one.
    "requantize": lower_requantize,
}
