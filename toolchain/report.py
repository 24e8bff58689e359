"""The compile report: report.json (for tools), report.md and report.html (for people), a
terminal summary.

    rep = build_report(target=..., program=..., plan=..., build=..., run=..., check=...,
                       calibration=..., fidelity=..., model=..., warnings=[...], stopped=...)
    write_report(rep, out_dir)        # report.json + report.md + report.html
    print(format_summary(rep))

Layers are listed in execution order (the plan's order, which is the order codegen emits and
the profiler counts): `layers[k]["index"]` is the step k, `layers[k]["call"]` the index into
program.calls. `memory.timeline` is the plan's timeline (first/last are steps), for the
memory plot of report.html.

Every stage result but the target may be None (the user stopped early with --no-build or
--no-run, or the caller has no check): the keys that need it are then null, and report.md
says why. Sizes are bytes, latency is in instructions; `latency.est_ms` is an estimate at
one instruction per cycle, labelled so in both files.
"""
from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from .build import BuildResult
from .emulator import RunResult
from .lower.program import Program
from .plan.arena import Plan
from .plan.patch import const_bytes_per_call, unique_const_bytes
from .target import Target

LATENCY_NOTE = ("estimate: emulator instruction count / core clock, assuming 1 instruction "
                "per cycle; real cycles differ (flash wait states, caches, multi-cycle "
                "loads and MACs, dual issue)")
STACK_WARN_FRACTION = 0.75  # warn when the measured stack uses more of the reservation
FULL_WARN_FRACTION = 0.90  # warn when SRAM or flash is fuller


def build_report(*, target: Target, program: Program | None = None, plan: Plan | None = None,
                 build: BuildResult | None = None, run: RunResult | None = None,
                 check: dict | None = None, calibration: dict | None = None,
                 fidelity: dict | None = None, model: str | dict | None = None,
                 warnings: Sequence[str] = (), stopped: str | None = None,
                 patch: dict | None = None, precision: dict | None = None) -> dict:
    """Collect what the stages produced into one JSON-ready dict (see module doc).

    model: the model file name, or a dict of facts about it (name, source, sha256 ...).
    stopped: why the pipeline stopped early ("--no-build", "--no-run"), for the md.
    patch: PatchChoice.report() when the first layers run stripe by stripe (plan/patch.py).
    precision: PrecisionReport.as_dict() (quantize/precision.py) for a float source.
    """
    warns = list(warnings)
    if precision and precision.get("fidelity") is not None and \
            precision["fidelity"] < precision["goal"]:
        warns.append(f"quantized model reaches cosine {precision['fidelity']:.4f} on the "
                     f"calibration samples, below the goal {precision['goal']} even with every "
                     f"int16 candidate; check the calibration data or train longer")
    skipped = _skipped(build, run, stopped)
    report: dict[str, Any] = {
        "model": _model_info(model, program),
        "target": {
            "name": target.name, "description": target.description, "core": target.core,
            "fpu": target.fpu, "dsp": target.dsp, "clock_hz": target.clock_hz,
            "emulator": target.qemu_machine,
        },
        "calibration": calibration,
        "memory": _memory(target, plan, program, build, run, warns),
        "patch": patch,
        "flash": _flash(target, program, build, warns),
        "latency": _latency(target, run),
        "layers": _layers(program, plan, run, warns),
        "check": _check(check),
        "fidelity": fidelity,
        "precision": precision,
        "skipped": skipped,
        "warnings": warns,
    }
    return _jsonable(report)


def write_report(report: dict, out_dir: str | Path) -> tuple[Path, Path]:
    """Write report.json, report.md and report.html into out_dir; return the first two
    paths (report.html sits beside them)."""
    from .report_html import write_html_report
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    json_path, md_path = out / "report.json", out / "report.md"
    json_path.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    md_path.write_text(format_markdown(report), encoding="utf-8")
    write_html_report(report, out)
    return json_path, md_path


# ---- sections ----------------------------------------------------------------------------

