"""Data movement ops end to end: PAD / PADV2, TRANSPOSE, CONCATENATION, RESIZE_NEAREST_NEIGHBOR,
STRIDED_SLICE (and FULLY_CONNECTED keep_num_dims).

The fixed cases of tests/kernel_cases.py (pad_*, transpose_*, concat_*, resize_*, slice_*,
fc_keep_num_dims) already run on host C, on QEMU and against LiteRT. Here:
  - the parameter space, golden model vs LiteRT's reference kernels (BUILTIN_REF) on random
    full-range int8: every 4-D perm, concat on every axis, resize flags and factors, random
    strided slices with masks and negative strides;
  - the TFLite importer: each op read back from a .tflite gives LiteRT's bytes;
  - fold_pad: identical outputs with and without the pad, in float and in int8;
  - the lowering's folding to 4-D and its errors;
  - the ONNX importer (vs onnxruntime), the quantizer rules and the QDQ artifact.
"""
from __future__ import annotations

import itertools

import numpy as np
import onnx
import pytest
from edgec.codegen import emit_sources
from edgec.toolchain.errors import EdgecError
from edgec.toolchain.float_exec import run_float, to_ir_layout, to_source_layout
from edgec.toolchain.frontend import load_onnx
from edgec.toolchain.frontend.tflite import load_tflite
from edgec.toolchain.golden import run_program
from edgec.toolchain.ir import Graph, Node, QuantParams, Tensor, verify
from edgec.toolchain.lower import lower
from edgec.toolchain.lower.data_movement import (
    fold_transpose,
    nearest_indices,
    resolve_strided_slice,
)
from edgec.toolchain.passes import fold_pad, run_passes
from edgec.toolchain.quantize import quantize, write_qdq_onnx
from kernel_cases import (
    GraphBuilder,
    _mix,
    make_inputs,
    run_litert_reference,
    to_tflite,
    trivial_plan,
)
from onnx import TensorProto, helper, numpy_helper

EXTRA_SAMPLES = 8


def golden_vs_litert(build, seed: int = 0) -> Graph:
    """Build a graph with `build(b) -> output`, then golden == LiteRT on full-range int8."""
    b = GraphBuilder(np.random.default_rng(seed))
    graph = b.graph(build(b))
    program = lower(graph)
    model = to_tflite(graph)
    assert model is not None
    name = graph.inputs[0]
    samples = make_inputs(graph, seed)[name]
    extra = np.random.default_rng(seed + 1).integers(
        -128, 128, (EXTRA_SAMPLES,) + tuple(graph.tensors[name].shape)).astype(np.int8)
    samples = np.concatenate([samples, extra])
    want = run_litert_reference(model, samples)
    for s in range(len(samples)):
        got = run_program(program, {name: samples[s]})[graph.outputs[0]].reshape(-1)
        assert got.shape == want[s].shape, f"sample {s}: {got.shape} vs LiteRT {want[s].shape}"
        bad = np.flatnonzero(got != want[s])
        assert bad.size == 0, (f"sample {s}: {bad.size}/{got.size} values differ from LiteRT, "
                               f"first at {bad[0]}: golden {got[bad[0]]} vs {want[s][bad[0]]}")
    return graph


def single(op, shape, attrs, q=(0.05, -7), out_shape=None):
    def build(b):
        x = b.input("x", shape, *q)
        return b.node(op, [x], attrs, out_shape=out_shape, out_quant=q)
    return build


# --- pad ---------------------------------------------------------------------------------------

PADS = [
    ((1, 6, 5, 3), ((0, 0), (0, 1), (2, 0), (0, 0)), 0.0),
    ((1, 4, 4, 8), ((0, 0), (3, 3), (3, 3), (0, 0)), 0.0),
    ((2, 3, 3, 2), ((1, 2), (0, 0), (0, 0), (3, 1)), 0.0),
    ((1, 5, 5, 4), ((0, 0), (1, 0), (0, 1), (1, 1)), 0.77),
    ((1, 2, 3, 4), ((0, 0), (2, 2), (1, 3), (0, 0)), -2.5),
    ((4, 6), ((2, 1), (0, 5)), 0.0),
    ((9,), ((3, 4),), 1.0),
    ((2, 3, 4), ((0, 1), (1, 0), (2, 2)), 0.0),
]


@pytest.mark.parametrize("shape,paddings,value", PADS, ids=[str(i) for i in range(len(PADS))])
def test_pad_matches_litert(shape, paddings, value):
    graph = golden_vs_litert(single("pad", shape, {"paddings": paddings, "value": value}))
    if value:  # written as PADV2 with an int8 constant
        assert graph.nodes[0].attrs["value"] == value


def test_pad_value_outside_the_output_range_is_an_error():
    g = _graph("pad", (1, 2, 2, 1), (1, 4, 4, 1), paddings=((0, 0), (1, 1), (1, 1), (0, 0)),
               value=100.0)
    with pytest.raises(EdgecError, match="'n'.*pad value 100"):
        lower(g)


# --- transpose ---------------------------------------------------------------------------------

@pytest.mark.parametrize("perm", list(itertools.permutations(range(4))),
                         ids=lambda p: "".join(map(str, p)))
def test_every_4d_transpose_matches_litert(perm):
    golden_vs_litert(single("transpose", (2, 3, 4, 5), {"perm": perm}), seed=sum(perm))


