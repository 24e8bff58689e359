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
MS_DOMAIN = "com.microsoft"
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
        # int16 (attention probabilities): onnxruntime's com.microsoft Q/DQ take int16 at
        # opset 13 (the standard ops only from opset 21)
        wide = self.g.tensors[t].dtype == "int16"
        zp = self.init(f"{t}_zero_point", (np.int16 if wide else np.int8)(q.zero_point))
        domain = {"domain": MS_DOMAIN} if wide else {}
        quantized = self.emit("QuantizeLinear", [raw, scale, zp], f"{t}_q", **domain)
        return self.emit("DequantizeLinear", [quantized, scale, zp], t,
                         out=out or self.fresh(f"{t}_dq"), **domain)

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
        opsets = [helper.make_opsetid("", OPSET)]
        if any(n.domain == MS_DOMAIN for n in self.nodes):
            opsets.append(helper.make_opsetid(MS_DOMAIN, 1))
        return helper.make_model(graph, producer_name="edgec", ir_version=8,
                                 opset_imports=opsets)

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
        name = node.inputs[i]
        if name not in self.value and self.g.tensors[name].is_const:
            self.value[name] = self._const_value(name)  # add / mul / constant operands
        return self.value[name], self.g.tensors[name].shape

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

    def _binary(self, node, op: str):
        """Add / Mul: same element counts are views of one shape; otherwise NumPy
        broadcasting, lower-rank operands first reshaped to the output's rank (so their
        NCHW twins broadcast like the IR's NHWC tensors)."""
        a, a_shape = self._x(node, 0)
        b, b_shape = self._x(node, 1)
        y_shape = tuple(self.g.tensors[node.outputs[0]].shape)
        if int(np.prod(a_shape)) == int(np.prod(b_shape)) == int(np.prod(y_shape)):
            return self.emit(op, [a, self.view(b, b_shape, a_shape)], node.name), a_shape

        def full_rank(x, shape):
            shape = tuple(shape)
            return self.view(x, shape, (1,) * (len(y_shape) - len(shape)) + shape)

        return self.emit(op, [full_rank(a, a_shape), full_rank(b, b_shape)], node.name), y_shape

    def _add(self, node):
        return self._binary(node, "Add")

    def _mul(self, node):
        return self._binary(node, "Mul")

    def _logistic(self, node):
        x, xs = self._x(node)
        return self.emit("Sigmoid", [x], node.name), xs

    def _tanh(self, node):
        x, xs = self._x(node)
        return self.emit("Tanh", [x], node.name), xs

    def _hard_swish(self, node):
        x, xs = self._x(node)  # HardSwish is opset 14: x * HardSigmoid(x, 1/6, 1/2)
        gate = self.emit("HardSigmoid", [x], f"{node.name}_gate", alpha=1.0 / 6.0, beta=0.5)
        return self.emit("Mul", [x, gate], node.name), xs

    def _leaky_relu(self, node):
        x, xs = self._x(node)
        return self.emit("LeakyRelu", [x], node.name, alpha=float(node.attrs["alpha"])), xs

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

    # -- data movement: IR (NHWC) axes are mapped onto the NCHW twins of 4-D tensors
    def _pad(self, node):
        x, xs = self._x(node)
        pads = [tuple(int(v) for v in p) for p in node.attrs["paddings"]]
        if len(xs) == 4:
            pads = [pads[i] for i in NCHW_FROM_NHWC]
        onnx_pads = self.init(f"{node.name}_pads",
                              np.array([b for b, _ in pads] + [a for _, a in pads], np.int64))
        value = self.init(f"{node.name}_value", np.float32(node.attrs.get("value") or 0.0))
        raw = self.emit("Pad", [x, onnx_pads, value], node.name, mode="constant")
        return raw, self.g.tensors[node.outputs[0]].shape

    def _transpose(self, node):
        x, xs = self._x(node)
        ys = self.g.tensors[node.outputs[0]].shape
        to_ir = NHWC_FROM_NCHW if len(xs) == 4 else tuple(range(len(xs)))
        from_ir = NCHW_FROM_NHWC if len(ys) == 4 else tuple(range(len(ys)))
        perm = [int(p) for p in node.attrs["perm"]]
        onnx_perm = [to_ir[perm[from_ir[k]]] for k in range(len(ys))]
        return self.emit("Transpose", [x], node.name, perm=onnx_perm), ys

    def _concat(self, node):
        parts = [self._x(node, i) for i in range(len(node.inputs))]
        ys = self.g.tensors[node.outputs[0]].shape
        axis = int(node.attrs["axis"]) % len(ys)
        if len(ys) == 4:
            axis = NCHW_FROM_NHWC.index(axis)
        return self.emit("Concat", [x for x, _ in parts], node.name, axis=axis), ys

    def _resize_nearest(self, node):
        x, xs = self._x(node)
        ys = self.g.tensors[node.outputs[0]].shape
        align = bool(node.attrs.get("align_corners"))
        half = bool(node.attrs.get("half_pixel_centers"))
        if align and half:
            raise EdgecError(f"QDQ export: resize_nearest (node '{node.name}') with both "
                             f"align_corners and half_pixel_centers has no ONNX Resize form")
        mode, nearest = (("align_corners", "round_prefer_ceil") if align else
                         ("tf_half_pixel_for_nn", "floor") if half else ("asymmetric", "floor"))
        sizes = self.init(f"{node.name}_sizes", np.array(_onnx_shape(ys), np.int64))
        raw = self.emit("Resize", [x, "", "", sizes], node.name, mode="nearest",
                        coordinate_transformation_mode=mode, nearest_mode=nearest)
        return raw, ys

    def _strided_slice(self, node):
        from ..lower.data_movement import resolve_strided_slice
        x, xs = self._x(node)
        a = node.attrs
        axes = resolve_strided_slice(xs, a["begin"], a["end"], a["strides"],
                                     int(a.get("begin_mask", 0)), int(a.get("end_mask", 0)),
                                     int(a.get("shrink_axis_mask", 0)), bool(a.get("offset")))
        # ONNX ends are exclusive; walking backwards to index 0 needs an end below -dim
        ends = [s + c * st if s + c * st >= 0 else -(1 << 62) for s, c, st in axes]
        order = NCHW_FROM_NHWC if len(xs) == 4 else tuple(range(len(xs)))  # ONNX axis k
        inputs = [x] + [self.init(f"{node.name}_{k}", np.array([v[i] for i in order], np.int64))
                        for k, v in (("starts", [s for s, _, _ in axes]), ("ends", ends))]
        inputs.append(self.init(f"{node.name}_axes", np.arange(len(xs), dtype=np.int64)))
        inputs.append(self.init(f"{node.name}_steps",
                                np.array([axes[i][2] for i in order], np.int64)))
        # the bytes are the un-shrunk slice; op() views them as the output's shape
        return self.emit("Slice", inputs, node.name), tuple(c for _, c, _ in axes)

    # -- transformer ops (toolchain/lower/{batch_matmul,gelu,layer_norm,constant}.py)
    def _const_value(self, name: str) -> str:
        """A constant operand's value in its ONNX twin layout: int8 behind a per-tensor
        DequantizeLinear (with its zero point), or a float32 initializer."""
        t = self.g.tensors[name]
        data = np.asarray(t.data)
        if data.ndim == 4:
            data = data.transpose(NCHW_FROM_NHWC)
        if t.quant is None or t.dtype == "float32":
            return self.init(name, data.astype(np.float32))
        quantized = self.init(f"{name}_quantized", data.astype(np.int8))
        scale = self.init(f"{name}_scale", np.float32(t.quant.scale))
        zp = self.init(f"{name}_zero_point", np.int8(t.quant.zero_point))
        return self.emit("DequantizeLinear", [quantized, scale, zp], name)

    def _in_ir_layout(self, x: str, shape) -> str:
        """The ONNX twin of an IR tensor, in the IR's own axis order (4-D twins are NCHW)."""
        if len(shape) == 4 and not _layout_agnostic(shape):
            return self.emit("Transpose", [x], f"{x}_ir", perm=list(NHWC_FROM_NCHW))
        if len(shape) == 4:
            return self.emit("Reshape", [x, self.init(f"{x}_ir_shape", np.array(shape))],
                             f"{x}_ir")
        return x

    def _to_twin(self, x: str, shape, base: str) -> str:
        """Back from the IR's axis order to the ONNX twin of an IR tensor of `shape`."""
        if len(shape) == 4 and not _layout_agnostic(shape):
            return self.emit("Transpose", [x], f"{base}_twin", perm=list(NCHW_FROM_NHWC))
        if len(shape) == 4:
            return self.emit("Reshape", [x, self.init(f"{base}_twin_shape",
                                                      np.array(_onnx_shape(shape)))],
                             f"{base}_twin")
        return x

    def _batch_matmul(self, node):
        (a, sa), (b, sb) = self._x(node, 0), self._x(node, 1)
        ys = self.g.tensors[node.outputs[0]].shape
        a, b = self._in_ir_layout(a, sa), self._in_ir_layout(b, sb)
        for flag, k in (("adj_x", 0), ("adj_y", 1)):
            if node.attrs.get(flag):
                rank = len(sa if k == 0 else sb)
                perm = list(range(rank - 2)) + [rank - 1, rank - 2]
                t = self.emit("Transpose", [a if k == 0 else b], f"{node.name}_{flag}",
                              perm=perm)
                a, b = (t, b) if k == 0 else (a, t)
        raw = self.emit("MatMul", [a, b], node.name)
        return self._to_twin(raw, ys, node.name), ys

    def _gelu(self, node):
        x, xs = self._x(node)
        base = node.name
        half = self.init(f"{base}_half", np.float32(0.5))
        one = self.init(f"{base}_one", np.float32(1.0))
        if node.attrs.get("approximate"):  # 0.5 x (1 + tanh(sqrt(2 / pi) (x + 0.044715 x^3)))
            x3 = self.emit("Mul", [x, self.emit("Mul", [x, x], f"{base}_x2")], f"{base}_x3")
            inner = self.emit("Add", [x, self.emit(
                "Mul", [x3, self.init(f"{base}_c", np.float32(0.044715))], f"{base}_cx3")],
                f"{base}_inner")
            core = self.emit("Tanh", [self.emit(
                "Mul", [inner, self.init(f"{base}_k", np.float32(np.sqrt(2.0 / np.pi)))],
                f"{base}_scaled")], f"{base}_tanh")
        else:  # 0.5 x (1 + erf(x / sqrt(2)))
            core = self.emit("Erf", [self.emit(
                "Div", [x, self.init(f"{base}_sqrt2", np.float32(np.sqrt(2.0)))],
                f"{base}_div")], f"{base}_erf")
        gate = self.emit("Add", [core, one], f"{base}_gate")
        return self.emit("Mul", [self.emit("Mul", [x, gate], f"{base}_xg"), half], base), xs

    def _layer_norm(self, node):
        x, xs = self._x(node)
        base = node.name
        x = self._in_ir_layout(x, xs)
        gamma, beta = (self._const_value(node.inputs[k]) for k in (1, 2))
        mean = self.emit("ReduceMean", [x], f"{base}_mean", axes=[-1], keepdims=1)
        d = self.emit("Sub", [x, mean], f"{base}_centered")
        var = self.emit("ReduceMean", [self.emit("Mul", [d, d], f"{base}_sq")], f"{base}_var",
                        axes=[-1], keepdims=1)
        eps = node.attrs.get("epsilon")
        std = self.emit("Sqrt", [self.emit("Add", [var, self.init(
            f"{base}_eps", np.float32(1e-5 if eps is None else eps))], f"{base}_var_eps")],
            f"{base}_std")
        y = self.emit("Add", [self.emit("Mul", [self.emit("Div", [d, std], f"{base}_norm"),
                                                gamma], f"{base}_scaled"), beta], base)
        return self._to_twin(y, xs, base), xs

    def _constant(self, node):
        return self._x(node, 0)
