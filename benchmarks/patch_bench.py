"""Patch-based inference (toolchain/plan/patch.py) on MCUNetV2-style networks.

    python benchmarks/patch_bench.py              # plan only (seconds)
    python benchmarks/patch_bench.py --firmware   # also build and check on QEMU (minutes)

For each network and board: the arena planned whole (plain), the board's arena budget, the
arena with the first layers run stripe by stripe (--patch auto's choice), the split layer,
the stripes and the extra MACs of the recomputed halo rows. With --firmware the model is
compiled with `edgec compile` (2 samples checked against the golden model on QEMU) and the
instructions per inference are printed, plain and striped where the plain one fits.
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


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--firmware", action="store_true", help="build and check on QEMU")
    args = ap.parse_args()
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
