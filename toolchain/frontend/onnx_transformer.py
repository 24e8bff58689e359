"""The ONNX importer's transformer ops: what torch.onnx.export writes for a ViT.

A mixin of toolchain/frontend/onnx.py's importer (same helpers, same layout kinds), plus one
rewrite of the folded ONNX graph:

  fuse_gelu          the exporters' decompositions of GELU, x * 0.5 * (1 + erf(x / sqrt 2))
                     and its tanh approximation, in the orders the exporters write, become
                     one Gelu node;
  LayerNormalization -> layer_norm (last axis; gamma, beta constants);
  Gelu (opset 20)    -> gelu (approximate "none" or "tanh");
  MatMul of two activations -> batch_matmul (MatMul with constant weights stays a
                     fully_connected, keeping the leading dims of a [1, tokens, C] input);
  Gather of one index (the class token, q / k / v out of a fused qkv) -> strided_slice;
  Split (q, k, v = qkv.unbind(0)) -> one strided_slice per output;
  Div by a constant  -> mul by its reciprocal (attention's 1 / sqrt(d));
  Add / Mul / Concat with a constant operand are handled in onnx.py (_binary, _op_Concat)
  with constant_operand / constant_activation below.

Layout kinds (onnx.py): a tensor's IR twin is its ONNX tensor with the axes permuted;
`Permuted(axes)` is the general case (IR axis k is ONNX axis axes[k]) beside NHWC (a 4-D
NCHW map) and PLAIN (same axes), e.g. a conv's NCHW output reshaped to [N, C, H*W] is
Permuted((0, 2, 1)): its bytes are [N, H*W, C], which the ViT's transpose(1, 2) then reads
as they are (an identity).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import onnx
from onnx import helper, numpy_helper


@dataclass(frozen=True)
class Permuted:
    """A tensor whose IR twin is its ONNX tensor transposed: IR axis k is ONNX axis axes[k]."""

    axes: tuple[int, ...]


# --- GELU decompositions -> Gelu ----------------------------------------------------------------

def _scalar(consts: dict, name: str) -> float | None:
    value = consts.get(name)
    if value is None or np.size(value) != 1:
        return None
    return float(np.asarray(value).reshape(-1)[0])


def _close(v: float | None, want: float) -> bool:
    return v is not None and abs(v - want) <= 1e-4 * abs(want)


SQRT_2_OVER_PI = math.sqrt(2.0 / math.pi)


def fuse_gelu(proto: onnx.ModelProto) -> onnx.ModelProto:
    """Replace the exporters' GELU decompositions by Gelu(x) (ONNX opset 20's op, which only
    this importer reads): x * 0.5 * (1 + erf(x / sqrt(2))), and the tanh form
    x * 0.5 * (1 + tanh(sqrt(2 / pi) * (x + 0.044715 * x^3))) (approximate), with the three
    orders of the final products the exporters write. An intermediate used elsewhere blocks
    the rewrite."""
    g = proto.graph
    consts = {i.name: numpy_helper.to_array(i) for i in g.initializer}
    all_nodes = list(g.node)  # one Python object per node: ids below stay valid
    producer = {o: n for n in all_nodes for o in n.output}
    users: dict[str, list] = {}
    for n in all_nodes:
        for i in n.input:
            users.setdefault(i, []).append(n)
    graph_outputs = {o.name for o in g.output}

    def only_user(name: str):
        us = users.get(name, [])
        return us[0] if len(us) == 1 and name not in graph_outputs else None

    def other(n, name: str) -> str | None:
        """The other input of a binary node n that reads `name`."""
        if n is None or len(n.input) != 2 or name not in n.input:
            return None
        return n.input[1] if n.input[0] == name else n.input[0]

    def single(name: str, op: str, reader):
        """The producer of `name` if it is an `op` node whose only reader is `reader`."""
        n = producer.get(name)
        ok = n is not None and n.op_type == op and len(n.input) == 2 and \
            only_user(n.output[0]) is reader
        return n if ok else None

    def times_const(name: str, reader, value: float):
        """(the Mul node, its other input) for name = other * value, or None."""
        n = single(name, "Mul", reader)
        for k in (0, 1):
            if n is not None and _close(_scalar(consts, n.input[k]), value):
                return n, n.input[1 - k]
        return None

    def erf_core(erf):
        """x and the nodes of erf(x / sqrt(2)) (or erf(x * (1 / sqrt(2))))."""
        div = single(erf.input[0], "Div", erf)
        if div is not None and _close(_scalar(consts, div.input[1]), math.sqrt(2)):
            return div.input[0], [div]
        found = times_const(erf.input[0], erf, math.sqrt(0.5))
        return (found[1], [found[0]]) if found else None

    def tanh_core(tanh):
        """x and the nodes of tanh(sqrt(2 / pi) * (x + 0.044715 * x^3)), x^3 as Pow(x, 3),
        x * (x * x) or (x * x) * x."""
        found = times_const(tanh.input[0], tanh, SQRT_2_OVER_PI)
        if found is None:
            return None
        scale, inner_name = found
        inner = single(inner_name, "Add", scale)
        for k in (0, 1):
            if inner is None:
                return None
            x, c_name = inner.input[k], inner.input[1 - k]
            cubic = times_const(c_name, inner, 0.044715)
            if cubic is None:
                continue
            c, cube_name = cubic
            cube = producer.get(cube_name)
            if cube is None or only_user(cube_name) is not c:
                continue
            if cube.op_type == "Pow" and list(cube.input[:1]) == [x] and \
                    _close(_scalar(consts, cube.input[1]), 3.0):
                return x, [scale, inner, c, cube]
            sq_name = other(cube, x) if cube.op_type == "Mul" else None
            sq = single(sq_name, "Mul", cube) if sq_name else None
            if sq is not None and list(sq.input) == [x, x]:
                return x, [scale, inner, c, cube, sq]
        return None

    index = {id(n): k for k, n in enumerate(all_nodes)}
    removed: set[int] = set()
    replace: dict[int, onnx.NodeProto] = {}
    for fn in all_nodes:
        if fn.domain not in ("", "ai.onnx") or fn.op_type not in ("Erf", "Tanh"):
            continue
        core = erf_core(fn) if fn.op_type == "Erf" else tanh_core(fn)
        if core is None:
            continue
        x, chain = core
        add = only_user(fn.output[0])
        if add is None or add.op_type != "Add" or not _close(
                _scalar(consts, other(add, fn.output[0]) or ""), 1.0):
            continue
        m1 = only_user(add.output[0])
        if m1 is None or m1.op_type != "Mul":
            continue
        m1_other = other(m1, add.output[0])
        chain = chain + [fn, add, m1]
        if m1_other == x:  # (x * (1 + f)) * 0.5
            m2 = only_user(m1.output[0])
            if m2 is None or m2.op_type != "Mul" or not _close(
                    _scalar(consts, other(m2, m1.output[0]) or ""), 0.5):
                continue
        elif _close(_scalar(consts, m1_other), 0.5):  # x * (0.5 * (1 + f))
            m2 = only_user(m1.output[0])
            if m2 is None or m2.op_type != "Mul" or other(m2, m1.output[0]) != x:
                continue
        else:  # (x * 0.5) * (1 + f): m1 is the last Mul
            half = producer.get(m1_other)
            if half is None or half.op_type != "Mul" or only_user(half.output[0]) is not m1 \
                    or other(half, x) is None or not _close(
                        _scalar(consts, other(half, x)), 0.5):
                continue
            chain, m2 = chain[:-1] + [half], m1
        if any(index[id(n)] in removed for n in chain + [m2]):
            continue
        removed.update(index[id(n)] for n in chain)
        removed.discard(index[id(m2)])
        replace[index[id(m2)]] = helper.make_node(
            "Gelu", [x], [m2.output[0]], name=m2.name or f"{m2.output[0]}_gelu",
            approximate="tanh" if fn.op_type == "Tanh" else "none")
    if not replace:
        return proto
    nodes = [replace.get(k, n) for k, n in enumerate(all_nodes) if k not in removed]
    out = onnx.ModelProto()
    out.CopyFrom(proto)
    del out.graph.node[:]
    out.graph.node.extend(nodes)
    return out


# --- the importer's handlers -------------------------------------------------------------------

def kind_of_axes(axes: tuple[int, ...]):
    """The layout kind of a tensor whose IR axis k is ONNX axis axes[k]."""
    from .onnx import IR_FROM_ONNX, NHWC, PLAIN
    if tuple(axes) == tuple(range(len(axes))):
        return PLAIN
    if tuple(axes) == IR_FROM_ONNX:
        return NHWC
    return Permuted(tuple(axes))


class TransformerOps:
    """Handlers mixed into onnx.py's _Importer (they use its helpers)."""

    def constant_to_ir(self, data: np.ndarray, like: str) -> np.ndarray:
        """A constant in ONNX layout, broadcasting against activation `like`, in the IR layout
        of `like` (right-aligned ranks as ONNX broadcasting; a scalar stays a scalar)."""
        data = np.asarray(data, np.float32)
        if data.size == 1:
            return data.reshape(())
        axes, _ = self._axes_kind(None, None, like)
        rank = len(axes)
        if data.ndim > rank:
            raise ValueError(f"a constant of rank {data.ndim} broadcast against rank {rank}")
        return np.transpose(data.reshape((1,) * (rank - data.ndim) + data.shape), axes)

    def constant_operand(self, node, name, k: int, act: str) -> str:
        """The constant input k of an elementwise node, as an IR constant laid out as `act`."""
        try:
            data = self.constant_to_ir(self.consts[node.input[k]], act)
        except ValueError as e:
            raise self._fail(node, name, str(e)) from None
        return self._const(node.input[k], data)

    def constant_activation(self, node, name, k: int, like: str) -> str:
        """Constant input k of a node made an activation by a `constant` node, laid out as
        `like` (for kernels that read every input from the arena: concat's class token)."""
        from ..ir import Tensor
        data = np.asarray(self.consts[node.input[k]], np.float32)
        axes, kind = self._axes_kind(node, name, like)
        if data.ndim != len(axes):
            raise self._fail(node, name, f"constant '{node.input[k]}' of rank {data.ndim} "
                             f"beside a rank-{len(axes)} activation")
        onnx_shape = tuple(int(d) for d in data.shape)
        data = np.transpose(data, axes)
        value = self._const(node.input[k], data)
        out = _unique_name(self.tensors, f"{node.input[k]}_value")
        self.shapes[out] = onnx_shape
        self.tensors[out] = Tensor(out, tuple(int(d) for d in data.shape), "float32")
        self.kind[out] = kind
        self._emit(f"{name}_constant{k}", "constant", [value], [out])
        return out

    def _op_LayerNormalization(self, node, name):
        from .onnx import PLAIN, _attrs
        x = self._act_in(node, name, allow=(PLAIN,))
        a = _attrs(node)
        rank = len(self.shapes[x])
        if int(a.get("axis", -1)) % rank != rank - 1:
            raise self._fail(node, name, f"normalization from axis {a.get('axis')} of a "
                             f"rank-{rank} tensor", "only over the last axis (axis=-1)")
        if len(node.output) > 1 and any(o in self.consumers for o in node.output[1:] if o):
            raise self._fail(node, name, "the Mean / InvStdDev outputs are used")
        depth = self.shapes[x][-1]
        gamma = self._const_in(node, name, 1, "scale")
        beta = self._const_in(node, name, 2, "bias")
        beta = np.zeros(depth, np.float32) if beta is None else beta
        try:
            gamma = np.broadcast_to(np.asarray(gamma, np.float32).reshape(-1), (depth,))
            beta = np.broadcast_to(np.asarray(beta, np.float32).reshape(-1), (depth,))
        except ValueError:
            raise self._fail(node, name, f"scale / bias of shapes {np.shape(gamma)}, "
                             f"{np.shape(beta)} for {depth} channels") from None
        ins = [x, self._const(node.input[1], gamma),
               self._const(node.input[2] if len(node.input) > 2 and node.input[2]
                           else f"{name}_bias", beta)]
        self._emit(name, "layer_norm", ins, [self._out(node, name, PLAIN)],
                   epsilon=float(a.get("epsilon", 1e-5)))

    def _op_Gelu(self, node, name):
        from .onnx import _attrs
        approx = _attrs(node).get("approximate", b"none")
        approx = approx.decode() if isinstance(approx, bytes) else approx
        if approx not in ("none", "tanh"):
            raise self._fail(node, name, f"approximate='{approx}'")
        self._unary(node, name, "gelu", approximate=approx == "tanh")

    def _op_Div(self, node, name):
        c = self.consts.get(node.input[1])
        if c is None or node.input[0] in self.consts:
            raise self._fail(node, name, "division by an activation is not supported",
                             "only division by a constant (a multiplication) is")
        if np.any(np.asarray(c) == 0):
            raise self._fail(node, name, "division by zero")
        x = self._act_in(node, name, 0)
        try:
            inverse = self.constant_to_ir(1.0 / np.asarray(c, np.float64), x)
        except ValueError as e:
            raise self._fail(node, name, str(e)) from None
        self._emit(name, "mul", [x, self._const(f"{node.input[1]}_reciprocal", inverse)],
                   [self._out(node, name, self.kind[x])], act_min=None, act_max=None)

    def _op_Gather(self, node, name):
        from .onnx import _attrs
        x = self._act_in(node, name)
        index = self._const_in(node, name, 1, "indices")
        dims = self.shapes[x]
        rank = len(dims)
        axis = int(_attrs(node).get("axis", 0)) % rank
        if np.size(index) != 1 or np.ndim(index) > 1:
            raise self._fail(node, name, f"gathering indices of shape {list(np.shape(index))}",
                             "only one index (a scalar or [1]) is supported")
        i = int(np.asarray(index).reshape(-1)[0])
        i = i + dims[axis] if i < 0 else i
        if not 0 <= i < dims[axis]:
            raise self._fail(node, name, f"index {i} is out of range for size {dims[axis]}")
        in_axes, kind = self._axes_kind(node, name, x)
        ir_axis = list(in_axes).index(axis)
        ir_dims = self.tensors[x].shape
        begin = [0] * rank
        end = list(ir_dims)
        begin[ir_axis], end[ir_axis] = i, i + 1
        shrink = np.ndim(index) == 0
        if shrink:
            kept = [a for a in in_axes if a != axis]
            kind = kind_of_axes(tuple(a - (a > axis) for a in kept))
        self._emit(name, "strided_slice", [x], [self._out(node, name, kind)],
                   begin=tuple(begin), end=tuple(end), strides=(1,) * rank, begin_mask=0,
                   end_mask=0, shrink_axis_mask=(1 << ir_axis) if shrink else 0)

    def _op_Split(self, node, name):
        """q, k, v = qkv.unbind(0) / chunk: one strided_slice per output."""
        from .onnx import _attrs
        x = self._act_in(node, name)
        dims = self.shapes[x]
        a = _attrs(node)
        axis = int(a.get("axis", 0)) % len(dims)
        outs = [o for o in node.output]
        sizes = self._const_in(node, name, 1, "split") if len(node.input) > 1 else None
        sizes = a.get("split") if sizes is None else sizes
        if sizes is None:  # equal parts (the last one smaller), opset 18's num_outputs
            part = -(-dims[axis] // len(outs))
            sizes = [min(part, dims[axis] - part * j) for j in range(len(outs))]
        sizes = [int(v) for v in np.ravel(sizes)]
        if len(sizes) != len(outs) or sum(sizes) != dims[axis] or min(sizes) < 1:
            raise self._fail(node, name, f"split sizes {sizes} of axis {axis} (size "
                             f"{dims[axis]}) into {len(outs)} outputs")
        in_axes, kind = self._axes_kind(node, name, x)
        ir_axis = list(in_axes).index(axis)
        ir_dims = self.tensors[x].shape
        start = 0
        for j, (out, size) in enumerate(zip(outs, sizes)):
            begin, end = [0] * len(dims), list(ir_dims)
            begin[ir_axis], end[ir_axis] = start, start + size
            start += size
            if not out:
                continue
            y = self._activation(out, self.shapes[out], kind)
            self._emit(f"{name}_{j}" if j else name, "strided_slice", [x], [y],
                       begin=tuple(begin), end=tuple(end), strides=(1,) * len(dims),
                       begin_mask=0, end_mask=0, shrink_axis_mask=0)

    def matmul_activations(self, node, name):
        """MatMul of two activations (attention's q @ k^T and probs @ v) -> batch_matmul."""
        from .onnx import PLAIN
        a, b = (self._act_in(node, name, i, allow=(PLAIN,)) for i in (0, 1))
        if len(self.shapes[a]) < 2 or len(self.shapes[b]) < 2:
            raise self._fail(node, name, "a MatMul with a 1-D operand",
                             "give both operands at least 2 dimensions")
        self._emit(name, "batch_matmul", [a, b], [self._out(node, name, PLAIN)],
                   adj_x=False, adj_y=False)


def _unique_name(tensors: dict, base: str) -> str:
    name, i = base, 0
    while name in tensors:
        i += 1
        name = f"{base}_{i}"
    return name
