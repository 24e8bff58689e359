"""int8 element-wise and activation ops end to end, beyond the kernel case table.

The table (tests/kernel_cases.py: mul, broadcast add, logistic, tanh, hard_swish, leaky_relu)
runs on host C, on QEMU and against LiteRT in test_kernels_host.py / test_kernels_emulator.py.
Here: the float32 boundary kernels (QUANTIZE float -> int8, DEQUANTIZE int8 -> float) on host C
and against LiteRT, bit for bit (ties, huge values, inf, NaN); sweeps of the LOGISTIC / TANH
tables against LiteRT; `edgec compile` / `edgec run` of .tflite models with float I/O (default
--io) and --io int8, and of a .tflite and an ONNX model using every new op; lowering errors.
"""
from __future__ import annotations

import json
import subprocess
from pathlib import Path

import numpy as np
import pytest
from conftest import edgec
from edgec.codegen import emit_sources
from edgec.codegen.c_emitter import INCLUDE_DIR, KERNELS_DIR
from edgec.toolchain.errors import EdgecError
from edgec.toolchain.golden import run_program
from edgec.toolchain.ir import Graph, Node, QuantParams, Tensor, verify
from edgec.toolchain.litert_ref import run_litert
from edgec.toolchain.lower import lower
from edgec.toolchain.lower.activations import sigmoid_f32, tanh_f32, lookup_table
from kernel_cases import GraphBuilder, to_tflite, trivial_plan

TESTS_DIR = Path(__file__).resolve().parent
HOST_CFLAGS = ["-std=c99", "-Wall", "-Wextra", "-Werror", "-pedantic", "-O2"]
META = {"model": "t", "model_sha256": "0" * 64, "target": "host", "command": "pytest"}
CONV = {"strides": (1, 1), "dilations": (1, 1), "pads": (1, 1, 1, 1), "act_min": None,
        "act_max": None}


