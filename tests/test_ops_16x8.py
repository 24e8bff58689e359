"""TFLite's 16x8 mode (int16 activations, int8 weights, int64 bias) end to end.

Per op (QUANTIZE int8 <-> int16 and float <-> int16, FULLY_CONNECTED 16x8, ADD int16), small
graphs over shapes, scales and fused clamps, on inputs spanning the whole input range:
golden == LiteRT BUILTIN_REF byte for byte, and the generated C on the host == golden.
Then one 16x8 .tflite network (QUANTIZE -> FC -> ADD -> FC -> QUANTIZE) through
`edgec compile` on QEMU with the exact-match check, and the import errors.
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
from edgec.toolchain.frontend.tflite import load_tflite
from edgec.toolchain.golden import run_program
from edgec.toolchain.ir import Graph, Node, QuantParams, Tensor, verify
from edgec.toolchain.lower import lower
from edgec.toolchain.plan.arena import plan_memory
from kernel_cases import to_tflite

TESTS_DIR = Path(__file__).resolve().parent
HOST_CFLAGS = ["-std=c99", "-Wall", "-Wextra", "-Werror", "-pedantic", "-O2"]
META = {"model": "t", "model_sha256": "0" * 64, "target": "host", "command": "pytest"}
SAMPLES = 6
RELU, RELU6, RELU_N1 = (0.0, None), (0.0, 6.0), (-1.0, 1.0)


def _act(name: str, shape, dtype: str, scale: float, zp: int = 0) -> Tensor:
    return Tensor(name, tuple(shape), dtype, quant=QuantParams.per_tensor(scale, zp))


def _graph(tensors: list[Tensor], nodes: list[Node], inputs, outputs) -> Graph:
    g = Graph({t.name: t for t in tensors}, nodes, list(inputs), list(outputs))
    verify(g)
    return g


def quantize_graph(shape, src: tuple, dst: tuple) -> Graph:
    """x (dtype, scale, zp) -> QUANTIZE -> y (dtype, scale, zp)."""
    x, y = _act("x", shape, *src), _act("y", shape, *dst)
    return _graph([x, y], [Node("quantize", "quantize", ["x"], ["y"])], ["x"], ["y"])


def _fc_tensors(rng, prefix: str, x: Tensor, c_out: int, per_channel: bool, bias: bool,
                bias_magnitude: int = 1 << 20, w_scale: float | None = None):
    c_in = x.shape[-1]
    w = rng.integers(-127, 128, size=(c_out, c_in)).astype(np.int8)
    if per_channel:
        s_w = (rng.uniform(0.002, 0.02, size=c_out) if w_scale is None
               else np.full(c_out, w_scale))
        wq = QuantParams(s_w, np.zeros(c_out, np.int64), axis=0)
    else:
        s_w = np.full(c_out, 0.01)
        wq = QuantParams.per_tensor(0.01, 0)
    wt = Tensor(f"{prefix}_w", (c_out, c_in), "int8", data=w, quant=wq)
    if not bias:
        return wt, None
    s_in = float(np.float32(x.quant.scale))
    b = rng.integers(-bias_magnitude, bias_magnitude + 1, size=c_out).astype(np.int64)
    bt = Tensor(f"{prefix}_b", (c_out,), "int64", data=b,
                quant=QuantParams(s_in * s_w, np.zeros(c_out, np.int64), axis=0))
    return wt, bt


def fc_graph(rows: int, c_in: int, c_out: int, s_in: float, s_out: float,
             per_channel=True, bias=True, act=(None, None), seed=0) -> Graph:
    rng = np.random.default_rng(seed)
    x = _act("x", (rows, c_in), "int16", s_in)
    y = _act("y", (rows, c_out), "int16", s_out)
    w, b = _fc_tensors(rng, "fc", x, c_out, per_channel, bias)
    node = Node("fc", "fully_connected", ["x", w.name, b.name if b else ""], ["y"],
                {"act_min": act[0], "act_max": act[1]})
    return _graph([x, y, w] + ([b] if b else []), [node], ["x"], ["y"])


def add_graph(shape_a, shape_b, s_a: float, s_b: float, s_y: float,
              act=(None, None), op: str = "add") -> Graph:
    a, b = _act("a", shape_a, "int16", s_a), _act("b", shape_b, "int16", s_b)
    y = _act("y", np.broadcast_shapes(shape_a, shape_b), "int16", s_y)
    node = Node(op, op, ["a", "b"], ["y"], {"act_min": act[0], "act_max": act[1]})
    return _graph([a, b, y], [node], ["a", "b"], ["y"])


def _samples(t: Tensor, rng) -> np.ndarray:
    """SAMPLES inputs over the tensor's whole range, the two extremes among them."""
    if t.dtype == "float32":
        scale = float(t.quant.scale) if t.quant else 0.01
        v = rng.uniform(-40000 * scale, 40000 * scale, size=(SAMPLES, *t.shape))
        return v.astype(np.float32)
    info = np.iinfo(t.dtype)
    v = rng.integers(info.min, info.max + 1, size=(SAMPLES, *t.shape))
    v[0], v[1] = info.min, info.max
    return v.astype(t.dtype)


