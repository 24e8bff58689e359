"""Fold a transpose of the last two axes into the batch_matmul that reads it (adj_x / adj_y).

Attention's q @ k.transpose(-2, -1) exports as Transpose + MatMul; BATCH_MATMUL reads an
operand stored transposed for free (adj_y: the kernel walks it with other strides), so the
transpose kernel and its arena buffer go away. Exact in float and in int8 (a transpose only
moves bytes and keeps its input's quantization).
"""
from __future__ import annotations

from ..ir import Graph


def _swaps_last_two(perm, rank: int) -> bool:
    return rank >= 2 and tuple(int(p) for p in perm) == \
        tuple(range(rank - 2)) + (rank - 1, rank - 2)


def fold_transpose_matmul(graph: Graph) -> Graph:
    g = graph.copy()
    for node in [n for n in g.nodes if n.op == "batch_matmul"]:
        for k, flag in ((0, "adj_x"), (1, "adj_y")):
            t = node.inputs[k]
            producer = g.producer(t)
            if (producer is None or producer.op != "transpose" or t in g.outputs
                    or len(g.consumers(t)) != 1 or node.inputs[1 - k] == t
                    or not _swaps_last_two(producer.attrs.get("perm", ()),
                                           len(g.tensors[t].shape))):
                continue
            node.inputs[k] = producer.inputs[0]
            node.attrs[flag] = not bool(node.attrs.get(flag))
            g.nodes.remove(producer)
            del g.tensors[t]
    return g
