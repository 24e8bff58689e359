"""`edgec test` (toolchain/citest.py), its JUnit XML and Markdown, the saved golden model
(toolchain/golden_io.py) and the pytest helpers (toolchain/testing.py)."""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from conftest import edgec, shared_models_dir

MODELS = shared_models_dir()
KWS = MODELS / "kws_dscnn_int8.tflite"
HELLO = MODELS / "hello_world_int8.tflite"
XSD = Path(__file__).parent / "data" / "junit.xsd"


@pytest.fixture(scope="module")
def kws(tmp_path_factory):
    d = tmp_path_factory.mktemp("kws")
    assert edgec("compile", KWS, "-o", d / "net") == 0
    rng = np.random.default_rng(0)
    x = rng.integers(-128, 128, size=(24, 49, 10, 1)).astype(np.int8)
    np.savez(d / "cases.npz", x=x, y=rng.integers(0, 12, size=24))
    return d


def validate_junit(path: Path) -> None:
    import xmlschema
    xmlschema.XMLSchema(str(XSD)).validate(str(path))


def run(capsys, *args) -> tuple[int, str, str]:
    rc = edgec("test", *args)
    cap = capsys.readouterr()
    return rc, cap.out, cap.err


def one_error_line(err: str) -> str:
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("edgec: error: "), err
    assert "Traceback" not in err
    return lines[0]


def test_pass_writes_valid_junit_markdown_and_json(kws, tmp_path, capsys):
    rc, out, err = run(capsys, kws / "net", "--inputs", kws / "cases.npz",
                       "--junit", tmp_path / "r" / "junit.xml", "--summary-md",
                       tmp_path / "summary.md", "--json", tmp_path / "res.json")
    assert rc == 0, err
    assert "24 samples" in out and "one launch" in out and "PASS" in out
    assert "outputs match edgec golden model" in out
    validate_junit(tmp_path / "r" / "junit.xml")
    md = (tmp_path / "summary.md").read_text()
    assert md.startswith("### edgec test: **PASS**") and "| check | result | detail |" in md
    res = json.loads((tmp_path / "res.json").read_text())
    assert res["passed"] and res["samples"] == 24
    assert res["figures"]["instructions"] > 0 and res["figures"]["stack_bytes"] > 0
    assert 0 <= res["figures"]["accuracy"] <= 1


def test_budgets_fail_with_exit_1_and_a_failure_in_junit(kws, tmp_path, capsys):
    (tmp_path / "b.toml").write_text(textwrap.dedent("""\
        [budgets]
        arena_bytes = "1 KB"       # far too small: fails
        flash_bytes = "1 MB"
        stack_bytes = 8192
        instructions = 100_000_000
        accuracy = "0%"
        """))
    rc, out, err = run(capsys, kws / "net", "--inputs", kws / "cases.npz", "--budget-file",
                       tmp_path / "b.toml", "--junit", tmp_path / "j.xml", "--summary-md",
                       tmp_path / "s.md")
    assert rc == 1
    line = one_error_line(err)
    assert "1 of " in line and "arena_bytes" in line and "over the budget" in line
    assert "budget flash_bytes <= 1,048,576 B" in out
    validate_junit(tmp_path / "j.xml")
    xml = (tmp_path / "j.xml").read_text()
    assert xml.count("<failure") == 1 and 'failures="1"' in xml
    assert "**FAIL**" in (tmp_path / "s.md").read_text()


