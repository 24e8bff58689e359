"""The quantized IR as a QDQ ONNX model: a portable artifact onnxruntime (or any ONNX tool) runs.

The model takes and returns float tensors in the source layout. Inside, activations are NCHW
(standard ONNX ops) and every one passes through QuantizeLinear -> DequantizeLinear with the IR's
params; weights are int8 initializers behind a per-channel DequantizeLinear (axis 0), biases int32
behind one with scale s_in * s_w. A fused activation clamp becomes a Clip after its op.

IR ops that read bytes "by their own params" (fully_connected on a 4D input, an aliased
reshape) are made explicit: the NCHW tensor is transposed to NHWC and reshaped, so the
IR's NHWC-ordered FC weights stay correct.
"""
from __future__ import annotations

import os

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from ..errors import EdgecError
from ..ir import Graph, QuantParams

OPSET = 13  # per-axis DequantizeLinear, Clip with min/max inputs
NCHW_FROM_NHWC, NHWC_FROM_NCHW = (0, 3, 1, 2), (0, 2, 3, 1)


def write_qdq_onnx(qgraph: Graph, path: str | os.PathLike | None = None) -> onnx.ModelProto:
    """Write (if `path`) and return the QDQ ONNX model of a quantized graph."""
    model = _QdqWriter(qgraph).build()
    onnx.checker.check_model(model, full_check=True)
    if path is not None:
        onnx.save(model, str(path))
    return model


def _onnx_shape(shape) -> tuple[int, ...]:
    """IR shape -> the shape of its ONNX twin (4D activations are NCHW in the QDQ model)."""
    return tuple(shape[i] for i in NCHW_FROM_NHWC) if len(shape) == 4 else tuple(shape)


def _layout_agnostic(ir_shape) -> bool:
    """NCHW and NHWC order the bytes the same way (C == 1 or H*W == 1)."""
    return len(ir_shape) == 4 and (ir_shape[3] == 1 or ir_shape[1] * ir_shape[2] == 1)


