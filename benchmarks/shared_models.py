"""Compile every model in shared/models for a target and print one table: arena, the lower
bound of activations alone and with the kernels' scratch, TFLM's arena (anchors), flash,
instructions per inference, and whether the firmware matched the golden model and LiteRT's
reference kernels exactly.

    .venv/bin/python benchmarks/shared_models.py [--target stm32f746] [--models DIR]
"""
from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from edgec.toolchain.errors import EdgecError
from edgec.toolchain.options import CompileOptions
from edgec.toolchain.pipeline import compile_model
from shared_data import anchors, models_dir

def _num(v) -> str:
    return "-" if v is None else f"{v:,}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--target", default="stm32f746")
    ap.add_argument("--models")
    args = ap.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        models = models_dir(args.models)
        tflm = {k: v.get("TFLM total") for k, v in anchors(models).items()}
        for path in sorted(models.glob("*.tflite")):
            name = path.stem
            opts = CompileOptions(model=path, target=args.target, out_dir=Path(tmp) / name)
            try:
                rep = compile_model(opts).report
            except EdgecError as e:
                rows.append((name, "-", "-", "-", _num(tflm.get(name)), "-", "-",
                             f"rejected: {str(e)[:60]}"))
                continue
            m, chk = rep["memory"], rep["check"]
            exact = "yes" if chk["mismatches"] == 0 else f"NO ({chk['mismatches']})"
            ref = "golden+LiteRT" if "litert" in chk else "golden (PTQ model)"
            rows.append((name, f"{m['arena_bytes']:,}", f"{m['lower_bound']:,}",
                         f"{m['lower_bound_with_scratch']:,}",
                         _num(tflm.get(name)), f"{rep['flash']['total_bytes']:,}",
                         f"{rep['latency']['instructions']:,}", f"{exact} vs {ref}"))
    head = ("model", "arena B", "bound B", "bound incl. scratch B", "TFLM arena B", "flash B",
            "instructions", "exact match")
    widths = [max(len(str(r[i])) for r in rows + [head]) for i in range(len(head))]
    print(f"target {args.target}; instructions on QEMU -icount shift=3 (one inference)")
    print(" | ".join(h.ljust(w) for h, w in zip(head, widths)))
    print("-|-".join("-" * w for w in widths))
    for r in rows:
        print(" | ".join(str(v).ljust(w) for v, w in zip(r, widths)))


if __name__ == "__main__":
    main()
