"""TFLite frontend: a .tflite flatbuffer -> the NHWC IR (toolchain/ir.py).

TFLite is already NHWC with the IR's weight layouts (conv [C_OUT,KH,KW,C_IN], depthwise
[1,KH,KW,C_OUT], fully connected [C_OUT,C_IN]), so import is a translation, not a conversion.
Two steps, each small:
  1. decode: read the flatbuffer with the `tflite` schema bindings into plain records
     (tensors with their data and quantization, operators with their options). Every
     flatbuffer access happens here, so a truncated or corrupt file fails in one place,
     as an EdgecError naming the file;
  2. translate: operator by operator into IR ops (toolchain/ops.py), computing explicit
     padding exactly as TFLite's ComputePaddingHeightWidth does.

An int8 model keeps its quantization exactly (scales are float32 in the file, widened to
float64 here without rounding), so the pipeline skips PTQ (`graph.meta["quantized"]`).
A float model becomes a float IR for edgec's own PTQ; a *hybrid* (dynamic-range) model, with
int8 weights dequantized at run time, becomes a float IR with the weights dequantized here.
A 16x8 model (int16 activations, int8 weights, int64 bias) is imported as it is, for the ops
with a 16x8 lowering (S16_OPS, toolchain/lower/s16.py); others reading int16 are rejected.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import EdgecError, UnsupportedOpError
from ..ir import Graph, Node, QuantParams, Tensor

# TFLite builtin op -> IR op. The handlers are the _Importer._op_<TFLITE_NAME> methods.
OP_MAP = {
    "CONV_2D": "conv2d",
    "DEPTHWISE_CONV_2D": "depthwise_conv2d",
    "FULLY_CONNECTED": "fully_connected",
    "ADD": "add",
    "MUL": "mul",
    "AVERAGE_POOL_2D": "avg_pool2d",
    "MAX_POOL_2D": "max_pool2d",
    "MEAN": "mean",
    "SOFTMAX": "softmax",
    "RESHAPE": "reshape",
    "PAD": "pad",
    "PADV2": "pad",
    "TRANSPOSE": "transpose",
    "CONCATENATION": "concat",
    "RESIZE_NEAREST_NEIGHBOR": "resize_nearest",
    "STRIDED_SLICE": "strided_slice",
    "SQUEEZE": "reshape",
    "RELU": "relu",
    "RELU6": "clip",
    "RELU_N1_TO_1": "clip",
    "LOGISTIC": "logistic",
    "TANH": "tanh",
    "HARD_SWISH": "hard_swish",
    "LEAKY_RELU": "leaky_relu",
    "BATCH_MATMUL": "batch_matmul",
    "GELU": "gelu",
    "QUANTIZE": "quantize",
    "DEQUANTIZE": "dequantize",
}
SUPPORTED = ", ".join(sorted(OP_MAP))
# Ops that may read or write int16 activations (16x8 models); RESHAPE/SQUEEZE are views.
S16_OPS = ("QUANTIZE", "DEQUANTIZE", "FULLY_CONNECTED", "CONV_2D", "BATCH_MATMUL", "ADD",
           "MUL", "SOFTMAX", "RESHAPE", "SQUEEZE")
IO_MODES = ("model", "int8")
_QUANTIZE_PAIRS = {("float32", "int8"), ("float32", "int16"), ("int8", "int8"),
                   ("int8", "int16"), ("int16", "int8"), ("int16", "int16")}

# TensorType enum (schema.fbs) -> numpy dtype (little-endian, as stored in buffers).
_DTYPES = {0: "float32", 1: "float16", 2: "int32", 3: "uint8", 4: "int64", 5: "string",
           6: "bool", 7: "int16", 8: "complex64", 9: "int8", 10: "float64", 11: "complex128",
           12: "uint64", 13: "resource", 14: "variant", 15: "uint32", 16: "uint16",
           17: "int4", 18: "bfloat16"}
_NUMPY = {"float32": "<f4", "float16": "<f2", "int32": "<i4", "uint8": "u1", "int64": "<i8",
          "int16": "<i2", "int8": "i1", "float64": "<f8", "bool": "?"}

# Padding enum: SAME = 0, VALID = 1. ActivationFunctionType -> (act_min, act_max) real units.
_SAME, _VALID = 0, 1
_FUSED = {0: (None, None), 1: (0.0, None), 2: (-1.0, 1.0), 3: (0.0, 6.0)}
_FUSED_NAMES = {0: "NONE", 1: "RELU", 2: "RELU_N1_TO_1", 3: "RELU6", 4: "TANH", 5: "SIGN_BIT"}

# Options read per options table (schema field names as the bindings spell them).
_OPTION_FIELDS = {
    "Conv2DOptions": ("Padding", "StrideW", "StrideH", "FusedActivationFunction",
                      "DilationWFactor", "DilationHFactor"),
    "DepthwiseConv2DOptions": ("Padding", "StrideW", "StrideH", "DepthMultiplier",
                               "FusedActivationFunction", "DilationWFactor", "DilationHFactor"),
    "FullyConnectedOptions": ("FusedActivationFunction", "WeightsFormat", "KeepNumDims",
                              "AsymmetricQuantizeInputs"),
    "AddOptions": ("FusedActivationFunction", "PotScaleInt16"),
    "MulOptions": ("FusedActivationFunction",),
    "LeakyReluOptions": ("Alpha",),
    "Pool2DOptions": ("Padding", "StrideW", "StrideH", "FilterWidth", "FilterHeight",
                      "FusedActivationFunction"),
    "ReducerOptions": ("KeepDims",),
    "ConcatenationOptions": ("Axis", "FusedActivationFunction"),
    "ResizeNearestNeighborOptions": ("AlignCorners", "HalfPixelCenters"),
    "StridedSliceOptions": ("BeginMask", "EndMask", "EllipsisMask", "NewAxisMask",
                            "ShrinkAxisMask", "Offset"),
    "SoftmaxOptions": ("Beta",),
    "BatchMatMulOptions": ("AdjX", "AdjY", "AsymmetricQuantizeInputs"),
    "GeluOptions": ("Approximate",),
    "ReshapeOptions": (),
    "SqueezeOptions": (),
}
# Which options table each supported op carries.
_OPTIONS_OF = {"CONV_2D": "Conv2DOptions", "DEPTHWISE_CONV_2D": "DepthwiseConv2DOptions",
               "FULLY_CONNECTED": "FullyConnectedOptions", "ADD": "AddOptions",
               "MUL": "MulOptions", "LEAKY_RELU": "LeakyReluOptions",
               "AVERAGE_POOL_2D": "Pool2DOptions", "MAX_POOL_2D": "Pool2DOptions",
               "MEAN": "ReducerOptions", "SOFTMAX": "SoftmaxOptions",
               "CONCATENATION": "ConcatenationOptions",
               "RESIZE_NEAREST_NEIGHBOR": "ResizeNearestNeighborOptions",
               "STRIDED_SLICE": "StridedSliceOptions",
               "BATCH_MATMUL": "BatchMatMulOptions", "GELU": "GeluOptions"}
# Ops that run other subgraphs.
_CONTROL_FLOW = {"IF", "WHILE", "CALL", "CALL_ONCE"}


def load_tflite(path: str | os.PathLike, io: str = "model") -> Graph:
    """Import a .tflite model into the NHWC IR.

    io="model" keeps the model's own inputs/outputs (float I/O of an int8 model stays float,
    behind quantize/dequantize nodes); io="int8" drops a QUANTIZE right after a float graph
    input and a DEQUANTIZE right before a float graph output, so the graph takes and gives
    int8 directly. Raises EdgecError (UnsupportedOpError for ops) on anything it can't import.
    """
    if io not in IO_MODES:
        raise EdgecError(f"load_tflite: io='{io}' is not one of {', '.join(IO_MODES)}")
    path = Path(path)
    source = str(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise EdgecError(f"'{source}': no such file; pass the path of a .tflite model") from None
    except OSError as e:
        raise EdgecError(f"'{source}': cannot read the file ({e.strerror or e})") from None
    model = decode(data, source)
    graph = _Importer(model, source).run()
    if io == "int8":
        graph = _int8_io(graph, source)
    graph.meta["io"] = io
    return graph


# --- 1. decode ------------------------------------------------------------------------------

@dataclass
class TensorRec:
    index: int
    name: str
    shape: tuple[int, ...]
    dtype: str
    data: np.ndarray | None  # constant data (a buffer with bytes), else None
    scale: np.ndarray | None  # float64 [n] or None when unquantized
    zero_point: np.ndarray | None  # int64 [n]
    quantized_dimension: int
    sparse: bool = False
    variable: bool = False


@dataclass
class OpRec:
    index: int
    name: str  # builtin name (e.g. "CONV_2D"), or "CUSTOM"
    custom_code: str | None
    inputs: list[int]  # tensor indices; -1 marks an absent optional input
    outputs: list[int]
    options: dict = field(default_factory=dict)


@dataclass
class ModelRec:
    version: int
    description: str
    num_subgraphs: int
    tensors: list[TensorRec]
    ops: list[OpRec]
    inputs: list[int]
    outputs: list[int]


def decode(data: bytes, source: str = "<bytes>") -> ModelRec:
    """Read the flatbuffer into plain records; EdgecError if it is not a readable .tflite."""
    if len(data) < 8 or data[4:8] != b"TFL3":
        what = "empty" if not data else f"{len(data)} bytes without the 'TFL3' identifier"
        raise EdgecError(f"'{source}' is not a TFLite model ({what}); pass a .tflite "
                         f"flatbuffer as written by the TFLite converter")
    try:
        return _decode(data, source)
    except EdgecError:
        raise
    except Exception as e:  # flatbuffers raises IndexError/struct.error/... on bad offsets
        raise EdgecError(f"'{source}' is a truncated or corrupt TFLite file ({type(e).__name__}"
                         f" while reading the flatbuffer); re-export or re-download it"
                         ) from None


def _count(n: int, data: bytes, what: str) -> int:
    """A vector length read from the file, sanity-checked (each element takes >= 4 bytes)."""
    if n < 0 or 4 * n > len(data):
        raise ValueError(f"{what} count {n} exceeds the file size")
    return n


def _decode(data: bytes, source: str) -> ModelRec:
    import tflite  # the maintained schema bindings (pip install tflite)
    from tflite.utils import BUILTIN_OPCODE2NAME

    m = tflite.Model.GetRootAsModel(data, 0)
    nsub = _count(m.SubgraphsLength(), data, "subgraph")
    if nsub == 0:
        raise EdgecError(f"'{source}': the model has no subgraph; nothing to compile")
    sg = m.Subgraphs(0)
    buffers = []
    for b in range(_count(m.BuffersLength(), data, "buffer")):
        buf = m.Buffers(b)
        raw = b""
        if buf is not None:
            if buf.Offset() > 1:  # large models keep buffers after the flatbuffer
                off, size = int(buf.Offset()), int(buf.Size())
                if off + size > len(data):
                    raise ValueError("buffer outside the file")
                raw = bytes(data[off:off + size])
            elif buf.DataLength():
                raw = buf.DataAsNumpy().tobytes()
        buffers.append(raw)

    tensors = []
    for i in range(_count(sg.TensorsLength(), data, "tensor")):
        t = sg.Tensors(i)
        dtype = _DTYPES.get(t.Type(), f"type {t.Type()}")
        shape = tuple(int(d) for d in t.ShapeAsNumpy()) if t.ShapeLength() else ()
        raw = buffers[t.Buffer()] if 0 <= t.Buffer() < len(buffers) else b""
        arr = None
        if raw:
            if dtype not in _NUMPY:
                raise EdgecError(f"'{source}': constant tensor #{i} has dtype {dtype}, which "
                                 f"edgec cannot read; edgec imports int8 or float32 models")
            arr = np.frombuffer(raw, dtype=_NUMPY[dtype])
            if arr.size != int(np.prod(shape, dtype=np.int64)):
                raise ValueError(f"tensor #{i}: {arr.size} values for shape {shape}")
            arr = arr.reshape(shape).astype(np.dtype(dtype))  # a native-endian copy
        scale = zp = None
        qdim = 0
        q = t.Quantization()
        if q is not None and q.ScaleLength():
            scale = q.ScaleAsNumpy().astype(np.float64)
            zp = (q.ZeroPointAsNumpy().astype(np.int64) if q.ZeroPointLength()
                  else np.zeros(scale.size, np.int64))
            qdim = int(q.QuantizedDimension())
        name = t.Name().decode("utf-8", "replace") if t.Name() is not None else ""
        tensors.append(TensorRec(i, name, shape, dtype, arr, scale, zp, qdim,
                                 sparse=t.Sparsity() is not None, variable=bool(t.IsVariable())))

    codes = []
    for c in range(_count(m.OperatorCodesLength(), data, "operator code")):
        oc = m.OperatorCodes(c)
        code = max(int(oc.BuiltinCode()), int(oc.DeprecatedBuiltinCode()))
        custom = oc.CustomCode()
        codes.append(("CUSTOM", custom.decode("utf-8", "replace")) if code == 32 else
                     (BUILTIN_OPCODE2NAME.get(code, f"BUILTIN_{code}"), None))

    ops = []
    for i in range(_count(sg.OperatorsLength(), data, "operator")):
        op = sg.Operators(i)
        name, custom = codes[op.OpcodeIndex()]
        inputs = [int(v) for v in op.InputsAsNumpy()] if op.InputsLength() else []
        outputs = [int(v) for v in op.OutputsAsNumpy()] if op.OutputsLength() else []
        for v in inputs + outputs:
            if not -1 <= v < len(tensors):
                raise ValueError(f"operator #{i} refers to tensor {v}")
        ops.append(OpRec(i, name, custom, inputs, outputs, _options(op, name)))

    inputs = [int(v) for v in sg.InputsAsNumpy()] if sg.InputsLength() else []
    outputs = [int(v) for v in sg.OutputsAsNumpy()] if sg.OutputsLength() else []
    for v in inputs + outputs:
        if not 0 <= v < len(tensors):
            raise ValueError(f"graph input/output refers to tensor {v}")
    desc = m.Description()
    return ModelRec(int(m.Version()), desc.decode("utf-8", "replace") if desc else "", nsub,
                    tensors, ops, inputs, outputs)


def _options(op, name: str) -> dict:
    """The op's builtin options as a dict; schema defaults when the table is absent."""
    import tflite

    table_name = _OPTIONS_OF.get(name)
    if table_name is None:
        return {}
    cls = getattr(tflite, table_name)
    table = op.BuiltinOptions()
    opts = cls()
    if table is None:
        opts = _empty_table(table_name)
    else:
        opts.Init(table.Bytes, table.Pos)
    return {f: getattr(opts, f)() for f in _OPTION_FIELDS[table_name]}