def test_baseline_regression_table(kws, tmp_path, capsys):
    rc, out, err = run(capsys, kws / "net", "--inputs", kws / "cases.npz", "--baseline",
                       kws / "net" / "report.json", "--max-regress", "2%")
    assert rc == 0, err  # the compile's own figures: nothing got worse
    assert "before" in out and "after" in out and "arena_bytes" in out
    rep = json.loads((kws / "net" / "report.json").read_text())
    better = {"format": "edgec-test", "figures": {
        "arena_bytes": rep["memory"]["arena_bytes"] * 0.9,
        "instructions": rep["latency"]["instructions"] * 0.99,  # within 2%: passes
        "flash_bytes": rep["flash"]["total_bytes"]}}
    (tmp_path / "old.json").write_text(json.dumps(better))
    rc, out, err = run(capsys, kws / "net", "--inputs", kws / "cases.npz", "--baseline",
                       tmp_path / "old.json", "--max-regress", "2%", "--summary-md",
                       tmp_path / "s.md")
    assert rc == 1
    assert "baseline arena_bytes" in one_error_line(err)
    assert "instructions" not in one_error_line(err)
    row = next(ln for ln in out.splitlines() if ln.strip().startswith("arena_bytes"))
    assert "WORSE" in row and "+11.1%" in row
    assert "| arena_bytes |" in (tmp_path / "s.md").read_text()


def test_expect_file_and_float_inputs(kws, tmp_path, capsys):
    x = np.load(kws / "cases.npz")["x"]
    rc, _, err = run(capsys, kws / "net", "--inputs", kws / "cases.npz", "--json",
                     tmp_path / "r.json")
    assert rc == 0, err
    from edgec.toolchain import citest
    res = citest.run_checks(kws / "net", x)
    np.savez(tmp_path / "ref.npz", y_ref=res.outputs)
    rc, out, err = run(capsys, kws / "net", "--inputs", kws / "cases.npz", "--expect",
                       tmp_path / "ref.npz")
    assert rc == 0, err
    assert "expected outputs (--expect)" in out
    wrong = res.outputs.copy()
    wrong[3, 5] += 1
    np.save(tmp_path / "wrong.npy", wrong)
    rc, out, err = run(capsys, kws / "net", "--inputs", kws / "cases.npz", "--expect",
                       tmp_path / "wrong.npy", "--junit", tmp_path / "j.xml")
    assert rc == 1 and "1 values not equal in 1 of 24 samples" in one_error_line(err)
    assert "sample 3: 1 values differ" in (tmp_path / "j.xml").read_text()
    # float inputs are quantized with the model's input scale, as in `edgec run`
    spec = json.loads((kws / "net" / "model.json").read_text())["io"]["inputs"][0]
    xf = ((x.astype(np.float32) - spec["zero_point"]) * spec["scale"]).astype(np.float32)
    np.savez(tmp_path / "f.npz", x=xf)
    rc, _, err = run(capsys, kws / "net", "--inputs", tmp_path / "f.npz", "--expect",
                     tmp_path / "ref.npz")
    assert rc == 0, err
    # float expectations: compared with the dequantized outputs within one step
    deq = (res.outputs.astype(np.float32) + 128) / 256.0
    np.savez(tmp_path / "fref.npz", y_ref=deq + 0.001)
    rc, _, err = run(capsys, kws / "net", "--inputs", kws / "cases.npz", "--expect",
                     tmp_path / "fref.npz")
    assert rc == 0, err


