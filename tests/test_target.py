"""Target files: shipped boards, name/path lookup, one-line errors for bad files."""
from __future__ import annotations

from importlib import resources

import pytest

from edgec.toolchain.build import render_linker_script
from edgec.toolchain.errors import EdgecError
from edgec.toolchain.target import list_targets, load_target


def shipped_text(name: str) -> str:
    return (resources.files("edgec.targets") / f"{name}.toml").read_text()


def test_list_targets_has_both_boards():
    assert {"stm32f746", "stm32f411"} <= set(list_targets())


def test_stm32f746_facts():
    t = load_target("stm32f746")
    assert (t.cpu, t.fpu, t.float_abi, t.dsp, t.clock_hz) == (
        "cortex-m7", "fpv5-sp-d16", "hard", True, 216_000_000)
    assert t.core == "Cortex-M7"
    assert (t.flash.origin, t.flash_bytes) == (0x08000000, 1024 * 1024)
    assert (t.sram.origin, t.sram_bytes) == (0x20000000, 320 * 1024)
    assert t.stack_bytes == 16 * 1024
    assert t.arena_budget_bytes == 320 * 1024 - 16 * 1024
    assert t.cflags == ("-mcpu=cortex-m7", "-mthumb", "-mfpu=fpv5-sp-d16", "-mfloat-abi=hard")
    assert (t.qemu_machine, t.icount_shift) == ("mps2-an500", 3)
    assert t.emulator_origins == {"flash": 0x0, "sram": 0x20000000}


def test_stm32f411_facts():
    t = load_target("stm32f411")
    assert (t.core, t.clock_hz, t.qemu_machine) == ("Cortex-M4", 100_000_000, "mps2-an386")
    assert (t.flash_bytes, t.sram_bytes) == (512 * 1024, 128 * 1024)


def test_unknown_name_lists_known_targets():
    with pytest.raises(EdgecError) as e:
        load_target("stm32h7nope")
    msg = str(e.value)
    assert "unknown target 'stm32h7nope'" in msg
    assert "stm32f411" in msg and "stm32f746" in msg
    assert "\n" not in msg


def test_load_by_path(tmp_path):
    path = tmp_path / "my_board.toml"
    path.write_text(shipped_text("stm32f746").replace('name = "stm32f746"',
                                                       'name = "my_board"'))
    t = load_target(str(path))
    assert t.name == "my_board" and t.sram_bytes == 320 * 1024


def test_missing_file(tmp_path):
    with pytest.raises(EdgecError, match="target file not found"):
        load_target(str(tmp_path / "nope.toml"))


@pytest.mark.parametrize("edit, key", [
    (lambda s: s.replace("clock_hz = 216_000_000", 'clock_hz = "fast"'), "core.clock_hz"),
    (lambda s: s.replace('size = "320K"', 'size = "lots"'), "memory.sram.size"),
    (lambda s: s.replace('cpu = "cortex-m7"\n', ""), "core.cpu"),
    (lambda s: s.replace('weights = "flash"', 'weights = "qspi"'), "placement.weights"),
    (lambda s: s.replace('"-mcpu=cortex-m7", ', ""), "compiler.flags"),
    (lambda s: s.replace('float_abi = "hard"', 'float_abi = "firm"'), "core.float_abi"),
    (lambda s: s.replace("sram = 0x20000000\n", ""), "emulator.origins.sram"),
    (lambda s: s.replace('name = "my_board"', 'name = "other"'), "name"),
])
def test_malformed_file_names_file_and_key(tmp_path, edit, key):
    path = tmp_path / "my_board.toml"
    text = shipped_text("stm32f746").replace('name = "stm32f746"', 'name = "my_board"')
    path.write_text(edit(text))
    with pytest.raises(EdgecError) as e:
        load_target(str(path))
    msg = str(e.value)
    assert str(path) in msg and f"key '{key}'" in msg
    assert "\n" not in msg


def test_invalid_toml_syntax(tmp_path):
    path = tmp_path / "broken.toml"
    path.write_text("name = \n[core\n")
    with pytest.raises(EdgecError, match=r"broken\.toml: invalid TOML"):
        load_target(str(path))


def test_linker_script_uses_board_sizes_at_emulator_origins():
    t = load_target("stm32f746")
    emu = render_linker_script(t, for_emulator=True)
    assert "FLASH  (rx) : ORIGIN = 0x00000000, LENGTH = 1048576" in emu
    assert "SRAM   (rwx) : ORIGIN = 0x20000000, LENGTH = 327680" in emu
    assert ". = . + 16384;" in emu
    board = render_linker_script(t, for_emulator=False)
    assert "ORIGIN = 0x08000000, LENGTH = 1048576" in board