@pytest.mark.parametrize("shape,perm", [((4, 5, 6), p) for p in
                                        itertools.permutations(range(3))]
                         + [((6, 7), (1, 0)), ((1, 5, 1, 7), (0, 3, 2, 1)),
                            ((3, 1, 4, 2, 5), (4, 2, 0, 1, 3))])
def test_other_rank_transposes_match_litert(shape, perm):
    golden_vs_litert(single("transpose", shape, {"perm": perm}))


def test_transpose_folding():
    # size-1 axes dropped, axes that stay neighbours merged
    assert fold_transpose([1, 5, 1, 7], [0, 3, 2, 1]) == ([5, 7], [1, 0])
    assert fold_transpose([2, 3, 4, 5], [0, 1, 3, 2]) == ([6, 4, 5], [0, 2, 1])
    assert fold_transpose([2, 3, 4, 5, 6], [2, 3, 4, 0, 1]) == ([6, 120], [1, 0])
    g = _graph("transpose", (2, 3, 4, 5, 6), (6, 2, 4, 3, 5), perm=(4, 0, 2, 1, 3))
    with pytest.raises(EdgecError, match="'n'.*5 dimensions after folding"):
        lower(g)


def test_tflite_transpose_of_size_one_axes_is_a_reshape(tmp_path):
    """A TRANSPOSE that only moves size-1 axes is imported as a reshape (a view)."""
    b = GraphBuilder(np.random.default_rng(3))
    x = b.input("x", (1, 6, 1, 5), 0.1, 0)
    t = b.node("transpose", [x], {"perm": (2, 1, 0, 3)}, out_quant=(0.1, 0))
    path = tmp_path / "t.tflite"
    path.write_bytes(to_tflite(b.graph(t)))
    assert [n.op for n in load_tflite(path).nodes] == ["reshape"]


# --- concat ------------------------------------------------------------------------------------

@pytest.mark.parametrize("axis", [0, 1, 2, 3, -1, -3])
@pytest.mark.parametrize("n_inputs", [2, 3])
def test_concat_each_axis_different_scales_matches_litert(axis, n_inputs):
    qs = [(0.11, -20), (0.023, 45)][:n_inputs - 1]

    def build(b):
        x = b.input("x", (2, 3, 4, 5), 0.05, 3)
        parts = [_mix(b, x, (0.05, 3), q, f"mix{k}") for k, q in enumerate(qs)]
        return b.node("concat", parts[:1] + [x] + parts[1:], {"axis": axis}, name="concat")
    graph = golden_vs_litert(build, seed=axis + 10 * n_inputs)
    call = lower(graph).calls[-1]
    assert call.kernel == "edgec_concat_s8" and call.input_array
    assert call.fields["num_inputs"] == n_inputs


def test_concat_of_equal_quants_is_a_copy():
    def build(b):
        x = b.input("x", (1, 3, 3, 4), 0.05, 3)
        m = _mix(b, x, (0.05, 3), (0.05, 3), "mix")
        return b.node("concat", [x, m, x], {"axis": 2}, out_quant=(0.05, 3), name="concat")
    graph = golden_vs_litert(build)
    f = lower(graph).calls[-1].fields
    assert list(f["multiplier"].data) == [1 << 30] * 3 and list(f["shift"].data) == [1] * 3


def test_concat_generated_c_passes_an_input_table(tmp_path):
    def build(b):
        x = b.input("x", (1, 2, 2, 3), 0.05, 3)
        m = _mix(b, x, (0.05, 3), (0.1, -5), "mix")
        return b.node("concat", [m, x], {"axis": 3}, name="cat")
    b = GraphBuilder(np.random.default_rng(0))
    program = lower(b.graph(build(b)))
    plan = trivial_plan(program)
    meta = {"model": "t", "model_sha256": "0" * 64, "target": "host", "command": "pytest"}
    texts = []
    for k in range(2):
        emit_sources(program, plan, tmp_path / str(k), meta)
        texts.append((tmp_path / str(k) / "edgec_model.c").read_text())
    assert texts[0] == texts[1]  # deterministic
    table = (f"static const int8_t *const edgec_l001_cat_inputs[2] = {{\n"
             f"    edgec_arena + {plan.offsets['mix_out']},\n"
             f"    edgec_arena + {plan.offsets['x']},\n}};")
    assert table in texts[0]
    assert "edgec_concat_s8(&edgec_l001_cat_params, edgec_l001_cat_inputs, edgec_arena + " \
        in texts[0]


# --- resize nearest ----------------------------------------------------------------------------

RESIZES = [((4, 5), (8, 10)), ((5, 7), (8, 11)), ((3, 3), (7, 5)), ((9, 9), (4, 6)),
           ((6, 4), (3, 2)), ((1, 1), (3, 4)), ((7, 3), (7, 3)), ((2, 6), (11, 1))]


@pytest.mark.parametrize("align,half", [(False, False), (True, False), (False, True)])
@pytest.mark.parametrize("src,dst", RESIZES, ids=[f"{s}-{d}" for s, d in RESIZES])
def test_resize_nearest_matches_litert(src, dst, align, half):
    attrs = {"size": dst, "align_corners": align, "half_pixel_centers": half}
    golden_vs_litert(single("resize_nearest", (1, *src, 3), attrs, out_shape=(1, *dst, 3)))


