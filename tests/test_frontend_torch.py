"""PyTorch frontend: TorchScript and torch.export archives in, ONNX out; unsafe files refused."""
from __future__ import annotations

import shutil
import warnings

import numpy as np
import pytest
import torch
from torch import nn

from edgec.toolchain.errors import EdgecError, UnsupportedOpError
from edgec.toolchain.float_exec import run_float, to_ir_layout
from edgec.toolchain.frontend import load_onnx, load_torch
from edgec.toolchain.frontend.torch import detect_format
from edgec.toolchain.passes import run_passes
from models import INPUT_SHAPES, example_input, tiny_cnn

SHAPE = INPUT_SHAPES["tiny_cnn"]
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")  # torch.jit.* in fixtures


def matches_torch(proto, model, x) -> bool:
    graph = run_passes(load_onnx(proto))
    out = run_float(graph, {graph.inputs[0]: to_ir_layout(x.numpy(), "NCHW")})
    with torch.no_grad():
        ref = model(x).numpy()
    return float(np.abs(out[graph.outputs[0]] - ref).max()) < 1e-4


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("torch_files")
    model, x = tiny_cnn(), example_input("tiny_cnn")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.jit.save(torch.jit.trace(model, x), str(d / "traced.pt"))
        torch.export.save(torch.export.export(model, (x,)), str(d / "exported.pt2"))
        torch.save(model, str(d / "pickled.pt"))
        torch.save(model.state_dict(), str(d / "weights.pt"))
        torch.save({"model_state_dict": model.state_dict(), "epoch": 3}, str(d / "ckpt.pth"))
        train = tiny_cnn().train()
        torch.export.save(torch.export.export(train, (x,)), str(d / "train_mode.pt2"))
    return d


def test_torchscript_archive(files):
    proto = load_torch(files / "traced.pt", input_shape=SHAPE)
    assert {"Conv", "Gemm"} <= {n.op_type for n in proto.graph.node}
    assert matches_torch(proto, tiny_cnn(), example_input("tiny_cnn", seed=3))


def test_torchscript_needs_an_input_shape(files):
    with pytest.raises(EdgecError, match="traced.pt: the input shape is unknown; pass --input-shape"):
        load_torch(files / "traced.pt")


def test_export_archive_takes_its_shape_from_the_archive_quietly(files, capfd):
    proto = load_torch(files / "exported.pt2")
    out, err = capfd.readouterr()
    assert out == "" and err == ""
    dims = [d.dim_value for d in proto.graph.input[0].type.tensor_type.shape.dim]
    assert dims == list(SHAPE)
    assert matches_torch(proto, tiny_cnn(), example_input("tiny_cnn", seed=4))


def test_format_is_detected_from_contents(files, tmp_path):
    shutil.copy(files / "exported.pt2", tmp_path / "a.bin")
    shutil.copy(files / "traced.pt", tmp_path / "b.pt2")
    shutil.copy(files / "pickled.pt", tmp_path / "c.zip")
    assert detect_format(tmp_path / "a.bin") == "torch.export"
    assert detect_format(tmp_path / "b.pt2") == "torchscript"
    assert detect_format(tmp_path / "c.zip") == "pickle"
    (tmp_path / "d.pt").write_bytes(b"hello, not a model")
    with pytest.raises(EdgecError, match="d.pt: not a PyTorch model file"):
        load_torch(tmp_path / "d.pt", input_shape=SHAPE)


def test_plain_pickle_needs_trust(files):
    with pytest.raises(EdgecError, match="pickled.pt: a pickled PyTorch model.*--trust-pickle"):
        load_torch(files / "pickled.pt", input_shape=SHAPE)
    proto = load_torch(files / "pickled.pt", input_shape=SHAPE, trust_pickle=True)
    assert matches_torch(proto, tiny_cnn(), example_input("tiny_cnn", seed=5))


@pytest.mark.parametrize("name", ["weights.pt", "ckpt.pth"])
def test_state_dict_is_refused_with_how_to_save(files, name):
    with pytest.raises(EdgecError, match=f"{name}: holds a state_dict.*torch.jit.save.*torch.export"):
        load_torch(files / name, input_shape=SHAPE, trust_pickle=True)


def test_training_mode_program_is_refused(files):
    with pytest.raises(EdgecError, match="exported in training mode.*model.eval()"):
        load_torch(files / "train_mode.pt2")


def test_truncated_archive(files, tmp_path):
    data = (files / "traced.pt").read_bytes()
    (tmp_path / "cut.pt").write_bytes(data[: len(data) // 2])
    with pytest.raises(EdgecError, match="cut.pt: a damaged zip archive"):
        load_torch(tmp_path / "cut.pt", input_shape=SHAPE)


def test_unsupported_op_through_torch_names_op_and_node(tmp_path):
    model = nn.Sequential(nn.Linear(8, 8), nn.Softplus()).eval()
    torch.jit.save(torch.jit.trace(model, torch.randn(1, 8)), str(tmp_path / "softplus.pt"))
    proto = load_torch(tmp_path / "softplus.pt", input_shape=(1, 8))
    with pytest.raises(UnsupportedOpError,
                       match=r"softplus.pt: unsupported op 'Softplus' \(node '.*Softplus.*'\)"):
        load_onnx(proto)
