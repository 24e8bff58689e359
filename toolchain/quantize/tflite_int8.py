"""Float NHWC IR + activation ranges -> int8 IR, per the TFLite int8 quantization spec.

  activations  int8, per-tensor asymmetric: range widened to include 0 (so 0.0 and padding
               are exact), scale = (max - min) / 255, zero_point = round(-128 - min / scale).
  weights      int8, per-channel symmetric over the output channel (axis 0 of conv / FC
               [C_OUT, ...], axis 3 of depthwise [1, KH, KW, C]), scale = max|w| / 127,
               zero_point 0, values in [-127, 127].
  bias         int32, scale = s_in * s_w[c], zero_point 0 (the accumulator's scale).
  max/avg pool, mean, reshape, pad, transpose, resize_nearest, strided_slice: the output
               reuses the input's params (kernels copy/average without requantizing);
  concat:      the output covers the union of its inputs' ranges (their params if they all
               agree); the kernel requantizes the inputs that differ.
  softmax and logistic: output scale 1/256, zero_point -128; tanh: output scale 1/128,
               zero_point 0 (TFLite's fixed output params).
  batch_matmul, gelu, layer_norm: output from its calibrated range (TFLite fixes none;
               layer_norm's gamma and beta stay float32, folded by its lowering).
  add / mul constant operand: int8, per tensor over the constant's own range (incl. 0), as
               TFLite's converter quantizes a constant input of ADD / MUL.
  constant:    (a constant made an activation, e.g. a concatenated class token) the params
               of the concat it feeds, so it is copied, not requantized.
"""
from __future__ import annotations

import numpy as np

from ..errors import EdgecError
from ..ir import Graph, QuantParams, Tensor

_SHARES_INPUT_PARAMS = {"max_pool2d", "avg_pool2d", "mean", "reshape",
                        "pad", "transpose", "resize_nearest", "strided_slice"}
_WEIGHT_AXIS = {"conv2d": 0, "depthwise_conv2d": 3, "fully_connected": 0}
_RUNTIME_OPS = {"conv2d", "depthwise_conv2d", "fully_connected", "add", "max_pool2d",
                "avg_pool2d", "mean", "softmax", "reshape", "relu", "clip",
                "mul", "logistic", "tanh", "hard_swish", "leaky_relu",
                "pad", "transpose", "concat", "resize_nearest", "strided_slice",
                "batch_matmul", "gelu", "layer_norm", "constant"}
SOFTMAX_OUTPUT = (1.0 / 256.0, -128)
LOGISTIC_OUTPUT = (1.0 / 256.0, -128)
TANH_OUTPUT = (1.0 / 128.0, 0)
_FIXED_OUTPUT = {"softmax": SOFTMAX_OUTPUT, "logistic": LOGISTIC_OUTPUT, "tanh": TANH_OUTPUT}


def activation_params(lo: float, hi: float) -> QuantParams:
    lo, hi = min(float(lo), 0.0), max(float(hi), 0.0)
    if hi - lo < 1e-8:
        # A constant-zero tensor: any scale represents it; 1/255 keeps later bias scales sane.
        return QuantParams.per_tensor(1.0 / 255.0, -128)
    scale = (hi - lo) / 255.0
    zero_point = int(np.clip(np.round(-128.0 - lo / scale), -128, 127))
    return QuantParams.per_tensor(scale, zero_point)


def concat_params(inputs: list[QuantParams]) -> QuantParams:
    """The inputs' params when they all agree (the concat is a copy), else params covering
    the union of their ranges (each input is then requantized to them, no value clipped)."""
    first = inputs[0]
    if all(float(q.scale) == float(first.scale) and int(q.zero_point) == int(first.zero_point)
           for q in inputs):
        return first
    lo = min(float(q.scale) * (-128 - int(q.zero_point)) for q in inputs)
    hi = max(float(q.scale) * (127 - int(q.zero_point)) for q in inputs)
    return activation_params(lo, hi)


def quantize_weights(w: np.ndarray, axis: int) -> tuple[np.ndarray, QuantParams]:
    """Symmetric per-channel int8 along `axis`; an all-zero channel gets scale 1."""
    other = tuple(i for i in range(w.ndim) if i != axis)
    amax = np.abs(w.astype(np.float64)).max(axis=other)
    scale = np.where(amax > 0, amax / 127.0, 1.0)
    shape = [1] * w.ndim
    shape[axis] = -1
    q = np.clip(np.round(w / scale.reshape(shape)), -127, 127).astype(np.int8)
    return q, QuantParams(scale, np.zeros(scale.shape, np.int64), axis)


def quantize_bias(b: np.ndarray, input_scale: float, weight_scale: np.ndarray):
    scale = float(input_scale) * np.asarray(weight_scale, np.float64)
    info = np.iinfo(np.int32)
    q = np.clip(np.round(b.astype(np.float64) / scale), info.min, info.max).astype(np.int32)
    return q, QuantParams(scale, np.zeros(scale.shape, np.int64), 0)


