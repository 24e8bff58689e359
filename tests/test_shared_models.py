"""The real models of shared/models through `edgec compile` for stm32f746: each firmware runs on
QEMU and its int8 output equals, value for value, both the golden model and LiteRT's reference
kernels (the compile's own check, which fails the compile on any difference); the report's
figures are consistent with the plan; the LSTM is refused with a clear error."""
from __future__ import annotations

import json

import numpy as np
import pytest

from conftest import edgec
from test_frontend_tflite import model_path

INT8_MODELS = ["hello_world_int8", "micro_speech_quantized", "kws_dscnn_int8",
               "ad_fc_autoencoder_int8"]


@pytest.mark.parametrize("name", INT8_MODELS)
def test_int8_model_matches_litert_on_the_emulator(name, tmp_path):
    rc = edgec("compile", model_path(name), "--target", "stm32f746", "-o", tmp_path / "net")
    assert rc == 0
    rep = json.loads((tmp_path / "net" / "report.json").read_text())
    check = rep["check"]
    assert check["mismatches"] == 0 and check["samples"] >= 16
    assert check["litert"]["reference"].startswith("LiteRT BUILTIN_REF")
    assert check["litert"]["mismatches"] == 0 and check["litert"]["samples"] >= 16
    m = rep["memory"]
    assert m["arena_bytes"] <= rep["memory"]["sram_budget_bytes"]
    assert rep["latency"]["instructions"] > 0


def test_edgec_run_equals_litert_on_user_inputs(tmp_path):
    """edgec run with the user's int8 batch gives LiteRT's bytes (outside the compile check)."""
    from edgec.toolchain.litert_ref import run_litert
    name = "kws_dscnn_int8"
    assert edgec("compile", model_path(name), "-o", tmp_path / "net") == 0
    x = np.random.default_rng(5).integers(-128, 128, size=(5, 49, 10, 1)).astype(np.int8)
    np.save(tmp_path / "x.npy", x)
    assert edgec("run", tmp_path / "net", "--input", tmp_path / "x.npy",
                 "--output", tmp_path / "y.npy") == 0
    y = np.load(tmp_path / "y.npy")
    (want,) = run_litert(model_path(name), [x])
    assert y.dtype == np.int8 and np.array_equal(y.reshape(want.shape), want)


@pytest.mark.parametrize("name", ["hello_world_float", "kws_dscnn_float32"])
def test_float_models_go_through_ptq(name, tmp_path, capsys):
    rc = edgec("compile", model_path(name), "-o", tmp_path / "net")
    assert rc == 0
    assert "no --calib given" in capsys.readouterr().err
    rep = json.loads((tmp_path / "net" / "report.json").read_text())
    assert rep["check"]["mismatches"] == 0
    assert (tmp_path / "net" / "model.int8.onnx").is_file()


def test_lstm_is_refused_with_op_and_supported_list(tmp_path, capsys):
    rc = edgec("compile", model_path("mnist_lstm_int8"), "-o", tmp_path / "net")
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1
    assert "UNIDIRECTIONAL_SEQUENCE_LSTM" in err[0] and "CONV_2D" in err[0]
    assert not (tmp_path / "net").exists()
