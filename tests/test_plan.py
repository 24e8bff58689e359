"""Memory planner: known optima on hand-made programs, invariants on random ones."""
from __future__ import annotations

import random

import numpy as np
import pytest
from edgec.toolchain.errors import EdgecError
from edgec.toolchain.ir import Graph, Tensor
from edgec.toolchain.lower.program import KernelCall, Program
from edgec.toolchain.plan import Plan, find_overlaps, plan_memory


def make_program(sizes: dict[str, int], calls: list[tuple], inputs: list[str],
                 outputs: list[str], consts: dict[str, int] | None = None) -> Program:
    """calls: (inputs, outputs[, scratch_bytes[, inplace[, inplace_overlap]]]); tensors
    are int8 [n]."""
    tensors = {n: Tensor(n, (b,), "int8") for n, b in sizes.items()}
    for n, b in (consts or {}).items():
        tensors[n] = Tensor(n, (b,), "int8", data=np.zeros(b, np.int8))
    kcalls = []
    for i, c in enumerate(calls):
        ins, outs = c[0], c[1]
        scratch = c[2] if len(c) > 2 else 0
        inplace = c[3] if len(c) > 3 else {}
        overlap = c[4] if len(c) > 4 else {}
        kcalls.append(KernelCall(f"layer{i}", "add", "edgec_add_s8", "edgec_add_params", {},
                                 list(ins), list(outs), scratch_bytes=scratch,
                                 inplace=dict(inplace), inplace_overlap=dict(overlap)))
    graph = Graph(tensors=tensors, nodes=[], inputs=inputs, outputs=outputs)
    return Program(graph=graph, calls=kcalls)


def assert_valid(plan: Plan, program: Program) -> None:
    assert find_overlaps(plan) == []
    assert plan.arena_bytes >= plan.lower_bound_inplace_bytes
    assert plan.lower_bound_inplace_bytes <= plan.lower_bound_bytes
    if not plan.inplace:
        assert plan.arena_bytes >= plan.lower_bound_bytes
        assert plan.lower_bound_inplace_bytes == plan.lower_bound_bytes
    assert plan.gap_bytes == plan.arena_bytes - plan.lower_bound_inplace_bytes
    assert bool(plan.gap_reason) == (plan.gap_bytes > 0)
    assert_topological(plan.execution_order(len(program.calls)), program)
    if plan.lower_bound_any_order_bytes is not None:
        assert plan.lower_bound_any_order_bytes <= plan.lower_bound_inplace_bytes
        if not any(c.inplace for c in program.calls):
            assert plan.lower_bound_bytes <= plan.lower_bound_original_bytes
    by_name = {e["name"]: e for e in plan.timeline}
    for alias in plan.inplace:  # an in-place output takes over a dying input's bytes
        src, dst = by_name[alias["input"]], by_name[alias["output"]]
        assert dst["alias_of"] == src["name"]
        assert dst["offset"] - src["offset"] == alias["shift"] <= 0
        assert src["last"] == alias["step"] == dst["first"]
        if alias["shift"] == 0:  # full overlap: the output fits in the input
            assert dst["bytes"] <= src["bytes"] and alias["bytes"] == dst["bytes"]
        else:  # partial: the output's end inside the input
            assert alias["bytes"] == dst["bytes"] + alias["shift"] > 0
            assert alias["bytes"] <= src["bytes"] and alias["shift"] % 16 == 0
        assert alias["input"] not in program.graph.outputs
        assert plan.order[alias["step"]] == alias["call"]
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


def assert_topological(order: list[int], program: Program) -> None:
    """A permutation of the calls in which every tensor is written before it is read."""
    assert sorted(order) == list(range(len(program.calls)))
    written = set(program.graph.inputs)
    produced = {t for c in program.calls for t in c.outputs}
    for i in order:
        call = program.calls[i]
        for t in call.inputs:
            assert t not in produced or t in written, (call.name, t)
        written |= set(call.outputs)


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


def test_hundred_layer_random_dags_plan_validly():
    # random DAGs are the worst case of the order search (few cut points, wide); the time
    # it takes is measured in benchmarks/plan_bench.py, not here
    for seed in (1, 2):
        p = random_program(random.Random(seed), 100)
        assert_valid(plan_memory(p), p)


