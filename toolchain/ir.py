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

from .errors import EdgecError


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


class GraphError(EdgecError, ValueError):
    """A graph that breaks an IR invariant; the message names the node and the problem.

    An EdgecError: a corrupt model file can describe such a graph, and the user then sees
    this one line."""


# No microcontroller has this much memory: a larger tensor comes from a corrupt file.
MAX_TENSOR_BYTES = 1 << 31
MAX_WINDOW = 1 << 16  # strides, dilations, kernel sizes and pads of conv/pool windows
_WINDOW_OPS = {"conv2d", "depthwise_conv2d", "max_pool2d", "avg_pool2d"}
# float32 scales: finite, positive and normal (the kernels' constants come from them)
_MIN_SCALE, _MAX_SCALE = float(np.finfo(np.float32).tiny), float(np.finfo(np.float32).max)
_INT_RANGE = {"int8": (-128, 127), "uint8": (0, 255), "int16": (-32768, 32767),
              "int32": (-(1 << 31), (1 << 31) - 1)}


def verify(graph: Graph) -> None:
    """Check the invariants every stage relies on: the frontends' output, after each pass,
    and before lowering. Structure (every tensor read is produced first, once), tensors
    (known dtype, positive static dims, a sane size, constants that fill their shape with
    finite values), quantization (finite positive scales, zero points inside the dtype,
    per-channel sizes that match their axis) and node attributes (arity, windows and clamps
    in range). Raises GraphError naming the tensor or node."""
    from .ops import OPS

    if not graph.inputs:
        raise GraphError("the graph has no input")
    if not graph.outputs:
        raise GraphError("the graph has no output")
    for name, t in graph.tensors.items():
        if not isinstance(name, str) or not isinstance(t, Tensor) or t.name != name:
            raise GraphError(f"tensor {name!r} is not a Tensor registered under its name")
        _verify_tensor(name, t)
    defined = set(graph.inputs) | {n for n, t in graph.tensors.items() if t.is_const}
    for name in graph.inputs:
        if name not in graph.tensors:
            raise GraphError(f"graph input '{name}' has no tensor")
        if graph.tensors[name].is_const:
            raise GraphError(f"graph input '{name}' is a constant")
    if len(set(graph.inputs)) != len(graph.inputs):
        raise GraphError(f"graph inputs {graph.inputs} name a tensor twice")
    for node in graph.nodes:
        where = f"node '{node.name}' ({node.op})"
        if not isinstance(node.name, str) or not isinstance(node.op, str) or not node.op:
            raise GraphError(f"node {node.name!r} has no op or a name that is not text")
        spec = OPS.get(node.op)  # others (lowering-only ops) are the lowering's to check
        if spec is not None:
            _verify_arity(node, spec, where)
        elif not isinstance(node.inputs, list) or not isinstance(node.outputs, list):
            raise GraphError(f"{where}: inputs and outputs must be lists of tensor names")
        _verify_attrs(node, where)
        for t in node.inputs:
            if t == "":
                continue
            if t not in graph.tensors:
                raise GraphError(f"{where} reads unknown tensor '{t}'")
            if t not in defined:
                raise GraphError(f"{where} reads '{t}' before it is produced")
        if node.op in _WEIGHTED_OPS:
            _verify_weights(graph, node, where)
        for t in node.outputs:
            if t not in graph.tensors:
                raise GraphError(f"{where} writes unknown tensor '{t}'")
            if t in defined:
                raise GraphError(f"tensor '{t}' is written twice (node '{node.name}')")
            defined.add(t)
    for name in graph.outputs:
        if name not in defined:
            raise GraphError(f"graph output '{name}' is never produced")
        if name in graph.inputs or graph.tensors[name].is_const:
            raise GraphError(f"graph output '{name}' is a graph input or a constant; nothing "
                             f"computes it")
    for name, layout in graph.io_layout.items():
        if layout == "NCHW" and name in graph.tensors and len(graph.tensors[name].shape) != 4:
            raise GraphError(f"graph input/output '{name}' is NCHW but has shape "
                             f"{list(graph.tensors[name].shape)}")