def _litert(model: bytes, inputs: list[np.ndarray]) -> np.ndarray:
    """LiteRT BUILTIN_REF, one invoke per sample (whole-shape samples, any batch)."""
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    interp = Interpreter(model_content=model, num_threads=1,
                         experimental_op_resolver_type=OpResolverType.BUILTIN_REF)
    interp.allocate_tensors()
    ins, out = interp.get_input_details(), interp.get_output_details()[0]
    results = []
    for s in range(SAMPLES):
        for d, x in zip(ins, inputs):
            interp.set_tensor(d["index"], x[s])
        interp.invoke()
        results.append(np.array(interp.get_tensor(out["index"])))
    return np.stack(results)


def _golden(graph: Graph, program, inputs: list[np.ndarray]) -> np.ndarray:
    return np.stack([run_program(program, {n: x[s] for n, x in zip(graph.inputs, inputs)}
                                 )[graph.outputs[0]] for s in range(SAMPLES)])


def _host(graph: Graph, program, inputs: list[np.ndarray], root: Path) -> np.ndarray:
    """The generated C of a one-input graph, compiled on the host, on every sample."""
    src = root / "src"
    emit_sources(program, plan_memory(program), src, META)  # the real planner: int16 sizes
    exe = root / "model"
    build = subprocess.run(["gcc", *HOST_CFLAGS, "-I", str(src),
                            *map(str, sorted(src.glob("*.c"))),
                            str(TESTS_DIR / "host_main.c"), "-o", str(exe)],
                           capture_output=True, text=True, check=False)
    assert build.returncode == 0, build.stderr
    (root / "in.bin").write_bytes(np.ascontiguousarray(inputs[0]).tobytes())
    subprocess.run([str(exe), str(root / "in.bin"), str(root / "out.bin")], check=True,
                   capture_output=True, timeout=60)
    out = graph.tensors[graph.outputs[0]]
    return np.frombuffer((root / "out.bin").read_bytes(), out.dtype).reshape(SAMPLES, -1)


def _check(graph: Graph, tmp_path: Path | None, seed: int = 0) -> None:
    """golden == LiteRT BUILTIN_REF, and (one-input graphs with int8/float I/O, which the
    host harness reads) host C == golden."""
    rng = np.random.default_rng(seed)
    inputs = [_samples(graph.tensors[n], rng) for n in graph.inputs]
    program = lower(graph)
    golden = _golden(graph, program, inputs)
    litert = _litert(to_tflite(graph), inputs)
    bad = np.flatnonzero(golden.reshape(-1) != litert.reshape(-1))
    assert bad.size == 0, (f"{bad.size}/{golden.size} values differ from LiteRT, first: "
                           f"golden {golden.reshape(-1)[bad[0]]} LiteRT "
                           f"{litert.reshape(-1)[bad[0]]}")
    assert len(np.unique(golden)) > 3  # the cases exercise the arithmetic, not a clamp
    if tmp_path is not None:
        host = _host(graph, program, inputs, tmp_path)
        assert np.array_equal(host, golden.reshape(SAMPLES, -1))


# ---------------------------------------------------------------------------------------
# QUANTIZE
# ---------------------------------------------------------------------------------------

QUANTIZE_CASES = {
    "s8_to_s16": ((1, 37), ("int8", 0.05, 3), ("int16", 0.0011, 0)),
    "s8_to_s16_pot": ((2, 3, 5), ("int8", 0.0625, -128), ("int16", 2.0 ** -10, 0)),
    "s8_to_s16_coarse": ((40,), ("int8", 0.02, 100), ("int16", 0.37, 0)),
    "s16_to_s8": ((1, 37), ("int16", 0.0011, 0), ("int8", 0.06, -5)),
    "s16_to_s8_saturating": ((3, 11), ("int16", 0.01, 0), ("int8", 0.5, 20)),
    "s16_to_s16": ((19,), ("int16", 0.0013, 0), ("int16", 0.0031, 0)),
    "f32_to_s16": ((1, 29), ("float32", None, None), ("int16", 0.004, 0)),
    "s16_to_f32": ((1, 29), ("int16", 0.0037, 0), ("float32", None, None)),
}


def _quantize_case(shape, src, dst) -> Graph:
    if src[0] == "float32":
        x, y = Tensor("x", tuple(shape), "float32"), _act("y", shape, *dst)
        return _graph([x, y], [Node("quantize", "quantize", ["x"], ["y"])], ["x"], ["y"])
    if dst[0] == "float32":
        x, y = _act("x", shape, *src), Tensor("y", tuple(shape), "float32")
        return _graph([x, y], [Node("dequantize", "dequantize", ["x"], ["y"])], ["x"], ["y"])
    return quantize_graph(shape, src, dst)


