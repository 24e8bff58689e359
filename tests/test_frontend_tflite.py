"""The .tflite frontend (toolchain/frontend/tflite.py): every shared model, checked against the
`tflite` schema bindings' own reading and LiteRT's, plus small models built here to pin down
padding, I/O rewiring and the error paths.

The shared models are found through $EDGEC_SHARED_MODELS, then `<repo>/../shared/models`
(the work tree layout and CI's sibling `shared/`). If none exists the tests FAIL: a missing
model folder must not turn the frontend's tests into silent skips.
"""
from __future__ import annotations

import importlib
from pathlib import Path

import flatbuffers
import numpy as np
import pytest
from tflite.BuiltinOptions import BuiltinOptions
from tflite.utils import BUILTIN_OPCODE2NAME

from conftest import shared_models_dir
from edgec.toolchain.errors import EdgecError, UnsupportedOpError
from edgec.toolchain.frontend.tflite import SUPPORTED, compute_padding, load_tflite
from edgec.toolchain.ir import verify
from edgec.toolchain.litert_ref import run_litert, run_litert_all_tensors, tensor_details

REPO = Path(__file__).resolve().parents[1]

INT8_MODELS = ["hello_world_int8", "micro_speech_quantized", "kws_dscnn_int8",
               "ad_fc_autoencoder_int8"]
FLOAT_MODELS = ["hello_world_float", "kws_dscnn_float32"]
IMPORTABLE = INT8_MODELS + FLOAT_MODELS


def model_path(name: str) -> Path:
    return shared_models_dir() / f"{name}.tflite"


# --- a tiny .tflite writer (tflite schema bindings + flatbuffers) ----------------------------

_TYPES = {"float32": 0, "float16": 1, "int32": 2, "uint8": 3, "int64": 4, "int16": 7, "int8": 9}
_OPCODES = {name: code for code, name in BUILTIN_OPCODE2NAME.items()}
_OPTIONS = {k: v for k, v in vars(BuiltinOptions).items() if not k.startswith("_")}


def _mod(name):
    return importlib.import_module(f"tflite.{name}")


def _int_vector(b, values, width=4):
    b.StartVector(width, len(values), width)
    for v in reversed(values):
        (b.PrependInt32 if width == 4 else b.PrependInt64)(int(v))
    return b.EndVector()


def _float_vector(b, values):
    b.StartVector(4, len(values), 4)
    for v in reversed(values):
        b.PrependFloat32(float(v))
    return b.EndVector()


def _bytes(b, data: bytes):
    b.StartVector(1, len(data), 16)  # 16-byte aligned, as the converter writes buffers
    b.head -= len(data)
    b.Bytes[b.head:b.head + len(data)] = data
    return b.EndVector()


def build_tflite(tensors: list[dict], ops: list[dict], inputs: list[int], outputs: list[int],
                 extra_subgraphs: int = 0) -> bytes:
    """A .tflite flatbuffer. tensors: {name, shape, dtype, data?, scale?, zp?, qdim?};
    ops: {op, inputs, outputs, options?: (table, {Field: value}), custom?}."""
    b = flatbuffers.Builder(1024)
    Buf, Ten, QP = _mod("Buffer"), _mod("Tensor"), _mod("QuantizationParameters")
    buffers = [(Buf.Start(b), Buf.End(b))[1]]
    tensor_offs = []
    for t in tensors:
        buf_index = 0
        if t.get("data") is not None:
            raw = np.ascontiguousarray(t["data"], dtype=t["dtype"]).tobytes()
            vec = _bytes(b, raw)
            Buf.Start(b)
            Buf.AddData(b, vec)
            buffers.append(Buf.End(b))
            buf_index = len(buffers) - 1
        else:
            buffers.append((Buf.Start(b), Buf.End(b))[1])  # one empty buffer per activation
            buf_index = len(buffers) - 1
        name = b.CreateString(t["name"])
        shape = _int_vector(b, list(t["shape"]))
        quant = None
        if t.get("scale") is not None:
            scales = np.atleast_1d(t["scale"])
            zps = np.atleast_1d(t.get("zp", np.zeros(scales.size, np.int64)))
            sv, zv = _float_vector(b, scales), _int_vector(b, zps, 8)
            QP.Start(b)
            QP.AddScale(b, sv)
            QP.AddZeroPoint(b, zv)
            QP.AddQuantizedDimension(b, t.get("qdim", 0))
            quant = QP.End(b)
        Ten.Start(b)
        Ten.AddShape(b, shape)
        Ten.AddType(b, _TYPES[t["dtype"]])
        Ten.AddBuffer(b, buf_index)
        Ten.AddName(b, name)
        if quant is not None:
            Ten.AddQuantization(b, quant)
        tensor_offs.append(Ten.End(b))

    codes = []
    for op in ops:
        key = (op["op"], op.get("custom"))
        if key not in codes:
            codes.append(key)
    OC = _mod("OperatorCode")
    code_offs = []
    for name, custom in codes:
        custom_off = b.CreateString(custom) if custom else None
        OC.Start(b)
        OC.AddBuiltinCode(b, _OPCODES[name])
        OC.AddDeprecatedBuiltinCode(b, min(_OPCODES[name], 127))
        if custom_off is not None:
            OC.AddCustomCode(b, custom_off)
        OC.AddVersion(b, 1)
        code_offs.append(OC.End(b))

    Op = _mod("Operator")
    op_offs = []
    for op in ops:
        ins, outs = _int_vector(b, op["inputs"]), _int_vector(b, op["outputs"])
        opts = None
        if op.get("options"):
            table, fields = op["options"]
            m = _mod(table)
            fields = {k: (_int_vector(b, v) if isinstance(v, list) else v)
                      for k, v in fields.items()}  # vectors before the table starts
            m.Start(b)
            for field, value in fields.items():
                getattr(m, f"Add{field}")(b, value)
            opts = (table, m.End(b))
        Op.Start(b)
        Op.AddOpcodeIndex(b, codes.index((op["op"], op.get("custom"))))
        Op.AddInputs(b, ins)
        Op.AddOutputs(b, outs)
        if opts is not None:
            Op.AddBuiltinOptionsType(b, _OPTIONS[opts[0]])
            Op.AddBuiltinOptions(b, opts[1])
        op_offs.append(Op.End(b))

    SG = _mod("SubGraph")

    def subgraph(tensor_list, op_list, ins, outs):
        tv = _offsets(b, tensor_list)
        ov = _offsets(b, op_list)
        iv, outv = _int_vector(b, ins), _int_vector(b, outs)
        SG.Start(b)
        SG.AddTensors(b, tv)
        SG.AddInputs(b, iv)
        SG.AddOutputs(b, outv)
        SG.AddOperators(b, ov)
        return SG.End(b)

    subgraphs = [subgraph(tensor_offs, op_offs, inputs, outputs)]
    subgraphs += [subgraph([], [], [], []) for _ in range(extra_subgraphs)]
    M = _mod("Model")
    sgv, cv, bv = _offsets(b, subgraphs), _offsets(b, code_offs), _offsets(b, buffers)
    desc = b.CreateString("edgec test model")
    M.Start(b)
    M.AddVersion(b, 3)
    M.AddOperatorCodes(b, cv)
    M.AddSubgraphs(b, sgv)
    M.AddDescription(b, desc)
    M.AddBuffers(b, bv)
    b.Finish(M.End(b), file_identifier=b"TFL3")
    return bytes(b.Output())


