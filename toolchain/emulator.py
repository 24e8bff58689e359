"""Run a firmware built by toolchain/build.py in QEMU, on a batch of inputs, in one launch.

    run_firmware(elf, target, inputs, output_size) -> RunResult

The harness (runtime_c/harness/main.c) reads edgec_input.bin from QEMU's working directory
over semihosting, runs the model on each sample, writes edgec_output.bin and prints one
`EDGEC ...` line per inference on the semihosting console (QEMU's stderr).

Instruction counts: QEMU runs with -icount shift=S, so virtual time advances exactly 2^S ns
per guest instruction, and the harness reads SysTick on the processor clock (25 MHz on the
MPS2 machines: 40 ns per tick). At S = 3 one tick is 40 / 8 = 5 instructions. The harness
times a SUBS/BNE loop of 2,000,000 instructions at boot (400,006 ticks on QEMU 7.2, for
mps2-an500 and mps2-an386), snaps the ratio to 5 and prints instructions = ticks x 5, so
counts have a resolution of one tick (5 instructions) and include ~5 instructions per
2^24-tick wrap of SysTick (the interrupt that extends it to 64 bits).
"""
from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .errors import EdgecError, ToolchainError
from .subproc import die_with_parent
from .target import Target

QEMU_APT_HINT = "apt-get install --no-install-recommends qemu-system-arm"
INPUT_FILE = "edgec_input.bin"
OUTPUT_FILE = "edgec_output.bin"
CONSOLE_FILE = "console.log"

_EXIT_MODEL_ERROR, _EXIT_IO_ERROR, _EXIT_FAULT = 1, 2, 3
_EXCEPTIONS = {2: "NMI", 3: "HardFault", 4: "MemManage", 5: "BusFault", 6: "UsageFault",
               11: "SVCall", 12: "DebugMonitor", 14: "PendSV"}


@dataclass
class RunResult:
    outputs: np.ndarray  # (N, output_size) int8
    instructions: list[int]  # per inference
    stack_bytes: int  # stack high-water, the largest over the inferences
    layer_instructions: list[list[int]] | None  # [inference][layer] when profiled
    instructions_per_tick: float  # measured at boot (see module doc)
    stack_reserved_bytes: int
    console: str  # the harness's console output


def run_firmware(elf: str | Path, target: Target, inputs: np.ndarray, output_size: int,
                 timeout_s: float = 120.0, profile: bool = False,
                 work_dir: str | Path | None = None) -> RunResult:
    """Run `elf` on every row of `inputs` ((N, EDGEC_INPUT_SIZE) int8) in one QEMU launch.

    profile: expect a firmware built with profile=True and return per-layer counts.
    work_dir: where QEMU runs and its files stay (default: a temporary dir, removed).
    Raises EdgecError on timeout, a model error or a crash; ToolchainError if QEMU is
    missing or fails.
    """
    inputs = np.asarray(inputs)
    if inputs.dtype != np.int8 or inputs.ndim != 2 or inputs.shape[0] == 0:
        raise EdgecError(f"emulator inputs must be a non-empty (N, input_size) int8 array, "
                         f"got {inputs.dtype} {inputs.shape}")
    qemu = shutil.which(target.qemu)
    if qemu is None:
        raise ToolchainError(f"{target.qemu} not found; install it with: {QEMU_APT_HINT}")
    elf = Path(elf).resolve()
    if not elf.is_file():
        raise EdgecError(f"firmware not found: {elf}")

    if work_dir is None:
        with tempfile.TemporaryDirectory(prefix="edgec-qemu-") as tmp:
            return _run(qemu, elf, target, inputs, output_size, timeout_s, profile, Path(tmp))
    work = Path(work_dir)
    work.mkdir(parents=True, exist_ok=True)
    return _run(qemu, elf, target, inputs, output_size, timeout_s, profile, work)


def qemu_command(qemu: str, elf: Path, target: Target) -> list[str]:
    return [qemu, "-machine", target.qemu_machine, "-nographic", "-monitor", "none",
            "-serial", "none", "-semihosting-config", "enable=on,target=native",
            "-icount", f"shift={target.icount_shift}", "-kernel", str(elf)]


