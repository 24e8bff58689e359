"""Patch-based inference (toolchain/plan/patch.py) on MCUNetV2-style networks.

    python benchmarks/patch_bench.py              # plan only (seconds)
    python benchmarks/patch_bench.py --firmware   # also build and check on QEMU (minutes)
    python benchmarks/patch_bench.py --shared     # the shared int8 models, --patch min

For each network and board: the arena planned whole (plain), the board's arena budget, the
arena with the first layers run stripe by stripe (--patch auto's choice), the split layer,
the stripes and the extra MACs of the recomputed halo rows. With --firmware the model is
compiled with `edgec compile` (2 samples checked against the golden model on QEMU) and the
instructions per inference are printed, plain and striped where the plain one fits.

With --shared: each int8 .tflite of ../shared/models planned plain and with --patch min
(the smallest arena, fit or not; stripes may feed a fully connected layer), beside TFLite
Micro's arena (shared/anchors.md); with --firmware too, compiled that way and checked on
QEMU against the golden model and LiteRT.
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from edgec.toolchain import calibdata
from edgec.toolchain import source as sources
from edgec.toolchain.errors import BudgetError
from edgec.toolchain.lower import lower
from edgec.toolchain.lower.select import select_kernels
from edgec.toolchain.options import CompileOptions
from edgec.toolchain.passes import run_passes
from edgec.toolchain.pipeline import compile_model
from edgec.toolchain.plan import patch, plan_memory
from edgec.toolchain.quantize import calibrate, quantize
from edgec.toolchain.target import load_target
from models import InvertedResidual, _conv_bn, _init, export_onnx
from shared_data import anchors, models_dir


class McuNetV2Like(nn.Module):
    """A high-resolution stem and first inverted-residual stage (the peak), then cheap
    low-resolution stages: the shape MCUNetV2's patch-based inference targets."""

    def __init__(self, stem: int, expand: int):
        super().__init__()
        self.f = nn.Sequential(
            *_conv_bn(3, stem, 3, 2), nn.ReLU6(),
            InvertedResidual(stem, stem, 1, expand), InvertedResidual(stem, 24, 2, expand),
            InvertedResidual(24, 24, 1, 3), InvertedResidual(24, 40, 2, 3),
            InvertedResidual(40, 48, 2, 3), InvertedResidual(48, 96, 2, 3),
            *_conv_bn(96, 160, 1), nn.ReLU6())
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(160, 10)

    def forward(self, x):
        return self.fc(torch.flatten(self.pool(self.f(x)), 1))


NETWORKS = [  # name, input size, stem channels, first expand ratio, board
    ("mcunetv2-like-224", 224, 16, 6, "stm32h743"),
    ("mcunetv2-like-176", 176, 16, 6, "stm32f746"),
    ("mcunetv2-like-144", 144, 12, 6, "nrf52840"),
]


def _export(tmp: Path, name: str, size: int, stem: int, expand: int) -> Path:
    path = tmp / f"{name}.onnx"
    model = _init(McuNetV2Like(stem, expand), 0)
    path.write_bytes(export_onnx(model, torch.randn(1, 3, size, size)).SerializeToString())
    return path


def _lowered(path: Path):
    opts = CompileOptions(model=path, target="stm32f746", out_dir=path.parent / "x",
                          calib_samples=8)
    source = sources.load_source(opts)
    graph = run_passes(source.graph)
    samples, _ = calibdata.load_or_generate(opts, source)
    return lower(quantize(graph, calibrate(source.onnx, graph, samples)))


def _kb(n: int) -> str:
    return f"{n / 1024:,.1f} KB"