def _empty_table(table_name: str):
    """An options table with no fields set, so every getter returns the schema default."""
    import flatbuffers
    import tflite

    cls = getattr(tflite, table_name)
    module = __import__(cls.__module__, fromlist=["Start", "End"])  # Start/End live there
    b = flatbuffers.Builder(16)
    module.Start(b)
    b.Finish(module.End(b))
    return cls.GetRootAs(b.Output(), 0)


# --- 2. translate ---------------------------------------------------------------------------

def compute_padding(in_size: int, filter_size: int, stride: int, dilation: int,
                    padding: int) -> tuple[int, int, int]:
    """ComputePaddingHeightWidth for one dimension: (out_size, pad_before, pad_after).

    TFLite (kernels/padding.h): effective filter (k - 1) * d + 1; SAME out = ceil(in / s),
    VALID out = ceil((in - eff + 1) / s); total = max((out - 1) * s + eff - in, 0); the
    kernels pad total // 2 before and the odd pixel (total % 2) after, at the bottom/right.
    """
    eff = (filter_size - 1) * dilation + 1
    if padding == _SAME:
        out = (in_size + stride - 1) // stride
    else:
        out = (in_size + stride - eff) // stride
    total = max((out - 1) * stride + eff - in_size, 0)
    return out, total // 2, total // 2 + total % 2