def test_resize_index_rule_known_values():
    # x2 asymmetric floor: each row twice; half-pixel x2 the same; align_corners rounds
    assert list(nearest_indices(4, 8, False, False)) == [0, 0, 1, 1, 2, 2, 3, 3]
    assert list(nearest_indices(4, 8, False, True)) == [0, 0, 1, 1, 2, 2, 3, 3]
    assert list(nearest_indices(4, 7, True, False)) == [0, 1, 1, 2, 2, 3, 3]
    assert list(nearest_indices(3, 2, False, False)) == [0, 1]
    assert list(nearest_indices(3, 2, False, True)) == [0, 2]


# --- strided slice -----------------------------------------------------------------------------

def _random_slices(n: int, seed: int = 5):
    rng = np.random.default_rng(seed)
    out = []
    while len(out) < n:
        rank = int(rng.integers(1, 5))
        shape = tuple(int(v) for v in rng.integers(1, 8, rank))
        begin = [int(v) for v in rng.integers(-9, 9, rank)]
        end = [int(v) for v in rng.integers(-9, 9, rank)]
        strides = [int(v) * int(rng.choice([-1, 1])) for v in rng.integers(1, 4, rank)]
        masks = [int(v) for v in rng.integers(0, 1 << rank, 3)]
        masks[2] &= int(rng.integers(0, 1 << rank))  # shrink fewer axes
        axes = resolve_strided_slice(shape, begin, end, strides, *masks)
        kept = [c for k, (_, c, _) in enumerate(axes) if not masks[2] & (1 << k)]
        if any(c == 0 for _, c, _ in axes) or not kept:
            continue  # empty or scalar outputs: not models edgec compiles
        out.append((shape, begin, end, strides, masks, tuple(kept)))
    return out


@pytest.mark.parametrize("shape,begin,end,strides,masks,out_shape", _random_slices(40))
def test_random_strided_slices_match_litert(shape, begin, end, strides, masks, out_shape):
    attrs = {"begin": begin, "end": end, "strides": strides, "begin_mask": masks[0],
             "end_mask": masks[1], "shrink_axis_mask": masks[2]}
    golden_vs_litert(single("strided_slice", shape, attrs, out_shape=out_shape))


def test_strided_slice_offset_matches_litert():
    attrs = {"begin": (0, 1, -4, 0), "end": (1, 3, 3, 2), "strides": (1, 1, 1, 1),
             "offset": True}
    golden_vs_litert(single("strided_slice", (1, 5, 6, 3), attrs, out_shape=(1, 3, 3, 2)))


def test_strided_slice_errors():
    g = _graph("strided_slice", (1, 4, 4, 2), (1, 2, 4, 2), begin=(0, 0, 0, 0),
               end=(1, 2, 4, 2), strides=(1, 1, 1, 1))
    g.tensors["y"].shape = (1, 3, 4, 2)
    with pytest.raises(EdgecError, match="'n'.*output shape"):
        lower(g)
    g = _graph("strided_slice", (1, 4), (1, 1), begin=(0, 3), end=(1, 1), strides=(1, 1))
    with pytest.raises(EdgecError, match="'n'.*empty"):
        g.tensors["y"].shape = (1, 0)
        lower(g)


# --- fully connected keep_num_dims ---------------------------------------------------------------

def test_fully_connected_keep_num_dims_matches_litert():
    def build(b):
        x = b.input("x", (2, 3, 6), 0.04, 5)
        w = b.weights("w", (4, 6), 0)
        return b.node("fully_connected", [x, w, b.bias("b", x, w, 4)],
                      {"keep_num_dims": True}, out_shape=(2, 3, 4))
    graph = golden_vs_litert(build)
    assert graph.tensors[graph.outputs[0]].shape == (2, 3, 4)


# --- the TFLite importer -----------------------------------------------------------------------

IMPORT_CASES = {
    "pad": single("pad", (1, 3, 4, 2), {"paddings": ((0, 0), (1, 0), (2, 1), (0, 0)),
                                        "value": 0.0}),
    "padv2": single("pad", (1, 3, 4, 2), {"paddings": ((0, 0), (1, 0), (2, 1), (0, 1)),
                                          "value": 0.35}),
    "transpose": single("transpose", (1, 3, 4, 2), {"perm": (0, 3, 1, 2)}),
    "resize": single("resize_nearest", (1, 3, 4, 2), {"size": (5, 9), "align_corners": True,
                                                      "half_pixel_centers": False},
                     out_shape=(1, 5, 9, 2)),
    "slice": single("strided_slice", (1, 6, 5, 4), {"begin": (0, -1, 0, 1), "end": (1, 0, 5, 3),
                                                   "strides": (1, -2, 2, 1), "end_mask": 2,
                                                   "shrink_axis_mask": 8},
                    out_shape=(1, 3, 3)),
}


