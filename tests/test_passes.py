"""Passes: each is Graph -> Graph, keeps the numbers, keeps names, never mutates its input."""
from __future__ import annotations

import copy

import numpy as np
import pytest

from edgec.toolchain.errors import EdgecError
from edgec.toolchain.float_exec import run_float
from edgec.toolchain.frontend import load_onnx
from edgec.toolchain.ir import Graph, Node, Tensor, verify
from edgec.toolchain.passes import drop_noops, fold_batchnorm, fuse_activation, run_passes
from models import exported

RNG = np.random.default_rng(0)
CONV = dict(strides=(1, 1), dilations=(1, 1), pads=(1, 1, 1, 1), act_min=None, act_max=None)


def act(name, shape):
    return Tensor(name, shape, "float32")


def const(name, shape, positive=False):
    data = RNG.standard_normal(shape).astype(np.float32)
    return Tensor(name, shape, "float32", np.abs(data) + 0.5 if positive else data)


def bn_tensors(prefix, c):
    return [const(f"{prefix}_{k}", (c,), positive=k in ("scale", "var"))
            for k in ("scale", "bias", "mean", "var")]


def build(tensors, nodes, inputs, outputs) -> Graph:
    g = Graph({t.name: t for t in tensors}, nodes, inputs, outputs)
    verify(g)
    return g


def same_outputs(a: Graph, b: Graph, atol=1e-5):
    x = {n: RNG.standard_normal(a.tensors[n].shape) for n in a.inputs}
    ra, rb = run_float(a, x), run_float(b, x)
    assert ra.keys() == rb.keys()
    for k in ra:
        np.testing.assert_allclose(ra[k], rb[k], atol=atol)


def conv_bn_relu(layer="conv2d"):
    """x -> layer -> batch_norm -> relu -> y, for conv2d / depthwise_conv2d / fully_connected."""
    if layer == "fully_connected":
        xs, ys, w, attrs = (1, 6), (1, 4), (4, 6), dict(act_min=None, act_max=None)
    elif layer == "depthwise_conv2d":
        xs, ys, w, attrs = (1, 5, 5, 3), (1, 5, 5, 6), (1, 3, 3, 6), dict(CONV, depth_multiplier=2)
    else:
        xs, ys, w, attrs = (1, 5, 5, 3), (1, 5, 5, 4), (4, 3, 3, 3), CONV
    c = ys[-1]
    tensors = [act("x", xs), const("w", w), const("b", (c,)), act("t", ys), act("u", ys),
               act("y", ys), *bn_tensors("bn", c)]
    nodes = [Node("layer", layer, ["x", "w", "b"], ["t"], dict(attrs)),
             Node("bn", "batch_norm", ["t", "bn_scale", "bn_bias", "bn_mean", "bn_var"], ["u"],
                  {"epsilon": 1e-3}),
             Node("relu", "relu", ["u"], ["y"])]
    return build(tensors, nodes, ["x"], ["y"])


@pytest.mark.parametrize("layer", ["conv2d", "depthwise_conv2d", "fully_connected"])
def test_fold_batchnorm(layer):
    g = conv_bn_relu(layer)
    before = copy.deepcopy(g)
    folded = fold_batchnorm(g)
    verify(folded)
    assert [n.op for n in folded.nodes] == [layer, "relu"]
    assert folded.nodes[0].outputs == ["u"]  # the BatchNorm's output name survives
    assert "t" not in folded.tensors and "bn_scale" not in folded.tensors
    same_outputs(g, folded)
    np.testing.assert_array_equal(g.tensors["w"].data, before.tensors["w"].data)  # input untouched
    assert [n.op for n in g.nodes] == [n.op for n in before.nodes]


def test_fold_batchnorm_adds_a_bias_when_the_layer_has_none():
    g = conv_bn_relu()
    g.nodes[0].inputs = ["x", "w"]
    del g.tensors["b"]
    folded = fold_batchnorm(g)
    assert len(folded.nodes[0].inputs) == 3 and folded.tensors[folded.nodes[0].inputs[2]].shape == (4,)
    same_outputs(g, folded)


def test_standalone_batchnorm_is_an_error():
    tensors = [act("x", (1, 4, 4, 3)), act("y", (1, 4, 4, 3)), *bn_tensors("bn", 3)]
    g = build(tensors, [Node("bn0", "batch_norm", ["x", "bn_scale", "bn_bias", "bn_mean", "bn_var"],
                             ["y"], {"epsilon": 1e-5})], ["x"], ["y"])
    with pytest.raises(EdgecError, match="BatchNorm node 'bn0'.*not supported yet"):
        fold_batchnorm(g)


