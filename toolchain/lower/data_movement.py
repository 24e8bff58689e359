"""Data movement: pad, transpose, strided_slice, concat, resize_nearest -> their int8 kernels.

None of these computes: each output byte is an input byte (or the pad value), except for a
concat input whose quantization differs from the output's, which is requantized. Everything
index-related is resolved here on the host, so the C kernels only walk 4-D strides:

  - shapes of any rank are folded to 4-D: size-1 axes are dropped, neighbouring axes that
    the op moves together are merged (a transpose that keeps axes i, i+1 adjacent, a pad
    that does not pad the inner one...) and the result is extended with leading 1s;
  - STRIDED_SLICE's begin/end/strides/masks become a first index, a count and a step per
    axis (TFLite's strided_slice_logic.h: StartForAxis, StopForAxis);
  - RESIZE_NEAREST_NEIGHBOR's float index rule (reference_ops::GetNearestNeighbor) becomes
    two int32 tables, evaluated in float32 exactly as TFLite does.
"""
from __future__ import annotations

import numpy as np

from ..ir import Graph, Node
from ..quant_math import quantize_multiplier, tflite_round
from .common import ActQuant, activation, input_name, node_error, same_quant
from .program import ConstArray, KernelCall

IDENTITY_MULTIPLIER = (1 << 30, 1)  # QuantizeMultiplier(1.0): MBQM(x, 2^30, 1) == x exactly
MAX_REQUANT_SHIFT = 22  # 255 * 2^shift must fit int32 in MultiplyByQuantizedMultiplier


def _shape(t) -> tuple[int, ...]:
    return tuple(int(d) for d in t.shape)


def _size(shape) -> int:
    return int(np.prod(shape, dtype=np.int64))


def _extend4(node: Node, values: list, fill, what: str) -> tuple:
    if len(values) > 4:
        raise node_error(node, f"{what} has {len(values)} dimensions after folding; the "
                               "int8 kernels handle at most 4")
    return tuple([fill] * (4 - len(values)) + list(values))


def _same_quant_io(graph: Graph, node: Node) -> tuple:
    x, xq = activation(graph, node, input_name(node, 0))
    y, yq = activation(graph, node, node.outputs[0])
    if not same_quant(xq, yq):
        raise node_error(node, f"input quant (scale {xq.scale:g}, zero point {xq.zero_point}) "
                               f"and output quant (scale {yq.scale:g}, zero point "
                               f"{yq.zero_point}) must be equal: {node.op} moves bytes, it "
                               "does not requantize")
    return x, xq, y, yq


# --- pad ---------------------------------------------------------------------------------------

def _fold_pad_axes(dims, pads) -> tuple[list[int], list[tuple[int, int]]]:
    """Drop unpadded size-1 axes and merge each unpadded axis into the one before it
    (index (a, b) -> a * d_b + b: the copied block stays one block)."""
    kept = [(d, p) for d, p in zip(dims, pads) if d != 1 or p != (0, 0)]
    out_dims: list[int] = []
    out_pads: list[tuple[int, int]] = []
    for d, (b, a) in kept:
        if out_dims and (b, a) == (0, 0):
            pb, pa = out_pads[-1]
            out_dims[-1] *= d
            out_pads[-1] = (pb * d, pa * d)
        else:
            out_dims.append(d)
            out_pads.append((b, a))
    return out_dims, out_pads


def pad_value_q(node: Node, yq: ActQuant) -> int:
    """The int8 pad value: the output zero point for a real 0.0 (TFLite PAD), else the
    constant quantized with the output's params (PADV2's int8 constant_values)."""
    value = float(node.attrs.get("value") or 0.0)
    q = yq.zero_point + tflite_round(value / yq.scale)
    if not -128 <= q <= 127:
        raise node_error(node, f"pad value {value:g} is outside the output's int8 range "
                               f"(scale {yq.scale:g}, zero point {yq.zero_point})")
    return q


