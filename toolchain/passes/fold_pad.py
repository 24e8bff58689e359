"""Fold a spatial zero pad into the convolutions that read it.

pad -> conv2d / depthwise_conv2d is the convolution with its explicit pads grown by the
pad's, when the pad writes real 0.0 on H and W only: a convolution's taps outside the image
read real 0 too (in int8, x + input_offset = 0 for x = the zero point). The result is the
same number for number, so the pass also runs on int8 graphs (an imported .tflite), where
it saves the padded copy and its arena buffer.

Conditions, all required:
  - the pad input is 4-D NHWC and only H and W are padded (N and C untouched);
  - the pad value is real 0: exactly 0.0 in a float graph; in an int8 graph the quantized
    pad value equals the zero point and the pad's input and output quantization are equal
    (so the convolution reads the same values at the same quantization);
  - the padded tensor is not a graph output.
Only the conv / depthwise readers are rewired; the pad is removed when nothing else reads
it. Pooling is never folded: max pooling ignores padding and average pooling leaves it out
of the count, while an explicit pad is a value both would take into account.
"""
from __future__ import annotations

import numpy as np

from ..ir import Graph, Node

_FOLDS_INTO = ("conv2d", "depthwise_conv2d")


def fold_pad(graph: Graph) -> Graph:
    g = graph.copy()
    for pad in [n for n in g.nodes if n.op == "pad"]:
        spatial = _spatial_zero_pads(g, pad)
        y = pad.outputs[0]
        if spatial is None or y in g.outputs:
            continue
        top, bottom, left, right = spatial
        readers = g.consumers(y)
        for conv in readers:
            if conv.op not in _FOLDS_INTO or conv.inputs[0] != y:
                continue
            t, l, b, r = conv.attrs.get("pads") or (0, 0, 0, 0)
            conv.attrs["pads"] = (t + top, l + left, b + bottom, r + right)
            conv.inputs[0] = pad.inputs[0]
        if not g.consumers(y):
            g.nodes.remove(pad)
            del g.tensors[y]
    return g


def _spatial_zero_pads(g: Graph, pad: Node) -> tuple[int, int, int, int] | None:
    """(top, bottom, left, right) if the pad can fold, else None."""
    x, y = g.tensors[pad.inputs[0]], g.tensors[pad.outputs[0]]
    paddings = [tuple(int(v) for v in p) for p in pad.attrs.get("paddings", ())]
    if len(x.shape) != 4 or len(paddings) != 4 or paddings[0] != (0, 0) \
            or paddings[3] != (0, 0):
        return None
    value = float(pad.attrs.get("value") or 0.0)
    if x.dtype == "float32":
        if value != 0.0:
            return None
    elif not _int8_pad_is_zero_point(x, y, value):
        return None
    return paddings[1] + paddings[2]


def _int8_pad_is_zero_point(x, y, value: float) -> bool:
    if x.quant is None or y.quant is None or x.quant.is_per_channel or y.quant.is_per_channel:
        return False
    sx, sy = (float(np.float32(np.asarray(t.quant.scale).reshape(()))) for t in (x, y))
    zx, zy = (int(np.asarray(t.quant.zero_point).reshape(())) for t in (x, y))
    if (sx, zx) != (sy, zy):
        return False
    # the lowering writes zero_point + round(value / scale) (lower/data_movement.py)
    return abs(value / sy) < 0.5
