"""Drop identity ops and turn reshapes into aliases.

Identity / Dropout do nothing at inference. A reshape is a view of the same bytes, and the
kernels that can follow one view their input by their own params (fully_connected reads x as
[-1, C_IN], elementwise ops and softmax read it flat / by the last axis), so consumers read the
reshape's input directly. A reshape stays where a consumer's kernel depends on the input shape
(conv, pooling, mean), where it produces a graph output of another shape (the user-facing shape),
or where it maps a graph input straight to a graph output.
"""
from __future__ import annotations

from ..ir import Graph

# Ops whose kernels read their input as flat bytes (or by the last axis only, softmax).
_VIEWS_BY_OWN_PARAMS = {"fully_connected", "add", "relu", "clip", "reshape", "identity"}


def drop_noops(graph: Graph) -> Graph:
    g = graph.copy()
    for node in [n for n in g.nodes if n.op in ("identity", "reshape")]:
        x, y = node.inputs[0], node.outputs[0]
        same_shape = g.tensors[x].shape == g.tensors[y].shape
        if y in g.outputs:
            if x in g.inputs or x in g.outputs or not same_shape:
                if node.op == "identity":  # keep as a same-shape view the runtime knows
                    node.op, node.attrs = "reshape", {"shape": g.tensors[y].shape}
                continue
            _rename(g, x, y)  # the producer writes the graph output directly
            g.nodes.remove(node)
            continue
        users = g.consumers(y)
        if all(same_shape or _reads_as_view(u, g.tensors[x].shape, g.tensors[y].shape)
               for u in users):
            for u in users:
                u.inputs = [x if i == y else i for i in u.inputs]
            g.nodes.remove(node)
            del g.tensors[y]
    return g


def _reads_as_view(user, x_shape, y_shape) -> bool:
    if user.op == "softmax":
        return x_shape[-1] == y_shape[-1]
    return user.op in _VIEWS_BY_OWN_PARAMS


def _rename(g: Graph, old: str, new: str) -> None:
    """Make the producer of `old` write `new` (keeping `new`'s tensor) and readers follow."""
    producer = g.producer(old)
    producer.outputs = [new if o == old else o for o in producer.outputs]
    for u in g.consumers(old):
        u.inputs = [new if i == old else i for i in u.inputs]
    del g.tensors[old]