def _skipped(build: BuildResult | None, run: RunResult | None,
             stopped: str | None) -> dict[str, str]:
    skipped = {}
    if build is None:
        skipped["build"] = f"firmware not built ({stopped or 'build skipped'})"
    if run is None:
        reason = stopped or "run skipped"
        skipped["run"] = (f"firmware not run on the emulator ({reason})" if build is not None
                          else f"firmware not built, so not run ({reason})")
    return skipped


def _model_info(model: str | dict | None, program: Program | None) -> dict:
    info: dict[str, Any] = dict(model) if isinstance(model, dict) else {}
    if isinstance(model, (str, Path)):
        info["source"] = str(model)
        info["name"] = Path(str(model)).stem
    if program is not None:
        graph = program.graph

        def io(names: list[str]) -> list[dict]:
            return [{"name": n, "shape": list(graph.tensors[n].shape),
                     "dtype": graph.tensors[n].dtype} for n in names]
        info.setdefault("name", str(graph.meta.get("name", "model")))
        info["layers"] = len(program.calls)
        info["macs"] = sum(c.macs for c in program.calls)
        info["inputs"] = io(graph.inputs)
        info["outputs"] = io(graph.outputs)
    return info


def _memory(target: Target, plan: Plan | None, program: Program | None,
            build: BuildResult | None, run: RunResult | None, warns: list[str]) -> dict:
    arena = plan.arena_bytes if plan is not None else None
    mem: dict[str, Any] = {
        "arena_bytes": arena,
        "lower_bound_bytes": plan.lower_bound_bytes if plan is not None else None,
        # the layer-wise bound of activations alone (anchors.md), and with the kernels'
        # scratch buffers (= lower_bound_bytes), both in the chosen order
        "lower_bound": plan.lower_bound_activations_bytes if plan is not None else None,
        "lower_bound_with_scratch": plan.lower_bound_bytes if plan is not None else None,
        "naive_bytes": plan.naive_bytes if plan is not None else None,
        **_plan_facts(plan, program),
        "stack_bytes": run.stack_bytes if run is not None else None,
        "stack_reserved_bytes": build.stack_reserved_bytes if build else target.stack_bytes,
        "static_other_bytes": None,
        "sram_budget_bytes": target.sram_bytes,
        "sram_total_bytes": None,
        "note": ("sram_total_bytes = static RAM (.data + .bss: the arena and other static "
                 "data) + the reserved stack; stack_bytes is the measured high-water"),
    }
    if build is not None:
        other = build.ram_static_bytes - (arena or 0)
        mem["static_other_bytes"] = other
        mem["sram_total_bytes"] = build.ram_static_bytes + build.stack_reserved_bytes
        if build.arena_bytes is not None and arena is not None and build.arena_bytes < arena:
            warns.append(f"EDGEC_ARENA_SIZE in edgec_model.h is {build.arena_bytes} B but the "
                         f"plan needs {arena} B")
        if mem["sram_total_bytes"] > FULL_WARN_FRACTION * target.sram_bytes:
            warns.append(f"SRAM {_pct(mem['sram_total_bytes'], target.sram_bytes)} full "
                         f"({mem['sram_total_bytes']} of {target.sram_bytes} B)")
    if run is not None:
        reserved = mem["stack_reserved_bytes"]
        if run.stack_bytes >= reserved:
            warns.append(f"stack overflowed: the high-water mark reached all {reserved} B "
                         f"reserved; raise placement.stack_bytes in the target file")
        elif run.stack_bytes > STACK_WARN_FRACTION * reserved:
            warns.append(f"stack high-water {run.stack_bytes} B is "
                         f"{_pct(run.stack_bytes, reserved)} of the {reserved} B reserved")
    return mem


