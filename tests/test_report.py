"""Report: required keys, nulls with reasons when stages were skipped, md and summary text."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from edgec.toolchain.build import BuildResult
from edgec.toolchain.emulator import RunResult
from edgec.toolchain.ir import Graph, Tensor
from edgec.toolchain.lower.program import ConstArray, KernelCall, Program
from edgec.toolchain.plan import plan_memory
from edgec.toolchain.report import (
    build_report,
    format_markdown,
    format_summary,
    write_report,
)
from edgec.toolchain.target import load_target

REQUIRED = {
    "memory": ["arena_bytes", "lower_bound_bytes", "stack_bytes", "sram_budget_bytes",
               "sram_total_bytes"],
    "flash": ["weights_bytes", "code_bytes", "total_bytes", "budget_bytes"],
    "latency": ["instructions", "est_ms", "note"],
}


def program() -> Program:
    tensors = {"x": Tensor("x", (1, 8, 8, 4), "int8"), "h": Tensor("h", (1, 8, 8, 8), "int8"),
               "y": Tensor("y", (1, 10), "int8")}
    w = ConstArray("int8_t", np.ones(288, np.int8))
    calls = [
        KernelCall("conv1", "conv2d", "edgec_conv2d_s8", "edgec_conv2d_params", {"w": w},
                   ["x"], ["h"], scratch_bytes=64, macs=18432),
        KernelCall("fc", "gemm", "edgec_fully_connected_s8", "edgec_fc_params", {},
                   ["h"], ["y"], macs=5120),
    ]
    return Program(Graph(tensors, [], ["x"], ["y"]), calls)


def build_result() -> BuildResult:
    return BuildResult(elf=Path("firmware.elf"), flash_code_bytes=3000,
                       flash_weights_bytes=288, flash_total_bytes=3288, ram_static_bytes=1000,
                       stack_reserved_bytes=16384, arena_bytes=832, flash_budget_bytes=1 << 20,
                       sram_budget_bytes=320 * 1024, target="stm32f746", profile=True,
                       linked_for="emulator", map_file=Path("firmware.map"))


def run_result() -> RunResult:
    return RunResult(outputs=np.zeros((2, 10), np.int8), instructions=[216_000, 216_010],
                     stack_bytes=300, layer_instructions=[[200_000, 15_900], [200_005, 15_905]],
                     instructions_per_tick=5.0, stack_reserved_bytes=16384, console="")


def full_report() -> dict:
    p = program()
    return build_report(target=load_target("stm32f746"), program=p, plan=plan_memory(p),
                        build=build_result(), run=run_result(),
                        check={"reference": "golden", "samples": 2, "mismatches": 0,
                               "max_abs_diff": 0},
                        calibration={"source": "generated", "samples": 64},
                        model="nets/tiny.onnx", warnings=["a user warning"])


def test_required_keys_and_values():
    rep = full_report()
    for section, keys in REQUIRED.items():
        for key in keys:
            assert rep[section][key] is not None, f"{section}.{key}"
    mem, lat = rep["memory"], rep["latency"]
    assert mem["arena_bytes"] == 832 and mem["lower_bound_bytes"] == 832
    assert mem["stack_bytes"] == 300
    assert mem["sram_total_bytes"] == 1000 + 16384
    assert mem["static_other_bytes"] == 1000 - 832
    assert rep["flash"]["weights_bytes"] == 288 and rep["flash"]["budget_bytes"] == 1 << 20
    assert lat["instructions"] == 216_010  # the slowest inference
    assert abs(lat["est_ms"] - 216_010 / 216e6 * 1e3) < 1e-12
    assert "estimate" in lat["note"]
    assert [ly["instructions"] for ly in rep["layers"]] == [200_005, 15_905]
    assert rep["layers"][0] | {"instructions": 0} == {
        "index": 0, "call": 0, "name": "conv1", "op": "conv2d", "kernel": "edgec_conv2d_s8",
        "macs": 18432, "output_bytes": 512, "weights_bytes": 288, "scratch_bytes": 64,
        "in_place": False, "instructions": 0}
    assert rep["check"]["mismatches"] == 0
    assert rep["calibration"]["source"] == "generated"
    assert rep["model"]["name"] == "tiny" and rep["model"]["layers"] == 2
    assert rep["target"]["name"] == "stm32f746"
    assert rep["warnings"] == ["a user warning"]
    json.dumps(rep)  # plain JSON types only


def test_write_report_files(tmp_path):
    json_path, md_path = write_report(full_report(), tmp_path)
    assert json.loads(json_path.read_text())["memory"]["arena_bytes"] == 832
    md = md_path.read_text()
    assert "Latency (estimate)" in md and "- Estimate: emulator instruction count" in md
    assert "| 0 | conv1 | conv2d | `edgec_conv2d_s8` |" in md
    assert "PASS" in md


def test_stopped_early_gives_nulls_and_reasons(tmp_path):
    p = program()
    rep = build_report(target=load_target("stm32f746"), program=p, plan=plan_memory(p),
                       model="tiny.onnx", stopped="--no-build")
    assert rep["flash"]["weights_bytes"] is None
    assert rep["flash"]["model_constants_bytes"] == 288
    assert rep["memory"]["stack_bytes"] is None and rep["memory"]["sram_total_bytes"] is None
    assert rep["latency"]["instructions"] is None and rep["latency"]["est_ms"] is None
    assert rep["check"] is None
    assert "instructions" not in rep["layers"][0]
    _, md_path = write_report(rep, tmp_path)
    md = md_path.read_text()
    assert "Not measured: firmware not built (--no-build)" in md
    summary = format_summary(rep)
    assert "firmware not built (--no-build)" in summary

    built_only = build_report(target=load_target("stm32f746"), program=p, plan=plan_memory(p),
                              build=build_result(), stopped="--no-run")
    assert built_only["flash"]["total_bytes"] == 3288
    assert built_only["latency"]["instructions"] is None
    assert "--no-run" in built_only["skipped"]["run"]


def test_stack_warning():
    run = run_result()
    run.stack_bytes = 15_000
    p = program()
    rep = build_report(target=load_target("stm32f746"), program=p, plan=plan_memory(p),
                       build=build_result(), run=run)
    assert any("stack high-water 15000 B" in w for w in rep["warnings"])


def test_summary_is_a_compact_table():
    text = format_summary(full_report())
    head, table = text.split("\n\n")
    lines = head.splitlines()
    assert lines[0] == "tiny -> stm32f746 (Cortex-M7 @ 216 MHz)"
    assert any(ln.strip().startswith("SRAM") and "320.0 KB" in ln for ln in lines)
    assert any(ln.strip().startswith("flash") and "1024.0 KB" in ln for ln in lines)
    assert any("estimate" in ln for ln in lines)
    assert len(lines) <= 8
    rows = table.splitlines()
    assert rows[0].split() == ["#", "layer", "op", "kernel", "MACs", "out", "B", "weights",
                               "B", "instructions", "%"]
    assert rows[1].split() == ["0", "conv1", "conv2d", "edgec_conv2d_s8", "18,432", "512",
                               "288", "200,005", "92.6"]
    assert rows[-1].split() == ["total", "2", "layers", "23,552", "288", "215,910", "100.0"]
    assert format_summary(full_report(), layers=False) == head


def big_report(layers: int, profiled: bool) -> dict:
    names = {f"t{i}": Tensor(f"t{i}", (1, 64), "int8") for i in range(layers + 1)}
    calls = [KernelCall(f"/backbone/stage{i}/block/pointwise/Gemm", "gemm",
                        "edgec_fully_connected_s8",
                        "edgec_fc_params", {}, [f"t{i}"], [f"t{i + 1}"], macs=1000 + i)
             for i in range(layers)]
    p = Program(Graph(names, [], ["t0"], [f"t{layers}"]), calls)
    run = None
    if profiled:
        per = [5000 + 10 * i for i in range(layers)]
        run = RunResult(outputs=np.zeros((1, 64), np.int8), instructions=[sum(per)],
                        stack_bytes=300, layer_instructions=[per], instructions_per_tick=5.0,
                        stack_reserved_bytes=16384, console="")
    return build_report(target=load_target("stm32f746"), program=p, plan=plan_memory(p),
                        build=build_result() if profiled else None, run=run)


def test_summary_of_a_large_model_shows_the_heaviest_layers():
    for profiled in (False, True):
        text = format_summary(big_report(60, profiled))
        rows = text.split("\n\n")[1].splitlines()
        assert len(rows) == 1 + 24 + 2  # header, the 24 heaviest, "not shown", total
        shown = [int(r.split()[0]) for r in rows[1:25]]
        assert shown == list(range(36, 60))  # the heaviest, in execution order
        assert "(36 lighter layers not shown: " in rows[25]
        assert rows[-1].split()[:3] == ["total", "60", "layers"]
        assert max(len(r) for r in rows) <= 120
        assert " /backbone/stag~/pointwise/Gemm " in text  # long names keep both ends


def test_plan_facts_in_the_report():
    rep = full_report()
    mem = rep["memory"]
    assert mem["order_method"] in ("exact", "original") and mem["order_changed"] is False
    assert mem["placement_method"] == "greedy" and mem["gap_bytes"] == 0
    names = {e["name"] for e in mem["timeline"]}
    assert names == {"x", "h", "y", "conv1:scratch"}
    assert all({"first", "last", "offset", "bytes", "kind"} <= set(e) for e in mem["timeline"])
    md = format_markdown(rep)
    assert "Planned in the layer order with the smallest peak (proven)" in md


MAP = """\
Memory Configuration
Linker script and memory map