@pytest.mark.parametrize("kind", sorted(IMPORT_CASES))
def test_tflite_import_gives_litert_bytes(tmp_path, kind):
    b = GraphBuilder(np.random.default_rng(1))
    graph = b.graph(IMPORT_CASES[kind](b))
    model = to_tflite(graph)
    path = tmp_path / f"{kind}.tflite"
    path.write_bytes(model)
    imported = run_passes(load_tflite(path), quantized=True)
    assert [n.op for n in imported.nodes] == [graph.nodes[0].op]
    attrs = dict(imported.nodes[0].attrs)
    assert attrs.pop("value", 0.0) == pytest.approx(graph.nodes[0].attrs.get("value", 0.0),
                                                    rel=1e-6)  # float32 scale * int8
    assert attrs == {k: v for k, v in {**graph.nodes[0].attrs, **(
        {"offset": False, "begin_mask": 0} if kind == "slice" else {})}.items() if k != "value"}
    program = lower(imported)
    samples = make_inputs(graph, 2)["x"]
    want = run_litert_reference(model, samples)
    for s in range(len(samples)):
        got = run_program(program, {imported.inputs[0]: samples[s]})[imported.outputs[0]]
        np.testing.assert_array_equal(got.reshape(-1), want[s])


def test_tflite_concat_with_requantized_inputs(tmp_path):
    """The converter's form: QUANTIZE (int8 -> int8) in front of a same-scale CONCATENATION."""
    b = GraphBuilder(np.random.default_rng(4))
    x = b.input("x", (1, 3, 3, 4), 0.05, 3)
    m = _mix(b, x, (0.05, 3), (0.2, -9), "mix")
    graph = b.graph(b.node("concat", [x, m], {"axis": 3}, out_quant=(0.07, 1), name="cat"))
    model = to_tflite(graph)
    path = tmp_path / "cat.tflite"
    path.write_bytes(model)
    imported = run_passes(load_tflite(path), quantized=True)
    assert [n.op for n in imported.nodes] == ["conv2d", "quantize", "quantize", "concat"]
    program = lower(imported)
    samples = make_inputs(graph, 0)["x"]
    want = run_litert_reference(model, samples)
    for s in range(len(samples)):
        got = run_program(program, {"x": samples[s]})[imported.outputs[0]]
        np.testing.assert_array_equal(got.reshape(-1), want[s])


# --- fold_pad ----------------------------------------------------------------------------------

def _pad_conv_graph(b: GraphBuilder, op: str, paddings, value=0.0, extra_reader=None):
    x = b.input("x", (1, 6, 7, 3), 0.05, -4)
    p = b.node("pad", [x], {"paddings": paddings, "value": value}, out_quant=(0.05, -4),
               name="pad")
    if op == "conv2d":
        w = b.weights("w", (5, 3, 3, 3), 0)
        attrs = {"strides": (2, 1), "dilations": (1, 1), "pads": (0, 1, 0, 0)}
        ins = [p, w, b.bias("bias", p, w, 5)]
    elif op == "depthwise_conv2d":
        w = b.weights("w", (1, 3, 3, 6), 3)
        attrs = {"strides": (1, 1), "dilations": (1, 2), "pads": (1, 0, 0, 0),
                 "depth_multiplier": 2}
        ins = [p, w, b.bias("bias", p, w, 6)]
    else:
        attrs = {"kernel": (3, 3), "strides": (1, 1), "pads": (0, 0, 0, 0)}
        ins = [p]
    y = b.node(op, ins, attrs, out_quant=(0.05, -4) if "pool" in op else None, name="layer")
    if extra_reader:
        b.node(extra_reader, [p], {}, out_quant=(0.05, -4), name="other")
    return y


@pytest.mark.parametrize("op", ["conv2d", "depthwise_conv2d"])
def test_fold_pad_int8_is_bit_exact_and_removes_the_pad(op):
    b = GraphBuilder(np.random.default_rng(8))
    graph = b.graph(_pad_conv_graph(b, op, ((0, 0), (2, 1), (0, 3), (0, 0))))
    folded = run_passes(graph, quantized=True)
    verify(folded)
    assert [n.op for n in folded.nodes] == [op]
    t, l, bt, r = graph.nodes[1].attrs["pads"]
    assert folded.nodes[0].attrs["pads"] == (t + 2, l + 0, bt + 1, r + 3)
    assert folded.nodes[0].inputs[0] == "x" and "pad_out" not in folded.tensors
    assert graph.nodes[0].op == "pad"  # the input graph is untouched
    before, after = lower(graph), lower(folded)
    samples = make_inputs(graph, 8)["x"]
    for s in range(len(samples)):
        want = run_program(before, {"x": samples[s]})["layer_out"]
        np.testing.assert_array_equal(run_program(after, {"x": samples[s]})["layer_out"], want)


def test_fold_pad_float_graph_keeps_the_numbers():
    rng = np.random.default_rng(3)
    w = rng.standard_normal((4, 3, 3, 2)).astype(np.float32)
    tensors = {"x": Tensor("x", (1, 5, 5, 2), "float32"),
               "p": Tensor("p", (1, 8, 6, 2), "float32"),
               "w": Tensor("w", w.shape, "float32", data=w),
               "y": Tensor("y", (1, 6, 4, 4), "float32")}
    nodes = [Node("pad", "pad", ["x"], ["p"], {"paddings": ((0, 0), (1, 2), (0, 1), (0, 0)),
                                               "value": 0.0}),
             Node("conv", "conv2d", ["p", "w", ""], ["y"],
                  {"strides": (1, 1), "dilations": (1, 1), "pads": (0, 0, 0, 0),
                   "act_min": None, "act_max": None})]
    g = Graph(tensors, nodes, ["x"], ["y"])
    folded = run_passes(g)
    assert [n.op for n in folded.nodes] == ["conv2d"]
    assert folded.nodes[0].attrs["pads"] == (1, 0, 2, 1)
    x = rng.standard_normal((1, 5, 5, 2)).astype(np.float32)
    np.testing.assert_allclose(run_float(folded, {"x": x})["y"], run_float(g, {"x": x})["y"],
                               atol=1e-6)


