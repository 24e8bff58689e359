"""ONNX frontend: a float ONNX model (opset 13..21) -> the NHWC IR.

Three steps, each small:
  1. read and normalize: load, fix the batch dimension to 1, infer static shapes;
  2. fold what exporters leave behind (Constant nodes, Shape->Gather->Concat->Reshape chains)
     with onnx's own shape inference and reference evaluator, so every shape is static;
  3. translate node by node into IR ops (toolchain/ops.py), converting NCHW to NHWC.

Layout is tracked per tensor: a 4D activation is "nhwc" in the IR (its ONNX twin is NCHW);
anything else is "plain" (same shape, same bytes). A Flatten of an NCHW map with H*W > 1 makes
a "flat" tensor: in the IR its bytes are in NHWC order, so the fully_connected that reads it gets
its weight columns permuted instead of emitting a transpose. Tensor names are kept, so the
source model's tensors (and its calibration ranges) map one to one onto IR tensors.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
from onnx import helper, numpy_helper, shape_inference
from onnx.reference import ReferenceEvaluator

from ..errors import EdgecError, UnsupportedOpError
from ..ir import MAX_TENSOR_BYTES, Graph, Node, Tensor
from ..ops import supported_list
from .onnx_transformer import Permuted, TransformerOps, fuse_gelu

MIN_OPSET, MAX_OPSET = 13, 21
NHWC, PLAIN = "nhwc", "plain"


@dataclass(frozen=True)
class Flat:
    """A [N, C*H*W] tensor whose bytes are the NHWC flattening of an NCHW (C, H, W) map."""

    chw: tuple[int, int, int]


def load_onnx(model: str | os.PathLike | onnx.ModelProto, name: str | None = None) -> Graph:
    """Import a float ONNX model into the NHWC IR (batch 1); raises EdgecError on bad input.
    `name` is what messages call the model (default: the file name or the graph's name)."""
    proto, source = _read(model)
    source = name or source
    try:
        proto = _normalize(proto, source)
        proto = _fold_constants(proto, source)
        proto = fuse_gelu(proto)  # the exporters' GELU decompositions (erf, tanh) -> one Gelu
        proto = _fuse_hard_swish(proto)  # x * HardSigmoid(x) (opset < 14) -> HardSwish
        return _Importer(proto, source).run()
    except UnicodeDecodeError as e:  # protobuf strings (names) that are not UTF-8
        raise EdgecError(f"{source}: the model holds names that are not UTF-8 text "
                         f"({e.reason}); the file is corrupt") from None


# --- 1. read and normalize ------------------------------------------------------------------

def _read(model) -> tuple[onnx.ModelProto, str]:
    if isinstance(model, onnx.ModelProto):
        return model, model.graph.name or "<onnx model>"
    path = Path(model)
    if not path.is_file():
        raise EdgecError(f"{path}: no such file; pass the path of an .onnx model")
    try:
        proto = onnx.load(str(path))
    except Exception as e:  # protobuf raises DecodeError, onnx ValueError/OSError
        raise EdgecError(f"{path}: not a valid ONNX model (truncated or corrupt?): "
                         f"{str(e).splitlines()[0] if str(e) else type(e).__name__}") from e
    if len(proto.graph.node) == 0:
        raise EdgecError(f"{path}: not a valid ONNX model (no nodes; truncated or empty file?)")
    try:  # a cut file can still parse: the checker catches the dangling references
        onnx.checker.check_model(proto)
    except onnx.checker.ValidationError as e:
        raise EdgecError(f"{path}: not a valid ONNX model (truncated or corrupt?): "
                         f"{str(e).strip().splitlines()[0]}") from e
    return proto, path.name


def _opset(proto: onnx.ModelProto) -> int:
    return next((o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")), 0)


def _normalize(proto: onnx.ModelProto, source: str) -> onnx.ModelProto:
    """Opset in range, batch 1 on every input, all shapes inferred."""
    opset = _opset(proto)
    if not MIN_OPSET <= opset <= MAX_OPSET:
        target = MIN_OPSET if opset < MIN_OPSET else MAX_OPSET
        try:
            proto = onnx.version_converter.convert_version(proto, target)
        except Exception as e:
            raise EdgecError(f"{source}: opset {opset} is outside {MIN_OPSET}..{MAX_OPSET} and "
                             f"could not be converted ({e}); re-export with opset 17") from e
    proto = onnx.ModelProto.FromString(proto.SerializeToString())  # never touch the caller's
    inits = {i.name for i in proto.graph.initializer}
    for vi in proto.graph.input:
        if vi.name in inits:
            continue
        tt = vi.type.tensor_type
        if tt.elem_type != onnx.TensorProto.FLOAT:
            raise EdgecError(f"{source}: input '{vi.name}' is "
                             f"{onnx.TensorProto.DataType.Name(tt.elem_type)}; edgec imports "
                             f"float32 models (it quantizes them itself)")
        for i, d in enumerate(tt.shape.dim):
            if d.HasField("dim_value") and d.dim_value > 0:
                continue
            if i == 0:
                d.Clear()
                d.dim_value = 1  # a dynamic batch becomes 1: one inference at a time
            else:
                raise EdgecError(f"{source}: input '{vi.name}' has dynamic dimension {i} "
                                 f"('{d.dim_param}'); export the model with a fixed input shape")
    return _infer(proto, source)


# Constant inputs ONNX's C++ shape inference computes shapes from, and may abort on (an
# assertion, not an exception) when they are absurd: checked before it runs.
_LIMIT = 1 << 20  # no dimension, scale or pad of a model for a microcontroller is near this


def _positive(arr: np.ndarray) -> bool:
    return bool(np.all(arr > 0) and np.all(arr <= _LIMIT))


def _bounded(arr: np.ndarray) -> bool:
    return arr.dtype.kind in "iu" and bool(np.all(np.abs(arr) <= _LIMIT))


_SHAPE_INPUTS = {"Resize": {2: ("scales", _positive, "finite, positive numbers"),
                            3: ("sizes", _positive, "finite, positive numbers")},
                 "Upsample": {1: ("scales", _positive, "finite, positive numbers")},
                 "Pad": {1: ("pads", _bounded, f"integers within +-{_LIMIT}")}}


def _check_shape_inputs(proto: onnx.ModelProto, source: str) -> None:
    g = proto.graph
    values = {i.name: i for i in g.initializer}
    values.update({n.output[0]: a.t for n in g.node if n.op_type == "Constant" and n.output
                   for a in n.attribute if a.name == "value"})
    for node in g.node:
        for k, (role, ok, what) in _SHAPE_INPUTS.get(node.op_type, {}).items():
            if k < len(node.input) and node.input[k] in values:
                arr = _to_array(values[node.input[k]], source)
                if arr.dtype.kind not in "iuf" or not np.all(np.isfinite(arr)) or not ok(arr):
                    raise EdgecError(f"{source}: {node.op_type} node '{node.name}': {role} "
                                     f"{np.ravel(arr)[:8].tolist()} must be {what}")


def _infer(proto: onnx.ModelProto, source: str) -> onnx.ModelProto:
    _check_shape_inputs(proto, source)
    try:
        return shape_inference.infer_shapes(proto, strict_mode=True, data_prop=True)
    except Exception as e:
        raise EdgecError(f"{source}: ONNX shape inference failed: "
                         f"{str(e).splitlines()[0]}") from e


# --- 2. constant folding --------------------------------------------------------------------

def _static_shapes(proto: onnx.ModelProto) -> dict[str, tuple[int, ...]]:
    shapes = {}
    for vi in [*proto.graph.input, *proto.graph.value_info, *proto.graph.output]:
        dims = vi.type.tensor_type.shape.dim
        if vi.type.tensor_type.HasField("shape") and all(d.HasField("dim_value") for d in dims):
            shapes[vi.name] = tuple(d.dim_value for d in dims)
    return shapes


def _to_array(init: onnx.TensorProto, source: str) -> np.ndarray:
    """An initializer's values; EdgecError for an unknown type or a size that does not fit."""
    try:
        return numpy_helper.to_array(init)
    except Exception as e:  # KeyError (data type), ValueError (raw_data size) ...
        raise EdgecError(f"{source}: initializer '{init.name}' cannot be read "
                         f"({type(e).__name__}: {str(e)[:120]})") from None


def _fold_constants(proto: onnx.ModelProto, source: str) -> onnx.ModelProto:
    """Evaluate every node whose inputs are all known (Shape reads the inferred static shape)."""
    g = proto.graph
    consts = {i.name: _to_array(i, source) for i in g.initializer}
    shapes = _static_shapes(proto)
    opsets = {o.domain or "": o.version for o in proto.opset_import}
    kept = []
    for node in g.node:
        if node.op_type == "Shape" and node.input[0] in shapes and node.domain in ("", "ai.onnx"):
            shape = np.array(shapes[node.input[0]], np.int64)
            attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
            consts[node.output[0]] = shape[attrs.get("start", 0):attrs.get("end", None)]
        elif node.domain in ("", "ai.onnx") and all(i == "" or i in consts for i in node.input):
            try:
                feeds = {i: consts[i] for i in node.input if i}
                outs = ReferenceEvaluator(node, opsets=opsets).run(None, feeds)
            except Exception as e:
                raise EdgecError(f"{source}: could not constant-fold {node.op_type} node "
                                 f"'{node.name}': {str(e).splitlines()[0]}") from e
            for name, value in zip(node.output, outs):
                consts[name] = np.asarray(value)
        else:
            kept.append(node)
    used = {i for n in kept for i in n.input} | {o.name for o in g.output}
    for o in g.output:
        if o.name in consts and o.name not in {i.name for i in g.initializer}:
            raise EdgecError(f"{source}: graph output '{o.name}' is a constant; nothing to compile")
    new_graph = helper.make_graph(
        kept, g.name, [i for i in g.input if i.name not in consts], list(g.output),
        [numpy_helper.from_array(v, k) for k, v in consts.items() if k in used])
    folded = helper.make_model(new_graph, opset_imports=list(proto.opset_import),
                               producer_name=proto.producer_name, ir_version=proto.ir_version)
    return _infer(folded, source)


def _fuse_hard_swish(proto: onnx.ModelProto) -> onnx.ModelProto:
    """x * HardSigmoid(x, alpha=1/6, beta=1/2) -> HardSwish(x): how HardSwish is written
    before opset 14 (by exporters, and by edgec's QDQ artifact). Shapes were inferred
    already; the HardSwish node takes over the Mul's output."""
    g = proto.graph
    nodes = list(g.node)
    users: dict[str, int] = {}
    for n in nodes:
        for i in n.input:
            users[i] = users.get(i, 0) + 1
    gates = {n.output[0]: n for n in nodes if n.op_type == "HardSigmoid" and n.output and
             np.isclose(_attrs(n).get("alpha", 0.2), 1 / 6, rtol=1e-6) and
             np.isclose(_attrs(n).get("beta", 0.5), 0.5, rtol=1e-6)}
    graph_outputs = {o.name for o in g.output}
    fused, drop = {}, set()
    for n in nodes:
        if n.op_type != "Mul" or len(n.input) != 2:
            continue
        for k in (0, 1):
            gate = gates.get(n.input[k])
            if gate is not None and gate.input[0] == n.input[1 - k] and \
                    users.get(gate.output[0]) == 1 and gate.output[0] not in graph_outputs:
                fused[id(n)] = helper.make_node("HardSwish", [gate.input[0]], list(n.output),
                                                name=n.name)
                drop.add(id(gate))
                break
    if not fused:
        return proto
    kept = [fused.get(id(n), n) for n in nodes if id(n) not in drop]
    del g.node[:]
    g.node.extend(kept)
    return proto


# --- 3. translation -------------------------------------------------------------------------

def _attrs(node: onnx.NodeProto) -> dict:
    return {a.name: helper.get_attribute_value(a) for a in node.attribute}


def _nchw_to_nhwc(shape):
    n, c, h, w = shape
    return (n, h, w, c)


# IR axis k of a 4-D activation is ONNX (NCHW) axis IR_FROM_ONNX[k].
IR_FROM_ONNX = (0, 2, 3, 1)
ONNX_FROM_IR = (0, 3, 1, 2)


def _onnx_resize_indices(in_size: int, out_size: int, scale: float, mode: str,
                         nearest: str) -> np.ndarray | None:
    """ONNX Resize (mode nearest) source index of each output index along one axis, or
    None for a coordinate mode edgec does not know."""
    x = np.arange(out_size, dtype=np.float64)
    if mode == "asymmetric":
        orig = x / scale
    elif mode == "tf_half_pixel_for_nn":
        orig = (x + 0.5) / scale
    elif mode == "half_pixel":
        orig = (x + 0.5) / scale - 0.5
    elif mode == "pytorch_half_pixel":
        orig = (x + 0.5) / scale - 0.5 if out_size > 1 else np.zeros_like(x)
    elif mode == "align_corners":
        orig = x * (in_size - 1) / (out_size - 1) if out_size > 1 else np.zeros_like(x)
    else:
        return None
    frac = orig - np.floor(orig)
    rounded = {"floor": np.floor(orig), "ceil": np.ceil(orig),
               "round_prefer_floor": np.where(frac == 0.5, np.floor(orig), np.round(orig)),
               "round_prefer_ceil": np.where(frac == 0.5, np.ceil(orig), np.round(orig))
               }.get(nearest)
    if rounded is None:
        return None
    return np.clip(rounded, 0, in_size - 1).astype(np.int64)


class _Importer(TransformerOps):
    """Walks the folded ONNX graph once, appending IR tensors and nodes."""

    def __init__(self, proto: onnx.ModelProto, source: str):
        self.proto, self.source, self.g = proto, source, proto.graph
        self.consts = {i.name: _to_array(i, source) for i in self.g.initializer}
        self.shapes = _static_shapes(proto)  # ONNX (source layout) shapes
        for name, shape in self.shapes.items():  # before any op sizes a table from them
            if any(d <= 0 for d in shape) or \
                    int(np.prod(shape, dtype=object)) * 4 > MAX_TENSOR_BYTES:
                raise EdgecError(f"{source}: tensor '{name}' has shape {list(shape)}; edgec "
                                 f"needs static, positive dimensions that fit a microcontroller")
        self.kind: dict[str, object] = {}  # NHWC | PLAIN | Flat
        self.tensors: dict[str, Tensor] = {}
        self.nodes: list[Node] = []
        self.consumers: dict[str, list[onnx.NodeProto]] = {}
        for n in self.g.node:
            for i in n.input:
                self.consumers.setdefault(i, []).append(n)
        self.absorbed: set[str] = set()  # outputs of nodes an earlier one took in (MatMul's Add)
        self.node_names: set[str] = set()

    # -- driver
    def run(self) -> Graph:
        inputs, outputs, io_layout = [], [], {}
        for vi in self.g.input:
            shape = self.shapes[vi.name]
            kind = NHWC if len(shape) == 4 else PLAIN
            self._activation(vi.name, shape, kind)
            inputs.append(vi.name)
            io_layout[vi.name] = "NCHW" if kind == NHWC else ""
        for idx, node in enumerate(self.g.node):
            if node.output[0] in self.absorbed:
                continue
            handler = getattr(self, f"_op_{node.op_type}", None)
            if node.domain not in ("", "ai.onnx") or handler is None:
                raise UnsupportedOpError(
                    f"{self.source}: unsupported op '{node.op_type}' (node "
                    f"'{node.name or idx}'); supported: {supported_list()}")
            handler(node, self._node_name(node, idx))
        for vi in self.g.output:
            if vi.name not in self.kind:
                raise EdgecError(f"{self.source}: graph output '{vi.name}' is never computed")
            if isinstance(self.kind.get(vi.name), Flat):
                raise UnsupportedOpError(
                    f"{self.source}: graph output '{vi.name}' is a flattened NCHW feature map; "
                    f"edgec supports flattening only in front of a Linear/Gemm layer")
            outputs.append(vi.name)
            io_layout[vi.name] = "NCHW" if self.kind[vi.name] == NHWC else ""
        meta = {"source": self.source, "producer": self.proto.producer_name,
                "opset": _opset(self.proto)}
        return Graph(self.tensors, self.nodes, inputs, outputs, io_layout, meta)

    def _node_name(self, node, idx) -> str:
        base = node.name or f"{node.op_type}_{idx}"
        if isinstance(base, bytes):  # protobuf hands out invalid UTF-8 as bytes
            base = base.decode("utf-8", "replace")
        name, i = base, 0
        while name in self.node_names:
            i += 1
            name = f"{base}_{i}"
        self.node_names.add(name)
        return name

    # -- helpers
    def _fail(self, node, name, why: str, fix: str = "") -> EdgecError:
        msg = f"{self.source}: {node.op_type} node '{name}': {why}"
        return UnsupportedOpError(msg + (f"; {fix}" if fix else ""))

    def _activation(self, name, onnx_shape, kind) -> str:
        shape = _nchw_to_nhwc(onnx_shape) if kind == NHWC else tuple(onnx_shape)
        if isinstance(kind, Permuted):
            shape = tuple(onnx_shape[a] for a in kind.axes)
        self.tensors[name] = Tensor(name, tuple(int(d) for d in shape), "float32")
        self.kind[name] = kind
        return name

    def _out(self, node, name, kind) -> str:
        out = node.output[0]
        if out not in self.shapes:
            raise EdgecError(f"{self.source}: {node.op_type} node '{name}': the shape of "
                             f"'{out}' could not be inferred")
        return self._activation(out, self.shapes[out], kind)

    def _const(self, base: str, data: np.ndarray) -> str:
        data = np.ascontiguousarray(data, dtype=np.float32)
        t = self.tensors.get(base)
        if t is not None and t.data is not None and t.data.shape == data.shape \
                and np.array_equal(t.data, data):
            return base
        name = base
        if name in self.tensors:
            name = Graph(self.tensors, [], [], []).unique_name(base)
        self.tensors[name] = Tensor(name, data.shape, "float32", data=data)
        return name

    def _const_in(self, node, name, i, what: str) -> np.ndarray:
        if i >= len(node.input) or node.input[i] == "":
            return None
        value = self.consts.get(node.input[i])
        if value is None:
            raise self._fail(node, name, f"{what} '{node.input[i]}' is computed at run time",
                             "edgec needs it as a constant (initializer)")
        return value

    def _act_in(self, node, name, i=0, allow=(NHWC, PLAIN)) -> str:
        x = node.input[i]
        if x in self.consts:
            raise self._fail(node, name, f"input '{x}' is a constant",
                             "edgec expects an activation here")
        if x not in self.kind:
            raise EdgecError(f"{self.source}: {node.op_type} node '{name}' reads '{x}', "
                             f"which is never produced")
        kind = self.kind[x]
        if isinstance(kind, Flat) and Flat not in allow:
            raise self._fail(node, name, f"input '{x}' is a flattened NCHW feature map",
                             "edgec supports flattening only in front of a Linear/Gemm layer")
        if isinstance(kind, Permuted) and Permuted not in allow:
            raise self._fail(node, name, f"input '{x}' is an NCHW map reshaped to "
                             f"{list(self.shapes[x])}",
                             "edgec supports this reshape only before a Transpose (ViT tokens)")
        if kind in (NHWC, PLAIN) and kind not in allow:
            raise self._fail(node, name, f"input '{x}' has rank {len(self.shapes[x])}",
                             "expected a 4D NCHW tensor" if NHWC in allow else
                             "4D inputs are not supported here")
        return x

    def _emit(self, name, op, inputs, outputs, **attrs):
        self.nodes.append(Node(name, op, list(inputs), list(outputs), attrs))

    def _window(self, node, name, kernel, dilations=(1, 1)):
        """(strides, pads) with pads (top, left, bottom, right), resolving auto_pad."""
        a = _attrs(node)
        strides = tuple(a.get("strides", (1, 1)))
        auto_pad = a.get("auto_pad", b"NOTSET")
        auto_pad = auto_pad.decode("utf-8", "replace") if isinstance(auto_pad, bytes) else auto_pad
        if auto_pad in ("NOTSET", ""):
            pads = tuple(a.get("pads", (0, 0, 0, 0)))
        elif auto_pad == "VALID":
            pads = (0, 0, 0, 0)
        elif auto_pad in ("SAME_UPPER", "SAME_LOWER"):
            in_hw = self.shapes[node.input[0]][2:]
            begin, end = [], []
            for size, k, s, d in zip(in_hw, kernel, strides, dilations):
                total = max(0, (-(-size // s) - 1) * s + (k - 1) * d + 1 - size)
                small = total // 2
                begin.append(small if auto_pad == "SAME_UPPER" else total - small)
                end.append(total - begin[-1])
            pads = (begin[0], begin[1], end[0], end[1])
        else:
            raise self._fail(node, name, f"auto_pad '{auto_pad}' is not understood")
        return tuple(int(s) for s in strides), tuple(int(p) for p in pads)

    # -- convolution and linear layers
    def _op_Conv(self, node, name):
        x = self._act_in(node, name, 0, allow=(NHWC,))
        w = self._const_in(node, name, 1, "weight")
        b = self._const_in(node, name, 2, "bias")
        a = _attrs(node)
        if w.ndim != 4:
            raise self._fail(node, name, f"{w.ndim - 2}D convolution", "only 2D Conv is supported")
        c_in, c_out, group = self.shapes[x][1], w.shape[0], int(a.get("group", 1))
        if group < 1 or c_in % group or w.shape[1] != c_in // group:
            raise self._fail(node, name, f"weight shape {list(w.shape)} does not fit {c_in} "
                             f"input channels in {group} group(s)")
        if b is not None and np.size(b) != c_out:
            raise self._fail(node, name, f"bias has {np.size(b)} values for {c_out} output "
                             f"channels")
        dilations = tuple(int(d) for d in a.get("dilations", (1, 1)))
        strides, pads = self._window(node, name, w.shape[2:], dilations)
        bias = self._const(node.input[2], b) if b is not None else ""
        y = self._out(node, name, NHWC)
        common = dict(strides=strides, dilations=dilations, pads=pads, act_min=None, act_max=None)
        if group == 1:
            wt = self._const(node.input[1], w.transpose(0, 2, 3, 1))  # OIHW -> OHWI
            self._emit(name, "conv2d", [x, wt, bias], [y], **common)
        elif group == c_in and c_out % c_in == 0:
            # [C_OUT, 1, KH, KW] -> [1, KH, KW, C_OUT]
            wt = self._const(node.input[1], w.transpose(1, 2, 3, 0))
            self._emit(name, "depthwise_conv2d", [x, wt, bias], [y],
                       depth_multiplier=c_out // c_in, **common)
        else:
            raise self._fail(node, name, f"grouped convolution (group={group}, C_IN={c_in}, "
                             f"C_OUT={c_out}) is not supported",
                             "only group=1 or depthwise (group == C_IN) convolutions are")

    def _fc_weights(self, x: str, w: np.ndarray) -> np.ndarray:
        """w [C_OUT, C_IN]; columns permuted when x is an NHWC-flattened NCHW map."""
        kind = self.kind[x]
        if isinstance(kind, Flat):
            c, h, wd = kind.chw
            w = w.reshape(w.shape[0], c, h, wd).transpose(0, 2, 3, 1).reshape(w.shape[0], -1)
        return w

    def _op_Gemm(self, node, name):
        x = self._act_in(node, name, 0, allow=(PLAIN, Flat))
        w = self._const_in(node, name, 1, "B (weight)")
        c = self._const_in(node, name, 2, "C (bias)")
        a = _attrs(node)
        if a.get("transA", 0):
            raise self._fail(node, name, "transA=1 is not supported", "re-export without it")
        w = (w if a.get("transB", 0) else w.T) * a.get("alpha", 1.0)
        bias = ""
        if c is not None:
            c = np.asarray(c) * a.get("beta", 1.0)
            if c.size not in (1, w.shape[0]):
                raise self._fail(node, name, f"bias C of shape {c.shape} is not per output "
                                 f"channel", "use a bias of shape [N]")
            bias = self._const(node.input[2], np.broadcast_to(c.reshape(-1), (w.shape[0],)))
        wt = self._const(node.input[1], self._fc_weights(x, w))
        y = self._out(node, name, PLAIN)
        self._emit(name, "fully_connected", [x, wt, bias], [y], act_min=None, act_max=None)

    def _op_MatMul(self, node, name):
        if node.input[1] not in self.consts:
            return self.matmul_activations(node, name)  # attention: q @ k^T, probs @ v
        x = self._act_in(node, name, 0, allow=(PLAIN, Flat))
        w = self._const_in(node, name, 1, "B (weight)")
        if w.ndim != 2:
            raise self._fail(node, name, f"weight of rank {w.ndim}", "expected [K, N]")
        w = self._fc_weights(x, w.T)
        bias, out_node = "", node
        users = self.consumers.get(node.output[0], [])
        if len(users) == 1 and users[0].op_type == "Add" and \
                node.output[0] not in {o.name for o in self.g.output}:
            add = users[0]
            other = add.input[1] if add.input[0] == node.output[0] else add.input[0]
            b = self.consts.get(other)
            if b is not None and b.size == w.shape[0]:
                bias = self._const(other, b.reshape(-1))
                out_node = add
                self.absorbed.add(add.output[0])
        wt = self._const(node.input[1], w)
        y = self._out(out_node, name, PLAIN)
        self._emit(name, "fully_connected", [x, wt, bias], [y], act_min=None, act_max=None)

    def _op_BatchNormalization(self, node, name):
        x = self._act_in(node, name)
        if self.kind[x] == PLAIN and len(self.shapes[x]) != 2:
            raise self._fail(node, name, f"BatchNorm over a rank-{len(self.shapes[x])} tensor",
                             "only 4D (NCHW) and 2D inputs are supported")
        if len(node.output) > 1 and any(node.output[1:]):
            raise self._fail(node, name, "training-mode BatchNorm", "export the model in eval mode")
        channels = self.shapes[x][1]
        values = [self._const_in(node, name, i, role)
                  for i, role in enumerate(["x", "scale", "bias", "mean", "var"]) if i > 0]
        for role, v in zip(["scale", "bias", "mean", "var"], values):
            if v is None or np.size(v) != channels:
                raise self._fail(node, name, f"{role} has {np.size(v) if v is not None else 0}"
                                 f" values for {channels} channels")
        params = [self._const(node.input[i + 1], v) for i, v in enumerate(values)]
        y = self._out(node, name, self.kind[x])
        self._emit(name, "batch_norm", [x, *params], [y],
                   epsilon=float(_attrs(node).get("epsilon", 1e-5)))

    # -- elementwise
    def _op_Relu(self, node, name):
        x = self._act_in(node, name)
        self._emit(name, "relu", [x], [self._out(node, name, self.kind[x])])

    def _op_Clip(self, node, name):
        x = self._act_in(node, name)
        a = _attrs(node)
        lo, hi = a.get("min"), a.get("max")  # opset < 11 keeps them as attributes
        if len(node.input) > 1:
            lo_v, hi_v = (self._const_in(node, name, i, r) for i, r in ((1, "min"), (2, "max")))
            if any(v is not None and np.size(v) != 1 for v in (lo_v, hi_v)):
                raise self._fail(node, name, "min and max must be scalars")
            lo = None if lo_v is None else float(lo_v)
            hi = None if hi_v is None else float(hi_v)
        self._emit(name, "clip", [x], [self._out(node, name, self.kind[x])],
                   act_min=None if lo is None else float(lo),
                   act_max=None if hi is None else float(hi))

    def _binary(self, node, name, ir_op: str):
        """Add / Mul of two activations, NumPy broadcasting between tensors of one layout kind
        (two NCHW maps broadcast the same way as their NHWC twins)."""
        if sum(i in self.consts for i in node.input) == 1:  # x + pos_embedding, x * scale
            k = 0 if node.input[0] in self.consts else 1
            x = self._act_in(node, name, 1 - k)
            c = self.constant_operand(node, name, k, x)
            self._emit(name, ir_op, [c, x] if k == 0 else [x, c],
                       [self._out(node, name, self.kind[x])], act_min=None, act_max=None)
            return
        a, b = (self._act_in(node, name, i) for i in (0, 1))
        if self.kind[a] != self.kind[b] or len(self.shapes[a]) != len(self.shapes[b]):
            raise self._fail(node, name, f"broadcasting {list(self.shapes[a])} with "
                             f"{list(self.shapes[b])} across layouts is not supported",
                             "give both operands the same rank")
        self._emit(name, ir_op, [a, b], [self._out(node, name, self.kind[a])],
                   act_min=None, act_max=None)

    def _op_Add(self, node, name):
        self._binary(node, name, "add")

    def _op_Mul(self, node, name):
        self._binary(node, name, "mul")

    def _unary(self, node, name, ir_op: str, **attrs):
        x = self._act_in(node, name)
        self._emit(name, ir_op, [x], [self._out(node, name, self.kind[x])], **attrs)

    def _op_Sigmoid(self, node, name):
        self._unary(node, name, "logistic")

    def _op_Tanh(self, node, name):
        self._unary(node, name, "tanh")

    def _op_HardSwish(self, node, name):
        self._unary(node, name, "hard_swish")

    def _op_LeakyRelu(self, node, name):
        self._unary(node, name, "leaky_relu", alpha=float(_attrs(node).get("alpha", 0.01)))

    def _op_Softmax(self, node, name):
        x = self._act_in(node, name)
        rank = len(self.shapes[x])
        axis = int(_attrs(node).get("axis", -1)) % rank
        # The IR's softmax runs over its last axis: NCHW's C, or a plain tensor's last axis.
        if axis != (1 if self.kind[x] == NHWC else rank - 1):
            raise self._fail(node, name, f"softmax over axis {axis} of a rank-{rank} tensor",
                             "only the last (class) axis, or C of an NCHW map, is supported")
        self._emit(name, "softmax", [x], [self._out(node, name, self.kind[x])], beta=1.0)

    # -- pooling and reductions
    def _pool(self, node, name, op):
        x = self._act_in(node, name, allow=(NHWC,))
        a = _attrs(node)
        kernel = tuple(int(k) for k in a["kernel_shape"])
        if len(kernel) != 2:
            raise self._fail(node, name, f"{len(kernel)}D pooling", "only 2D pooling is supported")
        if a.get("ceil_mode", 0):
            raise self._fail(node, name, "ceil_mode=1 is not supported",
                             "use ceil_mode=False (or pad the input explicitly)")
        if any(d != 1 for d in a.get("dilations", (1, 1))):
            raise self._fail(node, name, "dilated pooling is not supported")
        if len(node.output) > 1 and node.output[1]:
            raise self._fail(node, name, "MaxPool indices output is not supported")
        strides, pads = self._window(node, name, kernel)
        if op == "avg_pool2d" and a.get("count_include_pad", 0) and any(pads):
            raise self._fail(node, name, "count_include_pad=1 with padding is not supported "
                             "(TFLite averages exclude the padding)",
                             "use count_include_pad=False or no padding")
        self._emit(name, op, [x], [self._out(node, name, NHWC)], kernel=kernel, strides=strides,
                   pads=pads, act_min=None, act_max=None)

    def _op_MaxPool(self, node, name):
        self._pool(node, name, "max_pool2d")

    def _op_AveragePool(self, node, name):
        self._pool(node, name, "avg_pool2d")

    def _op_GlobalAveragePool(self, node, name):
        x = self._act_in(node, name, allow=(NHWC,))
        self._emit(name, "mean", [x], [self._out(node, name, NHWC)], axes=(1, 2), keepdims=True)

    def _op_ReduceMean(self, node, name):
        x = self._act_in(node, name, allow=(NHWC,))
        a = _attrs(node)
        axes = a.get("axes")
        if len(node.input) > 1 and node.input[1]:
            axes = self._const_in(node, name, 1, "axes")
        if axes is None or len(axes) == 0:
            raise self._fail(node, name, "mean over all axes is not supported",
                             "only the mean over H, W (global average pooling) is")
        if sorted(int(i) % 4 for i in np.ravel(axes)) != [2, 3]:
            raise self._fail(node, name, f"mean over axes {list(np.ravel(axes))} is not "
                             f"supported", "only over H, W (axes [2, 3]) is")
        keep = bool(a.get("keepdims", 1))
        y = self._out(node, name, NHWC if keep else PLAIN)
        self._emit(name, "mean", [x], [y], axes=(1, 2), keepdims=keep)

    # -- data movement
    def _axes_kind(self, node, name, x):
        """(IR axis -> ONNX axis map, layout kind) of an activation data-movement ops read."""
        kind = self.kind[x]
        if isinstance(kind, Permuted):
            return kind.axes, kind
        return (IR_FROM_ONNX if kind == NHWC else tuple(range(len(self.shapes[x])))), kind

    def _op_Pad(self, node, name):
        x = self._act_in(node, name)
        a = _attrs(node)
        mode = a.get("mode", b"constant")
        mode = mode.decode("utf-8", "replace") if isinstance(mode, bytes) else mode
        if mode != "constant":
            raise self._fail(node, name, f"mode '{mode}' is not supported",
                             "only constant padding is")
        rank = len(self.shapes[x])
        pads = a.get("pads")  # opset < 11 keeps them as an attribute
        if len(node.input) > 1 and node.input[1]:
            pads = self._const_in(node, name, 1, "pads")
        pads = [int(v) for v in np.ravel(pads)]
        value = self._const_in(node, name, 2, "constant_value")
        value = float(np.ravel(value)[0]) if value is not None and np.size(value) else \
            float(a.get("value", 0.0))
        axes = self._const_in(node, name, 3, "axes")
        axes = [int(v) % rank for v in np.ravel(axes)] if axes is not None else list(range(rank))
        if len(pads) != 2 * len(axes):
            raise self._fail(node, name, f"{len(pads)} pads for {len(axes)} axes")
        if min(pads, default=0) < 0:
            raise self._fail(node, name, f"negative pads {pads} (cropping) are not supported",
                             "use a Slice")
        onnx_pads = [(0, 0)] * rank
        for k, axis in enumerate(axes):
            onnx_pads[axis] = (pads[k], pads[k + len(axes)])
        ir_axes, kind = self._axes_kind(node, name, x)
        self._emit(name, "pad", [x], [self._out(node, name, kind)],
                   paddings=tuple(onnx_pads[ir_axes[k]] for k in range(rank)), value=value)

    def _op_Transpose(self, node, name):
        x = self._act_in(node, name, allow=(NHWC, PLAIN, Permuted))
        rank = len(self.shapes[x])
        perm = [int(p) for p in _attrs(node).get("perm", range(rank - 1, -1, -1))]
        in_axes, in_kind = self._axes_kind(node, name, x)
        # a 4-D result is an NCHW map, unless it comes from a plain (token, head) tensor
        out_kind = NHWC if rank == 4 and in_kind != PLAIN else PLAIN
        y = self._out(node, name, out_kind)
        out_axes = IR_FROM_ONNX if out_kind == NHWC else tuple(range(rank))
        onnx_to_ir_in = [in_axes.index(j) for j in range(rank)]  # ONNX input axis -> IR axis
        ir_perm = tuple(onnx_to_ir_in[perm[out_axes[k]]] for k in range(rank))
        dims = self.tensors[x].shape
        moved = [p for p in ir_perm if dims[p] != 1]
        if ir_perm == tuple(range(rank)):
            self._emit(name, "identity", [x], [y])
        elif moved == sorted(moved):  # only size-1 axes move: the same bytes, a view
            self._emit(name, "reshape", [x], [y], shape=self.tensors[y].shape)
        else:
            self._emit(name, "transpose", [x], [y], perm=ir_perm)

    def _op_Concat(self, node, name):
        acts = [i for i in range(len(node.input)) if node.input[i] and
                node.input[i] not in self.consts]
        if not acts:
            raise self._fail(node, name, "all inputs are constants")
        # a constant input (a ViT's class token) is quantized with the output's params and
        # copied into the arena by a `constant` node
        xs = [self._act_in(node, name, i) if i in acts else
              self.constant_activation(node, name, i, node.input[acts[0]])
              for i in range(len(node.input)) if node.input[i]]
        kinds = {self.kind[x] for x in xs}
        if len(kinds) != 1:
            raise self._fail(node, name, "inputs of different layouts (NCHW maps and plain "
                             "tensors) cannot be concatenated")
        rank = len(self.shapes[xs[0]])
        axis = int(_attrs(node)["axis"]) % rank
        ir_axes, kind = self._axes_kind(node, name, xs[0])
        self._emit(name, "concat", xs, [self._out(node, name, kind)],
                   axis=ir_axes.index(axis))

    def _op_Resize(self, node, name):
        x = self._act_in(node, name, allow=(NHWC,))
        a = _attrs(node)
        text = {k: (v.decode("utf-8", "replace") if isinstance(v, bytes) else v) for k, v in a.items()}
        if text.get("mode", "nearest") != "nearest":
            raise self._fail(node, name, f"mode '{text.get('mode')}' is not supported",
                             "only nearest-neighbour Resize is")
        if a.get("antialias", 0) or "axes" in a:
            raise self._fail(node, name, "antialias / axes are not supported")
        y = self._out(node, name, NHWC)
        src, dst = self.shapes[x], self.shapes[node.output[0]]
        if (src[0], src[1]) != (dst[0], dst[1]):
            raise self._fail(node, name, f"resizing {list(src)} to {list(dst)} changes N or C",
                             "only H and W may be resized")
        scales = self._const_in(node, name, 2, "scales") if len(node.input) > 2 else None
        scales = None if scales is None or np.size(scales) == 0 else np.ravel(scales)
        mode = text.get("coordinate_transformation_mode", "half_pixel")
        nearest = text.get("nearest_mode", "round_prefer_floor")
        flags = None
        tables = []
        for k in (2, 3):
            scale = float(scales[k]) if scales is not None else dst[k] / src[k]
            tables.append(_onnx_resize_indices(src[k], dst[k], scale, mode, nearest))
        from ..lower.data_movement import nearest_indices
        for align, half in ((False, False), (False, True), (True, False), (True, True)):
            if all(t is not None and np.array_equal(
                    t, nearest_indices(src[k], dst[k], align, half))
                    for t, k in zip(tables, (2, 3))):
                flags = (align, half)
                break
        if flags is None:
            raise self._fail(node, name, f"coordinate_transformation_mode '{mode}' with "
                             f"nearest_mode '{nearest}' picks pixels no TFLite "
                             f"RESIZE_NEAREST_NEIGHBOR does for {list(src)} -> {list(dst)}",
                             "export with coordinate_transformation_mode 'asymmetric' and "
                             "nearest_mode 'floor' (PyTorch's nearest)")
        self._emit(name, "resize_nearest", [x], [y], size=(dst[2], dst[3]),
                   align_corners=flags[0], half_pixel_centers=flags[1])

    def _op_Slice(self, node, name):
        x = self._act_in(node, name)
        dims = self.shapes[x]
        rank = len(dims)
        starts = self._const_in(node, name, 1, "starts")
        ends = self._const_in(node, name, 2, "ends")
        axes = self._const_in(node, name, 3, "axes") if len(node.input) > 3 else None
        steps = self._const_in(node, name, 4, "steps") if len(node.input) > 4 else None
        axes = list(range(len(np.ravel(starts)))) if axes is None else \
            [int(v) % rank for v in np.ravel(axes)]
        steps = [1] * len(axes) if steps is None else [int(v) for v in np.ravel(steps)]
        per_axis = {a: (0, d, 1) for a, d in enumerate(dims)}  # ONNX axis -> (start, count, step)
        for a, b, e, st in zip(axes, np.ravel(starts), np.ravel(ends), steps):
            d, b, e = dims[a], int(b), int(e)
            if st == 0:
                raise self._fail(node, name, "a step of 0")
            b = b + d if b < 0 else b
            e = e + d if e < 0 else e
            b = min(max(b, 0), d) if st > 0 else min(max(b, 0), d - 1)
            e = min(max(e, 0), d) if st > 0 else min(max(e, -1), d - 1)
            count = max(0, -((b - e) // st))
            if count == 0:
                raise self._fail(node, name, f"the slice of axis {a} is empty")
            per_axis[a] = (b, count, st)
        ir_axes, kind = self._axes_kind(node, name, x)
        begin, end, strides, end_mask = [], [], [], 0
        for k in range(rank):
            b, count, st = per_axis[ir_axes[k]]
            stop = b + count * st
            if stop < 0:  # walking backwards down to index 0: TFLite reads -1 as dim - 1
                end_mask |= 1 << k
            begin.append(b)
            end.append(max(stop, 0))
            strides.append(st)
        self._emit(name, "strided_slice", [x], [self._out(node, name, kind)],
                   begin=tuple(begin), end=tuple(end), strides=tuple(strides), begin_mask=0,
                   end_mask=end_mask, shrink_axis_mask=0)

    # -- views
    def _op_Identity(self, node, name):
        x = self._act_in(node, name, allow=(NHWC, PLAIN, Flat))
        self._emit(name, "identity", [x], [self._out(node, name, self.kind[x])])

    def _op_Dropout(self, node, name):
        if len(node.output) > 1 and node.output[1] in self.consumers:
            raise self._fail(node, name, "the dropout mask is used", "drop it from the model")
        self._op_Identity(node, name)

    def _op_Reshape(self, node, name):
        x = self._act_in(node, name, allow=(NHWC, PLAIN, Flat))
        src, dst, kind = self.shapes[x], self.shapes.get(node.output[0]), self.kind[x]
        if dst is None:
            raise EdgecError(f"{self.source}: {node.op_type} node '{name}': the output shape "
                             f"could not be inferred")

        def agnostic(s):  # NCHW and NHWC orders are the same bytes
            return len(s) == 4 and (s[1] == 1 or s[2] * s[3] == 1)

        out_kind = None
        if len(dst) == 4:
            if kind == NHWC and (tuple(src) == tuple(dst) or (agnostic(src) and agnostic(dst))):
                out_kind = NHWC
            elif kind == PLAIN and agnostic(dst):
                out_kind = NHWC
            elif kind == PLAIN:  # e.g. attention heads [B, N, H, D]: not an image
                out_kind = PLAIN
            elif isinstance(kind, Flat) and tuple(dst[1:]) == kind.chw:
                out_kind = NHWC
        elif kind == NHWC:
            if agnostic(src):
                out_kind = PLAIN
            elif tuple(dst) == (src[0], src[1] * src[2] * src[3]):
                out_kind = Flat(tuple(src[1:]))
            elif tuple(dst) == (src[0], src[1], src[2] * src[3]):
                out_kind = Permuted((0, 2, 1))  # ViT patch tokens [N, C, H*W]: bytes [N, HW, C]
        elif kind == PLAIN:
            out_kind = PLAIN
        elif tuple(dst) == tuple(src):
            out_kind = kind
        if out_kind is None:
            raise self._fail(node, name, f"reshaping {list(src)} to {list(dst)} reorders data "
                             f"between NCHW and edgec's NHWC",
                             "only flattening (in front of a Linear/Gemm) and reshapes that "
                             "keep the data order are supported")
        y = self._out(node, name, out_kind)
        self._emit(name, "reshape", [x], [y], shape=self.tensors[y].shape)

    _op_Flatten = _op_Squeeze = _op_Unsqueeze = _op_Reshape