def _plan_facts(plan: Plan | None, program: Program | None) -> dict:
    """How the arena was planned: bounds, order, placement method, gap, the timeline."""
    if plan is None:
        return {"lower_bound_original_bytes": None, "lower_bound_inplace_bytes": None,
                "lower_bound_any_order_bytes": None, "order_method": None,
                "order_changed": None, "placement_method": None,
                "greedy_arena_bytes": None, "placement_note": None, "gap_bytes": None,
                "gap_reason": None, "inplace": [], "zero_copy": [], "timeline": []}
    n = len(program.calls) if program is not None else None
    order = plan.execution_order(n) if n is not None else plan.order
    return {
        "lower_bound_original_bytes": plan.lower_bound_original_bytes,
        "lower_bound_inplace_bytes": plan.lower_bound_inplace_bytes,
        "lower_bound_any_order_bytes": plan.lower_bound_any_order_bytes,
        "order_method": plan.order_method,
        "order_changed": order is not None and order != list(range(len(order))),
        "placement_method": plan.method,
        "greedy_arena_bytes": plan.greedy_arena_bytes,
        "placement_note": plan.placement_note,
        "gap_bytes": plan.gap_bytes,
        "gap_reason": plan.gap_reason,
        "inplace": [dict(a) for a in plan.inplace],
        # concats whose inputs were written straight into the output (no copy, no code)
        "zero_copy": [{"call": i, "name": program.calls[i].name if program else None,
                       "input_offsets": list(starts)}
                      for i, starts in sorted(plan.zero_copy.items())],
        # {"name", "kind", "first", "last", "offset", "bytes", "alias_of"[, "call"]}
        "timeline": [dict(e) for e in plan.timeline],
    }


def _flash(target: Target, program: Program | None, build: BuildResult | None,
           warns: list[str]) -> dict:
    flash: dict[str, Any] = {
        "weights_bytes": build.flash_weights_bytes if build else None,
        "code_bytes": build.flash_code_bytes if build else None,
        "total_bytes": build.flash_total_bytes if build else None,
        "budget_bytes": target.flash_bytes,
        # constant tables of the lowered model, known before any build
        "model_constants_bytes": (unique_const_bytes(program)  # stripes share tables
                                  if program is not None else None),
        # code_bytes split by the linker map: generated model code and its parameter
        # structs, the kernels, the runtime (harness, startup, libc, libgcc, padding)
        "code_breakdown": _code_breakdown(build) if build is not None else None,
    }
    if build is not None and flash["total_bytes"] > FULL_WARN_FRACTION * target.flash_bytes:
        warns.append(f"flash {_pct(flash['total_bytes'], target.flash_bytes)} full")
    return flash


_MAP_OUTPUT = re.compile(r"^(\.\S+)(?:\s+0x([0-9a-f]+)\s+0x([0-9a-f]+)(.*))?$")
_MAP_INPUT = re.compile(r"^ (\.\S+|\*fill\*|COMMON)(?:\s+0x([0-9a-f]+)\s+0x([0-9a-f]+)"
                        r"(?:\s+(\S.*))?)?$")
_MAP_WRAPPED = re.compile(r"^\s+0x([0-9a-f]+)\s+0x([0-9a-f]+)\s+(\S.*)$")
# the flash output sections of targets/cortex_m.ld.j2 but the weights (.data: its load image)
_FLASH_SECTIONS = {".vectors", ".text", ".rodata", ".ARM.extab", ".ARM.exidx", ".data"}


def _code_breakdown(build: BuildResult) -> dict | None:
    """{"model", "kernels", "runtime"} bytes of flash_code_bytes, from the GNU ld map."""
    try:
        text = Path(build.map_file).read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None
    start = text.find("Linker script and memory map")
    if start < 0:
        return None
    parts = {"model": 0, "kernels": 0, "runtime": 0}
    in_flash, pending = False, False
    for line in text[start:].splitlines():
        line = line.rstrip()
        out = _MAP_OUTPUT.match(line)
        if out:
            in_flash, pending = out.group(1) in _FLASH_SECTIONS, False
            continue
        if not in_flash:
            continue
        entry = _MAP_INPUT.match(line)
        if entry and entry.group(2) is None:
            pending = True  # a long section name; address, size and file on the next line
            continue
        if entry:
            size, where = int(entry.group(3), 16), entry.group(4) or ""
        elif pending and _MAP_WRAPPED.match(line):
            m = _MAP_WRAPPED.match(line)
            size, where = int(m.group(2), 16), m.group(3)
        else:
            continue
        pending = False
        name = Path(where.split("(")[0]).name
        if name.startswith("model__edgec_model"):
            parts["model"] += size
        elif name.startswith("model__"):
            parts["kernels"] += size
        else:
            parts["runtime"] += size
    if not any(parts.values()):
        return None
    # the map's input sections miss a few bytes of alignment: give them to the runtime
    parts["runtime"] += max(build.flash_code_bytes - sum(parts.values()), 0)
    return parts