@pytest.mark.parametrize("why,op,paddings,value,extra", [
    ("not a conv", "max_pool2d", ((0, 0), (1, 1), (1, 1), (0, 0)), 0.0, None),
    ("avg pool", "avg_pool2d", ((0, 0), (1, 1), (1, 1), (0, 0)), 0.0, None),
    ("channels padded", "depthwise_conv2d", ((0, 0), (1, 1), (1, 1), (0, 0)), 0.0, None),
    ("non-zero value", "conv2d", ((0, 0), (1, 1), (1, 1), (0, 0)), 0.4, None),
])
def test_fold_pad_leaves_what_it_cannot_fold(why, op, paddings, value, extra):
    b = GraphBuilder(np.random.default_rng(2))
    if why == "channels padded":
        x = b.input("x", (1, 4, 4, 2), 0.05, -4)
        p = b.node("pad", [x], {"paddings": ((0, 0), (1, 1), (1, 1), (0, 1)), "value": 0.0},
                   out_quant=(0.05, -4), name="pad")
        w = b.weights("w", (1, 3, 3, 3), 3)
        y = b.node("depthwise_conv2d", [p, w], {"pads": (0, 0, 0, 0), "depth_multiplier": 1},
                   name="layer")
    else:
        y = _pad_conv_graph(b, op, paddings, value)
    graph = b.graph(y)
    assert [n.op for n in fold_pad(graph).nodes] == [n.op for n in graph.nodes]


def test_fold_pad_with_another_reader_keeps_the_pad_for_it():
    b = GraphBuilder(np.random.default_rng(6))
    _pad_conv_graph(b, "conv2d", ((0, 0), (1, 1), (1, 1), (0, 0)), extra_reader="relu")
    graph = Graph(dict(b.tensors), list(b.nodes), list(b.inputs), ["layer_out", "other_out"])
    folded = fold_pad(graph)
    assert [n.op for n in folded.nodes] == ["pad", "conv2d", "relu"]
    assert folded.nodes[1].inputs[0] == "x" and folded.nodes[2].inputs[0] == "pad_out"


def test_fold_pad_int8_needs_equal_quant():
    b = GraphBuilder(np.random.default_rng(2))
    x = b.input("x", (1, 4, 4, 2), 0.05, -4)
    p = b.node("pad", [x], {"paddings": ((0, 0), (1, 1), (1, 1), (0, 0)), "value": 0.0},
               out_quant=(0.05, 0), name="pad")
    w = b.weights("w", (2, 3, 3, 2), 0)
    graph = b.graph(b.node("conv2d", [p, w], {"pads": (0, 0, 0, 0)}, name="layer"))
    assert [n.op for n in fold_pad(graph).nodes] == ["pad", "conv2d"]


def test_fold_pad_on_an_imported_tflite_matches_litert(tmp_path):
    """PAD -> CONV_2D(VALID) from a .tflite: folded by run_passes(quantized=True), the bytes
    are still LiteRT's."""
    b = GraphBuilder(np.random.default_rng(11))
    graph = b.graph(_pad_conv_graph(b, "conv2d", ((0, 0), (1, 2), (2, 0), (0, 0))))
    graph.nodes[1].attrs["pads"] = (0, 0, 0, 0)  # VALID: expressible in TFLite
    graph.nodes[1].attrs["strides"] = (1, 1)
    graph.tensors["layer_out"].shape = (1, 7, 7, 5)
    model = to_tflite(graph)
    path = tmp_path / "padconv.tflite"
    path.write_bytes(model)
    imported = run_passes(load_tflite(path), quantized=True)
    assert [n.op for n in imported.nodes] == ["conv2d"]
    assert imported.nodes[0].attrs["pads"] == (1, 2, 2, 0)
    program = lower(imported)
    samples = make_inputs(graph, 11)["x"]
    want = run_litert_reference(model, samples)
    for s in range(len(samples)):
        got = run_program(program, {"x": samples[s]})[imported.outputs[0]]
        np.testing.assert_array_equal(got.reshape(-1), want[s])


# --- lowering checks ---------------------------------------------------------------------------

def _graph(op, in_shape, out_shape, scale_out=0.1, **attrs) -> Graph:
    q = QuantParams.per_tensor(0.1, 0)
    tensors = {"x": Tensor("x", in_shape, "int8", quant=q),
               "y": Tensor("y", out_shape, "int8",
                           quant=QuantParams.per_tensor(scale_out, 0))}
    return Graph(tensors, [Node("n", op, ["x"], ["y"], attrs)], ["x"], ["y"])