def _offsets(b, offs):
    b.StartVector(4, len(offs), 4)
    for o in reversed(offs):
        b.PrependUOffsetTRelative(o)
    return b.EndVector()


def write(tmp_path: Path, name: str, data: bytes) -> Path:
    p = tmp_path / name
    p.write_bytes(data)
    return p


def conv_model(op: str, in_hw, kernel, strides, dilations, padding: int, c_in=2,
               mult=1, seed=0) -> bytes:
    """A float32 CONV_2D / DEPTHWISE_CONV_2D / *_POOL_2D model on a [1, H, W, C_IN] input."""
    rng = np.random.default_rng(seed)
    h, w = in_hw
    eff = [(k - 1) * d + 1 for k, d in zip(kernel, dilations)]
    out = [(-(-n // s)) if padding == 0 else (n - e + s) // s
           for n, e, s in zip(in_hw, eff, strides)]
    tensors = [{"name": "x", "shape": [1, h, w, c_in], "dtype": "float32"}]
    if op == "CONV_2D":
        c_out = 3
        tensors += [{"name": "w", "shape": [c_out, *kernel, c_in], "dtype": "float32",
                     "data": rng.standard_normal((c_out, *kernel, c_in))},
                    {"name": "b", "shape": [c_out], "dtype": "float32",
                     "data": rng.standard_normal(c_out)}]
        options = ("Conv2DOptions", {"Padding": padding, "StrideH": strides[0],
                                     "StrideW": strides[1], "DilationHFactor": dilations[0],
                                     "DilationWFactor": dilations[1]})
        op_inputs = [0, 1, 2]
    elif op == "DEPTHWISE_CONV_2D":
        c_out = c_in * mult
        tensors += [{"name": "w", "shape": [1, *kernel, c_out], "dtype": "float32",
                     "data": rng.standard_normal((1, *kernel, c_out))},
                    {"name": "b", "shape": [c_out], "dtype": "float32",
                     "data": rng.standard_normal(c_out)}]
        options = ("DepthwiseConv2DOptions", {
            "Padding": padding, "StrideH": strides[0], "StrideW": strides[1],
            "DepthMultiplier": mult, "DilationHFactor": dilations[0],
            "DilationWFactor": dilations[1]})
        op_inputs = [0, 1, 2]
    else:
        c_out = c_in
        options = ("Pool2DOptions", {"Padding": padding, "StrideH": strides[0],
                                     "StrideW": strides[1], "FilterHeight": kernel[0],
                                     "FilterWidth": kernel[1]})
        op_inputs = [0]
    tensors.append({"name": "y", "shape": [1, *out, c_out], "dtype": "float32"})
    y = len(tensors) - 1
    return build_tflite(tensors, [{"op": op, "inputs": op_inputs, "outputs": [y],
                                   "options": options}], [0], [y])


def reference_window_op(node, x, w=None, b=None) -> np.ndarray:
    """Plain NumPy conv/depthwise/pool on NHWC with the node's explicit pads."""
    top, left, bottom, right = node.attrs["pads"]
    sh, sw = node.attrs["strides"]
    dh, dw = node.attrs.get("dilations", (1, 1))
    if node.op in ("conv2d", "depthwise_conv2d"):
        kh, kw = w.shape[1:3]
    else:
        kh, kw = node.attrs["kernel"]
    n, h, wd, c = x.shape
    fill = -np.inf if node.op == "max_pool2d" else 0.0
    xp = np.full((n, h + top + bottom, wd + left + right, c), fill)
    xp[:, top:top + h, left:left + wd, :] = x
    valid = np.zeros(xp.shape[1:3])
    valid[top:top + h, left:left + wd] = 1
    oh = (h + top + bottom - ((kh - 1) * dh + 1)) // sh + 1
    ow = (wd + left + right - ((kw - 1) * dw + 1)) // sw + 1
    c_out = w.shape[0] if node.op == "conv2d" else (w.shape[3] if w is not None else c)
    y = np.zeros((n, oh, ow, c_out))
    for oy in range(oh):
        for ox in range(ow):
            ys = [oy * sh + i * dh for i in range(kh)]
            xs = [ox * sw + j * dw for j in range(kw)]
            patch = xp[:, ys][:, :, xs]  # [n, kh, kw, c]
            if node.op == "conv2d":
                y[:, oy, ox] = np.einsum("nhwc,ohwc->no", patch, w) + b
            elif node.op == "depthwise_conv2d":
                m = c_out // c
                y[:, oy, ox] = np.einsum("nhwc,hwc->nc", np.repeat(patch, m, axis=3),
                                         w[0]) + b
            elif node.op == "max_pool2d":
                y[:, oy, ox] = patch.max(axis=(1, 2))
            else:  # avg: TFLite divides by the count of real (unpadded) pixels
                count = valid[np.ix_(ys, xs)].sum()
                y[:, oy, ox] = patch.sum(axis=(1, 2)) / count
    return y


# --- every shared model ----------------------------------------------------------------------

@pytest.mark.parametrize("name", IMPORTABLE)
def test_shared_models_import(name):
    g = load_tflite(model_path(name))
    verify(g)
    assert g.meta["format"] == "tflite"
    assert g.meta["quantized"] is (name in INT8_MODELS)
    assert g.meta["source"] == str(model_path(name))
    assert g.meta["ops"] and all(isinstance(o, str) for o in g.meta["ops"])
    for t in g.tensors.values():
        if t.is_const:
            assert t.data.shape == tuple(t.shape)
            assert t.data.dtype == np.dtype(t.dtype)
        if name in INT8_MODELS and not t.is_const:
            assert t.dtype == "int8" and not t.quant.is_per_channel
            assert t.quant.scale.dtype == np.float64 and t.quant.zero_point.dtype == np.int64
        if name in FLOAT_MODELS:
            assert t.dtype in ("float32", "int32") and t.quant is None
    for n in g.inputs + g.outputs:
        assert g.io_layout[n] == ("NHWC" if len(g.tensors[n].shape) == 4 else "")


def test_lstm_is_rejected_with_the_op_and_the_supported_list():
    path = model_path("mnist_lstm_int8")
    with pytest.raises(UnsupportedOpError) as e:
        load_tflite(path)
    msg = str(e.value)
    assert msg == (f"'{path}': unsupported op UNIDIRECTIONAL_SEQUENCE_LSTM (operator #0, "
                   f"output 'tfl.unidirectional_sequence_lstm'); supported: {SUPPORTED}")
    assert "\n" not in msg and "CONV_2D" in SUPPORTED and "QUANTIZE" in SUPPORTED


def _schema_tensors(path: Path) -> dict:
    """The `tflite` package's own reading of subgraph 0: name -> (shape, type, quant)."""
    import tflite
    m = tflite.Model.GetRootAsModel(path.read_bytes(), 0)
    sg = m.Subgraphs(0)
    out = {}
    for i in range(sg.TensorsLength()):
        t = sg.Tensors(i)
        q = t.Quantization()
        quant = None
        if q is not None and q.ScaleLength():
            quant = (q.ScaleAsNumpy(), q.ZeroPointAsNumpy(), q.QuantizedDimension())
        out[t.Name().decode()] = (tuple(t.ShapeAsNumpy()), t.Type(), quant, t.Buffer(), m)
    return out


@pytest.mark.parametrize("name", INT8_MODELS)
def test_int8_quantization_is_kept_exactly(name):
    path = model_path(name)
    g = load_tflite(path)
    schema = _schema_tensors(path)
    litert = {d["name"]: d for d in tensor_details(path)}
    assert set(g.tensors) <= set(schema)
    for tname, t in g.tensors.items():
        shape, _, quant, _, _ = schema[tname]
        assert tuple(t.shape) == shape, tname
        lq = litert[tname]["quantization_parameters"]
        assert np.array_equal(lq["scales"], np.asarray(t.quant.scale, np.float32).reshape(-1))
        assert np.array_equal(lq["zero_points"], np.asarray(t.quant.zero_point).reshape(-1))
        scale, zp, qdim = quant
        # float32 in the file, float64 in the IR, with no rounding in between
        assert np.array_equal(np.asarray(t.quant.scale).reshape(-1), scale.astype(np.float64))
        assert np.array_equal(np.asarray(t.quant.zero_point).reshape(-1), zp.astype(np.int64))
        if scale.size > 1:
            assert t.quant.axis == qdim == lq["quantized_dimension"]
            assert t.quant.scale.shape == (scale.size,)
        else:
            assert t.quant.axis is None and t.quant.scale.shape == ()
        if t.is_const:
            assert np.array_equal(t.data, np.asarray(
                _litert_constant(path, litert[tname]["index"])))


def _litert_constant(path, index):
    from ai_edge_litert.interpreter import Interpreter
    it = Interpreter(model_path=str(path))
    it.allocate_tensors()
    return it.get_tensor(index)


def test_weight_quantization_axes():
    kws = load_tflite(model_path("kws_dscnn_int8"))
    for n in kws.nodes:
        if n.op in ("conv2d", "depthwise_conv2d"):
            w, b = kws.tensors[n.inputs[1]], kws.tensors[n.inputs[2]]
            axis = 0 if n.op == "conv2d" else 3
            assert w.quant.axis == axis and w.quant.scale.shape == (w.shape[axis],)
            assert w.dtype == "int8" and b.dtype == "int32" and b.data.dtype == np.int32
        if n.op == "fully_connected":  # kws's FC weights are per tensor
            w = kws.tensors[n.inputs[1]]
            assert w.quant.axis is None and w.quant.scale.shape == ()
    ms = load_tflite(model_path("micro_speech_quantized"))
    dw = next(n for n in ms.nodes if n.op == "depthwise_conv2d")
    assert ms.tensors[dw.inputs[1]].shape == (1, 10, 8, 8)
    assert ms.tensors[dw.inputs[1]].quant.axis == 3
    assert dw.attrs["depth_multiplier"] == 8


def test_kws_attributes():
    g = load_tflite(model_path("kws_dscnn_int8"))
    ops = [n.op for n in g.nodes]
    assert ops == ["conv2d"] + ["depthwise_conv2d", "conv2d"] * 4 + [
        "avg_pool2d", "reshape", "fully_connected", "softmax"]
    first = g.nodes[0]
    # 49x10 input, 10x4 kernel, stride 2, SAME: out 25x5, total pad 9 (h) and 2 (w):
    # TFLite puts the odd pixel at the bottom.
    assert first.attrs == {"strides": (2, 2), "dilations": (1, 1), "pads": (4, 1, 5, 1),
                           "act_min": 0.0, "act_max": None}
    pool = g.nodes[9]
    assert pool.attrs["kernel"] == (25, 5) and pool.attrs["pads"] == (0, 0, 0, 0)
    assert g.nodes[11].attrs["keep_num_dims"] is False
    assert g.nodes[12].attrs == {"beta": 1.0}


# --- semantics: the imported graph computes what LiteRT computes ------------------------------

@pytest.mark.parametrize("name", INT8_MODELS)
def test_int8_graph_matches_litert_in_float_simulation(name):
    """Dequantize -> float op -> quantize per tensor (run_float fake_quant) vs LiteRT's
    reference kernels, on the last tensor before any softmax (softmax amplifies one LSB)."""
    from edgec.toolchain.float_exec import run_float
    path = model_path(name)
    g = load_tflite(path)
    x_t = g.tensors[g.inputs[0]]
    rng = np.random.default_rng(7)
    sm = [n for n in g.nodes if n.op == "softmax"]
    probe = sm[0].inputs[0] if sm else g.outputs[0]
    q = g.tensors[probe].quant
    worst = 0
    for _ in range(4):
        x = rng.integers(-128, 128, size=x_t.shape, dtype=np.int8)
        ref = run_litert_all_tensors(path, [x])[probe].astype(np.int64)
        real = (x.astype(np.float64) - int(x_t.quant.zero_point)) * float(x_t.quant.scale)
        got = run_float(g, {g.inputs[0]: real}, fake_quant=True, keep_all=True)[probe]
        qgot = np.round(got.astype(np.float64) / float(q.scale)) + int(q.zero_point)
        worst = max(worst, int(np.abs(qgot - ref).max()))
    assert worst <= 2, f"{name}: {probe} differs from LiteRT by {worst} LSB"


@pytest.mark.parametrize("name,atol", [("hello_world_float", 1e-5),
                                       ("kws_dscnn_float32", 0.06)])
def test_float_models_match_litert(name, atol):
    """Float IR vs LiteRT. kws_dscnn_float32 is hybrid: LiteRT quantizes the activations on
    the fly for its int8 conv weights, edgec dequantized the weights at import, hence atol."""
    from edgec.toolchain.float_exec import run_float
    path = model_path(name)
    g = load_tflite(path)
    assert g.meta["hybrid"] is (name == "kws_dscnn_float32")
    assert all(t.dtype == "float32" for t in g.tensors.values()
               if t.is_const and t.data.ndim > 1)
    shape = g.tensors[g.inputs[0]].shape
    x = np.random.default_rng(3).standard_normal((4, *shape[1:])).astype(np.float32)
    ref = run_litert(path, [x])[0]
    got = np.concatenate([run_float(g, {g.inputs[0]: x[i:i + 1]})[g.outputs[0]]
                          for i in range(len(x))])
    np.testing.assert_allclose(got, ref, atol=atol)
    assert np.array_equal(got.argmax(-1), ref.argmax(-1))


def test_hybrid_weights_are_dequantized_exactly():
    path = model_path("kws_dscnn_float32")
    g = load_tflite(path)
    schema = _schema_tensors(path)
    conv = g.nodes[0]
    w = g.tensors[conv.inputs[1]]
    shape, ttype, (scale, zp, _), buf, m = schema[w.name]
    assert ttype == 9  # int8 in the file
    q = m.Buffers(buf).DataAsNumpy().view(np.int8).reshape(shape)
    expect = np.float32(scale[0]) * (q.astype(np.float32) - np.float32(zp[0]))
    assert w.dtype == "float32" and w.quant is None
    np.testing.assert_array_equal(w.data, expect)


# --- padding exactly as TFLite computes it ----------------------------------------------------

PAD_CASES = [  # (op, in_hw, kernel, strides, dilations)
    ("CONV_2D", (7, 6), (3, 2), (2, 2), (1, 1)),
    ("CONV_2D", (6, 6), (4, 4), (1, 1), (1, 1)),      # even kernel: 1 before, 2 after
    ("CONV_2D", (9, 8), (3, 3), (1, 1), (2, 2)),      # dilation
    ("CONV_2D", (8, 7), (2, 3), (3, 2), (1, 2)),
    ("CONV_2D", (5, 5), (5, 5), (2, 2), (1, 1)),
    ("CONV_2D", (10, 4), (4, 1), (3, 1), (2, 1)),     # odd pixel with dilation
    ("DEPTHWISE_CONV_2D", (7, 7), (3, 3), (2, 2), (1, 1)),
    ("DEPTHWISE_CONV_2D", (8, 5), (2, 2), (1, 2), (2, 1)),
    ("MAX_POOL_2D", (7, 5), (2, 3), (2, 2), (1, 1)),
    ("AVERAGE_POOL_2D", (7, 5), (3, 2), (2, 2), (1, 1)),
    ("AVERAGE_POOL_2D", (6, 6), (4, 4), (3, 3), (1, 1)),
]


@pytest.mark.parametrize("padding", [0, 1], ids=["SAME", "VALID"])
@pytest.mark.parametrize("case", PAD_CASES, ids=[f"{c[0]}-{c[1]}-{c[2]}-{c[3]}-{c[4]}"
                                                 for c in PAD_CASES])
def test_padding_matches_litert(tmp_path, case, padding):
    op, in_hw, kernel, strides, dilations = case
    mult = 2 if op == "DEPTHWISE_CONV_2D" else 1
    path = write(tmp_path, "m.tflite", conv_model(op, in_hw, kernel, strides, dilations,
                                                  padding, mult=mult))
    g = load_tflite(path)
    node = g.nodes[0]
    for axis in (0, 1):
        _, before, after = compute_padding(in_hw[axis], kernel[axis], strides[axis],
                                           dilations[axis], padding)
        assert (node.attrs["pads"][axis], node.attrs["pads"][axis + 2]) == (before, after)
    if padding == 1:
        assert node.attrs["pads"] == (0, 0, 0, 0)
    x = np.random.default_rng(1).standard_normal((1, *in_hw, 2)).astype(np.float32)
    ref = run_litert(path, [x])[0]
    consts = [g.tensors[i].data.astype(np.float64) for i in node.inputs[1:] if i]
    got = reference_window_op(node, x.astype(np.float64), *consts)
    assert got.shape == ref.shape
    np.testing.assert_allclose(got, ref, rtol=1e-5, atol=1e-5)


def test_compute_padding_table():
    # (in, k, s, d, padding) -> (out, before, after), worked out from ComputePaddingHeightWidth
    assert compute_padding(49, 10, 2, 1, 0) == (25, 4, 5)
    assert compute_padding(10, 4, 2, 1, 0) == (5, 1, 1)
    assert compute_padding(6, 4, 1, 1, 0) == (6, 1, 2)
    assert compute_padding(9, 3, 1, 2, 0) == (9, 2, 2)
    assert compute_padding(10, 4, 3, 2, 0) == (4, 3, 3)
    assert compute_padding(10, 4, 2, 2, 0) == (5, 2, 3)   # dilated: odd pixel after
    assert compute_padding(5, 1, 3, 1, 0) == (2, 0, 0)   # negative total clamps to 0
    assert compute_padding(7, 3, 2, 1, 1) == (3, 0, 0)


# --- io="int8" rewiring ----------------------------------------------------------------------

def float_io_int8_model() -> bytes:
    """float x -> QUANTIZE -> int8 FC (per-channel weights, RELU) -> DEQUANTIZE -> float y."""
    rng = np.random.default_rng(5)
    tensors = [
        {"name": "x", "shape": [1, 8], "dtype": "float32"},
        {"name": "xq", "shape": [1, 8], "dtype": "int8", "scale": 0.05, "zp": 3},
        {"name": "w", "shape": [4, 8], "dtype": "int8", "qdim": 0,
         "data": rng.integers(-127, 128, (4, 8)), "scale": [0.01, 0.02, 0.015, 0.03],
         "zp": [0, 0, 0, 0]},
        {"name": "b", "shape": [4], "dtype": "int32", "data": rng.integers(-500, 500, 4),
         "scale": [0.0005, 0.001, 0.00075, 0.0015], "zp": [0, 0, 0, 0]},
        {"name": "yq", "shape": [1, 4], "dtype": "int8", "scale": 0.04, "zp": -128},
        {"name": "y", "shape": [1, 4], "dtype": "float32"},
    ]
    ops = [
        {"op": "QUANTIZE", "inputs": [0], "outputs": [1]},
        {"op": "FULLY_CONNECTED", "inputs": [1, 2, 3], "outputs": [4],
         "options": ("FullyConnectedOptions", {"FusedActivationFunction": 1})},
        {"op": "DEQUANTIZE", "inputs": [4], "outputs": [5]},
    ]
    return build_tflite(tensors, ops, [0], [5])


def test_io_model_keeps_float_io(tmp_path):
    path = write(tmp_path, "fio.tflite", float_io_int8_model())
    g = load_tflite(path)
    verify(g)
    assert [n.op for n in g.nodes] == ["quantize", "fully_connected", "dequantize"]
    assert g.inputs == ["x"] and g.outputs == ["y"]
    assert g.tensors["x"].dtype == "float32" and g.meta["quantized"] is True
    fc = g.nodes[1]
    assert fc.attrs["act_min"] == 0.0 and fc.attrs["act_max"] is None
    w = g.tensors["w"]
    assert w.quant.axis == 0 and np.array_equal(w.quant.scale,
                                                np.float32([0.01, 0.02, 0.015, 0.03]))
    x = np.random.default_rng(0).standard_normal((3, 8)).astype(np.float32)
    assert run_litert(path, [x])[0].shape == (3, 4)  # LiteRT accepts the model we wrote


def test_io_int8_drops_quantize_and_dequantize(tmp_path):
    path = write(tmp_path, "fio.tflite", float_io_int8_model())
    g = load_tflite(path, io="int8")
    verify(g)
    assert [n.op for n in g.nodes] == ["fully_connected"]
    assert g.inputs == ["xq"] and g.outputs == ["yq"]
    assert "x" not in g.tensors and "y" not in g.tensors
    assert g.tensors["xq"].dtype == "int8" and float(g.tensors["xq"].quant.scale) == \
        float(np.float32(0.05))
    assert g.io_layout == {"xq": "", "yq": ""}
    assert g.meta["io"] == "int8"


def test_io_int8_is_a_noop_on_int8_io_models():
    g = load_tflite(model_path("kws_dscnn_int8"), io="int8")
    h = load_tflite(model_path("kws_dscnn_int8"))
    assert g.inputs == h.inputs and g.outputs == h.outputs and len(g.nodes) == len(h.nodes)


def test_io_int8_rejects_float_models():
    with pytest.raises(EdgecError, match="io='int8' needs an int8 model"):
        load_tflite(model_path("hello_world_float"), io="int8")
    with pytest.raises(EdgecError, match="io='bogus'"):
        load_tflite(model_path("hello_world_int8"), io="bogus")


# --- names, dtypes and structural errors ------------------------------------------------------

def _fc_model(dtype: str, names=("x", "w", "y"), op="FULLY_CONNECTED", custom=None,
              extra_subgraphs=0) -> bytes:
    quant = {} if dtype == "float32" else {"scale": 0.1, "zp": 0}
    wdtype = "int8" if dtype in ("int16", "int8") else dtype
    tensors = [{"name": names[0], "shape": [1, 4], "dtype": dtype, **quant},
               {"name": names[1], "shape": [2, 4], "dtype": wdtype,
                "data": np.ones((2, 4)), **quant},
               {"name": names[2], "shape": [1, 2], "dtype": dtype, **quant}]
    ops = [{"op": op, "inputs": [0, 1, -1], "outputs": [2], "custom": custom,
            "options": ("FullyConnectedOptions", {}) if op == "FULLY_CONNECTED" else None}]
    return build_tflite(tensors, ops, [0], [2], extra_subgraphs)


def test_duplicate_tensor_names_are_made_unique(tmp_path):
    path = write(tmp_path, "dup.tflite", _fc_model("float32", names=("t", "t", "t")))
    g = load_tflite(path)
    verify(g)
    assert g.inputs == ["t"] and g.nodes[0].inputs == ["t", "t_1", ""]
    assert g.outputs == ["t_2"]


def test_missing_options_take_schema_defaults(tmp_path):
    g = load_tflite(write(tmp_path, "fc.tflite", _fc_model("float32")))
    assert g.nodes[0].attrs == {"act_min": None, "act_max": None, "keep_num_dims": False}


@pytest.mark.parametrize("dtype,op,words", [("int16", "LOGISTIC", "no 16x8 LOGISTIC"),
                                             ("uint8", "FULLY_CONNECTED", "uint8")])
def test_unsupported_activation_dtypes(tmp_path, dtype, op, words):
    """int16 (16x8) is imported for the ops with 16x8 kernels only (test_ops_16x8.py)."""
    path = write(tmp_path, f"{dtype}.tflite", _fc_model(dtype, op=op))
    with pytest.raises(EdgecError) as e:
        load_tflite(path)
    msg = str(e.value)
    assert str(path) in msg and words in msg and "\n" not in msg


def test_custom_op_is_rejected(tmp_path):
    path = write(tmp_path, "custom.tflite", _fc_model("float32", op="CUSTOM",
                                                        custom="MyFancyOp"))
    with pytest.raises(UnsupportedOpError,
                       match=r"custom op 'MyFancyOp' \(operator #0, output 'y'\)"):
        load_tflite(path)


def test_control_flow_subgraphs_are_rejected(tmp_path):
    path = write(tmp_path, "while.tflite", _fc_model("float32", op="WHILE",
                                                       extra_subgraphs=2))
    with pytest.raises(UnsupportedOpError, match="WHILE .*3 subgraphs"):
        load_tflite(path)


def test_unused_extra_subgraphs_give_a_warning(tmp_path):
    g = load_tflite(write(tmp_path, "sg.tflite", _fc_model("float32", extra_subgraphs=1)))
    assert "2 subgraphs" in g.meta["warnings"][0]


# --- damaged files: always one EdgecError naming the file ------------------------------------

def test_missing_file(tmp_path):
    with pytest.raises(EdgecError, match="no such file"):
        load_tflite(tmp_path / "nope.tflite")


@pytest.mark.parametrize("content", [b"", b"hello world, not a model",
                                     b"\x08\x00\x00\x00ONNX" + bytes(100)])
def test_not_a_tflite_file(tmp_path, content):
    path = write(tmp_path, "bad.tflite", content)
    with pytest.raises(EdgecError, match=r"is not a TFLite model") as e:
        load_tflite(path)
    assert str(path) in str(e.value)


@pytest.mark.parametrize("name", IMPORTABLE)
def test_truncated_files(tmp_path, name):
    data = model_path(name).read_bytes()
    for cut in (12, 64, len(data) // 3, len(data) // 2, len(data) - 100):
        path = write(tmp_path, f"cut{cut}.tflite", data[:cut])
        with pytest.raises(EdgecError) as e:
            load_tflite(path)
        assert str(path) in str(e.value) and "\n" not in str(e.value)


@pytest.mark.parametrize("name", ["hello_world_int8", "micro_speech_quantized"])
def test_corrupt_bytes_never_escape_as_python_errors(tmp_path, name):
    data = model_path(name).read_bytes()
    rng = np.random.default_rng(11)
    path = tmp_path / "corrupt.tflite"
    for _ in range(150):
        buf = bytearray(data)
        for pos in rng.integers(8, min(len(buf), 2048), size=rng.integers(1, 6)):
            buf[pos] = int(rng.integers(0, 256))
        path.write_bytes(bytes(buf))
        try:
            verify(load_tflite(path))
        except EdgecError as e:
            assert "\n" not in str(e)


# --- op coverage on a float model built here, checked against LiteRT ------------------------

def mixed_ops_model() -> bytes:
    """x -> CONV_2D(SAME, RELU6) --------------+-> ADD -> RELU6 -> MEAN(1,2, keep) -> SQUEEZE
       x -> DEPTHWISE_CONV_2D(VALID-ish, RELU) -+     -> FULLY_CONNECTED(keep_num_dims) ->
       RELU -> SOFTMAX(beta 0.5); plus a MAX_POOL_2D branch as a second output."""
    rng = np.random.default_rng(2)
    f = "float32"
    t = [
        {"name": "x", "shape": [1, 6, 6, 4], "dtype": f},                              # 0
        {"name": "cw", "shape": [4, 3, 3, 4], "dtype": f,
         "data": rng.standard_normal((4, 3, 3, 4))},
        {"name": "cb", "shape": [4], "dtype": f, "data": rng.standard_normal(4)},       # 2
        {"name": "a", "shape": [1, 6, 6, 4], "dtype": f},                              # 3
        {"name": "dw", "shape": [1, 3, 3, 4], "dtype": f,
         "data": rng.standard_normal((1, 3, 3, 4))},
        {"name": "db", "shape": [4], "dtype": f, "data": rng.standard_normal(4)},       # 5
        {"name": "b", "shape": [1, 6, 6, 4], "dtype": f},                              # 6
        {"name": "c", "shape": [1, 6, 6, 4], "dtype": f},                              # 7
        {"name": "d", "shape": [1, 6, 6, 4], "dtype": f},                              # 8
        {"name": "axes", "shape": [2], "dtype": "int32", "data": np.array([1, 2])},    # 9
        {"name": "e", "shape": [1, 1, 1, 4], "dtype": f},                              # 10
        {"name": "s", "shape": [1, 4], "dtype": f},                                    # 11
        {"name": "fw", "shape": [3, 4], "dtype": f, "data": rng.standard_normal((3, 4))},
        {"name": "g", "shape": [1, 3], "dtype": f},                                    # 13
        {"name": "h", "shape": [1, 3], "dtype": f},                                    # 14
        {"name": "y", "shape": [1, 3], "dtype": f},                                    # 15
        {"name": "p", "shape": [1, 3, 3, 4], "dtype": f},                              # 16
    ]
    ops = [
        {"op": "CONV_2D", "inputs": [0, 1, 2], "outputs": [3], "options": (
            "Conv2DOptions", {"Padding": 0, "StrideH": 1, "StrideW": 1,
                              "FusedActivationFunction": 3})},
        {"op": "DEPTHWISE_CONV_2D", "inputs": [0, 4, 5], "outputs": [6], "options": (
            "DepthwiseConv2DOptions", {"Padding": 0, "StrideH": 1, "StrideW": 1,
                                       "DepthMultiplier": 1, "FusedActivationFunction": 1})},
        {"op": "ADD", "inputs": [3, 6], "outputs": [7], "options": ("AddOptions", {})},
        {"op": "RELU6", "inputs": [7], "outputs": [8]},
        {"op": "MEAN", "inputs": [8, 9], "outputs": [10],
         "options": ("ReducerOptions", {"KeepDims": True})},
        {"op": "SQUEEZE", "inputs": [10], "outputs": [11],
         "options": ("SqueezeOptions", {"SqueezeDims": [1, 2]})},
        {"op": "FULLY_CONNECTED", "inputs": [11, 12, -1], "outputs": [13], "options": (
            "FullyConnectedOptions", {"KeepNumDims": True})},
        {"op": "RELU", "inputs": [13], "outputs": [14]},
        {"op": "SOFTMAX", "inputs": [14], "outputs": [15],
         "options": ("SoftmaxOptions", {"Beta": 0.5})},
        {"op": "MAX_POOL_2D", "inputs": [0], "outputs": [16], "options": (
            "Pool2DOptions", {"Padding": 0, "StrideH": 2, "StrideW": 2, "FilterHeight": 3,
                              "FilterWidth": 3, "FusedActivationFunction": 1})},
    ]
    return build_tflite(t, ops, [0], [15, 16])


def test_op_mapping_matches_litert(tmp_path):
    from edgec.toolchain.float_exec import run_float
    path = write(tmp_path, "mixed.tflite", mixed_ops_model())
    g = load_tflite(path)
    verify(g)
    assert [n.op for n in g.nodes] == ["conv2d", "depthwise_conv2d", "add", "clip", "mean",
                                       "reshape", "fully_connected", "relu", "softmax",
                                       "max_pool2d"]
    by_op = {n.op: n for n in g.nodes}
    assert by_op["conv2d"].attrs["act_min"] == 0.0 and by_op["conv2d"].attrs["act_max"] == 6.0
    assert by_op["clip"].attrs == {"act_min": 0.0, "act_max": 6.0}
    assert by_op["mean"].attrs == {"axes": (1, 2), "keepdims": True}
    assert by_op["mean"].inputs == ["d"]  # the axes constant is an attribute, not an input
    assert by_op["reshape"].attrs == {"shape": (1, 4)}
    assert by_op["fully_connected"].attrs["keep_num_dims"] is True
    assert by_op["fully_connected"].inputs[2] == ""
    assert by_op["softmax"].attrs == {"beta": 0.5}
    assert by_op["max_pool2d"].attrs["pads"] == (0, 0, 1, 1)
    x = np.random.default_rng(4).standard_normal((3, 6, 6, 4)).astype(np.float32)
    refs = run_litert(path, [x])
    for i in range(3):
        got = run_float(g, {"x": x[i:i + 1]})
        for name, ref in zip(g.outputs, refs):
            np.testing.assert_allclose(got[name][0], ref[i], rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("wtype", ["int8", "float16"])
def test_dequantize_of_constant_weights_is_folded(tmp_path, wtype):
    """Weights stored as int8 (or float16) behind a DEQUANTIZE op become float32 constants."""
    from edgec.toolchain.float_exec import run_float
    rng = np.random.default_rng(9)
    q = rng.integers(-127, 128, (3, 5))
    w = ({"data": q, "scale": [0.02, 0.05, 0.01], "zp": [0, 0, 0], "qdim": 0}
         if wtype == "int8" else {"data": rng.standard_normal((3, 5))})
    tensors = [{"name": "x", "shape": [1, 5], "dtype": "float32"},
               {"name": "wq", "shape": [3, 5], "dtype": wtype, **w},
               {"name": "w", "shape": [3, 5], "dtype": "float32"},
               {"name": "y", "shape": [1, 3], "dtype": "float32"}]
    ops = [{"op": "DEQUANTIZE", "inputs": [1], "outputs": [2]},
           {"op": "FULLY_CONNECTED", "inputs": [0, 2, -1], "outputs": [3],
            "options": ("FullyConnectedOptions", {})}]
    path = write(tmp_path, "deq.tflite", build_tflite(tensors, ops, [0], [3]))
    g = load_tflite(path)
    verify(g)
    assert [n.op for n in g.nodes] == ["fully_connected"]
    wt = g.tensors[g.nodes[0].inputs[1]]
    assert wt.dtype == "float32" and wt.quant is None and wt.is_const
    assert g.meta["quantized"] is False and g.meta["hybrid"] is (wtype == "int8")
    x = rng.standard_normal((2, 5)).astype(np.float32)
    (ref,) = run_litert(path, [x])
    for i in range(2):
        np.testing.assert_allclose(run_float(g, {"x": x[i:i + 1]})["y"][0], ref[i],
                                   rtol=1e-5, atol=1e-5)
