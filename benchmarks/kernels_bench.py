"""Kernel benchmark: instructions per inference of the shared models and of the test networks,
with the optimized kernels (--optimize speed and size), next to TFLM + CMSIS-NN.

    python benchmarks/kernels_bench.py [--models kws_dscnn_int8,resnet_mini] [--target stm32f746]

For each model: MACs, edgec instructions per inference on the emulator (QEMU -icount, one
profiled `edgec compile` per goal; every compile also runs edgec's exact check), the
TFLM + CMSIS-NN figure of /work/shared/anchors.md, the ratio, MACs per instruction, and the
runtime code of the kernels in flash (the kernel objects' sections in the linker map,
report.json flash.code_breakdown.kernels) next to the CMSIS-NN build's library code.
The torch networks (tests/models.py) go through TorchScript and edgec's int8 PTQ.
"""
from __future__ import annotations

import argparse
import re
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MODELS_DIR = Path("/work/shared/models")
ANCHORS = Path("/work/shared/anchors.md")
SHARED = ["kws_dscnn_int8", "micro_speech_quantized", "ad_fc_autoencoder_int8",
          "hello_world_int8", "hello_world_float", "kws_dscnn_float32"]  # all but the LSTM
TORCH = ["mobilenetv2_mini", "resnet_mini"]


def anchors() -> dict[str, dict[str, int]]:
    """model -> {"cmsis": instructions, "lib_cmsis": bytes} from the speed table."""
    out: dict[str, dict[str, int]] = {}
    if not ANCHORS.is_file():
        return out
    text = ANCHORS.read_text()
    section = text[text.find("how fast TFLM + CMSIS-NN"):]
    for line in section.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 7 and cells[1].replace(",", "").isdigit():
            n = [int(c.replace(",", "")) if c.replace(",", "").isdigit() else None
                 for c in cells]
            out[cells[0]] = {"cmsis": n[3], "lib_cmsis": n[6]}
    return out


def torch_model(name: str, tmp: Path) -> tuple[Path, tuple[int, ...]]:
    sys.path.insert(0, str(ROOT / "tests"))
    import torch
    from models import BUILDERS, INPUT_SHAPES, example_input
    model = BUILDERS[name]()
    path = tmp / f"{name}.pt"
    torch.jit.save(torch.jit.trace(model, example_input(name)), str(path))
    return path, INPUT_SHAPES[name]


def compile_one(model: Path, out: Path, optimize: str, target: str,
                input_shape: tuple[int, ...] | None) -> dict:
    from edgec.toolchain.options import CompileOptions
    from edgec.toolchain.pipeline import compile_model
    opts = CompileOptions(model=model, target=target, out_dir=out, input_shape=input_shape,
                          profile=True, optimize=optimize)
    return compile_model(opts).report


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", default=",".join(SHARED + TORCH))
    ap.add_argument("--target", default="stm32f746")
    args = ap.parse_args()
    anchor = anchors()
    rows = []
    with tempfile.TemporaryDirectory(prefix="edgec_kbench_") as tmp_dir:
        tmp = Path(tmp_dir)
        for name in [m for m in args.models.split(",") if m]:
            if name in TORCH:
                model, shape = torch_model(name, tmp)
            else:
                model, shape = MODELS_DIR / f"{name}.tflite", None
            reps = {}
            for goal in ("speed", "size"):
                try:
                    reps[goal] = compile_one(model, tmp / f"{name}_{goal}", goal, args.target,
                                             shape)
                except Exception as e:  # a model edgec cannot compile yet: say why
                    reps[goal] = {"error": f"{type(e).__name__}: {e}"}
            rows.append((name, reps, anchor.get(name, {})))
            print(f"... {name} done", file=sys.stderr)

    def n(v) -> str:
        return "–" if v is None else f"{v:,}"

    print(f"| model | MACs | edgec speed | edgec size | TFLM+CMSIS-NN | speed / CMSIS-NN | "
          f"MAC/instr (speed) | kernel code speed / size (B) | CMSIS-NN lib code (B) |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for name, reps, a in rows:
        if "error" in reps["speed"]:
            print(f"| {name} | {reps['speed']['error'][:80]} | | | | | | | |")
            continue
        macs = reps["speed"]["model"].get("macs")
        instr = {g: reps[g]["latency"]["instructions"] if "error" not in reps[g] else None
                 for g in reps}
        code = {g: ((reps[g]["flash"].get("code_breakdown") or {}).get("kernels")
                    if "error" not in reps[g] else None) for g in reps}
        cmsis = a.get("cmsis")
        ratio = f"{instr['speed'] / cmsis:.3f}x" if cmsis and instr["speed"] else "–"
        per = f"{macs / instr['speed']:.2f}" if macs and instr["speed"] else "–"
        print(f"| {name} | {n(macs)} | {n(instr['speed'])} | {n(instr['size'])} | {n(cmsis)} | "
              f"{ratio} | {per} | {n(code['speed'])} / {n(code['size'])} | "
              f"{n(a.get('lib_cmsis'))} |")


if __name__ == "__main__":
    main()