@pytest.mark.parametrize("op,attrs,in_shape,out_shape", [
    ("pad", {"paddings": ((0, 0), (1, 1))}, (2, 2), (2, 4)),
    ("transpose", {"perm": (1, 0)}, (2, 3), (3, 2)),
    ("resize_nearest", {"size": (4, 4)}, (1, 2, 2, 1), (1, 4, 4, 1)),
    ("strided_slice", {"begin": (0,), "end": (2,), "strides": (1,)}, (4,), (2,)),
])
def test_moving_ops_need_equal_input_and_output_quant(op, attrs, in_shape, out_shape):
    with pytest.raises(EdgecError, match="'n'.*must be equal"):
        lower(_graph(op, in_shape, out_shape, scale_out=0.2, **attrs))


def test_shape_errors_name_the_node():
    with pytest.raises(EdgecError, match="'n'.*not input"):
        lower(_graph("pad", (2, 2), (3, 4), paddings=((0, 0), (1, 1))))
    with pytest.raises(EdgecError, match="'n'.*permuted"):
        lower(_graph("transpose", (2, 3), (2, 3), perm=(1, 0)))
    with pytest.raises(EdgecError, match="'n'.*size"):
        lower(_graph("resize_nearest", (1, 2, 2, 1), (1, 4, 4, 1), size=(4, 3)))
    q = QuantParams.per_tensor(0.1, 0)
    tensors = {k: Tensor(k, s, "int8", quant=q) for k, s in
               (("a", (1, 2, 3)), ("b", (1, 3, 3)), ("y", (1, 6, 3)))}
    g = Graph(tensors, [Node("n", "concat", ["a", "b"], ["y"], {"axis": 1})], ["a", "b"], ["y"])
    with pytest.raises(EdgecError, match="'n'.*add up"):
        lower(g)


# --- ONNX importer, quantizer and QDQ artifact --------------------------------------------------

def _onnx_model(nodes, inits, x_shape, y_shape, opset=17) -> onnx.ModelProto:
    inits = [numpy_helper.from_array(np.asarray(v), k) for k, v in inits.items()]
    g = helper.make_graph(nodes, "dm", [helper.make_tensor_value_info("x", TensorProto.FLOAT,
                                                                      x_shape)],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, y_shape)],
                          inits)
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)])
    m.ir_version = 8
    onnx.checker.check_model(m)
    return m


def data_movement_onnx() -> onnx.ModelProto:
    """Pad -> Conv -> Transpose(H<->W) -> Slice(strided, reversed) -> [Relu] -> Concat(C)
    -> Resize(nearest, x2 and x1.5)."""
    w = np.random.default_rng(0).standard_normal((6, 3, 3, 3)).astype(np.float32) * 0.3
    nodes = [
        helper.make_node("Pad", ["x", "pads", "pv"], ["p"], mode="constant"),
        helper.make_node("Conv", ["p", "W"], ["c"]),
        helper.make_node("Transpose", ["c"], ["t"], perm=[0, 1, 3, 2]),
        helper.make_node("Slice", ["t", "st", "en", "ax", "sp"], ["s"]),
        helper.make_node("Relu", ["s"], ["r"]),
        helper.make_node("Concat", ["s", "r"], ["cat"], axis=1),
        helper.make_node("Resize", ["cat", "", "scales"], ["y"], mode="nearest",
                         coordinate_transformation_mode="asymmetric", nearest_mode="floor"),
    ]
    inits = {"pads": np.array([0, 0, 1, 2, 0, 0, 1, 0], np.int64), "pv": np.float32(0.0),
             "W": w, "st": np.array([1, -1], np.int64), "en": np.array([8, -100], np.int64),
             "ax": np.array([2, 3], np.int64), "sp": np.array([2, -2], np.int64),
             "scales": np.array([1, 1, 2, 1.5], np.float32)}
    return _onnx_model(nodes, inits, [1, 3, 8, 9], [1, 12, 8, 6])


def test_onnx_import_matches_onnxruntime():
    import onnxruntime as ort
    m = data_movement_onnx()
    g = load_onnx(m)
    assert [n.op for n in g.nodes] == ["pad", "conv2d", "transpose", "strided_slice", "relu",
                                       "concat", "resize_nearest"]
    assert g.nodes[0].attrs["paddings"] == ((0, 0), (1, 1), (2, 0), (0, 0))  # NHWC axes
    assert g.nodes[2].attrs["perm"] == (0, 2, 1, 3)
    assert g.nodes[5].attrs["axis"] == 3
    sess = ort.InferenceSession(m.SerializeToString())
    x = np.random.default_rng(1).standard_normal((3, 1, 3, 8, 9)).astype(np.float32)
    for sample in x:
        ref = sess.run(None, {"x": sample})[0]
        for graph in (g, run_passes(g)):
            got = to_source_layout(run_float(graph, {"x": to_ir_layout(sample, "NCHW")})["y"],
                                   "NCHW")
            np.testing.assert_allclose(got, ref, atol=1e-5)
    assert "pad" not in [n.op for n in run_passes(g).nodes]  # folded into the conv


