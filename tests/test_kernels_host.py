"""The int8 kernels end to end: lowering -> golden NumPy model and generated C on the host.

For every case of tests/kernel_cases.py the generated C (emit_sources + tests/host_main.c,
compiled with -std=c99 -Wall -Wextra -Werror -pedantic) must give exactly the golden
model's bytes on random inputs over the whole int8 range. The golden model is checked
independently against a float64 computation of each op, and the fixed-point primitives
against known TFLite values.
"""
from __future__ import annotations

import os
import shutil
import subprocess
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

from edgec.codegen import emit_sources
from edgec.codegen.c_emitter import INCLUDE_DIR, KERNELS_DIR
from edgec.toolchain import quant_math as qm
from edgec.toolchain.errors import EdgecError, UnsupportedOpError
from edgec.toolchain.golden import run_program
from edgec.toolchain.ir import Graph, Node, QuantParams, Tensor
from edgec.toolchain.lower import lower

from kernel_cases import (CASES, CASES_BY_ID, build_case, dequantize, float_node,
                          run_litert_reference, to_tflite)

TESTS_DIR = Path(__file__).resolve().parent
HOST_MAIN = TESTS_DIR / "host_main.c"
HOST_CFLAGS = ["-std=c99", "-Wall", "-Wextra", "-Werror", "-pedantic", "-O1"]
ARM_CFLAGS = ["-std=c99", "-Wall", "-Wextra", "-Werror", "-pedantic", "-mcpu=cortex-m7",
              "-mthumb", "-mfpu=fpv5-sp-d16", "-mfloat-abi=hard", "-O2"]
META = {"model": "kernel_case", "model_sha256": "0" * 64, "target": "host",
        "command": "pytest"}
FLOAT_TOLERANCE_STEPS = 2.0
FLOAT_IO_KERNELS = {"quantize_f32.c", "dequantize_f32.c"}



def _compile_case(case, root: Path):
    program, plan, inputs = build_case(case)
    src = root / case.id / "src"
    emit_sources(program, plan, src, META)
    exe = root / case.id / "model"
    cmd = ["gcc", *HOST_CFLAGS, "-I", str(src), *map(str, sorted(src.glob("*.c"))),
           str(HOST_MAIN), "-o", str(exe)]
    result = subprocess.run(cmd, capture_output=True, text=True)
    return program, inputs, exe, result


@pytest.fixture(scope="module")
def host_builds(tmp_path_factory):
    """Every case emitted and compiled once, in parallel."""
    root = tmp_path_factory.mktemp("kernel_cases")
    with ThreadPoolExecutor(max_workers=max(2, os.cpu_count() or 2)) as pool:
        builds = list(pool.map(lambda c: _compile_case(c, root), CASES))
    return {c.id: b for c, b in zip(CASES, builds)}


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_generated_c_equals_golden(case, host_builds, tmp_path):
    program, inputs, exe, build = host_builds[case.id]
    assert build.returncode == 0, f"gcc failed:\n{build.stderr}"
    graph = program.graph
    in_name, out_name = graph.inputs[0], graph.outputs[0]
    samples = inputs[in_name]
    in_file, out_file = tmp_path / "in.bin", tmp_path / "out.bin"
    in_file.write_bytes(samples.tobytes())
    run = subprocess.run([str(exe), str(in_file), str(out_file)], capture_output=True,
                         text=True, timeout=60)
    assert run.returncode == 0, run.stderr
    got = np.frombuffer(out_file.read_bytes(), np.int8).reshape(samples.shape[0], -1)
    for s in range(samples.shape[0]):
        want = run_program(program, {in_name: samples[s]})[out_name].reshape(-1)
        bad = np.flatnonzero(got[s] != want)
        assert bad.size == 0, (f"sample {s}: {bad.size}/{want.size} values differ, first at "
                               f"{bad[0]}: C {got[s][bad[0]]} vs golden {want[bad[0]]}")


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_golden_close_to_float(case):
    """Dequantized golden output of each node vs float64 math on the dequantized inputs,
    weights and bias (clamped to the output's representable range)."""
    program, _, inputs = build_case(case)
    graph = program.graph
    for s in range(next(iter(inputs.values())).shape[0]):
        values = run_program(program, {n: inputs[n][s] for n in graph.inputs})
        for node in graph.nodes:
            acts = [dequantize(values[t], graph.tensors[t].quant) for t in node.inputs
                    if t and not graph.tensors[t].is_const]
            out = graph.tensors[node.outputs[0]]
            scale = float(out.quant.scale)
            zp = int(out.quant.zero_point)
            ref = float_node(graph, node, acts).reshape(out.shape)
            info = np.iinfo(out.dtype)  # int8, or int16 probabilities
            ref = np.clip(ref, scale * (info.min - zp), scale * (info.max - zp))
            got = dequantize(values[node.outputs[0]], out.quant)
            err = float(np.abs(got - ref).max()) / scale
            assert err <= FLOAT_TOLERANCE_STEPS, (
                f"sample {s}, node '{node.name}' ({node.op}): golden is {err:.2f} output "
                f"steps away from the float result")


