"""edgec nas --space vit: the ViT space keeps its rules, a ViT candidate measures what
`edgec compile` plans for it, and a tiny end-to-end run through the CLI (over-budget
candidates never trained, the winner's compiled arena equal to the search's figure)."""
from __future__ import annotations

import json
import random

import numpy as np
import pytest
import torch

from conftest import edgec
from edgec.toolchain.errors import EdgecError
from edgec.toolchain.nas import measure
from edgec.toolchain.nas.space import load_space
from edgec.toolchain.nas.vit_space import VitCandidate, VitSpace
from edgec.toolchain.options import CompileOptions
from edgec.toolchain.pipeline import compile_model
from edgec.toolchain.target import load_target
from test_nas import _fails, write_data

# heads 3 divides only 24 and 48, patch 12 only 24: the rules have work to do
ODD_SPACE = {"family": "vit", "resolutions": [16, 24, 32], "patches": [4, 8, 12],
             "widths": [16, 24, 32, 48], "depths": [1, 2], "heads": [2, 3, 4],
             "mlp_ratios": [1, 2]}


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return write_data(tmp_path_factory.mktemp("nasvitdata"))


def _keeps_rules(c: VitCandidate, s: VitSpace) -> None:
    assert c.width % c.heads == 0, c
    assert c.resolution % c.patch == 0 and c.resolution // c.patch >= 2, c
    for gene, values in (("resolution", s.resolutions), ("patch", s.patches),
                         ("width", s.widths), ("depth", s.depths), ("heads", s.heads),
                         ("mlp_ratio", s.mlp_ratios)):
        assert getattr(c, gene) in values, (gene, c)
    assert (c.in_channels, c.num_classes) == (s.in_channels, s.num_classes)


