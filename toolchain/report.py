"""The compile report: report.json (for tools), report.md (for people), a terminal summary.

    rep = build_report(target=..., program=..., plan=..., build=..., run=..., check=...,
                       calibration=..., fidelity=..., model=..., warnings=[...], stopped=...)
    write_report(rep, out_dir)        # report.json + report.md
    print(format_summary(rep))

Every stage result but the target may be None (the user stopped early with --no-build or
--no-run, or the caller has no check): the keys that need it are then null, and report.md
says why. Sizes are bytes, latency is in instructions; `latency.est_ms` is an estimate at
one instruction per cycle, labelled so in both files.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from .build import BuildResult
from .emulator import RunResult
from .lower.program import Program
from .plan.arena import Plan
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
                 warnings: Sequence[str] = (), stopped: str | None = None) -> dict:
    """Collect what the stages produced into one JSON-ready dict (see module doc).

    model: the model file name, or a dict of facts about it (name, source, sha256 ...).
    stopped: why the pipeline stopped early ("--no-build", "--no-run"), for the md.
    """
    warns = list(warnings)
    skipped = _skipped(build, run, stopped)
    report: dict[str, Any] = {
        "model": _model_info(model, program),
        "target": {
            "name": target.name, "description": target.description, "core": target.core,
            "fpu": target.fpu, "dsp": target.dsp, "clock_hz": target.clock_hz,
            "emulator": target.qemu_machine,
        },
        "calibration": calibration,
        "memory": _memory(target, plan, build, run, warns),
        "flash": _flash(target, program, build, warns),
        "latency": _latency(target, run),
        "layers": _layers(program, plan, run, warns),
        "check": _check(check),
        "fidelity": fidelity,
        "skipped": skipped,
        "warnings": warns,
    }
    return _jsonable(report)


def write_report(report: dict, out_dir: str | Path) -> tuple[Path, Path]:
    """Write report.json and report.md into out_dir; return both paths."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    json_path, md_path = out / "report.json", out / "report.md"
    json_path.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    md_path.write_text(format_markdown(report), encoding="utf-8")
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


def _memory(target: Target, plan: Plan | None, build: BuildResult | None,
            run: RunResult | None, warns: list[str]) -> dict:
    arena = plan.arena_bytes if plan is not None else None
    mem: dict[str, Any] = {
        "arena_bytes": arena,
        "lower_bound_bytes": plan.lower_bound_bytes if plan is not None else None,
        "naive_bytes": plan.naive_bytes if plan is not None else None,
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


def _flash(target: Target, program: Program | None, build: BuildResult | None,
           warns: list[str]) -> dict:
    flash: dict[str, Any] = {
        "weights_bytes": build.flash_weights_bytes if build else None,
        "code_bytes": build.flash_code_bytes if build else None,
        "total_bytes": build.flash_total_bytes if build else None,
        "budget_bytes": target.flash_bytes,
        # constant tables of the lowered model, known before any build
        "model_constants_bytes": (sum(c.const_bytes for c in program.calls)
                                  if program is not None else None),
    }
    if build is not None and flash["total_bytes"] > FULL_WARN_FRACTION * target.flash_bytes:
        warns.append(f"flash {_pct(flash['total_bytes'], target.flash_bytes)} full")
    return flash


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
    layers = []
    for i, call in enumerate(program.calls):
        entry: dict[str, Any] = {
            "index": i, "name": call.name, "op": call.op, "kernel": call.kernel,
            "macs": call.macs,
            "output_bytes": sum(program.graph.tensors[t].nbytes for t in call.outputs),
            "weights_bytes": call.const_bytes, "scratch_bytes": call.scratch_bytes,
        }
        if per_layer is not None:
            entry["instructions"] = per_layer[i]
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
              f"| arena lower bound (live bytes at the busiest layer) | "
              f"{_n(mem['lower_bound_bytes'])} |",
              f"| arena without reuse | {_n(mem.get('naive_bytes'))} |",
              f"| other static data (.data + .bss) | {_n(mem['static_other_bytes'])} |",
              f"| stack reserved | {_n(mem['stack_reserved_bytes'])} |",
              f"| stack high-water (measured) | {_n(mem['stack_bytes'])} |",
              f"| **total (static + stack reserved)** | **{_n(mem['sram_total_bytes'])}** |",
              f"| budget | {_n(mem['sram_budget_bytes'])} |"]
    if mem["sram_total_bytes"] is None:
        lines += ["", f"Total not known: {skipped.get('build', 'no firmware')}."]
    lines += ["", "## Flash", "", "| | bytes |", "|---|---:|",
              f"| weights (.rodata.edgec_weights) | {_n(flash['weights_bytes'])} |",
              f"| code and other constants | {_n(flash['code_bytes'])} |",
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
    fid = report.get("fidelity")
    if fid:
        lines.append(f"- vs {fid.get('reference', 'float model')}: "
                     + ", ".join(f"{k} {v:.4f}" if isinstance(v, float) else f"{k} {v}"
                                 for k, v in fid.items() if k != "reference"))
    warns = report.get("warnings") or []
    if warns:
        lines += ["", "## Warnings", ""] + [f"- {w}" for w in warns]
    return "\n".join(lines) + "\n"


def format_summary(report: dict) -> str:
    """A compact table for the terminal."""
    m, t = report["model"], report["target"]
    mem, flash, lat = report["memory"], report["flash"], report["latency"]
    rows = [("SRAM", _kb(mem["sram_total_bytes"]), _kb(mem["sram_budget_bytes"]),
             _pct(mem["sram_total_bytes"], mem["sram_budget_bytes"]),
             f"arena {_kb(mem['arena_bytes'])} (bound {_kb(mem['lower_bound_bytes'])}), stack "
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
    return "\n".join(lines)


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
