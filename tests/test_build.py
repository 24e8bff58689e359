"""Firmware build of the fake model: sizes, determinism, link-time budget errors."""
from __future__ import annotations

import dataclasses
import re
import shutil
from pathlib import Path

import pytest

from edgec.toolchain.build import build_firmware
from edgec.toolchain.errors import BudgetError, ToolchainError
from edgec.toolchain.target import load_target

FAKE_MODEL = Path(__file__).parent / "fake_model"



@pytest.fixture(scope="module")
def f746():
    return load_target("stm32f746")


@pytest.fixture(scope="module")
def built(f746, tmp_path_factory):
    return build_firmware(FAKE_MODEL, f746, tmp_path_factory.mktemp("fw"))


def fake_model_copy(dest: Path, arena_bytes: int | None = None, broken: bool = False) -> Path:
    shutil.copytree(FAKE_MODEL, dest)
    if arena_bytes is not None:
        h = dest / "edgec_model.h"
        h.write_text(re.sub(r"#define EDGEC_ARENA_SIZE \d+", f"#define EDGEC_ARENA_SIZE "
                            f"{arena_bytes}", h.read_text()))
    if broken:
        c = dest / "edgec_model.c"
        c.write_text(c.read_text() + "\nint unused_and_broken(void) { return undeclared; }\n")
    return dest


def test_sizes(built, f746):
    assert built.elf.is_file()
    assert built.flash_weights_bytes == 4 * 16  # the fake model's weights table
    assert built.flash_total_bytes == built.flash_code_bytes + built.flash_weights_bytes
    assert 0 < built.flash_code_bytes < 16 * 1024
    assert built.ram_static_bytes >= 32 + 16 + 16  # arena + harness input/output buffers
    assert built.ram_static_bytes < 1024
    assert built.stack_reserved_bytes == f746.stack_bytes
    assert built.arena_bytes == 32
    assert (built.flash_budget_bytes, built.sram_budget_bytes) == (1024 * 1024, 320 * 1024)
    assert (built.elf.parent / "firmware.map").is_file()


def test_linked_with_weights_in_flash_and_stack_at_sram_start(built):
    ld = (built.elf.parent / "firmware.ld").read_text()
    assert ". = . + 16384;" in ld
    map_text = built.map_file.read_text()
    weights = re.search(r"^\.edgec_weights\s+0x([0-9a-f]+)", map_text, re.M)
    stack = re.search(r"^\.stack\s+0x([0-9a-f]+)", map_text, re.M)
    assert int(weights.group(1), 16) < 0x00100000  # flash, linked at 0 for the emulator
    assert int(stack.group(1), 16) == 0x20000000


def test_same_sources_give_identical_elf(f746, built, tmp_path):
    again = build_firmware(FAKE_MODEL, f746, tmp_path / "elsewhere" / "out")
    assert again.elf.read_bytes() == built.elf.read_bytes()


@pytest.mark.parametrize("layout", ["src_in_out", "out_in_src"])
def test_nested_directories(f746, built, tmp_path, layout):
    if layout == "src_in_out":  # the pipeline's layout: OUT/src
        src, out = fake_model_copy(tmp_path / "out" / "src"), tmp_path / "out"
    else:
        src = fake_model_copy(tmp_path / "src")
        out = src / "build"
    for _ in range(2):  # a second build must not pick up the first one's files
        result = build_firmware(src, f746, out)
    assert result.elf.read_bytes() == built.elf.read_bytes()


def test_over_budget_arena_fails_at_link_time(f746, tmp_path):
    src = fake_model_copy(tmp_path / "huge", arena_bytes=400_000)
    with pytest.raises(BudgetError) as e:
        build_firmware(src, f746, tmp_path / "out")
    msg = str(e.value)
    assert "arena 400000 B" in msg
    assert "stack 16384 B" in msg
    assert "327680 B" in msg
    assert "over by" in msg and "\n" not in msg


def test_arena_that_fits_only_without_stack_fails(f746, tmp_path):
    # 320 KB - 10 KB fits the SRAM but not with the 16 KB stack reserved
    src = fake_model_copy(tmp_path / "tight", arena_bytes=320 * 1024 - 10 * 1024)
    with pytest.raises(BudgetError, match="stack 16384 B"):
        build_firmware(src, f746, tmp_path / "out")


def test_over_budget_weights_fail_at_link_time(tmp_path):
    src = fake_model_copy(tmp_path / "heavy")
    c = src / "edgec_model.c"
    c.write_text(c.read_text().replace("weights[EDGEC_NUM_LAYERS][EDGEC_INPUT_SIZE]",
                                       "weights[EDGEC_NUM_LAYERS][EDGEC_INPUT_SIZE * 10000]"))
    with pytest.raises(BudgetError) as e:
        build_firmware(src, load_target("stm32f411"), tmp_path / "out")
    assert "flash needs" in str(e.value) and "weights 640000 B" in str(e.value)
    assert "524288 B" in str(e.value)


def test_compile_error_names_the_file(f746, tmp_path):
    src = fake_model_copy(tmp_path / "broken", broken=True)
    with pytest.raises(ToolchainError, match=r"compiling edgec_model\.c failed: .*undeclared"):
        build_firmware(src, f746, tmp_path / "out")


def test_compile_error_log_outlives_the_output_dir(f746, tmp_path):
    src = fake_model_copy(tmp_path / "broken", broken=True)
    with pytest.raises(ToolchainError) as e:
        build_firmware(src, f746, tmp_path / "out")
    shutil.rmtree(tmp_path / "out")
    log = Path(re.search(r"full log: (\S+)\)$", str(e.value)).group(1))
    try:
        assert not log.is_relative_to(tmp_path / "out")
        assert "undeclared" in log.read_text()
    finally:
        log.unlink()


def test_missing_compiler_says_how_to_install(f746, tmp_path):
    target = dataclasses.replace(f746, cc="arm-none-eabi-gcc-not-installed")
    with pytest.raises(ToolchainError, match="apt-get install --no-install-recommends "
                                             "gcc-arm-none-eabi libnewlib-arm-none-eabi"):
        build_firmware(FAKE_MODEL, target, tmp_path / "out")
