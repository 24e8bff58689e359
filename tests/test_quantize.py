"""Quantization: TFLite int8 params, calibration on the source model, and the QDQ artifact."""
from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
from torch import nn

from edgec.toolchain.errors import EdgecError
from edgec.toolchain.float_exec import run_float, to_ir_layout, to_source_layout
from edgec.toolchain.frontend import load_onnx
from edgec.toolchain.ir import Graph, Node, QuantParams, Tensor
from edgec.toolchain.passes import run_passes
from edgec.toolchain.quantize import calibrate, generate_calibration_data, quantize, write_qdq_onnx
from edgec.toolchain.quantize.calibrate import source_input_shape
from edgec.toolchain.quantize.tflite_int8 import (activation_params, quantize_bias,
                                                  quantize_weights)
from models import BUILDERS, INPUT_SHAPES, export_onnx, exported

MODELS = list(BUILDERS)


# --- the arithmetic ---------------------------------------------------------------------------

def test_activation_params_follow_the_tflite_formula():
    q = activation_params(-1.0, 3.0)
    assert q.scale == pytest.approx(4.0 / 255) and int(q.zero_point) == round(-128 + 1.0 / (4 / 255))
    q = activation_params(0.5, 2.0)  # widened to include 0: zero maps to -128 exactly
    assert q.scale == pytest.approx(2.0 / 255) and int(q.zero_point) == -128
    q = activation_params(-3.0, -1.0)
    assert q.scale == pytest.approx(3.0 / 255) and int(q.zero_point) == 127
    q = activation_params(0.0, 0.0)  # a constant-zero tensor still gets a usable scale
    assert q.scale > 0 and -128 <= int(q.zero_point) <= 127


def test_weights_are_symmetric_per_channel_and_bias_uses_the_accumulator_scale():
    w = np.zeros((3, 2, 2, 4), np.float32)
    w[0] = 0.5
    w[1, 0, 0, 0] = -2.0
    q, qp = quantize_weights(w, axis=0)
    assert q.dtype == np.int8 and qp.axis == 0 and np.all(qp.zero_point == 0)
    np.testing.assert_allclose(qp.scale, [0.5 / 127, 2.0 / 127, 1.0])  # all-zero channel -> 1
    assert q[0].max() == 127 and q[1].min() == -127 and not q[2].any()
    dw = np.random.default_rng(0).standard_normal((1, 3, 3, 5)).astype(np.float32)
    _, dqp = quantize_weights(dw, axis=3)
    np.testing.assert_allclose(dqp.scale, np.abs(dw).max(axis=(0, 1, 2)) / 127)
    b, bqp = quantize_bias(np.array([0.1, -0.2, 0.0]), 0.05, qp.scale)
    assert b.dtype == np.int32 and np.all(bqp.zero_point == 0)
    np.testing.assert_allclose(bqp.scale, 0.05 * qp.scale)
    np.testing.assert_array_equal(b, np.round(np.array([0.1, -0.2, 0.0]) / (0.05 * qp.scale)))


def test_float_simulation_rounds_through_quantize_ops():
    q = QuantParams.per_tensor(0.1, 0)
    g = Graph({"x": Tensor("x", (1, 4), "float32"), "q": Tensor("q", (1, 4), "int8", quant=q),
               "y": Tensor("y", (1, 4), "float32")},
              [Node("q", "quantize", ["x"], ["q"]), Node("d", "dequantize", ["q"], ["y"])],
              ["x"], ["y"])
    y = run_float(g, {"x": np.array([[0.04, 0.16, 100.0, -0.26]])})["y"]
    np.testing.assert_allclose(y, [[0.0, 0.2, 12.7, -0.3]], atol=1e-6)  # saturates at 127


# --- calibration and the quantized graph ------------------------------------------------------

def pipeline(proto, n_calib=32, seed=0):
    """float ONNX -> (float IR after passes, ranges, int8 IR), calibrated on N(0, 1) data."""
    graph = run_passes(load_onnx(proto))
    samples = generate_calibration_data(source_input_shape(graph), n_calib, seed)
    ranges = calibrate(proto, graph, samples)
    return graph, ranges, quantize(graph, ranges)