# Cases TFLite cannot express (explicit pads, arbitrary clamps) are checked against the float
# computation above, not here.
LITERT_CASES = [c for c in CASES if to_tflite(build_case(c)[0].graph) is not None]


@pytest.mark.parametrize("case", LITERT_CASES, ids=[c.id for c in LITERT_CASES])
def test_golden_equals_litert_reference_kernels(case):
    """The final judge: LiteRT's reference kernels (BUILTIN_REF) on the same graph as a
    .tflite model must give the golden model's bytes exactly."""
    program, _, inputs = build_case(case)
    graph = program.graph
    model = to_tflite(graph)
    name = graph.inputs[0]
    rng = np.random.default_rng(case.seed + 99)
    extra = rng.integers(-128, 128, size=(24,) + tuple(graph.tensors[name].shape))
    samples = np.concatenate([inputs[name], extra.astype(np.int8)])
    want = run_litert_reference(model, samples)
    for s in range(samples.shape[0]):
        got = run_program(program, {name: samples[s]})[graph.outputs[0]].reshape(-1)
        bad = np.flatnonzero(got != want[s])
        assert bad.size == 0, (f"sample {s}: {bad.size}/{got.size} values differ from LiteRT, "
                               f"first at {bad[0]}: golden {got[bad[0]]} vs LiteRT "
                               f"{want[s][bad[0]]}")


# ---------------------------------------------------------------------------------------
# Fixed-point arithmetic: known TFLite behaviour, and C == Python on many values
# ---------------------------------------------------------------------------------------

def test_quantize_multiplier_edge_cases():
    assert qm.quantize_multiplier(0.0) == (0, 0)
    assert qm.quantize_multiplier(0.5) == (1 << 30, 0)
    assert qm.quantize_multiplier(1.0) == (1 << 30, 1)
    assert qm.quantize_multiplier(3.0) == (3 << 29, 2)
    # significand rounds up to 2^31: halved, shift + 1
    assert qm.quantize_multiplier(1.0 - 2.0 ** -33) == (1 << 30, 1)
    # below 2^-32 the shift would be < -31: flushed to zero as TFLite does
    assert qm.quantize_multiplier(2.0 ** -40) == (0, 0)
    m, s = qm.quantize_multiplier(0.1)
    assert s == -3 and m == round(0.8 * 2 ** 31)


def test_mbqm_double_rounding():
    # 5 * 0.25: SRDHM rounds 2.5 to 3, then the rounding shift rounds 1.5 to 2 (TFLite's
    # default double rounding; single rounding would give 1).
    assert int(qm.mbqm(5, 1 << 30, -1)) == 2
    # SRDHM's nudge rounds negative ties toward zero (-2.5 -> -2), then -2 / 2 = -1
    assert int(qm.mbqm(-5, 1 << 30, -1)) == -1
    assert int(qm.srdhm(-5, 1 << 30)) == -2 and int(qm.srdhm(5, 1 << 30)) == 3
    # RoundingDivideByPOT rounds ties away from zero
    assert int(qm.rounding_divide_by_pot(-3, 1)) == -2 and int(qm.rounding_divide_by_pot(3, 1)) == 2
    assert int(qm.mbqm(100, 1 << 30, 0)) == 50
    # positive shift: x * 2^shift first
    assert int(qm.mbqm(3, 1 << 30, 2)) == 6
    # LiteRT's fully connected: one rounding of the exact product, ties away from zero
    assert int(qm.mul_round_away(5, 1 << 30, -1)) == 1
    assert int(qm.mul_round_away(-5, 1 << 30, -1)) == -1
    assert int(qm.mul_round_away(6, 1 << 30, -1)) == 2  # 1.5 -> 2
    assert int(qm.mul_round_away(-6, 1 << 30, -1)) == -2  # -1.5 -> -2
    rng = np.random.default_rng(1)
    x = rng.integers(-(1 << 24), 1 << 24, 5000)
    m = rng.integers(1 << 30, (1 << 31) - 1, 5000)
    s = rng.integers(-20, 4, 5000)
    exact = x * (m / 2.0 ** 31) * 2.0 ** s.astype(np.float64)
    assert np.abs(qm.mbqm(x, m, s) - exact).max() <= 1.0