@pytest.mark.parametrize("case", QUANTIZE_CASES, ids=list(QUANTIZE_CASES))
def test_quantize_golden_litert_host(case, tmp_path):
    graph = _quantize_case(*QUANTIZE_CASES[case])
    # int16 graph inputs: host_main feeds raw bytes, so it runs those too
    _check(graph, tmp_path)


# ---------------------------------------------------------------------------------------
# FULLY_CONNECTED 16x8
# ---------------------------------------------------------------------------------------

FC_CASES = {
    "per_channel": {"rows": 1, "c_in": 24, "c_out": 10, "s_in": 0.001, "s_out": 0.02},
    "per_channel_rows": {"rows": 3, "c_in": 17, "c_out": 6, "s_in": 0.0007, "s_out": 0.009, "seed": 1},
    "per_tensor": {"rows": 2, "c_in": 32, "c_out": 8, "s_in": 0.002, "s_out": 0.05, "per_channel": False},
    "no_bias": {"rows": 1, "c_in": 40, "c_out": 5, "s_in": 0.001, "s_out": 0.03, "bias": False, "seed": 2},
    "relu": {"rows": 2, "c_in": 16, "c_out": 12, "s_in": 0.001, "s_out": 0.01, "act": RELU, "seed": 3},
    "relu6": {"rows": 1, "c_in": 20, "c_out": 9, "s_in": 0.0005, "s_out": 0.0004, "act": RELU6, "seed": 4},
    "relu_n1_to_1": {"rows": 1, "c_in": 8, "c_out": 16, "s_in": 0.00001, "s_out": 0.0001, "act": RELU_N1,
                         "seed": 5},
}


@pytest.mark.parametrize("case", FC_CASES, ids=list(FC_CASES))
def test_fully_connected_golden_litert_host(case, tmp_path):
    _check(fc_graph(**FC_CASES[case]), tmp_path, seed=7)


def test_fully_connected_ties_round_half_away_from_zero(tmp_path):
    """Power-of-two scales (s_in * s_w / s_out = 1/8) and small inputs make exact ties of
    the rescale, negative ones among them: LiteRT rounds them away from zero, as golden."""
    rng = np.random.default_rng(9)
    x = _act("x", (2, 16), "int16", 2.0 ** -10)
    y = _act("y", (2, 8), "int16", 2.0 ** -14)
    w, b = _fc_tensors(rng, "fc", x, 8, True, True, bias_magnitude=999, w_scale=2.0 ** -7)
    graph = _graph([x, y, w, b], [Node("fc", "fully_connected", ["x", w.name, b.name], ["y"],
                                       {"act_min": None, "act_max": None})], ["x"], ["y"])
    samples = rng.integers(-128, 128, size=(SAMPLES, 2, 16)).astype(np.int16)
    program = lower(graph)
    golden = _golden(graph, program, [samples])
    assert np.array_equal(golden, _litert(to_tflite(graph), [samples]))
    assert np.array_equal(_host(graph, program, [samples], tmp_path),
                          golden.reshape(SAMPLES, -1))
    acc = samples.astype(np.int64) @ w.data.T.astype(np.int64) + b.data
    assert np.sum((acc % 8 == 4) & (acc < 0)) > 0  # negative ties were there to round


# ---------------------------------------------------------------------------------------
# ADD int16
# ---------------------------------------------------------------------------------------

ADD_CASES = {
    "same_shape": ((1, 4, 4, 3), (1, 4, 4, 3), 0.001, 0.0007, 0.0015, (None, None)),
    "equal_scales": ((2, 9), (2, 9), 0.002, 0.002, 0.003, (None, None)),
    "pot_scales": ((1, 3, 8), (1, 3, 8), 2.0 ** -9, 2.0 ** -11, 2.0 ** -8, (None, None)),
    "broadcast_row": ((2, 3, 5), (5,), 0.0009, 0.004, 0.002, (None, None)),
    "broadcast_both": ((3, 1, 4), (1, 2, 4), 0.001, 0.0013, 0.001, (None, None)),
    "relu": ((1, 30), (1, 30), 0.001, 0.002, 0.0025, RELU),
    "relu6": ((1, 30), (1, 30), 0.0003, 0.0002, 0.0003, RELU6),
}


@pytest.mark.parametrize("case", ADD_CASES, ids=list(ADD_CASES))
def test_add_golden_litert(case):
    """Two int16 inputs: host_main takes one, so the C runs in test_add_host below."""
    *shapes_scales, act = ADD_CASES[case]
    _check(add_graph(*shapes_scales, act=act), None, seed=11)


