"""Target boards: the facts of one microcontroller, read from targets/<name>.toml.

The TOML format is documented at the top of targets/stm32f746.toml. Nothing else in edgec
hard-codes a board: build, emulator and report read a `Target`.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib  # type: ignore[no-redef]

from .errors import EdgecError

_TARGETS_PACKAGE = "edgec.targets"
_FLOAT_ABIS = ("hard", "softfp", "soft")


@dataclass(frozen=True)
class MemoryRegion:
    name: str  # lower case in the TOML ("flash"); the linker script upper-cases it
    origin: int  # on the board
    size: int  # bytes
    attrs: str  # GNU ld attributes: "rx", "rwx"


@dataclass(frozen=True)
class Target:
    name: str
    description: str
    cpu: str  # GCC -mcpu
    fpu: str | None  # GCC -mfpu, None without FPU
    float_abi: str
    dsp: bool
    clock_hz: int
    regions: tuple[MemoryRegion, ...]
    code_region: str
    weights_region: str
    arena_region: str
    stack_region: str
    stack_bytes: int
    cc: str
    cflags: tuple[str, ...]
    qemu: str
    qemu_machine: str
    icount_shift: int
    # region name -> address it is linked at for the emulator (sizes stay the board's)
    emulator_origins: dict[str, int] = field(default_factory=dict, hash=False)
    path: str = ""  # the file it was read from, for messages

    def region(self, name: str) -> MemoryRegion:
        for r in self.regions:
            if r.name == name:
                return r
        raise KeyError(name)

    @property
    def flash(self) -> MemoryRegion:
        """The region holding the weights (the flash budget)."""
        return self.region(self.weights_region)

    @property
    def sram(self) -> MemoryRegion:
        """The region holding the arena (the SRAM budget)."""
        return self.region(self.arena_region)

    @property
    def core(self) -> str:
        """'Cortex-M7' for cpu 'cortex-m7', for reports."""
        if not self.cpu.startswith("cortex-"):
            return self.cpu
        return "Cortex-" + self.cpu[len("cortex-"):].upper().replace("PLUS", "+")

    @property
    def flash_bytes(self) -> int:
        return self.flash.size

    @property
    def sram_bytes(self) -> int:
        return self.sram.size

    @property
    def arena_budget_bytes(self) -> int:
        """SRAM left for the arena (and other static data) once the stack is reserved."""
        stack = self.stack_bytes if self.stack_region == self.arena_region else 0
        return self.sram.size - stack


def list_targets() -> list[str]:
    """Names of the targets shipped in targets/."""
    root = resources.files(_TARGETS_PACKAGE)
    return sorted(p.name[: -len(".toml")] for p in root.iterdir() if p.name.endswith(".toml"))


COMPILED_TARGET_DIR = "target"  # a custom board's file is copied into OUT/target/ by compile


def is_target_file(name_or_path: str | Path) -> bool:
    text_name = str(name_or_path)
    return text_name.endswith(".toml") or "/" in text_name or "\\" in text_name


def load_compiled_target(out_dir: Path, meta: dict) -> Target:
    """The board an output dir was compiled for: its own copy of a custom board file, so
    `edgec run`/`test` work wherever the user's .toml has moved since."""
    if meta.get("target_file"):
        return load_target(Path(out_dir) / meta["target_file"])
    return load_target(meta["target"])


def load_target(name_or_path: str | Path) -> Target:
    """A shipped target by name ("stm32f746") or any target file by path ("my_board.toml")."""
    text_name = str(name_or_path)
    if is_target_file(text_name):
        path = Path(text_name)
        if not path.is_file():
            raise EdgecError(f"target file not found: {path}")
        return _parse(path.read_text(encoding="utf-8"), str(path))
    known = list_targets()
    if text_name not in known:
        raise EdgecError(
            f"unknown target '{text_name}'; known targets: {', '.join(known)} "
            "(or give a path to a .toml target file)")
    resource = resources.files(_TARGETS_PACKAGE) / f"{text_name}.toml"
    return _parse(resource.read_text(encoding="utf-8"), f"targets/{text_name}.toml")


# ---- parsing -----------------------------------------------------------------------------

_SIZE_RE = re.compile(r"^\s*(\d+)\s*([KM]?)i?B?\s*$", re.IGNORECASE)