def test_activation_range_like_tflite():
    # ReLU6 on scale 6/255, zp -128: [zp, zp + round(6 / s)] = [-128, 127]
    assert qm.activation_range(0.0, 6.0, 6 / 255, -128) == (-128, 127)
    assert qm.activation_range(0.0, None, 0.1, -5) == (-5, 127)
    assert qm.activation_range(None, None, 0.1, 0) == (-128, 127)
    # TfLiteRound rounds half away from zero: float32 0.25 / 0.1 is exactly 2.5 -> 3
    assert np.float32(0.25) / np.float32(0.1) == np.float32(2.5)
    assert qm.activation_range(-0.25, 0.25, 0.1, 0) == (-3, 3)
    # a clamp outside the int8 range collapses to the representable bound
    assert qm.activation_range(200.0, 300.0, 0.1, 0) == (127, 127)


def test_softmax_scaling_matches_tflite_formula():
    mult, shift, diff_min = qm.softmax_input_scaling(1.0, 0.1)
    real = np.float32(0.1) * np.float64(1 << 26)
    assert mult * 2.0 ** (shift - 31) == pytest.approx(float(real), rel=1e-9)
    assert diff_min == -int(np.floor(31 * 2.0 ** 26 / 2.0 ** shift))


_FIXEDPOINT_PROBE_C = r"""
#include "edgec_fixedpoint.h"
#include <stdio.h>
int main(void)
{
    long long a, b, c;
    char op;
    while (scanf(" %c %lld %lld %lld", &op, &a, &b, &c) == 4) {
        long long r = 0;
        if (op == 'm') r = edgec_mbqm((int32_t)a, (int32_t)b, (int32_t)c);
        if (op == 'e') r = edgec_exp_on_negative_values_q5_26((int32_t)a);
        if (op == 'r') r = edgec_one_over_one_plus_x((int32_t)a);
        if (op == 'h') r = edgec_srdhm((int32_t)a, (int32_t)b);
        if (op == 's') r = edgec_mul_round_away((int32_t)a, (int32_t)b, (int32_t)c);
        printf("%lld\n", r);
    }
    return 0;
}
"""


def test_c_fixedpoint_equals_python(tmp_path):
    probe = tmp_path / "probe.c"
    probe.write_text(_FIXEDPOINT_PROBE_C)
    exe = tmp_path / "probe"
    subprocess.run(["gcc", *HOST_CFLAGS, "-I", str(KERNELS_DIR), str(probe), "-o", str(exe)],
                   check=True, capture_output=True)
    rng = np.random.default_rng(7)
    n = 4000
    rows = []
    x = rng.integers(-(1 << 31), 1 << 31, n)
    m = rng.integers(0, (1 << 31) - 1, n)
    s = rng.integers(-31, 8, n)
    rows += [("m", a, b, c) for a, b, c in zip(x, m, s)]
    e = np.concatenate([-rng.integers(0, 1 << 31, n), [0, -1, -(1 << 31), -(1 << 26)]])
    rows += [("e", a, 0, 0) for a in e]
    r = np.concatenate([rng.integers(0, 1 << 31, n), [0, 1, (1 << 31) - 1]])
    rows += [("r", a, 0, 0) for a in r]
    h = rng.integers(-(1 << 31), 1 << 31, (n, 2))
    rows += [("h", a, b, 0) for a, b in h] + [("h", -(1 << 31), -(1 << 31), 0)]
    s1 = rng.integers(-31, 1, n)
    rows += [("s", a, b, c) for a, b, c in zip(x, m, s1)]
    text = "".join(f"{op} {a} {b} {c}\n" for op, a, b, c in rows)
    out = subprocess.run([str(exe)], input=text, capture_output=True, text=True, check=True)
    got = np.array([int(v) for v in out.stdout.split()], np.int64)
    want = np.concatenate([
        qm.mbqm(x, m, s), qm.exp_on_negative_values(e), qm.one_over_one_plus_x_for_x_in_0_1(r),
        qm.srdhm(h[:, 0], h[:, 1]), [qm.INT32_MAX], qm.mul_round_away(x, m, s1)])
    assert got.shape == want.shape
    bad = np.flatnonzero(got != want)
    assert bad.size == 0, f"{bad.size} mismatches, first: {rows[bad[0]]} C {got[bad[0]]} " \
                          f"Python {want[bad[0]]}"
    # and the exp is an exp: Q5.26 in, Q0.31 out
    xs = -rng.uniform(0, 8, 200)
    approx = qm.exp_on_negative_values(np.round(xs * 2 ** 26).astype(np.int64)) / 2.0 ** 31
    assert np.abs(approx - np.exp(xs)).max() < 1e-6


# ---------------------------------------------------------------------------------------
# Cross compilation
# ---------------------------------------------------------------------------------------

