"""Patch-based inference into a fully connected layer (toolchain/plan/patch.py, into_fc).

The stripes of the split layer feed the FC one by one (int32 partial sums in the arena,
requantized once): the bytes must be the whole FC's. Golden striped == golden whole ==
LiteRT BUILTIN_REF; the generated C (host, -Werror) == golden; firmware on QEMU ==
golden and LiteRT (the compile's own check) for a small conv -> depthwise -> FC .tflite
and for micro_speech, whose arena with --patch min is at most half of TFLite Micro's.
"""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import edgec
from edgec.codegen import emit_sources
from edgec.toolchain.errors import EdgecError
from edgec.toolchain.golden import run_program
from edgec.toolchain.lower import lower
from edgec.toolchain.plan import find_overlaps, patch, plan_memory
from kernel_cases import GraphBuilder, make_inputs, run_litert_reference, to_tflite
from test_frontend_tflite import model_path
from test_kernels_host import HOST_CFLAGS, HOST_MAIN, META

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
from shared_data import anchors  # TFLM figures: one place (shared/anchors.md)

FC_PARTS = {"edgec_fully_connected_first_s8", "edgec_fully_connected_partial_s8",
            "edgec_fully_connected_finish_s8"}
MEAN_PARTS = {"edgec_mean_first_s8", "edgec_mean_partial_s8", "edgec_mean_finish_s8"}


def _conv_dw_fc(head: str):
    """conv 3x3 (SAME) + ReLU6 to 8 channels -> depthwise 3x3 s2 (SAME) + ReLU -> FC to 5
    (on the NHWC-flat 6x4x8; head "fc" or "fc_nobias") or a mean over H, W (head "mean",
    keeping dims): the conv output (12x8x8) sets the plain arena's peak."""
    b = GraphBuilder(np.random.default_rng(3))
    x = b.input("x", (1, 12, 8, 2), 0.05, 3)
    w1 = b.weights("w1", (8, 3, 3, 2), 0)
    c = b.node("conv2d", [x, w1, b.bias("b1", x, w1, 8)],
               {"strides": (1, 1), "dilations": (1, 1), "pads": (1, 1, 1, 1),
                "act_min": 0.0, "act_max": 6.0})
    w2 = b.weights("w2", (1, 3, 3, 8), 3)
    d = b.node("depthwise_conv2d", [c, w2, b.bias("b2", c, w2, 8)],
               {"strides": (2, 2), "dilations": (1, 1), "pads": (0, 0, 1, 1),
                "depth_multiplier": 1, "act_min": 0.0, "act_max": None})
    if head == "mean":
        return b.graph(b.node("mean", [d], {"axes": (1, 2), "keepdims": True},
                              out_shape=(1, 1, 1, 8), out_quant=(0.02, -3)))
    w3 = b.weights("w3", (5, 6 * 4 * 8), 0)
    ins = [d, w3] + ([b.bias("b3", d, w3, 5, 20000)] if head == "fc" else [])
    return b.graph(b.node("fully_connected", ins, {"act_min": None, "act_max": None},
                          out_shape=(1, 5)))


def _split(program) -> int:
    k = next(k for k in patch.split_candidates(program)
             if patch.fc_after(program, k) is not None)
    assert program.calls[k].kernel == "edgec_depthwise_conv2d_s8"
    return k