def _bits(a: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(a, np.float32).view(np.int32)


# ---------------------------------------------------------------------------------------
# Graphs with float I/O: float x -> QUANTIZE -> int8 core -> DEQUANTIZE -> float y
# ---------------------------------------------------------------------------------------

def _with_float_io(b: GraphBuilder, core_out: str) -> Graph:
    """Wrap the builder's int8 graph (input 'xq') in the model's own float boundaries."""
    g = b.graph(core_out)
    xq = g.inputs[0]
    g.tensors["x"] = Tensor("x", g.tensors[xq].shape, "float32")
    g.tensors["y"] = Tensor("y", g.tensors[core_out].shape, "float32")
    g.nodes = ([Node("quantize", "quantize", ["x"], [xq])] + g.nodes
               + [Node("dequantize", "dequantize", [core_out], ["y"])])
    g.inputs, g.outputs = ["x"], ["y"]
    g.io_layout = {"x": "NHWC", "y": "NHWC"}
    verify(g)
    return g


def float_io_conv_graph(in_q=(0.05, -3), seed=3) -> Graph:
    b = GraphBuilder(np.random.default_rng(seed))
    x = b.input("xq", (1, 6, 6, 3), *in_q)
    w = b.weights("w", (5, 3, 3, 3), 0)
    y = b.node("conv2d", [x, w, b.bias("b", x, w, 5)], CONV, name="conv")
    return _with_float_io(b, y)


def float_io_leaky_graph(in_q, out_q, shape=(1, 300)) -> Graph:
    b = GraphBuilder(np.random.default_rng(0))
    x = b.input("xq", shape, *in_q)
    y = b.node("leaky_relu", [x], {"alpha": 0.25}, out_quant=out_q, name="leaky")
    return _with_float_io(b, y)


def special_floats(scale: float, zp: int, n: int, seed: int) -> np.ndarray:
    """Random reals over (and beyond) the int8 range, exact ties of the rounding, and the
    values a quantizer must not trip on: +-0, a denormal, huge, inf, NaN."""
    rng = np.random.default_rng(seed)
    lo, hi = scale * (-128 - zp), scale * (127 - zp)
    span = hi - lo
    random = rng.uniform(lo - 0.2 * span, hi + 0.2 * span, n)
    ties = (np.arange(-140, 140) + 0.5 - zp) * scale
    special = [0.0, -0.0, 1e-45, -1e-45, 3e38, -3e38, 1e10, -1e10, np.inf, -np.inf, np.nan,
               2.0 ** 31 * scale, -(2.0 ** 31) * scale]
    return np.concatenate([random, ties, special]).astype(np.float32)


def _host_exe(graph: Graph, root: Path) -> Path:
    program = lower(graph)
    src = root / "src"
    emit_sources(program, trivial_plan(program), src, META)
    exe = root / "model"
    subprocess.run(["gcc", *HOST_CFLAGS, "-I", str(src), *map(str, sorted(src.glob("*.c"))),
                    str(TESTS_DIR / "host_main.c"), "-o", str(exe)], check=True,
                   capture_output=True, text=True)
    return exe


def _run_host(exe: Path, samples: np.ndarray, tmp: Path) -> np.ndarray:
    (tmp / "in.bin").write_bytes(np.ascontiguousarray(samples, "<f4").tobytes())
    subprocess.run([str(exe), str(tmp / "in.bin"), str(tmp / "out.bin")], check=True,
                   capture_output=True, timeout=60)
    return np.frombuffer((tmp / "out.bin").read_bytes(), "<f4").reshape(len(samples), -1)


@pytest.mark.parametrize("in_q,out_q", [((0.0625, 0), (0.125, -7)),      # power-of-2: exact ties
                                        ((0.037, -20), (0.02, 101)),
                                        ((0.11, 100), (0.3, -128))],
                         ids=["pow2", "zp_neg", "zp_pos"])
def test_float_boundaries_host_c_golden_litert_bit_exact(in_q, out_q, tmp_path):
    graph = float_io_leaky_graph(in_q, out_q)
    values = special_floats(*in_q, n=8 * 300 - 293, seed=1)
    samples = values[:len(values) // 300 * 300].reshape(-1, 1, 300)
    program = lower(graph)
    golden = np.stack([run_program(program, {"x": s})["y"].reshape(-1) for s in samples])
    host = _run_host(_host_exe(graph, tmp_path), samples, tmp_path)
    assert np.array_equal(_bits(host), _bits(golden))
    litert = run_litert(to_tflite(graph), [samples.reshape(len(samples), 300)])[0]
    bad = np.flatnonzero(_bits(litert).reshape(-1) != _bits(golden).reshape(-1))
    assert bad.size == 0, (f"{bad.size} values differ from LiteRT, first: input "
                           f"{samples.reshape(-1)[bad[0]]!r} golden "
                           f"{golden.reshape(-1)[bad[0]]!r} LiteRT {litert.reshape(-1)[bad[0]]!r}")
    # the boundary ops hit what they should: NaN/inf/huge inputs went through unchanged
    assert np.isnan(samples).any() and np.isinf(samples).any()


def test_quantize_rounds_half_away_from_zero_and_converts_overflow_like_litert():
    from edgec.toolchain.golden import quantize_f32_s8
    f = {"size": 6, "scale": 0.5, "zero_point": -5}
    x = np.float32([0.25, -0.25, 0.75, -0.75, np.nan, np.inf])
    # 0.5 -> 1, -0.5 -> -1, 1.5 -> 2, -1.5 -> -2 (TfLiteRound); NaN and inf convert to
    # INT32_MIN, and INT32_MIN + a negative zero point wraps around to the top: 127
    assert quantize_f32_s8(f, x).tolist() == [-4, -6, -3, -7, 127, 127]
    # with a positive zero point they stay at the bottom: -128
    assert quantize_f32_s8({**f, "zero_point": 5}, x)[4:].tolist() == [-128, -128]


# ---------------------------------------------------------------------------------------
# LOGISTIC / TANH tables: every input code, many quantizations, against LiteRT
# ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("op", ["logistic", "tanh"])
def test_lut_tables_equal_litert_over_many_scales(op):
    rng = np.random.default_rng(11 if op == "logistic" else 12)
    every_code = np.arange(-128, 128, dtype=np.int8).reshape(1, 256)  # one sample
    out_q = (1 / 256, -128) if op == "logistic" else (1 / 128, 0)
    for _ in range(24):
        in_q = (float(np.exp(rng.uniform(np.log(1e-3), np.log(2.0)))), int(rng.integers(-128, 128)))
        b = GraphBuilder(rng)
        x = b.input("x", (1, 256), *in_q)
        graph = b.graph(b.node(op, [x], {}, out_quant=out_q, name=op))
        program = lower(graph)
        table = lookup_table(sigmoid_f32 if op == "logistic" else tanh_f32,
                             float(np.float32(in_q[0])), in_q[1], out_q[0], out_q[1])
        assert np.array_equal(program.calls[0].fields["table"].data, table)
        got = run_program(program, {"x": every_code})[graph.outputs[0]].reshape(-1)
        want = run_litert(to_tflite(graph), [every_code])[0].reshape(-1)
        assert np.array_equal(got, want), (op, in_q, np.flatnonzero(got != want))


# ---------------------------------------------------------------------------------------
# edgec compile / edgec run of .tflite models
# ---------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def float_io_tflite(tmp_path_factory) -> Path:
    """float x -> QUANTIZE -> CONV_2D -> DEQUANTIZE -> float y, as a .tflite file."""
    path = tmp_path_factory.mktemp("fio") / "float_io_conv.tflite"
    path.write_bytes(to_tflite(float_io_conv_graph()))
    return path


def test_float_io_tflite_compiles_and_runs_like_litert(float_io_tflite, tmp_path):
    out = tmp_path / "net"
    assert edgec("compile", float_io_tflite, "-o", out) == 0  # default --io model
    meta = json.loads((out / "model.json").read_text())
    assert [t["dtype"] for t in meta["io"]["inputs"] + meta["io"]["outputs"]] == \
        ["float32", "float32"]
    rep = json.loads((out / "report.json").read_text())
    assert rep["check"]["mismatches"] == 0 and rep["check"]["litert"]["mismatches"] == 0
    header = (out / "src" / "edgec_model.h").read_text()
    assert "typedef float edgec_input_t;" in header and "typedef float edgec_output_t;" in header
    kernels = [l["kernel"] for l in rep["layers"]] if "kernel" in rep["layers"][0] else None
    if kernels is not None:
        assert kernels[0] == "edgec_quantize_f32_s8" and kernels[-1] == "edgec_dequantize_s8_f32"

    values = np.random.default_rng(5).permutation(special_floats(0.05, -3, n=1080, seed=4))
    x = values[:10 * 108].reshape(10, 6, 6, 3)
    x[0, 0, 0, :3] = [np.nan, np.inf, -np.inf]
    np.save(tmp_path / "x.npy", x)
    assert edgec("run", out, "-i", tmp_path / "x.npy", "-o", tmp_path / "y.npy") == 0
    y = np.load(tmp_path / "y.npy")
    want = run_litert(float_io_tflite, [x])[0]
    assert y.dtype == np.float32 and y.shape == want.shape == (10, 6, 6, 5)
    assert np.array_equal(_bits(y), _bits(want))

    # --io int8: the same model without its float boundaries
    out8 = tmp_path / "net8"
    assert edgec("compile", float_io_tflite, "--io", "int8", "-o", out8) == 0
    meta8 = json.loads((out8 / "model.json").read_text())
    spec_in, spec_out = meta8["io"]["inputs"][0], meta8["io"]["outputs"][0]
    assert spec_in["dtype"] == spec_out["dtype"] == "int8"
    assert "typedef int8_t edgec_input_t;" in (out8 / "src" / "edgec_model.h").read_text()
    # quantized exactly as the float model's own QUANTIZE does, the int8 model gives the
    # bytes whose dequantization is the float model's output
    from edgec.toolchain.golden import quantize_f32_s8
    xq = quantize_f32_s8({"scale": spec_in["scale"], "zero_point": spec_in["zero_point"]},
                         x.reshape(-1)).reshape(x.shape)
    np.save(tmp_path / "xq.npy", xq)
    assert edgec("run", out8, "-i", tmp_path / "xq.npy", "-o", tmp_path / "yq.npy") == 0
    yq = np.load(tmp_path / "yq.npy")
    assert yq.dtype == np.int8 and yq.shape == (10, 6, 6, 5)
    deq = (yq.astype(np.int32) - spec_out["zero_point"]).astype(np.float32) \
        * np.float32(spec_out["scale"])
    assert np.array_equal(_bits(deq), _bits(y))


def _all_ops_graph() -> Graph:
    """conv -> hard_swish -> SE gate (mean -> logistic, mul broadcast over H, W) -> + a
    per-row term (broadcast add) -> leaky_relu -> tanh, int8 throughout."""
    b = GraphBuilder(np.random.default_rng(21))
    x = b.input("x", (1, 6, 6, 4), 0.04, 2)
    w = b.weights("w", (8, 3, 3, 4), 0)
    c = b.node("conv2d", [x, w, b.bias("b", x, w, 8)], CONV, name="conv")
    hs = b.node("hard_swish", [c], {}, name="hswish")
    m = b.node("mean", [hs], {"axes": (1, 2), "keepdims": True}, out_shape=(1, 1, 1, 8),
               name="squeeze")
    gate = b.node("logistic", [m], {}, out_quant=(1 / 256, -128), name="gate")
    se = b.node("mul", [hs, gate], {"act_min": None, "act_max": None}, name="excite")
    w1 = b.weights("w1", (1, 1, 1, 8), 0, np.array([0.02]))
    row = b.node("conv2d", [se, w1], {}, name="row_mix")
    row = b.node("max_pool2d", [row], {"kernel": (1, 6), "strides": (1, 6),
                                       "pads": (0, 0, 0, 0)},
                 out_quant=tuple(float(v) for v in (b.tensors[row].quant.scale,
                                                    b.tensors[row].quant.zero_point)),
                 name="row_max")
    s = b.node("add", [se, row], {"act_min": None, "act_max": None}, name="add_rows")
    lr = b.node("leaky_relu", [s], {"alpha": 0.1}, name="leaky")
    return b.graph(b.node("tanh", [lr], {}, out_quant=(1 / 128, 0), name="tanh"))


def test_tflite_with_every_new_op_compiles_and_matches_litert(tmp_path):
    graph = _all_ops_graph()
    path = tmp_path / "all_ops.tflite"
    path.write_bytes(to_tflite(graph))
    out = tmp_path / "net"
    assert edgec("compile", path, "-o", out) == 0
    rep = json.loads((out / "report.json").read_text())
    assert rep["check"]["mismatches"] == 0
    assert rep["check"]["litert"]["mismatches"] == 0 and rep["check"]["litert"]["samples"] > 0
    from edgec.toolchain.frontend.tflite import load_tflite
    ops = [n.op for n in load_tflite(path).nodes]
    for op in ("hard_swish", "logistic", "mul", "add", "leaky_relu", "tanh"):
        assert op in ops


# ---------------------------------------------------------------------------------------
# ONNX: frontend mappings, PTQ with TFLite's fixed output params, QDQ artifact
# ---------------------------------------------------------------------------------------

def test_onnx_model_with_every_new_op_compiles(tmp_path):
    import onnx
    import torch
    from edgec.toolchain.frontend.onnx import load_onnx
    from torch import nn

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(3, 8, 3, padding=1)
            self.act = nn.Hardswish()
            self.pool = nn.AdaptiveAvgPool2d(1)
            self.leaky = nn.LeakyReLU(0.2)

        def forward(self, x):
            h = self.act(self.conv(x))
            h = h * torch.sigmoid(self.pool(h))  # squeeze-excite: Mul broadcast over H, W
            return torch.tanh(self.leaky(h) + self.pool(h))  # Add broadcast

    torch.manual_seed(0)
    model = Net().eval()
    path = tmp_path / "net.onnx"
    torch.onnx.export(model, (torch.zeros(1, 3, 8, 8),), str(path), dynamo=False,
                      opset_version=17)
    ops = [n.op for n in load_onnx(onnx.load(str(path))).nodes]
    for op in ("hard_swish", "logistic", "mul", "add", "leaky_relu", "tanh"):
        assert op in ops, ops
    out = tmp_path / "net"
    assert edgec("compile", path, "-o", out) == 0
    rep = json.loads((out / "report.json").read_text())
    assert rep["check"]["mismatches"] == 0
    assert rep["fidelity"]["cosine_min"] > 0.95
    qdq = onnx.load(str(out / "model.int8.onnx"))
    kinds = {n.op_type for n in qdq.graph.node}
    assert {"Sigmoid", "Tanh", "HardSigmoid", "Mul", "LeakyRelu", "Add"} <= kinds


def test_quantizer_fixes_logistic_and_tanh_output_params():
    from edgec.toolchain.quantize.tflite_int8 import quantize
    x = Tensor("x", (1, 8), "float32")
    g = Graph({"x": x, "s": Tensor("s", (1, 8), "float32"), "t": Tensor("t", (1, 8), "float32"),
               "h": Tensor("h", (1, 8), "float32")},
              [Node("sig", "logistic", ["x"], ["s"]), Node("th", "tanh", ["s"], ["t"]),
               Node("hs", "hard_swish", ["t"], ["h"])], ["x"], ["h"])
    q = quantize(g, {"x": (-4.0, 4.0), "s": (0.0, 1.0), "t": (0.0, 0.8), "h": (-0.3, 0.8)})
    assert (float(q.tensors["s"].quant.scale), int(q.tensors["s"].quant.zero_point)) == \
        (1 / 256, -128)
    assert (float(q.tensors["t"].quant.scale), int(q.tensors["t"].quant.zero_point)) == \
        (1 / 128, 0)
    lower(q)  # every op lowers


# ---------------------------------------------------------------------------------------
# Lowering errors name the node
# ---------------------------------------------------------------------------------------

def _act(name, shape, scale=0.1, zp=0):
    return Tensor(name, shape, "int8", quant=QuantParams.per_tensor(scale, zp))


def _binary_graph(op, sa, sb, sy, qy=(0.1, 0)):
    ts = [_act("a", sa), _act("b", sb), _act("y", sy, *qy)]
    return Graph({t.name: t for t in ts}, [Node("n1", op, ["a", "b"], ["y"])], ["a"], ["y"])


@pytest.mark.parametrize("op", ["add", "mul"])
def test_broadcast_shape_errors(op):
    with pytest.raises(EdgecError, match="'n1'.*do not broadcast"):
        lower(_binary_graph(op, (1, 4, 4, 8), (1, 1, 1, 3), (1, 4, 4, 8)))
    with pytest.raises(EdgecError, match="'n1'.*broadcast to .*output is"):
        lower(_binary_graph(op, (1, 4, 4, 8), (1, 1, 1, 8), (1, 4, 1, 8)))
    with pytest.raises(EdgecError, match="'n1'.*4-D"):
        lower(_binary_graph(op, (1, 2, 2, 2, 2), (2,), (1, 2, 2, 2, 2)))


def test_mul_multiplier_too_large_is_refused():
    with pytest.raises(EdgecError, match="'n1'.*too large"):
        lower(_binary_graph("mul", (1, 8), (1, 8), (1, 8), qy=(1e-7, 0)))


def test_hard_swish_out_of_range_scales_are_refused():
    g = Graph({"x": _act("x", (1, 8), 0.5), "y": _act("y", (1, 8), 1e-6)},
              [Node("hs", "hard_swish", ["x"], ["y"])], ["x"], ["y"])
    with pytest.raises(EdgecError, match="'hs'.*HardSwish"):
        lower(g)


def test_float_boundary_kernels_compile_for_cortex_m7(tmp_path):
    for name in ("quantize_f32.c", "dequantize_f32.c"):
        r = subprocess.run(["arm-none-eabi-gcc", "-std=c99", "-Wall", "-Wextra", "-Werror",
                            "-pedantic", "-mcpu=cortex-m7", "-mthumb", "-mfpu=fpv5-sp-d16",
                            "-mfloat-abi=hard", "-O2", "-I", str(INCLUDE_DIR), "-I",
                            str(KERNELS_DIR), "-c", str(KERNELS_DIR / name), "-o",
                            str(tmp_path / "k.o")], capture_output=True, text=True,
                           check=False)
        assert r.returncode == 0, r.stderr
