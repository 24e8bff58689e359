"""Pre-quantized QDQ ONNX (toolchain/frontend/onnx_qdq.py): edgec's own model.int8.onnx comes
back as the same int8 program, onnxruntime's quantize_static models keep their numbers and
run on QEMU exactly as the golden model, and what the IR cannot express fails in one line."""
from __future__ import annotations

import json

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
from onnx import helper, numpy_helper
from onnxruntime.quantization import (CalibrationDataReader, QuantFormat, QuantType,
                                      quantize_static)
from torch import nn

from conftest import edgec
from edgec.toolchain import golden_io
from edgec.toolchain.errors import EdgecError
from edgec.toolchain.frontend.onnx_qdq import is_qdq, load_onnx_qdq
from edgec.toolchain.golden import run_program
from edgec.toolchain.lower import lower
from edgec.toolchain.lower.program import ConstArray
from edgec.toolchain.options import CompileOptions
from edgec.toolchain.passes import run_passes
from edgec.toolchain.pipeline import compile_model
from models import INPUT_SHAPES, export_onnx, exported

SHAPE = (1, 3, 8, 8)


class SmallCnn(nn.Module):
    """conv, depthwise conv, ReLU, residual add, max pool, global average pool, flatten, Gemm."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.c1 = nn.Conv2d(3, 8, 3, padding=1)
        self.dw = nn.Conv2d(8, 8, 3, padding=1, groups=8)
        self.c2 = nn.Conv2d(8, 8, 1)
        self.pool = nn.MaxPool2d(2)
        self.fc = nn.Linear(8, 5)

    def forward(self, x):
        a = torch.relu(self.c1(x))
        c = torch.relu(self.c2(torch.relu(self.dw(a))) + a)
        g = nn.functional.adaptive_avg_pool2d(self.pool(c), 1)
        return self.fc(torch.flatten(g, 1))


class _Reader(CalibrationDataReader):
    def __init__(self):
        rng = np.random.default_rng(0)
        self.data = iter([{"input": rng.standard_normal(SHAPE).astype(np.float32)}
                          for _ in range(8)])

    def get_next(self):
        return next(self.data, None)


@pytest.fixture(scope="module")
def ort_models(tmp_path_factory):
    """SmallCnn quantized by onnxruntime (QDQ): per channel with int8 or uint8 activations,
    per tensor, and uint8 weights (symmetric: zero point 128) with uint8 activations."""
    tmp = tmp_path_factory.mktemp("ort_qdq")
    onnx.save(export_onnx(SmallCnn().eval(), torch.zeros(SHAPE), opset_version=13,
                          input_names=["input"], output_names=["logits"]), tmp / "float.onnx")
    paths = {"float": tmp / "float.onnx"}
    for name, act, weight, per_channel in (
            ("int8", QuantType.QInt8, QuantType.QInt8, True),
            ("uint8", QuantType.QUInt8, QuantType.QInt8, True),
            ("per_tensor", QuantType.QInt8, QuantType.QInt8, False),
            ("uint8_weights", QuantType.QUInt8, QuantType.QUInt8, True)):
        paths[name] = tmp / f"{name}.onnx"
        quantize_static(str(tmp / "float.onnx"), str(paths[name]), _Reader(),
                        quant_format=QuantFormat.QDQ, per_channel=per_channel,
                        activation_type=act, weight_type=weight)
    return paths


def _init(model: onnx.ModelProto, name: str) -> np.ndarray:
    return numpy_helper.to_array(next(i for i in model.graph.initializer if i.name == name))


def _set_init(model: onnx.ModelProto, name: str, value: np.ndarray) -> None:
    init = next(i for i in model.graph.initializer if i.name == name)
    init.CopyFrom(numpy_helper.from_array(value, name))


def _node(model: onnx.ModelProto, name: str) -> onnx.NodeProto:
    return next(n for n in model.graph.node if n.name == name)


def _golden_vs_onnxruntime(path, xs: np.ndarray, output: str = "logits") -> np.ndarray:
    """|golden - onnxruntime| in steps of the output's scale, for float inputs xs (NCHW).

    onnxruntime runs the QDQ graph as ONNX defines it (DequantizeLinear -> float op ->
    QuantizeLinear) with its graph fusions off; edgec's kernels do each op in integers
    with TFLite's fixed-point requantization, which rounds the same real value at most
    one step differently per layer. (With ORT_ENABLE_ALL onnxruntime swaps in its own
    fused QLinear kernels, whose numbers differ further from the model's definition.)"""
    model = onnx.load(str(path))
    graph = run_passes(load_onnx_qdq(model, io="model"), quantized=True)
    program = lower(graph)
    out = graph.outputs[0]
    assert out == output
    scale = float(np.float32(graph.tensors[graph.producer(out).inputs[0]].quant.scale))
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    sess = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    diffs = []
    for x in xs:
        want = sess.run(None, {"input": x[None]})[0]
        got = run_program(program, {graph.inputs[0]: x[None].transpose(0, 2, 3, 1)})[out]
        diffs.append(np.abs(want.astype(np.float64) - got) / scale)
    return np.round(np.concatenate([d.ravel() for d in diffs]), 3)


# --- onnxruntime's quantize_static models ---------------------------------------------------

def test_onnxruntime_model_keeps_its_quantization(ort_models):
    model = onnx.load(str(ort_models["int8"]))
    assert is_qdq(model)
    g = load_onnx_qdq(model, io="int8")
    assert [n.op for n in g.nodes] == ["conv2d", "depthwise_conv2d", "conv2d", "add",
                                       "max_pool2d", "mean", "reshape", "fully_connected"]
    assert g.meta["quantized"] == "int8" and g.meta["format"] == "onnx-qdq"
    conv, dw, fc = g.nodes[0], g.nodes[1], g.nodes[7]
    # weights: the model's own int8 values in the IR layout, its per-channel scales, zp 0
    w = g.tensors[conv.inputs[1]]
    np.testing.assert_array_equal(w.data, _init(model, "c1.weight_quantized").transpose(0, 2, 3, 1))
    np.testing.assert_array_equal(w.quant.scale, _init(model, "c1.weight_scale"))
    assert w.quant.axis == 0 and not np.any(w.quant.zero_point)
    wd = g.tensors[dw.inputs[1]]
    np.testing.assert_array_equal(wd.data, _init(model, "dw.weight_quantized").transpose(1, 2, 3, 0))
    assert wd.quant.axis == 3
    np.testing.assert_array_equal(g.tensors[fc.inputs[1]].data, _init(model, "fc.weight_quantized"))
    # bias: the int32 values as stored; activations: the pair's scale and zero point
    b = g.tensors[conv.inputs[2]]
    assert b.dtype == "int32"
    np.testing.assert_array_equal(b.data, _init(model, "c1.bias_quantized"))
    x = g.tensors[g.inputs[0]]
    assert x.dtype == "int8" and float(x.quant.scale) == float(_init(model, "input_scale"))
    assert int(x.quant.zero_point) == int(_init(model, "input_zero_point"))
    # max pool's pair shares its input's params: no requantization was needed
    assert "quantize" not in {n.op for n in g.nodes}


def test_onnxruntime_model_agrees_with_onnxruntime(ort_models):
    xs = np.random.default_rng(1).standard_normal((40, *SHAPE[1:])).astype(np.float32)
    for kind in ("int8", "uint8", "per_tensor", "uint8_weights"):
        steps = _golden_vs_onnxruntime(ort_models[kind], xs)
        # at most one rounding step per layer apart, and most outputs identical
        assert steps.max() <= 2, kind
        assert np.mean(steps == 0) >= 0.8, kind


class MixedOps(nn.Module):
    """ReLU with a pair before it (not fused), sigmoid, mul, tanh, concat, average pool,
    pad, reshape, softmax (onnxruntime's output scale 1/255: requantized after the kernel)."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.c1 = nn.Conv2d(3, 8, 3, padding=1)
        self.c2 = nn.Conv2d(8, 8, 3, padding=1)
        self.fc = nn.Linear(16 * 3 * 3, 5)

    def forward(self, x):
        y = self.c1(x)
        a = torch.relu(y) + y
        s = a * torch.sigmoid(a)
        c = torch.cat([s, torch.tanh(self.c2(s))], 1)
        c = nn.functional.pad(nn.functional.avg_pool2d(c, 2), (1, 1, 1, 1))
        c = nn.functional.max_pool2d(c, 2).reshape(1, -1)
        return torch.softmax(self.fc(c), -1)


def test_more_onnxruntime_ops_agree_with_onnxruntime(tmp_path):
    onnx.save(export_onnx(MixedOps().eval(), torch.zeros(SHAPE), opset_version=13,
                          input_names=["input"], output_names=["probs"]), tmp_path / "f.onnx")
    quantize_static(str(tmp_path / "f.onnx"), str(tmp_path / "q.onnx"), _Reader(),
                    quant_format=QuantFormat.QDQ, per_channel=True,
                    activation_type=QuantType.QInt8, weight_type=QuantType.QInt8)
    g = load_onnx_qdq(onnx.load(str(tmp_path / "q.onnx")), io="int8")
    assert [n.op for n in g.nodes] == [
        "conv2d", "relu", "add", "logistic", "mul", "conv2d", "tanh", "concat", "avg_pool2d",
        "pad", "max_pool2d", "reshape", "fully_connected", "softmax", "quantize"]
    xs = np.random.default_rng(1).standard_normal((40, *SHAPE[1:])).astype(np.float32)
    steps = _golden_vs_onnxruntime(tmp_path / "q.onnx", xs, "probs")
    assert steps.max() <= 2 and np.mean(steps == 0) >= 0.6


class ActivationsAndMoves(nn.Module):
    """For the round trip: hard swish (HardSigmoid * x in the opset-13 artifact), sigmoid
    gate, leaky ReLU, broadcast add, tanh; transpose, concat, pad, nearest resize, strided
    slices, average pool, ReLU6."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.c1 = nn.Conv2d(3, 4, 3, padding=1)
        self.c2 = nn.Conv2d(8, 4, 3)

    def forward(self, x):
        h = nn.functional.hardswish(self.c1(x))
        g = nn.functional.adaptive_avg_pool2d(h, 1)
        h = torch.tanh(nn.functional.leaky_relu(h * torch.sigmoid(g), 0.2) + g)
        b = self.c2(nn.functional.pad(torch.cat([h, h.permute(0, 1, 3, 2)], 1), (1, 1, 1, 1)))
        b = nn.functional.interpolate(b, scale_factor=2, mode="nearest")[:, :, 1:9:2, ::3]
        return nn.functional.relu6(nn.functional.avg_pool2d(b, 2))


def test_uint8_activations_convert_exactly(ort_models):
    """uint8 q with zero point z is int8 q - 128 with zero point z - 128: same real values."""
    model = onnx.load(str(ort_models["uint8"]))
    g = load_onnx_qdq(model, io="int8")
    for name, t in g.tensors.items():
        if t.data is None and t.quant is not None and f"{name}_zero_point" in \
                {i.name for i in model.graph.initializer}:
            assert int(t.quant.zero_point) == int(_init(model, f"{name}_zero_point")) - 128
            assert float(t.quant.scale) == float(_init(model, f"{name}_scale"))
    assert _init(model, "input_zero_point").dtype == np.uint8


def test_per_tensor_and_uint8_weights(ort_models):
    per_tensor = load_onnx_qdq(onnx.load(str(ort_models["per_tensor"])), io="int8")
    w = per_tensor.tensors[per_tensor.nodes[0].inputs[1]]
    assert w.quant.axis is None and np.ndim(w.quant.scale) == 0
    model = onnx.load(str(ort_models["uint8_weights"]))
    g = load_onnx_qdq(model, io="int8")
    q, zp = _init(model, "c1.weight_quantized"), _init(model, "c1.weight_zero_point")
    assert q.dtype == np.uint8 and np.all(zp == 128)
    np.testing.assert_array_equal(g.tensors[g.nodes[0].inputs[1]].data,
                                  (q.astype(np.int16) - 128).transpose(0, 2, 3, 1))


def test_onnxruntime_model_runs_on_qemu_exactly(ort_models, tmp_path):
    """Float I/O (io=model): the model's input QuantizeLinear and output DequantizeLinear
    run on the board; --calib only adds test inputs."""
    calib = np.random.default_rng(3).standard_normal((4, *SHAPE[1:])).astype(np.float32)
    np.save(tmp_path / "x.npy", calib)
    rc = edgec("compile", ort_models["int8"], "--target", "stm32f746", "--calib",
               tmp_path / "x.npy", "-o", tmp_path / "net")
    assert rc == 0
    rep = json.loads((tmp_path / "net" / "report.json").read_text())
    assert rep["check"]["mismatches"] == 0 and rep["check"]["samples"] >= 8
    assert any("already quantized (QDQ)" in w for w in rep["warnings"])
    io = json.loads((tmp_path / "net" / "model.json").read_text())["io"]
    assert io["inputs"][0]["dtype"] == "float32" and io["outputs"][0]["dtype"] == "float32"
    model = onnx.load(str(ort_models["int8"]))
    assert io["inputs"][0]["scale"] == float(_init(model, "input_scale"))
    assert not (tmp_path / "net" / "model.int8.onnx").exists()


# --- edgec's own model.int8.onnx: the same int8 program again -------------------------------

def _same_program(a, b) -> None:
    assert [(c.op, c.kernel, c.params_type) for c in a.calls] == \
        [(c.op, c.kernel, c.params_type) for c in b.calls]
    for ca, cb in zip(a.calls, b.calls):
        assert ca.fields.keys() == cb.fields.keys(), ca.name
        for key, va in ca.fields.items():
            vb = cb.fields[key]
            if isinstance(va, ConstArray):
                assert va.ctype == vb.ctype and np.array_equal(va.data, vb.data), (ca.name, key)
            else:
                assert va == vb, (ca.name, key)


@pytest.mark.parametrize("name,run", [("tiny_cnn", True), ("small_cnn", False),
                                      ("activations_and_moves", False)])
def test_round_trip_of_edgec_qdq_artifact(name, run, ort_models, tmp_path):
    """tiny_cnn: folded BatchNorm, ReLU6 fused as a clamp, softmax; SmallCnn: depthwise,
    residual add, max pool; ActivationsAndMoves: the elementwise and data-movement ops."""
    if name == "small_cnn":
        model = onnx.load(str(ort_models["float"]))
    elif name == "activations_and_moves":
        model = export_onnx(ActivationsAndMoves().eval(), torch.zeros(SHAPE), opset_version=17)
    else:
        model = exported(name)
    onnx.save(model, tmp_path / "float.onnx")
    shape = INPUT_SHAPES.get(name, SHAPE)
    calib = np.random.default_rng(1).standard_normal((16, *shape[1:]))
    np.save(tmp_path / "calib.npy", calib.astype(np.float32))
    assert edgec("compile", tmp_path / "float.onnx", "--target", "stm32f746", "--calib",
                 tmp_path / "calib.npy", "-o", tmp_path / "a", "--no-build") == 0
    # --io int8: the artifact's float boundary QuantizeLinear / DequantizeLinear dropped, as
    # the first compile's model takes and gives int8
    compile_model(CompileOptions(model=tmp_path / "a" / "model.int8.onnx", target="stm32f746",
                                 out_dir=tmp_path / "b", io="int8", build=run, run=run))
    a = golden_io.load_program(tmp_path / "a" / golden_io.FILE_NAME)
    b = golden_io.load_program(tmp_path / "b" / golden_io.FILE_NAME)
    _same_program(a, b)
    if name == "activations_and_moves":
        assert {"hard_swish", "logistic", "mul", "leaky_relu", "add", "tanh", "transpose",
                "concat", "resize_nearest", "strided_slice", "avg_pool2d"} <= \
            {c.op for c in b.calls}
    ja, jb = (json.loads((tmp_path / d / "model.json").read_text())["io"] for d in "ab")
    for spec in ja["inputs"] + ja["outputs"]:  # the artifact stores scales as float32
        spec["scale"] = float(np.float32(spec["scale"]))
    assert ja == jb
    shape = a.graph.tensors[a.graph.inputs[0]].shape
    xs = np.random.default_rng(2).integers(-128, 128, size=(16, *shape), dtype=np.int8)
    for x in xs:
        ya = run_program(a, {a.graph.inputs[0]: x})[a.graph.outputs[0]]
        yb = run_program(b, {b.graph.inputs[0]: x})[b.graph.outputs[0]]
        assert ya.dtype == yb.dtype == np.int8 and np.array_equal(ya, yb)
    if run:  # the firmware of the re-import matched its golden model on QEMU
        rep = json.loads((tmp_path / "b" / "report.json").read_text())
        assert rep["check"]["mismatches"] == 0 and rep["check"]["samples"] >= 8


def test_io_model_wraps_the_same_int8_graph(ort_models):
    model = onnx.load(str(ort_models["int8"]))
    g8, gf = load_onnx_qdq(model, io="int8"), load_onnx_qdq(model, io="model")
    assert gf.nodes[0].op == "quantize" and gf.nodes[-1].op == "dequantize"
    assert [n.op for n in gf.nodes[1:-1]] == [n.op for n in g8.nodes]
    assert gf.tensors["input"].dtype == "float32" and g8.tensors["input"].dtype == "int8"
    assert gf.inputs == g8.inputs == ["input"] and gf.outputs == g8.outputs == ["logits"]
    assert gf.io_layout == g8.io_layout == {"input": "NCHW", "logits": ""}


# --- what the IR cannot express: one line naming the node -----------------------------------

def _per_axis_activation(m):
    _set_init(m, "/c2/Conv_output_0_scale", np.full(8, 0.01, np.float32))
    _set_init(m, "/c2/Conv_output_0_zero_point", np.zeros(8, np.int8))
    return "/c2/Conv_output_0_QuantizeLinear", "per-axis"


def _int16_activation(m):
    _set_init(m, "/c2/Conv_output_0_zero_point", np.int16(0))
    return "/c2/Conv_output_0_QuantizeLinear", "int16 activations"


def _float_op_left(m):
    """GlobalAveragePool's pair removed: it and the Flatten after it would run in float."""
    q = _node(m, "/GlobalAveragePool_output_0_QuantizeLinear")
    dq = _node(m, "/GlobalAveragePool_output_0_DequantizeLinear")
    for n in m.graph.node:
        n.input[:] = [q.input[0] if i == dq.output[0] else i for i in n.input]
    m.graph.node.remove(q)
    m.graph.node.remove(dq)
    return "/GlobalAveragePool", "left in float"


def _asymmetric_weights(m):
    _set_init(m, "c1.weight_zero_point", np.full(8, 3, np.int8))
    return "c1.weight_DequantizeLinear", "not symmetric int8"


def _bias_scale(m):
    _set_init(m, "c2.bias_quantized_scale", _init(m, "c2.bias_quantized_scale") * 2)
    return "/c2/Conv", "input_scale * weight_scale"


def _weights_per_input_channel(m):
    _set_init(m, "c2.weight_scale", np.full(8, 0.01, np.float32))
    _node(m, "c2.weight_DequantizeLinear").attribute[0].i = 1
    return "c2.weight_DequantizeLinear", "axis 1"


def _quantized_without_dequantize(m):
    _node(m, "/dw/Conv").input[0] = "/Relu_output_0_QuantizeLinear_Output"
    return "/Relu_output_0_QuantizeLinear", "feeds Conv node '/dw/Conv'"


def _qoperator(m):
    m.graph.node.append(helper.make_node("QLinearConv", ["a"] * 8, ["b"], name="qc"))
    return "qc", "QOperator format"


BAD = [_per_axis_activation, _int16_activation, _float_op_left, _asymmetric_weights,
       _bias_scale, _weights_per_input_channel, _quantized_without_dequantize, _qoperator]


@pytest.mark.parametrize("mutate", BAD, ids=[f.__name__.strip("_") for f in BAD])
def test_inexpressible_qdq_is_one_clear_line(ort_models, mutate):
    model = onnx.load(str(ort_models["int8"]))
    node, why = mutate(model)
    with pytest.raises(EdgecError) as e:
        if is_qdq(model):
            load_onnx_qdq(model)
    msg = str(e.value)
    assert why in msg and f"'{node}'" in msg and "\n" not in msg


def test_cli_error_exits_2_without_output(ort_models, tmp_path, capsys):
    model = onnx.load(str(ort_models["int8"]))
    _bias_scale(model)
    onnx.save(model, tmp_path / "bad.onnx")
    assert edgec("compile", tmp_path / "bad.onnx", "--target", "stm32f746",
                 "-o", tmp_path / "out", "--no-build") == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("edgec: error: bad.onnx: conv2d node '/c2/Conv'") and "\n" not in err
    assert not (tmp_path / "out").exists()


def test_mutated_qdq_models_import_or_fail_in_one_line(ort_models):
    """benchmarks/fuzz.py's ONNX mutations of QDQ models (dims, attributes, initializer
    types and values, rewired inputs): each imports and lowers, or is an EdgecError."""
    import importlib.util
    import random
    import sys
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "benchmarks" / "fuzz.py"
    spec = importlib.util.spec_from_file_location("edgec_fuzz_qdq", path)
    fuzz = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = fuzz
    spec.loader.exec_module(fuzz)
    seeds = [ort_models[k].read_bytes() for k in ("int8", "uint8")]
    rng = random.Random(5)
    accepted = rejected = 0
    for _ in range(60):
        try:
            blob, _ = fuzz.mutate_onnx(rng.choice(seeds), rng)
            model = onnx.ModelProto.FromString(blob)
            onnx.checker.check_model(model)
        except Exception:  # the mutator's or the checker's refusal: not edgec's input
            continue
        try:
            if is_qdq(model):
                lower(run_passes(load_onnx_qdq(model, io=rng.choice(["model", "int8"])),
                                 quantized=True))
                accepted += 1
        except EdgecError as e:
            assert "\n" not in str(e)
            rejected += 1
    assert accepted > 0 and rejected > 0


def test_opset13_hard_swish_is_one_op():
    """Before opset 14 HardSwish is written x * HardSigmoid(x, 1/6, 1/2) (by torch's
    exporter, and by edgec's artifact): the float frontend reads it as one hard_swish."""
    from edgec.toolchain.float_exec import run_float
    from edgec.toolchain.frontend import load_onnx

    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.Hardswish()).eval()
    proto = export_onnx(model, torch.zeros(SHAPE), opset_version=13)
    assert "HardSigmoid" in {n.op_type for n in proto.graph.node}
    g = load_onnx(proto)
    assert [n.op for n in g.nodes] == ["conv2d", "hard_swish"]
    x = torch.randn(SHAPE)
    with torch.no_grad():
        want = model(x).numpy()
    got = run_float(g, {g.inputs[0]: x.numpy().transpose(0, 2, 3, 1)})[g.outputs[0]]
    np.testing.assert_allclose(got.transpose(0, 3, 1, 2), want, atol=1e-5)