def test_kernels_and_model_compile_for_cortex_m7(tmp_path):
    program, plan, _ = build_case(CASES_BY_ID["multi_conv_dw_add_pool_fc_softmax"])
    src = tmp_path / "src"
    emit_sources(program, plan, src, META)
    sources = sorted(KERNELS_DIR.glob("*.c")) + [src / "edgec_model.c"]
    for source in sources:
        result = subprocess.run(
            ["arm-none-eabi-gcc", *ARM_CFLAGS, "-I", str(INCLUDE_DIR), "-I", str(KERNELS_DIR),
             "-I", str(src), "-c", str(source), "-o", str(tmp_path / (source.stem + ".o"))],
            capture_output=True, text=True)
        assert result.returncode == 0, f"{source.name}:\n{result.stderr}"
        # no float at run time: no FPU instructions in the int8 kernels (the float32
        # boundary kernels, a float model's own QUANTIZE / DEQUANTIZE, are the exception)
        if shutil.which("arm-none-eabi-objdump") and source.name not in FLOAT_IO_KERNELS:
            dis = subprocess.run(["arm-none-eabi-objdump", "-d",
                                  str(tmp_path / (source.stem + ".o"))],
                                 capture_output=True, text=True).stdout
            assert "\tvmov" not in dis and "\tvcvt" not in dis and "\tvadd.f32" not in dis, \
                f"{source.name} uses the FPU"


# ---------------------------------------------------------------------------------------
# Lowering errors
# ---------------------------------------------------------------------------------------

def _graph_with(node: Node, tensors: list[Tensor]) -> Graph:
    return Graph({t.name: t for t in tensors}, [node], [tensors[0].name], [node.outputs[0]])


def _act(name, shape, scale=0.1, zp=0):
    return Tensor(name, shape, "int8", quant=QuantParams.per_tensor(scale, zp))


def test_unsupported_op_names_node_and_supported_list():
    g = _graph_with(Node("lstm_1", "lstm", ["x"], ["y"]), [_act("x", (1, 4)), _act("y", (1, 4))])
    with pytest.raises(UnsupportedOpError) as e:
        lower(g)
    msg = str(e.value)
    assert "lstm_1" in msg and "'lstm'" in msg and "conv2d" in msg and "softmax" in msg


def test_reshape_lowers_to_a_view_without_code():
    g = _graph_with(Node("r", "reshape", ["x"], ["y"], {"shape": (1, 4)}),
                    [_act("x", (1, 2, 2)), _act("y", (1, 4))])
    (call,) = lower(g).calls
    assert call.view and call.kernel == "" and call.inputs == ["x"] and call.outputs == ["y"]


def test_avg_pool_needs_equal_quant():
    g = _graph_with(Node("p", "avg_pool2d", ["x"], ["y"], {"kernel": (2, 2), "strides": (2, 2)}),
                    [_act("x", (1, 4, 4, 2), 0.1, 0), _act("y", (1, 2, 2, 2), 0.2, 0)])
    with pytest.raises(EdgecError, match="'p'.*must be equal"):
        lower(g)


def test_mean_needs_hw_axes():
    g = _graph_with(Node("m", "mean", ["x"], ["y"], {"axes": (3,), "keepdims": True}),
                    [_act("x", (1, 4, 4, 2)), _act("y", (1, 4, 4, 1))])
    with pytest.raises(EdgecError, match="'m'.*axes"):
        lower(g)


def test_softmax_output_quant_is_checked():
    g = _graph_with(Node("s", "softmax", ["x"], ["y"], {"beta": 1.0}),
                    [_act("x", (1, 10)), _act("y", (1, 10), 1 / 255, -128)])
    with pytest.raises(EdgecError, match="1/256"):
        lower(g)


def test_conv_output_shape_is_checked():
    w = Tensor("w", (2, 3, 3, 1), "int8", data=np.ones((2, 3, 3, 1), np.int8),
               quant=QuantParams(np.full(2, 0.1), np.zeros(2, np.int64), axis=0))
    g = _graph_with(Node("c", "conv2d", ["x", "w"], ["y"], {"pads": (1, 1, 1, 1)}),
                    [_act("x", (1, 5, 5, 1)), w, _act("y", (1, 4, 4, 2))])
    with pytest.raises(EdgecError, match="'c'.*5x5"):
        lower(g)


def test_float_graph_is_rejected():
    g = Graph({"x": Tensor("x", (1, 4), "float32"), "y": Tensor("y", (1, 4), "float32")},
              [Node("r", "relu", ["x"], ["y"])], ["x"], ["y"])
    with pytest.raises(EdgecError, match="int8"):
        lower(g)
