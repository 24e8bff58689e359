"""edgec nas, the parts: search space -> modules, measurement == edgec compile, the CLI's
size/duration parsing, and bad input (one line, no traceback)."""
from __future__ import annotations

import json
import random
from pathlib import Path

import numpy as np
import pytest
import torch

from conftest import edgec
from edgec.toolchain.errors import EdgecError
from edgec.toolchain.nas import measure
from edgec.toolchain.nas.space import (Candidate, build_module, crossover, default_space,
                                       load_space, mutate, sample, smallest)
from edgec.toolchain.options import CompileOptions
from edgec.toolchain.pipeline import compile_model
from edgec.toolchain.target import load_target

TINY_SPACE = {"resolutions": [8], "stem_widths": [8], "width_mults": [0.5],
              "kernel_sizes": [3, 5], "expansions": [2, 3], "head_widths": [0],
              "stages": [{"channels": 8, "stride": 1, "depths": [1]},
                         {"channels": 16, "stride": 2, "depths": [1, 2]}]}


def synthetic(n: int, seed: int, classes: int = 4) -> tuple[np.ndarray, np.ndarray]:
    """1x8x8 images: class k is a bright bar in row band k, plus noise."""
    rng = np.random.default_rng(seed)
    y = np.arange(n) % classes
    x = rng.normal(0, 0.3, (n, 1, 8, 8)).astype(np.float32)
    for i, k in enumerate(y):
        x[i, 0, 2 * k:2 * k + 2, :] += 1.5
    return x, y.astype(np.int64)


def write_data(d: Path) -> Path:
    """train.npz, val.npz and the tiny space file, as the nas tests use them."""
    x, y = synthetic(96, 0)
    np.savez(d / "train.npz", x=x, y=y)
    x, y = synthetic(32, 1)
    np.savez(d / "val.npz", x=x, y=y)
    (d / "space.json").write_text(json.dumps(TINY_SPACE))
    return d


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return write_data(tmp_path_factory.mktemp("nasdata"))


def test_random_candidates_build_and_run():
    rng = random.Random(0)
    for space in (default_space(1, 8, 10), default_space(3, 12, 5)):
        cands = [sample(space, rng) for _ in range(6)] + [smallest(space)]
        cands += [mutate(cands[i], space, rng) for i in range(3)]
        cands += [crossover(cands[i], cands[i + 1], rng) for i in range(3)]
        for c in cands:
            assert Candidate.from_json(json.loads(json.dumps(c.to_json()))) == c
            assert len(c.stages) == len(space.stages)
            assert all(b.kernel in space.kernel_sizes and b.expand in space.expansions
                       for st in c.stages for b in st)
            m = build_module(c, space).eval()
            with torch.no_grad():
                out = m(torch.zeros(1, space.in_channels, c.resolution, c.resolution))
            assert out.shape == (1, space.num_classes)
    c = sample(default_space(1, 8, 10), random.Random(1))
    assert c.key == sample(default_space(1, 8, 10), random.Random(1)).key


def test_space_files(tmp_path):
    (tmp_path / "s.yaml").write_text("resolutions: [8, 16]\nkernel_sizes: [3]\nstages:\n"
                                     "  - {channels: 8, stride: 1, depths: [1, 2]}\n")
    s = load_space(tmp_path / "s.yaml", 1, 8, 10)
    assert s.resolutions == (8, 16) and s.kernel_sizes == (3,) and len(s.stages) == 1
    (tmp_path / "s.json").write_text(json.dumps(TINY_SPACE))
    assert load_space(tmp_path / "s.json", 1, 8, 4).expansions == (2, 3)
    for bad in ('{"kernel_sizes": [4]}', '{"stages": [{"channels": 8, "stride": 3, '
                '"depths": [1]}]}', '{"colour": 1}', "[1, 2]", "{not json"):
        (tmp_path / "bad.json").write_text(bad)
        with pytest.raises(EdgecError, match="bad.json"):
            load_space(tmp_path / "bad.json", 1, 8, 10)


