"""Shared table of kernel test cases: small quantized graphs built by hand.

Each case builds a quantized NHWC Graph (one op, or a short chain) with seeded random data:
int8 activations with per-tensor quant, int8 weights with per-channel scales, int32 bias.
Output quantization is calibrated from a float reference run unless a case fixes it (to
force requantization multipliers above 1 or very small ones).

    build_case(case) -> (Program, Plan, inputs)

returns the lowered program, a trivial non-overlapping memory plan (the real planner lives
in toolchain/plan) and `inputs`: {graph input name: int8 array [SAMPLES, *shape]} covering
the int8 range (random samples, then all -128 and all 127).

float_node() is an independent float64 implementation of each IR op from the graph's own
attributes and dequantized constants, used to sanity-check the golden model.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from edgec.toolchain.ir import Graph, Node, QuantParams, Tensor, verify
from edgec.toolchain.lower import Program, lower
from edgec.toolchain.plan.arena import Plan

RANDOM_SAMPLES = 16
ALIGN = 16


# ---------------------------------------------------------------------------------------
# Quantization helpers
# ---------------------------------------------------------------------------------------

def dequantize(q: np.ndarray, qp: QuantParams) -> np.ndarray:
    scale = np.asarray(qp.scale, np.float64)
    zp = np.asarray(qp.zero_point, np.float64)
    if qp.axis is not None and scale.ndim == 1:
        shape = [1] * q.ndim
        shape[qp.axis] = -1
        scale, zp = scale.reshape(shape), zp.reshape(shape)
    return (q.astype(np.float64) - zp) * scale


def calibrate(values: np.ndarray) -> QuantParams:
    """Asymmetric int8 params covering the values' range (and 0)."""
    lo = min(float(values.min()), 0.0)
    hi = max(float(values.max()), 0.0)
    scale = (hi - lo) / 255.0 if hi > lo else 1e-3
    zp = int(np.clip(np.round(-128 - lo / scale), -128, 127))
    return QuantParams.per_tensor(scale, zp)


# ---------------------------------------------------------------------------------------
# Float reference of each IR op (independent of the lowering and of the golden model)
# ---------------------------------------------------------------------------------------

def _const(graph: Graph, name: str) -> np.ndarray | None:
    if name == "" or name is None:
        return None
    t = graph.tensors[name]
    if t.dtype == "int32":  # bias: scale s_in * s_w[c], zero point 0
        return t.data.astype(np.float64) * np.asarray(t.quant.scale, np.float64)
    return dequantize(t.data, t.quant)


def _clamp_act(y: np.ndarray, node: Node) -> np.ndarray:
    lo, hi = node.attrs.get("act_min"), node.attrs.get("act_max")
    if lo is not None:
        y = np.maximum(y, lo)
    if hi is not None:
        y = np.minimum(y, hi)
    return y


def _pad(x: np.ndarray, pads, value=0.0) -> np.ndarray:
    t, l, b, r = pads
    return np.pad(x, ((0, 0), (t, b), (l, r), (0, 0)), constant_values=value)


def _conv_float(x, w, b, strides, dilations, pads, depthwise, dm=1):
    xp = _pad(x, pads)
    n = x.shape[0]
    if depthwise:
        _, kh, kw, co = w.shape
    else:
        co, kh, kw, _ = w.shape
    sh, sw = strides
    dh, dw = dilations
    oh = (xp.shape[1] - ((kh - 1) * dh + 1)) // sh + 1
    ow = (xp.shape[2] - ((kw - 1) * dw + 1)) // sw + 1
    y = np.zeros((n, oh, ow, co))
    for oy in range(oh):
        for ox in range(ow):
            patch = xp[:, oy * sh:oy * sh + (kh - 1) * dh + 1:dh,
                       ox * sw:ox * sw + (kw - 1) * dw + 1:dw, :]  # n, kh, kw, ci
            if depthwise:
                patch = np.repeat(patch, dm, axis=3)
                y[:, oy, ox, :] = np.einsum("nhwc,hwc->nc", patch, w[0])
            else:
                y[:, oy, ox, :] = np.einsum("nhwc,ohwc->no", patch, w)
    if b is not None:
        y = y + b
    return y


def _pool_float(x, kernel, strides, pads, mode):
    n, h, w, c = x.shape
    t, l, b_, r = pads
    kh, kw = kernel
    sh, sw = strides
    oh = (h + t + b_ - kh) // sh + 1
    ow = (w + l + r - kw) // sw + 1
    y = np.zeros((n, oh, ow, c))
    for oy in range(oh):
        for ox in range(ow):
            y0, x0 = oy * sh - t, ox * sw - l
            win = x[:, max(y0, 0):min(y0 + kh, h), max(x0, 0):min(x0 + kw, w), :]
            y[:, oy, ox, :] = win.max(axis=(1, 2)) if mode == "max" else win.mean(axis=(1, 2))
    return y


def _strided_slice_float(x: np.ndarray, a: dict) -> np.ndarray:
    """NumPy basic slicing: a masked begin/end is None, a shrunk axis an integer index
    (the first element along the stride when begin is masked, else begin clamped in range)."""
    index = []
    for k in range(x.ndim):
        if a.get("shrink_axis_mask", 0) & (1 << k):
            if a.get("begin_mask", 0) & (1 << k):
                index.append(0 if int(a["strides"][k]) > 0 else -1)
            else:
                b = int(a["begin"][k])
                index.append(min(max(b + x.shape[k] if b < 0 else b, 0), x.shape[k] - 1))
            continue
        b = None if a.get("begin_mask", 0) & (1 << k) else int(a["begin"][k])
        e = None if a.get("end_mask", 0) & (1 << k) else int(a["end"][k])
        if a.get("offset") and e is not None:  # end counts from the resolved begin
            start = 0 if b is None else min(max(b + x.shape[k] if b < 0 else b, 0), x.shape[k])
            e = start + e
        index.append(slice(b, e, int(a["strides"][k])))
    return x[tuple(index)]


# Ops whose float reference needs one sample at a time (they move data across axis 0).
PER_SAMPLE_OPS = {"pad", "transpose", "concat", "strided_slice", "resize_nearest"}
# Broadcasting aligns the shapes' right ends: a folded sample axis would misalign them.
PER_SAMPLE_OPS = PER_SAMPLE_OPS | {"add", "mul"}
# batch_matmul broadcasts its batch dims too; a constant has no sample axis at all.
PER_SAMPLE_OPS = PER_SAMPLE_OPS | {"batch_matmul", "constant"}


def _operands(graph: Graph, node: Node, inputs: list[np.ndarray]) -> list[np.ndarray]:
    """Every input of a binary op in node order: the activations given, constants
    dequantized from the graph."""
    acts = iter(inputs)
    return [_const(graph, t) if graph.tensors[t].is_const else next(acts)
            for t in node.inputs]


def _layer_norm_float(x: np.ndarray, gamma, beta, eps: float) -> np.ndarray:
    mean = x.mean(axis=-1, keepdims=True)
    var = ((x - mean) ** 2).mean(axis=-1, keepdims=True)
    return (x - mean) / np.sqrt(var + eps) * gamma + beta


def _gelu_float(x: np.ndarray, approximate: bool) -> np.ndarray:
    from scipy.special import erf
    if approximate:
        return 0.5 * x * (1.0 + np.tanh(np.sqrt(2.0 / np.pi) * (x + 0.044715 * x ** 3)))
    return 0.5 * x * (1.0 + erf(x / np.sqrt(2.0)))