def _latency(target: Target, run: RunResult | None) -> dict:
    lat: dict[str, Any] = {"instructions": None, "instructions_min": None,
                           "instructions_mean": None, "est_ms": None,
                           "clock_hz": target.clock_hz, "instructions_per_tick": None,
                           "samples": None, "note": LATENCY_NOTE}
    if run is not None and run.instructions:
        worst = max(run.instructions)
        lat.update(instructions=worst, instructions_min=min(run.instructions),
                   instructions_mean=float(np.mean(run.instructions)),
                   est_ms=worst / target.clock_hz * 1e3,
                   instructions_per_tick=run.instructions_per_tick,
                   samples=len(run.instructions))
    return lat


def _layers(program: Program | None, plan: Plan | None, run: RunResult | None,
            warns: list[str]) -> list[dict]:
    if program is None:
        return []
    per_layer = None
    if run is not None and run.layer_instructions:
        # the layers of the slowest inference, so that they add up to latency.instructions
        slowest = int(np.argmax(run.instructions))
        per_layer = run.layer_instructions[slowest]
        if len(per_layer) != len(program.calls):
            warns.append(f"profile has {len(per_layer)} layers but the program "
                         f"{len(program.calls)}; per-layer instructions left out")
            per_layer = None
    order = plan.execution_order(len(program.calls)) if plan is not None else \
        list(range(len(program.calls)))
    inplace = {a["call"] for a in plan.inplace} if plan is not None else set()
    weights = const_bytes_per_call(program, order)  # stripes of a layer share tables
    layers = []
    for step, i in enumerate(order):  # execution order: the order of the profile too
        call = program.calls[i]
        entry: dict[str, Any] = {
            "index": step, "call": i, "name": call.name, "op": call.op, "kernel": call.kernel,
            "macs": call.macs,
            "output_bytes": sum(program.graph.tensors[t].nbytes for t in call.outputs),
            "weights_bytes": weights[i], "scratch_bytes": call.scratch_bytes,
            "in_place": i in inplace,
        }
        if per_layer is not None:
            entry["instructions"] = per_layer[step]
        layers.append(entry)
    return layers


def _check(check: dict | None) -> dict | None:
    if check is None:
        return None
    out = dict(check)
    for key in ("reference", "samples", "mismatches", "max_abs_diff"):
        out.setdefault(key, None)
    return out


# ---- text --------------------------------------------------------------------------------

