"""Constants among the activations: add / mul with a constant operand -> edgec_add_const_s8 /
edgec_mul_const_s8, and `constant` (a constant made an arena tensor) -> edgec_constant_s8.

A constant operand of ADD / MUL is what TFLite has for x + positional_embedding or
x * (1 / sqrt(d)): an int8 tensor with its own per-tensor scale and zero point (the
quantizer gives it params covering its values, as TFLite's converter does). Its arithmetic
is exactly the two-activation kernel's: the constant is passed as input 2 (both ops are
symmetric in their inputs, so a constant first operand is swapped to second), the tensor
read from flash instead of the arena. Two activations go to toolchain/lower/elementwise.py.
"""
from __future__ import annotations

import dataclasses

import numpy as np

from ..ir import Graph, Node, Tensor
from .common import activation, input_name, node_error
from .elementwise import lower_add, lower_mul
from .program import ConstArray, KernelCall


def _constant_operand(graph: Graph, node: Node, name: str) -> np.ndarray:
    t = graph.tensors[name]
    q = t.quant
    if t.dtype != "int8" or q is None or q.is_per_channel or np.asarray(q.scale).size != 1:
        raise node_error(node, f"constant operand '{name}' must be int8 with per-tensor "
                               f"quantization (quantize the model first), got {t.dtype}")
    return np.ascontiguousarray(t.data, np.int8).reshape(-1)


def _lower_binary(graph: Graph, node: Node, two_activations) -> KernelCall:
    names = [input_name(node, 0), input_name(node, 1)]
    const = [graph.tensors[n].is_const for n in names]
    if not any(const):
        return two_activations(graph, node)
    if all(const):
        raise node_error(node, "both operands are constants; fold them before compiling")
    k = const.index(True)
    data = _constant_operand(graph, node, names[k])
    # The two-activation lowering on a view of the graph where the constant looks like an
    # activation: same shapes and params, so the same multipliers and broadcast strides.
    tensors = dict(graph.tensors)
    tensors[names[k]] = dataclasses.replace(graph.tensors[names[k]], data=None)
    view = dataclasses.replace(graph, tensors=tensors)
    act = names[1 - k]
    call = two_activations(view, dataclasses.replace(node, inputs=[act, names[k]]))
    fields = dict(call.fields)
    fields["constant"] = ConstArray("int8_t", data)
    size = int(np.prod(graph.tensors[node.outputs[0]].shape, dtype=np.int64))
    inplace = {0: 0} if int(np.prod(graph.tensors[act].shape, dtype=np.int64)) == size else {}
    return dataclasses.replace(call, kernel=f"edgec_{node.op}_const_s8",
                               params_type=f"edgec_{node.op}_const_params", fields=fields,
                               inputs=[act], inplace=inplace)


def lower_add_maybe_const(graph: Graph, node: Node) -> KernelCall:
    return _lower_binary(graph, node, lower_add)


def lower_mul_maybe_const(graph: Graph, node: Node) -> KernelCall:
    return _lower_binary(graph, node, lower_mul)


def lower_constant(graph: Graph, node: Node) -> KernelCall:
    name = input_name(node, 0)
    if name == "" or not graph.tensors[name].is_const:
        raise node_error(node, "needs a constant input")
    y, _ = activation(graph, node, node.outputs[0])
    src: Tensor = graph.tensors[name]
    data = np.asarray(src.data)
    if src.dtype != "int8" or data.size != int(np.prod(y.shape, dtype=np.int64)):
        raise node_error(node, f"constant '{name}' must be {int(np.prod(y.shape))} int8 values "
                               f"(quantized with the output's params), got {data.size} "
                               f"{src.dtype}")
    fields = {"size": int(data.size), "data": ConstArray("int8_t", data.reshape(-1))}
    return KernelCall(node.name, node.op, "edgec_constant_s8", "edgec_constant_params", fields,
                      inputs=[], outputs=[y.name])


LOWERINGS = {
    "add": lower_add_maybe_const,
    "mul": lower_mul_maybe_const,
    "constant": lower_constant,
}
