"""ONNX frontend: NCHW models import into the NHWC IR and compute what torch computes."""
from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
from onnx import TensorProto, helper, numpy_helper
from torch import nn

from edgec.toolchain.errors import EdgecError, UnsupportedOpError
from edgec.toolchain.float_exec import run_float, to_ir_layout, to_source_layout
from edgec.toolchain.frontend import load_onnx
from edgec.toolchain.ir import verify
from edgec.toolchain.passes import run_passes
from models import BUILDERS, example_input, export_onnx, exported

MODELS = list(BUILDERS)


def torch_vs_ir(model: nn.Module, graph, x: torch.Tensor) -> float:
    """max |torch(x) - run_float(graph, x)| with the I/O layouts converted."""
    with torch.no_grad():
        ref = model(x).numpy()
    name = graph.inputs[0]
    out = run_float(graph, {name: to_ir_layout(x.numpy(), graph.io_layout[name])})
    y = graph.outputs[0]
    return float(np.abs(to_source_layout(out[y], graph.io_layout[y]) - ref).max())


@pytest.mark.parametrize("name", MODELS)
@pytest.mark.parametrize("keep_batchnorm", [False, True], ids=["bn_folded_by_torch", "bn_kept"])
def test_models_match_torch_before_and_after_passes(name, keep_batchnorm):
    graph = load_onnx(exported(name, keep_batchnorm=keep_batchnorm))
    verify(graph)
    model, x = BUILDERS[name](), example_input(name, seed=1)
    assert ("batch_norm" in {n.op for n in graph.nodes}) == keep_batchnorm
    assert torch_vs_ir(model, graph, x) < 1e-4
    after = run_passes(graph)
    assert {n.op for n in after.nodes} <= {"conv2d", "depthwise_conv2d", "fully_connected", "add",
                                            "max_pool2d", "mean", "softmax", "reshape"}
    assert torch_vs_ir(model, after, x) < 1e-4


@pytest.mark.parametrize("name", MODELS)
def test_dynamo_exports_match_torch(name):
    graph = run_passes(load_onnx(exported(name, dynamo=True)))
    assert torch_vs_ir(BUILDERS[name](), graph, example_input(name, seed=2)) < 1e-4


def test_names_layout_and_weights():
    proto = exported("tiny_cnn", keep_batchnorm=True)
    graph = load_onnx(proto)
    (inp,), (out,) = proto.graph.input, proto.graph.output
    assert graph.inputs == [inp.name] and graph.outputs == [out.name]
    assert graph.io_layout == {inp.name: "NCHW", out.name: ""}
    assert graph.tensors[inp.name].shape == (1, 16, 16, 3)  # NHWC
    conv = graph.nodes[0]
    assert conv.op == "conv2d" and conv.attrs["pads"] == (1, 1, 1, 1)
    assert graph.tensors[conv.inputs[1]].shape == (8, 3, 3, 3)  # [C_OUT, KH, KW, C_IN]
    onnx_w = numpy_helper.to_array(next(i for i in proto.graph.initializer
                                        if i.name == conv.inputs[1]))
    np.testing.assert_array_equal(graph.tensors[conv.inputs[1]].data, onnx_w.transpose(0, 2, 3, 1))
    # every activation keeps its ONNX name (calibration ranges are looked up by it)
    onnx_names = {o for n in proto.graph.node for o in n.output}
    assert all(o in onnx_names for n in graph.nodes for o in n.outputs)