.vectors        0x00000000       0x40
 .vectors       0x00000000       0x40 obj/harness__startup.o
.text           0x00000040      0x200
 .text.edgec_model_run
                0x00000040       0x80 obj/model__edgec_model.o
 .text.edgec_conv2d_s8
                0x000000c0      0x100 obj/model__conv2d_s8.o
 *fill*         0x000001c0        0x4 
 .text          0x000001c4       0x7c /usr/lib/libc.a(lib_a-memcpy.o)
.edgec_weights  0x00000240      0x120
 .rodata.edgec_weights
                0x00000240      0x120 obj/model__edgec_model.o
.rodata         0x00000360       0x40
 .rodata.edgec_l000_conv1_params
                0x00000360       0x40 obj/model__edgec_model.o
.stack          0x20000000     0x4000
 *fill*         0x20000000     0x4000 
.data           0x20004000        0x8 load address 0x000003a0
 .data.x        0x20004000        0x8 obj/harness__main.o
.bss            0x20004010      0x890 load address 0x000003a8
 .bss.arena     0x20004010      0x890 obj/model__edgec_model.o
.debug_info     0x00000000      0x7b2
 .debug_info    0x00000000      0x7b2 obj/model__edgec_model.o
"""


def test_code_breakdown_from_the_linker_map(tmp_path):
    (tmp_path / "firmware.map").write_text(MAP)
    build = build_result()
    build.map_file = tmp_path / "firmware.map"
    build.flash_code_bytes = 0x40 + 0x200 + 0x40 + 0x8
    rep = build_report(target=load_target("stm32f746"), program=program(), build=build)
    assert rep["flash"]["code_breakdown"] == {
        "model": 0x80 + 0x40, "kernels": 0x100, "runtime": 0x40 + 0x4 + 0x7c + 0x8}
    build.map_file = tmp_path / "missing.map"
    assert build_report(target=load_target("stm32f746"), program=program(),
                        build=build)["flash"]["code_breakdown"] is None


def test_bounds_with_and_without_scratch():
    """conv1 runs with x (256 B), h (512 B) and its 64 B scratch live: 768 B of
    activations, 832 B with the scratch; all three outputs show both."""
    rep = full_report()
    mem = rep["memory"]
    assert mem["lower_bound"] == 768 and mem["lower_bound_with_scratch"] == 832
    assert mem["lower_bound_with_scratch"] == mem["lower_bound_bytes"]
    md = format_markdown(rep)
    assert "| arena lower bound (live activation bytes at the busiest layer) | 768 |" in md
    assert "| arena lower bound with the kernels' scratch | 832 |" in md
    from edgec.toolchain.report_html import render_html
    html = render_html(rep)
    assert "768 B" in html and "832 B" in html
    assert "(bound 0.8 KB, 0.8 KB with scratch)" in format_summary(rep)


def test_report_command_reprints_the_summary_and_regenerates_the_html(tmp_path, capsys):
    from conftest import edgec
    from edgec.toolchain.report_html import render_html
    rep = full_report()
    write_report(rep, tmp_path)
    (tmp_path / "report.html").unlink()
    assert edgec("report", tmp_path) == 0
    out = capsys.readouterr().out
    assert out.startswith(format_summary(json.loads(json.dumps(rep))) + "\n")
    assert "conv1" in out and "200,005" in out and "512" in out  # layer, instructions, bytes
    assert (tmp_path / "report.html").read_text() == render_html(rep)
    assert f"wrote {tmp_path / 'report.html'}" in out


def test_report_command_rejects_a_broken_report_json(tmp_path, capsys):
    from conftest import edgec
    (tmp_path / "report.json").write_text("{not json")
    assert edgec("report", tmp_path) != 0
    err = [ln for ln in capsys.readouterr().err.splitlines() if ln.strip()]
    assert len(err) == 1 and "is not valid JSON" in err[0] and "edgec compile" in err[0]
    assert not (tmp_path / "report.html").exists()
    (tmp_path / "report.json").write_text('{"model": {}}')
    assert edgec("report", tmp_path) != 0
    err = [ln for ln in capsys.readouterr().err.splitlines() if ln.strip()]
    assert len(err) == 1 and "lacks a field" in err[0]
    assert not (tmp_path / "report.html").exists()
