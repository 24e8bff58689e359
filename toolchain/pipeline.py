"""`edgec compile`, stage by stage. Data flows one way: each stage reads the previous one's result.

Everything is written into a temporary sibling of the output directory and moved into place
only when every stage has passed, so a failure or Ctrl-C never leaves half an output.
"""
from __future__ import annotations

import hashlib
import json
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .. import __version__
from . import calibdata, check, emulator, golden_io, report, source as sources, target as targets
from .build import build_firmware
from .errors import BudgetError
from .ir import verify
from .lower import lower
from .lower.attention import fuse_attention
from .lower.mlp import fuse_mlp
from .lower.select import select_kernels
from .options import CompileOptions
from .passes import run_passes
from .plan import patch as patching
from .plan import plan_memory
from .quantize import calibrate, choose_precision, quantize, write_qdq_onnx
from ..codegen import emit_sources


@dataclass
class CompileResult:
    out_dir: Path
    report: dict


def compile_model(opts: CompileOptions) -> CompileResult:
    target = targets.load_target(opts.target)  # fail on a bad target before any heavy work
    patching.parse_option(opts.patch)          # and on a bad --patch
    with staging_dir(opts.out_dir) as tmp:
        source = sources.load_source(opts)                         # any format -> IR (NHWC)
        check_sizes(source.graph, target,                          # hopeless sizes: fail now
                    1 if opts.patch == "off" else patching.MAX_STRIPES)
        qgraph, samples, calib_info, precision = quantize_source(opts, source)  # int8 (+int16)
        if not source.quantized:
            write_qdq_onnx(qgraph, tmp / "model.int8.onnx")        # the artifact users inspect
        verify(qgraph)                                             # IR and quantization sane
        program, plan, patched = plan_program(qgraph, target, opts)  # kernels and arena
        check_budgets(program, plan, target)                       # fail early, with the figures
        emit_sources(program, plan, tmp / "src", _meta(opts, target))  # C99 via jinja2
        golden_io.save_program(program, tmp / golden_io.FILE_NAME)  # for `edgec test`
        io = check.io_spec(qgraph)
        meta = {"target": target.name, "io": io, "edgec": __version__}
        if targets.is_target_file(opts.target):  # a user's board: keep it with the model
            kept = Path(targets.COMPILED_TARGET_DIR) / Path(opts.target).name
            (tmp / kept).parent.mkdir()
            shutil.copyfile(opts.target, tmp / kept)
            meta["target_file"] = kept.as_posix()
        (tmp / "model.json").write_text(json.dumps(meta, indent=2) + "\n")
        build = run = verdict = None
        if opts.build:
            build = build_firmware(tmp / "src", target, tmp, profile=opts.profile,
                                   opt_level=opts.optimize)
            if opts.run:
                inputs = check.test_batches(io, samples, opts.check_samples, opts.seed)
                run = emulator.run_firmware(build.elf, target, check.pack_inputs(inputs),
                                            sum(o["bytes"] for o in io["outputs"]),
                                            profile=opts.profile)
                verdict = check.verdict(program, io, inputs, run.outputs, source)
        fidelity = None if source.quantized else check.float_agreement(
            source, program, io, samples)
        rep = report.build_report(
            program=program, plan=plan, target=target, build=build, run=run,
            check=verdict, calibration=calib_info, fidelity=fidelity,
            patch=patched.report() if patched is not None else None,
            precision=precision.as_dict() if precision is not None else None,
            model=str(opts.model), warnings=opts.warnings + source.warnings,
            stopped=("--no-build" if not opts.build else "--no-run" if not opts.run else None))
        report.write_report(rep, tmp)
        if verdict is not None and verdict["mismatches"]:
            raise check.mismatch_error(verdict)
    return CompileResult(opts.out_dir, rep)



def quantize_source(opts: CompileOptions, source):
    """The quantized graph of a loaded model, and the samples that calibrated it (also `edgec
    nas`'s way in: its figures follow every change here). Returns (qgraph, samples,
    calib_info, precision: the PrecisionReport of a float source, else None)."""
    precision = None
    if source.quantized:                                           # int8 .tflite: keep its numbers
        qgraph = run_passes(source.graph, quantized=True)          # drop no-ops only
        samples, calib_info = calibdata.load_optional(opts, source)
    else:
        graph = run_passes(source.graph)                           # fold BN, fuse act, drop no-ops
        samples, calib_info = calibdata.load_or_generate(opts, source)  # user's, or generated
        qgraph = quantize(graph, calibrate(source.onnx, graph, samples))  # int8 PTQ (TFLite)
        qgraph, precision = choose_precision(graph, qgraph, samples,  # int16 where fidelity
                                             opts.precision, opts.fidelity_goal)  # needs it
    return qgraph, samples, calib_info, precision