class FlattenNet(nn.Module):
    """conv -> flatten of a 4x5x6 map -> linear -> matmul + add (MatMul+Add -> FC)."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.conv = nn.Conv2d(3, 4, 3, padding=1)
        self.fc = nn.Linear(4 * 5 * 6, 7)
        self.w = nn.Parameter(torch.randn(7, 5))
        self.b = nn.Parameter(torch.randn(5))

    def forward(self, x):
        y = self.fc(self.conv(x).view(x.size(0), -1))
        return torch.matmul(y, self.w) + self.b


def test_flatten_permutes_fc_weights_and_folds_shape_chain():
    model, x = FlattenNet().eval(), torch.randn(1, 3, 5, 6)
    # dynamic batch + no folding: the exporter leaves Shape->Gather->Unsqueeze->Concat->Reshape
    proto = export_onnx(model, x, keep_batchnorm=True, input_names=["input"],
                        dynamic_axes={"input": {0: "batch"}})
    assert {"Shape", "Gather", "Concat", "Reshape", "MatMul"} <= {n.op_type for n in proto.graph.node}
    graph = load_onnx(proto)
    assert graph.tensors["input"].shape == (1, 5, 6, 3)  # dynamic batch -> 1
    assert [n.op for n in graph.nodes] == ["conv2d", "reshape", "fully_connected", "fully_connected"]
    assert torch_vs_ir(model, graph, x) < 1e-4
    after = run_passes(graph)
    # the flatten stays as a view (no code, no bytes): the FC reads the conv's NHWC bytes
    assert [n.op for n in after.nodes] == ["conv2d", "reshape", "fully_connected",
                                           "fully_connected"]
    assert torch_vs_ir(model, after, x) < 1e-4


def test_depthwise_with_multiplier_and_avgpool_without_padding_count():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(4, 8, 3, stride=2, padding=1, groups=4),
                          nn.AvgPool2d(3, stride=1, padding=1, count_include_pad=False)).eval()
    x = torch.randn(1, 4, 9, 9)
    graph = load_onnx(export_onnx(model, x))
    dw = graph.nodes[0]
    assert dw.op == "depthwise_conv2d" and dw.attrs["depth_multiplier"] == 2
    assert graph.tensors[dw.inputs[1]].shape == (1, 3, 3, 8)
    assert torch_vs_ir(model, graph, x) < 1e-4


def test_grouped_conv_is_unsupported():
    model = nn.Conv2d(4, 8, 3, groups=2).eval()
    with pytest.raises(UnsupportedOpError, match=r"group=2.*only group=1 or depthwise"):
        load_onnx(export_onnx(model, torch.randn(1, 4, 8, 8)))


def test_avgpool_counting_padding_is_refused():
    model = nn.AvgPool2d(3, stride=1, padding=1, count_include_pad=True).eval()
    with pytest.raises(EdgecError, match="count_include_pad=1"):
        load_onnx(export_onnx(model, torch.randn(1, 2, 6, 6)))


def test_ceil_mode_is_refused():
    model = nn.MaxPool2d(2, ceil_mode=True).eval()
    with pytest.raises(EdgecError, match="ceil_mode"):
        load_onnx(export_onnx(model, torch.randn(1, 2, 7, 7)))


def _single_node_model(node, x_shape, y_shape, inits=(), opset=13):
    graph = helper.make_graph(
        [node], "t", [helper.make_tensor_value_info("x", TensorProto.FLOAT, x_shape)],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, y_shape)], list(inits))
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])


@pytest.mark.parametrize("auto_pad", ["SAME_UPPER", "SAME_LOWER", "VALID"])
@pytest.mark.parametrize("op", ["Conv", "MaxPool", "AveragePool"])
def test_auto_pad_matches_onnxruntime(op, auto_pad):
    rng = np.random.default_rng(0)
    inits, inputs, attrs = [], ["x"], dict(kernel_shape=[3, 2], strides=[2, 2], auto_pad=auto_pad)
    if op == "Conv":
        w = rng.standard_normal((5, 3, 3, 2)).astype(np.float32)
        inits, inputs = [numpy_helper.from_array(w, "w")], ["x", "w"]
    proto = _single_node_model(helper.make_node(op, inputs, ["y"], **attrs), [1, 3, 8, 7], None,
                               inits)
    x = rng.standard_normal((1, 3, 8, 7)).astype(np.float32)
    ref = ort.InferenceSession(proto.SerializeToString()).run(None, {"x": x})[0]
    graph = load_onnx(proto)
    out = run_float(graph, {"x": to_ir_layout(x, "NCHW")})["y"]
    np.testing.assert_allclose(to_source_layout(out, "NCHW"), ref, atol=1e-5)


def test_old_opset_clip_attributes_are_converted():
    node = helper.make_node("Clip", ["x"], ["y"], min=-1.0, max=2.0)
    graph = load_onnx(_single_node_model(node, [1, 4], [1, 4], opset=10))
    assert graph.nodes[0].op == "clip"
    assert (graph.nodes[0].attrs["act_min"], graph.nodes[0].attrs["act_max"]) == (-1.0, 2.0)


def test_reduce_mean_without_keepdims():
    node = helper.make_node("ReduceMean", ["x"], ["y"], axes=[2, 3], keepdims=0)
    graph = load_onnx(_single_node_model(node, [1, 6, 4, 4], None))
    assert graph.nodes[0].op == "mean" and graph.tensors["y"].shape == (1, 6)
    x = np.random.default_rng(0).standard_normal((1, 4, 4, 6))
    np.testing.assert_allclose(run_float(graph, {"x": x})["y"], x.mean(axis=(1, 2)), atol=1e-6)


def test_softmax_over_a_spatial_axis_is_refused():
    node = helper.make_node("Softmax", ["x"], ["y"], axis=3)
    with pytest.raises(UnsupportedOpError, match="axis 3"):
        load_onnx(_single_node_model(node, [1, 6, 4, 4], None))


def test_unsupported_op_names_op_node_and_alternatives():
    model = nn.Sequential(nn.Linear(4, 4), nn.Softplus()).eval()
    with pytest.raises(UnsupportedOpError) as e:
        load_onnx(export_onnx(model, torch.randn(1, 4)))
    msg = str(e.value)
    assert "unsupported op 'Softplus' (node '/1/Softplus')" in msg
    assert "supported: add, avg_pool2d, batch_matmul, clip, " in msg and "conv2d" in msg and "\n" not in msg


def test_lstm_is_unsupported():
    model = nn.LSTM(4, 8).eval()
    with pytest.raises(UnsupportedOpError, match=r"unsupported op 'LSTM' \(node '/LSTM'\)"):
        load_onnx(export_onnx(model, torch.randn(3, 1, 4)))


def test_missing_truncated_and_garbage_files(tmp_path):
    with pytest.raises(EdgecError, match="nope.onnx: no such file"):
        load_onnx(tmp_path / "nope.onnx")
    data = exported("tiny_cnn").SerializeToString()
    (tmp_path / "cut.onnx").write_bytes(data[: len(data) // 2])
    with pytest.raises(EdgecError, match=r"cut.onnx: not a valid ONNX model"):
        load_onnx(tmp_path / "cut.onnx")
    (tmp_path / "empty.onnx").write_bytes(b"")
    with pytest.raises(EdgecError, match=r"empty.onnx: not a valid ONNX model"):
        load_onnx(tmp_path / "empty.onnx")


def test_file_and_proto_inputs_agree(tmp_path):
    proto = exported("resnet_mini")
    onnx.save(proto, str(tmp_path / "m.onnx"))
    a, b = load_onnx(proto), load_onnx(tmp_path / "m.onnx")
    assert [n.op for n in a.nodes] == [n.op for n in b.nodes]
    assert b.meta["source"] == "m.onnx"