def test_measure_equals_edgec_compile(tmp_path, data):
    """The arena, weights and MACs nas measures are what `edgec compile --no-build` reports
    for the same module saved as TorchScript."""
    space = load_space(data / "space.json", 1, 8, 4)
    c = smallest(space)
    x = np.load(data / "train.npz")["x"][:8]
    target = load_target("stm32f746")
    m = measure.measure(c, space, x, target, seed=3, cache_dir=tmp_path / "cache")
    assert list((tmp_path / "cache").glob("*.json"))  # cached ...
    again = measure.measure(c, space, x, target, seed=3, cache_dir=tmp_path / "cache")
    assert again == m  # ... and read back
    torch.manual_seed(3)
    module = measure.size_only(build_module(c, space).eval())
    measure.save_torchscript(module, x, tmp_path / "model.pt")
    np.save(tmp_path / "calib.npy", x)
    rep = compile_model(CompileOptions(model=tmp_path / "model.pt", target="stm32f746",
                                       out_dir=tmp_path / "net", calib=tmp_path / "calib.npy",
                                       build=False, run=False)).report
    assert m.arena == rep["memory"]["arena_bytes"]
    assert m.weights == rep["flash"]["model_constants_bytes"]
    assert m.macs == rep["model"]["macs"]
    assert m.flash == m.weights + m.code and m.code > 0
    assert m.sram == m.arena + target.stack_bytes + m.input_bytes + m.output_bytes + \
        measure.code_model("speed")["static_base"]


def test_code_estimate_covers_a_real_build():
    """The code-size table is filled and its estimate is not below what it was fitted on."""
    for goal in ("speed", "size"):
        table = measure.code_model(goal)
        assert table["kernels"] and table["calibration"]["error_bytes_min"] >= 0
        assert measure.estimate_code(table, 10, ["edgec_not_a_kernel"]) > \
            measure.estimate_code(table, 10, [])


def test_cli_sizes_and_durations():
    from edgec.toolchain.cli import _duration, _size
    assert _size("64KB", "x") == 65536 and _size("1MB", "x") == 1 << 20
    assert _size("512k", "x") == 512 * 1024 and _size("1000", "x") == 1000
    assert _duration("10m") == 600 and _duration("90s") == 90 and _duration("1h30m") == 5400
    assert _duration("45") == 45
    import click
    for bad in ("64 parsecs", "-1KB", "KB"):
        with pytest.raises(click.BadParameter):
            _size(bad, "--budget-sram")
    for bad in ("10 minutes", "m", "0s"):
        with pytest.raises(click.BadParameter):
            _duration(bad)


def _fails(capsys, *args, says=()):
    rc = edgec("nas", *args)
    err = capsys.readouterr().err
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert rc != 0 and len(lines) == 1 and lines[0].startswith("edgec: error: "), (rc, err)
    assert "Traceback" not in err
    for s in says:
        assert s in lines[0], (s, lines[0])
    return lines[0]


def test_bad_inputs(tmp_path, data, capsys):
    out = tmp_path / "nas"
    common = ["--val", data / "val.npz", "-o", out, "--executor", "inline", "--no-verify",
              "--space", data / "space.json"]
    # budgets nobody can meet: the smallest candidate's figures
    _fails(capsys, "--data", data / "train.npz", *common, "--budget-sram", "2KB",
           says=("smallest", "arena", "2048 B"))
    # not an npz
    (tmp_path / "junk.npz").write_text("hello")
    _fails(capsys, "--data", tmp_path / "junk.npz", *common, says=("junk.npz", "npz"))
    x, y = synthetic(10, 0)
    np.save(tmp_path / "one.npy", x)
    _fails(capsys, "--data", tmp_path / "one.npy", *common, says=("one array",))
    np.savez(tmp_path / "short.npz", x=x, y=y[:7])  # label count != sample count
    _fails(capsys, "--data", tmp_path / "short.npz", *common, says=("10 samples", "7 labels"))
    np.savez(tmp_path / "nolabels.npz", x=x)
    _fails(capsys, "--data", tmp_path / "nolabels.npz", *common, says=("'y'",))
    np.savez(tmp_path / "flat.npz", x=x.reshape(10, 64), y=y)
    _fails(capsys, "--data", tmp_path / "flat.npz", *common, says=("(N, C, H, W)",))
    np.savez(tmp_path / "floaty.npz", x=x, y=y.astype(np.float32))
    _fails(capsys, "--data", tmp_path / "floaty.npz", *common, says=("integer labels",))
    np.savez(tmp_path / "big.npz", x=np.zeros((10, 1, 12, 12), np.float32), y=y)
    _fails(capsys, "--data", tmp_path / "big.npz", *common, says=("must match",))
    assert not (out / "candidates.jsonl").exists()  # the failed runs wrote nothing to resume
    _fails(capsys, "--data", data / "train.npz", *common, "--resume", says=("--resume",))
    rc = edgec("nas", "--data", data / "train.npz", *common, "--budget-sram", "lots")
    assert rc == 2 and "not a size" in capsys.readouterr().err
