"""batch_matmul (two int8 activations) -> edgec_batch_matmul_s8.

Prepared as TFLite's BATCH_MATMUL Prepare does for int8 (kernels/batch_matmul.cc):
GetQuantizedConvolutionMultipler, i.e. the float32 product s_lhs * s_rhs widened to double
and divided by s_out, then QuantizeMultiplier; no fused activation, so the clamp is the int8
range. The operands' layouts (adj_x, adj_y) and the broadcasting of batch dims become
strides: the kernel never copies or transposes.

An int16 lhs is legal only as softmax probabilities (the precision search's int16 attention
probabilities, zero point -32768): edgec_batch_matmul_s16_s8, edgec's own op (TFLite's int16
BATCH_MATMUL needs int16 on both sides with zero points 0). Its accumulator is bounded by
the row sum of the probabilities, not by depth * 65535 * 255.
"""
from __future__ import annotations

import numpy as np

from ..ir import Graph, Node, Tensor
from ..quant_math import activation_range, quantize_multiplier
from .common import activation, input_name, node_error
from .program import KernelCall
from .softmax import OUTPUT_S16

MAX_BATCH_DIMS = 3  # TFLite extends BATCH_MATMUL shapes to 5-D: 3 batch dims + a matrix
MAX_DEPTH = ((1 << 31) - 1) // (255 * 255)  # K products of 255 * 255 fit an int32 sum
MAX_DEPTH_PROBS = (1 << 31) // 255 - 65536 - 1  # (65536 + K) * 255 fits an int32 sum


def _batch_strides(node: Node, shape: tuple[int, ...], out_batch: tuple[int, ...],
                   matrix: int) -> list[int]:
    """Element step per output batch index of an operand of `shape` ([..., r, c], whose
    matrices hold `matrix` elements), right-aligned to the output's batch dims; 0 where it is
    broadcast."""
    batch = (1,) * (len(out_batch) - (len(shape) - 2)) + tuple(shape[:-2])
    strides, step = [0] * len(out_batch), matrix
    for axis in reversed(range(len(out_batch))):
        if batch[axis] == out_batch[axis] and batch[axis] > 1:
            strides[axis] = step
        elif batch[axis] != 1:
            raise node_error(node, f"batch dims {shape[:-2]} do not broadcast to {out_batch}")
        step *= batch[axis]
    return strides


def _is_softmax_s16(graph: Graph, name: str) -> bool:
    producer = next((n for n in graph.nodes if name in n.outputs), None)
    q = graph.tensors[name].quant
    return (producer is not None and producer.op == "softmax" and q is not None
            and int(np.asarray(q.zero_point).reshape(-1)[0]) == OUTPUT_S16[1])


def lower_batch_matmul(graph: Graph, node: Node) -> KernelCall:
    probs = graph.tensors[input_name(node, 0)].dtype == "int16"
    if probs and not _is_softmax_s16(graph, input_name(node, 0)):
        raise node_error(node, f"int16 lhs '{input_name(node, 0)}': only int16 softmax "
                               "probabilities (zero point -32768) may be an int16 operand")
    a, aq = activation(graph, node, input_name(node, 0), "int16" if probs else "int8")
    b, bq = activation(graph, node, input_name(node, 1))
    y, yq = activation(graph, node, node.outputs[0])
    layout, macs = layout_fields(node, a, b, y)
    max_depth = MAX_DEPTH_PROBS if probs else MAX_DEPTH
    if layout["depth"] > max_depth:
        raise node_error(node, f"depth {layout['depth']} could overflow the int32 accumulator "
                               f"(at most {max_depth})")
    # GetQuantizedConvolutionMultipler: `input->params.scale * filter->params.scale` is a
    # float32 product, widened to double for the division by the output scale.
    real = float(np.float32(aq.scale) * np.float32(bq.scale)) / yq.scale
    mult, shift = quantize_multiplier(real)
    if shift > 30:
        raise node_error(node, f"scale ratio s_a * s_b / s_out = {real:g} is too large")
    act_min, act_max = activation_range(None, None, yq.scale, yq.zero_point)
    fields = {
        **layout,
        "lhs_offset": -aq.zero_point,
        "rhs_offset": -bq.zero_point,
        "output_offset": yq.zero_point,
        "output_multiplier": mult,
        "output_shift": shift,
        "act_min": act_min,
        "act_max": act_max,
    }
    kernel = "edgec_batch_matmul_s16_s8" if probs else "edgec_batch_matmul_s8"
    return KernelCall(node.name, node.op, kernel, "edgec_batch_matmul_params",
                      fields, inputs=[a.name, b.name], outputs=[y.name], macs=macs)


def layout_fields(node: Node, a: Tensor, b: Tensor, y: Tensor) -> tuple[dict, int]:
    """The shape and stride fields of a batch matmul's params (any operand type), and its
    multiply-accumulates."""
    adj_x, adj_y = bool(node.attrs.get("adj_x")), bool(node.attrs.get("adj_y"))
    sa, sb = tuple(int(d) for d in a.shape), tuple(int(d) for d in b.shape)
    if not (2 <= len(sa) <= 5 and 2 <= len(sb) <= 5):
        raise node_error(node, f"operands of shapes {list(sa)} and {list(sb)}: ranks 2 to 5 "
                               "are supported")
    rows, depth = (sa[-1], sa[-2]) if adj_x else (sa[-2], sa[-1])
    depth_b, cols = (sb[-1], sb[-2]) if adj_y else (sb[-2], sb[-1])
    if depth != depth_b:
        raise node_error(node, f"cannot multiply {list(sa)} (adj_x={adj_x}) by {list(sb)} "
                               f"(adj_y={adj_y}): depths {depth} and {depth_b} differ")
    try:
        out_batch = tuple(int(d) for d in np.broadcast_shapes(sa[:-2], sb[:-2]))
    except ValueError:
        raise node_error(node, f"batch dims of {list(sa)} and {list(sb)} do not "
                               "broadcast") from None
    if out_batch + (rows, cols) != tuple(int(d) for d in y.shape):
        raise node_error(node, f"output shape {list(y.shape)} is not "
                               f"{list(out_batch + (rows, cols))}")
    # Fold to TFLite's 3 batch dims: drop the output's size-1 batch dims (the operands are
    # 1 there too), then pad with leading 1s.
    kept = [k for k, d in enumerate(out_batch) if d != 1]
    if len(kept) > MAX_BATCH_DIMS:
        raise node_error(node, f"{len(kept)} batch dims: at most {MAX_BATCH_DIMS} are supported")
    pad = MAX_BATCH_DIMS - len(kept)
    a_strides = _batch_strides(node, sa, out_batch, sa[-1] * sa[-2])
    b_strides = _batch_strides(node, sb, out_batch, sb[-1] * sb[-2])
    batch = (1,) * pad + tuple(out_batch[k] for k in kept)
    a_batch = (0,) * pad + tuple(a_strides[k] for k in kept)
    b_batch = (0,) * pad + tuple(b_strides[k] for k in kept)
    fields = {
        "batch": batch,
        "lhs_batch_stride": a_batch,
        "rhs_batch_stride": b_batch,
        "rows": rows,
        "cols": cols,
        "depth": depth,
        "lhs_row_stride": 1 if adj_x else depth,
        "lhs_depth_stride": rows if adj_x else 1,
        "rhs_depth_stride": 1 if adj_y else cols,
        "rhs_col_stride": depth if adj_y else 1,
    }
    return fields, int(np.prod(out_batch, dtype=np.int64)) * rows * cols * depth


LOWERINGS = {"batch_matmul": lower_batch_matmul}