def test_onnx_pipeline_quantizes_and_writes_qdq():
    """Calibrate -> quantize (moving ops share the input's params, concat takes the union)
    -> lower -> golden, and the QDQ artifact runs in onnxruntime close to the float model."""
    import onnxruntime as ort
    from edgec.toolchain.quantize import calibrate
    m = data_movement_onnx()
    graph = run_passes(load_onnx(m))
    samples = np.random.default_rng(2).standard_normal((16, 3, 8, 9)).astype(np.float32)
    q = quantize(graph, calibrate(m, graph, samples))
    by_op = {n.op: n for n in q.nodes}
    for op in ("transpose", "strided_slice", "resize_nearest"):
        n = by_op[op]
        assert q.tensors[n.outputs[0]].quant is q.tensors[n.inputs[0]].quant
    cat = by_op["concat"]
    cq = q.tensors[cat.outputs[0]].quant
    for t in cat.inputs:
        iq = q.tensors[t].quant
        assert float(cq.scale) * (-128 - int(cq.zero_point)) <= \
            float(iq.scale) * (-128 - int(iq.zero_point)) + 1e-6
        assert float(cq.scale) * (127 - int(cq.zero_point)) >= \
            float(iq.scale) * (127 - int(iq.zero_point)) - 1e-6
    program = lower(q)
    assert [c.kernel for c in program.calls][-2:] == ["edgec_concat_s8",
                                                      "edgec_resize_nearest_s8"]
    qdq = write_qdq_onnx(q)
    # ONNX semantics of the QDQ graph: no QLinear fusions (onnxruntime's u8s8 QLinearConv
    # on x86 without VNNI can saturate, a property of that kernel, not of the artifact)
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_BASIC
    sess = ort.InferenceSession(qdq.SerializeToString(), options)
    fsess = ort.InferenceSession(m.SerializeToString())
    for sample in samples[:4]:
        ref = fsess.run(None, {"x": sample[None]})[0]
        got = sess.run(None, {"x": sample[None]})[0]
        scale = float(q.tensors[q.outputs[0]].quant.scale)
        assert np.abs(got - ref).max() <= 4 * scale


@pytest.mark.parametrize("mode,nearest,src,dst,ok", [
    ("asymmetric", "floor", 4, 8, True),
    ("asymmetric", "round_prefer_floor", 4, 8, True),  # same pixels for x2
    ("asymmetric", "round_prefer_floor", 3, 9, False),  # x3: rounds up 2/3
    ("tf_half_pixel_for_nn", "floor", 5, 8, True),
    ("align_corners", "round_prefer_ceil", 5, 8, True),
    ("half_pixel", "round_prefer_floor", 4, 8, True),  # the pixels of half_pixel_centers
    ("asymmetric", "ceil", 4, 8, False),
])
def test_onnx_resize_modes(mode, nearest, src, dst, ok):
    node = helper.make_node("Resize", ["x", "", "", "sizes"], ["y"], mode="nearest",
                            coordinate_transformation_mode=mode, nearest_mode=nearest)
    m = _onnx_model([node], {"sizes": np.array([1, 2, dst, dst], np.int64)},
                    [1, 2, src, src], [1, 2, dst, dst], opset=13)
    if not ok:
        with pytest.raises(EdgecError, match="no TFLite"):
            load_onnx(m)
        return
    import onnxruntime as ort
    g = load_onnx(m)
    x = np.random.default_rng(0).standard_normal((1, 2, src, src)).astype(np.float32)
    got = to_source_layout(run_float(g, {"x": to_ir_layout(x, "NCHW")})["y"], "NCHW")
    np.testing.assert_array_equal(got, ort.InferenceSession(m.SerializeToString())
                                  .run(None, {"x": x})[0])


def test_onnx_pad_modes_and_transpose_views():
    pad = helper.make_node("Pad", ["x", "pads"], ["y"], mode="reflect")
    m = _onnx_model([pad], {"pads": np.array([0, 0, 1, 1, 0, 0, 1, 1], np.int64)},
                    [1, 2, 3, 3], [1, 2, 5, 5])
    with pytest.raises(EdgecError, match="reflect"):
        load_onnx(m)
    # swapping H == 1 and W moves only a size-1 axis of the NHWC twin: a view
    t = helper.make_node("Transpose", ["x"], ["y"], perm=[0, 1, 3, 2])
    g = load_onnx(_onnx_model([t], {}, [1, 3, 1, 5], [1, 3, 5, 1]))
    assert [n.op for n in g.nodes] == ["reshape"]
    # NCHW -> NHWC of a C == 1 map is not one: the NHWC twin of the result is [1, W, 1, H]
    t = helper.make_node("Transpose", ["x"], ["y"], perm=[0, 2, 3, 1])
    g = load_onnx(_onnx_model([t], {}, [1, 1, 4, 5], [1, 4, 5, 1]))
    assert [n.op for n in g.nodes] == ["transpose"]
    x = np.random.default_rng(0).standard_normal((1, 1, 4, 5)).astype(np.float32)
    got = to_source_layout(run_float(g, {"x": to_ir_layout(x, "NCHW")})["y"], "NCHW")
    np.testing.assert_array_equal(got, x.transpose(0, 2, 3, 1))


# --- a float .tflite with these ops (the PTQ path) -------------------------------------------