def format_markdown(report: dict) -> str:
    m, t = report["model"], report["target"]
    mem, flash, lat = report["memory"], report["flash"], report["latency"]
    skipped = report.get("skipped", {})
    lines = [f"# edgec report: {m.get('name', 'model')} on {t['name']}", "",
             f"- Model: {m.get('source', m.get('name', '?'))}"
             + (f", {m['layers']} layers, {m['macs']:,} MACs" if "layers" in m else ""),
             f"- Target: {t['description']} (emulated on QEMU {t['emulator']})"]
    calib = report.get("calibration")
    if calib:
        lines.append(f"- Calibration: {calib.get('source', '?')}"
                     + (f", {calib['samples']} samples" if "samples" in calib else ""))
    for why in skipped.values():
        lines.append(f"- Not measured: {why}")

    lines += ["", "## SRAM", "", "| | bytes |", "|---|---:|",
              f"| arena (planned) | {_n(mem['arena_bytes'])} |",
              (f"| arena lower bound (live activation bytes at the busiest layer) | "
               f"{_n(mem.get('lower_bound'))} |"),
              (f"| arena lower bound with the kernels' scratch | "
               f"{_n(mem['lower_bound_bytes'])} |"),
              f"| arena without reuse | {_n(mem.get('naive_bytes'))} |",
              *(["| lower bound in the model's own layer order | "
                 + f"{_n(mem['lower_bound_original_bytes'])} |"]
                if mem.get("order_changed") else []),
              *(["| lower bound with in-place layers sharing bytes | "
                 + f"{_n(mem['lower_bound_inplace_bytes'])} |"] if mem.get("inplace") else []),
              f"| other static data (.data + .bss) | {_n(mem['static_other_bytes'])} |",
              f"| stack reserved | {_n(mem['stack_reserved_bytes'])} |",
              f"| stack high-water (measured) | {_n(mem['stack_bytes'])} |",
              f"| **total (static + stack reserved)** | **{_n(mem['sram_total_bytes'])}** |",
              f"| budget | {_n(mem['sram_budget_bytes'])} |"]
    if mem["sram_total_bytes"] is None:
        lines += ["", f"Total not known: {skipped.get('build', 'no firmware')}."]
    if mem.get("placement_method"):
        lines += ["", _plan_sentence(mem)]
    patch = report.get("patch")
    if patch:
        lines += ["", f"Patch-based execution: the first {patch['layers_striped']} layers (up "
                      f"to '{patch['split_layer']}') run in {patch['stripes']} row stripes"
                      + (f", each fed at once to '{patch['into_layer']}' (int32 sums, "
                         "requantized once)" if patch.get("into_layer") else "") + "; "
                      f"arena {_n(patch['arena_plain_bytes'])} B without stripes, "
                      f"{_n(patch['arena_patched_bytes'])} B with; "
                      f"{patch['macs_extra']:,} extra MACs "
                      f"({patch['macs_extra_percent']:.2f} %) recompute the halo rows."]
    lines += ["", "## Flash", "", "| | bytes |", "|---|---:|",
              f"| weights (.rodata.edgec_weights) | {_n(flash['weights_bytes'])} |",
              f"| code and other constants | {_n(flash['code_bytes'])} |",
              *(f"| &nbsp;&nbsp;{label} | {_n(flash['code_breakdown'][key])} |"
                for key, label in (("model", "generated model code"), ("kernels", "kernels"),
                                   ("runtime", "runtime (harness, startup, libc)"))
                if flash.get("code_breakdown")),
              f"| **total** | **{_n(flash['total_bytes'])}** |",
              f"| budget | {_n(flash['budget_bytes'])} |"]
    if flash["total_bytes"] is None:
        lines += ["", f"Not known: {skipped.get('build', 'no firmware')}; the model's "
                      f"constant tables are {_n(flash.get('model_constants_bytes'))} B."]
    lines += ["", "## Latency (estimate)", ""]
    if lat["instructions"] is None:
        lines.append(f"Not measured: {skipped.get('run', 'no emulator run')}.")
    else:
        lines += [f"- Instructions per inference: {lat['instructions']:,} (slowest of "
                  f"{lat['samples']}; fastest {lat['instructions_min']:,})",
                  f"- **Estimated {lat['est_ms']:.3f} ms** at {lat['clock_hz'] / 1e6:g} MHz",
                  f"- {lat['note'][0].upper()}{lat['note'][1:]}."]
    layers = report.get("layers") or []
    if layers:
        profiled = any("instructions" in ly for ly in layers)
        head = "| # | layer | op | kernel | MACs | output B | weights B |"
        rule = "|---:|---|---|---|---:|---:|---:|"
        if profiled:
            head += " instructions | share |"
            rule += "---:|---:|"
        lines += ["", "## Layers", "", head, rule]
        total = sum(ly.get("instructions", 0) for ly in layers) or 1
        for ly in layers:
            row = (f"| {ly['index']} | {ly['name']} | {ly['op']} | `{ly['kernel']}` | "
                   f"{ly['macs']:,} | {ly['output_bytes']:,} | {ly['weights_bytes']:,} |")
            if profiled:
                n = ly.get("instructions", 0)
                row += f" {n:,} | {_pct(n, total)} |"
            lines.append(row)
        if not profiled:
            lines += ["", "Per-layer instructions: compile with --profile."]
    lines += ["", "## Check", ""]
    chk = report.get("check")
    if chk is None:
        lines.append(f"Not checked: {skipped.get('run', 'no emulator run')}.")
    else:
        verdict = "PASS" if chk.get("mismatches") == 0 else "FAIL"
        lines.append(f"- {verdict}: firmware vs {chk['reference']}: {chk['samples']} samples, "
                     f"{chk['mismatches']} mismatching values, max |diff| {chk['max_abs_diff']}")
        for part in (chk, chk.get("litert") or {}):
            for out in part.get("outputs") or []:
                lines.append(f"  - output '{out['name']}' vs {part['reference']}: "
                             f"{out['mismatches']} mismatching values, max |diff| "
                             f"{out['max_abs_diff']}")
    fid = report.get("fidelity")
    if fid:
        lines.append(f"- vs {fid.get('reference', 'float model')}: "
                     + ", ".join(f"{k} {v:.4f}" if isinstance(v, float) else f"{k} {v}"
                                 for k, v in fid.items() if k != "reference"))
    prec = report.get("precision")
    if prec and prec.get("candidates"):
        promoted = [c["tensor"] for c in prec["candidates"] if c["promoted"]]
        lines.append(f"- precision ({prec['mode']}): {len(promoted)} of "
                     f"{len(prec['candidates'])} attention probability tensors at int16"
                     + (f"; simulated cosine {prec['int8_fidelity']:.4f} at int8 -> "
                        f"{prec['fidelity']:.4f} (goal {prec['goal']})"
                        if prec.get("fidelity") is not None else ""))
    warns = report.get("warnings") or []
    if warns:
        lines += ["", "## Warnings", ""] + [f"- {w}" for w in warns]
    return "\n".join(lines) + "\n"