@pytest.mark.parametrize("head", ["fc", "fc_nobias", "mean"])
def test_striped_fc_equals_whole_golden_litert_and_host_c(head, tmp_path):
    graph = _conv_dw_fc(head)
    parts, whole_kernel = ((MEAN_PARTS, "edgec_mean_s8") if head == "mean"
                           else (FC_PARTS, "edgec_fully_connected_s8"))
    program = lower(graph)
    name, out = graph.inputs[0], graph.outputs[0]
    samples = make_inputs(graph, 4)[name]
    whole = np.stack([run_program(program, {name: s})[out].reshape(-1) for s in samples])
    assert np.array_equal(run_litert_reference(to_tflite(graph), samples), whole)
    k = _split(program)
    for n in (2, 3, 6):
        striped = patch.stripe_program(program, k, n, into_fc=True)
        assert parts <= {c.kernel for c in striped.calls}
        assert sum(c.kernel in parts for c in striped.calls) == n + 1
        assert whole_kernel not in {c.kernel for c in striped.calls}
        assert sum(c.macs for c in striped.calls) >= sum(c.macs for c in program.calls)
        for s, x in enumerate(samples):
            assert np.array_equal(run_program(striped, {name: x})[out].reshape(-1),
                                  whole[s]), (n, s)
        plan = patch.plan_program(striped)
        assert not find_overlaps(plan)
        # the split output is never whole: the arena is below the plain plan's
        assert plan.arena_bytes < plan_memory(program).arena_bytes
        src = tmp_path / f"n{n}" / "src"
        emit_sources(striped, plan, src, META)
        exe = tmp_path / f"n{n}" / "model"
        subprocess.run(["gcc", *HOST_CFLAGS, "-I", str(src), *map(str, sorted(src.glob("*.c"))),
                        str(HOST_MAIN), "-o", str(exe)], check=True, capture_output=True)
        (tmp_path / "in.bin").write_bytes(samples.tobytes())
        subprocess.run([str(exe), str(tmp_path / "in.bin"), str(tmp_path / "out.bin")],
                       check=True, capture_output=True, timeout=60)
        got = np.frombuffer((tmp_path / "out.bin").read_bytes(), np.int8)
        assert np.array_equal(got.reshape(whole.shape), whole), n
    with pytest.raises(EdgecError, match="feeds no fully connected layer or mean"):
        patch.stripe_program(program, patch.split_candidates(program)[0], 2, into_fc=True)


@pytest.mark.parametrize("head", ["fc", "mean"])
def test_striped_fc_runs_exact_on_qemu(head, tmp_path):
    graph = _conv_dw_fc(head)
    model = tmp_path / f"conv_dw_{head}.tflite"
    model.write_bytes(to_tflite(graph))
    assert edgec("compile", model, "-o", tmp_path / "plain", "--patch", "off",
                 "--no-build") == 0
    assert edgec("compile", model, "-o", tmp_path / "min", "--patch", "min") == 0
    plain = json.loads((tmp_path / "plain" / "report.json").read_text())
    rep = json.loads((tmp_path / "min" / "report.json").read_text())
    p = rep["patch"]
    assert p["into_layer"] is not None and p["stripes"] >= 2
    assert p["arena_plain_bytes"] == plain["memory"]["arena_bytes"] \
        > p["arena_patched_bytes"] == rep["memory"]["arena_bytes"]
    assert rep["check"]["mismatches"] == 0 and rep["check"]["samples"] > 0
    assert rep["check"]["litert"]["mismatches"] == 0
    assert "requantized once" in (tmp_path / "min" / "report.md").read_text()


def test_micro_speech_arena_is_at_most_half_of_tflm(tmp_path):
    """input 49x40 (reshaped) -> depthwise s2 -> FC -> softmax: with --patch min the
    depthwise output (4,000 B) is never whole, each stripe goes straight into the FC."""
    name = "micro_speech_quantized"
    assert edgec("compile", model_path(name), "-t", "stm32f746", "-o", tmp_path / "net",
                 "--patch", "min") == 0
    rep = json.loads((tmp_path / "net" / "report.json").read_text())
    p = rep["patch"]
    assert p["into_layer"] == "fully_connected_2" and p["macs_extra"] == 0
    check = rep["check"]
    assert check["mismatches"] == 0 and check["samples"] >= 16
    assert check["litert"]["mismatches"] == 0 and check["litert"]["samples"] >= 16
    tflm = anchors(model_path(name).parent)[name]["TFLM total"]
    assert rep["memory"]["arena_bytes"] == p["arena_patched_bytes"] <= tflm // 2
    assert p["arena_patched_bytes"] < p["arena_plain_bytes"]