def float_node(graph: Graph, node: Node, inputs: list[np.ndarray]) -> np.ndarray:
    """The node's output in float64 from float inputs (activations in node.inputs order).

    Shapes are the natural ones (fully connected -> [rows, C_OUT], mean -> [N, 1, 1, C]);
    callers reshape to the output tensor's shape."""
    op, a = node.op, node.attrs
    x = inputs[0] if inputs else None  # a `constant` node has no activation input
    if op in ("conv2d", "depthwise_conv2d"):
        w = _const(graph, node.inputs[1])
        b = _const(graph, node.inputs[2]) if len(node.inputs) > 2 else None
        y = _conv_float(x, w, b, a.get("strides", (1, 1)), a.get("dilations", (1, 1)),
                        a.get("pads", (0, 0, 0, 0)), op == "depthwise_conv2d",
                        a.get("depth_multiplier", 1))
        return _clamp_act(y, node)
    if op == "fully_connected":
        w = _const(graph, node.inputs[1])
        b = _const(graph, node.inputs[2]) if len(node.inputs) > 2 else None
        y = x.reshape(-1, w.shape[1]) @ w.T
        if b is not None:
            y = y + b
        return _clamp_act(y, node)
    if op == "add":
        a_, b_ = _operands(graph, node, inputs)
        return _clamp_act(a_ + b_, node)
    if op in ("max_pool2d", "avg_pool2d"):
        y = _pool_float(x, a["kernel"], a.get("strides", a["kernel"]),
                        a.get("pads", (0, 0, 0, 0)), "max" if op == "max_pool2d" else "avg")
        return _clamp_act(y, node)
    if op == "mean":
        return x.mean(axis=(1, 2), keepdims=True)
    if op == "reshape":  # batch 1: the samples stay folded into axis 0
        return x.reshape((-1,) + tuple(a["shape"])[1:])
    if op == "softmax":
        z = x * a.get("beta", 1.0)
        e = np.exp(z - z.max(axis=-1, keepdims=True))
        return e / e.sum(axis=-1, keepdims=True)
    if op == "relu":
        return np.maximum(x, 0.0)
    if op == "clip":
        return _clamp_act(x, node)
    if op == "requantize":
        return x.copy()
    if op == "pad":
        return np.pad(x, [tuple(p) for p in a["paddings"]],
                      constant_values=float(a.get("value") or 0.0))
    if op == "transpose":
        return np.transpose(x, a["perm"])
    if op == "concat":
        return np.concatenate(inputs, axis=a["axis"])
    if op == "strided_slice":
        return _strided_slice_float(x, a)
    if op == "resize_nearest":
        from edgec.toolchain.lower.data_movement import nearest_indices
        ys, xs = (nearest_indices(x.shape[k], a["size"][k - 1], bool(a["align_corners"]),
                                  bool(a["half_pixel_centers"])) for k in (1, 2))
        return x[:, ys][:, :, xs]
    if op == "mul":
        a_, b_ = _operands(graph, node, inputs)
        return _clamp_act(a_ * b_, node)
    if op == "batch_matmul":
        a_, b_ = inputs
        a_ = np.swapaxes(a_, -1, -2) if a.get("adj_x") else a_
        b_ = np.swapaxes(b_, -1, -2) if a.get("adj_y") else b_
        return a_ @ b_
    if op == "gelu":
        return _gelu_float(x, bool(a.get("approximate", False)))
    if op == "layer_norm":
        gamma = graph.tensors[node.inputs[1]].data.astype(np.float64)
        beta = graph.tensors[node.inputs[2]].data.astype(np.float64)
        return _layer_norm_float(x, gamma, beta, float(a["epsilon"]))
    if op == "constant":
        return _const(graph, node.inputs[0])
    if op == "logistic":
        return 0.5 * (1.0 + np.tanh(0.5 * x))
    if op == "tanh":
        return np.tanh(x)
    if op == "hard_swish":
        return x * np.clip(x + 3.0, 0.0, 6.0) / 6.0
    if op == "leaky_relu":
        return np.where(x >= 0, x, a["alpha"] * x)
    raise NotImplementedError(op)


# ---------------------------------------------------------------------------------------
# Graph building
# ---------------------------------------------------------------------------------------