def _plan_sentence(mem: dict) -> str:
    order = {"original": "the model's own layer order",
             "exact": "the layer order with the smallest peak (proven)",
             "heuristic": "a layer order found by heuristic search (not proven minimal)"}
    text = (f"Planned in {order.get(mem['order_method'], mem['order_method'])}"
            + (" (layers reordered)" if mem.get("order_changed") else "")
            + f", placement by {mem['placement_method']} ({mem['placement_note']}).")
    if mem.get("inplace"):
        shared = sum(a["bytes"] for a in mem["inplace"])
        text += f" {len(mem['inplace'])} layers run in place ({shared:,} B shared)."
    if mem.get("zero_copy"):
        text += (f" {len(mem['zero_copy'])} concatenations copy nothing: their inputs are "
                 f"written into the output.")
    if mem.get("gap_bytes"):
        text += f" The arena is {mem['gap_bytes']:,} B above the bound: {mem['gap_reason']}."
    return text


MAX_SUMMARY_LAYERS = 24  # larger models show their heaviest layers only


def format_summary(report: dict, layers: bool = True) -> str:
    """A compact table for the terminal: budgets, then one line per layer (the heaviest
    MAX_SUMMARY_LAYERS of larger models) and totals."""
    m, t = report["model"], report["target"]
    mem, flash, lat = report["memory"], report["flash"], report["latency"]
    rows = [("SRAM", _kb(mem["sram_total_bytes"]), _kb(mem["sram_budget_bytes"]),
             _pct(mem["sram_total_bytes"], mem["sram_budget_bytes"]),
             f"arena {_kb(mem['arena_bytes'])} (bound {_kb(mem.get('lower_bound'))}, "
             f"{_kb(mem['lower_bound_bytes'])} with scratch), stack "
             + (f"{_kb(mem['stack_bytes'])} used of " if mem["stack_bytes"] is not None else "")
             + f"{_kb(mem['stack_reserved_bytes'])} reserved"),
            ("flash", _kb(flash["total_bytes"]), _kb(flash["budget_bytes"]),
             _pct(flash["total_bytes"], flash["budget_bytes"]),
             f"weights {_kb(flash['weights_bytes'])}, code {_kb(flash['code_bytes'])}")]
    lines = [f"{m.get('name', 'model')} -> {t['name']} ({t['core']} @ "
             f"{t['clock_hz'] / 1e6:g} MHz)",
             f"  {'':6s} {'used':>10s} {'budget':>10s}"]
    for name, used, budget, pct, detail in rows:
        lines.append(f"  {name:6s} {used:>10s} {budget:>10s} {pct:>5s}  {detail}")
    if lat["instructions"] is not None:
        lines.append(f"  latency ~{lat['est_ms']:.3f} ms (estimate: {lat['instructions']:,} "
                     f"instructions at 1/cycle)")
    chk = report.get("check")
    if chk is not None:
        verdict = "ok" if chk.get("mismatches") == 0 else "MISMATCH"
        lines.append(f"  check  {verdict}: {chk['samples']} samples, {chk['mismatches']} "
                     f"mismatches, max |diff| {chk['max_abs_diff']}")
    skipped = report.get("skipped", {})
    for key in ("build", "run"):  # "not built" says it all: no "not run" after it
        if key in skipped:
            lines.append(f"  ({skipped[key]})")
            break
    if layers and report.get("layers"):
        lines += [""] + _layer_table(report["layers"])
    return "\n".join(lines)


