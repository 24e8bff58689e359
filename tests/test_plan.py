"""Memory planner: known optima on hand-made programs, invariants on random ones."""
from __future__ import annotations

import random
import time

import numpy as np
import pytest

from edgec.toolchain.errors import EdgecError
from edgec.toolchain.ir import Graph, Tensor
from edgec.toolchain.lower.program import KernelCall, Program
from edgec.toolchain.plan import Plan, find_overlaps, plan_memory


def make_program(sizes: dict[str, int], calls: list[tuple], inputs: list[str],
                 outputs: list[str], consts: dict[str, int] | None = None) -> Program:
    """calls: (inputs, outputs) or (inputs, outputs, scratch_bytes); tensors are int8 [n]."""
    tensors = {n: Tensor(n, (b,), "int8") for n, b in sizes.items()}
    for n, b in (consts or {}).items():
        tensors[n] = Tensor(n, (b,), "int8", data=np.zeros(b, np.int8))
    kcalls = []
    for i, c in enumerate(calls):
        ins, outs = c[0], c[1]
        scratch = c[2] if len(c) > 2 else 0
        kcalls.append(KernelCall(f"layer{i}", "add", "edgec_add_s8", "edgec_add_params", {},
                                 list(ins), list(outs), scratch_bytes=scratch))
    graph = Graph(tensors=tensors, nodes=[], inputs=inputs, outputs=outputs)
    return Program(graph=graph, calls=kcalls)


def assert_valid(plan: Plan, program: Program) -> None:
    assert find_overlaps(plan) == []
    assert plan.arena_bytes >= plan.lower_bound_bytes
    for e in plan.timeline:
        assert 0 <= e["offset"] and e["offset"] + e["bytes"] <= plan.arena_bytes
        if e["bytes"] >= 16:
            assert e["offset"] % 16 == 0
        assert e["offset"] % 4 == 0
    live = {t for c in program.calls for t in (*c.inputs, *c.outputs)}
    live |= set(program.graph.inputs) | set(program.graph.outputs)
    live = {t for t in live if not program.graph.tensors[t].is_const}
    assert set(plan.offsets) == live
    assert set(plan.scratch_offsets) == {i for i, c in enumerate(program.calls)
                                         if c.scratch_bytes > 0}


def test_chain_reaches_lower_bound():
    # live bytes per call: 96+192, 192+48, 48+16 -> bound 288
    p = make_program({"x": 96, "a": 192, "b": 48, "y": 16},
                     [(["x"], ["a"]), (["a"], ["b"]), (["b"], ["y"])], ["x"], ["y"])
    plan = plan_memory(p)
    assert plan.lower_bound_bytes == 288
    assert plan.arena_bytes == 288
    assert plan.naive_bytes == 96 + 192 + 48 + 16
    assert_valid(plan, p)


def test_diamond_residual_reuses_dead_input():
    # x feeds two branches; y reuses x's bytes once x is dead
    p = make_program({"x": 64, "a": 64, "b": 64, "y": 64},
                     [(["x"], ["a"]), (["x"], ["b"]), (["a", "b"], ["y"])], ["x"], ["y"])
    plan = plan_memory(p)
    assert plan.lower_bound_bytes == 192
    assert plan.arena_bytes == 192
    assert plan.offsets["y"] == plan.offsets["x"]
    assert_valid(plan, p)


def test_scratch_lives_only_during_its_call():
    p = make_program({"x": 16, "m": 16, "y": 16},
                     [(["x"], ["m"], 64), (["m"], ["y"], 64)], ["x"], ["y"])
    plan = plan_memory(p)
    assert plan.lower_bound_bytes == 96
    assert plan.arena_bytes == 96
    assert plan.scratch_offsets == {0: 0, 1: 0}  # both scratch buffers share bytes
    scratch = [e for e in plan.timeline if e["kind"] == "scratch"]
    assert [(e["name"], e["first"], e["last"]) for e in scratch] == [
        ("layer0:scratch", 0, 0), ("layer1:scratch", 1, 1)]
    assert_valid(plan, p)