def test_fuse_activation_takes_the_activation_name_and_tightens_the_clamp():
    g = fold_batchnorm(conv_bn_relu())
    clip_t = act("z", (1, 5, 5, 4))
    g2 = Graph({**g.tensors, "z": clip_t}, g.nodes + [Node("six", "clip", ["y"], ["z"],
                                                            {"act_min": -1.0, "act_max": 6.0})],
               ["x"], ["z"])
    fused = fuse_activation(g2)
    verify(fused)
    assert [n.op for n in fused.nodes] == ["conv2d"]
    conv = fused.nodes[0]
    assert conv.outputs == ["z"] and (conv.attrs["act_min"], conv.attrs["act_max"]) == (0.0, 6.0)
    assert g2.nodes[0].attrs["act_min"] is None  # input untouched
    same_outputs(g2, fused)


def test_fuse_activation_skips_shared_and_output_tensors():
    tensors = [act("a", (1, 8)), act("b", (1, 8)), act("s", (1, 8)), act("r", (1, 8))]
    nodes = [Node("add", "add", ["a", "b"], ["s"], {"act_min": None, "act_max": None}),
             Node("relu", "relu", ["s"], ["r"])]
    g = build(tensors, nodes, ["a", "b"], ["r", "s"])  # s is also a graph output
    assert [n.op for n in fuse_activation(g).nodes] == ["add", "relu"]
    g = build(tensors, [copy.deepcopy(n) for n in nodes], ["a", "b"], ["r"])
    fused = fuse_activation(g)
    assert [n.op for n in fused.nodes] == ["add"] and fused.nodes[0].attrs["act_min"] == 0.0


def test_drop_noops_keeps_shape_changing_reshape_and_removes_identity():
    tensors = [act("x", (1, 4, 4, 2)), act("m", (1, 1, 1, 2)), act("f", (1, 2)), act("i", (1, 2)),
               const("w", (3, 2)), act("y", (1, 3))]
    nodes = [Node("gap", "mean", ["x"], ["m"], {"axes": (1, 2), "keepdims": True}),
             Node("flat", "reshape", ["m"], ["f"], {"shape": (1, 2)}),
             Node("id", "identity", ["f"], ["i"]),
             Node("fc", "fully_connected", ["i", "w"], ["y"], {"act_min": None, "act_max": None})]
    g = build(tensors, nodes, ["x"], ["y"])
    out = drop_noops(g)
    verify(out)
    assert [n.op for n in out.nodes] == ["mean", "reshape", "fully_connected"]
    assert out.nodes[2].inputs[0] == "f" and "i" not in out.tensors
    same_outputs(g, out)
    assert len(g.nodes) == 4


def test_drop_noops_keeps_shape_sensitive_and_io_reshapes():
    tensors = [act("x", (1, 8)), act("r", (1, 2, 2, 2)), act("y", (1, 2, 2, 2))]
    nodes = [Node("unflat", "reshape", ["x"], ["r"], {"shape": (1, 2, 2, 2)}),
             Node("pool", "max_pool2d", ["r"], ["y"], dict(kernel=(2, 2), strides=(1, 1),
                                                           pads=(0, 0, 1, 1), act_min=None,
                                                           act_max=None))]
    g = build(tensors, nodes, ["x"], ["y"])
    assert [n.op for n in drop_noops(g).nodes] == ["reshape", "max_pool2d"]  # pool needs 4D
    io = build([act("x", (1, 8)), act("y", (2, 4))],
               [Node("r", "reshape", ["x"], ["y"], {"shape": (2, 4)})], ["x"], ["y"])
    assert [n.op for n in drop_noops(io).nodes] == ["reshape"]


def test_identity_producing_a_graph_output_renames_the_producer():
    tensors = [act("a", (1, 4)), act("b", (1, 4)), act("s", (1, 4)), act("out", (1, 4))]
    nodes = [Node("add", "add", ["a", "b"], ["s"], {"act_min": None, "act_max": None}),
             Node("id", "identity", ["s"], ["out"])]
    out = drop_noops(build(tensors, nodes, ["a", "b"], ["out"]))
    assert [n.outputs for n in out.nodes] == [["out"]] and "s" not in out.tensors


def test_run_passes_on_an_imported_model_keeps_the_input_intact():
    graph = load_onnx(exported("mobilenetv2_mini", keep_batchnorm=True))
    snapshot = copy.deepcopy(graph)
    after = run_passes(graph)
    assert not any(n.op in ("batch_norm", "identity", "relu", "clip") for n in after.nodes)
    assert [(n.op, n.inputs, n.outputs, n.attrs) for n in graph.nodes] == \
        [(n.op, n.inputs, n.outputs, n.attrs) for n in snapshot.nodes]
    assert all(np.array_equal(graph.tensors[k].data, snapshot.tensors[k].data)
               for k in graph.tensors if graph.tensors[k].is_const)
    same_outputs(graph, after, atol=1e-4)