def add_host_graph(broadcast: bool, act=(None, None), op: str = "add") -> Graph:
    """One int16 input, both ADD operands in the arena: x + requantize(x) (same shape), or
    reshape(FC(x)) [3, 5] + x [1, 5] (broadcast), for the one-input host harness."""
    rng = np.random.default_rng(5)
    if not broadcast:
        x, q = _act("x", (1, 4, 4, 3), "int16", 0.001), _act("q", (1, 4, 4, 3), "int16", 0.0023)
        y = _act("y", (1, 4, 4, 3), "int16", 0.0019)
        nodes = [Node("rq", "quantize", ["x"], ["q"]),
                 Node(op, op, ["x", "q"], ["y"], {"act_min": act[0], "act_max": act[1]})]
        return _graph([x, q, y], nodes, ["x"], ["y"])
    x, h = _act("x", (1, 5), "int16", 0.001), _act("h", (1, 15), "int16", 0.004)
    h3, y = _act("h3", (3, 5), "int16", 0.004), _act("y", (3, 5), "int16", 0.003)
    w, b = _fc_tensors(rng, "fc", x, 15, True, True)
    nodes = [Node("fc", "fully_connected", ["x", w.name, b.name], ["h"],
                  {"act_min": None, "act_max": None}),
             Node("reshape", "reshape", ["h"], ["h3"], {"shape": (3, 5)}),
             Node(op, op, ["h3", "x"], ["y"], {"act_min": act[0], "act_max": act[1]})]
    return _graph([x, h, h3, y, w, b], nodes, ["x"], ["y"])


@pytest.mark.parametrize("broadcast,act", [(False, (None, None)), (False, RELU6),
                                           (True, (None, None)), (True, RELU)],
                         ids=["same_shape", "relu6", "broadcast", "broadcast_relu"])
@pytest.mark.parametrize("op", ["add", "mul"])
def test_add_mul_host_c_equals_golden(op, broadcast, act, tmp_path):
    graph = add_host_graph(broadcast, act, op)
    if op == "mul":  # scales of a product
        for name in ("y",):
            graph.tensors[name].quant = QuantParams.per_tensor(0.015 if broadcast else 0.06, 0)
    rng = np.random.default_rng(3)
    inputs = [_samples(graph.tensors["x"], rng)]
    program = lower(graph)
    assert [c.kernel for c in program.calls][-1] == f"edgec_{op}_s16"
    golden = _golden(graph, program, inputs)
    assert len(np.unique(golden)) > 3
    assert np.array_equal(_host(graph, program, inputs, tmp_path), golden.reshape(SAMPLES, -1))


MUL_CASES = {
    "same_shape": ((1, 4, 4, 3), (1, 4, 4, 3), 0.001, 0.0007, 0.02, (None, None)),
    "broadcast_row": ((2, 3, 5), (5,), 0.0009, 0.004, 0.05, (None, None)),
    "broadcast_both": ((3, 1, 4), (1, 2, 4), 0.001, 0.0013, 0.03, (None, None)),
    "relu": ((1, 30), (1, 30), 0.001, 0.002, 0.04, RELU),
    "relu_n1_to_1": ((1, 30), (1, 30), 0.0001, 0.0002, 0.0001, RELU_N1),
}


@pytest.mark.parametrize("case", MUL_CASES, ids=list(MUL_CASES))
def test_mul_golden_litert(case):
    *shapes_scales, act = MUL_CASES[case]
    _check(add_graph(*shapes_scales, act=act, op="mul"), None, seed=13)


# ---------------------------------------------------------------------------------------
# A whole 16x8 network: `edgec compile` of the .tflite, QEMU, the exact-match check
# ---------------------------------------------------------------------------------------

def network_graph(seed: int = 0) -> Graph:
    """int8 x -> QUANTIZE int16 -> FC -> ADD(., x16) -> FC (RELU) -> QUANTIZE int8 y."""
    rng = np.random.default_rng(seed)
    x, x16 = _act("x", (1, 16), "int8", 0.04, -3), _act("x16", (1, 16), "int16", 0.00008)
    h, s = _act("h", (1, 16), "int16", 0.0004), _act("s", (1, 16), "int16", 0.0005)
    z, y = _act("z", (1, 8), "int16", 0.0006), _act("y", (1, 8), "int8", 0.07, -128)
    w1, b1 = _fc_tensors(rng, "fc1", x16, 16, True, True, bias_magnitude=1 << 14)
    w2, b2 = _fc_tensors(rng, "fc2", s, 8, True, True, bias_magnitude=1 << 14)
    nodes = [Node("quantize_in", "quantize", ["x"], ["x16"]),
             Node("fc1", "fully_connected", ["x16", w1.name, b1.name], ["h"],
                  {"act_min": None, "act_max": None}),
             Node("add", "add", ["h", "x16"], ["s"], {"act_min": None, "act_max": None}),
             Node("fc2", "fully_connected", ["s", w2.name, b2.name], ["z"],
                  {"act_min": 0.0, "act_max": None}),
             Node("quantize_out", "quantize", ["z"], ["y"])]
    return _graph([x, x16, h, s, z, y, w1, b1, w2, b2], nodes, ["x"], ["y"])


