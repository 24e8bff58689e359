"""Kernel benchmark: instructions per inference of the shared models and of the test networks,
with the optimized kernels (--optimize speed and size), next to TFLM + CMSIS-NN.

    python benchmarks/kernels_bench.py [--models kws_dscnn_int8,resnet_mini] [--target stm32f746]

For each model: MACs, edgec instructions per inference on the emulator (QEMU -icount, one
profiled `edgec compile` per goal; every compile also runs edgec's exact check), the
TFLM + CMSIS-NN figure of ../shared/anchors.md, the ratio, MACs per instruction, and the
runtime code (kernels + the layer sequence, from the linker map: report.json
flash.code_breakdown) next to the CMSIS-NN build's library code. Then: flash and
instructions for --optimize speed vs size; instructions per core (Cortex-M7 mps2-an500,
Cortex-M4 mps2-an386, Cortex-M55 mps3-an547 (DSP path, no Helium), Cortex-M3 without DSP
mps2-an385: the portable reference kernels);
and per layer, where the instructions go (kws_dscnn_int8, mobilenetv2_mini).
The torch networks (tests/models.py) go through TorchScript and edgec's int8 PTQ.
"""
from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

from shared_data import anchors, models_dir

ROOT = Path(__file__).resolve().parents[1]
SHARED = ["kws_dscnn_int8", "micro_speech_quantized", "ad_fc_autoencoder_int8",
          "hello_world_int8", "hello_world_float", "kws_dscnn_float32"]  # all but the LSTM
TORCH = ["mobilenetv2_mini", "resnet_mini"]


def cmsis_anchors(models: Path) -> dict[str, dict[str, int]]:
    """model -> {"cmsis": instructions, "lib_cmsis": bytes}, from anchors.md's speed table."""
    return {name: {"cmsis": row["TFLM + CMSIS-NN"], "lib_cmsis": row.get("lib code, CMSIS-NN")}
            for name, row in anchors(models).items() if row.get("TFLM + CMSIS-NN")}


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


CORES = ["stm32f746", "stm32f411", "corstone300", "generic_m3"]  # M7, M4, M55 (DSP), M3 (no DSP)
PROFILED = ["kws_dscnn_int8", "mobilenetv2_mini"]


def n(v) -> str:
    return "–" if v is None else f"{v:,}"


def instructions(rep: dict) -> int | None:
    return None if "error" in rep else rep["latency"]["instructions"]


