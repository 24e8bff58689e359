"""Pre-quantized ONNX in QDQ form -> the int8 IR, keeping the model's own quantization.

QDQ is what onnxruntime's quantize_static (QuantFormat.QDQ) and edgec's own model.int8.onnx
write: float ops with QuantizeLinear -> DequantizeLinear (Q->DQ) pairs on the activations
between them and DequantizeLinear (DQ) on int8 weights and int32 biases. Three steps:
  1. strip: each Q->DQ pair gives its activation per-tensor QuantParams and is removed; each
     DQ of an initializer becomes a float initializer holding exactly its dequantized values,
     with its integers and scales recorded. What is left is a float ONNX model with the
     source's tensor names (NHWC views of edgec's artifact rewritten as views the float
     frontend reads; a MatMul quantized before an Add kept apart from it);
  2. import that float model with the float frontend (frontend/onnx.py);
  3. quantize the IR with the recorded numbers, no calibration: weights back to their
     integers (float32(s * q) / s rounds back to q exactly for |q| < 2^24), int32 biases as
     stored, activations with their pair's params. uint8 is converted exactly (q - 128 with
     zero point - 128). A ReLU / clip with no pair before it fuses into its producer, as
     edgec's writer emits it; pure data movement with no pair after it keeps its input's
     params; any other op without a pair after it would run in float: refused. Output
     params an int8 kernel cannot write (a max pool's that differ from its input's, a
     softmax's other than 1/256) become a requantization after it, as in TFLite.

The result is an int8 graph like an int8 .tflite's (`meta["quantized"]`): the pipeline skips
PTQ. io="model" keeps the float I/O behind quantize / dequantize nodes (like TFLite's QUANTIZE
and DEQUANTIZE); io="int8" makes the int8 tensors the graph's I/O.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import onnx
from onnx import helper, numpy_helper

from ..errors import EdgecError, UnsupportedOpError
from ..ir import Graph, Node, QuantParams, Tensor
from ..quantize.tflite_int8 import SOFTMAX_OUTPUT
from .onnx import load_onnx

IO_MODES = ("model", "int8")
_QDQ_OPS = {"QuantizeLinear", "DequantizeLinear"}
# QOperator-format ops (quantize_static with QuantFormat.QOperator): not QDQ
_QOPERATOR_OPS = {"QLinearConv", "QLinearMatMul", "QLinearAdd", "QLinearMul", "ConvInteger",
                  "MatMulInteger", "QLinearGlobalAveragePool", "QLinearAveragePool",
                  "QLinearConcat", "QLinearSigmoid", "QLinearLeakyRelu", "QLinearSoftmax",
                  "QGemm", "DynamicQuantizeLinear"}
# IR ops that only move int8 values: with no Q->DQ pair on their output they keep the
# input's params (the same values on the same grid)
_MOVES = {"identity", "reshape", "transpose", "pad", "strided_slice", "resize_nearest",
          "max_pool2d"}
# IR ops whose int8 kernels need the output's params equal to the input's: a pair with
# other params after them becomes a requantization (a `quantize` node, as in TFLite)
_SAME_PARAMS = _MOVES | {"avg_pool2d"}
_FUSES_INTO = {"conv2d", "depthwise_conv2d", "fully_connected", "add", "mul", "max_pool2d",
               "avg_pool2d"}
_SOFTMAX = QuantParams.per_tensor(*SOFTMAX_OUTPUT)
_WEIGHT_AXIS = {"conv2d": 0, "depthwise_conv2d": 3, "fully_connected": 0}  # IR output channel


def is_qdq(model: onnx.ModelProto, source: str | None = None) -> bool:
    """True if the model holds QuantizeLinear / DequantizeLinear nodes; EdgecError for the
    QOperator format (QLinearConv...), which edgec does not import."""
    qop = next((n for n in model.graph.node if n.op_type in _QOPERATOR_OPS), None)
    if qop is not None:
        raise UnsupportedOpError(
            f"{source or model.graph.name or 'the model'}: {qop.op_type} node '{qop.name}': "
            f"quantized in QOperator format; edgec imports QDQ models: quantize with "
            f"quant_format=QuantFormat.QDQ")
    return any(n.op_type in _QDQ_OPS for n in model.graph.node)


@dataclass
class _Const:
    """A DequantizeLinear of an initializer: its integers (zero point removed) and scales."""

    node: str  # the DequantizeLinear's name, for messages
    ints: np.ndarray  # int64, ONNX layout: q - zero_point (weights, bias), else int8 codes
    scale: np.ndarray  # float64 holding float32 values; () per tensor or (C,) per axis
    axis: int | None  # ONNX axis of a per-axis scale
    dtype: str  # source dtype (int8, uint8, int32)
    zero_point: int  # per-tensor zero point after the uint8 -> int8 shift (int8 operands)


def load_onnx_qdq(model: onnx.ModelProto, io: str = "model", source: str | None = None) -> Graph:
    """Import a QDQ ONNX model into the int8 NHWC IR (batch 1); EdgecError on what the IR
    cannot express, naming the node."""
    if io not in IO_MODES:
        raise EdgecError(f"load_onnx_qdq: io='{io}' is not one of {', '.join(IO_MODES)}")
    source = source or model.graph.name or "<onnx model>"
    stripped, acts, consts = _Stripper(model, source).run()
    graph = load_onnx(stripped, name=source)
    graph = _Quantizer(graph, acts, consts, source).run()
    if io == "model":
        graph = _float_io(graph)
    graph.meta.update({"format": "onnx-qdq", "quantized": "int8", "io": io})
    return graph


# --- 1. strip the QDQ scaffolding -----------------------------------------------------------

class _Stripper:
    def __init__(self, model: onnx.ModelProto, source: str):
        self.m, self.source, self.g = model, source, model.graph
        self.values = {i.name: i for i in self.g.initializer}
        for n in self.g.node:  # scales / zero points may be Constant nodes
            if n.op_type == "Constant" and n.output:
                for a in n.attribute:
                    if a.name == "value":
                        self.values[n.output[0]] = a.t
        self.consumers: dict[str, list[onnx.NodeProto]] = {}
        for n in self.g.node:
            for i in n.input:
                self.consumers.setdefault(i, []).append(n)
        self.outputs = {o.name for o in self.g.output}
        self.inputs = {i.name for i in self.g.input} - set(self.values)

    def fail(self, node, why: str, fix: str = "") -> EdgecError:
        msg = f"{self.source}: {node.op_type} node '{node.name}': {why}"
        return UnsupportedOpError(msg + (f"; {fix}" if fix else ""))

    def array(self, name: str) -> np.ndarray | None:
        t = self.values.get(name)
        if t is None:
            return None
        try:
            return numpy_helper.to_array(t)
        except Exception as e:  # unknown data type, bad raw_data size
            raise EdgecError(f"{self.source}: initializer '{name}' cannot be read "
                             f"({type(e).__name__})") from None

    def params(self, node) -> tuple[np.ndarray, np.ndarray, str, int | None]:
        """(scale float64, zero point int64, dtype name, axis) of a Q or DQ node."""
        a = {x.name: helper.get_attribute_value(x) for x in node.attribute}
        if a.get("block_size", 0):
            raise self.fail(node, "blocked quantization (block_size) is not supported",
                            "use per-tensor or per-channel scales")
        scale = self.array(node.input[1]) if len(node.input) > 1 else None
        if scale is None:
            raise self.fail(node, f"scale '{node.input[1] if len(node.input) > 1 else ''}' "
                                  f"is computed at run time", "store it as an initializer")
        zp_name = node.input[2] if len(node.input) > 2 else ""
        zp = self.array(zp_name) if zp_name else None
        if zp_name and zp is None:
            raise self.fail(node, f"zero point '{zp_name}' is computed at run time",
                            "store it as an initializer")
        if zp is not None:
            elem = self.values[zp_name].data_type
        elif node.op_type == "QuantizeLinear" and a.get("output_dtype"):
            elem = a["output_dtype"]
        elif node.op_type == "DequantizeLinear" and node.input[0] in self.values:
            elem = self.values[node.input[0]].data_type
        else:
            elem = onnx.TensorProto.UINT8  # ONNX's default without a zero point
        try:
            dtype = onnx.TensorProto.DataType.Name(elem).lower()
        except ValueError:
            dtype = f"type {elem}"
        if scale.dtype.kind != "f" or not np.all(np.isfinite(scale)) or np.any(scale <= 0):
            raise self.fail(node, "scales must be finite positive floats")
        scale = np.asarray(scale, np.float32).astype(np.float64)
        zp = np.zeros(scale.shape, np.int64) if zp is None else np.asarray(zp, np.int64)
        if zp.size != scale.size or scale.ndim > 1:
            raise self.fail(node, f"{scale.size} scales but {zp.size} zero points")
        zp = zp.reshape(scale.shape)
        axis = int(a.get("axis", 1)) if scale.ndim == 1 and scale.size > 1 else None
        return scale, zp, dtype, axis

    def run(self) -> tuple[onnx.ModelProto, dict[str, QuantParams], dict[str, _Const]]:
        acts: dict[str, QuantParams] = {}
        consts: dict[str, _Const] = {}
        rename: dict[str, str] = {}
        dropped: set[int] = set()
        for node in self.g.node:
            if node.op_type in _QDQ_OPS and node.domain not in ("", "ai.onnx"):
                raise self.fail(node, f"a {node.domain} QDQ op (int16 or 4-bit quantization) "
                                      f"is not supported", "quantize with int8 (QInt8) types")
            if id(node) in dropped or node.op_type not in _QDQ_OPS:
                continue
            if node.op_type == "DequantizeLinear":
                if node.input[0] in self.values:
                    consts[node.output[0]] = self.constant(node)
                    dropped.add(id(node))
                    continue
                raise self.fail(node, f"it reads '{node.input[0]}', which no QuantizeLinear "
                                      f"produces (an int8 graph input?)",
                                "edgec imports QDQ models with float inputs")
            x, params, dqs = self.pair(node)
            canonical = next((d.output[0] for d in dqs if d.output[0] in self.outputs), x)
            if x in self.inputs and canonical != x:
                raise self.fail(node, f"graph input '{x}' goes straight to graph output "
                                      f"'{canonical}'; nothing to compile")
            old = acts.get(canonical)
            if old is not None and not _same(old, params):
                raise self.fail(node, f"'{x}' is quantized twice with different params")
            acts[canonical] = params
            for name in [x] + [d.output[0] for d in dqs]:
                if name != canonical:
                    rename[name] = canonical
            dropped.update(id(n) for n in [node, *dqs])
        kept = []
        for node in self.g.node:
            if id(node) in dropped:
                continue
            n = onnx.NodeProto()
            n.CopyFrom(node)
            n.input[:] = [rename.get(i, i) for i in node.input]
            n.output[:] = [rename.get(o, o) for o in node.output]
            kept.append(n)
        kept = self.separate_matmul_add(kept, acts)
        inits = [i for i in self.g.initializer]
        kept = self.channels_last_views(kept, inits)
        inits += [numpy_helper.from_array(self.dequantized(c), name)
                  for name, c in consts.items()]  # (checked finite in constant())
        used = {i for n in kept for i in n.input} | self.outputs
        graph = helper.make_graph(kept, self.g.name or self.source, list(self.g.input),
                                  list(self.g.output), [i for i in inits if i.name in used])
        proto = helper.make_model(graph, opset_imports=list(self.m.opset_import),
                                  producer_name=self.m.producer_name,
                                  ir_version=self.m.ir_version)
        return proto, acts, consts

    def separate_matmul_add(self, nodes: list, acts: dict) -> list:
        """A MatMul whose output is quantized before an Add: an Identity between them, so
        the float frontend does not absorb the Add as the layer's bias (the model rounds
        in between; the Add stays an int8 add)."""
        out = []
        taken = {o for n in nodes for o in n.output} | {i for n in nodes for i in n.input}
        for n in nodes:
            out.append(n)
            y = n.output[0] if n.output else ""
            if n.op_type != "MatMul" or y not in acts:
                continue
            users = [u for u in nodes if y in u.input]
            if not any(u.op_type == "Add" for u in users):
                continue
            mid, k = f"{y}_quantized", 0
            while mid in taken:
                k += 1
                mid = f"{y}_quantized_{k}"
            taken.add(mid)
            for u in users:
                u.input[:] = [mid if i == y else i for i in u.input]
            out.append(helper.make_node("Identity", [y], [mid], name=f"{n.name}_quantized"))
        return out

    def channels_last_views(self, nodes: list, inits: list) -> list:
        """Transpose(perm 0,2,3,1) read only by Reshape / Flatten (edgec's artifact writes an
        NHWC-ordered view of an NCHW map so): as Reshape [N, C, H*W] -> Transpose(0, 2, 1),
        the same values in the same order, which the float frontend reads as a view."""
        names = {o for n in nodes for o in n.output} | {i for n in nodes for i in n.input} | \
            {i.name for i in inits}
        out = []
        for n in nodes:
            perm = next((list(helper.get_attribute_value(a)) for a in n.attribute
                         if a.name == "perm"), None)
            users = [u for u in nodes if n.output and n.output[0] in u.input]
            flat_ok = all(u.op_type == "Reshape" and list(u.input[:1]) == [n.output[0]] or
                          u.op_type == "Flatten" and
                          {a.name: a.i for a in u.attribute}.get("axis", 1) in (0, 1)
                          for u in users)
            if n.op_type != "Transpose" or perm != [0, 2, 3, 1] or not users or not flat_ok \
                    or n.output[0] in self.outputs:
                out.append(n)
                continue
            shape, mid = f"{n.output[0]}_nchw_flat_shape", f"{n.output[0]}_nchw_flat"
            while shape in names or mid in names:
                shape, mid = f"{shape}_", f"{mid}_"
            names.update((shape, mid))
            inits.append(numpy_helper.from_array(np.array([0, 0, -1], np.int64), shape))
            out.append(helper.make_node("Reshape", [n.input[0], shape], [mid],
                                        name=f"{n.name}_flat"))
            out.append(helper.make_node("Transpose", [mid], list(n.output), name=n.name,
                                        perm=[0, 2, 1]))
        return out

    def pair(self, q) -> tuple[str, QuantParams, list]:
        """A QuantizeLinear and the DequantizeLinear(s) reading it: (the float tensor, its
        int8 params, the DQ nodes)."""
        x = q.input[0]
        if x in self.values:
            raise self.fail(q, f"it quantizes the constant '{x}' at run time",
                            "store the constant as an int8 initializer behind a "
                            "DequantizeLinear")
        if x in self.outputs:
            raise self.fail(q, f"graph output '{x}' is the float value before it",
                            "make the DequantizeLinear's output the graph output")
        scale, zp, dtype, axis = self.params(q)
        if axis is not None:
            raise self.fail(q, f"activation '{x}' has {scale.size} scales (per-axis)",
                            "edgec needs per-tensor activation quantization")
        if dtype not in ("int8", "uint8"):
            raise self.fail(q, f"{dtype} activations are not supported",
                            "quantize activations to int8 (QInt8) or uint8 (QUInt8)")
        dqs = self.consumers.get(q.output[0], [])
        if q.output[0] in self.outputs or not dqs or \
                any(d.op_type != "DequantizeLinear" or d.input[0] != q.output[0] for d in dqs):
            other = next((d for d in dqs if d.op_type != "DequantizeLinear"), None)
            what = f"feeds {other.op_type} node '{other.name}'" if other else \
                "is a graph output or unused"
            raise self.fail(q, f"its int8 output {what}, not a DequantizeLinear",
                            "edgec imports QuantizeLinear -> DequantizeLinear pairs")
        for d in dqs:
            s2, z2, t2, _ = self.params(d)
            if s2.shape != scale.shape or not np.array_equal(s2, scale) or \
                    not np.array_equal(z2, zp) or t2 != dtype:
                raise self.fail(d, "its scale / zero point differ from those of QuantizeLinear "
                                   f"'{q.name}'", "a QDQ pair must use the same params")
        zero = int(zp.reshape(())) - (128 if dtype == "uint8" else 0)  # exact: q - 128
        return x, QuantParams.per_tensor(float(scale.reshape(())), zero), dqs

    def constant(self, dq) -> _Const:
        """A DequantizeLinear of an initializer (weights, bias or another constant)."""
        data = self.array(dq.input[0])
        scale, zp, dtype, axis = self.params(dq)
        if dtype not in ("int8", "uint8", "int32"):
            raise self.fail(dq, f"{dtype} constant '{dq.input[0]}' is not supported",
                            "quantize weights to int8 and biases to int32")
        if data.dtype.name != dtype:
            raise self.fail(dq, f"constant '{dq.input[0]}' is {data.dtype.name} but its zero "
                                f"point is {dtype}")
        if axis is not None:
            axis = axis % max(data.ndim, 1)
            if data.ndim == 0 or data.shape[axis] != scale.size:
                raise self.fail(dq, f"{scale.size} scales along axis {axis} of a constant of "
                                    f"shape {list(data.shape)}")
        scale = scale.reshape(()) if axis is None else scale
        zp = zp.reshape(()) if axis is None else zp
        shape = [1] * data.ndim
        if axis is not None:
            shape[axis] = -1
        ints = data.astype(np.int64) - zp.reshape(shape)
        # weights: symmetric int8, exactly (uint8 with zero point 128 is int8 shifted by 128)
        roles = self.roles(dq.output[0])
        if any(r[0] == "weight" for r in roles):
            if np.any(zp != (128 if dtype == "uint8" else 0)) or dtype == "int32":
                raise self.fail(dq, f"{dtype} weights '{dq.input[0]}' with zero point(s) "
                                    f"{np.unique(zp)[:4].tolist()} are not symmetric int8",
                                "quantize weights symmetrically to int8 (QInt8, zero point 0)")
            for _, node, out_axis in roles:
                if axis is not None and axis != out_axis:
                    raise self.fail(dq, f"weights of {node.op_type} node '{node.name}' are "
                                        f"quantized along axis {axis}, not the output-channel "
                                        f"axis {out_axis}", "use per-channel scales over the "
                                        "output channels, or one scale per tensor")
        if any(r[0] == "bias" for r in roles) and (dtype != "int32" or np.any(zp != 0)):
            raise self.fail(dq, f"bias '{dq.input[0]}' is {dtype} with zero point(s) "
                                f"{np.unique(zp)[:4].tolist()}; edgec needs an int32 bias with "
                                f"zero point 0")
        zero = 0
        if not roles and dtype != "int32":  # an add / mul / concat operand: per tensor int8
            if axis is not None:
                raise self.fail(dq, f"constant '{dq.input[0]}' has per-axis scales",
                                "only weights may be quantized per channel")
            zero = int(zp) - (128 if dtype == "uint8" else 0)
            ints = ints + zero
        c = _Const(dq.name, ints, scale, axis, dtype, zero)
        if not np.all(np.isfinite(self.dequantized(c))):
            raise self.fail(dq, f"constant '{dq.input[0]}' times its scales overflows float32")
        return c

    def roles(self, name: str) -> list[tuple[str, onnx.NodeProto, int]]:
        """How layers read a dequantized constant: ("weight", node, its ONNX output-channel
        axis) or ("bias", node, 0)."""
        roles = []
        for n in self.consumers.get(name, []):
            a = {x.name: helper.get_attribute_value(x) for x in n.attribute}
            if n.op_type == "Conv" and list(n.input[1:2]) == [name]:
                roles.append(("weight", n, 0))
            elif n.op_type == "Gemm" and list(n.input[1:2]) == [name]:
                if a.get("alpha", 1.0) != 1.0 or a.get("beta", 1.0) != 1.0:
                    raise self.fail(n, f"alpha={a.get('alpha', 1.0)}, beta="
                                       f"{a.get('beta', 1.0)} would rescale the int8 weights "
                                       f"and int32 bias", "export Gemm with alpha = beta = 1")
                roles.append(("weight", n, 0 if a.get("transB", 0) else 1))
            elif n.op_type == "MatMul" and list(n.input[1:2]) == [name]:
                roles.append(("weight", n, 1))
            elif n.op_type in ("Conv", "Gemm") and list(n.input[2:3]) == [name]:
                roles.append(("bias", n, 0))
        return roles

    def dequantized(self, c: _Const) -> np.ndarray:
        """ONNX's own DequantizeLinear result: (q - zp) * scale rounded once to float32."""
        if c.axis is None:
            real = (c.ints - c.zero_point) * float(c.scale)
        else:
            shape = [1] * c.ints.ndim
            shape[c.axis] = -1
            real = c.ints * c.scale.reshape(shape)
        with np.errstate(over="ignore"):  # an absurd scale: inf, refused by the caller
            return np.asarray(real, np.float64).astype(np.float32)


