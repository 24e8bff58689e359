"""`edgec nas` on scikit-learn's digits, then `edgec compile` of what it found.

    python benchmarks/nas_bench.py [--time 10m] [--budget-sram 64KB] [--budget-flash 256KB]
                                   [--out build/nas_bench] [--seed 0] [--space cnn|vit]

Writes the digits (examples/nas/make_digits.py), runs `edgec nas --target stm32f746` with the
budgets and `--space` (the CNN space, or vit for vision transformers), then `edgec compile
nas/best.pt --target stm32f746 --calib nas/calib.npy` (build, link, emulator run with the
exact-match check), and prints the search's figures and the compile's next to them.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "examples" / "nas"))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--time", default="10m")
    ap.add_argument("--budget-sram", default="64KB")
    ap.add_argument("--budget-flash", default="256KB")
    ap.add_argument("--out", type=Path, default=ROOT / "build" / "nas_bench")
    ap.add_argument("--seed", default="0")
    ap.add_argument("--executor", default="local")
    ap.add_argument("--space", default="cnn", help="cnn, vit, or a space file")
    args = ap.parse_args()
    import numpy as np
    from make_digits import digits
    data, nas = args.out / "data", args.out / "nas"
    data.mkdir(parents=True, exist_ok=True)
    xt, yt, xv, yv = digits()
    np.savez(data / "train.npz", x=xt, y=yt)
    np.savez(data / "val.npz", x=xv, y=yv)
    edgec = str(Path(sys.executable).with_name("edgec"))
    t0 = time.monotonic()
    subprocess.run([edgec, "nas", "--target", "stm32f746", "--data", data / "train.npz",
                    "--val", data / "val.npz", "--budget-sram", args.budget_sram,
                    "--budget-flash", args.budget_flash, "--time", args.time, "-o", nas,
                    "--seed", args.seed, "--executor", args.executor, "--space", args.space],
                   check=True)
    wall = time.monotonic() - t0
    s = json.loads((nas / "summary.json").read_text())
    b = s["best"]
    subprocess.run([edgec, "compile", nas / "best.pt", "--target", "stm32f746", "--calib",
                    nas / "calib.npy", "-o", args.out / "net"], check=True,
                   stdout=subprocess.DEVNULL)
    rep = json.loads((args.out / "net" / "report.json").read_text())
    mem, flash, chk = rep["memory"], rep["flash"], rep["check"]

    def corr(v):
        return "n/a" if v is None else f"{v:.3f}"
    rows = [
        ("candidates evaluated", f"{s['candidates']} ({s['fit']} within budget, "
                                 f"{s['over_budget']} over, {s['errors']} errors)"),
        ("candidates trained", s["trained"]),
        ("best accuracy (int8, val)", f"{b['val_acc_int8']:.4f}  ({b['short']}, "
                                      f"{b['epochs']} epochs)"),
        ("arena (nas / edgec compile)", f"{b['arena']} B / {mem['arena_bytes']} B"),
        ("SRAM (nas est. / linked)", f"{b['sram']} B / {mem['sram_total_bytes']} B "
                                     f"(budget {s['budgets']['sram']} B)"),
        ("flash (nas est. / linked)", f"{b['flash']} B / {flash['total_bytes']} B "
                                      f"(budget {s['budgets']['flash']} B)"),
        ("MACs", f"{b['macs']:,}"),
        ("search wall time", f"{s['search_seconds']} s search, {s['wall_seconds']} s nas, "
                             f"{wall:.0f} s with start-up (limit {s['time_limit_seconds']:.0f} s)"),
        ("proxy rank correlation", corr(s["proxy_rank_correlation"])),
        ("predictor rank correlation", f"{corr(s['predictor_rank_correlation'])} (5-fold), "
                                       f"{corr(s['predictor_online_rank_correlation'])} "
                                       f"(when choosing)"),
        ("emulator exact-match check", f"{chk['mismatches']} mismatches on "
                                       f"{chk['samples']} samples"),
    ]
    for k, v in rows:
        print(f"{k:30s} {v}")
    ok = (mem["arena_bytes"] == b["arena"] and chk["mismatches"] == 0
          and mem["sram_total_bytes"] <= s["budgets"]["sram"]
          and flash["total_bytes"] <= s["budgets"]["flash"])
    print("within budgets, arena equal, exact match:", "yes" if ok else "NO")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