def _verify_tensor(name: str, t: Tensor) -> None:
    try:
        dtype = np.dtype(t.dtype)
    except TypeError:
        dtype = None
    if dtype is None or dtype.kind not in "biuf" or not isinstance(t.dtype, str):
        raise GraphError(f"tensor '{name}' has unknown dtype {t.dtype!r}")
    if not isinstance(t.shape, tuple) or not all(
            isinstance(d, (int, np.integer)) and not isinstance(d, bool) for d in t.shape):
        raise GraphError(f"tensor '{name}' has shape {t.shape!r}; expected a tuple of ints")
    if any(d <= 0 for d in t.shape):
        raise GraphError(f"tensor '{name}' has shape {list(t.shape)}; dimensions must be "
                         f"static and positive")
    size = 1
    for d in t.shape:
        size *= int(d)
    if size * dtype.itemsize > MAX_TENSOR_BYTES:
        raise GraphError(f"tensor '{name}' of shape {list(t.shape)} would take "
                         f"{size * dtype.itemsize:,} bytes; no target has that much memory")
    if t.data is not None:
        data = t.data
        if not isinstance(data, np.ndarray) or data.dtype.kind not in "biuf":
            raise GraphError(f"constant '{name}' holds {type(data).__name__} data, not numbers")
        if data.size != size:
            raise GraphError(f"constant '{name}' has {data.size} values for shape "
                             f"{list(t.shape)}")
        if data.dtype != dtype:
            raise GraphError(f"constant '{name}' holds {data.dtype} values but is declared "
                             f"{t.dtype}")
        if dtype.kind == "f" and not np.all(np.isfinite(data)):
            raise GraphError(f"constant '{name}' has NaN or infinite values")
    if t.quant is not None:
        _verify_quant(name, t, dtype)
        if t.data is None and (t.quant.axis is not None or np.ndim(t.quant.scale) != 0
                               or np.ndim(t.quant.zero_point) != 0):
            raise GraphError(f"activation '{name}' is not quantized per tensor (one scale and "
                             f"zero point, shape ())")


def _verify_quant(name: str, t: Tensor, dtype: np.dtype) -> None:
    q = t.quant
    try:
        scale = np.asarray(q.scale, np.float64).reshape(-1)
        zp = np.asarray(q.zero_point).reshape(-1)
    except (TypeError, ValueError):
        raise GraphError(f"tensor '{name}' has non-numeric quantization parameters") from None
    if scale.size == 0 or scale.size != zp.size:
        raise GraphError(f"tensor '{name}' has {scale.size} scales and {zp.size} zero points")
    if not np.all(np.isfinite(scale)) or np.any(scale < _MIN_SCALE) or \
            np.any(scale > _MAX_SCALE):
        bad = scale[~(np.isfinite(scale) & (scale >= _MIN_SCALE) & (scale <= _MAX_SCALE))]
        raise GraphError(f"tensor '{name}' has quantization scale {bad[0]:g}; scales must "
                         f"be finite, positive, normal float32 numbers")
    if zp.dtype.kind not in "iu" and not (zp.dtype.kind == "f" and np.all(np.isfinite(zp))
                                          and np.all(zp == np.round(zp))):
        raise GraphError(f"tensor '{name}' has non-integer zero points")
    lo, hi = _INT_RANGE.get(t.dtype, (-(1 << 31), (1 << 31) - 1))
    if np.any(zp < lo) or np.any(zp > hi):
        bad = zp[(zp < lo) | (zp > hi)]
        raise GraphError(f"tensor '{name}' ({t.dtype}) has zero point {int(bad[0])}, outside "
                         f"{lo}..{hi}")
    if q.axis is None:
        if scale.size != 1:
            raise GraphError(f"tensor '{name}' has {scale.size} scales but no channel axis")
        return
    rank = len(t.shape)
    if not isinstance(q.axis, (int, np.integer)) or not -rank <= int(q.axis) < rank:
        raise GraphError(f"tensor '{name}' of rank {rank} is quantized along axis {q.axis}")
    if t.shape[int(q.axis)] != scale.size:
        raise GraphError(f"tensor '{name}' of shape {list(t.shape)} has {scale.size} scales "
                         f"along axis {q.axis}")


def _verify_arity(node: Node, spec, where: str) -> None:
    if not isinstance(node.inputs, list) or not isinstance(node.outputs, list) or \
            not all(isinstance(t, str) for t in [*node.inputs, *node.outputs]):
        raise GraphError(f"{where}: inputs and outputs must be lists of tensor names")
    required = [n for n in spec.inputs if not n.endswith(("?", "*"))]
    variadic = any(n.endswith("*") for n in spec.inputs)
    n_in = len(node.inputs)
    if n_in < len(required) or (not variadic and n_in > len(spec.inputs)) or \
            any(node.inputs[k] == "" for k in range(min(len(required), n_in))):
        raise GraphError(f"{where} has inputs {node.inputs}; {node.op} takes "
                         f"({', '.join(spec.inputs)})")
    if len(node.outputs) != 1 or node.outputs[0] == "":
        raise GraphError(f"{where} has outputs {node.outputs}; every op has one output")


