"""Fold inference BatchNorm into the conv / depthwise / fully-connected layer before it.

y = (conv(x) + b - mean) * gamma / sqrt(var + eps) + beta is again a conv, with each output
channel's weights scaled by s = gamma / sqrt(var + eps) and bias (b - mean) * s + beta, so the
runtime never sees a batch_norm. The fused layer's output takes the BatchNorm's output name.
"""
from __future__ import annotations

import numpy as np

from ..errors import UnsupportedOpError
from ..ir import Graph, Tensor

# Output-channel axis of the weights: [C_OUT,KH,KW,C_IN], [1,KH,KW,C_OUT], [C_OUT,C_IN].
_CHANNEL_AXIS = {"conv2d": 0, "depthwise_conv2d": 3, "fully_connected": 0}


def fold_batchnorm(graph: Graph) -> Graph:
    g = graph.copy()
    for bn in [n for n in g.nodes if n.op == "batch_norm"]:
        layer = g.producer(bn.inputs[0])
        if not _foldable(g, layer, bn):
            source = g.meta.get("source", "model")
            raise UnsupportedOpError(
                f"{source}: BatchNorm node '{bn.name}' does not directly follow a conv or "
                f"linear layer (that it alone reads), so it cannot be folded; standalone "
                f"BatchNorm is not supported yet")
        _fold(g, layer, bn)
    return g


def _foldable(g: Graph, layer, bn) -> bool:
    return (layer is not None and layer.op in _CHANNEL_AXIS
            and layer.attrs.get("act_min") is None and layer.attrs.get("act_max") is None
            and len(g.consumers(layer.outputs[0])) == 1 and layer.outputs[0] not in g.outputs)


def _fold(g: Graph, layer, bn) -> None:
    gamma, beta, mean, var = (g.tensors[n].data.astype(np.float64) for n in bn.inputs[1:5])
    s = gamma / np.sqrt(var + bn.attrs.get("epsilon", 1e-5))
    w_name, b_name = layer.inputs[1], (layer.inputs[2] if len(layer.inputs) > 2 else "")
    w = g.tensors[w_name].data.astype(np.float64)
    shape = [1] * w.ndim
    shape[_CHANNEL_AXIS[layer.op]] = -1
    b = g.tensors[b_name].data.astype(np.float64) if b_name else np.zeros_like(s)
    new_w = (w * s.reshape(shape)).astype(np.float32)
    new_b = ((b - mean) * s + beta).astype(np.float32)
    layer.inputs[1] = _put_const(g, layer, w_name, new_w)
    layer.inputs[2:] = [_put_const(g, layer, b_name or f"{layer.name}_bias", new_b)]
    old, new = layer.outputs[0], bn.outputs[0]
    layer.outputs[0] = new
    del g.tensors[old]
    g.nodes.remove(bn)
    for name in bn.inputs[1:5]:
        if name in g.tensors and not g.consumers(name):
            del g.tensors[name]


def _put_const(g: Graph, layer, name: str, data: np.ndarray) -> str:
    """Replace constant `name` if only `layer` reads it, else add a fresh one."""
    if name not in g.tensors or any(n is not layer for n in g.consumers(name)):
        name = g.unique_name(name)
    g.tensors[name] = Tensor(name, data.shape, "float32", data=data)
    return name