class _QdqWriter:
    def __init__(self, g: Graph):
        self.g = g
        self.nodes: list[onnx.NodeProto] = []
        self.inits: list[onnx.TensorProto] = []
        self.used: set[str] = set(g.tensors) | {n.name for n in g.nodes}
        self.value: dict[str, str] = {}  # IR activation -> ONNX name of its dequantized value

    # -- naming and emission
    def fresh(self, base: str) -> str:
        name, i = base, 0
        while name in self.used:
            i += 1
            name = f"{base}_{i}"
        self.used.add(name)
        return name

    def init(self, base: str, array: np.ndarray) -> str:
        name = self.fresh(base)
        self.inits.append(numpy_helper.from_array(np.asarray(array), name))
        return name

    def emit(self, op: str, inputs: list[str], base: str, out: str | None = None, **attrs) -> str:
        out = out or self.fresh(base)
        self.nodes.append(helper.make_node(op, inputs, [out], name=self.fresh(f"{base}_{op}"),
                                           **attrs))
        return out

    # -- quantization nodes
    def qdq(self, raw: str, t: str, out: str | None = None) -> str:
        """Quantize-dequantize `raw` with IR tensor `t`'s params; the result is t's value."""
        q = self.g.tensors[t].quant
        scale = self.init(f"{t}_scale", np.float32(q.scale))
        zp = self.init(f"{t}_zero_point", np.int8(q.zero_point))
        quantized = self.emit("QuantizeLinear", [raw, scale, zp], f"{t}_q")
        return self.emit("DequantizeLinear", [quantized, scale, zp], t,
                         out=out or self.fresh(f"{t}_dq"))

    def dequantized_const(self, name: str, onnx_data: np.ndarray, quant: QuantParams) -> str:
        """DequantizeLinear of an int8/int32 constant, per-channel over ONNX axis 0."""
        data = self.init(f"{name}_quantized", onnx_data)
        scale = self.init(f"{name}_scale", np.asarray(quant.scale, np.float32))
        zp = self.init(f"{name}_zero_point", np.zeros(np.shape(quant.scale), onnx_data.dtype))
        return self.emit("DequantizeLinear", [data, scale, zp], name, axis=0)

    def view(self, name: str, src: tuple, dst: tuple) -> str:
        """Reinterpret the ONNX twin of an IR tensor of shape `src` as IR shape `dst` (same
        bytes in the IR's NHWC order)."""
        src, dst = tuple(src), tuple(dst)
        if src == dst:
            return name
        if len(src) == 4 and not _layout_agnostic(src):
            name = self.emit("Transpose", [name], f"{name}_nhwc", perm=list(NHWC_FROM_NCHW))
        if len(dst) == 2 and len(src) == 4 and dst[0] == src[0]:
            return self.emit("Flatten", [name], f"{name}_flat", axis=1)
        if len(dst) == 4 and not _layout_agnostic(dst):
            shape = self.init(f"{name}_shape", np.array(dst, np.int64))
            nhwc = self.emit("Reshape", [name, shape], f"{name}_reshaped")
            return self.emit("Transpose", [nhwc], f"{name}_nchw", perm=list(NCHW_FROM_NHWC))
        shape = self.init(f"{name}_shape", np.array(_onnx_shape(dst), np.int64))
        return self.emit("Reshape", [name, shape], f"{name}_reshaped")

    # -- the model
    def build(self) -> onnx.ModelProto:
        g = self.g
        graph_inputs, graph_outputs = [], []
        for t in g.inputs:
            shape = g.tensors[t].shape
            nhwc_io = g.io_layout.get(t) == "NHWC" and len(shape) == 4
            graph_inputs.append(helper.make_tensor_value_info(
                t, TensorProto.FLOAT, shape if nhwc_io else _onnx_shape(shape)))
            x = self.emit("Transpose", [t], f"{t}_nchw", perm=list(NCHW_FROM_NHWC)) \
                if nhwc_io else t
            self.value[t] = self.qdq(x, t)
        for node in g.nodes:
            self.value[node.outputs[0]] = self.op(node)
        for t in g.outputs:
            shape = g.tensors[t].shape
            nhwc_io = g.io_layout.get(t) == "NHWC" and len(shape) == 4
            graph_outputs.append(helper.make_tensor_value_info(
                t, TensorProto.FLOAT, shape if nhwc_io else _onnx_shape(shape)))
            if nhwc_io:
                self.emit("Transpose", [self.value[t]], t, out=t, perm=list(NHWC_FROM_NCHW))
            elif self.value[t] != t:
                self.emit("Identity", [self.value[t]], t, out=t)
        graph = helper.make_graph(self.nodes, f"{g.meta.get('source', 'edgec')}_qdq",
                                  graph_inputs, graph_outputs, self.inits)
        return helper.make_model(graph, producer_name="edgec", ir_version=8,
                                 opset_imports=[helper.make_opsetid("", OPSET)])

    def op(self, node) -> str:
        """Emit one IR node; returns the ONNX name of its output's dequantized value."""
        g, a = self.g, node.attrs
        y = node.outputs[0]
        emitter = getattr(self, f"_{node.op}", None)
        if emitter is None:
            raise EdgecError(f"QDQ export: op '{node.op}' (node '{node.name}') has no ONNX form")
        raw, natural = emitter(node)  # ONNX name, and the IR shape its bytes have
        if node.op != "clip" and (a.get("act_min") is not None or a.get("act_max") is not None):
            raw = self._clamp(raw, a.get("act_min"), a.get("act_max"), node.name)
        raw = self.view(raw, natural, g.tensors[y].shape)
        # activations keep their IR (= source) names; an NHWC graph output's name goes to the
        # final Transpose instead
        nhwc_output = y in g.outputs and g.io_layout.get(y) == "NHWC"
        return self.qdq(raw, y, out=None if nhwc_output else y)

    def _clamp(self, x: str, lo, hi, base: str) -> str:
        inputs = [x,
                  self.init(f"{base}_min", np.float32(lo)) if lo is not None else "",
                  self.init(f"{base}_max", np.float32(hi)) if hi is not None else ""]
        while inputs[-1] == "":
            inputs.pop()
        return self.emit("Clip", inputs, f"{base}_clip")

    def _x(self, node, i=0) -> tuple[str, tuple]:
        return self.value[node.inputs[i]], self.g.tensors[node.inputs[i]].shape

    # -- one method per IR op: (ONNX output name, IR shape of its bytes)
    def _conv(self, node, w_onnx: np.ndarray, group: int):
        g, a = self.g, node.attrs
        x, xs = self._x(node)
        w = g.tensors[node.inputs[1]]
        inputs = [x, self.dequantized_const(w.name, w_onnx, w.quant)]
        if len(node.inputs) > 2 and node.inputs[2]:
            b = g.tensors[node.inputs[2]]
            inputs.append(self.dequantized_const(b.name, b.data, b.quant))
        raw = self.emit("Conv", inputs, node.name, kernel_shape=list(w_onnx.shape[2:]),
                        strides=list(a["strides"]), dilations=list(a["dilations"]),
                        pads=list(a["pads"]), group=group)
        return raw, g.tensors[node.outputs[0]].shape

    def _conv2d(self, node):
        w = self.g.tensors[node.inputs[1]].data
        return self._conv(node, w.transpose(0, 3, 1, 2), 1)  # OHWI -> OIHW

    def _depthwise_conv2d(self, node):
        w = self.g.tensors[node.inputs[1]].data
        c_in = self.g.tensors[node.inputs[0]].shape[3]
        return self._conv(node, w.transpose(3, 0, 1, 2), c_in)  # [1,KH,KW,C] -> [C,1,KH,KW]

    def _fully_connected(self, node):
        g = self.g
        x, xs = self._x(node)
        w = g.tensors[node.inputs[1]]
        c_out, c_in = w.shape
        rows = int(np.prod(xs)) // c_in
        inputs = [self.view(x, xs, (rows, c_in)), self.dequantized_const(w.name, w.data, w.quant)]
        if len(node.inputs) > 2 and node.inputs[2]:
            b = g.tensors[node.inputs[2]]
            inputs.append(self.dequantized_const(b.name, b.data, b.quant))
        return self.emit("Gemm", inputs, node.name, transB=1), (rows, c_out)

    def _add(self, node):
        a, a_shape = self._x(node, 0)
        b, b_shape = self._x(node, 1)
        return self.emit("Add", [a, self.view(b, b_shape, a_shape)], node.name), a_shape

    def _pool(self, node, op, **extra):
        x, xs = self._x(node)
        a = node.attrs
        raw = self.emit(op, [x], node.name, kernel_shape=list(a["kernel"]),
                        strides=list(a["strides"]), pads=list(a["pads"]), **extra)
        return raw, self.g.tensors[node.outputs[0]].shape

    def _max_pool2d(self, node):
        return self._pool(node, "MaxPool")

    def _avg_pool2d(self, node):
        return self._pool(node, "AveragePool", count_include_pad=0)

    def _mean(self, node):
        x, xs = self._x(node)
        if tuple(node.attrs["axes"]) != (1, 2) or len(xs) != 4:
            raise EdgecError(f"QDQ export: mean over {node.attrs['axes']} (node '{node.name}') "
                             f"is not supported; only over H, W")
        return self.emit("GlobalAveragePool", [x], node.name), (xs[0], 1, 1, xs[3])

    def _softmax(self, node):
        x, xs = self._x(node)
        beta = node.attrs.get("beta", 1.0)
        if beta != 1.0:
            x = self.emit("Mul", [x, self.init(f"{node.name}_beta", np.float32(beta))], node.name)
        return self.emit("Softmax", [x], node.name, axis=1 if len(xs) == 4 else -1), xs

    def _reshape(self, node):
        x, xs = self._x(node)
        return x, xs  # the view to the output shape is emitted by op()

    def _relu(self, node):
        x, xs = self._x(node)
        return self.emit("Relu", [x], node.name), xs

    def _clip(self, node):
        x, xs = self._x(node)
        return self._clamp(x, node.attrs.get("act_min"), node.attrs.get("act_max"), node.name), xs