_WEIGHTED_OPS = ("conv2d", "depthwise_conv2d", "fully_connected")


def _verify_weights(graph: Graph, node: Node, where: str) -> None:
    """Weight and bias shapes against the input's channels: every executor (float
    calibration, golden, C) indexes with them, so a mismatch must stop here."""
    x, w = (graph.tensors[t].shape for t in node.inputs[:2])
    if node.op == "fully_connected":
        ok = len(w) == 2 and int(np.prod(x)) % w[1] == 0
        expect = "[C_OUT, C_IN] with C_IN dividing the input's size"
    elif node.op == "conv2d":
        ok = len(x) == 4 and len(w) == 4 and w[3] == x[3]
        expect = "[C_OUT, KH, KW, C_IN] with C_IN = input channels"
    else:
        mult = node.attrs.get("depth_multiplier", 1)
        ok = len(x) == 4 and len(w) == 4 and w[0] == 1 and w[3] == x[3] * mult
        expect = "[1, KH, KW, C_IN * depth_multiplier]"
    if not ok:
        raise GraphError(f"{where}: weights of shape {list(w)} do not fit input "
                         f"{list(x)}; expected {expect}")
    c_out = w[-1] if node.op == "depthwise_conv2d" else w[0]
    if len(node.inputs) > 2 and node.inputs[2]:
        b = graph.tensors[node.inputs[2]].shape
        if tuple(b) != (c_out,):
            raise GraphError(f"{where}: bias of shape {list(b)}; expected [{c_out}] "
                             f"(one per output channel)")


def _ints(value, n: int | None = None) -> tuple[int, ...] | None:
    """value as a tuple of ints (of length n), or None if it is not one."""
    if not isinstance(value, (tuple, list)) or (n is not None and len(value) != n):
        return None
    if not all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in value):
        return None
    return tuple(int(v) for v in value)


def _verify_attrs(node: Node, where: str) -> None:
    a = node.attrs
    if not isinstance(a, dict):
        raise GraphError(f"{where}: attributes must be a dict")

    def bad(key: str, want: str) -> GraphError:
        return GraphError(f"{where}: attribute {key}={a[key]!r} is invalid; expected {want}")

    if node.op in _WINDOW_OPS:
        for key, n, low in (("strides", 2, 1), ("dilations", 2, 1), ("kernel", 2, 1),
                            ("pads", 4, 0)):
            if key in a and a[key] is not None:
                v = _ints(a[key], n)
                if v is None or min(v) < low or max(v) > MAX_WINDOW:
                    raise bad(key, f"{n} integers in {low}..{MAX_WINDOW}")
    if node.op == "depthwise_conv2d" and a.get("depth_multiplier") is not None:
        v = a["depth_multiplier"]
        if not isinstance(v, (int, np.integer)) or isinstance(v, bool) or not 1 <= v <= \
                MAX_WINDOW:
            raise bad("depth_multiplier", "an integer >= 1")
    for key in ("act_min", "act_max", "alpha", "beta", "epsilon", "value"):
        if key in a and a[key] is not None:
            v = a[key]
            if isinstance(v, bool) or not isinstance(v, (int, float, np.integer, np.floating)) \
                    or not np.isfinite(float(v)):
                raise bad(key, "a finite number")
    if a.get("act_min") is not None and a.get("act_max") is not None and \
            float(a["act_min"]) > float(a["act_max"]):
        raise GraphError(f"{where}: clamp act_min={a['act_min']} > act_max={a['act_max']}")
    if node.op == "softmax" and a.get("beta") is not None and float(a["beta"]) <= 0:
        raise bad("beta", "a number > 0")
    if node.op == "batch_norm" and a.get("epsilon") is not None and float(a["epsilon"]) < 0:
        raise bad("epsilon", "a number >= 0")
    for key in ("axes", "perm", "shape", "begin", "end", "size"):
        if key in a and a[key] is not None and _ints(a[key]) is None:
            raise bad(key, "a tuple of integers")
    if node.op == "strided_slice" and "strides" in a:
        v = _ints(a["strides"])
        if v is None or 0 in v:
            raise bad("strides", "non-zero integers")
    if node.op == "pad" and "paddings" in a:
        p = a["paddings"]
        if not isinstance(p, (tuple, list)) or not all(
                _ints(pair, 2) is not None and min(pair) >= 0 for pair in p):
            raise bad("paddings", "(before, after) pairs of integers >= 0")
    for key in ("axis", "begin_mask", "end_mask", "shrink_axis_mask"):
        if key in a and a[key] is not None and (
                not isinstance(a[key], (int, np.integer)) or isinstance(a[key], bool)):
            raise bad(key, "an integer")
