"""Bad input: one clear line on stderr, a non-zero exit, no traceback, no partial output."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from conftest import edgec
from models import INPUT_SHAPES, tiny_cnn

SHAPE = INPUT_SHAPES["tiny_cnn"]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    d = tmp_path_factory.mktemp("tiny")
    model = tiny_cnn()
    with torch.no_grad():
        torch.jit.save(torch.jit.trace(model, torch.zeros(SHAPE)), str(d / "model.pt"))
    np.save(d / "calib.npy", np.random.default_rng(0).standard_normal((16, *SHAPE[1:]))
            .astype(np.float32))
    torch.save(model, d / "pickled.pt")
    torch.save(model.state_dict(), d / "state.pt")
    return d


def fails(capsys, out: Path, *args, code: int | None = None, says: tuple[str, ...] = ()) -> str:
    rc = edgec(*args)
    err = capsys.readouterr().err
    assert rc != 0 and (code is None or rc == code), (rc, err)
    lines = [l for l in err.splitlines() if l.strip()]
    assert len(lines) == 1 and lines[0].startswith("edgec: error: "), err
    assert "Traceback" not in err
    for s in says:
        assert s in lines[0], (s, lines[0])
    assert not out.exists()
    assert not [p for p in out.parent.iterdir() if p.name.startswith(f".{out.name}.")]
    return lines[0]


def test_missing_model(tmp_path, capsys):
    fails(capsys, tmp_path / "o", "compile", tmp_path / "nope.pt", "-o", tmp_path / "o",
          code=2, says=("nope.pt", "not found"))


def test_truncated_models(tmp_path, tiny, capsys):
    data = (tiny / "model.pt").read_bytes()
    (tmp_path / "cut.pt").write_bytes(data[: len(data) // 2])
    fails(capsys, tmp_path / "o", "compile", tmp_path / "cut.pt", "--calib",
          tiny / "calib.npy", "-o", tmp_path / "o", code=2, says=("cut.pt",))
    onnx_path = tmp_path / "m.onnx"
    torch.onnx.export(tiny_cnn(), (torch.zeros(SHAPE),), str(onnx_path), dynamo=False)
    data = onnx_path.read_bytes()
    (tmp_path / "cut.onnx").write_bytes(data[: len(data) // 3])
    fails(capsys, tmp_path / "o", "compile", tmp_path / "cut.onnx", "-o", tmp_path / "o",
          code=2, says=("cut.onnx",))


class _WithSin(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3)

    def forward(self, x):
        return torch.sin(self.conv(x))


def test_unsupported_op_names_op_node_and_supported_list(tmp_path, capsys):
    with torch.no_grad():
        torch.jit.save(torch.jit.trace(_WithSin().eval(), torch.zeros(SHAPE)),
                       str(tmp_path / "sin.pt"))
    line = fails(capsys, tmp_path / "o", "compile", tmp_path / "sin.pt", "--input-shape",
                 ",".join(map(str, SHAPE)), "-o", tmp_path / "o", code=2,
                 says=("Sin", "supported", "conv2d"))
    assert "node" in line


def test_unknown_target_lists_known(tmp_path, tiny, capsys):
    fails(capsys, tmp_path / "o", "compile", tiny / "model.pt", "--target", "esp32",
          "-o", tmp_path / "o", code=2, says=("esp32", "stm32f746"))


def test_calibration_shape_mismatch(tmp_path, tiny, capsys):
    np.save(tmp_path / "bad.npy", np.zeros((4, 3, 8, 8), np.float32))
    onnx_path = tmp_path / "m.onnx"
    torch.onnx.export(tiny_cnn(), (torch.zeros(SHAPE),), str(onnx_path), dynamo=False)
    fails(capsys, tmp_path / "o", "compile", onnx_path, "--calib", tmp_path / "bad.npy",
          "-o", tmp_path / "o", code=2, says=("bad.npy", "(3, 8, 8)", "(1, 3, 16, 16)"))


def test_pickle_refused_without_flag_state_dict_refused(tmp_path, tiny, capsys):
    fails(capsys, tmp_path / "o", "compile", tiny / "pickled.pt", "--calib", tiny / "calib.npy",
          "-o", tmp_path / "o", code=2, says=("--trust-pickle",))
    fails(capsys, tmp_path / "o", "compile", tiny / "state.pt", "--calib", tiny / "calib.npy",
          "-o", tmp_path / "o", code=2, says=("state",))
    assert edgec("compile", tiny / "pickled.pt", "--trust-pickle", "--calib", tiny / "calib.npy",
                 "-o", tmp_path / "ok", "--no-build") == 0
    assert (tmp_path / "ok" / "src" / "edgec_model.c").is_file()


def test_arena_over_budget(tmp_path, capsys):
    big = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU()).eval()
    shape = (1, 3, 160, 160)  # 8 x 160 x 160 int8 output alone is 200 KB, plus the input
    with torch.no_grad():
        torch.jit.save(torch.jit.trace(big, torch.zeros(shape)), str(tmp_path / "big.pt"))
    fails(capsys, tmp_path / "o", "compile", tmp_path / "big.pt", "--input-shape",
          "1,3,160,160", "--target", "stm32f411", "-o", tmp_path / "o", code=3,
          says=("arena", "stm32f411"))


def test_weights_over_flash(tmp_path, capsys):
    wide = nn.Sequential(nn.Flatten(), nn.Linear(3 * 16 * 16, 1400)).eval()  # 1.07 MB int8
    with torch.no_grad():
        torch.jit.save(torch.jit.trace(wide, torch.zeros(SHAPE)), str(tmp_path / "wide.pt"))
    fails(capsys, tmp_path / "o", "compile", tmp_path / "wide.pt", "--input-shape",
          ",".join(map(str, SHAPE)), "-o", tmp_path / "o", code=3,
          says=("weights", "flash", "1048576"))


def _path_without(tmp_path: Path, keep_prefix: str | None) -> str:
    """A PATH with python and, optionally, the arm-none-eabi tools, but no QEMU."""
    bindir = tmp_path / "bin"
    bindir.mkdir()
    if keep_prefix:
        for tool in Path("/usr/bin").glob(keep_prefix + "*"):
            (bindir / tool.name).symlink_to(tool)
    return str(bindir)


@pytest.mark.parametrize("keep,missing", [(None, "arm-none-eabi-gcc"),
                                          ("arm-none-eabi-", "qemu-system-arm")])
def test_missing_toolchain_says_how_to_install(tmp_path, tiny, capsys, monkeypatch, keep,
                                               missing):
    monkeypatch.setenv("PATH", _path_without(tmp_path, keep))
    fails(capsys, tmp_path / "o", "compile", tiny / "model.pt", "--calib", tiny / "calib.npy",
          "-o", tmp_path / "o", code=4, says=(missing, "apt-get install"))


def test_console_script_exit_code_and_help(tmp_path):
    exe = Path(sys.executable).parent / "edgec"
    for sub in ([], ["compile"], ["run"], ["targets"], ["report"]):
        r = subprocess.run([str(exe), *sub, "--help"], capture_output=True, text=True)
        assert r.returncode == 0 and "Usage:" in r.stdout
    r = subprocess.run([str(exe), "compile", str(tmp_path / "x.onnx"), "-o", str(tmp_path / "o")],
                       capture_output=True, text=True)
    assert r.returncode == 2 and r.stderr.startswith("edgec: error: ") and "Traceback" not in r.stderr
    r = subprocess.run([str(exe), "targets"], capture_output=True, text=True)
    assert r.returncode == 0 and "stm32f746" in r.stdout and "320 KB" in r.stdout