def test_graph_input_lives_from_start_and_outputs_to_end():
    # "late" is a graph input read only by the last call; "early" an output made by call 0
    p = make_program({"x": 32, "late": 32, "early": 32, "m": 32, "y": 32},
                     [(["x"], ["early"]), (["x"], ["m"]), (["m", "late"], ["y"])],
                     ["x", "late"], ["early", "y"])
    plan = plan_memory(p)
    spans = {e["name"]: (e["first"], e["last"]) for e in plan.timeline}
    assert spans["late"] == (0, 2)
    assert spans["early"] == (0, 2)
    assert spans["x"] == (0, 1)
    assert_valid(plan, p)


def test_small_buffers_are_word_aligned():
    p = make_program({"x": 3, "a": 5, "y": 7},
                     [(["x"], ["a"]), (["a"], ["y"])], ["x"], ["y"])
    plan = plan_memory(p)
    assert all(off % 4 == 0 for off in plan.offsets.values())
    assert plan.lower_bound_bytes == 12
    # y (7) at 0, a (5) at 8 (word aligned, so 1 B above the bound); x (3) shares y's bytes
    assert plan.offsets == {"y": 0, "a": 8, "x": 0}
    assert plan.arena_bytes == 13
    assert_valid(plan, p)


def test_constants_are_not_placed():
    p = make_program({"x": 16, "y": 16}, [(["x", "w"], ["y"])], ["x"], ["y"],
                     consts={"w": 1000})
    plan = plan_memory(p)
    assert "w" not in plan.offsets
    assert plan.arena_bytes == 32


def test_no_reuse_switch_gives_naive_arena():
    p = make_program({"x": 96, "a": 192, "b": 48, "y": 16},
                     [(["x"], ["a"]), (["a"], ["b"]), (["b"], ["y"])], ["x"], ["y"])
    plan = plan_memory(p, reuse=False)
    assert plan.arena_bytes == plan.naive_bytes == 352
    assert_valid(plan, p)


def test_unknown_tensor_names_the_call():
    p = make_program({"x": 16, "y": 16}, [(["x", "ghost"], ["y"])], ["x"], ["y"])
    with pytest.raises(EdgecError, match=r"call 'layer0' \(add\) uses unknown tensor 'ghost'"):
        plan_memory(p)


def test_is_deterministic_and_pure():
    p = random_program(random.Random(7), 30)
    before = [(c.name, list(c.inputs), list(c.outputs)) for c in p.calls]
    a, b = plan_memory(p), plan_memory(p)
    assert a == b
    assert before == [(c.name, list(c.inputs), list(c.outputs)) for c in p.calls]


def test_hundred_layers_is_fast():
    p = random_program(random.Random(1), 100)
    start = time.perf_counter()
    plan = plan_memory(p)
    assert time.perf_counter() - start < 0.1
    assert_valid(plan, p)


def random_program(rng: random.Random, layers: int) -> Program:
    """A random DAG: each call reads 1-2 earlier tensors (skip connections included)."""
    sizes = {"in": rng.randint(1, 4096)}
    avail = ["in"]
    calls = []
    for i in range(layers):
        ins = rng.sample(avail[-6:], k=min(len(avail[-6:]), rng.randint(1, 2)))
        out = f"t{i}"
        sizes[out] = rng.choice([rng.randint(1, 64), rng.randint(1, 8192)])
        scratch = rng.choice([0, 0, rng.randint(1, 2048)])
        calls.append((ins, [out], scratch))
        avail.append(out)
    outputs = [avail[-1]] + ([avail[len(avail) // 2]] if rng.random() < 0.3 else [])
    return make_program(sizes, calls, ["in"], outputs)


def test_random_programs_never_overlap():
    rng = random.Random(2024)
    for _ in range(300):
        p = random_program(rng, rng.randint(1, 25))
        assert_valid(plan_memory(p), p)


def test_random_programs_hypothesis():
    hypothesis = pytest.importorskip("hypothesis")
    st = hypothesis.strategies

    @hypothesis.settings(max_examples=150, deadline=None)
    @hypothesis.given(seed=st.integers(0, 2**32 - 1), layers=st.integers(1, 30))
    def check(seed: int, layers: int) -> None:
        p = random_program(random.Random(seed), layers)
        assert_valid(plan_memory(p), p)

    check()
