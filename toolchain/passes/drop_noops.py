"""Drop identity ops and same-shape reshapes.

Identity / Dropout do nothing at inference. A reshape that changes the shape stays: the
lowering turns it into a view (no code, no bytes of its own: the planner gives it its
input's offset), which is right whatever reads it, broadcasting ops included.
"""
from __future__ import annotations

from ..ir import Graph


def drop_noops(graph: Graph) -> Graph:
    g = graph.copy()
    for node in [n for n in g.nodes if n.op in ("identity", "reshape")]:
        x, y = node.inputs[0], node.outputs[0]
        if g.tensors[x].shape != g.tensors[y].shape:
            continue  # a view, lowered as such
        if y in g.outputs:
            if x in g.inputs or x in g.outputs:
                if node.op == "identity":  # keep as a same-shape view the runtime knows
                    node.op, node.attrs = "reshape", {"shape": g.tensors[y].shape}
                continue
            _rename(g, x, y)  # the producer writes the graph output directly
            g.nodes.remove(node)
            continue
        for u in g.consumers(y):
            u.inputs = [x if i == y else i for i in u.inputs]
        g.nodes.remove(node)
        del g.tensors[y]
    return g


def _rename(g: Graph, old: str, new: str) -> None:
    """Make the producer of `old` write `new` (keeping `new`'s tensor) and readers follow."""
    producer = g.producer(old)
    producer.outputs = [new if o == old else o for o in producer.outputs]
    for u in g.consumers(old):
        u.inputs = [new if i == old else i for i in u.inputs]
    del g.tensors[old]