@pytest.mark.parametrize("case, says", [
    ("no_out", "not an edgec output directory"),
    ("bad_npz", "not a readable .npz"),
    ("bad_shape", "does not match the model input"),
    ("unknown_budget", "unknown budget 'arena'"),
    ("bad_budget_value", "is not a number"),
    ("accuracy_no_labels", "no labels"),
    ("bad_margin", "not a percentage"),
    ("bad_baseline", "is not JSON"),
    ("no_golden", "compiled by an older edgec"),
    ("expect_shape", "expected outputs have shape"),
    ("labels_count", "labels for"),
])
def test_usage_errors_exit_2_in_one_line(kws, tmp_path, capsys, case, says):
    net, cases = kws / "net", kws / "cases.npz"
    args = [net, "--inputs", cases]
    if case == "no_out":
        args[0] = tmp_path / "nothing"
    elif case == "bad_npz":
        (tmp_path / "x.npz").write_bytes(b"PK\x03\x04 not really")
        args[2] = tmp_path / "x.npz"
    elif case == "bad_shape":
        np.savez(tmp_path / "x.npz", x=np.zeros((2, 10, 49, 1), np.int8))
        args[2] = tmp_path / "x.npz"
    elif case in ("unknown_budget", "bad_budget_value", "accuracy_no_labels"):
        body = {"unknown_budget": "arena = 1\n", "bad_budget_value": "arena_bytes = 'lots'\n",
                "accuracy_no_labels": "accuracy = 0.5\n"}[case]
        (tmp_path / "b.toml").write_text(body)
        np.savez(tmp_path / "x.npz", x=np.zeros((2, 49, 10, 1), np.int8))
        args = [net, "--inputs", tmp_path / "x.npz", "--budget-file", tmp_path / "b.toml"]
    elif case == "bad_margin":
        args += ["--baseline", net / "report.json", "--max-regress", "lots"]
    elif case == "bad_baseline":
        (tmp_path / "old.json").write_text("{nope")
        args += ["--baseline", tmp_path / "old.json"]
    elif case == "no_golden":
        old = tmp_path / "old_net"
        shutil.copytree(net, old)
        (old / "golden.npz").unlink()
        args[0] = old
    elif case == "expect_shape":
        np.save(tmp_path / "e.npy", np.zeros((24, 5), np.int8))
        args += ["--expect", tmp_path / "e.npy"]
    elif case == "labels_count":
        np.savez(tmp_path / "x.npz", x=np.zeros((2, 49, 10, 1), np.int8), y=np.zeros(3))
        args[2] = tmp_path / "x.npz"
    rc, _, err = run(capsys, *args)
    assert rc == 2, err
    assert says in one_error_line(err)


def test_firmware_that_does_not_run_is_a_failed_check(kws, tmp_path, capsys):
    broken = tmp_path / "net"
    shutil.copytree(kws / "net", broken)
    (broken / "firmware.elf").write_bytes(b"\x7fELF garbage")
    rc, out, err = run(capsys, broken, "--inputs", kws / "cases.npz", "--junit",
                       tmp_path / "j.xml")
    assert rc == 1
    assert "runs on the emulator" in one_error_line(err)
    validate_junit(tmp_path / "j.xml")
    xml = (tmp_path / "j.xml").read_text()
    assert "<skipped" in xml and 'skipped="1"' in xml