def test_network_16x8_golden_litert(tmp_path):
    _check(network_graph(), tmp_path)


def test_network_16x8_compiles_and_runs_on_qemu_exactly(tmp_path):
    path = tmp_path / "net16x8.tflite"
    path.write_bytes(to_tflite(network_graph()))
    imported = load_tflite(path)
    assert [n.op for n in imported.nodes] == ["quantize", "fully_connected", "add",
                                              "fully_connected", "quantize"]
    assert {imported.tensors[t].dtype for t in ("x16", "h", "s", "z")} == {"int16"}
    out = tmp_path / "net"
    assert edgec("compile", path, "-o", out) == 0
    rep = json.loads((out / "report.json").read_text())
    assert rep["check"]["samples"] > 0 and rep["check"]["mismatches"] == 0
    assert rep["check"]["litert"]["samples"] > 0 and rep["check"]["litert"]["mismatches"] == 0
    source = (out / "src" / "edgec_model.c").read_text()
    for kernel in ("edgec_requantize_s8_s16", "edgec_fully_connected_s16", "edgec_add_s16",
                   "edgec_requantize_s16_s8"):
        assert kernel in source


def float_io_network() -> Graph:
    """A 16x8 model as the converter writes it with float I/O: float x -> QUANTIZE int16 ->
    FC -> DEQUANTIZE float y."""
    rng = np.random.default_rng(4)
    x, x16 = Tensor("x", (1, 12), "float32"), _act("x16", (1, 12), "int16", 0.004)
    h, y = _act("h", (1, 6), "int16", 0.02), Tensor("y", (1, 6), "float32")
    w, b = _fc_tensors(rng, "fc", x16, 6, True, True, bias_magnitude=1 << 12)
    nodes = [Node("quantize", "quantize", ["x"], ["x16"]),
             Node("fc", "fully_connected", ["x16", w.name, b.name], ["h"],
                  {"act_min": None, "act_max": None}),
             Node("dequantize", "dequantize", ["h"], ["y"])]
    return _graph([x, x16, h, y, w, b], nodes, ["x"], ["y"])


def test_float_io_network_golden_litert_host(tmp_path):
    _check(float_io_network(), tmp_path, seed=2)


# ---------------------------------------------------------------------------------------
# Import errors: one line naming the op and the tensor, non-zero exit, no output
# ---------------------------------------------------------------------------------------

def _with(graph: Graph, **changes) -> Graph:
    for name, t in changes.items():
        graph.tensors[name] = t
    return graph


def _int32_bias_fc() -> Graph:
    g = fc_graph(1, 8, 4, 0.001, 0.01)
    b = g.tensors["fc_b"]
    return _with(g, fc_b=Tensor("fc_b", b.shape, "int32", data=b.data.astype(np.int32),
                                quant=b.quant))


def _pot_add() -> Graph:
    g = add_graph((1, 8), (1, 8), 2.0 ** -9, 2.0 ** -11, 2.0 ** -8)
    g.nodes[0].attrs["pot_scale_int16"] = True
    return g


def _mixed_add() -> Graph:
    g = add_graph((1, 8), (1, 8), 0.001, 0.002, 0.003)
    return _with(g, b=_act("b", (1, 8), "int8", 0.05, 0))


def _int16_logistic() -> Graph:
    x, y = _act("x", (1, 8), "int16", 0.001), _act("y", (1, 8), "int16", 2.0 ** -15)
    return _graph([x, y], [Node("logistic", "logistic", ["x"], ["y"])], ["x"], ["y"])


IMPORT_ERRORS = {
    "zero_point": (lambda: _with(fc_graph(1, 8, 4, 0.001, 0.01),
                                 y=_act("y", (1, 4), "int16", 0.01, 3)), "zero point 3"),
    "int32_bias": (_int32_bias_fc, "FULLY_CONNECTED .*int32 bias.*int64 bias"),
    "pot_add": (_pot_add, "ADD .*pot_scale_int16"),
    "mixed_add": (_mixed_add, "ADD .*two int16 activations"),
    "int16_logistic": (_int16_logistic, "no 16x8 LOGISTIC"),
}


@pytest.mark.parametrize("case", IMPORT_ERRORS, ids=list(IMPORT_ERRORS))
def test_import_errors_are_one_line(case, tmp_path):
    build, pattern = IMPORT_ERRORS[case]
    path = tmp_path / f"{case}.tflite"
    path.write_bytes(to_tflite(build()))
    with pytest.raises(EdgecError, match=pattern) as e:
        load_tflite(path)
    assert "\n" not in str(e.value) and str(path) in str(e.value)


