"""The one graph IR every stage reads and writes.

Semantics are canonical NHWC (TFLite's): activations are [N, H, W, C], conv weights
[C_OUT, KH, KW, C_IN], depthwise weights [1, KH, KW, C_OUT], fully-connected weights
[C_OUT, C_IN]. Frontends convert their source layout on import; the source layout of the
graph inputs/outputs is kept in `Graph.io_layout` so the user's I/O stays as they know it.

Passes are functions Graph -> Graph (see toolchain/passes); nothing here mutates a graph
behind a caller's back: use `dataclasses.replace` or `Graph.copy()`.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

import numpy as np


@dataclass
class QuantParams:
    """real = scale * (q - zero_point); per-channel when `axis` is not None."""

    scale: np.ndarray  # float64, shape () per-tensor or (C,) per-channel
    zero_point: np.ndarray  # int64, same shape as scale
    axis: int | None = None

    @staticmethod
    def per_tensor(scale: float, zero_point: int) -> "QuantParams":
        return QuantParams(np.asarray(scale, np.float64), np.asarray(zero_point, np.int64))

    @property
    def is_per_channel(self) -> bool:
        return self.axis is not None


@dataclass
class Tensor:
    name: str
    shape: tuple[int, ...]
    dtype: str  # "float32" | "int8" | "int32" | "int16" | "uint8"
    data: np.ndarray | None = None  # constants only (weights, bias); activations have None
    quant: QuantParams | None = None

    @property
    def is_const(self) -> bool:
        return self.data is not None

    @property
    def nbytes(self) -> int:
        return int(np.prod(self.shape, dtype=np.int64)) * np.dtype(self.dtype).itemsize


@dataclass
class Node:
    """One operation. `op` is a lower-case name from toolchain/ops.py (OPS)."""

    name: str
    op: str
    inputs: list[str]  # tensor names; "" marks an absent optional input
    outputs: list[str]
    attrs: dict[str, Any] = field(default_factory=dict)


@dataclass
class Graph:
    tensors: dict[str, Tensor]
    nodes: list[Node]  # in a valid execution (topological) order
    inputs: list[str]
    outputs: list[str]
    # Source layout of each graph input/output ("NCHW", "NHWC" or "" for rank != 4):
    # the user-facing API converts, the compiled model is NHWC inside.
    io_layout: dict[str, str] = field(default_factory=dict)
    meta: dict[str, Any] = field(default_factory=dict)  # source file, producer, warnings...

    def copy(self) -> "Graph":
        return Graph(
            tensors={k: dataclasses.replace(v) for k, v in self.tensors.items()},
            nodes=[dataclasses.replace(n, inputs=list(n.inputs), outputs=list(n.outputs),
                                       attrs=dict(n.attrs)) for n in self.nodes],
            inputs=list(self.inputs),
            outputs=list(self.outputs),
            io_layout=dict(self.io_layout),
            meta=dict(self.meta),
        )

    def producer(self, tensor: str) -> Node | None:
        for n in self.nodes:
            if tensor in n.outputs:
                return n
        return None

    def consumers(self, tensor: str) -> list[Node]:
        return [n for n in self.nodes if tensor in n.inputs]

    def unique_name(self, base: str) -> str:
        name, i = base, 0
        while name in self.tensors:
            i += 1
            name = f"{base}_{i}"
        return name


class GraphError(ValueError):
    """A graph that breaks an IR invariant; the message names the node and the problem."""


def verify(graph: Graph) -> None:
    """Check the invariants every stage relies on; run after each pass in tests."""
    defined = set(graph.inputs) | {n for n, t in graph.tensors.items() if t.is_const}
    for name in graph.inputs:
        if name not in graph.tensors:
            raise GraphError(f"graph input '{name}' has no tensor")
    for node in graph.nodes:
        for t in node.inputs:
            if t == "":
                continue
            if t not in graph.tensors:
                raise GraphError(f"node '{node.name}' ({node.op}) reads unknown tensor '{t}'")
            if t not in defined:
                raise GraphError(
                    f"node '{node.name}' ({node.op}) reads '{t}' before it is produced")
        for t in node.outputs:
            if t not in graph.tensors:
                raise GraphError(f"node '{node.name}' ({node.op}) writes unknown tensor '{t}'")
            if t in defined:
                raise GraphError(f"tensor '{t}' is written twice (node '{node.name}')")
            defined.add(t)
    for name in graph.outputs:
        if name not in defined:
            raise GraphError(f"graph output '{name}' is never produced")
