"""In-place hooks (KernelCall.inplace): hand-made programs, no kernels needed."""
from __future__ import annotations

import pytest
from edgec.toolchain.errors import EdgecError
from edgec.toolchain.plan import find_overlaps, plan_memory
from test_plan import assert_valid, make_program


def test_add_writes_over_its_dying_input():
    # call 1 adds x and a into y; a dies there, so y may take a's bytes
    p = make_program({"x": 64, "a": 64, "y": 64},
                     [(["x"], ["a"]), (["x", "a"], ["y"], 0, {0: 1})], ["x"], ["y"])
    plan = plan_memory(p)
    assert plan.offsets["y"] == plan.offsets["a"]
    assert plan.inplace == [{"call": 1, "step": 1, "input": "a", "output": "y", "bytes": 64,
                             "shift": 0}]
    assert plan.lower_bound_bytes == 192  # the layer-wise bound knows nothing of in place
    assert plan.lower_bound_inplace_bytes == 128
    assert plan.arena_bytes == 128  # below the layer-wise bound
    assert plan.gap_bytes == 0 and plan.gap_reason == ""
    entry = {e["name"]: e for e in plan.timeline}["y"]
    assert entry["alias_of"] == "a" and entry["first"] == 1
    assert_valid(plan, p)
    assert plan_memory(p, inplace=False).arena_bytes == 192


def test_graph_input_may_be_overwritten():
    p = make_program({"x": 64, "y": 64}, [(["x"], ["y"], 0, {0: 0})], ["x"], ["y"])
    plan = plan_memory(p)
    assert plan.offsets == {"x": 0, "y": 0} and plan.arena_bytes == 64
    assert_valid(plan, p)


def test_not_aliased_when_the_input_is_read_later():
    p = make_program({"x": 64, "a": 64, "y": 64, "z": 64},
                     [(["x"], ["a"]), (["a"], ["y"], 0, {0: 0}), (["a", "y"], ["z"])],
                     ["x"], ["z"])
    plan = plan_memory(p)
    assert plan.inplace == [] and plan.offsets["y"] != plan.offsets["a"]
    assert plan.arena_bytes == plan.lower_bound_bytes
    assert_valid(plan, p)


def test_not_aliased_when_the_input_is_a_graph_output_or_smaller():
    p = make_program({"x": 64, "y": 64}, [(["x"], ["y"], 0, {0: 0})], ["x"], ["x", "y"])
    assert plan_memory(p).inplace == []
    p = make_program({"x": 32, "y": 64}, [(["x"], ["y"], 0, {0: 0})], ["x"], ["y"])
    plan = plan_memory(p)
    assert plan.inplace == [] and plan.arena_bytes == 96


def test_strided_depthwise_in_place_with_a_channel_buffer():
    # NHWC [1,8,8,16] -> stride 2 -> [1,4,4,16]; one input channel (8x8) as scratch
    p = make_program({"x": 64, "d": 1024, "y": 256, "z": 64},
                     [(["x"], ["d"]), (["d"], ["y"], 64, {0: 0}), (["y"], ["z"])],
                     ["x"], ["z"])
    plan = plan_memory(p)
    assert plan.offsets["y"] == plan.offsets["d"]  # the output fills the input's front
    scratch = plan.scratch_offsets[1]
    assert scratch >= plan.offsets["d"] + 1024 or scratch + 64 <= plan.offsets["d"]
    assert plan.lower_bound_bytes == 1024 + 256 + 64  # step 1: d, y, scratch
    assert plan.lower_bound_inplace_bytes == 1024 + 64  # steps 0 and 1: y is inside d
    assert plan.arena_bytes == 1024 + 64
    assert_valid(plan, p)