def test_cli_rejects_a_bad_16x8_model_without_output(tmp_path):
    path = tmp_path / "bad.tflite"
    path.write_bytes(to_tflite(_int32_bias_fc()))
    assert edgec("compile", path, "-o", tmp_path / "out") != 0
    assert not (tmp_path / "out").exists()


def test_io_int8_refuses_a_float_io_16x8_model(tmp_path):
    path = tmp_path / "f.tflite"
    path.write_bytes(to_tflite(float_io_network()))
    assert [n.op for n in load_tflite(path).nodes] == ["quantize", "fully_connected",
                                                       "dequantize"]
    with pytest.raises(EdgecError, match="int16 .*use io='model'"):
        load_tflite(path, io="int8")


# ---------------------------------------------------------------------------------------
# CONV_2D 16x8
# ---------------------------------------------------------------------------------------

def conv_graph(in_shape, c_out: int, k, strides=(1, 1), dilations=(1, 1), same=False,
               s_in=0.001, s_out=0.02, act=(None, None), per_channel=True, seed=0) -> Graph:
    rng = np.random.default_rng(seed)
    n, h, w, c_in = in_shape
    kh, kw = k
    pads, out_hw = [], []
    for size, kk, s, d in zip((h, w), k, strides, dilations):
        eff = (kk - 1) * d + 1
        out = -(-size // s) if same else (size - eff) // s + 1
        total = max((out - 1) * s + eff - size, 0) if same else 0
        pads.append((total // 2, total - total // 2))
        out_hw.append(out)
    x = _act("x", in_shape, "int16", s_in)
    y = _act("y", (n, *out_hw, c_out), "int16", s_out)
    wd = rng.integers(-127, 128, size=(c_out, kh, kw, c_in)).astype(np.int8)
    s_w = rng.uniform(0.002, 0.02, size=c_out) if per_channel else np.full(c_out, 0.01)
    wq = (QuantParams(s_w, np.zeros(c_out, np.int64), axis=0) if per_channel
          else QuantParams.per_tensor(0.01, 0))
    wt = Tensor("conv_w", wd.shape, "int8", data=wd, quant=wq)
    bd = rng.integers(-(1 << 20), (1 << 20) + 1, size=c_out).astype(np.int64)
    bt = Tensor("conv_b", (c_out,), "int64", data=bd,
                quant=QuantParams(float(np.float32(s_in)) * s_w, np.zeros(c_out, np.int64), 0))
    node = Node("conv", "conv2d", ["x", "conv_w", "conv_b"], ["y"],
                {"strides": tuple(strides), "dilations": tuple(dilations),
                 "pads": (pads[0][0], pads[1][0], pads[0][1], pads[1][1]),
                 "act_min": act[0], "act_max": act[1]})
    return _graph([x, y, wt, bt], [node], ["x"], ["y"])


CONV_CASES = {
    "3x3_valid": {"in_shape": (1, 6, 6, 3), "c_out": 4, "k": (3, 3)},
    "3x3_same_stride2": {"in_shape": (1, 7, 6, 2), "c_out": 5, "k": (3, 3), "strides": (2, 2),
                             "same": True, "seed": 1},
    "1x1_per_tensor": {"in_shape": (1, 4, 4, 8), "c_out": 6, "k": (1, 1), "per_channel": False,
                           "s_out": 0.05, "seed": 2},
    "dilated_relu": {"in_shape": (1, 7, 7, 2), "c_out": 3, "k": (3, 3), "dilations": (2, 2),
                         "act": RELU, "s_out": 0.01, "seed": 3},
    "5x3_same_relu6": {"in_shape": (2, 5, 5, 2), "c_out": 3, "k": (5, 3), "same": True, "act": RELU6,
                           "s_in": 0.0001, "s_out": 0.0003, "seed": 4},
}


@pytest.mark.parametrize("case", CONV_CASES, ids=list(CONV_CASES))
def test_conv2d_golden_litert_host(case, tmp_path):
    _check(conv_graph(**CONV_CASES[case]), tmp_path, seed=17)


def test_conv2d_ties_round_half_up():
    """Power-of-two scales (rescale by 1/8) and small inputs: exact ties, negative ones
    among them. LiteRT's 16x8 conv rounds them half up (TFLite's 64-bit
    MultiplyByQuantizedMultiplier), unlike its 16x8 FULLY_CONNECTED; golden does the same."""
    graph = conv_graph((1, 4, 4, 4), 3, (1, 1), s_in=2.0 ** -10, s_out=2.0 ** -14, seed=6)
    w, b = graph.tensors["conv_w"], graph.tensors["conv_b"]
    w.quant = QuantParams(np.full(3, 2.0 ** -7), np.zeros(3, np.int64), axis=0)
    b.quant = QuantParams(np.full(3, 2.0 ** -17), np.zeros(3, np.int64), axis=0)
    b.data = np.array([-999, 5, 998], np.int64)
    samples = np.random.default_rng(2).integers(-128, 128, size=(SAMPLES, 1, 4, 4, 4))
    samples = samples.astype(np.int16)
    golden = _golden(graph, lower(graph), [samples])
    assert np.array_equal(golden, _litert(to_tflite(graph), [samples]))
    acc = samples.astype(np.int64) @ w.data.reshape(3, 4).T.astype(np.int64) + b.data
    ties = (acc % 8 == 4) & (acc < 0)
    assert ties.any() and np.array_equal(golden[ties], (acc[ties] + 4) >> 3)


S16_SOURCES = ("quantize_s16.c", "fully_connected_s16.c", "conv2d_s16.c",
               "batch_matmul_s16.c", "softmax_s16.c", "add_s16.c", "mul_s16.c",
               "quantize_f32.c", "dequantize_f32.c")


@pytest.mark.parametrize("cpu", [["-mcpu=cortex-m7", "-mfpu=fpv5-sp-d16", "-mfloat-abi=hard"],
                                 ["-mcpu=cortex-m0", "-mfloat-abi=soft"]], ids=["m7", "m0"])
def test_s16_kernels_compile_clean_for_cortex_m(cpu, tmp_path):
    r = subprocess.run(["arm-none-eabi-gcc", "-std=c99", "-Wall", "-Wextra", "-Werror",
                        "-pedantic", "-mthumb", *cpu, "-O2", "-I", str(INCLUDE_DIR),
                        "-I", str(KERNELS_DIR), "-c", *(str(KERNELS_DIR / n) for n in S16_SOURCES)],
                       cwd=tmp_path, capture_output=True, text=True, check=False)
    assert r.returncode == 0, r.stderr
    assert len(list(tmp_path.glob("*.o"))) == len(S16_SOURCES)


# ---------------------------------------------------------------------------------------
# BATCH_MATMUL int16
# ---------------------------------------------------------------------------------------

def bmm_graph(shape_a, shape_b, out_shape, adj_x=False, adj_y=False, s_a=0.001, s_b=0.002,
              s_y=0.05) -> Graph:
    a, b = _act("a", shape_a, "int16", s_a), _act("b", shape_b, "int16", s_b)
    y = _act("y", out_shape, "int16", s_y)
    node = Node("bmm", "batch_matmul", ["a", "b"], ["y"], {"adj_x": adj_x, "adj_y": adj_y})
    return _graph([a, b, y], [node], ["a", "b"], ["y"])


BMM_CASES = {
    "plain": {"shape_a": (1, 3, 8), "shape_b": (1, 8, 5), "out_shape": (1, 3, 5)},
    "adj_y_heads": {"shape_a": (2, 4, 6), "shape_b": (2, 5, 6), "out_shape": (2, 4, 5),
                        "adj_y": True, "s_y": 0.08},
    "adj_x": {"shape_a": (1, 7, 3), "shape_b": (1, 7, 4), "out_shape": (1, 3, 4), "adj_x": True},
    "broadcast_batch": {"shape_a": (2, 1, 3, 4), "shape_b": (1, 3, 4, 2),
                            "out_shape": (2, 3, 3, 2), "s_y": 0.03},
}


@pytest.mark.parametrize("case", BMM_CASES, ids=list(BMM_CASES))
def test_batch_matmul_golden_litert(case):
    _check(bmm_graph(**BMM_CASES[case]), None, seed=19)


def test_batch_matmul_host_c_equals_golden(tmp_path):
    """x @ requantize(x)^T (attention scores' shape), one input for the host harness."""
    x, q = _act("x", (2, 4, 6), "int16", 0.001), _act("q", (2, 4, 6), "int16", 0.0017)
    y = _act("y", (2, 4, 4), "int16", 0.06)
    graph = _graph([x, q, y], [Node("rq", "quantize", ["x"], ["q"]),
                               Node("bmm", "batch_matmul", ["x", "q"], ["y"],
                                    {"adj_x": False, "adj_y": True})], ["x"], ["y"])
    inputs = [_samples(x, np.random.default_rng(8))]
    program = lower(graph)
    assert program.calls[-1].kernel == "edgec_batch_matmul_s16"
    golden = _golden(graph, program, inputs)
    assert len(np.unique(golden)) > 3
    assert np.array_equal(_host(graph, program, inputs, tmp_path), golden.reshape(SAMPLES, -1))


# ---------------------------------------------------------------------------------------
# SOFTMAX int16 -> int16
# ---------------------------------------------------------------------------------------

def softmax_graph(shape, s_in: float, beta: float = 1.0) -> Graph:
    x, y = _act("x", shape, "int16", s_in), _act("y", shape, "int16", 1.0 / 32768)
    return _graph([x, y], [Node("softmax", "softmax", ["x"], ["y"], {"beta": beta})],
                  ["x"], ["y"])


SOFTMAX_CASES = {
    "range_10": {"shape": (1, 10), "s_in": 10.0 / 32768},
    "rows": {"shape": (4, 7), "s_in": 0.0004},
    "wide_beta": {"shape": (2, 3, 33), "s_in": 0.0007, "beta": 0.7},
    "sharp": {"shape": (1, 16), "s_in": 0.002, "beta": 1.3},
}


@pytest.mark.parametrize("case", SOFTMAX_CASES, ids=list(SOFTMAX_CASES))
def test_softmax_golden_litert_host(case, tmp_path):
    _check(softmax_graph(**SOFTMAX_CASES[case]), tmp_path, seed=23)


def attention_like_graph() -> Graph:
    """int8 x -> QUANTIZE int16 -> CONV_2D 3x3 SAME -> c; BATCH_MATMUL(c, c^T) -> SOFTMAX
    -> MUL(., c) -> QUANTIZE int8 y: every other 16x8 kernel in one network."""
    g = conv_graph((1, 4, 4, 2), 4, (3, 3), same=True, s_in=0.00008, s_out=0.0005, seed=8)
    t = dict(g.tensors)
    t["x"] = _act("x", (1, 4, 4, 2), "int8", 0.05, 4)
    t["x16"] = _act("x16", (1, 4, 4, 2), "int16", 0.00008)
    del t["y"]  # the conv's output is c here
    t["c"] = _act("c", (1, 4, 4, 4), "int16", 0.0005)
    for name, dtype, scale, zp in (("s", "int16", 0.0003, 0), ("p", "int16", 1 / 32768, 0),
                                   ("m", "int16", 0.0002, 0), ("y", "int8", 0.05, -3)):
        t[name] = _act(name, (1, 4, 4, 4), dtype, scale, zp)
    conv = g.nodes[0]
    conv.inputs[0], conv.outputs[0] = "x16", "c"
    nodes = [Node("quantize_in", "quantize", ["x"], ["x16"]), conv,
             Node("scores", "batch_matmul", ["c", "c"], ["s"], {"adj_x": False, "adj_y": True}),
             Node("softmax", "softmax", ["s"], ["p"], {"beta": 1.0}),
             Node("mul", "mul", ["p", "c"], ["m"], {"act_min": None, "act_max": None}),
             Node("quantize_out", "quantize", ["m"], ["y"])]
    return _graph(list(t.values()), nodes, ["x"], ["y"])


def test_attention_like_16x8_network_golden_litert(tmp_path):
    _check(attention_like_graph(), tmp_path)


def test_attention_like_16x8_network_runs_on_qemu_exactly(tmp_path):
    path = tmp_path / "attn16x8.tflite"
    path.write_bytes(to_tflite(attention_like_graph()))
    out = tmp_path / "net"
    assert edgec("compile", path, "-o", out) == 0
    rep = json.loads((out / "report.json").read_text())
    assert rep["check"]["samples"] > 0 and rep["check"]["mismatches"] == 0
    assert rep["check"]["litert"]["samples"] > 0 and rep["check"]["litert"]["mismatches"] == 0
    source = (out / "src" / "edgec_model.c").read_text()
    for kernel in ("edgec_conv2d_s16", "edgec_batch_matmul_s16", "edgec_softmax_s16",
                   "edgec_mul_s16"):
        assert kernel in source


def test_int16_io_model_compiles_checks_and_runs(tmp_path):
    """A 16x8 model with int16 I/O (inference_input_type int16): the check feeds int16 codes
    over the whole range, and `edgec run` takes and gives int16 arrays."""
    graph = fc_graph(rows=1, c_in=24, c_out=10, s_in=0.001, s_out=0.02)
    path = tmp_path / "fc16.tflite"
    path.write_bytes(to_tflite(graph))
    out = tmp_path / "net"
    assert edgec("compile", path, "-o", out) == 0
    rep = json.loads((out / "report.json").read_text())
    assert rep["check"]["samples"] > 0 and rep["check"]["mismatches"] == 0
    assert rep["check"]["litert"]["samples"] > 0 and rep["check"]["litert"]["mismatches"] == 0
    x = np.random.default_rng(1).integers(-32768, 32768, size=(3, 24)).astype(np.int16)
    np.save(tmp_path / "x.npy", x)
    assert edgec("run", out, "-i", tmp_path / "x.npy", "-o", tmp_path / "y.npy") == 0
    y = np.load(tmp_path / "y.npy")
    program = lower(graph)
    want = np.stack([run_program(program, {"x": s[None]})["y"].reshape(-1) for s in x])
    assert y.dtype == np.int16 and np.array_equal(y.reshape(3, -1), want)
