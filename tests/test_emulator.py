"""The fake model on QEMU: batched outputs, instruction counts, stack, profile, failures.

Every run has a timeout (run_firmware's timeout_s), so a hung emulator fails the test.
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from edgec.toolchain.build import build_firmware
from edgec.toolchain.emulator import run_firmware
from edgec.toolchain.errors import EdgecError, ToolchainError
from edgec.toolchain.target import load_target

FAKE_MODEL = Path(__file__).parent / "fake_model"
LOOP_INSTRUCTIONS = 4 * 2 * 5000  # 4 layers x 5000 iterations x (SUBS + BNE)
TIMEOUT_S = 30.0



@pytest.fixture(scope="module")
def f746():
    return load_target("stm32f746")


@pytest.fixture(scope="module")
def fw(f746, tmp_path_factory):
    return build_firmware(FAKE_MODEL, f746, tmp_path_factory.mktemp("fw"))


@pytest.fixture(scope="module")
def fw_profile(f746, tmp_path_factory):
    return build_firmware(FAKE_MODEL, f746, tmp_path_factory.mktemp("fwp"), profile=True)


def samples(n: int, seed: int = 0) -> np.ndarray:
    x = np.random.default_rng(seed).integers(-128, 128, size=(n, 16)).astype(np.int8)
    x[0, :4] = [127, -128, 0, -1]  # wrap-around cases
    x[:, 1] = np.where(x[:, 0] == -128, 0, x[:, 1])  # -128, -128 means "fail"
    return x


def expected(x: np.ndarray) -> np.ndarray:
    return (x.astype(np.int16) + 1).astype(np.int8)  # wraps 127 -> -128


def run(fw, target, x, **kw):
    return run_firmware(fw.elf, target, x, 16, timeout_s=TIMEOUT_S, **kw)


def test_batched_outputs_counts_and_stack(fw, f746):
    x = samples(6)
    res = run(fw, f746, x)
    np.testing.assert_array_equal(res.outputs, expected(x))
    assert res.instructions_per_tick == 5.0  # -icount shift=3, 25 MHz SysTick
    assert len(res.instructions) == 6
    # the known loops plus the byte-add loops and calls: a few hundred instructions
    for n in res.instructions:
        assert LOOP_INSTRUCTIONS <= n <= LOOP_INSTRUCTIONS + 1000
    assert 0 < res.stack_bytes < res.stack_reserved_bytes == f746.stack_bytes
    assert res.layer_instructions is None


def test_instruction_counts_are_deterministic(fw, f746):
    x = samples(3, seed=1)
    a, b = run(fw, f746, x), run(fw, f746, x)
    assert a.instructions == b.instructions
    assert a.stack_bytes == b.stack_bytes


def test_profile_layers_add_up_to_total(fw_profile, f746):
    x = samples(3, seed=2)
    res = run(fw_profile, f746, x, profile=True)
    np.testing.assert_array_equal(res.outputs, expected(x))
    assert len(res.layer_instructions) == 3
    for total, layers in zip(res.instructions, res.layer_instructions):
        assert len(layers) == 4
        assert all(10_000 <= n <= 10_400 for n in layers)
        assert 0 <= total - sum(layers) <= 200  # hook calls and the code around the layers


def test_counts_survive_systick_wraps(fw, f746, tmp_path):
    # reload 999: the 24-bit counter wraps every 5000 instructions, ~8 times per inference
    wrapped = build_firmware(FAKE_MODEL, f746, tmp_path,
                             extra_cflags=["-DEDGEC_SYSTICK_RELOAD=999u"])
    x = samples(4, seed=3)
    plain, many = run(fw, f746, x), run(wrapped, f746, x)
    np.testing.assert_array_equal(many.outputs, expected(x))
    assert many.instructions_per_tick == 5.0
    for a, b in zip(plain.instructions, many.instructions):
        assert a <= b <= a * 1.01  # the interrupt handler adds ~5 instructions per wrap


def test_second_target_cortex_m4(tmp_path):
    f411 = load_target("stm32f411")
    fw = build_firmware(FAKE_MODEL, f411, tmp_path)
    x = samples(2, seed=4)
    res = run(fw, f411, x)
    np.testing.assert_array_equal(res.outputs, expected(x))
    assert res.stack_reserved_bytes == f411.stack_bytes
    assert all(LOOP_INSTRUCTIONS <= n <= LOOP_INSTRUCTIONS + 1000 for n in res.instructions)


def test_model_error_is_reported_with_the_sample(fw, f746):
    x = samples(3, seed=5)
    x[1, :2] = -128
    with pytest.raises(EdgecError, match=r"edgec_model_run returned 3 on sample 1 of 3"):
        run(fw, f746, x)


def test_wrong_input_size(fw, f746):
    with pytest.raises(EdgecError, match="expects EDGEC_INPUT_SIZE = 16"):
        run_firmware(fw.elf, f746, np.zeros((2, 8), np.int8), 16, timeout_s=TIMEOUT_S)
    with pytest.raises(EdgecError, match="int8"):
        run_firmware(fw.elf, f746, np.zeros((2, 16), np.float32), 16, timeout_s=TIMEOUT_S)


def test_profile_needs_profile_build(fw, f746):
    with pytest.raises(EdgecError, match="built without profile=True"):
        run(fw, f746, samples(1), profile=True)


def test_stack_overflow_is_caught_by_the_guard(f746, tmp_path):
    hog = build_firmware(FAKE_MODEL, f746, tmp_path, extra_cflags=["-DFAKE_STACK_HOG=20000"])
    with pytest.raises(EdgecError, match=r"stack overflow: the model needs more than the "
                                         r"16384 B reserved"):
        run(hog, f746, samples(1))


def _qemu_pids_for(elf: Path) -> list[int]:
    pids = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                cmdline = Path(f"/proc/{entry}/cmdline").read_bytes().decode(errors="replace")
            except OSError:
                continue
            if "qemu-system-arm" in cmdline and str(elf) in cmdline:
                pids.append(int(entry))
    return pids


def test_timeout_kills_qemu(f746, tmp_path):
    # FAKE_LOOP_ITERATIONS 0: SUBS wraps, each layer runs 2^32 iterations (minutes)
    hung = build_firmware(FAKE_MODEL, f746, tmp_path, extra_cflags=["-DFAKE_LOOP_ITERATIONS=0u"])
    with pytest.raises(EdgecError, match=r"emulator timed out after 1 s \(0/1 inferences"):
        run_firmware(hung.elf, f746, samples(1), 16, timeout_s=1.0)
    assert _qemu_pids_for(hung.elf) == []


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGKILL])
def test_killed_run_leaves_no_qemu_behind(sig, f746, tmp_path):
    """Ctrl-C is handled; SIGKILL runs no handler, so the kernel must take QEMU down."""
    hung = build_firmware(FAKE_MODEL, f746, tmp_path, extra_cflags=["-DFAKE_LOOP_ITERATIONS=0u"])
    script = (
        "import numpy as np, sys\n"
        "from edgec.toolchain.emulator import run_firmware\n"
        "from edgec.toolchain.target import load_target\n"
        "print('go', flush=True)\n"
        f"run_firmware({str(hung.elf)!r}, load_target('stm32f746'), np.zeros((1, 16), np.int8),"
        " 16, timeout_s=60)\n")
    child = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)
    try:
        assert child.stdout.readline().strip() == "go"
        deadline = time.monotonic() + 20
        while not _qemu_pids_for(hung.elf) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert _qemu_pids_for(hung.elf), "qemu did not start"
        child.send_signal(sig)
        _, err = child.communicate(timeout=20)
    finally:
        if child.poll() is None:
            child.kill()
    assert sig == signal.SIGKILL or "KeyboardInterrupt" in err
    deadline = time.monotonic() + 5  # the kernel delivers the parent-death signal at once
    while _qemu_pids_for(hung.elf) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert _qemu_pids_for(hung.elf) == []


def test_missing_qemu_says_how_to_install(fw, f746):
    import dataclasses
    target = dataclasses.replace(f746, qemu="qemu-system-arm-not-installed")
    with pytest.raises(ToolchainError, match="apt-get install --no-install-recommends "
                                             "qemu-system-arm"):
        run_firmware(fw.elf, target, samples(1), 16, timeout_s=TIMEOUT_S)
