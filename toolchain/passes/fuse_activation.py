"""Fuse ReLU / clip into the clamp (act_min, act_max) of the op that produces their input.

An int8 kernel clamps its output anyway; fusing saves a pass over the tensor and an arena
buffer. The fused op's output takes the activation's output name, so the calibration ranges
(collected on the source ONNX tensors) still name the right tensor.
"""
from __future__ import annotations

from ..ir import Graph

_FUSES_INTO = {"conv2d", "depthwise_conv2d", "fully_connected", "add", "mul", "max_pool2d",
               "avg_pool2d"}


def fuse_activation(graph: Graph) -> Graph:
    g = graph.copy()
    for act in [n for n in g.nodes if n.op in ("relu", "clip")]:
        x = act.inputs[0]
        producer = g.producer(x)
        if (producer is None or producer.op not in _FUSES_INTO or x in g.outputs
                or len(g.consumers(x)) != 1):
            continue
        lo, hi = (0.0, None) if act.op == "relu" else (act.attrs.get("act_min"),
                                                      act.attrs.get("act_max"))
        producer.attrs["act_min"] = _tighter(producer.attrs.get("act_min"), lo, max)
        producer.attrs["act_max"] = _tighter(producer.attrs.get("act_max"), hi, min)
        producer.outputs[0] = act.outputs[0]
        del g.tensors[x]
        g.nodes.remove(act)
    return g


def _tighter(a, b, pick):
    """Intersect two optional bounds (None = unbounded)."""
    if a is None or b is None:
        return b if a is None else a
    return pick(a, b)