@pytest.fixture(scope="module")
def quantized():
    return {name: pipeline(exported(name)) for name in MODELS}


def test_calibration_ranges_match_the_float_reference(quantized):
    graph, ranges, _ = quantized["tiny_cnn"]
    activations = [*graph.inputs, *(n.outputs[0] for n in graph.nodes)]
    assert sorted(ranges) == sorted(activations)
    samples = generate_calibration_data((1, 3, 16, 16), 32, 0)
    lo = {t: np.inf for t in activations}
    hi = {t: -np.inf for t in activations}
    for s in samples:
        vals = run_float(graph, {graph.inputs[0]: to_ir_layout(s[None], "NCHW")}, keep_all=True)
        for t in activations:
            lo[t], hi[t] = min(lo[t], vals[t].min()), max(hi[t], vals[t].max())
    for t in activations:
        assert ranges[t] == pytest.approx((lo[t], hi[t]), abs=1e-4), t


def test_calibration_falls_back_to_the_float_reference_for_unknown_tensors():
    proto = exported("tiny_cnn")
    graph = run_passes(load_onnx(proto))
    conv = graph.nodes[0]
    old = conv.outputs[0]
    graph.tensors["renamed"] = graph.tensors.pop(old)
    graph.tensors["renamed"].name = "renamed"
    conv.outputs[0] = "renamed"
    for n in graph.consumers(old):
        n.inputs = ["renamed" if i == old else i for i in n.inputs]
    ranges = calibrate(proto, graph, generate_calibration_data((1, 3, 16, 16), 4, 0))
    assert ranges["renamed"][0] == 0.0 and ranges["renamed"][1] > 0  # a fused ReLU's output


def test_wrong_calibration_shape_names_both_shapes():
    proto = exported("tiny_cnn")
    graph = run_passes(load_onnx(proto))
    with pytest.raises(EdgecError, match=r"shape \[8, 16, 16, 3\].*input '.*' is \[1, 3, 16, 16\]"):
        calibrate(proto, graph, np.zeros((8, 16, 16, 3), np.float32))


def test_quantized_graph_follows_the_spec(quantized):
    graph, ranges, q = quantized["tiny_cnn"]
    for name, t in q.tensors.items():
        assert t.quant is not None, name
        if t.is_const:
            assert t.dtype in ("int8", "int32") and t.data.dtype == np.dtype(t.dtype)
        else:
            assert t.dtype == "int8" and not t.quant.is_per_channel
    by_op = {n.op: n for n in q.nodes}
    conv = by_op["conv2d"]
    assert q.tensors[conv.inputs[1]].quant.axis == 0 and q.tensors[conv.inputs[2]].dtype == "int32"
    np.testing.assert_allclose(q.tensors[conv.inputs[2]].quant.scale,
                               q.tensors[conv.inputs[0]].quant.scale
                               * q.tensors[conv.inputs[1]].quant.scale)
    for op in ("max_pool2d", "mean"):
        n = by_op[op]
        assert q.tensors[n.outputs[0]].quant is q.tensors[n.inputs[0]].quant
    sm = q.tensors[by_op["softmax"].outputs[0]].quant
    assert float(sm.scale) == 1 / 256 and int(sm.zero_point) == -128
    dw = next(n for n in quantized["mobilenetv2_mini"][2].nodes if n.op == "depthwise_conv2d")
    assert quantized["mobilenetv2_mini"][2].tensors[dw.inputs[1]].quant.axis == 3
    assert graph.tensors[conv.inputs[1]].dtype == "float32"  # the float graph is untouched


def test_quantize_needs_ranges_and_passes():
    graph = run_passes(load_onnx(exported("tiny_cnn")))
    with pytest.raises(EdgecError, match="no calibration range"):
        quantize(graph, {})
    raw = load_onnx(exported("tiny_cnn", keep_batchnorm=True))
    ranges = {t: (-1.0, 1.0) for t in raw.tensors}
    with pytest.raises(EdgecError, match="run_passes"):
        quantize(raw, ranges)


# --- the QDQ artifact -------------------------------------------------------------------------

