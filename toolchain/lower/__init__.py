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
from . import conv, elementwise, fully_connected, pooling, softmax
from .program import ConstArray, KernelCall, Program

LowerFn = Callable[[Graph, Node], KernelCall]

LOWERINGS: dict[str, LowerFn] = {
    **conv.LOWERINGS,
    **fully_connected.LOWERINGS,
    **elementwise.LOWERINGS,
    **pooling.LOWERINGS,
    **softmax.LOWERINGS,
}


def lower_node(graph: Graph, node: Node) -> KernelCall:
    if node.op == "reshape":
        raise EdgecError(f"node '{node.name}' (reshape) reached the lowering: reshapes are "
                         "views and must be removed by the passes before lowering (this is "
                         "a bug in the edgec pipeline)")
    fn = LOWERINGS.get(node.op)
    if fn is None:
        raise UnsupportedOpError(f"node '{node.name}': op '{node.op}' is not supported by the "
                                 f"int8 lowering (supported: {supported_list()})")
    return fn(graph, node)


def lower(graph: Graph) -> Program:
    """Lower every node of a quantized NHWC graph, in graph order."""
    return Program(graph=graph, calls=[lower_node(graph, node) for node in graph.nodes])


__all__ = ["LOWERINGS", "ConstArray", "KernelCall", "Program", "lower", "lower_node"]
