"""Larger int8 .tflite networks (tests/net_builders.py: MobileNetV2-style and ResNet-style,
random per-channel weights, activation quantization from a float simulation) compiled for
stm32f746 with the speed and the size kernels: on QEMU every output equals, value for
value, both the golden model and LiteRT BUILTIN_REF (the compile's own check, which fails
the compile on any difference), on uniform int8 inputs plus all -128 / all 127 ones."""
from __future__ import annotations

import json

import numpy as np
import pytest

import net_builders
from conftest import edgec
from kernel_cases import to_tflite

NETWORKS = {
    "mobilenet_v2ish": (net_builders.mobilenet_v2ish,
                        {"conv2d", "depthwise_conv2d", "add", "mean", "fully_connected",
                         "softmax"}),
    "resnetish": (net_builders.resnetish,
                  {"conv2d", "max_pool2d", "add", "avg_pool2d", "mean", "fully_connected",
                   "softmax"}),
}


@pytest.mark.parametrize("optimize", ["speed", "size"])
@pytest.mark.parametrize("name", sorted(NETWORKS))
def test_network_is_exact_against_litert_and_golden_on_the_emulator(name, optimize, tmp_path):
    build, ops = NETWORKS[name]
    graph = build()
    (tmp_path / "net.tflite").write_bytes(to_tflite(graph))
    shape = graph.tensors[graph.inputs[0]].shape
    rng = np.random.default_rng(21)
    extremes = np.stack([np.full(shape[1:], -128), np.full(shape[1:], 127),
                         *rng.integers(-128, 128, size=(6, *shape[1:]))]).astype(np.int8)
    np.save(tmp_path / "extremes.npy", extremes)  # test inputs beside the uniform ones
    rc = edgec("compile", tmp_path / "net.tflite", "--target", "stm32f746", "--optimize",
               optimize, "--calib", tmp_path / "extremes.npy", "-o", tmp_path / "out")
    assert rc == 0
    rep = json.loads((tmp_path / "out" / "report.json").read_text())
    chk = rep["check"]
    assert chk["samples"] == 16 and chk["mismatches"] == 0 and chk["max_abs_diff"] == 0
    assert chk["litert"]["reference"].startswith("LiteRT BUILTIN_REF")
    assert chk["litert"]["samples"] == 16 and chk["litert"]["mismatches"] == 0
    assert {layer["op"] for layer in rep["layers"]} == ops
    assert len(rep["layers"]) == len(graph.nodes)
    fast = [layer["kernel"] for layer in rep["layers"] if "_fast_" in layer["kernel"]]
    assert bool(fast) == (optimize == "speed")  # the speed kernels are the ones checked
