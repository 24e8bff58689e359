"""Op order: the peak of live bytes over every topological order, checked by brute force."""
from __future__ import annotations

import itertools
import random

from edgec.toolchain.plan import plan_memory, schedule, search_order
from edgec.toolchain.plan.arena import buffer_lifetimes, lower_bound
from test_plan import assert_topological, assert_valid, make_program, random_program


def two_branches():
    # x feeds two branches, each a big tensor then a small one, joined at the end
    sizes = {"x": 16, "a1": 256, "a2": 16, "b1": 256, "b2": 16, "y": 16}
    calls = [(["x"], ["a1"]), (["x"], ["b1"]), (["a1"], ["a2"]), (["b1"], ["b2"]),
             (["a2", "b2"], ["y"])]
    return make_program(sizes, calls, ["x"], ["y"])


def test_reorders_branches_to_lower_the_peak():
    p = two_branches()
    # model's order: a1 and b1 are live together (16 + 256 + 256)
    assert lower_bound(buffer_lifetimes(p), len(p.calls)) == 528
    assert schedule(p) == [0, 2, 1, 3, 4]  # finish branch a before starting branch b
    plan = plan_memory(p)
    assert plan.order == [0, 2, 1, 3, 4]
    assert plan.order_method == "exact"
    assert plan.lower_bound_original_bytes == 528
    assert plan.lower_bound_bytes == 16 + 256 + 16  # one big tensor at a time, + x + a2
    assert plan.lower_bound_any_order_bytes == plan.lower_bound_bytes
    assert plan.arena_bytes == plan.lower_bound_bytes
    # timeline steps follow the chosen order: b1 is made at step 2
    spans = {e["name"]: (e["first"], e["last"]) for e in plan.timeline}
    assert spans["a2"] == (1, 4) and spans["b1"] == (2, 3)
    assert_valid(plan, p)


def test_keeps_the_model_order_when_it_is_optimal():
    sizes = {"x": 96, "a": 192, "b": 48, "y": 16}
    p = make_program(sizes, [(["x"], ["a"]), (["a"], ["b"]), (["b"], ["y"])], ["x"], ["y"])
    assert schedule(p) == [0, 1, 2]
    # independent calls that cost the same either way stay in the model's order
    sizes = {"x": 16, "a": 16, "b": 16, "y": 16}
    p = make_program(sizes, [(["x"], ["a"]), (["x"], ["b"]), (["a", "b"], ["y"])],
                     ["x"], ["y"])
    assert schedule(p) == [0, 1, 2]
    assert plan_memory(p).order == [0, 1, 2]


def test_reorder_switch_and_hand_made_plans_keep_the_model_order():
    p = two_branches()
    plan = plan_memory(p, reorder=False)
    assert plan.order == [0, 1, 2, 3, 4] and plan.order_method == "original"
    assert plan.lower_bound_bytes == plan.lower_bound_original_bytes == 528
    assert plan.lower_bound_any_order_bytes is None
    naive = plan_memory(p, reuse=False)
    assert naive.order == [0, 1, 2, 3, 4]
    hand = type(plan)(offsets={}, scratch_offsets={}, arena_bytes=0, lower_bound_bytes=0)
    assert hand.order is None and hand.execution_order(3) == [0, 1, 2]
    assert hand.lower_bound_original_bytes == 0 and hand.method == "greedy"


def brute_force_peak(program) -> int:
    """The smallest layer-wise bound over every topological order."""
    n = len(program.calls)
    made = {t: i for i, c in enumerate(program.calls) for t in c.outputs}
    best = None
    for perm in itertools.permutations(range(n)):
        pos = {c: k for k, c in enumerate(perm)}
        if any(pos[made[t]] > pos[i] for i, c in enumerate(program.calls)
               for t in c.inputs if t in made):
            continue
        peak = lower_bound(buffer_lifetimes(program, list(perm)), n)
        best = peak if best is None else min(best, peak)
    return best


def test_exact_search_matches_brute_force():
    rng = random.Random(11)
    for _ in range(40):
        p = random_program(rng, rng.randint(2, 7))
        result = search_order(p)
        assert result.method == "exact"
        assert_topological(result.order, p)
        best = brute_force_peak(p)
        assert result.peak_bytes == best == result.bound_bytes
        assert lower_bound(buffer_lifetimes(p, result.order), len(p.calls)) == best


def test_large_graphs_fall_back_to_a_heuristic_with_a_proven_bound():
    p = random_program(random.Random(0), 100)
    result = search_order(p, max_states=50)
    assert result.method == "heuristic"
    assert_topological(result.order, p)
    assert result.bound_bytes <= result.peak_bytes <= result.original_peak_bytes
    exact = search_order(p, max_states=20_000)
    assert exact.bound_bytes <= exact.peak_bytes
    assert result.bound_bytes <= exact.peak_bytes  # the bound holds for every order
    plan = plan_memory(p)
    assert plan.lower_bound_any_order_bytes <= plan.lower_bound_bytes
    assert_valid(plan, p)


def test_cut_calls_split_the_search():
    # a 120-call chain of residual pairs: every add is a cut call, the search stays small
    sizes, calls, x = {"x0": 64}, [], "x0"
    for i in range(40):
        a, b, y = f"a{i}", f"b{i}", f"x{i + 1}"
        sizes |= {a: 256, b: 64, y: 64}
        calls += [([x], [a]), ([a], [b]), ([x, b], [y])]
        x = y
    p = make_program(sizes, calls, ["x0"], [x])
    result = search_order(p)
    assert result.method == "exact" and result.states < 10 * len(calls)
    assert result.order == list(range(len(calls)))


def test_order_is_deterministic():
    p = random_program(random.Random(5), 60)
    assert schedule(p) == schedule(p)
