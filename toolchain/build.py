"""Firmware build: generated model sources + runtime_c/harness -> one ELF for a target.

    build_firmware(src_dir, target, out_dir) -> BuildResult

src_dir holds what codegen wrote (edgec_model.h, edgec_model.c, kernel sources; every *.c
below it is compiled). The harness sources are copied to OUT/harness/, the linker script is
rendered from targets/cortex_m.ld.j2 into OUT/firmware.ld, objects go to OUT/obj/, and the
result is OUT/firmware.elf (+ firmware.map, build.log).

The linker script gives every region the board's real size and reserves the stack as a
sized section, so a model that does not fit fails at link time: that failure is turned into
a BudgetError with the arena / stack / SRAM figures.

Builds are deterministic: same sources and flags -> same ELF bytes, whatever the
directories (sources are compiled by relative path, -ffile-prefix-map, no -g, no dates).
"""
from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import tempfile
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Sequence

import jinja2

from .errors import BudgetError, EdgecError, ToolchainError
from .subproc import die_with_parent
from .target import Target

APT_HINT = "apt-get install --no-install-recommends gcc-arm-none-eabi libnewlib-arm-none-eabi"

# Code generation flags for every unit; the target adds its machine flags (-mcpu ...) and
# the optimization goal its -O level (OPT_LEVELS).
BASE_CFLAGS = (
    "-std=c99", "-Wall", "-Wextra", "-Werror",
    "-ffunction-sections", "-fdata-sections",
)
# --optimize goal -> -O flag (a literal "-O..." is also accepted by build_firmware).
OPT_LEVELS = {"speed": "-O2", "size": "-Os"}
# -nostartfiles: our start-up (harness/startup.c), not newlib's crt0.
# rdimon.specs: newlib's syscalls over semihosting, in case model code calls libc I/O;
# the harness itself does its I/O with direct semihosting calls (harness/semihost.c).
LINK_FLAGS = ("-nostartfiles", "--specs=rdimon.specs", "-Wl,--gc-sections",
              "-Wl,--no-warn-rwx-segments")

_OVERFLOW_RE = re.compile(r"region `([A-Za-z0-9_]+)' overflowed by (\d+) bytes")


@dataclass
class BuildResult:
    elf: Path
    flash_code_bytes: int  # everything in flash but the weights: vectors, code, constants,
    #                        the .data load image (harness and libc included)
    flash_weights_bytes: int  # the .rodata.edgec_weights section
    flash_total_bytes: int
    ram_static_bytes: int  # .data + .bss: the arena, harness buffers, other statics
    stack_reserved_bytes: int
    arena_bytes: int | None  # EDGEC_ARENA_SIZE from edgec_model.h, when it is a literal
    flash_budget_bytes: int
    sram_budget_bytes: int
    target: str
    profile: bool
    linked_for: str  # "emulator" (QEMU origins) or "board"
    map_file: Path