def runtime_code(rep: dict) -> int | None:
    """Kernels + the model's layer sequence: what TFLM's "lib code" (kernels + interpreter)
    compares to. The harness and libc are left out on both sides."""
    if "error" in rep:
        return None
    code = rep["flash"].get("code_breakdown") or {}
    return int(code.get("kernels", 0)) + int(code.get("model", 0))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", default=",".join(SHARED + TORCH))
    ap.add_argument("--target", default="stm32f746")
    ap.add_argument("--cores", default=",".join(CORES),
                    help="targets of the per-core table (speed goal); empty: none")
    args = ap.parse_args()
    models_path = models_dir()
    anchor = cmsis_anchors(models_path)
    names = [m for m in args.models.split(",") if m]
    cores = [c for c in args.cores.split(",") if c and c != args.target]
    reps: dict[tuple[str, str, str], dict] = {}  # (model, target, goal) -> report
    with tempfile.TemporaryDirectory(prefix="edgec_kbench_") as tmp_dir:
        tmp = Path(tmp_dir)
        for name in names:
            if name in TORCH:
                model, shape = torch_model(name, tmp)
            else:
                model, shape = models_path / f"{name}.tflite", None
            jobs = [(args.target, "speed"), (args.target, "size")]
            if name in anchor or name in TORCH:  # the per-core rows: the anchored models
                jobs += [(core, "speed") for core in cores]
            for target, goal in jobs:
                try:
                    reps[name, target, goal] = compile_one(
                        model, tmp / f"{name}_{target}_{goal}", goal, target, shape)
                except Exception as e:  # a model edgec cannot compile yet: say why
                    reps[name, target, goal] = {"error": f"{type(e).__name__}: {e}"}
            print(f"... {name} done", file=sys.stderr)

    print(f"## Instructions per inference on {args.target}, next to TFLM + CMSIS-NN\n")
    print("| model | MACs | edgec speed | edgec size | TFLM+CMSIS-NN | speed / CMSIS-NN | "
          "MAC/instr (speed) | runtime code speed / size (B) | CMSIS-NN lib code (B) | "
          "code / CMSIS-NN |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for name in names:
        speed, size, a = reps[name, args.target, "speed"], reps[name, args.target, "size"], \
            anchor.get(name, {})
        if "error" in speed:
            print(f"| {name} | {speed['error'][:80]} | | | | | | | | |")
            continue
        macs = speed["model"].get("macs")
        cmsis, lib = a.get("cmsis"), a.get("lib_cmsis")
        ratio = f"{instructions(speed) / cmsis:.3f}x" if cmsis else "–"
        per = f"{macs / instructions(speed):.2f}" if macs else "–"
        code_ratio = f"{runtime_code(speed) / lib:.3f}x" if lib else "–"
        print(f"| {name} | {n(macs)} | {n(instructions(speed))} | {n(instructions(size))} | "
              f"{n(cmsis)} | {ratio} | {per} | {n(runtime_code(speed))} / "
              f"{n(runtime_code(size))} | {n(lib)} | {code_ratio} |")

    print(f"\n## Speed vs size on {args.target}: flash (weights + all code) and instructions\n")
    print("| model | flash speed (B) | flash size (B) | weights speed / size (B) | "
          "instructions speed | instructions size | speed saves | extra flash per "
          "saved instruction (B) |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for name in names:
        speed, size = reps[name, args.target, "speed"], reps[name, args.target, "size"]
        if "error" in speed or "error" in size:
            continue
        fs, fz = speed["flash"], size["flash"]
        saved = instructions(size) - instructions(speed)
        extra = fs["total_bytes"] - fz["total_bytes"]
        per = f"{extra / saved:.3f}" if saved > 0 else "–"
        print(f"| {name} | {n(fs['total_bytes'])} | {n(fz['total_bytes'])} | "
              f"{n(fs['weights_bytes'])} / {n(fz['weights_bytes'])} | "
              f"{n(instructions(speed))} | {n(instructions(size))} | "
              f"{saved / instructions(size):.1%} | {per} |")

    if cores:
        all_cores = [args.target] + cores
        print("\n## Instructions per inference per core (--optimize speed; every run "
              "checked exact)\n")
        heads = [f"{c} ({_core_name(c)})" for c in all_cores]
        print("| model | " + " | ".join(heads) + " | TFLM+CMSIS-NN (M7) |")
        print("|---|" + "---:|" * (len(all_cores) + 1))
        for name in names:
            if (name, cores[0], "speed") not in reps:
                continue
            cells = [n(instructions(reps[name, c, "speed"])) if "error" not in
                     reps[name, c, "speed"] else reps[name, c, "speed"]["error"][:40]
                     for c in all_cores]
            print(f"| {name} | " + " | ".join(cells) +
                  f" | {n(anchor.get(name, {}).get('cmsis'))} |")

    for name in [m for m in PROFILED if m in names]:
        rep = reps[name, args.target, "speed"]
        if "error" in rep:
            continue
        total = instructions(rep)
        print(f"\n## Where the instructions go: {name} (speed, {args.target}, "
              f"{n(total)} instructions)\n")
        print("| # | op | kernel | instructions | share | MACs | MAC/instr |")
        print("|---:|---|---|---:|---:|---:|---:|")
        for k, ly in enumerate(rep["layers"]):
            ins, macs = ly.get("instructions"), ly.get("macs")
            per = f"{macs / ins:.2f}" if macs and ins else "–"
            share = f"{ins / total:.1%}" if ins is not None else "–"
            print(f"| {k} | {ly.get('op')} | {ly.get('kernel') or '(view)'} | {n(ins)} | "
                  f"{share} | {n(macs or None)} | {per} |")


def _core_name(target: str) -> str:
    from edgec.toolchain.target import load_target
    return load_target(target).core


if __name__ == "__main__":
    main()
