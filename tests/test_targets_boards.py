"""Every shipped board, and a user's own board file, compile and run a real model on their
emulator with the exact-match check passing; budgets come from the board file."""
from __future__ import annotations

import json

import numpy as np
import pytest

from conftest import edgec
from edgec.toolchain.target import list_targets, load_target
from test_frontend_tflite import model_path


@pytest.mark.parametrize("name", list_targets())
def test_board_runs_kws(name, tmp_path):
    assert edgec("compile", model_path("kws_dscnn_int8"), "--target", name,
                 "-o", tmp_path / "net") == 0
    rep = json.loads((tmp_path / "net" / "report.json").read_text())
    t = load_target(name)
    assert rep["check"]["mismatches"] == 0 and rep["check"]["litert"]["mismatches"] == 0
    assert rep["memory"]["sram_budget_bytes"] == t.sram_bytes
    assert rep["flash"]["budget_bytes"] == t.flash_bytes


def test_all_issue_boards_are_shipped():
    assert {"stm32f746", "stm32h743", "stm32f411", "nrf52840", "imxrt1062"} <= set(list_targets())
    h7 = load_target("stm32h743")
    assert h7.arena_region != h7.stack_region and h7.sram_bytes == 512 * 1024
    assert load_target("imxrt1062").flash_bytes == 8 * 1024 * 1024


def test_custom_board_file(tmp_path, capsys):
    text = load_target("nrf52840").path
    board = (open(text).read().replace('name = "nrf52840"', 'name = "myboard"')
             .replace('size = "256K"', 'size = "16K"'))
    path = tmp_path / "myboard.toml"
    path.write_text(board)
    assert edgec("compile", model_path("ad_fc_autoencoder_int8"), "--target", path,
                 "-o", tmp_path / "ok") == 0
    rep = json.loads((tmp_path / "ok" / "report.json").read_text())
    assert rep["memory"]["sram_budget_bytes"] == 16 * 1024
    # the output dir keeps its own copy of the board: run and test work after the file moves
    path.rename(tmp_path / "moved.toml")
    spec = json.loads((tmp_path / "ok" / "model.json").read_text())["io"]["inputs"][0]
    x = np.random.default_rng(0).uniform(-1, 1, (3, *spec["source_shape"][1:]))
    np.savez(tmp_path / "cases.npz", x=x.astype(np.float32))
    assert edgec("test", tmp_path / "ok", "--inputs", tmp_path / "cases.npz") == 0
    (tmp_path / "moved.toml").rename(path)
    # the same board is too small for KWS once the stack is reserved: a budget error
    rc = edgec("compile", model_path("kws_dscnn_int8"), "--target", path, "-o", tmp_path / "no")
    err = capsys.readouterr().err
    assert rc == 3 and "myboard" in err and not (tmp_path / "no").exists()
    (tmp_path / "bad.toml").write_text(board.replace("[core]", "[core]\nclock_hz = -1\n", 1))
    rc = edgec("compile", model_path("ad_fc_autoencoder_int8"), "--target",
               tmp_path / "bad.toml", "-o", tmp_path / "bad")
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1 and "bad.toml" in err[0]