def test_chain_of_in_place_calls_shares_one_block():
    # conv -> relu (in place) -> requantize (in place): three tensors at one offset
    p = make_program({"x": 48, "a": 256, "b": 256, "c": 256, "y": 16},
                     [(["x"], ["a"]), (["a"], ["b"], 0, {0: 0}), (["b"], ["c"], 0, {0: 0}),
                      (["c"], ["y"])], ["x"], ["y"])
    plan = plan_memory(p)
    assert plan.offsets["a"] == plan.offsets["b"] == plan.offsets["c"]
    assert [a["output"] for a in plan.inplace] == ["b", "c"]
    assert plan.arena_bytes == plan.lower_bound_inplace_bytes == 256 + 48
    assert_valid(plan, p)


def test_order_search_makes_room_for_in_place():
    # x is read by two calls; the in-place one must run last for x to die there
    p = make_program({"x": 512, "a": 512, "b": 16, "y": 16},
                     [(["x"], ["a"], 0, {0: 0}), (["x"], ["b"]), (["a", "b"], ["y"])],
                     ["x"], ["y"])
    plan = plan_memory(p)
    assert plan.order == [1, 0, 2]
    assert plan.inplace == [{"call": 0, "step": 1, "input": "x", "output": "a", "bytes": 512,
                             "shift": 0}]
    assert plan.arena_bytes == 512 + 16 + 16  # step 2: a, b and y
    assert plan.lower_bound_original_bytes == 512 + 512 + 16
    assert_valid(plan, p)


def test_find_overlaps_rejects_a_misplaced_alias():
    p = make_program({"x": 64, "a": 64, "y": 64},
                     [(["x"], ["a"]), (["x", "a"], ["y"], 0, {0: 1})], ["x"], ["y"])
    plan = plan_memory(p)
    y = next(e for e in plan.timeline if e["name"] == "y")
    y["offset"] += 16  # an alias must sit exactly on its input
    assert ("a", "y") in find_overlaps(plan) or ("y", "a") in find_overlaps(plan)


def test_bad_inplace_index_names_the_call():
    p = make_program({"x": 64, "y": 64}, [(["x"], ["y"], 0, {0: 3})], ["x"], ["y"])
    with pytest.raises(EdgecError, match=r"call 'layer0' \(add\) declares inplace \{0: 3\}"):
        plan_memory(p)


def test_partial_overlap_for_a_growing_depthwise():
    # micro_speech: [1,49,40,1] -> depthwise, channel multiplier 8, stride 2 -> [1,25,20,8].
    # Row by row, output row r may overwrite input rows below 2r - 4: 1,760 B of overlap.
    p = make_program({"x": 1960, "r": 1960, "d": 4000, "f": 4, "y": 4},
                     [(["x"], ["r"], 0, {0: 0}),                # reshape, in place
                      (["r"], ["d"], 0, {0: 0}, {0: 1760}),     # the depthwise
                      (["d"], ["f"]), (["f"], ["y"], 0, {0: 0})], ["x"], ["y"])
    plan = plan_memory(p)
    assert plan.lower_bound_bytes == 1960 + 4000  # TFLM's figure for this model
    dw = next(a for a in plan.inplace if a["output"] == "d")
    assert dw["shift"] == -(4000 - 1760) and dw["bytes"] == 1760
    assert plan.offsets["d"] == plan.offsets["r"] - 2240
    assert plan.lower_bound_inplace_bytes == 5960 - 1760
    assert plan.arena_bytes == 4200
    assert_valid(plan, p)


def test_partial_overlap_is_rounded_to_whole_16_bytes():
    p = make_program({"x": 100, "y": 200}, [(["x"], ["y"], 0, {0: 0}, {0: 50})], ["x"], ["y"])
    plan = plan_memory(p)
    (alias,) = plan.inplace
    assert alias["shift"] == -160 and alias["bytes"] == 40  # 150 below -> 160: 40 B shared
    assert plan.offsets["y"] == plan.offsets["x"] - 160 and plan.arena_bytes == 260
    assert_valid(plan, p)
    # overlapping by at least the whole output (no larger than the input) is a full overlap
    p = make_program({"x": 100, "y": 64}, [(["x"], ["y"], 0, {0: 0}, {0: 64})], ["x"], ["y"])
    assert plan_memory(p).inplace[0]["shift"] == 0