def random_program(rng: random.Random, layers: int, inplace: bool = False) -> Program:
    """A random DAG: each call reads 1-2 earlier tensors (skip connections included);
    inplace: some calls declare an in-place output over one of their inputs."""
    sizes = {"in": rng.randint(1, 4096)}
    avail = ["in"]
    calls = []
    for i in range(layers):
        ins = rng.sample(avail[-6:], k=min(len(avail[-6:]), rng.randint(1, 2)))
        out = f"t{i}"
        sizes[out] = rng.choice([rng.randint(1, 64), rng.randint(1, 8192)])
        scratch = rng.choice([0, 0, rng.randint(1, 2048)])
        alias, overlap = {}, {}
        if inplace and rng.random() < 0.5:
            k = rng.randrange(len(ins))
            alias = {0: k}
            if rng.random() < 0.5:
                sizes[out] = rng.randint(1, sizes[ins[k]])
            else:  # partial overlap: the output may be larger
                overlap = {0: rng.randint(0, sizes[ins[k]])}
        calls.append((ins, [out], scratch, alias, overlap))
        avail.append(out)
    outputs = [avail[-1]] + ([avail[len(avail) // 2]] if rng.random() < 0.3 else [])
    return make_program(sizes, calls, ["in"], outputs)


def test_random_programs_never_overlap():
    rng = random.Random(2024)
    for k in range(300):
        p = random_program(rng, rng.randint(1, 25), inplace=k % 2 == 1)
        # the MILP is slow next to the rest: every 10th program only
        assert_valid(plan_memory(p, exact=k % 10 == 0), p)


def test_random_programs_hypothesis():
    import hypothesis
    st = hypothesis.strategies

    @hypothesis.settings(max_examples=150, deadline=None)
    @hypothesis.given(seed=st.integers(0, 2**32 - 1), layers=st.integers(1, 30),
                      inplace=st.booleans())
    def check(seed: int, layers: int, inplace: bool) -> None:
        p = random_program(random.Random(seed), layers, inplace)
        assert_valid(plan_memory(p, exact=False), p)

    check()


# ---- placement: greedy, local search, MILP ---------------------------------------------------

def milp_case() -> Program:
    """Greedy and its local search end at 1776 B; the optimum is the bound, 1712 B."""
    sizes = {"in": 64, "t0": 352, "t1": 864, "t2": 368, "t3": 304, "t4": 432, "t5": 752}
    calls = [(["in"], ["t0"], 272), (["t0", "in"], ["t1"], 128), (["t1"], ["t2"], 128),
             (["t0"], ["t3"]), (["t3", "t2"], ["t4"]), (["t2", "t3"], ["t5"])]
    return make_program(sizes, calls, ["in"], ["t5"])


def test_milp_beats_greedy_when_small():
    import scipy  # noqa: F401  (a dependency: the MILP must run here)
    p = milp_case()
    plan = plan_memory(p, reorder=False)
    assert plan.greedy_arena_bytes == 1776
    assert plan.method == "milp" and plan.arena_bytes == plan.lower_bound_bytes == 1712
    assert plan.placement_note == "MILP found the optimum"
    assert_valid(plan, p)
    off = plan_memory(p, reorder=False, exact=False)
    assert off.method in ("greedy", "local search") and off.arena_bytes == 1776
    assert off.gap_bytes == 64 and off.gap_reason.startswith("fragmentation: ")
    assert_valid(off, p)


def interval_program(spans: list[tuple[int, int, int]]) -> Program:
    """One tensor per (first, last, bytes): made by call `first`, read by call `last`."""
    steps = max(last for _, last, _ in spans) + 1
    sizes = {"in": 0} | {f"b{k}": size for k, (_, _, size) in enumerate(spans)}
    calls = []
    for s in range(steps):
        ins = ["in"] if s == 0 else []
        ins += [f"b{k}" for k, (first, last, _) in enumerate(spans) if last == s and first < s]
        calls.append((ins, [f"b{k}" for k, (first, _, _) in enumerate(spans) if first == s]))
    return make_program(sizes, calls, ["in"], [f"b{len(spans) - 1}"])


def test_fragmentation_that_no_placement_avoids():
    import scipy  # noqa: F401  (a dependency: the MILP must run here)
    # found by search: the live bytes never exceed 224, yet every placement needs 240
    spans = [(1, 2, 32), (2, 3, 80), (4, 5, 112), (1, 3, 80), (4, 4, 32), (0, 1, 112),
             (5, 5, 48), (0, 0, 112), (3, 4, 48)]
    p = interval_program(spans)
    plan = plan_memory(p, reorder=False)
    assert plan.lower_bound_bytes == 224 and plan.arena_bytes == 240
    assert plan.gap_bytes == 16
    assert plan.gap_reason.startswith("fragmentation: at step ")
    assert "arena optimal" in plan.gap_reason and "proved" in plan.placement_note
    assert_valid(plan, p)


def test_alignment_gap_is_named():
    # 20 B and 40 B live together: whichever is below, the other starts 16-aligned
    p = make_program({"x": 20, "y": 40}, [(["x"], ["y"])], ["x"], ["y"])
    plan = plan_memory(p)
    assert plan.lower_bound_bytes == 60 and plan.arena_bytes == 68  # y at 0, x at 48
    assert plan.gap_reason.startswith("alignment: 8 B of padding")
    assert_valid(plan, p)


def test_without_scipy_the_local_search_stands(monkeypatch):
    import builtins
    real_import = builtins.__import__

    def no_scipy(name, *args, **kwargs):
        if name.startswith("scipy"):
            raise ImportError("no scipy here")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_scipy)
    p = milp_case()
    plan = plan_memory(p, reorder=False)
    assert plan.arena_bytes == 1776 and plan.placement_note == "MILP skipped: SciPy not installed"
    assert_valid(plan, p)


def test_synthetic_networks_plan_at_the_bound():
    import importlib.util
    from pathlib import Path
    path = Path(__file__).resolve().parents[1] / "benchmarks" / "plan_bench.py"
    spec = importlib.util.spec_from_file_location("plan_bench", path)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    for make in (bench.chain, bench.mobilenet_v2, bench.branchy):
        p = make()
        plan = plan_memory(p)
        assert plan.arena_bytes == plan.lower_bound_inplace_bytes, plan.gap_reason
        assert plan.order_method == "exact"
        assert_valid(plan, p)
    assert plan_memory(bench.mobilenet_v2()).arena_bytes < \
        plan_memory(bench.mobilenet_v2(), inplace=False).arena_bytes