class _Importer:
    """Walks the decoded subgraph once, appending IR tensors and nodes."""

    def __init__(self, model: ModelRec, source: str):
        self.m, self.source = model, source
        self.t = model.tensors
        self.names = self._unique_names()
        self.tensors: dict[str, Tensor] = {}
        self.nodes: list[Node] = []
        self.folded: dict[int, np.ndarray] = {}  # DEQUANTIZE of a constant -> float32 data
        self.warnings: list[str] = []
        self.quantized = False
        self.hybrid = False

    def _unique_names(self) -> list[str]:
        names, seen = [], set()
        for t in self.t:
            base = t.name or f"tensor_{t.index}"
            name, k = base, 0
            while name in seen:
                k += 1
                name = f"{base}_{k}"
            seen.add(name)
            names.append(name)
        return names

    # -- driver
    def run(self) -> Graph:
        self._check_ops()
        self.quantized = self._model_kind()
        for i in self.m.inputs:
            self._activation(i, where="graph input")
        for op in self.m.ops:
            getattr(self, f"_op_{op.name}")(op)
        outputs = []
        for i in self.m.outputs:
            name = self.names[i]
            if name not in self.tensors or self.tensors[name].is_const:
                raise EdgecError(f"'{self.source}': graph output '{name}' is a constant or "
                                 f"never computed; nothing to compile")
            outputs.append(name)
        inputs = [self.names[i] for i in self.m.inputs]
        io_layout = {n: ("NHWC" if len(self.tensors[n].shape) == 4 else "")
                     for n in inputs + outputs}
        meta = {"source": self.source, "format": "tflite", "quantized": self.quantized,
                "hybrid": self.hybrid, "ops": [op.name for op in self.m.ops],
                "description": self.m.description, "schema_version": self.m.version}
        if self.warnings:
            meta["warnings"] = self.warnings
        return Graph(self.tensors, self.nodes, inputs, outputs, io_layout, meta)

    def _check_ops(self) -> None:
        """Reject what we can't import before translating anything."""
        for op in self.m.ops:
            out = self.names[op.outputs[0]] if op.outputs else "?"
            where = f"operator #{op.index}, output '{out}'"
            if op.name == "CUSTOM":
                raise UnsupportedOpError(
                    f"'{self.source}': custom op '{op.custom_code}' ({where}) is not a TFLite "
                    f"builtin; edgec imports only builtin ops: {SUPPORTED}")
            if op.name in _CONTROL_FLOW:
                raise UnsupportedOpError(
                    f"'{self.source}': op {op.name} ({where}) runs another of the model's "
                    f"{self.m.num_subgraphs} subgraphs; edgec compiles single-subgraph "
                    f"models (supported: {SUPPORTED})")
            if op.name not in OP_MAP:
                raise UnsupportedOpError(
                    f"'{self.source}': unsupported op {op.name} ({where}); "
                    f"supported: {SUPPORTED}")
        if self.m.num_subgraphs > 1:
            self.warnings.append(f"the model has {self.m.num_subgraphs} subgraphs; only the "
                                 f"main one (subgraph 0) is imported")

    def _model_kind(self) -> bool:
        """True for an int8 or 16x8 model, False for float; errors for uint8/mixed models
        and for int16 activations of an op without a 16x8 kernel."""
        kinds = set()
        for op in self.m.ops:
            if op.name in ("QUANTIZE", "DEQUANTIZE"):
                continue
            for i in op.inputs[:1] + op.outputs:  # the activations a compute op reads/writes
                if i < 0 or self.t[i].data is not None:
                    continue
                t = self.t[i]
                where = (f"'{self.source}': tensor '{self.names[i]}' (operator #{op.index}, "
                         f"{op.name})")
                if t.dtype == "int16" and op.name not in S16_OPS:
                    raise EdgecError(f"{where} is int16: edgec has no 16x8 {op.name}; 16x8 "
                                     f"models may use {', '.join(S16_OPS)}, or convert with "
                                     f"int8 activations")
                if t.dtype == "uint8":
                    raise EdgecError(f"{where} is uint8: legacy uint8 quantization is not "
                                     f"supported; re-convert with full-integer int8 "
                                     f"quantization (inference_type int8)")
                if t.dtype not in ("int8", "int16", "float32"):
                    raise EdgecError(f"{where} is {t.dtype}; edgec imports int8, 16x8 or "
                                     f"float32 models")
                kinds.add("int8" if t.dtype == "int16" else t.dtype)
        if kinds == {"int8", "float32"}:
            raise EdgecError(f"'{self.source}': the model mixes float32 and int8 layers; "
                             f"edgec imports fully int8 or fully float32 models")
        if "int8" in kinds:
            return True
        if not kinds:  # only QUANTIZE/DEQUANTIZE: judge by their int8 side
            return any(self.t[i].dtype in ("int8", "int16") for op in self.m.ops
                       for i in op.outputs)
        return False

    # -- tensors
    def _fail(self, op: OpRec, why: str, fix: str = "") -> EdgecError:
        out = self.names[op.outputs[0]] if op.outputs else "?"
        msg = f"'{self.source}': {op.name} (operator #{op.index}, output '{out}'): {why}"
        return UnsupportedOpError(msg + (f"; {fix}" if fix else ""))

    def _quant(self, t: TensorRec, per_channel_ok: bool) -> QuantParams | None:
        if t.scale is None:
            return None
        if t.scale.size != t.zero_point.size:
            raise EdgecError(f"'{self.source}': tensor '{self.names[t.index]}' has "
                             f"{t.scale.size} scales but {t.zero_point.size} zero points")
        if t.scale.size == 1:
            return QuantParams(t.scale.reshape(()).copy(), t.zero_point.reshape(()).copy())
        if not per_channel_ok:
            raise EdgecError(f"'{self.source}': activation '{self.names[t.index]}' has "
                             f"{t.scale.size} scales (per-channel); activations must be "
                             f"quantized per tensor")
        axis = t.quantized_dimension
        if not 0 <= axis < len(t.shape) or t.shape[axis] != t.scale.size:
            raise EdgecError(f"'{self.source}': tensor '{self.names[t.index]}' of shape "
                             f"{list(t.shape)} has {t.scale.size} scales along axis {axis}")
        return QuantParams(t.scale.copy(), t.zero_point.copy(), axis)

    def _activation(self, i: int, where: str) -> str:
        """Register tensor i as an activation (graph input or op output)."""
        t, name = self.t[i], self.names[i]
        if name in self.tensors:
            return name
        if t.dtype not in ("int8", "int16", "float32"):
            kind = "uint8 (legacy) quantization" if t.dtype == "uint8" else t.dtype
            raise EdgecError(f"'{self.source}': {where} '{name}' is {t.dtype}: {kind} is not "
                             f"supported; edgec imports int8 or float32 models")
        if t.dtype in ("int8", "int16") and t.scale is None:
            raise EdgecError(f"'{self.source}': {t.dtype} {where} '{name}' has no "
                             f"quantization parameters")
        if t.dtype == "int16" and np.any(t.zero_point != 0):
            raise EdgecError(f"'{self.source}': int16 {where} '{name}' has zero point "
                             f"{int(t.zero_point[0])}; 16x8 activations are symmetric (0)")
        if any(d <= 0 for d in t.shape):
            raise EdgecError(f"'{self.source}': {where} '{name}' has shape {list(t.shape)}; "
                             f"edgec needs static positive dimensions")
        quant = self._quant(t, per_channel_ok=False) if t.dtype != "float32" else None
        self.tensors[name] = Tensor(name, t.shape, t.dtype, quant=quant)
        return name

    def _input(self, op: OpRec, k: int, role: str) -> str:
        """An activation input (must already be produced)."""
        i = op.inputs[k] if k < len(op.inputs) else -1
        if i < 0:
            raise self._fail(op, f"missing {role} input")
        name = self.names[i]
        if self.t[i].data is not None or i in self.folded:
            raise self._fail(op, f"{role} '{name}' is a constant",
                             "edgec expects an activation here")
        if name not in self.tensors:
            raise EdgecError(f"'{self.source}': {op.name} (operator #{op.index}) reads "
                             f"'{name}', which is never produced")
        return name

    def _output(self, op: OpRec, k: int = 0) -> str:
        if k >= len(op.outputs) or op.outputs[k] < 0:
            raise self._fail(op, "the operator has no output tensor")
        return self._activation(op.outputs[k], where=f"{op.name} output")

    def _const(self, op: OpRec, k: int, role: str, optional: bool = False) -> str:
        """A constant input (weights, bias) as an IR tensor; "" when absent and optional."""
        i = op.inputs[k] if k < len(op.inputs) else -1
        if i < 0:
            if optional:
                return ""
            raise self._fail(op, f"missing {role}")
        t, name = self.t[i], self.names[i]
        if i in self.folded:
            data = self.folded[i]
            self.tensors.setdefault(name, Tensor(name, data.shape, "float32", data=data))
            return name
        if t.data is None:
            raise self._fail(op, f"{role} '{name}' is computed at run time",
                             "edgec needs constant weights and bias")
        if t.sparse:
            raise self._fail(op, f"{role} '{name}' is sparse", "convert without sparsity")
        if name in self.tensors:
            return name
        if not self.quantized:  # float or hybrid model: every constant becomes float32
            data = t.data
            if t.dtype == "int8":
                data = self._dequantize_const(op, t)
                self.hybrid = True
            elif t.dtype == "float16":
                data = t.data.astype(np.float32)
            elif t.dtype != "float32":
                raise self._fail(op, f"{role} '{name}' is {t.dtype} in a float model")
            self.tensors[name] = Tensor(name, t.shape, "float32",
                                        data=np.ascontiguousarray(data, np.float32))
            return name
        if t.dtype == "int8" and t.scale is None:
            raise self._fail(op, f"int8 {role} '{name}' has no quantization parameters")
        if t.dtype not in ("int8", "int32") and not (t.dtype == "int64" and role == "bias"):
            raise self._fail(op, f"{role} '{name}' is {t.dtype}",
                             "int8 models need int8 weights and int32 bias")
        self.tensors[name] = Tensor(name, t.shape, t.dtype, data=t.data,
                                    quant=self._quant(t, per_channel_ok=True))
        return name

    def _dequantize_const(self, op: OpRec, t: TensorRec) -> np.ndarray:
        """Hybrid weights: real = scale * (q - zero_point), per channel along its axis."""
        if t.scale is None:
            raise self._fail(op, f"int8 constant '{self.names[t.index]}' has no scale")
        q = self._quant(t, per_channel_ok=True)
        scale = np.asarray(q.scale, np.float64)
        zp = np.asarray(q.zero_point, np.int64)
        if q.axis is not None:
            shape = [1] * len(t.shape)
            shape[q.axis] = -1
            scale, zp = scale.reshape(shape), zp.reshape(shape)
        real = scale.astype(np.float32) * (t.data.astype(np.int64) - zp).astype(np.float32)
        return real.astype(np.float32)

    def _fused(self, op: OpRec) -> tuple[float | None, float | None]:
        code = op.options.get("FusedActivationFunction", 0)
        if code not in _FUSED:
            raise self._fail(op, f"fused activation {_FUSED_NAMES.get(code, code)} is not "
                             f"supported", "only NONE, RELU, RELU6 and RELU_N1_TO_1 are")
        return _FUSED[code]

    def _emit(self, op: OpRec, ir_op: str, inputs, outputs, **attrs) -> None:
        self.nodes.append(Node(f"{ir_op}_{op.index}", ir_op, list(inputs), list(outputs),
                               attrs))

    def _window(self, op, x: str, y: str, kernel, strides, dilations):
        """(pads) for a conv/pool, checked against the model's output shape."""
        (_, h, w, _), (_, oh, ow, _) = self.tensors[x].shape, self.tensors[y].shape
        padding = op.options["Padding"]
        if padding not in (_SAME, _VALID):
            raise self._fail(op, f"padding type {padding} is not understood")
        out_h, top, bottom = compute_padding(h, kernel[0], strides[0], dilations[0], padding)
        out_w, left, right = compute_padding(w, kernel[1], strides[1], dilations[1], padding)
        if (out_h, out_w) != (oh, ow):
            kind = "SAME" if padding == _SAME else "VALID"
            raise self._fail(op, f"output is {oh}x{ow} but {kind} padding of a {h}x{w} input "
                             f"gives {out_h}x{out_w}")
        return (top, left, bottom, right)

    def _rank4(self, op, name):
        if len(self.tensors[name].shape) != 4:
            raise self._fail(op, f"'{name}' has shape {list(self.tensors[name].shape)}, "
                             f"expected 4-D NHWC")

    def _pair(self, op, key_h, key_w, what):
        v = (int(op.options[key_h]), int(op.options[key_w]))
        if min(v) < 1:
            raise self._fail(op, f"{what} {v} must be >= 1")
        return v

    # -- convolution and linear layers
    def _op_CONV_2D(self, op: OpRec):
        x = self._input(op, 0, "input")
        wt = self._const(op, 1, "filter")
        bias = self._const(op, 2, "bias", optional=True)
        y = self._output(op)
        self._rank4(op, x), self._rank4(op, y)
        w_shape = self.tensors[wt].shape
        c_in = self.tensors[x].shape[3]
        if len(w_shape) != 4 or w_shape[3] != c_in:
            raise self._fail(op, f"filter shape {list(w_shape)} does not match [C_OUT, KH, KW, "
                             f"C_IN={c_in}]", "grouped convolutions are not supported")
        strides = self._pair(op, "StrideH", "StrideW", "strides")
        dilations = self._pair(op, "DilationHFactor", "DilationWFactor", "dilations")
        pads = self._window(op, x, y, w_shape[1:3], strides, dilations)
        self._check_s16_weighted(op, x, y, bias)
        act_min, act_max = self._fused(op)
        self._emit(op, "conv2d", [x, wt, bias], [y], strides=strides, dilations=dilations,
                   pads=pads, act_min=act_min, act_max=act_max)

    def _op_DEPTHWISE_CONV_2D(self, op: OpRec):
        x = self._input(op, 0, "input")
        wt = self._const(op, 1, "filter")
        bias = self._const(op, 2, "bias", optional=True)
        y = self._output(op)
        self._rank4(op, x), self._rank4(op, y)
        w_shape = self.tensors[wt].shape
        c_in, c_out = self.tensors[x].shape[3], self.tensors[y].shape[3]
        if len(w_shape) != 4 or w_shape[0] != 1 or w_shape[3] != c_out or c_out % c_in:
            raise self._fail(op, f"filter shape {list(w_shape)} does not match [1, KH, KW, "
                             f"C_OUT={c_out}] with C_OUT a multiple of C_IN={c_in}")
        multiplier = c_out // c_in
        declared = int(op.options["DepthMultiplier"])
        if declared not in (0, multiplier):  # TFLite checks this too (depthwise_conv.cc)
            raise self._fail(op, f"depth_multiplier {declared} but the shapes give "
                             f"{c_out}/{c_in} = {multiplier}")
        strides = self._pair(op, "StrideH", "StrideW", "strides")
        dilations = self._pair(op, "DilationHFactor", "DilationWFactor", "dilations")
        pads = self._window(op, x, y, w_shape[1:3], strides, dilations)
        act_min, act_max = self._fused(op)
        self._emit(op, "depthwise_conv2d", [x, wt, bias], [y], strides=strides,
                   dilations=dilations, pads=pads, depth_multiplier=multiplier,
                   act_min=act_min, act_max=act_max)

    def _check_s16_weighted(self, op: OpRec, x: str, y: str, bias: str) -> None:
        """16x8 FC / conv: int16 in and out with an int64 bias; int8 ones an int32 bias."""
        s16 = (self.tensors[x].dtype, self.tensors[y].dtype)
        b_type = self.tensors[bias].dtype if bias else "int64"
        if "int16" in s16 and (s16 != ("int16", "int16") or b_type != "int64"):
            raise self._fail(op, f"16x8 {op.name} with {s16[0]} input, {s16[1]} output "
                             f"and {b_type} bias", "edgec needs int16 in and out, int64 bias")
        if self.quantized and "int16" not in s16 and bias and b_type != "int32":
            raise self._fail(op, f"bias '{bias}' is {b_type}", "int8 layers need int32 bias")

    def _op_FULLY_CONNECTED(self, op: OpRec):
        o = op.options
        if o["WeightsFormat"] != 0:
            raise self._fail(op, "shuffled (SHUFFLED4x16INT8) weights are not supported",
                             "convert with the default weights format")
        x = self._input(op, 0, "input")
        wt = self._const(op, 1, "weights")
        bias = self._const(op, 2, "bias", optional=True)
        y = self._output(op)
        w_shape = self.tensors[wt].shape
        x_size = int(np.prod(self.tensors[x].shape))
        if len(w_shape) != 2 or x_size % w_shape[1]:
            raise self._fail(op, f"weights {list(w_shape)} do not fit an input of shape "
                             f"{list(self.tensors[x].shape)}")
        rows = x_size // w_shape[1]
        if int(np.prod(self.tensors[y].shape)) != rows * w_shape[0]:
            raise self._fail(op, f"output shape {list(self.tensors[y].shape)} is not "
                             f"[{rows}, {w_shape[0]}]")
        self._check_s16_weighted(op, x, y, bias)
        act_min, act_max = self._fused(op)
        self._emit(op, "fully_connected", [x, wt, bias], [y], act_min=act_min, act_max=act_max,
                   keep_num_dims=bool(o["KeepNumDims"]))

    # -- elementwise
    def _binary(self, op: OpRec, ir_op: str):
        """ADD / MUL of two activations, or of an activation and a constant (a positional
        embedding, attention's scale), with TFLite's (NumPy) broadcasting."""
        const = [k for k in (0, 1) if k < len(op.inputs) and op.inputs[k] >= 0 and
                 (self.t[op.inputs[k]].data is not None or op.inputs[k] in self.folded)]
        if len(const) > 1:
            raise self._fail(op, "both operands are constants")
        a, b = (self._const(op, k, "operand") if k in const else self._input(op, k, "input")
                for k in (0, 1))
        y = self._output(op)
        sa, sb, sy = (tuple(self.tensors[n].shape) for n in (a, b, y))
        try:
            out = tuple(np.broadcast_shapes(sa, sb))
        except ValueError:
            out = None
        if out != sy or len(sy) > 4:
            raise self._fail(op, f"shapes {list(sa)} and {list(sb)} -> {list(sy)} do not "
                             f"broadcast", "edgec broadcasts up to 4-D as TFLite does")
        act_min, act_max = self._fused(op)
        self._emit(op, ir_op, [a, b], [y], act_min=act_min, act_max=act_max)

    def _op_BATCH_MATMUL(self, op: OpRec):
        o = op.options
        if o["AsymmetricQuantizeInputs"] and not self.quantized:
            raise self._fail(op, "hybrid (asymmetric_quantize_inputs) BATCH_MATMUL")
        self._s16_binary(op)
        self._emit(op, "batch_matmul", [self._input(op, 0, "lhs"), self._input(op, 1, "rhs")],
                   [self._output(op)], adj_x=bool(o["AdjX"]), adj_y=bool(o["AdjY"]))

    def _op_GELU(self, op: OpRec):
        self._unary(op, "gelu", approximate=bool(op.options["Approximate"]))

    def _s16_binary(self, op: OpRec) -> bool:
        """True for an int16 ADD / MUL / BATCH_MATMUL, checked: two int16 activations in,
        int16 out."""
        names = [op.inputs[0], op.inputs[1], op.outputs[0]]
        if not any(self.t[i].dtype == "int16" for i in names):
            return False
        if any(self.t[i].dtype != "int16" or self.t[i].data is not None for i in names):
            raise self._fail(op, f"an int16 {op.name} needs two int16 activations and an "
                             f"int16 output", "a constant or mixed-type operand is not "
                             "supported")
        return True

    def _op_ADD(self, op: OpRec):
        names = [op.inputs[0], op.inputs[1], op.outputs[0]]
        if self._s16_binary(op):
            pot = [t.scale is not None and float(np.log2(np.float32(t.scale[0]))).is_integer()
                   for t in (self.t[i] for i in names)]
            if op.options["PotScaleInt16"] and all(pot):
                raise self._fail(op, "pot_scale_int16 with power-of-two scales selects TFLite's "
                                 "LSTM-only int16 ADD", "convert with the 16x8 converter, "
                                 "which writes pot_scale_int16 = false")
        self._binary(op, "add")

    def _op_MUL(self, op: OpRec):
        self._s16_binary(op)
        self._binary(op, "mul")

    def _unary(self, op: OpRec, ir_op: str, **attrs):
        self._emit(op, ir_op, [self._input(op, 0, "input")], [self._output(op)], **attrs)

    def _op_LOGISTIC(self, op: OpRec):
        self._unary(op, "logistic")

    def _op_TANH(self, op: OpRec):
        self._unary(op, "tanh")

    def _op_HARD_SWISH(self, op: OpRec):
        self._unary(op, "hard_swish")

    def _op_LEAKY_RELU(self, op: OpRec):
        self._unary(op, "leaky_relu", alpha=float(op.options["Alpha"]))

    def _op_RELU(self, op: OpRec):
        self._emit(op, "relu", [self._input(op, 0, "input")], [self._output(op)])

    def _op_RELU6(self, op: OpRec):
        self._emit(op, "clip", [self._input(op, 0, "input")], [self._output(op)],
                   act_min=0.0, act_max=6.0)

    def _op_RELU_N1_TO_1(self, op: OpRec):
        self._emit(op, "clip", [self._input(op, 0, "input")], [self._output(op)],
                   act_min=-1.0, act_max=1.0)

    def _op_SOFTMAX(self, op: OpRec):
        types = [self.t[i].dtype for i in (op.inputs[0], op.outputs[0])]
        if "int16" in types and types != ["int16", "int16"]:
            raise self._fail(op, f"SOFTMAX {types[0]} -> {types[1]} is not supported",
                             "a 16x8 softmax is int16 -> int16")
        self._emit(op, "softmax", [self._input(op, 0, "input")], [self._output(op)],
                   beta=float(op.options["Beta"]))

    # -- pooling and reductions
    def _pool(self, op: OpRec, ir_op: str):
        x = self._input(op, 0, "input")
        y = self._output(op)
        self._rank4(op, x), self._rank4(op, y)
        kernel = self._pair(op, "FilterHeight", "FilterWidth", "filter size")
        strides = self._pair(op, "StrideH", "StrideW", "strides")
        pads = self._window(op, x, y, kernel, strides, (1, 1))
        act_min, act_max = self._fused(op)
        self._emit(op, ir_op, [x], [y], kernel=kernel, strides=strides, pads=pads,
                   act_min=act_min, act_max=act_max)

    def _op_AVERAGE_POOL_2D(self, op: OpRec):
        self._pool(op, "avg_pool2d")

    def _op_MAX_POOL_2D(self, op: OpRec):
        self._pool(op, "max_pool2d")

    def _op_MEAN(self, op: OpRec):
        x = self._input(op, 0, "input")
        i = op.inputs[1] if len(op.inputs) > 1 else -1
        if i < 0 or self.t[i].data is None:
            raise self._fail(op, "the axes are computed at run time", "they must be constant")
        self._rank4(op, x)
        axes = sorted({int(a) % 4 for a in np.ravel(self.t[i].data)})
        if axes != [1, 2]:
            raise self._fail(op, f"mean over axes {axes} is not supported",
                             "only over H, W (axes [1, 2] of NHWC) is")
        keepdims = bool(op.options["KeepDims"])
        self._emit(op, "mean", [x], [self._output(op)], axes=(1, 2), keepdims=keepdims)

    # -- data movement
    def _int_vector(self, op: OpRec, k: int, role: str, size: int | None = None) -> list[int]:
        """A constant integer input (paddings, perm, size, begin...) read as a list."""
        i = op.inputs[k] if k < len(op.inputs) else -1
        if i < 0 or self.t[i].data is None:
            raise self._fail(op, f"the {role} are computed at run time", "they must be constant")
        if self.t[i].dtype not in ("int32", "int64"):
            raise self._fail(op, f"the {role} are {self.t[i].dtype}", "expected int32")
        values = [int(v) for v in np.ravel(self.t[i].data)]
        if size is not None and len(values) != size:
            raise self._fail(op, f"{len(values)} {role} for {size} axes")
        return values

    def _op_PAD(self, op: OpRec):
        x = self._input(op, 0, "input")
        y = self._output(op)
        rank = len(self.tensors[x].shape)
        flat = self._int_vector(op, 1, "paddings", 2 * rank)
        paddings = tuple((flat[2 * k], flat[2 * k + 1]) for k in range(rank))
        if min(flat, default=0) < 0:
            raise self._fail(op, f"negative paddings {list(paddings)}")
        value = 0.0
        i = op.inputs[2] if len(op.inputs) > 2 else -1
        if i >= 0:  # PADV2 constant_values: a scalar, int8 with the output's quant, or float
            t = self.t[i]
            if t.data is None or t.data.size != 1:
                raise self._fail(op, "constant_values must be a constant scalar")
            v = float(np.ravel(t.data)[0])
            if self.quantized:
                if t.scale is None:
                    raise self._fail(op, "the int8 constant_values have no quantization")
                v = float(np.float32(t.scale[0])) * (v - float(t.zero_point[0]))
            value = v
        self._emit(op, "pad", [x], [y], paddings=paddings, value=value)

    _op_PADV2 = _op_PAD

    def _op_TRANSPOSE(self, op: OpRec):
        x = self._input(op, 0, "input")
        y = self._output(op)
        dims = self.tensors[x].shape
        perm = [p % len(dims) if len(dims) else p
                for p in self._int_vector(op, 1, "perm", len(dims))]
        if sorted(perm) != list(range(len(dims))):
            raise self._fail(op, f"perm {perm} is not a permutation of {len(dims)} axes")
        moved = [a for a in perm if dims[a] != 1]
        if moved == sorted(moved):  # only size-1 axes move: the same bytes, a view
            self._emit(op, "reshape", [x], [y], shape=self.tensors[y].shape)
        else:
            self._emit(op, "transpose", [x], [y], perm=tuple(perm))

    def _op_CONCATENATION(self, op: OpRec):
        if op.options["FusedActivationFunction"] != 0:
            raise self._fail(op, "a fused activation on CONCATENATION is not supported",
                             "TFLite itself requires NONE")
        xs = [self._constant_input(op, k) if self.t[op.inputs[k]].data is not None or
              op.inputs[k] in self.folded else self._input(op, k, "input")
              for k in range(len(op.inputs))]
        y = self._output(op)
        rank = len(self.tensors[y].shape)
        axis = int(op.options["Axis"])
        if not -rank <= axis < rank:
            raise self._fail(op, f"axis {axis} is out of range for rank {rank}")
        self._emit(op, "concat", xs, [y], axis=axis % rank)

    def _constant_input(self, op: OpRec, k: int) -> str:
        """A constant input of CONCATENATION (a class token) made an activation by a
        `constant` node: kernels read concat's inputs from the arena."""
        c = self._const(op, k, "input")
        t = self.tensors[c]
        out = Graph(self.tensors, [], [], []).unique_name(f"{c}_value")
        self.tensors[out] = Tensor(out, t.shape, t.dtype if t.dtype == "int8" else "float32",
                                   quant=t.quant if t.dtype == "int8" else None)
        self.nodes.append(Node(f"constant_{op.index}_{k}", "constant", [c], [out], {}))
        return out

    def _op_RESIZE_NEAREST_NEIGHBOR(self, op: OpRec):
        x = self._input(op, 0, "input")
        y = self._output(op)
        self._rank4(op, x), self._rank4(op, y)
        size = tuple(self._int_vector(op, 1, "size", 2))
        if size != tuple(self.tensors[y].shape[1:3]):
            raise self._fail(op, f"size {list(size)} is not the output's H, W")
        o = op.options
        self._emit(op, "resize_nearest", [x], [y], size=size,
                   align_corners=bool(o["AlignCorners"]),
                   half_pixel_centers=bool(o["HalfPixelCenters"]))

    def _op_STRIDED_SLICE(self, op: OpRec):
        x = self._input(op, 0, "input")
        y = self._output(op)
        o = op.options
        if o["EllipsisMask"] or o["NewAxisMask"]:
            raise self._fail(op, "ellipsis_mask / new_axis_mask are not supported",
                             "TFLite's own kernel rejects them too")
        rank = len(self.tensors[x].shape)
        begin, end, strides = (tuple(self._int_vector(op, k, role, rank))
                               for k, role in ((1, "begin"), (2, "end"), (3, "strides")))
        if 0 in strides:
            raise self._fail(op, f"strides {list(strides)} must be non-zero")
        self._emit(op, "strided_slice", [x], [y], begin=begin, end=end, strides=strides,
                   begin_mask=int(o["BeginMask"]), end_mask=int(o["EndMask"]),
                   shrink_axis_mask=int(o["ShrinkAxisMask"]), offset=bool(o["Offset"]))

    # -- views
    def _op_RESHAPE(self, op: OpRec):
        x = self._input(op, 0, "input")
        y = self._output(op)
        if int(np.prod(self.tensors[x].shape)) != int(np.prod(self.tensors[y].shape)):
            raise self._fail(op, f"reshaping {list(self.tensors[x].shape)} to "
                             f"{list(self.tensors[y].shape)} changes the element count")
        self._emit(op, "reshape", [x], [y], shape=self.tensors[y].shape)

    _op_SQUEEZE = _op_RESHAPE

    # -- quantization boundaries
    def _op_QUANTIZE(self, op: OpRec):
        x = self._input(op, 0, "input")
        y = self._output(op)
        pair = (self.tensors[x].dtype, self.tensors[y].dtype)
        if pair not in _QUANTIZE_PAIRS:
            raise self._fail(op, f"QUANTIZE {pair[0]} -> {pair[1]} is not supported",
                             "only float32 -> int8/int16, int8 <-> int16 and int8 -> int8, "
                             "int16 -> int16 are")
        self._emit(op, "quantize", [x], [y])

    def _op_DEQUANTIZE(self, op: OpRec):
        i = op.inputs[0] if op.inputs else -1
        t = self.t[i] if i >= 0 else None
        if t is not None and t.data is not None:  # weights stored int8/float16: fold now
            if t.dtype == "float16":
                self.folded[op.outputs[0]] = t.data.astype(np.float32)
            elif t.dtype == "int8":
                self.folded[op.outputs[0]] = self._dequantize_const(op, t)
                self.hybrid = self.hybrid or not self.quantized
            else:
                raise self._fail(op, f"DEQUANTIZE of a {t.dtype} constant is not supported")
            return
        x = self._input(op, 0, "input")
        y = self._output(op)
        if self.tensors[x].dtype not in ("int8", "int16") or self.tensors[y].dtype != "float32":
            raise self._fail(op, f"DEQUANTIZE {self.tensors[x].dtype} -> "
                             f"{self.tensors[y].dtype} is not supported",
                             "only int8/int16 -> float32 is")
        self._emit(op, "dequantize", [x], [y])


