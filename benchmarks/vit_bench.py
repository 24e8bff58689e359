"""The 160x160 ViT of issue 9 on the STM32F746 (320 KB SRAM, 1 MB flash): arena of the plain
whole-tensor plan vs edgec's fused plan, flash, instructions, exactness on QEMU and the
int8 model's agreement with the float model.

    python benchmarks/vit_bench.py [--work DIR] [--epochs 8] [--train 384] [--samples 2]

Builds (trains briefly on generated stripe images and exports) examples/vit/vit160.py into
DIR unless DIR/vit160.onnx exists, then:
  - lowers it once and plans the arena three ways: every op whole (plain: the [4, 401, 401]
    scores and the [401, 512] MLP layers in RAM), with the fused row-by-row attention, and
    with the token-blocked MLP too (what `edgec compile` does);
  - runs `edgec compile` for stm32f746 (build + QEMU, `--samples` inputs checked against the
    golden model byte for byte);
  - measures the cosine of the int8 logits (golden model, = firmware) with the float ONNX
    model on held-out images.
"""
from __future__ import annotations

import argparse
import json
import re
import sys
import time
from pathlib import Path

import numpy as np
from edgec.toolchain import check
from edgec.toolchain import source as sources
from edgec.toolchain import target as targets
from edgec.toolchain.lower import lower
from edgec.toolchain.lower.attention import fuse_attention
from edgec.toolchain.lower.mlp import fuse_mlp
from edgec.toolchain.lower.select import select_kernels
from edgec.toolchain.options import CompileOptions
from edgec.toolchain.pipeline import compile_model, quantize_source
from edgec.toolchain.plan import plan_memory

ROOT = Path(__file__).resolve().parents[1]
TARGET = "stm32f746"


def lowered(opts: CompileOptions):
    """toolchain/pipeline.py's stages up to lowering (unfused)."""
    source = sources.load_source(opts)
    qgraph, _, _, precision = quantize_source(opts, source)
    return source, qgraph, precision, lower(qgraph)


def block_of(name: str) -> str:
    """The transformer block a layer belongs to ("-" outside the blocks)."""
    m = re.search(r"/blocks/blocks\.(\d+)/", name)
    return m.group(1) if m else "-"


def peak_per_block(program, plan) -> dict[str, int]:
    """Per block: the most bytes live at once (tensors + scratch) during its layers."""
    order = plan.execution_order(len(program.calls))
    live = [0] * len(order)
    for buf in plan.timeline:
        for step in range(buf["first"], buf["last"] + 1):
            live[step] += buf["bytes"]
    peaks: dict[str, int] = {}
    for step, i in enumerate(order):
        b = block_of(program.calls[i].name)
        peaks[b] = max(peaks.get(b, 0), live[step])
    return peaks