def plan_program(qgraph, target, opts: CompileOptions):
    """The int8 graph as kernel calls and their arena, as compiled (also `edgec nas`'s
    measurement). Returns (program, plan, patched: the striping chosen, or None)."""
    lowered = fuse_mlp(fuse_attention(lower(qgraph)))              # op -> kernel call + constants;
                                                                   # attention row by row, MLP
                                                                   # token block by block
    program = select_kernels(lowered, target, opts.optimize)       # best exact kernel per layer
    plan = plan_memory(program)                                    # lifetimes -> arena offsets
    patched = patching.choose(                                     # stripes when SRAM is short
        lowered, plan, target.arena_budget_bytes, opts.patch,
        lambda p: select_kernels(p, target, opts.optimize), target.name)
    if patched is not None:
        program, plan = patched.program, patched.plan
    return program, plan, patched

def check_sizes(graph, target, stripes: int = 1) -> None:
    """Before calibrating: every tensor, at one byte a value once int8, must fit in the
    board's SRAM (activations; a 1/`stripes` stripe of one, when the first layers may run
    stripe by stripe) or flash (constants); a corrupt file can declare any size."""
    verify(graph)
    never_whole = _attention_scores(graph)
    for name, t in graph.tensors.items():
        if name in never_whole:
            continue
        values = int(np.prod(t.shape, dtype=object))
        if t.is_const and values > target.flash_bytes:
            raise BudgetError(f"weights '{name}' of shape {list(t.shape)} need {values} B as "
                              f"int8 but {target.name} has {target.flash_bytes} B of flash")
        if not t.is_const and values > target.sram_bytes * stripes:
            raise BudgetError(f"tensor '{name}' of shape {list(t.shape)} needs {values} B of "
                              f"arena as int8 but {target.name} has {target.sram_bytes} B of "
                              f"SRAM")


def _attention_scores(graph) -> set[str]:
    """The scores and probabilities of attention (a softmax's input and output, and the
    input of a MUL in front of it): the fused attention (lower/attention.py) computes them
    one row at a time, so only the planned arena says whether the model fits."""
    producers = {t: n for n in graph.nodes for t in n.outputs}
    names: set[str] = set()
    for n in graph.nodes:
        if n.op != "softmax":
            continue
        names.update((n.inputs[0], n.outputs[0]))
        p = producers.get(n.inputs[0])
        if p is not None and p.op == "mul":
            names.update(p.inputs)
    return {t for t in names if t in graph.tensors and not graph.tensors[t].is_const}


def check_budgets(program, plan, target) -> None:
    weights = patching.unique_const_bytes(program)  # stripes of a layer share its tables
    if plan.arena_bytes > target.arena_budget_bytes:
        biggest = sorted(plan.timeline, key=lambda t: -t["bytes"])[:3]
        names = ", ".join(f"{t['name']} ({t['bytes']} B)" for t in biggest)
        raise BudgetError(
            f"arena needs {plan.arena_bytes} B but {target.name} has {target.arena_budget_bytes} B "
            f"for it (SRAM {target.sram_bytes} B minus stack {target.stack_bytes} B); "
            f"largest tensors: {names}")
    if weights > target.flash_bytes:
        biggest = sorted(program.calls, key=lambda c: -c.const_bytes)[:3]
        names = ", ".join(f"{c.name} ({c.const_bytes} B)" for c in biggest)
        raise BudgetError(
            f"weights need {weights} B but {target.name} has {target.flash_bytes} B of flash; "
            f"largest layers: {names}")


def _meta(opts: CompileOptions, target) -> dict:
    """What the generated files record of their origin: only what changes the output, so
    the same model and options give the same bytes wherever the output goes."""
    digest = hashlib.sha256(Path(opts.model).read_bytes()).hexdigest()
    command = f"edgec compile {Path(opts.model).name} --target {target.name}"
    if opts.calib is not None:
        calib_digest = hashlib.sha256(Path(opts.calib).read_bytes()).hexdigest()[:16]
        command += f" --calib {Path(opts.calib).name} (sha256 {calib_digest}...)"
    return {"model": Path(opts.model).name, "model_sha256": digest, "target": target.name,
            "command": command}


class staging_dir:
    """A temp dir beside `final`, renamed onto it on success, removed on any failure."""

    def __init__(self, final: Path):
        self.final = Path(final).resolve()

    def __enter__(self) -> Path:
        self.final.parent.mkdir(parents=True, exist_ok=True)
        self.tmp = Path(tempfile.mkdtemp(prefix=f".{self.final.name}.", dir=self.final.parent))
        return self.tmp

    def __exit__(self, exc_type, exc, tb) -> bool:
        if exc_type is not None:
            shutil.rmtree(self.tmp, ignore_errors=True)
            return False
        if self.final.exists():
            old = self.final.with_name(f".{self.final.name}.old")
            shutil.rmtree(old, ignore_errors=True)
            self.final.rename(old)
            self.tmp.rename(self.final)
            shutil.rmtree(old, ignore_errors=True)
        else:
            self.tmp.rename(self.final)
        return False