def test_golden_file_roundtrip_is_exact_and_deterministic(kws, tmp_path):
    from edgec.toolchain import check, golden_io
    from edgec.toolchain.options import CompileOptions
    from edgec.toolchain.pipeline import compile_model
    compile_model(CompileOptions(model=KWS, target="stm32f746", out_dir=tmp_path / "a",
                                 build=False, run=False))
    assert (tmp_path / "a" / "golden.npz").read_bytes() == \
        (kws / "net" / "golden.npz").read_bytes()
    program = golden_io.load_program(kws / "net" / "golden.npz")
    golden_io.save_program(program, tmp_path / "again.npz")
    assert (tmp_path / "again.npz").read_bytes() == (kws / "net" / "golden.npz").read_bytes()
    io = json.loads((kws / "net" / "model.json").read_text())["io"]
    x = np.load(kws / "cases.npz")["x"][:4]
    from edgec.toolchain.litert_ref import run_litert
    want = run_litert(KWS, [x])[0]
    got = check.golden_outputs(program, io, x)
    assert np.array_equal(got.reshape(want.shape), want)
    # damaged files are an EdgecError, never a crash or code execution
    data = (kws / "net" / "golden.npz").read_bytes()
    from edgec.toolchain.errors import EdgecError
    flipped = data[:200] + bytes([data[200] ^ 0x55]) + data[201:]
    for bad in (data[: len(data) // 2], b"", flipped):
        (tmp_path / "bad.npz").write_bytes(bad)
        with pytest.raises(EdgecError):
            golden_io.load_program(tmp_path / "bad.npz")


def test_assert_runs_on_target(tmp_path):
    from edgec.toolchain.testing import assert_runs_on_target
    x = np.linspace(-1.5, 6.0, 32, dtype=np.float32).reshape(32, 1)
    res = assert_runs_on_target(HELLO, x, target="stm32f746",
                                budgets={"arena_bytes": 1024, "flash_bytes": "64 KB"},
                                out_dir=tmp_path / "net")
    assert res.passed and res.samples == 32 and res.outputs.shape == (32, 1)
    # the float outputs of the int8 model are within a step of sin(x)
    with pytest.raises(AssertionError) as e:
        assert_runs_on_target(HELLO, x, budgets={"instructions": 10},
                              compiled=tmp_path / "net")
    assert "budget instructions <= 10" in str(e.value) and "over the budget" in str(e.value)
    with pytest.raises(AssertionError) as e:
        assert_runs_on_target(HELLO, x, expect=np.zeros((32, 1), np.int8),
                              compiled=tmp_path / "net")
    assert "sample 0" in str(e.value)
    (tmp_path / "bad.tflite").write_bytes(b"garbage")
    with pytest.raises(AssertionError) as e:
        assert_runs_on_target(tmp_path / "bad.tflite", x)
    assert "could not compile" in str(e.value) and "not a TFLite model" in str(e.value)


def test_pytest_plugin_fixture(tmp_path):
    (tmp_path / "test_user.py").write_text(textwrap.dedent(f"""\
        import numpy as np

        def test_hello(edgec_target):
            assert edgec_target.target == "stm32f411"
            x = np.zeros((3, 1), np.int8)
            res = edgec_target.assert_runs({str(HELLO)!r}, x, budgets={{"stack_bytes": 4096}})
            assert res.target == "stm32f411"
            again = edgec_target.compile({str(HELLO)!r})
            assert again == edgec_target.compile({str(HELLO)!r})
        """))
    proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                           "--edgec-target", "stm32f411", "test_user.py"], cwd=tmp_path,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr


ROOT = Path(__file__).resolve().parents[1]
CI = ROOT / "examples" / "ci"


def test_ci_examples_use_apt_and_pip_and_run_edgec_test():
    import yaml
    gh = yaml.safe_load((CI / "github-actions.yml").read_text())
    gh_runs = "\n".join(s.get("run", "") for job in gh["jobs"].values() for s in job["steps"])
    gl = yaml.safe_load((CI / "gitlab-ci.yml").read_text())["edgec-test"]
    gl_runs = "\n".join(gl["before_script"] + gl["script"])
    assert gl["artifacts"]["reports"]["junit"] == "build/edgec-junit.xml"
    for runs in (gh_runs, gl_runs):
        for needle in ("apt-get install", "gcc-arm-none-eabi", "libnewlib-arm-none-eabi",
                       "qemu-system-arm", "pip install", "examples/cnn/make_model.py",
                       "edgec compile build/demo/model.pt", "edgec test build/demo/net",
                       "--budget-file examples/ci/budgets.toml", "--junit", "--summary-md"):
            assert needle in runs, needle
        installs = [ln for ln in runs.splitlines() if "install" in ln]
        assert all("apt-get" in ln or "pip" in ln for ln in installs), installs


def test_ci_example_commands_pass_with_the_shipped_budgets(tmp_path, capsys):
    """The commands the CI examples run (after apt/pip), on the shipped example."""
    demo = tmp_path / "build" / "demo"
    subprocess.run([sys.executable, str(ROOT / "examples" / "cnn" / "make_model.py"), "--out",
                    str(demo)], check=True, capture_output=True)
    assert edgec("compile", demo / "model.pt", "--target", "stm32f746", "--calib",
                 demo / "calib.npy", "-o", demo / "net") == 0
    capsys.readouterr()
    rc, out, err = run(capsys, demo / "net", "--inputs", demo / "calib.npy", "--budget-file",
                       CI / "budgets.toml", "--baseline", demo / "net" / "report.json",
                       "--max-regress", "2%", "--junit", tmp_path / "build" / "j.xml",
                       "--summary-md", tmp_path / "build" / "s.md")
    assert rc == 0, out + err
    assert "budget arena_bytes" in out and "64 samples" in out
    validate_junit(tmp_path / "build" / "j.xml")