def lower_pad(graph: Graph, node: Node) -> KernelCall:
    x, _, y, yq = _same_quant_io(graph, node)
    dims, out_shape = _shape(x), _shape(y)
    pads = [tuple(int(v) for v in p) for p in node.attrs.get("paddings", ())]
    if len(pads) != len(dims) or any(len(p) != 2 or min(p) < 0 for p in pads):
        raise node_error(node, f"paddings {node.attrs.get('paddings')} must be one (before, "
                               f"after) pair >= 0 per axis of the rank-{len(dims)} input")
    expected = tuple(d + b + a for d, (b, a) in zip(dims, pads))
    if expected != out_shape:
        raise node_error(node, f"output shape {out_shape} is not input {dims} + paddings "
                               f"{pads} = {expected}")
    fdims, fpads = _fold_pad_axes(dims, pads)
    in4 = _extend4(node, fdims, 1, "the padded tensor")
    before4 = _extend4(node, [b for b, _ in fpads], 0, "the padded tensor")
    out4 = tuple(d + b + a for d, (b, a) in zip(in4, _extend4(node, fpads, (0, 0), "pads")))
    fields = {
        "input_dims": in4,
        "output_dims": out4,
        "before": before4,
        "pad_value": pad_value_q(node, yq),
    }
    return KernelCall(node.name, node.op, "edgec_pad_s8", "edgec_pad_params", fields,
                      inputs=[x.name], outputs=[y.name])


# --- transpose ---------------------------------------------------------------------------------

def fold_transpose(dims, perm) -> tuple[list[int], list[int]]:
    """(input dims, perm) with size-1 axes dropped and input axes that stay neighbours in
    the output (perm has ..., i, i + 1, ...) merged; the same permutation of the same bytes."""
    keep = [a for a in range(len(dims)) if dims[a] != 1]
    renum = {a: k for k, a in enumerate(keep)}
    dims = [dims[a] for a in keep]
    perm = [renum[a] for a in perm if a in renum]
    # groups of input axes, in output order, each a run of consecutive input axes
    groups: list[list[int]] = []
    for a in perm:
        if groups and groups[-1][-1] + 1 == a:
            groups[-1].append(a)
        else:
            groups.append([a])
    by_first = sorted(groups, key=lambda g: g[0])  # input order of the merged axes
    new_dims = [int(np.prod([dims[a] for a in g])) for g in by_first]
    index = {g[0]: k for k, g in enumerate(by_first)}
    return new_dims, [index[g[0]] for g in groups]


def lower_transpose(graph: Graph, node: Node) -> KernelCall:
    x, _, y, _ = _same_quant_io(graph, node)
    dims, out_shape = _shape(x), _shape(y)
    perm = [int(p) for p in node.attrs.get("perm", ())]
    if sorted(perm) != list(range(len(dims))):
        raise node_error(node, f"perm {perm} is not a permutation of the {len(dims)} axes")
    if tuple(dims[p] for p in perm) != out_shape:
        raise node_error(node, f"output shape {out_shape} is not input {dims} permuted by "
                               f"{perm}")
    fdims, fperm = fold_transpose(dims, perm)
    k = 4 - len(fdims)
    fields = {
        "input_dims": _extend4(node, fdims, 1, "the transposed tensor"),
        "perm": tuple(list(range(k)) + [p + k for p in fperm]) if k >= 0 else (),
    }
    return KernelCall(node.name, node.op, "edgec_transpose_s8", "edgec_transpose_params",
                      fields, inputs=[x.name], outputs=[y.name])


# --- strided slice -----------------------------------------------------------------------------

def _clamp(v: int, lo: int, hi: int) -> int:
    return min(max(v, lo), hi)