def test_every_candidate_keeps_the_rules(tmp_path):
    (tmp_path / "odd.json").write_text(json.dumps(ODD_SPACE))
    spaces = [load_space("vit", 1, 8, 4), load_space("vit", 3, 32, 10),
              load_space(tmp_path / "odd.json", 1, 16, 4)]
    assert [type(s) for s in spaces] == [VitSpace] * 3
    rng = random.Random(0)
    for s in spaces:
        pop = [s.sample(rng) for _ in range(40)] + [s.smallest()]
        for i in range(200):  # chains of mutations and crossovers from the population
            a, b = rng.choice(pop), rng.choice(pop)
            pop.append(s.mutate(a, rng) if i % 2 else s.crossover(a, b, rng))
        for c in pop:
            _keeps_rules(c, s)
            assert s.candidate(json.loads(json.dumps(c.to_json()))) == c
        assert len({c.key for c in pop}) > 20  # the search moves
        genes = {g: {getattr(c, g) for c in pop} for g in ("width", "heads", "patch")}
        assert genes["width"] == set(s.widths) and genes["heads"] == set(s.heads)
    odd = spaces[2]
    assert {(c.width, c.heads) for c in pop if c.heads == 3} <= {(24, 3), (48, 3)}
    small = odd.smallest()
    assert (small.resolution // small.patch, small.width, small.depth) == (2, 16, 1)
    c = VitCandidate(16, 4, 16, 1, 2, 1, 1, 4)
    with torch.no_grad():
        assert odd.build(c).eval()(torch.zeros(2, 1, 16, 16)).shape == (2, 4)
    with pytest.raises(EdgecError, match="rules"):
        odd.build(VitCandidate(16, 12, 16, 1, 2, 1, 1, 4))


def test_vit_space_files(tmp_path):
    assert type(load_space("cnn", 1, 8, 4)).__name__ == "Space"  # the default stays the CNN
    with pytest.raises(EdgecError, match="unknown search space 'vitt'.*cnn, vit"):
        load_space("vitt", 1, 8, 4)
    for bad, says in (({"heads": [3], "widths": [16, 32]}, "divides width 16"),
                      ({"resolutions": [20], "patches": [8]}, "resolution 20"),
                      ({"resolutions": [16], "patches": [16]}, "resolution 16"),
                      ({"heads": [1, 2]}, "single-head"),
                      ({"widths": [0]}, "'widths'"),
                      ({"stem_widths": [8]}, "unknown key"),
                      ({"family": "rnn"}, "unknown family")):
        (tmp_path / "bad.json").write_text(json.dumps({"family": "vit", **bad}))
        with pytest.raises(EdgecError, match=says):
            load_space(tmp_path / "bad.json", 1, 8, 4)


def test_vit_measure_equals_edgec_compile(tmp_path):
    """A tiny ViT (32x32, patch 8, width 16, depth 1): the arena nas measures is the fused
    one `edgec compile --no-build` plans for the same module saved as TorchScript."""
    space = load_space("vit", 1, 32, 4)
    c = VitCandidate(resolution=32, patch=8, width=16, depth=1, heads=2, mlp_ratio=2,
                     in_channels=1, num_classes=4)
    x = np.random.default_rng(0).normal(0, 1, (8, 1, 32, 32)).astype(np.float32)
    target = load_target("stm32f746")
    m = measure.measure(c, space, x, target, seed=3)
    torch.manual_seed(3)
    module = measure.size_only(space.build(c).eval())
    measure.save_torchscript(module, x, tmp_path / "model.pt")
    np.save(tmp_path / "calib.npy", x)
    rep = compile_model(CompileOptions(model=tmp_path / "model.pt", target="stm32f746",
                                       out_dir=tmp_path / "net", calib=tmp_path / "calib.npy",
                                       build=False, run=False)).report
    assert m.arena == rep["memory"]["arena_bytes"]
    assert m.weights == rep["flash"]["model_constants_bytes"]
    assert m.macs == rep["model"]["macs"]
    assert m.sram == m.arena + target.stack_bytes + m.input_bytes + m.output_bytes + \
        measure.code_model("speed")["static_base"]


def test_cli_vit_search(data, tmp_path, capsys):
    """`edgec nas --space vit` end to end on 8x8 bars; then `edgec compile` of best.pt."""
    out = tmp_path / "nas"
    rc = edgec("nas", "--data", data / "train.npz", "--val", data / "val.npz", "--space",
               "vit", "--budget-flash", "96KB", "--time", "5m", "-o", out, "--seed", "2",
               "--max-candidates", "4", "--executor", "inline", "--no-verify",
               "--short-epochs", "1", "--final-epochs", "2")
    printed = capsys.readouterr().out
    assert rc == 0 and "best: vit r" in printed
    summary = json.loads((out / "summary.json").read_text())
    recs = [json.loads(line) for line in (out / "candidates.jsonl").read_text().splitlines()]
    assert len(recs) == summary["candidates"] == 4
    space = load_space("vit", 1, 8, 4)
    for r in recs:
        _keeps_rules(space.candidate(r["arch"]), space)
        assert r["fits"] == (r["measure"]["flash"] <= 96 * 1024
                             and r["measure"]["sram"] <= summary["budgets"]["sram"])
        if not r["fits"]:
            assert r["trained"] is None and r["final"] is None  # over budget: never trained
    assert summary["over_budget"] >= 1 and summary["trained"] >= 1
    best = summary["best"]
    winner = next(r for r in recs if r["key"] == best["key"])
    assert winner["fits"] and best["flash"] <= 96 * 1024
    assert 0.0 <= best["val_acc_int8"] <= 1.0
    # what `edgec compile` plans for best.pt is the search's arena
    rc = edgec("compile", out / "best.pt", "--calib", out / "calib.npy", "--no-build",
               "-o", tmp_path / "net")
    assert rc == 0
    rep = json.loads((tmp_path / "net" / "report.json").read_text())
    assert rep["memory"]["arena_bytes"] == best["arena"]
    if best["arena"] != winner["measure"]["arena"]:
        # the trained weights needed int16 attention probabilities (quantize/precision.py),
        # which the untrained candidate's measurement could not know: one int16 row of
        # keys per attention call joins its scratch, nothing else
        assert rep["precision"]["int16_tensors"]
        assert 0 < best["arena"] - winner["measure"]["arena"] <= sum(
            2 * layer["macs"] for layer in rep["layers"] if layer["op"] == "attention")
    assert rep["flash"]["model_constants_bytes"] == best["weights"]


def test_cli_vit_bad_inputs(data, tmp_path, capsys):
    common = ["--data", data / "train.npz", "--val", data / "val.npz", "-o", tmp_path / "nas",
              "--executor", "inline", "--no-verify"]
    _fails(capsys, *common, "--space", "vitt", says=("unknown search space 'vitt'", "vit"))
    (tmp_path / "odd.json").write_text(json.dumps({**ODD_SPACE, "heads": [3],
                                                   "widths": [32]}))
    _fails(capsys, *common, "--space", tmp_path / "odd.json", says=("divides width 32",))
    _fails(capsys, *common, "--space", "vit", "--budget-flash", "8KB",
           says=("smallest (vit r", "flash"))
    assert not (tmp_path / "nas" / "candidates.jsonl").exists()
