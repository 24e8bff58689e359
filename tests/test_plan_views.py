"""A reshape is a view: no code, no bytes of its own; the planner gives it its input's offset
and keeps the input alive for the view's readers."""
from __future__ import annotations

import numpy as np

from edgec.toolchain.golden import run_program
from edgec.toolchain.ir import Graph, QuantParams, Tensor
from edgec.toolchain.lower.program import KernelCall, Program
from edgec.toolchain.plan import plan_memory


def _program() -> Program:
    q = QuantParams.per_tensor(0.1, 0)
    t = {n: Tensor(n, s, "int8", quant=q) for n, s in
         [("x", (1, 64)), ("v", (1, 4, 4, 4)), ("y", (1, 4, 4, 4)), ("z", (1, 4, 4, 4))]}
    g = Graph(tensors=t, nodes=[], inputs=["x"], outputs=["z"])
    view = KernelCall("r", "reshape", "", "", {}, ["x"], ["v"], view=True)
    a = KernelCall("a", "relu", "edgec_requantize_s8", "p", {}, ["v"], ["y"])
    b = KernelCall("b", "add", "edgec_add_s8", "p", {}, ["y", "v"], ["z"])
    return Program(g, [view, a, b])


def test_view_shares_its_input_offset_and_bytes():
    p = _program()
    plan = plan_memory(p)
    assert plan.offsets["v"] == plan.offsets["x"]
    # x (alias v) is read by the last call, so x, y and z are live together: 3 x 64 bytes
    assert plan.lower_bound_bytes == 192
    live = {e["name"] for e in plan.timeline}
    assert "v" not in live and "x" in live
    x_entry = next(e for e in plan.timeline if e["name"] == "x")
    assert x_entry["last"] == 2  # kept alive for the view's last reader
    for e in plan.timeline:  # y and z never overlap x's bytes while x lives
        if e["name"] in ("y", "z"):
            assert (e["offset"] >= plan.offsets["x"] + 64
                    or e["offset"] + e["bytes"] <= plan.offsets["x"])


def test_golden_runs_a_view_as_a_reshape():
    p = _program()
    p.calls = p.calls[:1]
    p.graph.outputs = ["v"]
    x = np.arange(-32, 32, dtype=np.int8).reshape(1, 64)
    out = run_program(p, {"x": x})["v"]
    assert out.shape == (1, 4, 4, 4) and np.array_equal(out.reshape(-1), x.reshape(-1))
