"""Zero-copy concatenation (toolchain/plan/views.py): producers write straight into their
slice of a concat output along the outermost non-trivial axis; the concat runs no code.
Checked on QEMU against the golden model, and the arena against concat=False."""
from __future__ import annotations

import numpy as np
import pytest
from edgec.codegen import emit_sources
from edgec.toolchain.golden import run_program
from edgec.toolchain.lower import lower
from edgec.toolchain.plan import find_overlaps, plan_memory
from edgec.toolchain.plan.views import concat_slices
from edgec.toolchain.target import load_target
from kernel_cases import GraphBuilder, _mix, make_inputs
from test_plan import assert_topological, make_program

META = {"model": "concat", "model_sha256": "0" * 64, "target": "stm32f746",
        "command": "tests/test_plan_concat.py"}
Q_IN, Q_CAT = (0.05, 3), (0.06, -2)


def nested_concat_program():
    """x -> a, b, c (1x1 mixes with the concat's quant); y = concat(a, b) along H,
    z = concat(y, c) along H (nested: both elided), then a 2x2 max pool shrinks it."""
    b = GraphBuilder(np.random.default_rng(5))
    x = b.input("x", (1, 4, 4, 3), *Q_IN)
    parts = [_mix(b, x, Q_IN, Q_CAT, name) for name in ("a", "b", "c")]
    y = b.node("concat", parts[:2], {"axis": 1}, out_quant=Q_CAT, name="y")
    z = b.node("concat", [y, parts[2]], {"axis": 1}, out_quant=Q_CAT, name="z")
    out = b.node("max_pool2d", [z], {"kernel": (2, 2), "strides": (2, 2),
                                     "pads": (0, 0, 0, 0)}, out_quant=Q_CAT, name="pool")
    graph = b.graph(out)
    return lower(graph), make_inputs(graph, 5)


def test_slices_share_the_output_bytes_and_the_arena_shrinks():
    program, _ = nested_concat_program()
    plan = plan_memory(program)
    calls = {c.name: i for i, c in enumerate(program.calls)}
    assert plan.zero_copy == {calls["y"]: [0, 48], calls["z"]: [0, 96]}
    off = plan.offsets
    assert off["y_out"] == off["z_out"]
    assert (off["a_out"], off["b_out"], off["c_out"]) == (off["z_out"], off["z_out"] + 48,
                                                           off["z_out"] + 96)
    names = {e["name"] for e in plan.timeline}
    assert {"a_out", "b_out", "c_out", "y_out"}.isdisjoint(names) and "z_out" in names
    assert find_overlaps(plan) == []
    assert_topological(plan.execution_order(len(program.calls)), program)
    plain = plan_memory(program, concat=False)
    assert plain.zero_copy == {}
    # with copies, a, b, c and the 144 B output live together; here x and z (48 + 144)
    assert plan.arena_bytes == 192 < plain.arena_bytes


@pytest.fixture(scope="module")
def firmware(tmp_path_factory):
    from edgec.toolchain.build import build_firmware
    program, inputs = nested_concat_program()
    plan = plan_memory(program)
    src = tmp_path_factory.mktemp("concat") / "src"
    emit_sources(program, plan, src, META)
    return program, plan, inputs, build_firmware(src, load_target("stm32f746"), src.parent)


def test_firmware_with_zero_copy_concat_equals_golden(firmware):
    from edgec.toolchain.emulator import run_firmware
    program, _, inputs, fw = firmware
    text = (fw.elf.parent / "src" / "edgec_model.c").read_text()
    assert "edgec_concat_s8" not in text and text.count("written into their slices") == 2
    g = program.graph
    samples = inputs[g.inputs[0]]
    res = run_firmware(fw.elf, load_target("stm32f746"), samples.reshape(len(samples), -1),
                       g.tensors[g.outputs[0]].nbytes, timeout_s=60)
    for s in range(len(samples)):
        want = run_program(program, {g.inputs[0]: samples[s]})[g.outputs[0]].reshape(-1)
        bad = np.flatnonzero(res.outputs[s] != want)
        assert bad.size == 0, f"sample {s}: {bad.size} values differ, first at {bad[0]}"


def _concat_graph(axis: int, parts_q: list, with_input: bool = False):
    b = GraphBuilder(np.random.default_rng(1))
    x = b.input("x", (1, 2, 2, 4), *Q_IN)
    parts = [_mix(b, x, Q_IN, q, f"m{k}") for k, q in enumerate(parts_q)]
    if with_input:
        parts.append(x)
    return lower(b.graph(b.node("concat", parts, {"axis": axis}, out_quant=Q_CAT,
                                name="cat")))


@pytest.mark.parametrize("axis,parts_q,with_input,elided", [
    (1, [Q_CAT, Q_CAT], False, True),
    (3, [Q_CAT, Q_CAT], False, False),  # channels: strided slices, the copy stays
    (2, [Q_CAT, Q_CAT], False, False),  # W with H > 1: strided too
    (1, [Q_CAT, (0.1, 7)], False, False),  # an input is requantized
    (1, [Q_IN], True, False),  # a graph input cannot be written by a producer
])
def test_only_contiguous_identity_concats_of_produced_tensors(axis, parts_q, with_input,
                                                              elided):
    program = _concat_graph(axis, parts_q, with_input)
    assert bool(concat_slices(program)) is elided
    assert bool(plan_memory(program).zero_copy) is elided


def test_a_view_of_a_producer_becomes_a_slice():
    """c = concat(a, reshape(p)): p's buffer is placed in c, so its reader (the view)
    finds it there; a tensor read twice by one concat is not sliced."""
    from edgec.toolchain.lower.program import ConstArray, KernelCall
    p = make_program({"x": 16, "a": 16, "p": 16, "v": 16, "c": 32, "y": 32},
                     [(["x"], ["a"]), (["x"], ["p"]), (["p"], ["v"]), (["a", "v"], ["c"]),
                      (["c"], ["y"])], ["x"], ["y"])
    p.calls[2] = KernelCall("view", "reshape", "", "", {}, ["p"], ["v"], view=True)
    fields = {"outer_size": 1, "output_offset": 0}
    for k, v in (("multiplier", 1 << 30), ("shift", 1), ("input_offset", 0)):
        fields[k] = ConstArray("int32_t", np.array([v, v], np.int32))
    p.calls[3] = KernelCall("cat", "concat", "edgec_concat_s8", "edgec_concat_params", fields,
                            ["a", "v"], ["c"], input_array=True)
    plan = plan_memory(p)
    assert plan.zero_copy == {3: [0, 16]}
    assert plan.offsets["p"] == plan.offsets["v"] == plan.offsets["c"] + 16
    assert plan.offsets["a"] == plan.offsets["c"]
    assert find_overlaps(plan) == []
    p.calls[3].inputs = ["a", "a"]
    assert concat_slices(p) == {}


def test_report_names_the_zero_copy_concats():
    from edgec.toolchain.report import build_report, format_markdown
    program, _ = nested_concat_program()
    rep = build_report(target=load_target("stm32f746"), program=program,
                       plan=plan_memory(program), model="concat.onnx", stopped="--no-build")
    assert [z["name"] for z in rep["memory"]["zero_copy"]] == ["y", "z"]
    assert "2 concatenations copy nothing" in format_markdown(rep)