def cosine(a, b) -> float:
    a, b = np.ravel(a).astype(np.float64), np.ravel(b).astype(np.float64)
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))


def run_qdq(path, xs, optimize=True):
    opts = ort.SessionOptions()
    if not optimize:  # plain float QDQ semantics, no int8 kernel fusion
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    sess = ort.InferenceSession(str(path), opts)
    name = sess.get_inputs()[0].name
    return np.stack([sess.run(None, {name: x[None]})[0][0] for x in xs])


def check_qdq(model, qgraph, path, shape):
    write_qdq_onnx(qgraph, path)
    proto = onnx.load(str(path))
    onnx.checker.check_model(proto, full_check=True)
    assert proto.graph.input[0].name == qgraph.inputs[0]
    assert proto.graph.output[0].name == qgraph.outputs[0]
    xs = generate_calibration_data(shape, 16, seed=7)
    with torch.no_grad():
        ref = model(torch.from_numpy(xs)).numpy()
    got = run_qdq(path, xs)
    assert cosine(got, ref) >= 0.98
    # against the float simulation of the quantized graph: the same math in float64 instead of
    # float32, so only values on a rounding tie (an average of int8 codes is often one) may
    # land one step apart, and that step may move a later value by another one
    plain = run_qdq(path, xs, optimize=False)
    sim = np.concatenate([run_float(qgraph, {qgraph.inputs[0]: to_ir_layout(x[None], "NCHW")},
                                    fake_quant=True)[qgraph.outputs[0]] for x in xs])
    sim = to_source_layout(sim, qgraph.io_layout[qgraph.outputs[0]])
    lsb = float(qgraph.tensors[qgraph.outputs[0]].quant.scale)
    assert np.abs(plain - sim).max() <= 2 * lsb + 1e-6
    assert cosine(plain, sim) >= 0.999
    return proto


@pytest.mark.parametrize("name", MODELS)
def test_qdq_model_runs_in_onnxruntime_and_tracks_torch(quantized, name, tmp_path):
    proto = check_qdq(BUILDERS[name](), quantized[name][2], tmp_path / f"{name}.int8.onnx",
                      INPUT_SHAPES[name])
    ops = {n.op_type for n in proto.graph.node}
    assert {"QuantizeLinear", "DequantizeLinear", "Conv", "Gemm", "GlobalAveragePool"} <= ops
    assert {"Add"} <= ops if name != "tiny_cnn" else {"MaxPool", "Softmax", "Clip"} <= ops
    weights = [n for n in proto.graph.node if n.op_type == "DequantizeLinear"
               and any(i.name == n.input[0] and i.data_type == onnx.TensorProto.INT8
                       for i in proto.graph.initializer)]
    assert weights and all(helper_attr(n, "axis") == 0 for n in weights)


def helper_attr(node, name):
    return next((onnx.helper.get_attribute_value(a) for a in node.attribute if a.name == name),
                None)


class SpatialFlatten(nn.Module):
    """Flatten of a 4x4x6 map into Linear: the FC weights are permuted to NHWC order."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.conv = nn.Conv2d(3, 6, 3, stride=2, padding=1)
        self.pool = nn.AvgPool2d(2, stride=1, padding=1, count_include_pad=False)
        self.fc = nn.Linear(6 * 5 * 5, 10)

    def forward(self, x):
        return self.fc(torch.flatten(torch.relu(self.pool(torch.relu(self.conv(x)))), 1))


def test_qdq_transposes_before_a_permuted_fc(tmp_path):
    model, shape = SpatialFlatten().eval(), (1, 3, 8, 8)
    proto = export_onnx(model, torch.randn(shape))
    _, _, q = pipeline(proto)
    assert [n.op for n in q.nodes] == ["conv2d", "avg_pool2d", "reshape", "fully_connected"]
    qdq = check_qdq(model, q, tmp_path / "flat.int8.onnx", shape)
    ops = [n.op_type for n in qdq.graph.node]
    flat = ops.index("Flatten") if "Flatten" in ops else ops.index("Reshape")
    assert ops.index("Transpose") < flat < ops.index("Gemm")