def float_data_movement_tflite() -> bytes:
    """x -> PAD -> CONV_2D(VALID) -> TRANSPOSE(H<->W) -> two STRIDED_SLICEs (odd / even rows)
    -> CONCATENATION(C) -> RESIZE_NEAREST_NEIGHBOR(half-pixel) -> FULLY_CONNECTED(keep dims)."""
    from test_frontend_tflite import build_tflite
    rng = np.random.default_rng(5)
    f, i32 = "float32", "int32"
    t = [
        {"name": "x", "shape": [1, 5, 6, 3], "dtype": f},                                  # 0
        {"name": "paddings", "shape": [4, 2], "dtype": i32,
         "data": np.array([[0, 0], [1, 1], [2, 0], [0, 0]])},
        {"name": "p", "shape": [1, 7, 8, 3], "dtype": f},                                  # 2
        {"name": "w", "shape": [4, 3, 3, 3], "dtype": f, "data": rng.standard_normal((4, 3, 3, 3))},
        {"name": "c", "shape": [1, 5, 6, 4], "dtype": f},                                  # 4
        {"name": "perm", "shape": [4], "dtype": i32, "data": np.array([0, 2, 1, 3])},
        {"name": "t", "shape": [1, 6, 5, 4], "dtype": f},                                  # 6
        {"name": "b1", "shape": [4], "dtype": i32, "data": np.array([0, 1, 0, 0])},
        {"name": "e", "shape": [4], "dtype": i32, "data": np.array([1, 6, 5, 4])},         # 8
        {"name": "st", "shape": [4], "dtype": i32, "data": np.array([1, 2, 1, 1])},
        {"name": "odd", "shape": [1, 3, 5, 4], "dtype": f},                                # 10
        {"name": "b0", "shape": [4], "dtype": i32, "data": np.array([0, 0, 0, 0])},
        {"name": "even", "shape": [1, 3, 5, 4], "dtype": f},                               # 12
        {"name": "cat", "shape": [1, 3, 5, 8], "dtype": f},
        {"name": "size", "shape": [2], "dtype": i32, "data": np.array([6, 9])},            # 14
        {"name": "r", "shape": [1, 6, 9, 8], "dtype": f},
        {"name": "fw", "shape": [2, 8], "dtype": f, "data": rng.standard_normal((2, 8))},  # 16
        {"name": "y", "shape": [1, 6, 9, 2], "dtype": f},
        {"name": "cb", "shape": [4], "dtype": f, "data": rng.standard_normal(4)},          # 18
    ]
    ops = [
        {"op": "PAD", "inputs": [0, 1], "outputs": [2]},
        {"op": "CONV_2D", "inputs": [2, 3, 18], "outputs": [4], "options": (
            "Conv2DOptions", {"Padding": 1, "StrideH": 1, "StrideW": 1})},
        {"op": "TRANSPOSE", "inputs": [4, 5], "outputs": [6]},
        {"op": "STRIDED_SLICE", "inputs": [6, 7, 8, 9], "outputs": [10],
         "options": ("StridedSliceOptions", {})},
        {"op": "STRIDED_SLICE", "inputs": [6, 11, 8, 9], "outputs": [12],
         "options": ("StridedSliceOptions", {"EndMask": 2})},
        {"op": "CONCATENATION", "inputs": [10, 12], "outputs": [13],
         "options": ("ConcatenationOptions", {"Axis": -1})},
        {"op": "RESIZE_NEAREST_NEIGHBOR", "inputs": [13, 14], "outputs": [15],
         "options": ("ResizeNearestNeighborOptions", {"HalfPixelCenters": True})},
        {"op": "FULLY_CONNECTED", "inputs": [15, 16, -1], "outputs": [17],
         "options": ("FullyConnectedOptions", {"KeepNumDims": True})},
    ]
    return build_tflite(t, ops, [0], [17])


def test_float_tflite_import_matches_litert_and_quantizes(tmp_path):
    from edgec.toolchain.litert_ref import run_litert
    from edgec.toolchain.quantize import calibrate
    path = tmp_path / "dm_float.tflite"
    path.write_bytes(float_data_movement_tflite())
    g = load_tflite(path)
    verify(g)
    assert [n.op for n in g.nodes] == ["pad", "conv2d", "transpose", "strided_slice",
                                       "strided_slice", "concat", "resize_nearest",
                                       "fully_connected"]
    x = np.random.default_rng(6).standard_normal((4, 1, 5, 6, 3)).astype(np.float32)
    ref = run_litert(path, [x.reshape(4, 5, 6, 3)])[0]
    folded = run_passes(g)
    assert folded.nodes[0].op == "conv2d" and folded.nodes[0].attrs["pads"] == (1, 2, 1, 0)
    for graph in (g, folded):
        for s in range(4):
            np.testing.assert_allclose(run_float(graph, {"x": x[s]})["y"][0], ref[s],
                                       rtol=1e-5, atol=1e-5)
    q = quantize(folded, calibrate(None, folded, x.reshape(4, 1, 5, 6, 3)[:, 0]))
    program = lower(q)
    assert [c.kernel for c in program.calls][2:5] == [
        "edgec_strided_slice_s8", "edgec_strided_slice_s8", "edgec_concat_s8"]
    out_q = q.tensors["y"].quant
    for s in range(4):
        xq = np.clip(np.round(x[s] / float(q.tensors["x"].quant.scale))
                     + int(q.tensors["x"].quant.zero_point), -128, 127).astype(np.int8)
        yq = run_program(program, {"x": xq})["y"].astype(np.float64)
        got = (yq - int(out_q.zero_point)) * float(out_q.scale)
        assert np.abs(got - ref[s]).max() <= 6 * float(out_q.scale)
