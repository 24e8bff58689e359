"""Patch-based inference (toolchain/plan/patch.py): the first layers run stripe by stripe.

Golden: the striped program computes the same bytes as the whole-tensor one, for every
prefix that can be striped. Firmware: `edgec compile` checks the striped C against the
golden model on QEMU (a mismatch fails the compile). Budget: a model whose plain arena
exceeds a small board fits with --patch auto.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import edgec
from edgec.toolchain import calibdata, golden_io
from edgec.toolchain import source as sources
from edgec.toolchain.errors import BudgetError, EdgecError
from edgec.toolchain.golden import run_program
from edgec.toolchain.lower import lower
from edgec.toolchain.options import CompileOptions
from edgec.toolchain.passes import run_passes
from edgec.toolchain.plan import find_overlaps, patch, plan_memory
from edgec.toolchain.quantize import calibrate, quantize
from edgec.toolchain.target import load_target
from models import InvertedResidual, _conv_bn, _init, export_onnx
from torch import nn


class McuNet(nn.Module):
    """MCUNet-style: stem conv s2, inverted residual blocks (depthwise 3x3 s1 / s2, residual
    adds), 1x1 head, mean, linear; odd channel counts; 3x64x64 input."""

    def __init__(self, c: int, expand: int):
        super().__init__()
        self.f = nn.Sequential(
            *_conv_bn(3, c, 3, 2), nn.ReLU6(),
            InvertedResidual(c, c, 1, expand), InvertedResidual(c, 14, 2, expand),
            InvertedResidual(14, 14, 1, 3), InvertedResidual(14, 22, 2, 3),
            *_conv_bn(22, 30, 1), nn.ReLU6())
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(30, 5)

    def forward(self, x):
        return self.fc(torch.flatten(self.pool(self.f(x)), 1))


def _model(tmp: Path, c: int, expand: int) -> Path:
    path = tmp / f"mcunet_{c}_{expand}.onnx"
    model = _init(McuNet(c, expand), 0)
    path.write_bytes(export_onnx(model, torch.randn(1, 3, 64, 64)).SerializeToString())
    return path


@pytest.fixture(scope="module")
def small(tmp_path_factory) -> Path:
    return _model(tmp_path_factory.mktemp("patch"), 10, 3)


@pytest.fixture(scope="module")
def small_program(small):
    return _lowered(small)


def _lowered(path: Path):
    """The pipeline up to lowering (toolchain/pipeline.py), reference kernels."""
    opts = CompileOptions(model=path, target="stm32f746", out_dir=path.parent / "unused")
    source = sources.load_source(opts)
    graph = run_passes(source.graph)
    samples, _ = calibdata.load_or_generate(opts, source)
    return lower(quantize(graph, calibrate(source.onnx, graph, samples)))


def test_striped_golden_equals_whole_tensor_golden(small_program):
    program = small_program
    candidates = patch.split_candidates(program)
    ops = [program.calls[k].op for k in candidates]
    assert "add" in ops and len(candidates) >= 5  # prefixes through residual blocks
    name_in = program.graph.inputs[0]
    x = np.random.default_rng(1).integers(-128, 128, program.graph.tensors[name_in].shape,
                                          dtype=np.int64).astype(np.int8)
    whole = run_program(program, {name_in: x})
    out = program.graph.outputs[0]
    for k in candidates:
        split = program.calls[k].outputs[0]
        for n in (2, 5):
            striped = patch.stripe_program(program, k, n)
            got = run_program(striped, {name_in: x})
            assert np.array_equal(got[split], whole[split]), (k, n)
            assert np.array_equal(got[out], whole[out]), (k, n)
        assert not find_overlaps(patch.plan_program(striped, exact=False))
    # halo rows are recomputed: more MACs, each stripe's rows only
    k = candidates[-1]
    striped = patch.stripe_program(program, k, 4)
    assert sum(c.macs for c in striped.calls) > sum(c.macs for c in program.calls)
    with pytest.raises(EdgecError, match="cannot end a striped prefix"):
        patch.stripe_program(program, len(program.calls) - 1, 2)


def test_budget_error_names_both_figures(small_program):
    program = small_program
    plain = plan_memory(program)
    budget = program.graph.tensors[program.graph.inputs[0]].nbytes + 64  # hopeless
    with pytest.raises(BudgetError) as err:
        patch.choose(program, plain, budget, "auto", lambda p: p, "myboard")
    assert f"arena needs {plain.arena_bytes} B" in str(err.value)
    assert f"myboard has {budget} B" in str(err.value)
    assert patch.choose(program, plain, plain.arena_bytes, "auto", lambda p: p) is None
    assert patch.choose(program, plain, 1, "off", lambda p: p) is None
    with pytest.raises(EdgecError, match="N@layer"):
        patch.parse_option("1@conv")


def test_forced_patch_runs_exact_on_qemu_with_a_smaller_arena(small, small_program, tmp_path,
                                                             capsys):
    program = small_program
    split = next(program.calls[k].name for k in reversed(patch.split_candidates(program))
                 if program.calls[k].op == "add")
    assert edgec("compile", small, "-o", tmp_path / "plain", "--patch", "off", "--no-run") == 0
    assert edgec("compile", small, "-o", tmp_path / "striped", "--patch", f"3@{split}") == 0
    plain = json.loads((tmp_path / "plain" / "report.json").read_text())
    rep = json.loads((tmp_path / "striped" / "report.json").read_text())
    assert plain["patch"] is None and plain["check"] is None
    p = rep["patch"]
    assert p["split_layer"] == split and p["stripes"] == 3
    assert p["arena_plain_bytes"] == plain["memory"]["arena_bytes"]
    assert p["arena_patched_bytes"] == rep["memory"]["arena_bytes"] < p["arena_plain_bytes"]
    assert p["macs_extra"] == rep["model"]["macs"] - plain["model"]["macs"] > 0
    assert rep["check"]["mismatches"] == 0 and rep["check"]["samples"] > 0
    # one weight table per layer, shared by its stripes
    assert rep["flash"]["weights_bytes"] == plain["flash"]["weights_bytes"]
    assert "row stripes" in (tmp_path / "striped" / "report.md").read_text()
    # the saved golden program keeps its slices: `edgec test` replays the striped schedule
    saved = golden_io.load_program(tmp_path / "striped" / golden_io.FILE_NAME)
    assert saved.slices
    name_in, name_out = program.graph.inputs[0], program.graph.outputs[0]
    x = np.random.default_rng(2).integers(-128, 128, program.graph.tensors[name_in].shape,
                                          dtype=np.int64).astype(np.int8)
    assert np.array_equal(run_program(saved, {name_in: x})[name_out],
                          run_program(program, {name_in: x})[name_out])
    capsys.readouterr()
    assert edgec("compile", small, "-o", tmp_path / "bad", "--patch", "3@nope") == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "nope" in err[0] and not (tmp_path / "bad").exists()


def _board(tmp: Path, sram: str) -> Path:
    text = Path(load_target("stm32f746").path).read_text()
    board = (text.replace('name = "stm32f746"', 'name = "smallboard"')
             .replace('size = "320K"', f'size = "{sram}"')
             .replace('stack_bytes = "16K"', 'stack_bytes = "4K"'))
    path = tmp / "smallboard.toml"
    path.write_text(board)
    return path


def test_auto_patch_fits_a_model_too_big_for_the_board(tmp_path, capsys):
    model = _model(tmp_path, 16, 6)  # ~120 KB arena when planned whole
    board = _board(tmp_path, "100K")  # 96 KB of arena
    assert edgec("compile", model, "-t", board, "-o", tmp_path / "plain", "--patch",
                 "off") == 3
    err = capsys.readouterr().err
    assert "arena needs" in err and "smallboard" in err and not (tmp_path / "plain").exists()
    assert edgec("compile", model, "-t", board, "-o", tmp_path / "auto") == 0
    rep = json.loads((tmp_path / "auto" / "report.json").read_text())
    p = rep["patch"]
    budget = load_target(str(board)).arena_budget_bytes
    assert p["arena_plain_bytes"] > budget >= p["arena_patched_bytes"] \
        == rep["memory"]["arena_bytes"]
    assert p["stripes"] >= 2 and p["macs_extra"] > 0
    assert rep["check"]["mismatches"] == 0 and rep["check"]["samples"] > 0
    # the least recomputation: no cheaper striping fits
    program = _lowered(model)
    from edgec.toolchain.lower.select import select_kernels
    target = load_target(str(board))
    base = sum(c.macs for c in program.calls)
    plain = plan_memory(select_kernels(program, target))
    assert plain.arena_bytes == p["arena_plain_bytes"]
    for k in patch.split_candidates(program):
        for n in range(2, patch.MAX_STRIPES + 1):
            striped = patch.stripe_program(program, k, n)
            if sum(c.macs for c in striped.calls) - base < p["macs_extra"]:
                plan = patch.plan_program(select_kernels(striped, target), exact=False)
                assert plan.arena_bytes > budget, (k, n)
