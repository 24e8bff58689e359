"""Fit the flash code-size model of `edgec nas` (toolchain/nas/code_size.json) on real builds.

    python benchmarks/nas_flash_calibration.py [--builds 24] [--check]

For each --optimize goal: random candidates of four search spaces (the CNN and the ViT space
for 1x8x8 digits-sized and for 3x16x16 inputs) are compiled with `edgec compile` (C build and
link, no emulator run). From each build's report: the flash code bytes (all flash but the
weights), the kernels used, the number of calls, the static RAM besides the arena and the I/O
buffers, and the code split by the linker map (runtime, edgec_model.o, each kernel function,
the rest of each kernel source file). measure.fit_code_model takes the largest of each part
(edgec_model.o: a line in the number of calls) and adds its largest under-estimate as a
margin. --check compares the current table with new builds (other seeds) and prints the
errors.
"""
from __future__ import annotations

import argparse
import datetime
import json
import random
import re
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch

from edgec.toolchain.errors import EdgecError
from edgec.toolchain.nas import measure
from edgec.toolchain.nas.space import default_space
from edgec.toolchain.nas.vit_space import default_vit_space
from edgec.toolchain.options import CompileOptions
from edgec.toolchain.pipeline import compile_model
from edgec.toolchain.target import load_target

TARGET = "stm32f746"


def one_build(candidate, space, optimize: str, tmp: Path, seed: int) -> dict:
    torch.manual_seed(seed)
    module = measure.size_only(space.build(candidate).eval())
    x = np.random.default_rng(seed).standard_normal(
        (8, candidate.in_channels, candidate.resolution, candidate.resolution)).astype(np.float32)
    measure.save_torchscript(module, x, tmp / "m.pt")
    np.save(tmp / "c.npy", x)
    rep = compile_model(CompileOptions(model=tmp / "m.pt", target=TARGET, out_dir=tmp / "net",
                                       calib=tmp / "c.npy", run=False, optimize=optimize)).report
    layers = [ly for ly in rep["layers"] if ly.get("kernel")]
    kernels = sorted({ly["kernel"] for ly in layers})
    io_bytes = (sum(int(np.prod(t["shape"])) for t in rep["model"]["inputs"])
                + sum(int(np.prod(t["shape"])) for t in rep["model"]["outputs"]))
    code = rep["flash"]["code_bytes"]
    parts = split_map((tmp / "net" / "firmware.map").read_text(errors="replace"), kernels)
    parts["runtime"] = code - parts["model"] - sum(parts["kernel_bytes"].values()) \
        - sum(parts["shared"].values())  # harness, libc, libgcc, alignment
    return {"code": code, "calls": len(layers), "kernels": kernels,
            "static_other": rep["memory"]["static_other_bytes"] - io_bytes, **parts}


_OUT = re.compile(r"^(\.\S+)(?:\s+0x[0-9a-f]+\s+0x[0-9a-f]+.*)?$")
_IN = re.compile(r"^ (\.\S+)(?:\s+0x([0-9a-f]+)\s+0x([0-9a-f]+)\s+(\S.*))?$")
_WRAPPED = re.compile(r"^\s+0x([0-9a-f]+)\s+0x([0-9a-f]+)\s+(\S.*)$")
_FLASH = {".vectors", ".text", ".rodata", ".ARM.extab", ".ARM.exidx", ".data"}


def split_map(text: str, kernels: list[str]) -> dict:
    """Flash bytes of edgec_model.o, of each kernel's function, and of the other sections of
    each kernel source file (static helpers, tables), from a GNU ld map."""
    out = {"model": 0, "kernel_bytes": {}, "kernel_file": {}, "shared": {}}
    lines = text[text.find("Linker script and memory map"):].splitlines()
    in_flash, pending = False, None
    for line in lines:
        m = _OUT.match(line)
        if m and not line.startswith(" "):
            in_flash, pending = m.group(1) in _FLASH, None
            continue
        if not in_flash:
            continue
        m = _IN.match(line)
        if m and m.group(2) is None:
            pending = m.group(1)  # a long section name: size and file on the next line
            continue
        if m:
            section, size, where = m.group(1), int(m.group(3), 16), m.group(4)
        elif pending and _WRAPPED.match(line):
            w = _WRAPPED.match(line)
            section, size, where = pending, int(w.group(2), 16), w.group(3)
        else:
            continue
        pending = None
        obj = Path(where.split("(")[0]).name
        if not obj.startswith("model__") or size == 0:
            continue
        if obj.startswith("model__edgec_model"):
            out["model"] += size
            continue
        source = obj[len("model__"):-len(".o")]
        function = section.split(".", 2)[-1]
        if function in kernels:
            out["kernel_bytes"][function] = out["kernel_bytes"].get(function, 0) + size
            out["kernel_file"][function] = source
        else:
            out["shared"][source] = out["shared"].get(source, 0) + size
    return out


def candidates(n: int, seed: int):
    rng = random.Random(seed)
    spaces = [default_space(1, 8, 10), default_space(3, 16, 10), default_vit_space(1, 8, 10),
              default_vit_space(3, 16, 10)]
    for i in range(n):
        space = spaces[i % len(spaces)]
        yield space.sample(rng), space


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--builds", type=int, default=24, help="builds per --optimize goal")
    ap.add_argument("--check", action="store_true", help="only report the current table's errors")
    args = ap.parse_args()
    table = {}
    for goal in ("speed", "size"):
        builds = []
        with tempfile.TemporaryDirectory() as tmp:
            for i, (c, space) in enumerate(candidates(args.builds, 1000 if args.check else 0)):
                try:
                    b = one_build(c, space, goal, Path(tmp), i)
                except EdgecError as e:  # too big for the board, say: another one
                    print(f"{goal:5s} {i:2d} skipped: {e}", file=sys.stderr)
                    continue
                builds.append(b)
                print(f"{goal:5s} {i:2d} {c.short():48s} code {b['code']:6d} calls "
                      f"{b['calls']:3d} static {b['static_other']}", file=sys.stderr)
        if args.check:
            model = measure.code_model(goal)
            err = [measure.estimate_code(model, b["calls"], b["kernels"]) - b["code"]
                   for b in builds]
            print(f"{goal}: estimate - real code bytes on {len(err)} new builds: min "
                  f"{min(err)}, max {max(err)}, mean {np.mean(err):.0f}")
            continue
        gcc = subprocess.run([load_target(TARGET).cc, "--version"], capture_output=True,
                             text=True).stdout.splitlines()[0]
        table[goal] = measure.fit_code_model(builds, {
            "target": TARGET, "compiler": gcc, "date": datetime.date.today().isoformat(),
            "how": "benchmarks/nas_flash_calibration.py"})
        cal = table[goal]["calibration"]
        print(f"{goal}: {cal['builds']} builds, estimate - real code bytes: min "
              f"{cal['error_bytes_min']}, max {cal['error_bytes_max']}, mean "
              f"{cal['error_bytes_mean']} (margin {table[goal]['margin']} B)")
    if not args.check:
        measure.CODE_SIZE_FILE.write_text(json.dumps(table, indent=1, sort_keys=True) + "\n")
        print(f"wrote {measure.CODE_SIZE_FILE}")


if __name__ == "__main__":
    main()