def build_firmware(src_dir: str | Path, target: Target, out_dir: str | Path,
                   profile: bool = False, *, for_emulator: bool = True,
                   extra_cflags: Sequence[str] = (), opt_level: str = "speed") -> BuildResult:
    """Compile and link the model in src_dir with the harness for `target`.

    profile: route EDGEC_LAYER_HOOK to the harness (per-layer instruction counts).
    for_emulator: link at the emulator origins of the target (sizes stay the board's);
        False links at the board's addresses (the harness still needs a semihosting host).
    extra_cflags: appended to every compile (tests use it, e.g. -DEDGEC_SYSTICK_RELOAD=...).
    opt_level: "speed" (-O2), "size" (-Os), or a literal -O flag.
    """
    src_dir = Path(src_dir).resolve()
    out_dir = Path(out_dir).resolve()
    if not (src_dir / "edgec_model.h").is_file():
        raise EdgecError(f"no edgec_model.h in {src_dir}: run codegen first")
    harness_dir = out_dir / "harness"  # our copy of the harness (out_dir may be in src_dir)
    model_sources = sorted(p.relative_to(src_dir).as_posix() for p in src_dir.rglob("*.c")
                           if not p.is_relative_to(harness_dir))
    if not model_sources:
        raise EdgecError(f"no C sources in {src_dir}")
    cc = _find_tool(target.cc)
    nm = _find_tool(_sibling_tool(target.cc, "nm"))

    out_dir.mkdir(parents=True, exist_ok=True)
    harness_sources = _copy_harness(harness_dir)
    obj_dir = out_dir / "obj"
    if obj_dir.exists():
        shutil.rmtree(obj_dir)
    obj_dir.mkdir()
    linker_script = out_dir / "firmware.ld"
    linker_script.write_text(render_linker_script(target, for_emulator), encoding="utf-8")

    header_dirs = sorted({p.parent for p in src_dir.rglob("*.h")
                          if not p.is_relative_to(harness_dir)} | {src_dir})
    if opt_level not in OPT_LEVELS and not re.fullmatch(r"-O[0-3sgz]|-Ofast", opt_level):
        raise EdgecError(f"opt_level must be one of {sorted(OPT_LEVELS)} or an -O flag, "
                         f"got {opt_level!r}")
    cflags = [OPT_LEVELS.get(opt_level, opt_level), *BASE_CFLAGS, *target.cflags,
              f"-ffile-prefix-map={src_dir}=src", f"-ffile-prefix-map={harness_dir}=harness",
              *(f"-I{d}" for d in header_dirs), f"-I{harness_dir}"]
    if profile:
        cflags += ["-DEDGEC_PROFILE=1", "-include", str(harness_dir / "edgec_profile.h")]
    cflags += list(extra_cflags)

    log: list[str] = []
    units = [(src_dir, s, obj_dir / ("model__" + s.replace("/", "__")[:-2] + ".o"))
             for s in model_sources]
    units += [(harness_dir, s, obj_dir / ("harness__" + s[:-2] + ".o")) for s in harness_sources]
    env = dict(os.environ, LC_ALL="C")

    # Ctrl-C (or any error) while compiling: kill the compilers that run, start no more.
    running: set[subprocess.Popen] = set()
    lock = threading.Lock()
    stopped = threading.Event()

    def compile_unit(unit: tuple[Path, str, Path]) -> subprocess.CompletedProcess:
        root, rel, obj = unit
        with lock:
            if stopped.is_set():
                raise ToolchainError("build stopped")
            proc = subprocess.Popen([cc, *cflags, "-c", rel, "-o", str(obj)], cwd=root,
                                    env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                    text=True, start_new_session=True,  # killpg: cc1, as
                                    preexec_fn=die_with_parent())
            running.add(proc)
        try:
            out, err = proc.communicate()
        finally:
            with lock:
                running.discard(proc)
        return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)

    pool = ThreadPoolExecutor(max_workers=max(1, os.cpu_count() or 1))
    try:
        results = list(pool.map(compile_unit, units))
    except BaseException:
        with lock:
            stopped.set()
            for proc in running:
                try:
                    os.killpg(proc.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
        raise
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
    for (root, rel, _), proc in zip(units, results):
        log.append(f"$ (cd {root}) {' '.join(proc.args)}\n{proc.stdout}{proc.stderr}")
    _write_log(out_dir, log)
    for (root, rel, _), proc in zip(units, results):
        if proc.returncode != 0:
            raise ToolchainError(f"compiling {rel} failed: {_first_error(proc.stderr)} "
                                 f"(full log: {_keep_log(out_dir)})")

    elf = out_dir / "firmware.elf"
    map_file = out_dir / "firmware.map"
    elf.unlink(missing_ok=True)  # no stale firmware if this link fails
    objects = sorted(str(u[2].relative_to(out_dir)) for u in units)
    link_cmd = [cc, *target.cflags, *LINK_FLAGS, "-T", "firmware.ld",
                f"-Wl,-Map={map_file.name}", *objects, "-o", elf.name]
    proc = subprocess.run(link_cmd, cwd=out_dir, env=env, capture_output=True, text=True)
    log.append(f"$ (cd {out_dir}) {' '.join(link_cmd)}\n{proc.stdout}{proc.stderr}")
    _write_log(out_dir, log)
    arena = _arena_size(src_dir / "edgec_model.h")
    if proc.returncode != 0:
        overflows = _OVERFLOW_RE.findall(proc.stderr)
        if overflows:
            weights = _weights_in_objects(_sibling_tool(target.cc, "size"),
                                          [u[2] for u in units])
            raise _budget_error(target, {name.lower(): int(n) for name, n in overflows}, arena,
                                weights)
        raise ToolchainError(f"linking firmware failed: {_first_error(proc.stderr)} "
                             f"(full log: {_keep_log(out_dir)})")

    sym = _symbols(nm, elf)
    flash_total = sym["__flash_end"] - sym["__flash_start"]
    weights = sym["__edgec_weights_end"] - sym["__edgec_weights_start"]
    return BuildResult(
        elf=elf,
        flash_code_bytes=flash_total - weights,
        flash_weights_bytes=weights,
        flash_total_bytes=flash_total,
        ram_static_bytes=sym["__ram_static_end"] - sym["__ram_static_start"],
        stack_reserved_bytes=sym["__stack_end"] - sym["__stack_start"],
        arena_bytes=arena,
        flash_budget_bytes=target.flash.size,
        sram_budget_bytes=target.sram.size,
        target=target.name,
        profile=profile,
        linked_for="emulator" if for_emulator else "board",
        map_file=map_file,
    )


def render_linker_script(target: Target, for_emulator: bool = True) -> str:
    """targets/cortex_m.ld.j2 filled with the target's regions and placement."""
    template_text = (resources.files("edgec.targets") / "cortex_m.ld.j2").read_text(
        encoding="utf-8")
    env = jinja2.Environment(undefined=jinja2.StrictUndefined, keep_trailing_newline=True)
    regions = [
        {"name": r.name.upper(), "attrs": r.attrs, "size": r.size,
         "origin": target.emulator_origins[r.name] if for_emulator else r.origin}
        for r in target.regions
    ]
    return env.from_string(template_text).render(
        target=target,
        link_for=f"emulator ({target.qemu_machine})" if for_emulator else "board",
        regions=regions,
        code_region=target.code_region.upper(),
        weights_region=target.weights_region.upper(),
        ram_region=target.arena_region.upper(),
        stack_region=target.stack_region.upper(),
        stack_bytes=target.stack_bytes,
    )


# ---- helpers -----------------------------------------------------------------------------

def _find_tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        raise ToolchainError(f"{name} not found; install it with: {APT_HINT}")
    return path


def _sibling_tool(cc: str, tool: str) -> str:
    """arm-none-eabi-gcc -> arm-none-eabi-nm (same directory when cc is a path)."""
    return re.sub(r"gcc(-[0-9.]+)?$", tool, cc) if re.search(r"gcc(-[0-9.]+)?$", cc) else tool


def _copy_harness(dest: Path) -> list[str]:
    """Copy runtime_c/harness/*.{c,h} into dest; return the .c names, sorted."""
    dest.mkdir(parents=True, exist_ok=True)
    root = resources.files("edgec.runtime_c") / "harness"
    sources = []
    for entry in sorted(root.iterdir(), key=lambda e: e.name):
        if entry.name.endswith((".c", ".h")):
            data = entry.read_bytes()
            target_file = dest / entry.name
            if not target_file.exists() or target_file.read_bytes() != data:
                target_file.write_bytes(data)
            if entry.name.endswith(".c"):
                sources.append(entry.name)
    return sources


def _write_log(out_dir: Path, log: list[str]) -> None:
    (out_dir / "build.log").write_text("\n".join(log), encoding="utf-8")


def _keep_log(out_dir: Path) -> Path:
    """A failed build's output dir is a staging dir that is about to be removed: keep its log
    in the system temp dir so the path in the error message still opens."""
    fd, name = tempfile.mkstemp(prefix="edgec-build-", suffix=".log")
    with os.fdopen(fd, "wb") as f:
        f.write((out_dir / "build.log").read_bytes())
    return Path(name)


def _first_error(stderr: str) -> str:
    lines = [ln.strip() for ln in stderr.splitlines() if ln.strip()]
    for ln in lines:
        if "error" in ln.lower():
            return ln
    return lines[0] if lines else "no compiler output"


_ARENA_RE = re.compile(r"^\s*#\s*define\s+EDGEC_ARENA_SIZE\s+\(?\s*(\d+)[uUlL]*\s*\)?\s*$",
                       re.MULTILINE)


def _arena_size(header: Path) -> int | None:
    m = _ARENA_RE.search(header.read_text(encoding="utf-8", errors="replace"))
    return int(m.group(1)) if m else None


def _symbols(nm: str, elf: Path) -> dict[str, int]:
    proc = subprocess.run([nm, "-P", str(elf)], capture_output=True, text=True)
    if proc.returncode != 0:
        raise ToolchainError(f"reading symbols of {elf} failed: {_first_error(proc.stderr)}")
    symbols = {}
    for line in proc.stdout.splitlines():
        parts = line.split()
        if len(parts) >= 3:
            try:
                symbols[parts[0]] = int(parts[2], 16)
            except ValueError:
                pass
    return symbols


def _weights_in_objects(size_tool: str, objects: list[Path]) -> int | None:
    """Bytes of .rodata.edgec_weights over the objects (before --gc-sections), or None."""
    tool = shutil.which(size_tool)
    if tool is None:
        return None
    proc = subprocess.run([tool, "-A", *map(str, objects)], capture_output=True, text=True)
    if proc.returncode != 0:
        return None
    total = 0
    for line in proc.stdout.splitlines():
        parts = line.split()
        if len(parts) >= 2 and parts[0].startswith(".rodata.edgec_weights"):
            total += int(parts[1])
    return total


def _budget_error(target: Target, overflow: dict[str, int], arena: int | None,
                  weights: int | None) -> BudgetError:
    """One line with the figures, from ld's `region `X' overflowed by N bytes`."""
    parts = []
    sram_name = target.arena_region
    if sram_name in overflow:
        over = overflow[sram_name]
        size = target.sram.size
        needed = size + over
        stack = target.stack_bytes if target.stack_region == sram_name else 0
        static = needed - stack
        arena_text = ""
        if arena is not None:
            arena_text = f"arena {arena} B + other static {static - arena} B + "
        else:
            arena_text = f"static data {static} B + "
        parts.append(f"SRAM needs {needed} B ({arena_text}stack {stack} B) but "
                     f"{target.name} has {size} B (over by {over} B)")
    for name, over in overflow.items():
        if name == sram_name:
            continue
        size = target.region(name).size if name in {r.name for r in target.regions} else 0
        label = "flash" if name == target.weights_region else name
        detail = ""
        if name == target.weights_region and weights is not None:
            detail = f" (weights {weights} B + code and constants {size + over - weights} B)"
        parts.append(f"{label} needs {size + over} B{detail} but {target.name} has {size} B "
                     f"(over by {over} B)")
    return BudgetError("model does not fit: " + "; ".join(parts))
