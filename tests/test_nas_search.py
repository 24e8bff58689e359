"""edgec nas, the search: a tiny end-to-end run through the CLI writing every output, the same
run on a local Ray instance giving the same candidates and numbers, Ctrl-C then --resume."""
from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import torch

from conftest import edgec
from edgec.toolchain.nas import NasInterrupted, NasOptions, run_nas
from edgec.toolchain.nas.search import Search
from test_nas import synthetic, write_data

TIMING = {"seconds", "task_seconds", "epoch_seconds"}
# as the CLI run below
RUN = dict(budget_sram=64 * 1024, budget_flash=256 * 1024, time_limit=300, seed=7,
           max_candidates=5, short_epochs=1, final_epochs=2, verify=False, progress=False)


def _untimed(v):
    """A record without its wall-clock fields (the only ones that differ between runs)."""
    if isinstance(v, dict):
        return {k: _untimed(x) for k, x in v.items() if k not in TIMING}
    if isinstance(v, list):
        return [_untimed(x) for x in v]
    return v


def _records(out) -> list[dict]:
    return [json.loads(line) for line in (out / "candidates.jsonl").read_text().splitlines()]


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return write_data(tmp_path_factory.mktemp("nasdata"))


@pytest.fixture(scope="module")
def cli_run(data, tmp_path_factory):
    """The end-to-end run: `edgec nas` with the inline executor."""
    out = tmp_path_factory.mktemp("run") / "nas"
    rc = edgec("nas", "--target", "stm32f746", "--data", data / "train.npz", "--val",
               data / "val.npz", "--budget-sram", "64KB", "--budget-flash", "256KB",
               "--time", "5m", "-o", out, "--space", data / "space.json", "--seed", "7",
               "--max-candidates", "5", "--executor", "inline", "--no-verify",
               "--short-epochs", "1", "--final-epochs", "2")
    assert rc == 0
    return out


def _opts(data, out, **kw) -> NasOptions:
    return NasOptions(**{"train": data / "train.npz", "val": data / "val.npz", "out_dir": out,
                         "space_file": data / "space.json", **RUN, **kw})


def test_end_to_end_outputs(cli_run, data):
    out = cli_run
    for name in ("best.pt", "calib.npy", "candidates.jsonl", "report.html", "summary.json"):
        assert (out / name).is_file(), name
    summary = json.loads((out / "summary.json").read_text())
    recs = _records(out)
    assert len(recs) == summary["candidates"] == 5
    for r in recs:
        assert {"arch", "measure", "proxy", "fits", "trained"} <= set(r)
        assert r["measure"]["arena"] > 0 and r["measure"]["macs"] > 0
        if not r["fits"]:
            assert r["trained"] is None  # over budget: never trained
    assert summary["trained"] >= 1
    best = summary["best"]
    model = torch.jit.load(str(out / "best.pt"))
    calib = np.load(out / "calib.npy")
    assert calib.shape[1:] == tuple(best["input_shape"][1:])
    assert model(torch.from_numpy(calib[:2])).shape == (2, 4)
    # best.pt measured as `edgec compile best.pt --calib calib.npy` sees it
    winner = next(r for r in recs if r["key"] == best["key"])
    assert winner["final"]["measure"]["arena"] == winner["measure"]["arena"] == best["arena"]
    assert 0.0 <= best["val_acc_int8"] <= 1.0
    html = (out / "report.html").read_text()
    assert html.count("<svg") == 3 and "budget" in html
    assert "http://" not in html.replace('xmlns="http://www.w3.org/2000/svg"', "")
    assert "https://" not in html and "<script" not in html


def test_ray_executor_gives_the_same_search(cli_run, data, tmp_path):
    import ray
    ray.init(num_cpus=1, include_dashboard=False, log_to_driver=False)
    try:
        summary = run_nas(_opts(data, tmp_path / "nas", executor="ray"))
    finally:
        ray.shutdown()
    assert summary["executor"] == "ray"
    assert _untimed(_records(tmp_path / "nas")) == _untimed(_records(cli_run))


def test_interrupt_then_resume(cli_run, data, tmp_path, monkeypatch):
    out = tmp_path / "nas"
    real = Search.train_some

    def interrupted(self, *args):
        real(self, *args)
        raise KeyboardInterrupt  # Ctrl-C after the first generation's training

    monkeypatch.setattr(Search, "train_some", interrupted)
    with pytest.raises(NasInterrupted, match="--resume"):
        run_nas(_opts(data, out, executor="inline", generation=2, train_per_generation=1,
                      finalists=1))
    monkeypatch.setattr(Search, "train_some", real)
    saved = _records(out)
    assert len(saved) == 3 and sum(r["trained"] is not None for r in saved) == 1
    summary = run_nas(_opts(data, out, executor="inline", generation=2, train_per_generation=1,
                            finalists=1, resume=True))
    resumed = _records(out)
    assert len(resumed) == summary["candidates"] == 5
    for old, new in zip(saved, resumed):  # nothing finished before Ctrl-C is lost or redone
        assert (old["key"], old["proxy"]) == (new["key"], new["proxy"])
        assert _untimed(old["measure"]) == _untimed(new["measure"])
        if old["trained"] is not None:
            assert _untimed(old["trained"]) == _untimed(new["trained"])
    # the same seed without interruption chose the same first candidates
    assert [r["key"] for r in _records(cli_run)[:3]] == [r["key"] for r in saved]


def test_resume_refuses_other_data(cli_run, data, tmp_path):
    from edgec.toolchain.errors import EdgecError
    out = tmp_path / "nas"
    shutil.copytree(cli_run, out)
    x, y = synthetic(40, 5)
    np.savez(tmp_path / "other.npz", x=x, y=y)
    with pytest.raises(EdgecError, match="resume"):
        run_nas(_opts(data, out, executor="inline", resume=True, train=tmp_path / "other.npz"))
