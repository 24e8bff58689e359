"""Whole int8 networks built with kernel_cases.GraphBuilder, for the .tflite writer (to_tflite).

Weights are random int8 with per-channel scales; every activation's scale and zero point
come from a float simulation of the network on random int8-range inputs (GraphBuilder
calibrates each node's output), so activations use the int8 range as a converter would set.
"""
from __future__ import annotations

import numpy as np

from edgec.toolchain.ir import Graph, verify
from kernel_cases import GraphBuilder

RELU6 = {"act_min": 0.0, "act_max": 6.0}
RELU = {"act_min": 0.0, "act_max": None}
NONE = {"act_min": None, "act_max": None}


def same_pads(size: int, k: int, s: int) -> tuple[int, int]:
    """TFLite SAME padding (before, after) along one axis."""
    out = -(-size // s)
    total = max((out - 1) * s + k - size, 0)
    return total // 2, total - total // 2


def he_scales(b: GraphBuilder, fan_in: int, channels: int) -> np.ndarray:
    """Per-channel weight scales for He-like float weights (std ~ sqrt(2 / fan_in)): uniform
    int8 codes have a std of ~74, so activations keep their magnitude layer after layer
    instead of saturating every clamp."""
    return np.sqrt(2.0 / fan_in) / 74.0 * b.rng.uniform(0.6, 1.4, size=channels)


def conv(b: GraphBuilder, x: str, c_out: int, k: int = 1, s: int = 1, act=NONE,
         name: str = "") -> str:
    shape = b.tensors[x].shape
    (pt, pb), (pl, pr) = same_pads(shape[1], k, s), same_pads(shape[2], k, s)
    w = b.weights(f"{name}_w", (c_out, k, k, shape[3]), 0,
                  he_scales(b, k * k * shape[3], c_out))
    bias = b.bias(f"{name}_b", x, w, c_out)
    return b.node("conv2d", [x, w, bias], {"strides": (s, s), "dilations": (1, 1),
                                           "pads": (pt, pl, pb, pr), **act}, name=name)


def dwconv(b: GraphBuilder, x: str, k: int = 3, s: int = 1, act=RELU6, name: str = "") -> str:
    shape = b.tensors[x].shape
    (pt, pb), (pl, pr) = same_pads(shape[1], k, s), same_pads(shape[2], k, s)
    c = shape[3]
    w = b.weights(f"{name}_w", (1, k, k, c), 3, he_scales(b, k * k, c))
    bias = b.bias(f"{name}_b", x, w, c)
    return b.node("depthwise_conv2d", [x, w, bias],
                  {"strides": (s, s), "dilations": (1, 1), "pads": (pt, pl, pb, pr),
                   "depth_multiplier": 1, **act}, name=name)


def fc(b: GraphBuilder, x: str, c_out: int, act=NONE, name: str = "",
       gain: float = 1.0) -> str:
    rows, depth = b.tensors[x].shape
    w = b.weights(f"{name}_w", (c_out, depth), 0, gain * he_scales(b, depth, c_out))
    bias = b.bias(f"{name}_b", x, w, c_out)
    return b.node("fully_connected", [x, w, bias], dict(act), out_shape=(rows, c_out),
                  name=name)


def add(b: GraphBuilder, x: str, y: str, act=NONE, name: str = "") -> str:
    return b.node("add", [x, y], dict(act), name=name)


def pool(b: GraphBuilder, op: str, x: str, k: int, s: int, name: str = "") -> str:
    q = b.tensors[x].quant  # TFLite's int8 pools keep the input's quantization
    return b.node(op, [x], {"kernel": (k, k), "strides": (s, s), "pads": (0, 0, 0, 0), **NONE},
                  out_quant=(float(q.scale), int(q.zero_point)), name=name)


def mean(b: GraphBuilder, x: str, name: str = "") -> str:
    n, _, _, c = b.tensors[x].shape
    return b.node("mean", [x], {"axes": (1, 2), "keepdims": False}, out_shape=(n, c),
                  name=name)


def softmax(b: GraphBuilder, x: str, name: str = "") -> str:
    return b.node("softmax", [x], {"beta": 1.0}, name=name)


def finish(b: GraphBuilder, outputs: list[str]) -> Graph:
    g = b._graph(outputs)
    verify(g)
    return g


def multi_io(seed: int = 7) -> Graph:
    """Two inputs, three outputs, like a detection head: a trunk (conv on `image`, added to
    `prior`), then a conv head, a pooled FC head and a softmax head."""
    b = GraphBuilder(np.random.default_rng(seed))
    image = b.input("image", (1, 10, 10, 3), 0.02, -5)
    prior = b.input("prior", (1, 10, 10, 6), 0.05, 10)
    t = conv(b, image, 6, 3, act=RELU, name="stem")
    t = add(b, t, prior, name="trunk")
    boxes = conv(b, t, 4, 1, name="boxes")
    pooled = mean(b, pool(b, "max_pool2d", t, 2, 2, name="pool"), name="gap")
    score = fc(b, pooled, 5, name="score")
    classes = softmax(b, fc(b, pooled, 3, name="cls_logits"), name="classes")
    return finish(b, [boxes, score, classes])


def mobilenet_v2ish(seed: int = 11) -> Graph:
    """48x48x3, stem conv s2, five inverted-residual blocks (expansion 1x1, depthwise 3x3
    s1/s2, projection, residual adds; 10 and 20 channels, not multiples of 4), 1x1 conv,
    global MEAN, FC, SOFTMAX."""
    b = GraphBuilder(np.random.default_rng(seed), calib_samples=6)
    x = b.input("input", (1, 48, 48, 3), 1 / 128, 0)
    x = conv(b, x, 16, 3, 2, act=RELU6, name="stem")  # 24x24x16

    def block(x: str, expand: int, c_out: int, s: int, i: int) -> str:
        c_in = b.tensors[x].shape[3]
        h = conv(b, x, c_in * expand, 1, act=RELU6, name=f"b{i}_expand") if expand > 1 else x
        h = dwconv(b, h, 3, s, name=f"b{i}_dw")
        h = conv(b, h, c_out, 1, name=f"b{i}_project")
        return add(b, x, h, name=f"b{i}_add") if s == 1 and c_in == c_out else h

    x = block(x, 1, 10, 1, 1)   # 24x24x10
    x = block(x, 6, 20, 2, 2)   # 12x12x20 (hidden 60)
    x = block(x, 4, 20, 1, 3)   # 12x12x20, residual (hidden 80)
    x = block(x, 4, 24, 2, 4)   # 6x6x24
    x = block(x, 4, 24, 1, 5)   # 6x6x24, residual
    x = conv(b, x, 64, 1, act=RELU6, name="head")
    x = fc(b, mean(b, x, name="gap"), 10, name="logits")
    return finish(b, [softmax(b, x, name="probs")])


def resnetish(seed: int = 13) -> Graph:
    """32x32x3, stem conv, MAX_POOL, a basic block with an identity shortcut, a strided
    block with a strided 1x1 shortcut conv, AVERAGE_POOL, MEAN, FC, SOFTMAX."""
    b = GraphBuilder(np.random.default_rng(seed), calib_samples=6)
    x = b.input("input", (1, 32, 32, 3), 0.03, -3)
    x = conv(b, x, 16, 3, act=RELU, name="stem")
    x = pool(b, "max_pool2d", x, 2, 2, name="maxpool")  # 16x16x16
    h = conv(b, x, 16, 3, act=RELU, name="b1_conv1")
    h = conv(b, h, 16, 3, name="b1_conv2")
    x = add(b, x, h, act=RELU, name="b1_add")
    h = conv(b, x, 24, 3, 2, act=RELU, name="b2_conv1")  # 8x8x24
    h = conv(b, h, 24, 3, name="b2_conv2")
    sc = conv(b, x, 24, 1, 2, name="b2_shortcut")
    x = add(b, sc, h, act=RELU, name="b2_add")
    x = pool(b, "avg_pool2d", x, 2, 2, name="avgpool")  # 4x4x24
    x = fc(b, mean(b, x, name="gap"), 10, name="logits", gain=0.3)  # softmax not one-hot
    return finish(b, [softmax(b, x, name="probs")])
