"""Instructions per op type of the 160x160 ViT of issue 9 on the STM32F746 (QEMU, --profile),
optionally next to an earlier compile's report.json (e.g. before a kernel change).

    python benchmarks/vit_ops_bench.py --work DIR [--samples 2] [--before OLD/report.json]

DIR holds vit160.onnx and calib.npy (benchmarks/vit_bench.py builds them); the model is
compiled into DIR/net_profile (build + QEMU check against the golden model + per-layer
instruction counts) and the table is printed from its report.json.
"""
from __future__ import annotations

import argparse
import json
from collections import defaultdict
from pathlib import Path

from edgec.toolchain.options import CompileOptions
from edgec.toolchain.pipeline import compile_model

TARGET = "stm32f746"


def by_op(report: dict) -> dict[str, dict]:
    """op -> {layers, instructions, kernels} over the report's layers."""
    ops: dict[str, dict] = defaultdict(lambda: {"layers": 0, "instructions": 0,
                                                "kernels": set()})
    for layer in report["layers"]:
        row = ops[layer["op"]]
        row["layers"] += 1
        row["instructions"] += int(layer.get("instructions") or 0)
        if layer["kernel"]:
            row["kernels"].add(layer["kernel"])
    return dict(ops)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--work", type=Path, required=True)
    ap.add_argument("--samples", type=int, default=2, help="inputs checked on QEMU")
    ap.add_argument("--before", type=Path, help="an earlier report.json to compare with")
    args = ap.parse_args()
    opts = CompileOptions(model=args.work / "vit160.onnx", target=TARGET,
                          out_dir=args.work / "net_profile", calib=args.work / "calib.npy",
                          check_samples=args.samples, profile=True)
    rep = compile_model(opts).report
    after = by_op(rep)
    before = by_op(json.loads(args.before.read_text())) if args.before else {}
    old_total = json.loads(args.before.read_text())["latency"]["instructions"] \
        if args.before else None
    total = rep["latency"]["instructions"]
    chk = rep["check"]
    print(f"ViT 160x160 on {TARGET}: QEMU vs golden {chk['mismatches']} mismatching bytes in "
          f"{chk['samples']} samples; instructions per inference (emulator)\n")
    head = f"{'op':<16} {'layers':>6} "
    head += f"{'before':>14} " if before else ""
    print(head + f"{'instructions':>14} {'%':>5}  kernels")
    for op in sorted(after, key=lambda o: -after[o]["instructions"]):
        row = after[op]
        line = f"{op:<16} {row['layers']:>6} "
        if before:
            line += f"{before.get(op, {}).get('instructions', 0):>14,} "
        print(line + f"{row['instructions']:>14,} {100 * row['instructions'] / total:>5.1f}  "
              f"{', '.join(sorted(row['kernels']))}")
    line = f"{'total':<16} {'':>6} "
    if before:
        line += f"{old_total:>14,} "
    print(line + f"{total:>14,}")


if __name__ == "__main__":
    main()