def quantize(graph: Graph, ranges: dict[str, tuple[float, float]]) -> Graph:
    """int8 activations and weights, int32 biases, QuantParams on every tensor."""
    g = graph.copy()
    source = g.meta.get("source", "model")
    params: dict[str, QuantParams] = {}

    def from_range(name: str) -> QuantParams:
        if name not in ranges:
            raise EdgecError(f"{source}: no calibration range for tensor '{name}'; "
                             f"calibrate() the graph after the passes")
        lo, hi = ranges[name]
        if not (np.isfinite(lo) and np.isfinite(hi)):
            raise EdgecError(f"{source}: tensor '{name}' takes values in [{lo}, {hi}] on the "
                             f"calibration data; the float model overflows (check its weights)")
        return activation_params(lo, hi)

    for name in g.inputs:
        params[name] = from_range(name)
    constants = {n.outputs[0] for n in g.nodes if n.op == "constant"}
    for node in g.nodes:
        if node.op not in _RUNTIME_OPS:
            raise EdgecError(f"{source}: op '{node.op}' (node '{node.name}') is still in the "
                             f"graph; run toolchain.passes.run_passes() before quantizing")
        y = node.outputs[0]
        if node.op in _SHARES_INPUT_PARAMS:
            params[y] = params[node.inputs[0]]
        elif node.op == "constant":  # provisional: the concat it feeds sets the final ones
            params[y] = _range_params(graph.tensors[node.inputs[0]].data)
        elif node.op == "concat":
            params[y] = concat_params([params[t] for t in node.inputs if t])
            for t in node.inputs:
                if t in constants:
                    params[t] = params[y]
        elif node.op in _FIXED_OUTPUT:
            params[y] = QuantParams.per_tensor(*_FIXED_OUTPUT[node.op])
        else:
            params[y] = from_range(y)
        if node.op in _WEIGHT_AXIS:
            _quantize_layer(g, graph, node, params[node.inputs[0]])
    _quantize_constants(g, graph, params)
    for name, qp in params.items():
        t = g.tensors[name]
        g.tensors[name] = Tensor(t.name, t.shape, "int8", None, qp)
    g.meta = {**g.meta, "quantized": "int8"}
    return g


def _range_params(data: np.ndarray) -> QuantParams:
    data = np.asarray(data, np.float64)
    return activation_params(float(data.min()), float(data.max()))


def _quantize_constants(g: Graph, float_graph: Graph, params: dict[str, QuantParams]) -> None:
    """int8 versions of the constant operands of add / mul (their own per-tensor params) and
    of the constants `constant` nodes copy (their output's params), each a new tensor."""
    for node in g.nodes:
        if node.op in ("add", "mul"):
            slots = [(k, _range_params(float_graph.tensors[t].data))
                     for k, t in enumerate(node.inputs) if t and g.tensors[t].is_const]
        elif node.op == "constant":
            slots = [(0, params[node.outputs[0]])]
        else:
            continue
        for k, qp in slots:
            src = float_graph.tensors[node.inputs[k]]
            q = np.round(np.asarray(src.data, np.float64) / float(qp.scale)) + int(qp.zero_point)
            name = g.unique_name(f"{src.name}_int8")
            g.tensors[name] = Tensor(name, src.shape, "int8",
                                     np.clip(q, -128, 127).astype(np.int8).reshape(src.shape), qp)
            node.inputs[k] = name


def _quantize_layer(g: Graph, float_graph: Graph, node, input_params: QuantParams) -> None:
    """Quantize the node's weights and bias (read from the float graph: `g` may already hold
    a shared constant's int8 version)."""
    w = float_graph.tensors[node.inputs[1]]
    q, wq = quantize_weights(w.data, _WEIGHT_AXIS[node.op])
    node.inputs[1] = _put(g, node, node.inputs[1], Tensor(w.name, w.shape, "int8", q, wq))
    if len(node.inputs) > 2 and node.inputs[2]:
        b = float_graph.tensors[node.inputs[2]]
        bq, bqp = quantize_bias(b.data, input_params.scale, wq.scale)
        node.inputs[2] = _put(g, node, node.inputs[2], Tensor(b.name, b.shape, "int32", bq, bqp))


def _put(g: Graph, node, name: str, t: Tensor) -> str:
    """Store a quantized constant; a constant shared with another layer that quantized it
    differently (a bias under another input scale) gets its own copy."""
    old = g.tensors[name]
    if old.dtype != "float32" and not (np.array_equal(old.data, t.data)
                                       and np.array_equal(old.quant.scale, t.quant.scale)):
        name = g.unique_name(name)
    g.tensors[name] = Tensor(name, t.shape, t.dtype, t.data, t.quant)
    return name
