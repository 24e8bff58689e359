"""Lowering: a quantized NHWC graph -> a Program of runtime_c kernel calls.

One module per op family, each exporting a LOWERINGS dict (IR op -> function
(graph, node) -> KernelCall); `lower` dispatches through their union. All constants
(requantization multipliers and shifts, clamps, offsets, softmax scaling) are computed here,
on the host, with TFLite's formulas (see toolchain/quant_math.py).
"""
from __future__ import annotations

from typing import Callable

from ..errors import EdgecError, UnsupportedOpError
from ..ir import Graph, Node
from ..ops import supported_list
from ..quant_math import ScaleError
from . import activations, conv, data_movement, elementwise, fully_connected, pooling, softmax
from . import batch_matmul, constant, gelu, layer_norm, s16
from .program import ConstArray, KernelCall, Program

LowerFn = Callable[[Graph, Node], KernelCall]

LOWERINGS: dict[str, LowerFn] = {
    **conv.LOWERINGS,
    **fully_connected.LOWERINGS,
    **elementwise.LOWERINGS,
    **pooling.LOWERINGS,
    **softmax.LOWERINGS,
    **data_movement.LOWERINGS,
    **activations.LOWERINGS,
    # transformer ops; constant.py takes over add / mul to route a constant operand
    **batch_matmul.LOWERINGS,
    **gelu.LOWERINGS,
    **layer_norm.LOWERINGS,
    **constant.LOWERINGS,
}


def lower_node(graph: Graph, node: Node) -> KernelCall:
    if node.op == "reshape":
        return _view(graph, node)
    fn = s16.LOWERINGS[node.op] if s16.handles(graph, node) else LOWERINGS.get(node.op)
    if fn is None:
        raise UnsupportedOpError(f"node '{node.name}': op '{node.op}' is not supported by the "
                                 f"int8 lowering (supported: {supported_list()})")
    try:
        return fn(graph, node)
    except ScaleError as e:  # scales whose ratios int8 arithmetic cannot represent
        raise EdgecError(f"node '{node.name}' ({node.op}): its quantization scales are out "
                         f"of range: {e}") from None


def _view(graph: Graph, node: Node) -> KernelCall:
    """A reshape moves no bytes in NHWC int8: the output is a view of the input."""
    x, y = graph.tensors[node.inputs[0]], graph.tensors[node.outputs[0]]
    same_quant = (x.quant is None) == (y.quant is None) and (x.quant is None or (
        float(x.quant.scale) == float(y.quant.scale)
        and int(x.quant.zero_point) == int(y.quant.zero_point)))
    if x.dtype != y.dtype or x.nbytes != y.nbytes or not same_quant:
        raise EdgecError(f"node '{node.name}' (reshape): input and output differ in dtype, "
                         f"size or quantization, so it is not a view")
    return KernelCall(name=node.name, op="reshape", kernel="", params_type="", fields={},
                      inputs=[node.inputs[0]], outputs=[node.outputs[0]], view=True)


def lower(graph: Graph) -> Program:
    """Lower every node of a quantized NHWC graph, in graph order."""
    return Program(graph=graph, calls=[lower_node(graph, node) for node in graph.nodes])


__all__ = ["LOWERINGS", "ConstArray", "KernelCall", "Program", "lower", "lower_node"]