def _int8_io(graph: Graph, source: str) -> Graph:
    """io="int8": cut the QUANTIZE after each float input and the DEQUANTIZE before each
    float output, so the graph's I/O are the int8 tensors inside."""
    if not graph.meta.get("quantized"):
        raise EdgecError(f"'{source}': io='int8' needs an int8 model; this one is float "
                         f"(compile it with edgec's quantizer, or use io='model')")
    g = graph.copy()
    drop: set[int] = set()
    for k, name in enumerate(g.inputs):
        if g.tensors[name].dtype != "float32":
            continue
        users = g.consumers(name)
        if len(users) != 1 or users[0].op != "quantize" or name in g.outputs:
            raise EdgecError(f"'{source}': float input '{name}' does not feed a single "
                             f"QUANTIZE, so io='int8' cannot drop it; use io='model'")
        if g.tensors[users[0].outputs[0]].dtype != "int8":
            raise EdgecError(f"'{source}': float input '{name}' is quantized to int16 (a 16x8 "
                             f"model), so io='int8' cannot drop its QUANTIZE; use io='model'")
        drop.add(id(users[0]))
        g.inputs[k] = users[0].outputs[0]
    for k, name in enumerate(g.outputs):
        if g.tensors[name].dtype != "float32":
            continue
        prod = g.producer(name)
        if prod is None or prod.op != "dequantize":
            raise EdgecError(f"'{source}': float output '{name}' does not come from a "
                             f"DEQUANTIZE, so io='int8' cannot drop it; use io='model'")
        if g.tensors[prod.inputs[0]].dtype != "int8":
            raise EdgecError(f"'{source}': float output '{name}' is dequantized from int16 (a "
                             f"16x8 model), so io='int8' cannot drop it; use io='model'")
        drop.add(id(prod))
        g.outputs[k] = prod.inputs[0]
    removed = {t for n in g.nodes if id(n) in drop for t in n.inputs + n.outputs}
    g.nodes = [n for n in g.nodes if id(n) not in drop]
    still_used = set(g.inputs) | set(g.outputs) | {t for n in g.nodes for t in n.inputs + n.outputs}
    for t in removed - still_used:
        del g.tensors[t]
    g.io_layout = {n: ("NHWC" if len(g.tensors[n].shape) == 4 else "")
                   for n in g.inputs + g.outputs}
    return g
