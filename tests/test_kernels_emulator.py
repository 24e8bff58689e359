"""Every kernel case of tests/kernel_cases.py, cross-compiled for the Cortex-M7 target and run
on QEMU: the firmware's bytes must equal the golden model's, element by element."""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from edgec.codegen import emit_sources
from edgec.toolchain.build import build_firmware
from edgec.toolchain.emulator import run_firmware
from edgec.toolchain.golden import run_program
from edgec.toolchain.target import load_target
from kernel_cases import CASES, build_case

META = {"model": "kernel_case", "model_sha256": "0" * 64, "target": "stm32f746",
        "command": "tests/test_kernels_emulator.py"}


@pytest.fixture(scope="module")
def firmwares(tmp_path_factory):
    """Each case emitted and cross-compiled once (in parallel: the compiler is the slow part)."""
    target = load_target("stm32f746")
    root = tmp_path_factory.mktemp("emu_cases")

    def build(case):
        program, plan, inputs = build_case(case)
        src = root / case.id / "src"
        emit_sources(program, plan, src, META)
        return program, inputs, build_firmware(src, target, root / case.id)

    with ThreadPoolExecutor(max_workers=2) as pool:
        built = list(pool.map(build, CASES))
    return target, {c.id: b for c, b in zip(CASES, built)}


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_firmware_equals_golden(case, firmwares):
    target, built = firmwares
    program, inputs, fw = built[case.id]
    graph = program.graph
    in_name, out_name = graph.inputs[0], graph.outputs[0]
    samples = inputs[in_name]
    out_bytes = graph.tensors[out_name].nbytes
    res = run_firmware(fw.elf, target, samples.reshape(len(samples), -1), out_bytes,
                       timeout_s=60)
    assert res.outputs.shape == (len(samples), out_bytes)
    for s in range(len(samples)):
        want = run_program(program, {in_name: samples[s]})[out_name].reshape(-1)
        bad = np.flatnonzero(res.outputs[s] != want)
        assert bad.size == 0, (f"sample {s}: {bad.size}/{want.size} values differ, first at "
                               f"{bad[0]}: firmware {res.outputs[s][bad[0]]} vs golden "
                               f"{want[bad[0]]}")
    assert all(n > 0 for n in res.instructions)