def shared(models: Path, board: str, firmware: bool) -> None:
    from edgec.toolchain.errors import EdgecError
    tflm = anchors(models)
    head = (f"{'model':26} {'TFLM total':>10} {'TFLM head':>9} {'plain':>7} {'min':>7} "
            f"{'/TFLM':>6} {'striped':<52} {'extra MACs':>10}")
    print(f"shared int8 models on {board}: arena bytes planned whole (plain) and with "
          "--patch min")
    print(head)
    print("-" * len(head))
    target = load_target(board)
    for path in sorted(models.glob("*.tflite")):
        opts = CompileOptions(model=path, target=board, out_dir=path.parent / "x")
        try:
            source = sources.load_source(opts)
            if not source.quantized:
                continue
            program = lower(run_passes(source.graph, quantized=True))
        except EdgecError:
            continue
        plain = plan_memory(select_kernels(program, target))
        choice = patch.choose(program, plain, target.arena_budget_bytes, "min",
                              lambda p: select_kernels(p, target))
        arena = choice.plan.arena_bytes if choice else plain.arena_bytes
        row = tflm.get(path.stem, {})
        total, head_b = row.get("TFLM total"), row.get("TFLM head")
        what = (f"{choice.stripes} x '{choice.split}'"
                + (f" -> '{choice.into}'" if choice.into else "")) if choice else "-"
        ratio = f"{arena / total:.2f}" if total else "-"
        print(f"{path.stem:26} {total or '-':>10,} {head_b or '-':>9,} {plain.arena_bytes:>7,} "
              f"{arena:>7,} {ratio:>6} {what[:52]:<52} "
              f"{choice.macs_extra if choice else 0:>10,}")
        if firmware:
            with tempfile.TemporaryDirectory() as tmp:
                rep = compile_model(CompileOptions(model=path, target=board,
                                                   out_dir=Path(tmp) / "net",
                                                   patch="min")).report
            c = rep["check"]
            print(f"    firmware --patch min: arena {rep['memory']['arena_bytes']:,} B, "
                  f"{rep['latency']['instructions']:,} instructions, check "
                  f"{c['mismatches']} mismatches (LiteRT {c['litert']['mismatches']}) in "
                  f"{c['samples']} samples")
    print("\n/TFLM: the --patch min arena over TFLite Micro's total arena (anchors.md)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--firmware", action="store_true", help="build and check on QEMU")
    ap.add_argument("--shared", action="store_true",
                    help="the shared int8 models with --patch min, beside TFLM")
    ap.add_argument("--models", help="the shared models folder (default ../shared/models)")
    args = ap.parse_args()
    if args.shared:
        shared(models_dir(args.models), "stm32f746", args.firmware)
        return
    head = (f"{'network':<20} {'board':<10} {'plain arena':>12} {'budget':>10} "
            f"{'patched':>10} {'split layer':<28} {'stripes':>7} {'extra MACs':>16} "
            f"{'time':>6}")
    print(head)
    print("-" * len(head))
    with tempfile.TemporaryDirectory() as tmp:
        for name, size, stem, expand, board in NETWORKS:
            path = _export(Path(tmp), name, size, stem, expand)
            program = _lowered(path)
            target = load_target(board)
            t0 = time.perf_counter()
            plain = plan_memory(select_kernels(program, target))
            budget = target.arena_budget_bytes
            try:
                choice = patch.choose(program, plain, budget, "auto",
                                      lambda p, t=target: select_kernels(p, t))
            except BudgetError:
                choice = None
                row = ("does not fit", "-", "-", "-")
            seconds = time.perf_counter() - t0
            if choice is not None:
                r = choice.report()
                row = (_kb(r["arena_patched_bytes"]), r["split_layer"][-28:], r["stripes"],
                       f"{r['macs_extra']:,} ({r['macs_extra_percent']:.1f} %)")
            elif plain.arena_bytes <= budget:
                row = ("not needed", "-", "-", "-")
            print(f"{name:<20} {board:<10} {_kb(plain.arena_bytes):>12} {_kb(budget):>10} "
                  f"{row[0]:>10} {row[1]:<28} {row[2]:>7} {row[3]:>16} {seconds:>5.1f}s")
            if args.firmware:
                opts = CompileOptions(model=path, target=board, out_dir=Path(tmp) / name,
                                      calib_samples=8, check_samples=2)
                rep = compile_model(opts).report
                print(f"    firmware on QEMU: {rep['latency']['instructions']:,} instructions, "
                      f"SRAM {_kb(rep['memory']['sram_total_bytes'])} of "
                      f"{_kb(rep['memory']['sram_budget_bytes'])}, check "
                      f"{rep['check']['mismatches']} mismatches in "
                      f"{rep['check']['samples']} samples")


if __name__ == "__main__":
    main()