class GraphBuilder:
    """Builds a quantized graph node by node, calibrating each output on float data."""

    def __init__(self, rng: np.random.Generator, calib_samples: int = 8):
        self.rng = rng
        self.tensors: dict[str, Tensor] = {}
        self.nodes: list[Node] = []
        self.inputs: list[str] = []
        self.float_values: dict[str, np.ndarray] = {}  # calibration data, float
        self.calib_samples = calib_samples

    def input(self, name: str, shape: tuple[int, ...], scale: float, zp: int) -> str:
        qp = QuantParams.per_tensor(scale, zp)
        self.tensors[name] = Tensor(name, tuple(shape), "int8", quant=qp)
        self.inputs.append(name)
        q = self.rng.integers(-128, 128, size=(self.calib_samples, *shape))
        self.float_values[name] = dequantize(q, qp)
        return name

    def weights(self, name: str, shape: tuple[int, ...], axis: int,
                scales: np.ndarray | float | None = None, per_tensor: bool = False) -> str:
        channels = shape[axis]
        if scales is None:
            scales = self.rng.uniform(0.004, 0.03, size=channels)
        q = self.rng.integers(-127, 128, size=shape).astype(np.int8)
        if per_tensor:
            qp = QuantParams(np.asarray(float(np.atleast_1d(scales)[0]), np.float64),
                             np.asarray(0, np.int64))
        else:
            s = np.broadcast_to(np.asarray(scales, np.float64), (channels,)).copy()
            qp = QuantParams(s, np.zeros(channels, np.int64), axis=axis)
        self.tensors[name] = Tensor(name, tuple(shape), "int8", data=q, quant=qp)
        return name

    def bias(self, name: str, x: str, w: str, channels: int, magnitude: int = 3000) -> str:
        s_in = float(np.asarray(self.tensors[x].quant.scale))
        s_w = np.broadcast_to(np.asarray(self.tensors[w].quant.scale, np.float64),
                              (channels,))
        data = self.rng.integers(-magnitude, magnitude + 1, size=channels).astype(np.int32)
        qp = QuantParams(s_in * s_w, np.zeros(channels, np.int64), axis=0)
        self.tensors[name] = Tensor(name, (channels,), "int32", data=data, quant=qp)
        return name

    def node(self, op: str, inputs: list[str], attrs: dict | None = None,
             out_shape: tuple[int, ...] | None = None, out_quant: tuple[float, int] | None = None,
             name: str | None = None, out_dtype: str = "int8") -> str:
        name = name or f"{op}_{len(self.nodes)}"
        out = f"{name}_out"
        node = Node(name, op, list(inputs), [out], dict(attrs or {}))
        graph = self._graph(outputs=[])
        samples = self.calib_samples
        # float values are [SAMPLES, *shape]: fold the samples into the batch axis
        acts = [self.float_values[t].reshape((-1,) + self.float_values[t].shape[2:])
                for t in inputs if t and not self.tensors[t].is_const]
        if op in PER_SAMPLE_OPS:  # axis 0 is the op's own: no folding of the samples
            ins = [self.float_values[t] for t in inputs if t and not self.tensors[t].is_const]
            y = np.concatenate([float_node(graph, node, [v[s] for v in ins])
                                for s in range(samples)])
        else:
            y = float_node(graph, node, acts)
        if out_shape is not None:
            y = y.reshape((samples,) + tuple(out_shape))
        else:
            y = y.reshape((samples, y.shape[0] // samples) + y.shape[1:])
        if out_quant is not None:
            qp = QuantParams.per_tensor(*out_quant)
        elif op == "softmax":  # TFLite's fixed params (int16: attention probabilities)
            qp = QuantParams.per_tensor(*((1.0 / 65536, -32768) if out_dtype == "int16"
                                          else (1.0 / 256, -128)))
        else:
            qp = calibrate(y)
        self.tensors[out] = Tensor(out, tuple(y.shape[1:]), out_dtype, quant=qp)
        self.nodes.append(node)
        # Propagate quantized-then-dequantized values, as the int8 model sees them.
        info = np.iinfo(out_dtype)
        q = np.clip(np.round(y / float(qp.scale)) + int(qp.zero_point), info.min, info.max)
        self.float_values[out] = dequantize(q, qp)
        return out

    def _graph(self, outputs: list[str]) -> Graph:
        return Graph(tensors=dict(self.tensors), nodes=list(self.nodes),
                     inputs=list(self.inputs), outputs=outputs)

    def graph(self, output: str) -> Graph:
        g = self._graph([output])
        verify(g)
        return g


# ---------------------------------------------------------------------------------------
# The case table
# ---------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Case:
    id: str
    build: Callable[[GraphBuilder], str]  # adds nodes, returns the graph output
    seed: int = 0
    tags: tuple[str, ...] = field(default_factory=tuple)


def _conv(shape, c_out, k, strides=(1, 1), dilations=(1, 1), pads=(0, 0, 0, 0),
          act=(None, None), with_bias=True, in_q=(0.05, 3), w_scales=None, out_q=None):
    def build(b: GraphBuilder) -> str:
        x = b.input("x", shape, *in_q)
        w = b.weights("w", (c_out, k[0], k[1], shape[3]), 0, w_scales)
        ins = [x, w] + ([b.bias("bias", x, w, c_out)] if with_bias else [])
        return b.node("conv2d", ins, {"strides": strides, "dilations": dilations,
                                      "pads": pads, "act_min": act[0], "act_max": act[1]},
                      out_quant=out_q)
    return build


def _dw(shape, dm, k, strides=(1, 1), dilations=(1, 1), pads=(0, 0, 0, 0),
        act=(None, None), with_bias=True, in_q=(0.04, -7), w_scales=None, out_q=None):
    def build(b: GraphBuilder) -> str:
        c_out = shape[3] * dm
        x = b.input("x", shape, *in_q)
        w = b.weights("w", (1, k[0], k[1], c_out), 3, w_scales)
        ins = [x, w] + ([b.bias("bias", x, w, c_out)] if with_bias else [])
        return b.node("depthwise_conv2d", ins,
                      {"strides": strides, "dilations": dilations, "pads": pads,
                       "depth_multiplier": dm, "act_min": act[0], "act_max": act[1]},
                      out_quant=out_q)
    return build


def _fc(shape, c_out, with_bias=True, act=(None, None), per_tensor=False, in_q=(0.06, -20),
        out_shape=None, w_scales=None, out_q=None, c_in=None):
    def build(b: GraphBuilder) -> str:
        depth = c_in or shape[-1]
        x = b.input("x", shape, *in_q)
        w = b.weights("w", (c_out, depth), 0, w_scales, per_tensor=per_tensor)
        ins = [x, w] + ([b.bias("bias", x, w, c_out)] if with_bias else [])
        rows = int(np.prod(shape)) // depth
        return b.node("fully_connected", ins, {"act_min": act[0], "act_max": act[1]},
                      out_shape=out_shape or (rows, c_out), out_quant=out_q)
    return build


def _add(shape, qa, qb, act=(None, None), out_q=None):
    """a = the input, b = a 1x1 conv of it (channels mixed: b is not a function of a
    element-wise) quantized with qb; out = a + b. The generated API has one input."""
    def build(b: GraphBuilder) -> str:
        a = b.input("a", shape, *qa)
        w = b.weights("mix_w", (shape[3], 1, 1, shape[3]), 0,
                      b.rng.uniform(0.5, 1.5, shape[3]) * 3 * qb[0] / qa[0] / shape[3])
        other = b.node("conv2d", [a, w], {}, out_quant=qb, name="mix")
        return b.node("add", [a, other], {"act_min": act[0], "act_max": act[1]},
                      out_quant=out_q, name="add")
    return build


def _pool(op, shape, kernel, strides, pads=(0, 0, 0, 0), act=(None, None), q=(0.07, 5)):
    def build(b: GraphBuilder) -> str:
        x = b.input("x", shape, *q)
        return b.node(op, [x], {"kernel": kernel, "strides": strides, "pads": pads,
                                "act_min": act[0], "act_max": act[1]}, out_quant=q)
    return build


def _mean(shape, keepdims, q=(0.03, -11), out_q=None):
    def build(b: GraphBuilder) -> str:
        x = b.input("x", shape, *q)
        out_shape = (shape[0], 1, 1, shape[3]) if keepdims else (shape[0], shape[3])
        return b.node("mean", [x], {"axes": (1, 2), "keepdims": keepdims},
                      out_shape=out_shape, out_quant=out_q or q)
    return build


def _softmax(shape, scale, zp, beta=1.0):
    def build(b: GraphBuilder) -> str:
        x = b.input("x", shape, scale, zp)
        return b.node("softmax", [x], {"beta": beta})
    return build


def _unary(op, shape, in_q, out_q, attrs=None):
    def build(b: GraphBuilder) -> str:
        x = b.input("x", shape, *in_q)
        return b.node(op, [x], attrs or {}, out_quant=out_q)
    return build


def _multi_op(b: GraphBuilder) -> str:
    """conv -> depthwise -> add (residual) -> global avgpool -> fully connected -> softmax."""
    x = b.input("image", (1, 8, 8, 3), 1 / 128, 0)
    w1 = b.weights("conv_w", (8, 3, 3, 3), 0)
    c1 = b.node("conv2d", [x, w1, b.bias("conv_b", x, w1, 8, 500)],
                {"strides": (1, 1), "dilations": (1, 1), "pads": (1, 1, 1, 1),
                 "act_min": 0.0, "act_max": None}, name="conv")
    w2 = b.weights("dw_w", (1, 3, 3, 8), 3, b.rng.uniform(0.05, 0.2, 8))
    d1 = b.node("depthwise_conv2d", [c1, w2, b.bias("dw_b", c1, w2, 8, 200)],
                {"strides": (1, 1), "dilations": (1, 1), "pads": (1, 1, 1, 1),
                 "depth_multiplier": 1, "act_min": 0.0, "act_max": 6.0}, name="dw")
    s1 = b.node("add", [c1, d1], {"act_min": None, "act_max": None}, name="residual")
    sq = b.tensors[s1].quant
    p1 = b.node("avg_pool2d", [s1], {"kernel": (8, 8), "strides": (8, 8),
                                     "pads": (0, 0, 0, 0)},
                out_quant=(float(sq.scale), int(sq.zero_point)), name="pool")
    w3 = b.weights("fc_w", (5, 8), 0, b.rng.uniform(0.01, 0.05, 5))
    f1 = b.node("fully_connected", [p1, w3, b.bias("fc_b", p1, w3, 5, 100)], {},
                out_shape=(1, 5), name="fc")
    return b.node("softmax", [f1], {"beta": 1.0}, name="softmax")


def _pad_op(shape, paddings, value=0.0, q=(0.05, 7)):
    def build(b: GraphBuilder) -> str:
        x = b.input("x", shape, *q)
        return b.node("pad", [x], {"paddings": paddings, "value": value}, out_quant=q)
    return build


def _transpose(shape, perm, q=(0.04, -9)):
    def build(b: GraphBuilder) -> str:
        x = b.input("x", shape, *q)
        return b.node("transpose", [x], {"perm": perm}, out_quant=q)
    return build


def _mix(b: GraphBuilder, x: str, q_in, q_out, name: str) -> str:
    """A 1x1 conv of x (channels mixed, same shape) quantized with q_out."""
    c = b.tensors[x].shape[-1]
    w = b.weights(f"{name}_w", (c, 1, 1, c), 0,
                  b.rng.uniform(0.5, 1.5, c) * 3 * q_out[0] / q_in[0] / c)
    return b.node("conv2d", [x, w], {}, out_quant=q_out, name=name)


def _concat(shape, axis, branch_q, in_q=(0.05, 3), out_q=None, x_first=True):
    """x and 1x1 "mix" branches of it (each with its own quant) joined along axis."""
    def build(b: GraphBuilder) -> str:
        x = b.input("x", shape, *in_q)
        parts = [_mix(b, x, in_q, q, f"mix{k}") for k, q in enumerate(branch_q)]
        parts = [x] + parts if x_first else parts + [x]
        return b.node("concat", parts, {"axis": axis}, out_quant=out_q, name="concat")
    return build


def _concat_fc(b: GraphBuilder) -> str:
    """2-D: x [3, 8] and a fully connected [3, 5] of it, joined on the last axis (-1)."""
    x = b.input("x", (3, 8), 0.06, -20)
    w = b.weights("fc_w", (5, 8), 0)
    f = b.node("fully_connected", [x, w], {}, out_shape=(3, 5), out_quant=(0.11, 4),
               name="fc")
    return b.node("concat", [f, x], {"axis": -1}, name="concat")


def _concat_sizes_differ(b: GraphBuilder) -> str:
    """Along H, inputs of 6, 2 and 3 rows (slices of a mix branch), three quants."""
    x = b.input("x", (1, 6, 4, 3), 0.05, -3)
    m = _mix(b, x, (0.05, -3), (0.08, 11), "mix")
    top = b.node("strided_slice", [m], {"begin": (0, 0, 0, 0), "end": (1, 2, 4, 3),
                                        "strides": (1, 1, 1, 1)},
                 out_quant=(0.08, 11), name="top")
    m2 = _mix(b, x, (0.05, -3), (0.03, -40), "mix2")
    low = b.node("strided_slice", [m2], {"begin": (0, 3, 0, 0), "end": (1, 6, 4, 3),
                                         "strides": (1, 1, 1, 1)},
                 out_quant=(0.03, -40), name="low")
    return b.node("concat", [x, top, low], {"axis": 1}, name="concat")


def _resize(shape, size, align=False, half=False, q=(0.07, -2)):
    def build(b: GraphBuilder) -> str:
        x = b.input("x", shape, *q)
        return b.node("resize_nearest", [x], {"size": size, "align_corners": align,
                                              "half_pixel_centers": half},
                      out_shape=(shape[0], size[0], size[1], shape[3]), out_quant=q)
    return build


def _slice(shape, begin, end, strides, begin_mask=0, end_mask=0, shrink=0, offset=False,
           q=(0.03, 12)):
    def build(b: GraphBuilder) -> str:
        x = b.input("x", shape, *q)
        attrs = {"begin": begin, "end": end, "strides": strides, "begin_mask": begin_mask,
                 "end_mask": end_mask, "shrink_axis_mask": shrink}
        if offset:
            attrs["offset"] = True
        return b.node("strided_slice", [x], attrs, out_quant=q)
    return build


def _operand(b: GraphBuilder, x: str, kind: str, q, name: str) -> str:
    """A second operand derived from x (the generated API has one input), of a shape that
    broadcasts against x [N, H, W, C]: "same" (a 1x1 conv of x: channels mixed, so not an
    element-wise function of x), "channel" [N, 1, 1, C] (mean over H, W), "row" [N, H, 1, 1]
    (1-channel conv, max over W), "col_c" [N, 1, W, C] (max over H), "scalar" [N, 1, 1, 1]
    (1-channel conv, mean), "vector" [1, C] (fully connected from the whole of x)."""
    n, h, w, c = b.tensors[x].shape
    xq = b.tensors[x].quant
    xq = (float(xq.scale), int(xq.zero_point))
    if kind == "same":
        return _mix(b, x, xq, q, name)
    if kind == "channel":
        m = _mix(b, x, xq, q, f"{name}_mix")
        return b.node("mean", [m], {"axes": (1, 2), "keepdims": True},
                      out_shape=(n, 1, 1, c), out_quant=q, name=name)
    if kind == "col_c":
        m = _mix(b, x, xq, q, f"{name}_mix")
        return b.node("max_pool2d", [m], {"kernel": (h, 1), "strides": (h, 1),
                                          "pads": (0, 0, 0, 0)}, out_quant=q, name=name)
    if kind in ("row", "scalar"):
        w1 = b.weights(f"{name}_w", (1, 1, 1, c), 0,
                       b.rng.uniform(0.5, 1.5, 1) * 3 * q[0] / xq[0] / c)
        m = b.node("conv2d", [x, w1], {}, out_quant=q, name=f"{name}_mix")
        if kind == "row":
            return b.node("max_pool2d", [m], {"kernel": (1, w), "strides": (1, w),
                                              "pads": (0, 0, 0, 0)}, out_quant=q, name=name)
        return b.node("mean", [m], {"axes": (1, 2), "keepdims": True},
                      out_shape=(n, 1, 1, 1), out_quant=q, name=name)
    if kind == "vector":
        wv = b.weights(f"{name}_w", (c, h * w * c), 0,
                       b.rng.uniform(0.5, 1.5, c) * 3 * q[0] / xq[0] / (h * w * c))
        return b.node("fully_connected", [x, wv], {}, out_shape=(1, c), out_quant=q,
                      name=name)
    raise ValueError(kind)


def _binary(op, shape, kind, qa, qb, act=(None, None), out_q=None, swap=False, kind_a=None):
    """op(a, b) with a = the input (or a "col"-shaped view of it: kind_a) and b derived from
    it by _operand(kind); swap puts the broadcast operand first."""
    def build(b: GraphBuilder) -> str:
        x = b.input("x", shape, *qa)
        a = x
        if kind_a == "row_c":  # [N, H, 1, C]: max over W
            a = b.node("max_pool2d", [x], {"kernel": (1, shape[2]), "strides": (1, shape[2]),
                                           "pads": (0, 0, 0, 0)}, out_quant=qa, name="rows")
        other = _operand(b, x, kind, qb, "other")
        ins = [other, a] if swap else [a, other]
        return b.node(op, ins, {"act_min": act[0], "act_max": act[1]}, out_quant=out_q,
                      name=op)
    return build


# --- transformer ops (tests/test_ops_transformer.py runs just these: tag "transformer") ------

def _swap_last(b: GraphBuilder, x: str, q, name: str) -> str:
    r = len(b.tensors[x].shape)
    return b.node("transpose", [x], {"perm": tuple(range(r - 2)) + (r - 1, r - 2)},
                  out_quant=q, name=name)


def _bmm(shape, adj_x=False, adj_y=False, qa=(0.05, 3), qb=(0.02, -40), out_q=None,
         broadcast=False):
    """x [..., M, K] times x^T, the second operand a requantized copy of x (another scale
    and zero point; the generated API has one input), laid out for adj_x / adj_y; with
    broadcast, the second operand keeps only the first index of the third-to-last axis."""
    def build(b: GraphBuilder) -> str:
        x = b.input("x", shape, *qa)
        other = b.node("requantize", [x], {}, out_quant=qb, name="other")
        if broadcast:
            r = len(shape)
            end = list(shape)
            end[-3] = 1
            other = b.node("strided_slice", [other], {"begin": (0,) * r, "end": tuple(end),
                                                      "strides": (1,) * r},
                           out_quant=qb, name="one_head")
        lhs = _swap_last(b, x, qa, "lhs_t") if adj_x else x
        rhs = other if adj_y else _swap_last(b, other, qb, "rhs_t")
        return b.node("batch_matmul", [lhs, rhs], {"adj_x": adj_x, "adj_y": adj_y},
                      out_quant=out_q, name="bmm")
    return build


def _attention_scores(b: GraphBuilder, tokens: int = 9, probs: str = "int8") -> str:
    """softmax(q @ k^T * scale) @ v on [1, heads=2, tokens, d=8]: q, k, v slices of one
    requantized [1, 2, tokens, 24] input, the scale a constant MUL operand; probabilities
    int8, or int16 (softmax int8 -> int16, P x V as edgec_batch_matmul_s16_s8)."""
    x = b.input("qkv", (1, 2, tokens, 24), 0.04, -5)
    parts = []
    for i, (name, q) in enumerate((("q", (0.05, 2)), ("k", (0.045, -7)), ("v", (0.03, 10)))):
        rq = b.node("requantize", [x], {}, out_quant=q, name=f"{name}_rq")
        parts.append(b.node("strided_slice", [rq], {"begin": (0, 0, 0, 8 * i),
                                                    "end": (1, 2, tokens, 8 * i + 8),
                                                    "strides": (1, 1, 1, 1)},
                            out_quant=q, name=name))
    q, k, v = parts
    scores = b.node("batch_matmul", [q, k], {"adj_x": False, "adj_y": True}, name="qk")
    scale = _const_operand(b, "scale", np.full((), 8 ** -0.5))
    scaled = b.node("mul", [scores, scale], {"act_min": None, "act_max": None}, name="scale")
    p = b.node("softmax", [scaled], {"beta": 1.0}, name="softmax", out_dtype=probs)
    return b.node("batch_matmul", [p, v], {"adj_x": False, "adj_y": False}, name="pv")


def _attention_probs_s16(b: GraphBuilder) -> str:
    return _attention_scores(b, tokens=40, probs="int16")


def _const_operand(b: GraphBuilder, name: str, values: np.ndarray) -> str:
    """A constant int8 operand quantized as TFLite's converter does: per tensor, over its
    own range (which includes 0)."""
    values = np.asarray(values, np.float64)
    qp = calibrate(values)
    q = np.clip(np.round(values / float(qp.scale)) + int(qp.zero_point), -128, 127)
    b.tensors[name] = Tensor(name, tuple(values.shape), "int8",
                             data=np.asarray(q, np.int8).reshape(values.shape), quant=qp)
    return name


def _binary_const(op, shape, const_shape, qa=(0.05, -3), out_q=None, swap=False,
                  act=(None, None), low=-1.0, high=1.0):
    """op(x, c) with c a constant of const_shape (uniform in [low, high]), or op(c, x)."""
    def build(b: GraphBuilder) -> str:
        x = b.input("x", shape, *qa)
        c = _const_operand(b, "c", b.rng.uniform(low, high, const_shape))
        ins = [c, x] if swap else [x, c]
        return b.node(op, ins, {"act_min": act[0], "act_max": act[1]}, out_quant=out_q,
                      name=op)
    return build


def _layer_norm(shape, in_q=(0.05, -3), out_q=None, eps=1e-5, gamma=(0.5, 1.5),
                beta=(-0.5, 0.5)):
    def build(b: GraphBuilder) -> str:
        c = shape[-1]
        x = b.input("x", shape, *in_q)
        for name, (lo, hi) in (("gamma", gamma), ("beta", beta)):
            data = b.rng.uniform(lo, hi, c).astype(np.float32)
            b.tensors[name] = Tensor(name, (c,), "float32", data=data)
        return b.node("layer_norm", [x, "gamma", "beta"], {"epsilon": eps}, out_quant=out_q,
                      name="layer_norm")
    return build


def _class_token(b: GraphBuilder) -> str:
    """A ViT's [cls] + patch tokens: a constant [1, 1, 16] (quantized with the concat's
    params, materialized by a `constant` node) joined to the [1, 6, 16] input on axis 1."""
    q = (0.04, 7)
    x = b.input("tokens", (1, 6, 16), *q)
    values = b.rng.uniform(-2.0, 2.0, (1, 1, 16))
    data = np.clip(np.round(values / q[0]) + q[1], -128, 127).astype(np.int8)
    b.tensors["cls_value"] = Tensor("cls_value", (1, 1, 16), "int8", data=data,
                                    quant=QuantParams.per_tensor(*q))
    cls = b.node("constant", ["cls_value"], {}, out_quant=q, name="cls")
    return b.node("concat", [cls, x], {"axis": 1}, out_quant=q, name="concat")


TRANSFORMER_CASES: list[Case] = [
    # batch_matmul: adj_x / adj_y, ranks 2..4, broadcast batch, ties, multiplier > 1
    Case("bmm_4d", _bmm((1, 2, 5, 8)), 301, ("transformer",)),
    Case("bmm_4d_adj_y", _bmm((1, 2, 5, 8), adj_y=True), 302, ("transformer",)),
    Case("bmm_3d_adj_x", _bmm((3, 6, 4), adj_x=True), 303, ("transformer",)),
    Case("bmm_3d_adj_x_adj_y", _bmm((3, 6, 4), adj_x=True, adj_y=True), 304,
         ("transformer",)),
    Case("bmm_2d", _bmm((7, 9), qa=(0.1, -128), qb=(0.07, 127)), 305, ("transformer",)),
    Case("bmm_bcast_batch", _bmm((2, 3, 4, 7), broadcast=True), 306, ("transformer",)),
    Case("bmm_bcast_batch_adj_y", _bmm((1, 3, 4, 7), adj_y=True, broadcast=True), 307,
         ("transformer",)),
    Case("bmm_exact_ties_pow2", _bmm((1, 2, 5, 8), adj_y=True, qa=(0.5, 0), qb=(0.25, 0),
                                     out_q=(4.0, 0)), 308, ("transformer",)),
    Case("bmm_multiplier_gt1", _bmm((1, 2, 5, 8), adj_y=True, qa=(0.1, -128), qb=(0.1, 127),
                                    out_q=(0.001, 5)), 309, ("transformer",)),
    # gelu (TFLite's table, exact and tanh forms)
    Case("gelu_exact", _unary("gelu", (1, 17, 64), (0.05, -10), (0.03, -100),
                              {"approximate": False}), 311, ("transformer",)),
    Case("gelu_approximate", _unary("gelu", (1, 17, 64), (0.05, -10), (0.03, -100),
                                    {"approximate": True}), 312, ("transformer",)),
    Case("gelu_wide_input", _unary("gelu", (1, 300), (0.2, 30), (0.1, -60),
                                   {"approximate": False}), 313, ("transformer",)),
    # layer_norm (edgec's integer algorithm: golden and float only, no TFLite op)
    Case("layer_norm_17x32", _layer_norm((1, 17, 32)), 321, ("transformer",)),
    Case("layer_norm_wide_c", _layer_norm((1, 4, 384), in_q=(0.2, 40), out_q=(0.03, 0)), 322,
         ("transformer",)),
    Case("layer_norm_eps_large", _layer_norm((2, 5, 16), in_q=(0.001, 0), eps=1e-3), 323,
         ("transformer",)),
    Case("layer_norm_tiny_c_neg_gamma", _layer_norm((1, 9, 3), gamma=(-2.0, 2.0),
                                                    beta=(-3.0, 3.0)), 324, ("transformer",)),
    Case("layer_norm_2d", _layer_norm((6, 48), in_q=(0.5, -128), eps=1e-6), 325,
         ("transformer",)),
    # eps / s_in^2 so large that the variance is scaled down (variance_shift < 0)
    Case("layer_norm_eps_dominates", _layer_norm((1, 3, 16), in_q=(1e-5, 0), eps=1e-3,
                                                 out_q=(0.01, 0)), 326, ("transformer",)),
    # mul / add with a constant operand (TFLite: an int8 constant input)
    Case("mul_const_scalar", _binary_const("mul", (1, 2, 9, 9), (), low=0.25, high=0.25),
         331, ("transformer",)),
    Case("mul_const_scalar_first_neg", _binary_const("mul", (1, 17, 8), (1,), swap=True,
                                                     low=-0.7, high=-0.7), 332,
         ("transformer",)),
    Case("mul_const_vector_relu", _binary_const("mul", (1, 5, 12), (12,), act=(0.0, None)),
         333, ("transformer",)),
    Case("add_const_pos_embedding", _binary_const("add", (1, 17, 16), (1, 17, 16),
                                                  low=-0.2, high=0.3), 334, ("transformer",)),
    Case("add_const_vector_first", _binary_const("add", (1, 4, 4, 6), (6,), swap=True,
                                                 qa=(0.1, 20)), 335, ("transformer",)),
    Case("add_const_scalar", _binary_const("add", (1, 30), (), low=1.0, high=1.0), 336,
         ("transformer",)),
    # the rest of attention: softmax over [1, heads, N, N], FC on tokens, a class token
    Case("softmax_heads_4d", _softmax((1, 2, 17, 17), 0.08, 10), 341, ("transformer",)),
    Case("fc_tokens_3d", _fc((1, 17, 32), 24, out_shape=(1, 17, 24)), 342, ("transformer",)),
    Case("concat_class_token", _class_token, 343, ("transformer",)),
    Case("attention_core", _attention_scores, 344, ("transformer", "multi")),
    # int16 probabilities (the precision search's choice for long sequences): softmax
    # int8 -> int16 (TFLite's), then edgec's own int16 x int8 batch_matmul
    Case("attention_core_probs_s16", _attention_probs_s16, 345, ("transformer", "multi")),
]

CASES: list[Case] = [
    # conv2d
    Case("conv_1x1", _conv((1, 6, 6, 8), 5, (1, 1)), 1),
    Case("conv_3x3_pad1_relu_c3_c7", _conv((1, 8, 8, 3), 7, (3, 3), pads=(1, 1, 1, 1),
                                           act=(0.0, None)), 2),
    Case("conv_3x3_s2_asym_pads", _conv((1, 9, 9, 5), 4, (3, 3), strides=(2, 2),
                                        pads=(0, 1, 1, 0)), 3),
    Case("conv_3x3_s2_same_pads_0011", _conv((1, 8, 8, 5), 6, (3, 3), strides=(2, 2),
                                             pads=(0, 0, 1, 1), act=(0.0, 6.0)), 8),
    Case("conv_5x5_pad2_relu6", _conv((1, 7, 7, 3), 5, (5, 5), pads=(2, 2, 2, 2),
                                      act=(0.0, 6.0)), 4),
    Case("conv_3x3_dil2", _conv((1, 9, 9, 4), 6, (3, 3), dilations=(2, 2),
                                pads=(2, 2, 2, 2)), 5),
    Case("conv_1x3_stride_1x2_nobias_batch2", _conv((2, 5, 7, 3), 3, (1, 3), strides=(1, 2),
                                                    with_bias=False), 6),
    # per-channel multipliers > 1 (positive shifts, saturating), tiny, and flushed to zero
    Case("conv_shifts_both_signs", _conv((1, 5, 5, 4), 6, (3, 3), pads=(1, 1, 1, 1),
                                         in_q=(0.5, -1),
                                         w_scales=np.array([4.0, 0.5, 1e-3, 1e-7, 1e-12, 0.05]),
                                         out_q=(0.02, 10)), 7),
    # power-of-two scales: many exact rounding ties (double rounding, as TFLite's conv)
    Case("conv_exact_ties_pow2_scales", _conv((1, 5, 5, 2), 4, (3, 3), pads=(1, 1, 1, 1),
                                              in_q=(0.5, 0), w_scales=np.full(4, 2.0 ** -6),
                                              out_q=(0.25, 0)), 9),
    # depthwise_conv2d
    Case("dw_3x3_m1_pad1_relu6_c5", _dw((1, 8, 8, 5), 1, (3, 3), pads=(1, 1, 1, 1),
                                        act=(0.0, 6.0)), 11),
    Case("dw_3x3_m2_s2", _dw((1, 9, 9, 3), 2, (3, 3), strides=(2, 2), pads=(1, 1, 1, 1)), 12),
    Case("dw_5x5_dil2_nobias", _dw((1, 10, 10, 4), 1, (5, 5), dilations=(2, 2),
                                   pads=(4, 4, 4, 4), with_bias=False), 13),
    Case("dw_3x3_asym_pads_m3", _dw((1, 6, 7, 2), 3, (3, 3), strides=(2, 1),
                                    pads=(1, 0, 0, 2)), 14),
    Case("dw_3x3_s2_same_pads_0011", _dw((1, 8, 10, 7), 1, (3, 3), strides=(2, 2),
                                         pads=(0, 0, 1, 1), act=(-1.0, 1.0)), 16),
    Case("dw_shifts_both_signs", _dw((1, 5, 5, 3), 2, (3, 3), pads=(1, 1, 1, 1),
                                     in_q=(0.25, 4),
                                     w_scales=np.array([2.0, 1e-4, 0.3, 1e-9, 0.01, 8.0]),
                                     out_q=(0.05, -3)), 15),
    # fully_connected
    Case("fc_bias", _fc((1, 20), 7), 21),
    Case("fc_nobias_rows3", _fc((3, 13), 5, with_bias=False), 22),
    Case("fc_from_4d_relu", _fc((1, 2, 2, 6), 10, act=(0.0, None), out_shape=(1, 10),
                                        c_in=24), 23),
    Case("fc_per_tensor_weights", _fc((2, 9), 4, per_tensor=True), 24),
    Case("fc_shifts_both_signs", _fc((1, 16), 4, in_q=(1.0, 0),
                                     w_scales=np.array([3.0, 1e-6, 0.02, 1e-11]),
                                     out_q=(0.5, 0)), 25),
    # ties: LiteRT's FC rounds once, half away from zero
    Case("fc_exact_ties_pow2_scales", _fc((4, 2), 6, with_bias=False, in_q=(0.5, 0),
                                          w_scales=np.full(6, 0.125), out_q=(4.0, 0)), 26),
    # add
    Case("add_different_scales", _add((1, 4, 4, 7), (0.05, -3), (0.13, 17)), 31),
    Case("add_fused_relu", _add((1, 3, 5, 6), (0.2, 40), (0.02, -100), act=(0.0, None)), 32),
    Case("add_relu6_fixed_out", _add((2, 3, 3, 5), (0.1, 0), (0.1, 0), act=(0.0, 6.0),
                                     out_q=(6 / 255, -128)), 33),
    # pooling
    Case("maxpool_2x2_s2", _pool("max_pool2d", (1, 8, 8, 5), (2, 2), (2, 2)), 41),
    Case("maxpool_3x3_s2_pad1_relu", _pool("max_pool2d", (1, 9, 9, 3), (3, 3), (2, 2),
                                           (1, 1, 1, 1), act=(0.0, None)), 42),
    Case("avgpool_3x3_s1_pad1_c7", _pool("avg_pool2d", (1, 6, 6, 7), (3, 3), (1, 1),
                                         (1, 1, 1, 1)), 43),
    Case("avgpool_2x2_s2_asym_pad", _pool("avg_pool2d", (2, 7, 7, 4), (2, 2), (2, 2),
                                          (0, 0, 1, 1), q=(0.1, -60)), 44),
    Case("mean_keepdims", _mean((1, 5, 5, 9), True), 45),
    Case("mean_no_keepdims", _mean((2, 3, 4, 6), False), 46),
    Case("mean_requantizing_7x7", _mean((1, 7, 7, 5), True, (0.05, 20), (0.011, -4)), 47),
    # softmax
    Case("softmax_scale_0p1", _softmax((1, 10), 0.1, 5), 51),
    Case("softmax_scale_1_rows2", _softmax((2, 7), 1.0, -3), 52),
    Case("softmax_scale_0p01_4d", _softmax((1, 1, 3, 12), 0.01, 0), 53),
    Case("softmax_beta_0p5", _softmax((1, 9), 0.3, 20, beta=0.5), 54),
    Case("softmax_scale_0p0625", _softmax((3, 5), 1 / 16, -128), 55),
    # relu / clip / requantize with changed scales
    Case("relu_changed_scale", _unary("relu", (1, 4, 4, 5), (0.05, -10), (0.03, -128)), 61),
    Case("clip_m1_2", _unary("clip", (1, 3, 3, 7), (0.02, 9), (0.015, 0),
                             {"act_min": -1.0, "act_max": 2.0}), 62),
    Case("relu6_clip_upscale", _unary("clip", (2, 30), (0.1, 0), (0.01, -128),
                                      {"act_min": 0.0, "act_max": 6.0}), 63),
    Case("requantize_gt1", _unary("requantize", (1, 40), (0.2, 3), (0.07, -5)), 64),
    # mul (broadcasting, fused activations, multipliers above and below 1)
    Case("mul_same_shape", _binary("mul", (1, 4, 4, 8), "same", (0.05, -3), (0.1, 12)), 201),
    Case("mul_channel_bcast_relu", _binary("mul", (1, 4, 4, 8), "channel", (0.04, 5),
                                           (0.02, -30), act=(0.0, None)), 202),
    Case("mul_channel_bcast_first", _binary("mul", (2, 3, 3, 5), "channel", (0.06, -100),
                                            (0.03, 60), swap=True), 203),
    Case("mul_scalar_bcast", _binary("mul", (1, 5, 3, 4), "scalar", (0.05, 0), (0.02, 7)), 204),
    Case("mul_vector_2d_bcast", _binary("mul", (1, 3, 2, 6), "vector", (0.08, 4), (0.05, -2)),
         205),
    Case("mul_multiplier_gt1", _binary("mul", (1, 4, 4, 8), "channel", (0.1, 0), (0.2, -10),
                                       out_q=(0.004, 3)), 206),
    Case("mul_multiplier_tiny_relu6", _binary("mul", (1, 4, 4, 8), "same", (0.05, -50),
                                              (0.04, 20), act=(0.0, 6.0),
                                              out_q=(6 / 255, -128)), 207),
    Case("mul_both_bcast", _binary("mul", (1, 4, 3, 5), "col_c", (0.05, 9), (0.07, -4),
                                   kind_a="row_c"), 208),
    Case("mul_relu_n1_1", _binary("mul", (1, 2, 3, 16), "row", (0.1, 1), (0.1, -1),
                                  act=(-1.0, 1.0)), 209),
    # add with broadcasting
    Case("add_channel_bcast", _binary("add", (1, 4, 4, 8), "channel", (0.05, -3), (0.13, 17)),
         211),
    Case("add_row_bcast", _binary("add", (1, 4, 4, 8), "row", (0.2, 40), (0.02, -100),
                                  act=(0.0, None)), 212),
    Case("add_scalar_bcast_first", _binary("add", (1, 3, 5, 6), "scalar", (0.03, 0),
                                           (0.09, 5), swap=True), 213),
    Case("add_vector_2d_bcast", _binary("add", (1, 2, 2, 9), "vector", (0.1, -20), (0.1, 3),
                                        act=(0.0, 6.0)), 214),
    Case("add_both_bcast_batch2", _binary("add", (2, 3, 4, 5), "col_c", (0.05, 2), (0.3, 0),
                                          kind_a="row_c"), 215),
    # logistic / tanh (a 256-entry table, as TFLite), every input code exercised
    Case("logistic_scale_0p05", _unary("logistic", (1, 8, 8, 4), (0.05, -10),
                                       (1 / 256, -128)), 221),
    Case("logistic_scale_0p3_zp_high", _unary("logistic", (2, 130), (0.3, 100),
                                              (1 / 256, -128)), 222),
    Case("logistic_scale_0p0078", _unary("logistic", (1, 16, 16), (1 / 128, 0),
                                         (1 / 256, -128)), 223),
    Case("tanh_scale_0p02", _unary("tanh", (1, 8, 8, 4), (0.02, 3), (1 / 128, 0)), 224),
    Case("tanh_scale_0p1_zp_neg", _unary("tanh", (1, 300), (0.1, -128), (1 / 128, 0)), 225),
    Case("tanh_other_output_quant", _unary("tanh", (1, 8, 8, 4), (0.015, 7), (0.009, -20)),
         226),
    # hard_swish (16-bit fixed point, TFLite's reference)
    Case("hard_swish_typical", _unary("hard_swish", (1, 8, 8, 4), (0.05, -10), (0.03, -90)),
         231),
    Case("hard_swish_wide_input", _unary("hard_swish", (1, 300), (0.2, 30), (0.1, -60)), 232),
    Case("hard_swish_tiny_input_scale", _unary("hard_swish", (1, 8, 8, 4), (0.002, 0),
                                               (0.001, -100)), 233),
    Case("hard_swish_out_coarse", _unary("hard_swish", (2, 10, 13), (0.03, 50), (0.5, 0)),
         234),
    # leaky_relu (two multipliers)
    Case("leaky_relu_0p1", _unary("leaky_relu", (1, 8, 8, 4), (0.05, 10), (0.04, -20),
                                  {"alpha": 0.1}), 241),
    Case("leaky_relu_0p2_upscale", _unary("leaky_relu", (1, 300), (0.1, -5), (0.02, -100),
                                          {"alpha": 0.2}), 242),
    Case("leaky_relu_alpha_gt1", _unary("leaky_relu", (1, 4, 4, 16), (0.02, 0), (0.05, 30),
                                        {"alpha": 1.5}), 243),
    Case("leaky_relu_alpha_negative", _unary("leaky_relu", (1, 256), (0.03, 20), (0.03, -60),
                                             {"alpha": -0.3}), 244),
    # pad (PAD: the zero point; PADV2: a constant)
    Case("pad_hw_asym", _pad_op((1, 5, 6, 3), ((0, 0), (1, 2), (0, 3), (0, 0))), 101),
    Case("pad_all_axes_batch2", _pad_op((2, 3, 4, 5), ((1, 0), (0, 2), (1, 1), (2, 1)),
                                     q=(0.1, -128)), 102),
    Case("padv2_value", _pad_op((1, 4, 4, 2), ((0, 0), (2, 1), (1, 2), (0, 0)), value=-1.3), 103),
    Case("pad_2d", _pad_op((3, 7), ((1, 2), (3, 0)), q=(0.02, 127)), 104),
    Case("pad_channels_only", _pad_op((1, 3, 3, 4), ((0, 0), (0, 0), (0, 0), (2, 3))), 105),
    # transpose
    Case("transpose_nhwc_to_nchw", _transpose((1, 4, 5, 6), (0, 3, 1, 2)), 111),
    Case("transpose_swap_hw", _transpose((1, 3, 7, 4), (0, 2, 1, 3)), 112),
    Case("transpose_reverse_batch2", _transpose((2, 3, 4, 5), (3, 2, 1, 0)), 113),
    Case("transpose_3d", _transpose((4, 5, 6), (2, 0, 1)), 114),
    Case("transpose_2d", _transpose((7, 9), (1, 0)), 115),
    Case("transpose_5d_foldable", _transpose((2, 3, 4, 5, 2), (0, 1, 4, 3, 2)), 116),
    Case("transpose_4d_batch3", _transpose((3, 2, 5, 4), (1, 3, 0, 2)), 117),
    # concat, inputs at different quants are requantized (LiteRT: QUANTIZE + CONCATENATION)
    Case("concat_c_3inputs_scales", _concat((1, 4, 5, 3), 3, [(0.12, -7), (0.02, 30)]), 121),
    Case("concat_h_2inputs", _concat((1, 3, 4, 5), 1, [(0.09, 0)], x_first=False), 122),
    Case("concat_w_3inputs", _concat((1, 4, 2, 3), 2, [(0.3, 100), (0.05, -3)],
                                     in_q=(0.05, -3)), 123),
    Case("concat_n_2inputs", _concat((2, 3, 3, 4), 0, [(0.07, -60)]), 124),
    Case("concat_neg_axis_same_quant", _concat((1, 3, 3, 4), -1, [(0.05, 3)],
                                               out_q=(0.05, 3)), 125),
    Case("concat_same_scale_other_zp", _concat((1, 2, 3, 4), 3, [(0.05, -50)],
                                               out_q=(0.05, 20)), 126),
    Case("concat_2d_fc", _concat_fc, 127),
    Case("concat_h_sizes_differ", _concat_sizes_differ, 128),
    # resize nearest neighbour, both TFLite flags
    Case("resize_x2", _resize((1, 4, 5, 3), (8, 10)), 131),
    Case("resize_x2_align", _resize((1, 4, 5, 3), (8, 10), align=True), 132),
    Case("resize_x2_half_pixel", _resize((1, 4, 5, 3), (8, 10), half=True), 133),
    Case("resize_5x7_to_8x11", _resize((1, 5, 7, 2), (8, 11)), 134),
    Case("resize_5x7_to_8x11_align", _resize((1, 5, 7, 2), (8, 11), align=True), 135),
    Case("resize_5x7_to_8x11_half_pixel", _resize((2, 5, 7, 2), (8, 11), half=True), 136),
    Case("resize_down_9x9_to_4x6", _resize((1, 9, 9, 2), (4, 6)), 137),
    Case("resize_down_9x9_to_4x6_half_pixel", _resize((1, 9, 9, 2), (4, 6), half=True), 138),
    Case("resize_down_9x9_to_4x6_align", _resize((1, 9, 9, 2), (4, 6), align=True), 139),
    Case("resize_1x1_to_3x2_align", _resize((1, 1, 1, 5), (3, 2), align=True), 140),
    # strided slice
    Case("slice_strides", _slice((1, 8, 9, 6), (0, 1, 2, 0), (1, 7, 9, 6), (1, 2, 3, 1)), 141),
    Case("slice_masks", _slice((2, 6, 5, 4), (1, 2, 1, 3), (0, 5, 0, 0), (1, 1, 2, 1),
                               begin_mask=0b0101, end_mask=0b1101), 142),
    Case("slice_negative_strides", _slice((1, 6, 7, 3), (0, -1, 5, 2), (1, 0, 0, 0),
                                          (1, -2, -1, -1), end_mask=0b1000), 143),
    Case("slice_shrink", _slice((1, 5, 6, 4), (0, 2, 1, 0), (1, 3, 5, 4), (1, 1, 1, 1),
                                shrink=0b0011), 144),
    Case("slice_negative_indices", _slice((1, 7, 7, 5), (0, -5, -6, -4), (1, -1, 7, -1),
                                          (1, 1, 2, 1)), 145),
    Case("slice_2d", _slice((6, 10), (1, 2), (5, 9), (2, 3)), 146),
    Case("slice_channels_last_shrink", _slice((1, 4, 4, 6), (0, 0, 0, -1), (1, 4, 4, 0),
                                              (1, 1, 1, 1), shrink=0b1000), 147),
    Case("slice_out_of_range_clamped", _slice((1, 5, 5, 3), (0, -100, 2, 0),
                                              (1, 100, 100, 2), (1, 2, 1, 1)), 148),
    # fully connected keeping the input's leading dims
    Case("fc_keep_num_dims", _fc((1, 3, 5, 8), 4, out_shape=(1, 3, 5, 4)), 151),
    # chain
    Case("multi_conv_dw_add_pool_fc_softmax", _multi_op, 71, tags=("multi",)),
    *TRANSFORMER_CASES,
]

CASES_BY_ID = {c.id: c for c in CASES}


# ---------------------------------------------------------------------------------------
# Building a case
# ---------------------------------------------------------------------------------------

def build_graph(case: Case) -> Graph:
    b = GraphBuilder(np.random.default_rng(case.seed))
    out = case.build(b)
    return b.graph(out)


def trivial_plan(program: Program) -> Plan:
    """Every activation tensor in its own 16-byte aligned slot, in order of definition."""
    graph = program.graph
    names = list(graph.inputs)
    for call in program.calls:
        names += [t for t in call.outputs if t not in names]
    offsets, timeline, end = {}, [], 0
    last = len(program.calls) - 1
    for name in names:
        nbytes = graph.tensors[name].nbytes
        offsets[name] = end
        first = 0 if name in graph.inputs else next(
            i for i, c in enumerate(program.calls) if name in c.outputs)
        users = [i for i, c in enumerate(program.calls) if name in c.inputs]
        final = last if name in graph.outputs else max(users, default=first)
        timeline.append({"name": name, "first": first, "last": final, "offset": end,
                         "bytes": nbytes})
        end += (nbytes + ALIGN - 1) // ALIGN * ALIGN
    return Plan(offsets=offsets, scratch_offsets={}, arena_bytes=max(end, ALIGN),
                lower_bound_bytes=end, timeline=timeline)


def make_inputs(graph: Graph, seed: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(10_000 + seed)
    out = {}
    for name in graph.inputs:
        shape = tuple(graph.tensors[name].shape)
        samples = [rng.integers(-128, 128, size=shape) for _ in range(RANDOM_SAMPLES)]
        samples += [np.full(shape, -128), np.full(shape, 127)]
        out[name] = np.stack(samples).astype(np.int8)
    return out


def build_case(case: Case) -> tuple[Program, Plan, dict[str, np.ndarray]]:
    graph = build_graph(case)
    program = lower(graph)
    return program, trivial_plan(program), make_inputs(graph, case.seed)


# ---------------------------------------------------------------------------------------
# The same graphs as .tflite models (for LiteRT's reference kernels, the final judge)
# ---------------------------------------------------------------------------------------

def _tflite_padding(node: Node, graph: Graph, kernel: tuple[int, int]) -> int | None:
    """Padding.VALID / Padding.SAME if the node's explicit pads are TFLite's, else None."""
    from ai_edge_litert import schema_py_generated as tfl

    pads = tuple(node.attrs.get("pads") or (0, 0, 0, 0))
    strides = tuple(node.attrs.get("strides") or (1, 1))
    dil = tuple(node.attrs.get("dilations") or (1, 1))
    if pads == (0, 0, 0, 0):
        return tfl.Padding.VALID
    shape = graph.tensors[node.inputs[0]].shape
    same = []
    for size, k, s, d in zip(shape[1:3], kernel, strides, dil):
        out = -(-size // s)
        total = max((out - 1) * s + (k - 1) * d + 1 - size, 0)
        same.append((total // 2, total - total // 2))
    if pads == (same[0][0], same[1][0], same[0][1], same[1][1]):
        return tfl.Padding.SAME
    return None


def _tflite_activation(lo, hi) -> int | None:
    from ai_edge_litert import schema_py_generated as tfl

    return {(None, None): tfl.ActivationFunctionType.NONE,
            (0.0, None): tfl.ActivationFunctionType.RELU,
            (0.0, 6.0): tfl.ActivationFunctionType.RELU6,
            (-1.0, 1.0): tfl.ActivationFunctionType.RELU_N1_TO_1}.get(
        (None if lo is None else float(lo), None if hi is None else float(hi)))


def to_tflite(graph: Graph) -> bytes | None:
    """The quantized graph as a .tflite flatbuffer, or None if TFLite cannot express it
    (explicit pads that are neither SAME nor VALID, a clamp that is not a TFLite activation)."""
    import flatbuffers
    from ai_edge_litert import schema_py_generated as tfl

    BO, OP = tfl.BuiltinOperator, tfl.BuiltinOptions
    model = tfl.ModelT()
    model.version = 3
    model.buffers = [tfl.BufferT()]
    model.operatorCodes = []
    sub = tfl.SubGraphT()
    sub.tensors, sub.operators = [], []
    index: dict[str, int] = {}

    def add_tensor(t: Tensor) -> int:
        if t.name in index:
            return index[t.name]
        tt = tfl.TensorT()
        tt.name = t.name.encode()
        tt.shape = np.asarray(t.shape, np.int32)
        tt.type = {"int8": tfl.TensorType.INT8, "int32": tfl.TensorType.INT32,
                   "int16": tfl.TensorType.INT16, "int64": tfl.TensorType.INT64,
                   "float32": tfl.TensorType.FLOAT32}[t.dtype]
        tt.buffer = 0
        if t.is_const:
            buf = tfl.BufferT()
            buf.data = np.frombuffer(np.ascontiguousarray(t.data).tobytes(), np.uint8)
            model.buffers.append(buf)
            tt.buffer = len(model.buffers) - 1
        if t.quant is not None:
            q = tfl.QuantizationParametersT()
            q.scale = np.atleast_1d(np.asarray(t.quant.scale, np.float32))
            q.zeroPoint = np.atleast_1d(np.asarray(t.quant.zero_point, np.int64))
            q.quantizedDimension = int(t.quant.axis or 0)
            tt.quantization = q
        sub.tensors.append(tt)
        index[t.name] = len(sub.tensors) - 1
        return index[t.name]

    def const_i32(name: str, values) -> str:
        data = np.asarray(values, np.int32)
        t = Tensor(name, data.shape, "int32", data=data)
        graph.tensors.setdefault(name, t)
        return name

    def opcode(code: int) -> int:
        for i, oc in enumerate(model.operatorCodes):
            if oc.builtinCode == code:
                return i
        oc = tfl.OperatorCodeT()
        oc.builtinCode = code
        oc.deprecatedBuiltinCode = min(code, 127)
        oc.version = 1
        model.operatorCodes.append(oc)
        return len(model.operatorCodes) - 1

    graph = graph.copy()
    for node in graph.nodes:
        a = node.attrs
        act = _tflite_activation(a.get("act_min"), a.get("act_max"))
        if node.op == "constant":  # no op in TFLite: its output is a constant tensor
            src, out = graph.tensors[node.inputs[0]], graph.tensors[node.outputs[0]]
            graph.tensors[out.name] = Tensor(out.name, out.shape, src.dtype,
                                             data=src.data.reshape(out.shape), quant=out.quant)
            continue
        inputs = [n for n in node.inputs]
        op = tfl.OperatorT()
        if node.op in ("conv2d", "depthwise_conv2d"):
            w = graph.tensors[node.inputs[1]]
            kernel = (w.shape[1], w.shape[2])
            pad = _tflite_padding(node, graph, kernel)
            if pad is None or act is None:
                return None
            if node.op == "conv2d":
                code, opt = BO.CONV_2D, tfl.Conv2DOptionsT()
                op.builtinOptionsType = OP.Conv2DOptions
            else:
                code, opt = BO.DEPTHWISE_CONV_2D, tfl.DepthwiseConv2DOptionsT()
                opt.depthMultiplier = int(a.get("depth_multiplier", 1))
                op.builtinOptionsType = OP.DepthwiseConv2DOptions
            opt.padding = pad
            opt.strideH, opt.strideW = a.get("strides") or (1, 1)
            opt.dilationHFactor, opt.dilationWFactor = a.get("dilations") or (1, 1)
            opt.fusedActivationFunction = act
            if len(inputs) < 3 or not inputs[2]:  # TFLite's int8 conv needs a bias: zeros
                c_out = w.shape[0] if node.op == "conv2d" else w.shape[3]
                s_in = float(np.asarray(graph.tensors[inputs[0]].quant.scale))
                s_w = np.broadcast_to(np.asarray(w.quant.scale, np.float64), (c_out,))
                zeros = Tensor(f"{node.name}_zero_bias", (c_out,), "int32",
                               data=np.zeros(c_out, np.int32),
                               quant=QuantParams(s_in * s_w, np.zeros(c_out, np.int64), 0))
                graph.tensors[zeros.name] = zeros
                inputs = inputs[:2] + [zeros.name]
        elif node.op == "fully_connected":
            if act is None:
                return None
            code, opt = BO.FULLY_CONNECTED, tfl.FullyConnectedOptionsT()
            op.builtinOptionsType = OP.FullyConnectedOptions
            opt.fusedActivationFunction = act
            opt.keepNumDims = len(graph.tensors[node.outputs[0]].shape) != 2
            if len(inputs) < 3:
                inputs.append("")
        elif node.op == "add":
            if act is None:
                return None
            code, opt = BO.ADD, tfl.AddOptionsT()
            op.builtinOptionsType = OP.AddOptions
            opt.fusedActivationFunction = act
            # as the converter writes 16x8 ADDs: the general int16 path, not the POT one
            opt.potScaleInt16 = bool(a.get("pot_scale_int16", False))
        elif node.op in ("max_pool2d", "avg_pool2d"):
            pad = _tflite_padding(node, graph, tuple(a["kernel"]))
            if pad is None or act is None:
                return None
            code = BO.MAX_POOL_2D if node.op == "max_pool2d" else BO.AVERAGE_POOL_2D
            opt = tfl.Pool2DOptionsT()
            op.builtinOptionsType = OP.Pool2DOptions
            opt.padding = pad
            opt.strideH, opt.strideW = a.get("strides") or a["kernel"]
            opt.filterHeight, opt.filterWidth = a["kernel"]
            opt.fusedActivationFunction = act
        elif node.op == "mean":
            code, opt = BO.MEAN, tfl.ReducerOptionsT()
            op.builtinOptionsType = OP.ReducerOptions
            opt.keepDims = bool(a.get("keepdims", True))
            inputs.append(const_i32(f"{node.name}_axes", list(a["axes"])))
        elif node.op == "softmax":
            code, opt = BO.SOFTMAX, tfl.SoftmaxOptionsT()
            op.builtinOptionsType = OP.SoftmaxOptions
            opt.beta = float(a.get("beta", 1.0))
        elif node.op == "relu":
            code, opt = BO.RELU, None
        elif node.op == "clip":
            code = {tfl.ActivationFunctionType.RELU: BO.RELU,
                    tfl.ActivationFunctionType.RELU6: BO.RELU6,
                    tfl.ActivationFunctionType.RELU_N1_TO_1: BO.RELU_N1_TO_1}.get(act)
            if code is None:
                return None
            opt = None
        elif node.op in ("requantize", "quantize"):
            code, opt = BO.QUANTIZE, None
        elif node.op == "dequantize":
            code, opt = BO.DEQUANTIZE, None
        elif node.op == "pad":
            inputs.append(const_i32(f"{node.name}_paddings", [list(p) for p in a["paddings"]]))
            code, opt = BO.PAD, None
            if float(a.get("value") or 0.0) != 0.0:  # PADV2 with an int8 constant
                from edgec.toolchain.lower.common import ActQuant
                from edgec.toolchain.lower.data_movement import pad_value_q
                yq = graph.tensors[node.outputs[0]].quant
                q = pad_value_q(node, ActQuant(float(np.float32(yq.scale)),
                                               int(yq.zero_point)))
                value = Tensor(f"{node.name}_value", (), "int8", data=np.array(q, np.int8),
                               quant=yq)
                graph.tensors[value.name] = value
                inputs.append(value.name)
                code = BO.PADV2
        elif node.op == "transpose":
            inputs.append(const_i32(f"{node.name}_perm", list(a["perm"])))
            code, opt = BO.TRANSPOSE, None
        elif node.op == "concat":
            # LiteRT's int8 CONCATENATION needs every input at the output's quant: the TFLite
            # converter puts a QUANTIZE (int8 -> int8 requantize) in front of the others.
            yq = graph.tensors[node.outputs[0]].quant
            for k, t in enumerate(inputs):
                tq = graph.tensors[t].quant
                if float(np.float32(tq.scale)) == float(np.float32(yq.scale)) and \
                        int(tq.zero_point) == int(yq.zero_point):
                    continue
                rq = Tensor(f"{node.name}_requantized_{k}", graph.tensors[t].shape, "int8",
                            quant=yq)
                graph.tensors[rq.name] = rq
                q_op = tfl.OperatorT()
                q_op.opcodeIndex = opcode(BO.QUANTIZE)
                q_op.inputs = np.asarray([add_tensor(graph.tensors[t])], np.int32)
                q_op.outputs = np.asarray([add_tensor(rq)], np.int32)
                sub.operators.append(q_op)
                inputs[k] = rq.name
            code, opt = BO.CONCATENATION, tfl.ConcatenationOptionsT()
            op.builtinOptionsType = OP.ConcatenationOptions
            opt.axis = int(a["axis"])
            opt.fusedActivationFunction = tfl.ActivationFunctionType.NONE
        elif node.op == "resize_nearest":
            inputs.append(const_i32(f"{node.name}_size", list(a["size"])))
            code, opt = BO.RESIZE_NEAREST_NEIGHBOR, tfl.ResizeNearestNeighborOptionsT()
            op.builtinOptionsType = OP.ResizeNearestNeighborOptions
            opt.alignCorners = bool(a.get("align_corners", False))
            opt.halfPixelCenters = bool(a.get("half_pixel_centers", False))
        elif node.op == "strided_slice":
            for key in ("begin", "end", "strides"):
                inputs.append(const_i32(f"{node.name}_{key}", list(a[key])))
            code, opt = BO.STRIDED_SLICE, tfl.StridedSliceOptionsT()
            op.builtinOptionsType = OP.StridedSliceOptions
            opt.beginMask = int(a.get("begin_mask", 0))
            opt.endMask = int(a.get("end_mask", 0))
            opt.shrinkAxisMask = int(a.get("shrink_axis_mask", 0))
            opt.offset = bool(a.get("offset", False))
        elif node.op == "mul":
            if act is None:
                return None
            code, opt = BO.MUL, tfl.MulOptionsT()
            op.builtinOptionsType = OP.MulOptions
            opt.fusedActivationFunction = act
        elif node.op in ("logistic", "tanh", "hard_swish"):
            code = {"logistic": BO.LOGISTIC, "tanh": BO.TANH,
                    "hard_swish": BO.HARD_SWISH}[node.op]
            opt = None
        elif node.op == "leaky_relu":
            code, opt = BO.LEAKY_RELU, tfl.LeakyReluOptionsT()
            op.builtinOptionsType = OP.LeakyReluOptions
            opt.alpha = float(a["alpha"])
        elif node.op == "batch_matmul":
            if graph.tensors[inputs[0]].dtype != graph.tensors[inputs[1]].dtype:
                return None  # int16 probabilities x int8: edgec's own op, not TFLite's
            code, opt = BO.BATCH_MATMUL, tfl.BatchMatMulOptionsT()
            op.builtinOptionsType = OP.BatchMatMulOptions
            opt.adjX, opt.adjY = bool(a.get("adj_x")), bool(a.get("adj_y"))
            opt.asymmetricQuantizeInputs = False
        elif node.op == "gelu":
            code, opt = BO.GELU, tfl.GeluOptionsT()
            op.builtinOptionsType = OP.GeluOptions
            opt.approximate = bool(a.get("approximate", False))
        else:
            return None
        op.opcodeIndex = opcode(code)
        op.builtinOptions = opt
        op.inputs = np.asarray([add_tensor(graph.tensors[t]) if t else -1 for t in inputs],
                               np.int32)
        op.outputs = np.asarray([add_tensor(graph.tensors[t]) for t in node.outputs],
                                np.int32)
        sub.operators.append(op)
    sub.inputs = np.asarray([index[n] for n in graph.inputs], np.int32)
    sub.outputs = np.asarray([index[n] for n in graph.outputs], np.int32)
    model.subgraphs = [sub]
    builder = flatbuffers.Builder(1024)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output())


def run_litert_reference(model: bytes, samples: np.ndarray) -> np.ndarray:
    """LiteRT with its reference kernels (BUILTIN_REF), one invoke per sample."""
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    interp = Interpreter(model_content=model, num_threads=1,
                         experimental_op_resolver_type=OpResolverType.BUILTIN_REF)
    interp.allocate_tensors()
    inp, out = interp.get_input_details()[0], interp.get_output_details()[0]
    results = []
    for sample in samples:
        interp.set_tensor(inp["index"], sample.reshape(inp["shape"]).astype(np.int8))
        interp.invoke()
        results.append(np.array(interp.get_tensor(out["index"])).reshape(-1))
    return np.stack(results)