def block_agreement(onnx_path: Path, program, io: dict, images: np.ndarray) -> list[tuple]:
    """Per transformer block: cosine of the int8 residual stream after the block (golden
    model, dequantized) with the float ONNX model's, min and mean over `images`."""
    import onnx
    import onnxruntime as ort
    from edgec.toolchain.golden import run_program

    model = onnx.load(str(onnx_path))
    graph = program.graph
    names = [n for n in (f"/blocks/blocks.{i}/Add_1_output_0" for i in range(64))
             if n in graph.tensors]
    for n in names:
        model.graph.output.append(onnx.helper.make_tensor_value_info(
            n, onnx.TensorProto.FLOAT, None))
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    spec_in = io["inputs"][0]
    cos: dict[str, list[float]] = {n: [] for n in names}
    for x in images.astype(np.float32):
        ref = sess.run(names, {sess.get_inputs()[0].name: x[None]})
        q = check.quantize_input(check.to_model_layout(x[None], spec_in), spec_in)
        values = run_program(program, {graph.inputs[0]: q.reshape(
            graph.tensors[graph.inputs[0]].shape)})
        for n, r in zip(names, ref):
            t = graph.tensors[n]
            got = check.dequantize(values[n], {"scale": float(np.asarray(t.quant.scale)),
                                               "zero_point": int(np.asarray(
                                                   t.quant.zero_point))}).ravel()
            r = np.asarray(r, np.float64).ravel()
            cos[n].append(float(r @ got / (np.linalg.norm(r) * np.linalg.norm(got))))
    return [(i, n, min(c), float(np.mean(c))) for i, (n, c) in enumerate(cos.items())]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--work", type=Path, default=Path("build/vit_bench"))
    ap.add_argument("--epochs", type=int, default=8)
    ap.add_argument("--train", type=int, default=384)
    ap.add_argument("--samples", type=int, default=2, help="inputs checked on QEMU")
    ap.add_argument("--precision", choices=("auto", "int8"), default="auto",
                    help="edgec compile --precision (auto: int16 where fidelity needs it)")
    args = ap.parse_args()
    work = args.work
    onnx = work / "vit160.onnx"
    if not onnx.is_file():
        sys.path.insert(0, str(ROOT / "examples" / "vit"))
        import vit160
        t0 = time.time()
        print("training:", vit160.build(work, args.epochs, args.train),
              f"({time.time() - t0:.0f} s)")
    opts = CompileOptions(model=onnx, target=TARGET, out_dir=work / "net",
                          calib=work / "calib.npy", check_samples=args.samples,
                          precision=args.precision, profile=True)
    target = targets.load_target(TARGET)
    source, qgraph, precision, plain = lowered(opts)
    attention = fuse_attention(plain)
    fused = fuse_mlp(attention)
    rows, plans = [], {}
    for name, program in (("plain (whole tensors)", plain), ("+ fused attention", attention),
                          ("+ token-blocked MLP (edgec)", fused)):
        t0 = time.time()
        program = select_kernels(program, target, opts.optimize)  # as compiled: scratch
        plan = plan_memory(program)
        plans[name] = peak_per_block(program, plan)
        biggest = max(plan.timeline, key=lambda t: t["bytes"])
        rows.append((name, len(program.calls), plan.arena_bytes, biggest["bytes"],
                     biggest["name"], time.time() - t0))

    t0 = time.time()
    rep = compile_model(opts).report
    compile_s = time.time() - t0
    test = np.load(work / "test.npy")
    held_out = check.float_agreement(source, fused, check.io_spec(qgraph), test,
                                     n=len(test))

    budget = target.arena_budget_bytes
    int16 = set(precision.as_dict()["int16_tensors"])
    print(f"\nprecision {args.precision}: int8 everywhere"
          + (f", int16: {', '.join(sorted(int16))}" if int16 else "")
          + (f"; simulated cosine on calibration images {precision.int8_fidelity:.4f} (int8) "
             f"-> {precision.fidelity:.4f}" if precision.fidelity is not None else ""))
    print(f"\nViT 160x160x3, 8x8 patches, width 128, 4 heads, MLP x4, depth 4, "
          f"{TARGET}: arena budget {budget} B (SRAM {target.sram_bytes} B - stack "
          f"{target.stack_bytes} B), flash {target.flash_bytes} B\n")
    print(f"{'plan':<30} {'calls':>5} {'arena B':>9} {'fits':>5} {'largest buffer':>15}  "
          f"name")
    for name, calls, arena, big, big_name, _ in rows:
        print(f"{name:<30} {calls:>5} {arena:>9} {'yes' if arena <= budget else 'no':>5} "
              f"{big:>15}  {big_name}")
    mem, flash, lat, chk = rep["memory"], rep["flash"], rep["latency"], rep["check"]
    fid = rep["fidelity"]
    print()
    table = [
        ("edgec arena (compiled)", f"{mem['arena_bytes']} B"),
        ("stack used on QEMU / reserved", f"{mem['stack_bytes']} / {mem['stack_reserved_bytes']} B"),
        ("SRAM total (static + stack)", f"{mem['sram_total_bytes']} B of {target.sram_bytes}"),
        ("flash total (weights + code)", f"{flash['total_bytes']} B ({flash['weights_bytes']} "
                                         f"+ {flash['code_bytes']}) of {target.flash_bytes}"),
        ("instructions per inference (QEMU)", f"{lat['instructions']}"),
        ("est. latency @ 216 MHz", f"{lat['est_ms']:.0f} ms (estimate)"
         if lat["est_ms"] is not None else "-"),
        ("QEMU vs golden", f"{chk['mismatches']} mismatching bytes in {chk['samples']} samples"),
        ("cosine vs float, calibration imgs", f"min {fid['cosine_min']:.4f} mean "
                                              f"{fid['cosine_mean']:.4f}"),
        ("cosine vs float, held-out imgs", f"min {held_out['cosine_min']:.4f} mean "
                                           f"{held_out['cosine_mean']:.4f} "
                                           f"({held_out['samples']} images)"),
        ("compile + build + QEMU time", f"{compile_s:.0f} s"),
    ]
    for k, v in table:
        print(f"{k:<36} {v}")
    layers = rep["layers"]
    instr: dict[str, int] = {}
    for layer in layers:
        b = block_of(layer["name"])
        instr[b] = instr.get(b, 0) + int(layer.get("instructions") or 0)
    plain_peak, edgec_peak = plans[rows[0][0]], plans[rows[-1][0]]
    print(f"\n{'block':<6} {'activations':<24} {'plain peak B':>13} {'edgec peak B':>13} "
          f"{'instructions':>14} {'cosine min':>11} {'cosine mean':>12}")
    blocks = block_agreement(onnx, fused, check.io_spec(qgraph), test)
    for i, _, lo, mean in blocks:
        b = str(i)
        wide = [t for t in int16 if block_of(t) == b]
        prec = "int8" + (", probs int16" if wide else "")
        print(f"{b:<6} {prec:<24} {plain_peak.get(b, 0):>13,} {edgec_peak.get(b, 0):>13,} "
              f"{instr.get(b, 0):>14,} {lo:>11.4f} {mean:>12.4f}")
    print(f"{'-':<6} {'int8 (embed, head)':<24} {plain_peak.get('-', 0):>13,} "
          f"{edgec_peak.get('-', 0):>13,} {instr.get('-', 0):>14,}")
    print("(cosine: residual stream after the block vs float, held-out images; peak: most "
          "bytes live at once during the block's layers)")
    print(f"\n{'layer':<48} {'kernel':<28} {'MACs':>12} {'instructions':>14}")
    for layer in layers:
        print(f"{layer['name'][-48:]:<48} {layer['kernel']:<28} {layer['macs']:>12,} "
              f"{int(layer.get('instructions') or 0):>14,}")
    (work / "vit_bench.json").write_text(json.dumps(
        {"plans": [{"plan": r[0], "calls": r[1], "arena_bytes": r[2]} for r in rows],
         "report": {k: rep[k] for k in ("memory", "flash", "latency", "check", "fidelity",
                                         "precision", "layers")},
         "peak_per_block": {"plain": plain_peak, "edgec": edgec_peak},
         "instructions_per_block": instr,
         "held_out": held_out,
         "blocks": [{"block": i, "tensor": n, "cosine_min": lo, "cosine_mean": m}
                    for i, n, lo, m in blocks]}, indent=1, default=str))


if __name__ == "__main__":
    main()