class _Reader:
    """Typed access to the parsed TOML; every failure names the file and the key."""

    def __init__(self, data: dict, source: str):
        self.data = data
        self.source = source

    def fail(self, key: str, problem: str) -> EdgecError:
        return EdgecError(f"{self.source}: key '{key}' {problem}")

    def get(self, key: str, default: Any = ...) -> Any:
        node: Any = self.data
        for part in key.split("."):
            if not isinstance(node, dict) or part not in node:
                if default is not ...:
                    return default
                raise self.fail(key, "is missing")
            node = node[part]
        return node

    def text(self, key: str, default: Any = ...) -> str:
        value = self.get(key, default)
        if not isinstance(value, str) or not value:
            raise self.fail(key, f"must be a non-empty string, got {value!r}")
        return value

    def flag(self, key: str) -> bool:
        value = self.get(key)
        if not isinstance(value, bool):
            raise self.fail(key, f"must be true or false, got {value!r}")
        return value

    def integer(self, key: str, minimum: int = 0, default: Any = ...) -> int:
        value = self.get(key, default)
        if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
            raise self.fail(key, f"must be an integer >= {minimum}, got {value!r}")
        return value

    def size(self, key: str) -> int:
        """Bytes: an integer or a string such as "320K", "1M"."""
        value = self.get(key)
        if isinstance(value, str):
            m = _SIZE_RE.match(value)
            if m:
                value = int(m.group(1)) * {"": 1, "K": 1024, "M": 1024 * 1024}[
                    m.group(2).upper()]
        if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
            raise self.fail(key, f"must be a size in bytes (e.g. 327680 or \"320K\"), "
                                 f"got {self.get(key)!r}")
        return value

    def str_list(self, key: str) -> tuple[str, ...]:
        value = self.get(key)
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise self.fail(key, "must be a list of strings")
        return tuple(value)


def _parse(text: str, source: str) -> Target:
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise EdgecError(f"{source}: invalid TOML: {e}") from None
    r = _Reader(data, source)

    memory = r.get("memory")
    if not isinstance(memory, dict) or not memory:
        raise r.fail("memory", "must hold at least one [memory.<region>] table")
    regions = []
    for region_name in memory:
        if not re.fullmatch(r"[a-z][a-z0-9_]*", region_name):
            raise r.fail(f"memory.{region_name}", "must be a lower-case identifier")
        attrs = r.text(f"memory.{region_name}.attrs")
        if not re.fullmatch(r"[rwxai!]+", attrs):
            raise r.fail(f"memory.{region_name}.attrs", f"is not a GNU ld attribute string: "
                                                        f"{attrs!r}")
        regions.append(MemoryRegion(region_name, r.integer(f"memory.{region_name}.origin"),
                                    r.size(f"memory.{region_name}.size"), attrs))
    region_names = [g.name for g in regions]

    def placed(key: str) -> str:
        name = r.text(key)
        if name not in region_names:
            raise r.fail(key, f"names region '{name}', not one of {', '.join(region_names)}")
        return name

    cpu = r.text("core.cpu")
    fpu = r.text("core.fpu")
    float_abi = r.text("core.float_abi")
    if float_abi not in _FLOAT_ABIS:
        raise r.fail("core.float_abi", f"must be one of {', '.join(_FLOAT_ABIS)}, "
                                       f"got {float_abi!r}")
    cflags = r.str_list("compiler.flags")
    expected = {"-mcpu": cpu, "-mfloat-abi": float_abi}
    if fpu != "none":
        expected["-mfpu"] = fpu
    for flag, value in expected.items():
        if f"{flag}={value}" not in cflags:
            raise r.fail("compiler.flags", f"must contain {flag}={value} to agree with [core]")

    origins_table = r.get("emulator.origins")
    if not isinstance(origins_table, dict):
        raise r.fail("emulator.origins", "must be a table of region = address")
    origins = {}
    for region_name in region_names:
        origins[region_name] = r.integer(f"emulator.origins.{region_name}")
    for extra in origins_table:
        if extra not in region_names:
            raise r.fail(f"emulator.origins.{extra}", "names no [memory] region")

    name = r.text("name")
    stem = Path(source).stem
    if name != stem:
        raise r.fail("name", f"is '{name}' but the file is {stem}.toml; they must match")
    return Target(
        name=name,
        description=r.text("description"),
        cpu=cpu,
        fpu=None if fpu == "none" else fpu,
        float_abi=float_abi,
        dsp=r.flag("core.dsp"),
        clock_hz=r.integer("core.clock_hz", minimum=1),
        regions=tuple(regions),
        code_region=placed("placement.code"),
        weights_region=placed("placement.weights"),
        arena_region=placed("placement.arena"),
        stack_region=placed("placement.stack"),
        stack_bytes=r.size("placement.stack_bytes"),
        cc=r.text("compiler.cc"),
        cflags=cflags,
        qemu=r.text("emulator.qemu"),
        qemu_machine=r.text("emulator.machine"),
        icount_shift=r.integer("emulator.icount_shift", minimum=0),
        emulator_origins=origins,
        path=source,
    )