def resolve_strided_slice(dims, begin, end, strides, begin_mask: int = 0, end_mask: int = 0,
                          shrink_axis_mask: int = 0, offset: bool = False
                          ) -> list[tuple[int, int, int]]:
    """TFLite's StridedSliceStartForAxis / StridedSliceEndForAxis
    (kernels/internal/strided_slice_logic.h) and the output size ceil((end - start) / stride)
    of strided_slice.cc: per axis (first input index, element count, step). A shrunk axis
    counts 1 (and is dropped from the output shape)."""
    out = []
    for axis, size in enumerate(dims):
        stride = int(strides[axis])
        start = int(begin[axis])
        if start < 0:
            start += size
        start = _clamp(start, 0, size) if stride > 0 else _clamp(start, -1, size - 1)
        if begin_mask & (1 << axis):
            start = 0 if stride > 0 else size - 1
        if shrink_axis_mask & (1 << axis):
            stop = start if start >= size else start + 1
        else:
            stop = int(end[axis]) + (start if offset else 0)
            if stop < 0:
                stop += size
            stop = _clamp(stop, 0, size) if stride > 0 else _clamp(stop, -1, size - 1)
            if end_mask & (1 << axis):
                stop = size if stride > 0 else -1
        count = max(0, -((start - stop) // stride))  # ceil((stop - start) / stride)
        out.append((start, count, stride))
    return out


def fold_slice_axes(dims, axes: list[tuple[int, int, int]]):
    """Drop input axes of size 1 and merge axis pairs the slice walks as one: an axis that
    takes a single element folds into the next one; a full, unit-step inner axis merges
    into a unit-step outer one."""
    items = [(d, s, c, st) for d, (s, c, st) in zip(dims, axes) if d != 1]
    folded: list[tuple[int, int, int, int]] = []
    for d, s, c, st in items:
        if folded:
            pd, ps, pc, pst = folded[-1]
            if pc == 1:  # one element of the outer axis: a fixed offset in the inner one
                folded[-1] = (pd * d, ps * d + s, c, st)
                continue
            if s == 0 and c == d and st == 1 and pst == 1:
                folded[-1] = (pd * d, ps * d, pc * d, 1)
                continue
        folded.append((d, s, c, st))
    return folded


def lower_strided_slice(graph: Graph, node: Node) -> KernelCall:
    x, _, y, _ = _same_quant_io(graph, node)
    dims, out_shape = _shape(x), _shape(y)
    a = node.attrs
    begin, end, strides = (list(a.get(k, ())) for k in ("begin", "end", "strides"))
    if not len(begin) == len(end) == len(strides) == len(dims):
        raise node_error(node, f"begin {begin}, end {end} and strides {strides} need one "
                               f"value per axis of the rank-{len(dims)} input")
    if any(int(s) == 0 for s in strides):
        raise node_error(node, f"strides {strides} must be non-zero")
    shrink = int(a.get("shrink_axis_mask", 0))
    axes = resolve_strided_slice(dims, begin, end, strides, int(a.get("begin_mask", 0)),
                                 int(a.get("end_mask", 0)), shrink, bool(a.get("offset")))
    expected = tuple(c for k, (_, c, _) in enumerate(axes) if not shrink & (1 << k))
    if expected != out_shape:
        raise node_error(node, f"output shape {out_shape} is not the slice's {expected}")
    if _size(expected) == 0:
        raise node_error(node, "the slice is empty")
    folded = fold_slice_axes(dims, axes) or [(1, 0, 1, 1)]
    fields = {
        "input_dims": _extend4(node, [f[0] for f in folded], 1, "the sliced tensor"),
        "output_dims": _extend4(node, [f[2] for f in folded], 1, "the sliced tensor"),
        "start": _extend4(node, [f[1] for f in folded], 0, "the sliced tensor"),
        "stride": _extend4(node, [f[3] for f in folded], 1, "the sliced tensor"),
    }
    return KernelCall(node.name, node.op, "edgec_strided_slice_s8",
                      "edgec_strided_slice_params", fields, inputs=[x.name],
                      outputs=[y.name])


# --- concat ------------------------------------------------------------------------------------

def concat_requantization(node: Node, xq: ActQuant, yq: ActQuant) -> tuple[int, int]:
    """(multiplier, shift) taking an input to the output's scale: LiteRT's int8 QUANTIZE
    (quantize.cc: s_in / s_out in double, QuantizeMultiplier), or the identity."""
    if same_quant(xq, yq):
        return IDENTITY_MULTIPLIER
    m, s = quantize_multiplier(xq.scale / yq.scale)
    if s > MAX_REQUANT_SHIFT:
        raise node_error(node, f"scale ratio {xq.scale / yq.scale:g} between an input and "
                               "the output is too large")
    return m, s


def lower_concat(graph: Graph, node: Node) -> KernelCall:
    names = [t for t in node.inputs if t]
    if not names:
        raise node_error(node, "has no inputs")
    xs = [activation(graph, node, t) for t in names]
    y, yq = activation(graph, node, node.outputs[0])
    out_shape = _shape(y)
    rank = len(out_shape)
    axis = int(node.attrs.get("axis", 0))
    if not -rank <= axis < rank:
        raise node_error(node, f"axis {axis} is out of range for rank {rank}")
    axis %= rank
    for t, _ in xs:
        s = _shape(t)
        if len(s) != rank or s[:axis] != out_shape[:axis] or s[axis + 1:] != out_shape[axis + 1:]:
            raise node_error(node, f"input '{t.name}' of shape {s} does not fit the output "
                                   f"{out_shape} along axis {axis}")
    if sum(_shape(t)[axis] for t, _ in xs) != out_shape[axis]:
        raise node_error(node, f"the inputs' sizes along axis {axis} do not add up to the "
                               f"output's {out_shape[axis]}")
    mults = [concat_requantization(node, xq, yq) for _, xq in xs]
    fields = {
        "num_inputs": len(xs),
        "outer_size": _size(out_shape[:axis]),
        "inner_size": _size(out_shape[axis + 1:]),
        "output_offset": yq.zero_point,
        "axis_sizes": ConstArray("int32_t", np.array([_shape(t)[axis] for t, _ in xs],
                                                     np.int32)),
        "input_offset": ConstArray("int32_t", np.array([-q.zero_point for _, q in xs],
                                                       np.int32)),
        "multiplier": ConstArray("int32_t", np.array([m for m, _ in mults], np.int32)),
        "shift": ConstArray("int32_t", np.array([s for _, s in mults], np.int32)),
    }
    return KernelCall(node.name, node.op, "edgec_concat_s8", "edgec_concat_params", fields,
                      inputs=names, outputs=[y.name], input_array=True)


# --- resize nearest ----------------------------------------------------------------------------

def nearest_indices(in_size: int, out_size: int, align_corners: bool,
                    half_pixel_centers: bool) -> np.ndarray:
    """reference_ops::GetNearestNeighbor for every output index, in float32 like TFLite."""
    f32 = np.float32
    if align_corners and out_size > 1:
        scale = f32(in_size - 1) / f32(out_size - 1)
    else:
        scale = f32(in_size) / f32(out_size)
    offset = f32(0.5) if half_pixel_centers else f32(0.0)
    out = np.empty(out_size, np.int32)
    for i in range(out_size):
        v = float((f32(i) + offset) * scale)  # float32 sum and product, as in C++
        idx = tflite_round(v) if align_corners else int(np.floor(v))
        idx = min(idx, in_size - 1)
        if half_pixel_centers:
            idx = max(0, idx)
        out[i] = idx
    return out


def lower_resize_nearest(graph: Graph, node: Node) -> KernelCall:
    x, _, y, _ = _same_quant_io(graph, node)
    xs, ys = _shape(x), _shape(y)
    if len(xs) != 4 or len(ys) != 4 or (xs[0], xs[3]) != (ys[0], ys[3]):
        raise node_error(node, f"resizes H and W of a 4-D NHWC tensor: {xs} -> {ys}")
    size = node.attrs.get("size")
    if size is not None and tuple(int(v) for v in size) != ys[1:3]:
        raise node_error(node, f"size {tuple(size)} is not the output's H, W {ys[1:3]}")
    align = bool(node.attrs.get("align_corners", False))
    half = bool(node.attrs.get("half_pixel_centers", False))
    fields = {
        "input": xs,
        "output": ys,
        "y_index": ConstArray("int32_t", nearest_indices(xs[1], ys[1], align, half)),
        "x_index": ConstArray("int32_t", nearest_indices(xs[2], ys[2], align, half)),
    }
    return KernelCall(node.name, node.op, "edgec_resize_nearest_s8",
                      "edgec_resize_nearest_params", fields, inputs=[x.name],
                      outputs=[y.name])


LOWERINGS = {
    "pad": lower_pad,
    "transpose": lower_transpose,
    "strided_slice": lower_strided_slice,
    "concat": lower_concat,
    "resize_nearest": lower_resize_nearest,
}