def _run(qemu: str, elf: Path, target: Target, inputs: np.ndarray, output_size: int,
         timeout_s: float, profile: bool, work: Path) -> RunResult:
    n = inputs.shape[0]
    np.ascontiguousarray(inputs).tofile(work / INPUT_FILE)
    (work / OUTPUT_FILE).unlink(missing_ok=True)
    cmd = qemu_command(qemu, elf, target)
    # Own process group, so a timeout or Ctrl-C kills QEMU and anything it started.
    proc = subprocess.Popen(cmd, cwd=work, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, start_new_session=True,
                            preexec_fn=die_with_parent())
    timed_out = False
    try:
        try:
            out, err = proc.communicate(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            timed_out = True
            _kill_group(proc)
            out, err = proc.communicate()
    finally:
        if proc.poll() is None:  # an exception (KeyboardInterrupt...) left it running
            _kill_group(proc)
            proc.wait()
    console = (err + out).decode("utf-8", errors="replace")
    (work / CONSOLE_FILE).write_text(console, encoding="utf-8")
    lines = [ln.split() for ln in console.splitlines() if ln.startswith("EDGEC ")]
    lines = [ln for ln in lines if len(ln) >= 2]
    runs = [ln for ln in lines if ln[1] == "run"]

    if timed_out:
        raise EdgecError(f"emulator timed out after {timeout_s:g} s ({len(runs)}/{n} "
                         f"inferences done); raise the timeout or look for an endless loop")
    _check_exit(proc.returncode, lines, console, n)

    hello = _one(lines, "hello", console)
    in_size, out_size, num_layers, has_profile, stack_reserved = map(int, hello[2:7])
    if in_size != inputs.shape[1]:
        raise EdgecError(f"inputs have {inputs.shape[1]} bytes per sample but the firmware "
                         f"expects EDGEC_INPUT_SIZE = {in_size}")
    if out_size != output_size:
        raise EdgecError(f"output_size is {output_size} but the firmware has "
                         f"EDGEC_OUTPUT_SIZE = {out_size}")
    if profile and not has_profile:
        raise EdgecError("per-layer profile asked for, but the firmware was built without "
                         "profile=True")
    calib = _one(lines, "calib", console)
    if int(calib[3]) <= 0 or int(calib[4]) <= 0:
        raise ToolchainError("the emulator's SysTick does not count (is -icount on?)")
    factor = int(calib[4]) / 1000  # instructions per tick, measured by the harness
    if len(runs) != n:
        raise ToolchainError(f"emulator reported {len(runs)} of {n} inferences "
                             f"(console: {work / CONSOLE_FILE})")
    instructions = [int(r[3]) for r in runs]
    stack = max(int(r[4]) for r in runs)
    layer_instructions = None
    if profile:
        layers = [ln for ln in lines if ln[1] == "layers"]
        layer_instructions = [[int(t) for t in ln[3:]] for ln in layers]
        if len(layer_instructions) != n or any(len(x) != num_layers
                                               for x in layer_instructions):
            raise ToolchainError(f"malformed per-layer profile (console: {work / CONSOLE_FILE})")

    raw = np.fromfile(work / OUTPUT_FILE, dtype=np.int8)
    if raw.size != n * output_size:
        raise ToolchainError(f"firmware wrote {raw.size} output bytes, expected "
                             f"{n} x {output_size}")
    return RunResult(outputs=raw.reshape(n, output_size), instructions=instructions,
                     stack_bytes=stack, layer_instructions=layer_instructions,
                     instructions_per_tick=factor, stack_reserved_bytes=stack_reserved,
                     console=console)


def _kill_group(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def _one(lines: list[list[str]], kind: str, console: str) -> list[str]:
    for ln in lines:
        if ln[1] == kind:
            return ln
    tail = console.strip().splitlines()[-1:] or ["no output"]
    raise ToolchainError(f"firmware printed no '{kind}' line; last output: {tail[0]}")


def _check_exit(code: int, lines: list[list[str]], console: str, n: int) -> None:
    errors = [ln for ln in lines if ln[1] == "error"]
    faults = [ln for ln in lines if ln[1] == "fault"]
    if code == 0 and not errors and not faults:
        return
    if code == _EXIT_MODEL_ERROR and errors and errors[0][2] == "model":
        index, status = int(errors[0][3]), int(errors[0][4])
        status = status - (1 << 32) if status >= (1 << 31) else status  # printed as uint32
        raise EdgecError(f"edgec_model_run returned {status} on sample {index} of {n} "
                         f"(a kernel rejected its arguments)")
    if code == _EXIT_IO_ERROR and errors:
        raise ToolchainError(f"firmware semihosting I/O failed: {errors[0][2]} "
                             f"(sample {errors[0][3]})")
    if code == _EXIT_FAULT and faults:
        fault = faults[0]
        exc, cfsr = int(fault[3]), int(fault[5])
        if len(fault) >= 8 and fault[7] == "1":
            hello = [ln for ln in lines if ln[1] == "hello"]
            reserved = f"the {hello[0][6]} B " if hello and len(hello[0]) >= 7 else "the "
            raise EdgecError(f"firmware stack overflow: the model needs more than {reserved}"
                             f"reserved; raise placement.stack_bytes in the target file")
        raise EdgecError(f"firmware crashed: {_EXCEPTIONS.get(exc, f'exception {exc}')} "
                         f"(CFSR 0x{cfsr:08X}): an out-of-bounds access or a kernel bug")
    text = [ln for ln in console.splitlines() if ln.strip() and not ln.startswith("EDGEC ")]
    detail = text[0].strip() if text else "no message"
    raise ToolchainError(f"emulator failed (exit code {code}): {detail}")

