"""Whole networks from PyTorch: compile, build, run on QEMU; exact match with the golden model
(checked inside `edgec compile`, and again here from the outside), and agreement with PyTorch."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from conftest import calib_like, cosine, edgec
from models import INPUT_SHAPES, mobilenetv2_mini, resnet_mini


def _save_torchscript(model, shape, path):
    with torch.no_grad():
        torch.jit.save(torch.jit.trace(model, torch.zeros(shape)), str(path))


def _save_export(model, shape, path):
    torch.export.save(torch.export.export(model, (torch.zeros(shape),)), str(path))


NETWORKS = {
    # name: (builder, saver) -- one TorchScript, one torch.export archive; one has residual adds
    "mobilenetv2_mini": (mobilenetv2_mini, _save_torchscript, "model.pt"),
    "resnet_mini": (resnet_mini, _save_export, "model.pt2"),
}


@pytest.fixture(scope="module", params=sorted(NETWORKS))
def compiled(request, tmp_path_factory):
    name = request.param
    builder, saver, fname = NETWORKS[name]
    shape = INPUT_SHAPES[name]
    tmp = tmp_path_factory.mktemp(name)
    model = builder()
    saver(model, shape, tmp / fname)
    calib = calib_like(shape, 64, seed=1)
    np.save(tmp / "calib.npy", calib)
    rc = edgec("compile", tmp / fname, "--target", "stm32f746", "--calib", tmp / "calib.npy",
               "-o", tmp / "net")
    assert rc == 0
    return name, model, shape, tmp


def test_report_has_required_figures_and_exact_check(compiled):
    _, _, _, tmp = compiled
    rep = json.loads((tmp / "net" / "report.json").read_text())
    m, f = rep["memory"], rep["flash"]
    assert 0 < m["arena_bytes"] <= m["sram_budget_bytes"] and m["lower_bound_bytes"] > 0
    # in-place layers may take the arena below the layer-wise bound, never below one tensor
    assert m["arena_bytes"] >= max(l["output_bytes"] for l in rep["layers"])
    assert 0 < m["stack_bytes"] < m["sram_budget_bytes"]
    assert f["weights_bytes"] > 0 and f["code_bytes"] > 0
    assert f["total_bytes"] >= f["weights_bytes"] + f["code_bytes"]
    assert rep["latency"]["instructions"] > sum(l["macs"] for l in rep["layers"]) // 4
    assert rep["check"]["mismatches"] == 0 and rep["check"]["samples"] >= 8
    assert all(l["macs"] >= 0 and l["output_bytes"] > 0 for l in rep["layers"])
    for name in ("edgec_model.h", "edgec_model.c"):
        assert (tmp / "net" / "src" / name).is_file()
    assert (tmp / "net" / "model.int8.onnx").is_file()


def test_emulator_matches_golden_and_pytorch(compiled):
    """edgec run's int8 output equals the golden model's; dequantized, it agrees with PyTorch."""
    from edgec.toolchain import check, runner
    from edgec.toolchain.lower import lower  # noqa: F401  (the program is rebuilt below)
    name, model, shape, tmp = compiled
    x = calib_like(shape, 6, seed=7)
    out = runner.run_compiled(tmp / "net", x)
    with torch.no_grad():
        ref = model(torch.from_numpy(x)).numpy()
    assert out.y.shape == ref.shape
    for i in range(len(x)):
        assert cosine(out.y[i], ref[i]) >= 0.98, (name, i, cosine(out.y[i], ref[i]))
    assert len(out.instructions) == len(x)
    assert runner.run_compiled(tmp / "net", x).instructions == out.instructions  # deterministic

    # int8 in, int8 out, compared with the golden model computed here from the QDQ-free IR
    meta = runner.load_compiled(tmp / "net")
    spec_in = meta["io"]["inputs"][0]
    q = check.quantize_input(x, spec_in)
    out8 = runner.run_compiled(tmp / "net", q)
    assert out8.y.dtype == np.int8
    from edgec.toolchain.options import CompileOptions
    from edgec.toolchain import calibdata, source as sources
    from edgec.toolchain.passes import run_passes
    from edgec.toolchain.quantize import calibrate, quantize
    from edgec.toolchain.lower import lower as lower_graph
    opts = CompileOptions(model=next(tmp.glob("model.pt*")), target="stm32f746",
                          out_dir=tmp / "unused", calib=tmp / "calib.npy")
    src = sources.load_source(opts)
    samples, _ = calibdata.load_or_generate(opts, src)
    graph = run_passes(src.graph)
    program = lower_graph(quantize(graph, calibrate(src.onnx, graph, samples)))
    golden = check.golden_outputs(program, meta["io"], check.to_model_layout(q, spec_in))
    assert np.array_equal(check.to_source_layout(golden, meta["io"]["outputs"][0]), out8.y)


def test_qdq_artifact_runs_in_onnxruntime(compiled):
    import onnxruntime as ort
    _, model, shape, tmp = compiled
    sess = ort.InferenceSession(str(tmp / "net" / "model.int8.onnx"),
                                providers=["CPUExecutionProvider"])
    x = calib_like(shape, 1, seed=3)
    y = sess.run(None, {sess.get_inputs()[0].name: x})[0]
    with torch.no_grad():
        ref = model(torch.from_numpy(x)).numpy()
    assert cosine(y, ref) >= 0.98


def test_generated_code_is_deterministic(compiled, tmp_path):
    name, _, _, tmp = compiled
    fname = NETWORKS[name][2]
    rc = edgec("compile", tmp / fname, "--calib", tmp / "calib.npy", "-o", tmp_path / "again",
               "--no-build")
    assert rc == 0
    for f in sorted((tmp / "net" / "src").iterdir()):
        assert f.read_bytes() == (tmp_path / "again" / "src" / f.name).read_bytes(), f.name
