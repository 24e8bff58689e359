"""Wall time of `edgec test` on 1,000 samples of kws_dscnn_int8 (MLPerf Tiny keyword
spotting, shared/models): random int8 inputs, every sample in one emulator launch, each
output compared with the golden model. A script, not a timed test.

    .venv/bin/python benchmarks/edgec_test_bench.py [--samples 1000] [--target stm32f746]
                                                    [--models DIR]

Prints the compile time (not part of the figure) and the wall time of the `edgec test`
command as a user runs it (a fresh process: Python start-up and imports included).
"""
from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from shared_data import models_dir

EDGEC = [sys.executable, "-m", "edgec.toolchain.cli"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--samples", type=int, default=1000)
    ap.add_argument("--target", default="stm32f746")
    ap.add_argument("--models")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    model = models_dir(args.models) / "kws_dscnn_int8.tflite"
    with tempfile.TemporaryDirectory(prefix="edgec-bench-") as tmp:
        out, cases = Path(tmp) / "net", Path(tmp) / "cases.npz"
        t0 = time.perf_counter()
        subprocess.run([*EDGEC, "compile", str(model), "--target", args.target, "-o", str(out)],
                       check=True, stdout=subprocess.DEVNULL)
        compile_s = time.perf_counter() - t0
        rng = np.random.default_rng(args.seed)
        np.savez(cases, x=rng.integers(-128, 128, size=(args.samples, 49, 10, 1))
                 .astype(np.int8))
        t0 = time.perf_counter()
        proc = subprocess.run([*EDGEC, "test", str(out), "--inputs", str(cases), "--junit",
                               str(Path(tmp) / "junit.xml")], capture_output=True, text=True)
        wall = time.perf_counter() - t0
    print(proc.stdout.rstrip())
    if proc.returncode != 0:
        print(proc.stderr.rstrip())
        raise SystemExit(f"edgec test exited with {proc.returncode}")
    print(f"\ncompile: {compile_s:.1f} s (not counted)")
    print(f"edgec test, {args.samples} samples of kws_dscnn_int8 on {args.target}: "
          f"{wall:.1f} s wall ({1e3 * wall / args.samples:.1f} ms per sample)")


if __name__ == "__main__":
    main()