def _same(a: QuantParams, b: QuantParams) -> bool:
    return float(np.float32(a.scale)) == float(np.float32(b.scale)) and \
        int(a.zero_point) == int(b.zero_point)


# --- 3. quantize the imported float IR with the recorded numbers ----------------------------

class _Quantizer:
    def __init__(self, graph: Graph, acts: dict[str, QuantParams], consts: dict[str, _Const],
                 source: str):
        self.g, self.acts, self.consts, self.source = graph.copy(), acts, consts, source
        self.params: dict[str, QuantParams] = {}

    def fail(self, node: Node, why: str, fix: str = "") -> EdgecError:
        msg = f"{self.source}: {node.op} node '{node.name}': {why}"
        return UnsupportedOpError(msg + (f"; {fix}" if fix else ""))

    def run(self) -> Graph:
        g = self.g
        self.fuse_activations()
        for name in g.inputs:
            if name not in self.acts:
                raise EdgecError(f"{self.source}: graph input '{name}' is not quantized (no "
                                 f"QuantizeLinear -> DequantizeLinear follows it)")
            self.params[name] = self.acts[name]
        for node in list(g.nodes):
            self.node(node)
        for name in g.outputs:
            if name not in self.params:
                raise EdgecError(f"{self.source}: graph output '{name}' is not quantized")
        for name, qp in self.params.items():
            t = g.tensors[name]
            g.tensors[name] = Tensor(name, t.shape, "int8", None, qp)
        g.meta = {**g.meta, "quantized": "int8"}
        return g

    def fuse_activations(self) -> None:
        """ReLU / clip right after a layer with no Q->DQ pair between them (edgec's writer
        puts a fused clamp there) becomes that layer's clamp; with a pair between them, it
        stays an int8 op of its own, as the model rounds twice."""
        g = self.g
        for act in [n for n in g.nodes if n.op in ("relu", "clip")]:
            x = act.inputs[0]
            producer = g.producer(x)
            if x in self.acts or producer is None or producer.op not in _FUSES_INTO or \
                    x in g.outputs or len(g.consumers(x)) != 1:
                continue
            lo, hi = (0.0, None) if act.op == "relu" else (act.attrs.get("act_min"),
                                                          act.attrs.get("act_max"))
            old_lo, old_hi = producer.attrs.get("act_min"), producer.attrs.get("act_max")
            producer.attrs["act_min"] = lo if old_lo is None else old_lo if lo is None \
                else max(lo, old_lo)
            producer.attrs["act_max"] = hi if old_hi is None else old_hi if hi is None \
                else min(hi, old_hi)
            producer.outputs[0] = act.outputs[0]
            del g.tensors[x]
            g.nodes.remove(act)

    def node(self, node: Node) -> None:
        if node.op == "batch_norm":
            raise self.fail(node, "BatchNormalization in a QDQ model is not supported",
                            "fold it into the convolution before quantizing "
                            "(onnxruntime.quantization.quant_pre_process)")
        y = node.outputs[0]
        x = node.inputs[0] if node.inputs else ""
        if node.op in _SAME_PARAMS and x in self.params:
            own = self.acts.get(y)
            self.params[y] = self.params[x]
            if own is None and node.op not in _MOVES:
                raise self.float_op(node, y)
            if own is not None and not _same(own, self.params[x]):
                self.requantize(node, own)
        elif node.op == "constant":  # a constant copied into the arena: its own params
            c = self.record(node, node.inputs[0])
            self.params[y] = QuantParams.per_tensor(float(c.scale), c.zero_point)
        elif y in self.acts:
            self.params[y] = self.acts[y]
            if node.op == "softmax" and not _same(self.acts[y], _SOFTMAX):
                self.params[y] = _SOFTMAX  # the only int8 softmax output (TFLite's), then
                self.requantize(node, self.acts[y])  # the model's (onnxruntime: 1/255)
        else:
            raise self.float_op(node, y)
        if node.op in _WEIGHT_AXIS:
            self.layer(node)
        else:
            self.constants(node)

    def float_op(self, node: Node, y: str) -> EdgecError:
        return self.fail(node, f"its output '{y}' is left in float (no QuantizeLinear -> "
                               f"DequantizeLinear pair follows it) between quantized ops",
                         "quantize every op of the model (do not exclude it from "
                         "quantization)")

    def requantize(self, node: Node, own: QuantParams) -> None:
        """Output params `own` the op's kernel cannot write (it copies values, or it is a
        softmax): the op writes the params set so far and a requantization follows."""
        g, y = self.g, node.outputs[0]
        mid = g.unique_name(f"{y}_requantize_in")
        g.tensors[mid] = Tensor(mid, g.tensors[y].shape, "float32")
        self.params[mid] = self.params[y]
        self.params[y] = own
        node.outputs[0] = mid
        g.nodes.insert(g.nodes.index(node) + 1,
                       Node(f"{node.name}_requantize", "quantize", [mid], [y]))

    def record(self, node: Node, name: str) -> _Const:
        c = self.consts.get(name)
        base, _, k = name.rpartition("_")
        if c is None and k.isdigit():  # the frontend's copy of a constant in another layout
            c = self.consts.get(base)
        if c is None:
            raise self.fail(node, f"constant '{name}' is float",
                            "a QDQ model stores it as an int8 (bias: int32) initializer "
                            "behind a DequantizeLinear")
        return c

    def layer(self, node: Node) -> None:
        """Weights to their integers per output channel, the int32 bias as stored."""
        g = self.g
        w = g.tensors[node.inputs[1]]
        c = self.record(node, w.name)
        axis = _WEIGHT_AXIS[node.op]
        scale = np.asarray(c.scale, np.float64)
        if scale.size > 1 and scale.size != w.shape[axis]:
            raise self.fail(node, f"weights '{w.name}' have {scale.size} scales for "
                                  f"{w.shape[axis]} output channels")
        shape = [1] * len(w.shape)
        shape[axis] = -1
        with np.errstate(over="ignore", under="ignore"):
            ratio = w.data.astype(np.float64) / scale.reshape(shape if scale.size > 1 else ())
        ints = np.round(ratio)
        if not (np.all(np.abs(ratio - ints) <= 1e-3) and np.all((ints >= -128) & (ints <= 127))):
            raise self.fail(node, f"weights '{w.name}' do not map back onto their int8 values")
        wq = QuantParams(scale, np.zeros(scale.shape, np.int64), axis if scale.size > 1 else None)
        g.tensors[w.name] = Tensor(w.name, w.shape, "int8", ints.astype(np.int8), wq)
        if len(node.inputs) > 2 and node.inputs[2]:
            b = g.tensors[node.inputs[2]]
            cb = self.record(node, b.name)
            if cb.dtype != "int32":
                raise self.fail(node, f"bias '{b.name}' is {cb.dtype}", "store it as int32 "
                                      "with scale input_scale * weight_scale")
            want = float(np.float32(self.params[node.inputs[0]].scale)) * \
                np.broadcast_to(scale, (b.shape[0],))
            got = np.broadcast_to(cb.scale, (b.shape[0],))
            if not np.allclose(got, want, rtol=1e-5, atol=0):
                k = int(np.argmax(np.abs(got - want) / want))
                raise self.fail(node, f"bias '{b.name}' has scale {got[k]:.6g} in channel {k}, "
                                      f"not input_scale * weight_scale = {want[k]:.6g}",
                                "quantize the bias with the input and weight scales")
            data = np.broadcast_to(cb.ints.reshape(-1), b.shape)
            if np.any(np.abs(data) > np.iinfo(np.int32).max):
                raise self.fail(node, f"bias '{b.name}' does not fit int32")
            g.tensors[b.name] = Tensor(b.name, b.shape, "int32",
                                       np.ascontiguousarray(data, np.int32),
                                       QuantParams(want, np.zeros(want.shape, np.int64), 0))

    def constants(self, node: Node) -> None:
        """Constant operands (add / mul, a `constant` node's data) as int8 with their own
        per-tensor params; layer_norm's gamma and beta stay float32 (its lowering folds them)."""
        g = self.g
        for k, name in enumerate(node.inputs):
            t = g.tensors.get(name)
            if t is None or not t.is_const or t.dtype != "float32":
                continue
            if node.op == "layer_norm" and k > 0 and name not in self.consts:
                continue
            c = self.record(node, name)
            if c.axis is not None or c.dtype == "int32":
                raise self.fail(node, f"constant '{name}' is not per-tensor int8")
            qp = QuantParams.per_tensor(float(c.scale), c.zero_point)
            q = np.round(t.data.astype(np.float64) / float(c.scale)) + c.zero_point
            new = g.unique_name(f"{name}_int8")
            g.tensors[new] = Tensor(new, t.shape, "int8",
                                    np.clip(q, -128, 127).astype(np.int8).reshape(t.shape), qp)
            node.inputs[k] = new
        for name in {t for t in node.inputs if t in g.tensors and g.tensors[t].is_const
                     and g.tensors[t].dtype == "float32"}:
            if not g.consumers(name):
                del g.tensors[name]


def _float_io(g: Graph) -> Graph:
    """io="model": the graph takes and gives float, quantized / dequantized inside (the
    model's own boundary QuantizeLinear / DequantizeLinear)."""
    g = g.copy()
    for name in list(g.inputs):
        t = g.tensors[name]
        q = g.unique_name(f"{name}_int8")
        for n in g.consumers(name):
            n.inputs = [q if i == name else i for i in n.inputs]
        g.tensors[q] = Tensor(q, t.shape, "int8", None, t.quant)
        g.tensors[name] = Tensor(name, t.shape, "float32")
        g.nodes.insert(0, Node(f"{name}_quantize", "quantize", [name], [q]))
    for name in list(g.outputs):
        t = g.tensors[name]
        q = g.unique_name(f"{name}_int8")
        producer = g.producer(name)
        producer.outputs = [q if o == name else o for o in producer.outputs]
        for n in g.consumers(name):
            n.inputs = [q if i == name else i for i in n.inputs]
        g.tensors[q] = Tensor(q, t.shape, "int8", None, t.quant)
        g.tensors[name] = Tensor(name, t.shape, "float32")
        g.nodes.append(Node(f"{name}_dequantize", "dequantize", [q], [name]))
    return g
