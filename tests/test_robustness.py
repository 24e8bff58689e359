"""Interrupts and broken toolchains: `edgec compile` stopped by Ctrl-C (SIGINT) or SIGTERM
while the frontend, gcc or QEMU runs, or failing because the cross compiler or the emulator fails,
leaves no output directory, no staging directory and no stray gcc/QEMU process, and says
what happened in one line.

The cross compiler and QEMU are wrapped by scripts placed first on PATH that record their
PIDs and wait before running the real tool, so each phase lasts long enough to interrupt.
"""
from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import shared_models_dir

MODEL = shared_models_dir() / "hello_world_int8.tflite"
CC, QEMU = "arm-none-eabi-gcc", "qemu-system-arm"


def _wrapper(bin_dir: Path, tool: str, body: str) -> None:
    path = bin_dir / tool
    path.write_text("#!/bin/sh\n" + body)
    path.chmod(0o755)


def _delay(bin_dir: Path, tool: str, seconds: float) -> None:
    """tool = record PIDs, sleep, then the real tool."""
    real = shutil.which(tool)
    pids = bin_dir / "pids"
    _wrapper(bin_dir, tool, f'echo $$ >> "{pids}"\nsleep {seconds} &\necho $! >> "{pids}"\n'
                            f'wait $!\nexec "{real}" "$@"\n')


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state not in ("Z", "X")


def _start(tmp: Path, bin_dir: Path, *extra: str) -> subprocess.Popen:
    env = {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}"}
    return subprocess.Popen([sys.executable, "-m", "edgec.toolchain.cli", "compile", str(MODEL),
                             "-o", str(tmp / "out" / "net"), *extra], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _wait_for(pred, timeout: float = 60.0) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if pred():
            return True
        time.sleep(0.02)
    return False


def _no_output_left(tmp: Path) -> None:
    out = tmp / "out"
    assert not (out / "net").exists()
    assert [p.name for p in out.iterdir()] == [] if out.exists() else True


def _recorded(bin_dir: Path) -> list[int]:
    pids = bin_dir / "pids"
    return [int(p) for p in pids.read_text().split()] if pids.is_file() else []


def _one_line(err: str, says: str) -> str:
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("edgec: "), err
    assert says in lines[0], lines[0]
    assert "Traceback" not in err
    return lines[0]


@pytest.mark.parametrize("phase, sig", [("frontend", signal.SIGINT), ("gcc", signal.SIGINT),
                                        ("qemu", signal.SIGINT), ("gcc", signal.SIGTERM),
                                        ("qemu", signal.SIGTERM)])
def test_interrupt_leaves_no_output_and_no_process(phase, sig, tmp_path):
    """Ctrl-C, or SIGTERM (a cancelled CI job), at a few points of a compile."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    if phase == "gcc":
        _delay(bin_dir, CC, 30)
    elif phase == "qemu":
        _delay(bin_dir, QEMU, 30)
    proc = _start(tmp_path, bin_dir)
    try:
        if phase == "frontend":  # the staging directory exists: the compile has begun
            ready = _wait_for(lambda: any((tmp_path / "out").glob(".net.*")))
        else:
            ready = _wait_for(lambda: len(_recorded(bin_dir)) >= 2)
        assert ready, f"phase {phase} never reached: {proc.communicate(timeout=120)}"
        time.sleep(0.2)
        proc.send_signal(sig)
        t0 = time.monotonic()
        _, err = proc.communicate(timeout=120)
        elapsed = time.monotonic() - t0
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, err
    _one_line(err, "interrupted; no output was written")
    assert elapsed < 20, f"took {elapsed:.1f} s to stop"  # the tools wait 30 s: killed
    _no_output_left(tmp_path)
    stray = [p for p in _recorded(bin_dir) if _alive(p)]
    assert not stray, f"processes left running: {stray}"


def test_interrupted_build_does_not_compile_the_remaining_units(tmp_path):
    """Ctrl-C in the build stops the build: the units not yet started never start."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    _delay(bin_dir, CC, 2)
    proc = _start(tmp_path, bin_dir)
    try:
        assert _wait_for(lambda: len(_recorded(bin_dir)) >= 2)
        started = len(_recorded(bin_dir))
        proc.send_signal(signal.SIGINT)
        proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130
    # each wrapper records 2 PIDs: no unit started after Ctrl-C (a race may add one)
    assert len(_recorded(bin_dir)) <= started + 2
    _no_output_left(tmp_path)


@pytest.mark.parametrize("tool, code, says", [
    (CC, 4, "failed: fake arm-none-eabi-gcc: internal compiler error"),
    (QEMU, 4, "emulator failed (exit code 1)"),
    ("missing-cc", 4, "arm-none-eabi-gcc not found"),
])
def test_failing_toolchain_leaves_no_output(tool, code, says, tmp_path):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    env_path = None
    if tool == "missing-cc":  # a PATH without the cross compiler (but with Python's tools)
        env_path = str(bin_dir)
    else:
        _wrapper(bin_dir, tool, f'echo "fake {tool}: internal compiler error" >&2\nexit 1\n')
    env = {**os.environ, "PATH": env_path or f"{bin_dir}{os.pathsep}{os.environ['PATH']}"}
    proc = subprocess.run([sys.executable, "-m", "edgec.toolchain.cli", "compile", str(MODEL),
                           "-o", str(tmp_path / "out" / "net")], env=env, capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == code, proc.stderr
    _one_line(proc.stderr, says)
    _no_output_left(tmp_path)
