"""No input crashes or hangs the compiler: a short seeded run of benchmarks/fuzz.py (mutated
.tflite/.onnx/.pt2 files and mutated IR graphs, through `edgec compile` up to the C
sources), and hypothesis-generated int8 graphs through the same pipeline. Every case must
compile or be rejected with a one-line EdgecError. The long run is
`.venv/bin/python benchmarks/fuzz.py --files 10000`.
"""
from __future__ import annotations

import importlib.util
import sys
import tempfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from conftest import shared_models_dir

ROOT = Path(__file__).resolve().parents[1]
MODELS = shared_models_dir()


def _load_fuzz():
    spec = importlib.util.spec_from_file_location("edgec_fuzz", ROOT / "benchmarks" / "fuzz.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


fuzz = _load_fuzz()


def test_short_seeded_fuzz_run_has_no_crash_or_hang():
    lines: list[str] = []
    stats, failures = fuzz.fuzz(260, seed=12345, kinds=("tflite", "onnx", "ir"), limit=15,
                                log=lines.append)
    report = "\n".join(lines)
    assert stats.tried == 260
    assert not failures, report
    assert stats.crashes == stats.hangs == stats.bad_messages == 0, report
    # the harness reaches past the parsers: some mutants compile, most are rejected
    assert stats.accepted > 5 and stats.rejected > 100, stats


def test_short_pt2_fuzz_run():
    lines: list[str] = []
    stats, failures = fuzz.fuzz(12, seed=7, kinds=("pt2",), limit=30, log=lines.append)
    assert not failures, "\n".join(lines)
    assert stats.tried == 12 and stats.rejected > 0


def test_mutators_are_deterministic():
    with tempfile.TemporaryDirectory() as tmp:
        seeds = fuzz.Seeds(Path(tmp))
        for kind in ("tflite", "onnx", "ir"):
            a = fuzz.make_case(seeds, kind, 3, 99)
            b = fuzz.make_case(seeds, kind, 3, 99)
            assert a[0] == b[0]
            if a[1][0] == "file":
                assert a[1][1] == b[1][1]


# ---- hypothesis: generated int8 graphs -----------------------------------------------------

def mostly(good, bad, times: int = 6):
    """`good` about times/(times+1) of the draws, `bad` otherwise."""
    return st.integers(0, times).flatmap(lambda k: bad if k == 0 else good)


SCALES = mostly(st.floats(1e-3, 1.0), st.sampled_from(
    [float("nan"), float("inf"), 0.0, -0.5, 1e-40, 1e-30, 1e30, 3e38, 1e-12, 1e12]))
ZPS = mostly(st.integers(-128, 127), st.sampled_from([128, -129, 1000, -2 ** 40]))
SMALL = st.integers(1, 6)
WEIRD = st.sampled_from([0, -1, 1, 2, 3, 1000, 2 ** 31])


@st.composite
def int8_graphs(draw):
    from edgec.toolchain.ir import Graph, Node, QuantParams, Tensor

    tensors, nodes = {}, []

    def act(name, shape):
        tensors[name] = Tensor(name, tuple(shape), "int8",
                               quant=QuantParams.per_tensor(draw(SCALES), draw(ZPS)))
        return name

    shape = [1, draw(SMALL), draw(SMALL), draw(SMALL)]
    x = act("x", shape)
    for k in range(draw(st.integers(1, 4))):
        op = draw(st.sampled_from(["conv2d", "depthwise_conv2d", "max_pool2d", "avg_pool2d",
                                   "fully_connected", "add", "mul", "relu", "clip",
                                   "logistic", "tanh", "softmax", "mean", "pad", "reshape",
                                   "leaky_relu", "hard_swish", "strided_slice", "transpose",
                                   "concat"]))
        attrs, inputs = {}, [x]
        sane = all(isinstance(d, int) and 1 <= d <= 64 for d in shape)
        if not sane and op in ("conv2d", "depthwise_conv2d", "fully_connected", "pad",
                               "transpose", "concat", "strided_slice", "reshape"):
            op = "relu"  # after a wrong shape: keep the strategy itself small and valid
        n, h, w, c = (list(shape) + [1, 1, 1, 1])[:4] if len(shape) == 4 else (1, 1, 1, 1)
        out_shape = list(shape)
        if op in ("conv2d", "depthwise_conv2d", "max_pool2d", "avg_pool2d") and \
                len(shape) == 4 and sane:
            kh, kw = draw(SMALL), draw(SMALL)
            s = (draw(mostly(SMALL, WEIRD)), draw(SMALL))
            d = (draw(SMALL), 1) if op.endswith("conv2d") else (1, 1)
            p = tuple(draw(mostly(st.integers(0, 2), WEIRD, 12)) for _ in range(4))
            oh = (h + p[0] + p[2] - ((kh - 1) * d[0] + 1)) // max(s[0], 1) + 1
            ow = (w + p[1] + p[3] - ((kw - 1) * d[1] + 1)) // max(s[1], 1) + 1
            co = draw(SMALL) if op == "conv2d" else c
            out_shape = [n, oh, ow, co]
            attrs = {"strides": s, "pads": p, "act_min": None, "act_max": None}
            if op.endswith("pool2d"):
                attrs["kernel"] = (kh, kw)
            else:
                attrs["dilations"] = d
                wshape = (co, kh, kw, c) if op == "conv2d" else (1, kh, kw, co)
                axis = 0 if op == "conv2d" else 3
                wq = np.asarray(draw(st.lists(SCALES, min_size=co, max_size=co)), np.float64)
                wdata = np.asarray(draw(st.lists(st.integers(-127, 127), min_size=1,
                                                 max_size=1)) * int(np.prod(wshape)),
                                   np.int8).reshape(wshape)
                tensors[f"w{k}"] = Tensor(f"w{k}", wshape, "int8", wdata,
                                          QuantParams(wq, np.zeros(co, np.int64), axis))
                inputs.append(f"w{k}")
                if draw(st.booleans()):
                    tensors[f"b{k}"] = Tensor(f"b{k}", (co,), "int32",
                                              np.full(co, draw(st.integers(-2 ** 31, 2 ** 31 - 1)),
                                                      np.int32))
                    inputs.append(f"b{k}")
                if op == "depthwise_conv2d":
                    attrs["depth_multiplier"] = 1
        elif op == "fully_connected":
            cin = int(np.prod(shape))
            co = draw(SMALL)
            tensors[f"w{k}"] = Tensor(f"w{k}", (co, cin), "int8",
                                      np.ones((co, cin), np.int8),
                                      QuantParams(np.full(co, draw(SCALES)),
                                                  np.zeros(co, np.int64), 0))
            inputs.append(f"w{k}")
            out_shape = [1, co]
            attrs = {"act_min": None, "act_max": None}
        elif op in ("add", "mul"):
            inputs = [x, x]
            attrs = {"act_min": draw(st.sampled_from([None, 0.0, -1.0])), "act_max": None}
        elif op == "clip":
            attrs = {"act_min": draw(st.sampled_from([0.0, -1e30, 1e30, -1.0])),
                     "act_max": draw(st.sampled_from([6.0, 1e30, 0.5]))}
        elif op == "softmax":
            attrs = {"beta": draw(st.sampled_from([1.0, 0.5, 1e-9, 1e9]))}
        elif op == "mean" and len(shape) == 4 and sane:
            attrs = {"axes": (1, 2), "keepdims": draw(st.booleans())}
            out_shape = [n, 1, 1, c] if attrs["keepdims"] else [n, c]
        elif op == "pad":
            pads = tuple((draw(st.integers(0, 2)), draw(st.integers(0, 2))) for _ in shape)
            attrs = {"paddings": pads, "value": 0.0}
            out_shape = [d + a + b for d, (a, b) in zip(shape, pads)]
        elif op == "reshape":
            out_shape = [1, int(np.prod(shape))]
            attrs = {"shape": tuple(out_shape)}
        elif op == "leaky_relu":
            attrs = {"alpha": draw(st.sampled_from([0.1, -2.0, 1e9, 0.0]))}
        elif op == "strided_slice":
            attrs = {"begin": tuple(0 for _ in shape), "end": tuple(shape),
                     "strides": tuple(draw(st.sampled_from([1, 2, -1])) for _ in shape),
                     "begin_mask": 0, "end_mask": 0, "shrink_axis_mask": 0, "offset": False}
        elif op == "transpose":
            perm = draw(st.permutations(list(range(len(shape)))))
            attrs = {"perm": tuple(perm)}
            out_shape = [shape[p] for p in perm]
        elif op == "concat":
            inputs = [x, x]
            axis = draw(st.integers(0, len(shape) - 1))
            attrs = {"axis": axis}
            out_shape = [d * (2 if i == axis else 1) for i, d in enumerate(shape)]
        if draw(st.integers(0, 19)) == 0:  # sometimes a wrong output shape
            out_shape = [draw(st.one_of(SMALL, WEIRD)) for _ in range(draw(st.integers(1, 4)))]
        y = f"t{k}"
        if op in ("softmax", "logistic"):
            tensors[y] = Tensor(y, tuple(out_shape), "int8",
                                quant=QuantParams.per_tensor(1 / 256, -128))
        elif op == "tanh":
            tensors[y] = Tensor(y, tuple(out_shape), "int8",
                                quant=QuantParams.per_tensor(1 / 128, 0))
        elif op in ("max_pool2d", "avg_pool2d", "pad", "reshape", "strided_slice",
                    "transpose", "mean") and draw(st.booleans()):
            tensors[y] = Tensor(y, tuple(out_shape), "int8", quant=tensors[x].quant)
        else:
            act(y, out_shape)
        nodes.append(Node(f"n{k}", op, inputs, [y], attrs))
        x, shape = y, out_shape
    return Graph(tensors, nodes, ["x"], [x])


@settings(max_examples=150, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(graph=int8_graphs())
def test_generated_int8_graphs_compile_or_are_rejected_in_one_line(graph):
    from edgec.toolchain.errors import MAX_MESSAGE, EdgecError
    with tempfile.TemporaryDirectory() as tmp:
        try:
            with fuzz._time_limit(20):
                fuzz.compile_case(("ir", graph, True), Path(tmp))
        except EdgecError as e:
            msg = str(e)
            assert msg and "\n" not in msg and len(msg) <= MAX_MESSAGE


# Cases the long runs crashed on once (KIND:SEED:CASE); each must now be a clean rejection.
FOUND_BY_LONG_RUNS = [
    "tflite:447:110001815",  # seed 11: conv bias of shape [1,3,3,64]
    "ir:440:120002920",      # seed 12: a depthwise conv with 2-D weights
    "tflite:37:120003479",   # seed 12: a model without an input tensor
    "onnx:783:120002042",    # seed 12: absurd Pad pads abort ONNX's C++ shape inference
]


@pytest.mark.parametrize("key", FOUND_BY_LONG_RUNS)
def test_cases_found_by_long_runs_are_rejected_cleanly(key, tmp_path):
    kind, seed_index, case = key.split(":")
    out = fuzz.run_case(fuzz.Seeds(tmp_path), kind, int(seed_index), int(case), limit=60)
    assert out.status == "rejected", (out.status, out.message)
