"""The generated C under AddressSanitizer and UndefinedBehaviorSanitizer on the host, and
build determinism.

Every shipped int8 model (shared/models) and the example CNN are compiled to C, built for
the host with tests/host_main.c under -fsanitize=address,undefined (any report aborts), run
on random inputs, and compared value for value with edgec's golden model (from the
golden.npz the compile wrote). Compiling the same model twice, into different directories,
gives byte-identical src/, firmware.elf and golden.npz.
"""
from __future__ import annotations

import filecmp
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from edgec.toolchain import check, golden_io
from edgec.toolchain.options import CompileOptions
from edgec.toolchain.pipeline import compile_model
from conftest import shared_models_dir

ROOT = Path(__file__).resolve().parents[1]
MODELS = shared_models_dir()
HOST_MAIN = Path(__file__).resolve().parent / "host_main.c"
# -O0: the sanitizers need no optimizer, and the weight tables compile 3x faster
SAN_CFLAGS = ["-std=c99", "-Wall", "-Wextra", "-Werror", "-O0",
              "-fsanitize=address,undefined", "-fno-sanitize-recover=all",
              "-fno-omit-frame-pointer"]
SAN_ENV = {"ASAN_OPTIONS": "detect_leaks=1:abort_on_error=0:exitcode=86",
           "UBSAN_OPTIONS": "print_stacktrace=1:halt_on_error=1:exitcode=87"}
INT8_MODELS = ["hello_world_int8", "micro_speech_quantized", "kws_dscnn_int8",
               "ad_fc_autoencoder_int8"]
SAMPLES = 6



@pytest.fixture(scope="module")
def example_cnn(tmp_path_factory):
    d = tmp_path_factory.mktemp("cnn")
    subprocess.run([sys.executable, str(ROOT / "examples" / "cnn" / "make_model.py"), "--out",
                    str(d)], check=True, capture_output=True)
    return d


def _sanitized_run(out: Path, tmp: Path, seed: int) -> None:
    src = out / "src"
    exe = tmp / "model_san"
    build = subprocess.run(["gcc", *SAN_CFLAGS, "-I", str(src),
                            *map(str, sorted(src.glob("*.c"))), str(HOST_MAIN), "-o", str(exe),
                            "-lm"], capture_output=True, text=True)
    assert build.returncode == 0, f"gcc failed:\n{build.stderr[-3000:]}"
    io = json.loads((out / "model.json").read_text())["io"]
    x = check.test_inputs(io, None, SAMPLES // 2, seed)  # uniform int8 (or float) inputs
    (tmp / "in.bin").write_bytes(check.to_bytes(x).tobytes())
    run = subprocess.run([str(exe), str(tmp / "in.bin"), str(tmp / "out.bin")],
                         capture_output=True, text=True, timeout=300,
                         env={**os.environ, **SAN_ENV})
    report = run.stderr
    assert run.returncode == 0 and "runtime error" not in report \
        and "Sanitizer" not in report, f"exit {run.returncode}:\n{report[-4000:]}"
    spec = io["outputs"][0]
    raw = np.fromfile(tmp / "out.bin", dtype=np.int8).reshape(len(x), -1)
    got = check.from_bytes(raw, spec).reshape(len(x), *spec["shape"][1:])
    want = check.golden_outputs(golden_io.load_program(out / "golden.npz"), io, x)
    res = check.compare(want, got)
    assert res["mismatches"] == 0, res


@pytest.mark.parametrize("name, optimize", [(m, "speed") for m in INT8_MODELS] + [
    ("kws_dscnn_int8", "size"), ("micro_speech_quantized", "size")])  # the other kernels
def test_shipped_models_under_sanitizers(name, optimize, tmp_path):
    path = MODELS / f"{name}.tflite"
    out = tmp_path / "net"
    compile_model(CompileOptions(model=path, target="stm32f746", out_dir=out, build=False,
                                 run=False, optimize=optimize))
    _sanitized_run(out, tmp_path, seed=1)


@pytest.mark.parametrize("optimize", ["speed", "size"])
def test_example_cnn_under_sanitizers(example_cnn, optimize, tmp_path):
    out = tmp_path / "net"
    compile_model(CompileOptions(model=example_cnn / "model.pt", target="stm32f746",
                                 out_dir=out, calib=example_cnn / "calib.npy", build=False,
                                 run=False, optimize=optimize))
    _sanitized_run(out, tmp_path, seed=2)


def _same_tree(a: Path, b: Path) -> list[str]:
    """Files that differ (or exist on one side only) between two directory trees."""
    names_a = sorted(p.relative_to(a).as_posix() for p in a.rglob("*") if p.is_file())
    names_b = sorted(p.relative_to(b).as_posix() for p in b.rglob("*") if p.is_file())
    diff = sorted(set(names_a) ^ set(names_b))
    diff += [n for n in names_a if n in names_b
             and not filecmp.cmp(a / n, b / n, shallow=False)]
    return diff


@pytest.mark.parametrize("which", ["kws_dscnn_int8", "example_cnn"])
def test_compiling_twice_gives_identical_bytes(which, request, tmp_path):
    if which == "example_cnn":
        d = request.getfixturevalue("example_cnn")
        model, calib = d / "model.pt", d / "calib.npy"
    else:
        model, calib = MODELS / f"{which}.tflite", None
    outs = []
    for k in range(2):
        out = tmp_path / f"build{k}" / ("deep" * k) / "net"  # different directories
        compile_model(CompileOptions(model=model, target="stm32f746", out_dir=out,
                                     calib=calib, run=False))
        outs.append(out)
    a, b = outs
    assert _same_tree(a / "src", b / "src") == []
    assert (a / "firmware.elf").read_bytes() == (b / "firmware.elf").read_bytes()
    assert (a / "golden.npz").read_bytes() == (b / "golden.npz").read_bytes()


def test_a_planted_overflow_is_caught(tmp_path):
    """The harness itself: an out-of-bounds write in the model's sources fails the check."""
    path = MODELS / "hello_world_int8.tflite"
    out = tmp_path / "net"
    compile_model(CompileOptions(model=path, target="stm32f746", out_dir=out, build=False,
                                 run=False))
    (out / "src" / "planted.c").write_text(
        "int edgec_planted_table[2];\n"
        "__attribute__((constructor)) static void planted(void)\n"
        "{\n    volatile int i = 2;\n    edgec_planted_table[i] = 1;\n}\n")
    with pytest.raises(AssertionError, match="out of bounds|buffer-overflow"):
        _sanitized_run(out, tmp_path, seed=3)