def _layer_table(layers: list[dict]) -> list[str]:
    profiled = all("instructions" in ly for ly in layers)
    weight = "instructions" if profiled else "macs"
    shown = layers
    if len(layers) > MAX_SUMMARY_LAYERS:
        heaviest = sorted(layers, key=lambda ly: (-ly[weight], ly["index"]))
        keep = {ly["index"] for ly in heaviest[:MAX_SUMMARY_LAYERS]}
        shown = [ly for ly in layers if ly["index"] in keep]
    name_w = min(max(len(ly["name"]) for ly in shown), 30)
    op_w = min(max(len(ly["op"]) for ly in shown), 16)
    kernel_w = min(max(len(ly["kernel"]) for ly in shown), 28)
    total_instr = sum(ly.get("instructions", 0) for ly in layers) or 1
    head = (f"  {'#':>3s} {'layer':{name_w}s} {'op':{op_w}s} {'kernel':{kernel_w}s} "
            f"{'MACs':>11s} {'out B':>8s} {'weights B':>10s}")
    if profiled:
        head += f" {'instructions':>13s} {'%':>5s}"
    rows = [head]

    def cut(text: str, width: int) -> str:  # keep both ends: names differ at the end
        if len(text) <= width:
            return text
        head = (width - 1) // 2
        return text[:head] + "~" + text[len(text) - (width - 1 - head):]

    for ly in shown:
        row = (f"  {ly['index']:3d} {cut(ly['name'], name_w):{name_w}s} "
               f"{cut(ly['op'], op_w):{op_w}s} {cut(ly['kernel'], kernel_w):{kernel_w}s} "
               f"{ly['macs']:11,d} {ly['output_bytes']:8,d} {ly['weights_bytes']:10,d}")
        if profiled:
            row += (f" {ly['instructions']:13,d} "
                    f"{100.0 * ly['instructions'] / total_instr:5.1f}")
        rows.append(row)
    if len(shown) < len(layers):
        rest = [ly for ly in layers if ly not in shown]
        share = sum(ly[weight] for ly in rest) / (sum(ly[weight] for ly in layers) or 1)
        rows.append(f"  {'':3s} ({len(rest)} lighter layers not shown: {100 * share:.1f}% of "
                    f"the {'instructions' if profiled else 'MACs'})")
    total = (f"  {'':3s} {'total':{name_w}s} {'':{op_w}s} {f'{len(layers)} layers':{kernel_w}s} "
             f"{sum(ly['macs'] for ly in layers):11,d} {'':8s} "
             f"{sum(ly['weights_bytes'] for ly in layers):10,d}")
    if profiled:
        total += f" {sum(ly['instructions'] for ly in layers):13,d} {100.0:5.1f}"
    rows.append(total)
    return rows


def _n(value: Any) -> str:
    return "n/a" if value is None else f"{value:,}"


def _kb(value: Any) -> str:
    return "-" if value is None else f"{value / 1024:.1f} KB"


def _pct(part: Any, whole: Any) -> str:
    if part is None or not whole:
        return "-"
    return f"{100.0 * part / whole:.0f}%"


def _jsonable(value: Any) -> Any:
    """numpy scalars/arrays and Paths -> plain JSON types, recursively."""
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.floating):
        return float(value)
    if isinstance(value, Path):
        return str(value)
    return value
