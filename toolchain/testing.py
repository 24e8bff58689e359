"""Emulator-in-the-loop checks for your own pytest suite.

    from edgec.toolchain.testing import assert_runs_on_target

    def test_model_fits_and_matches():
        x = np.load("tests/data/x.npy")                       # (N, *input), source layout
        assert_runs_on_target("model.tflite", x, target="stm32f746",
                              budgets={"arena_bytes": 64 * 1024, "instructions": 5_000_000})

`assert_runs_on_target` compiles the model into a temporary directory (or `out_dir`), runs
every input on the emulator in one launch, and asserts that the firmware's outputs equal
edgec's golden model (or `expect`) exactly and that every budget holds. A failure raises
AssertionError whose message lists each failed check; a model edgec cannot compile fails
the same way, with edgec's one-line reason.

This module is also a pytest plugin, registered under the `pytest11` entry point `edgec`
(installed with edgec, nothing to configure). It adds:
  - the option `--edgec-target BOARD` (default stm32f746),
  - the fixture `edgec_target`: an object whose `.assert_runs(model, inputs, **kw)` calls
    assert_runs_on_target with that target and an output directory under the test's
    tmp_path, and whose `.compile(model, **kw)` compiles once per test session (cached by
    the model file's path, options and contents).
Without the entry point (e.g. running from a source checkout that is not installed), add
`pytest_plugins = ["edgec.toolchain.testing"]` to your conftest.py.

The plugin only imports the standard library at pytest start-up: edgec's compiler loads on
the first use of the fixture.
"""
from __future__ import annotations

import hashlib
import tempfile
from pathlib import Path
from typing import Any, Mapping

DEFAULT_TARGET = "stm32f746"


def compile_for_target(model_path: str | Path, out_dir: str | Path, target: str = DEFAULT_TARGET,
                       calib: Any = None, io: str = "model", optimize: str = "speed",
                       input_shape: tuple[int, ...] | None = None) -> Path:
    """Compile (build and check on the emulator, as `edgec compile` does) into out_dir.
    `calib` is a path or an array of calibration samples. AssertionError if it fails."""
    import numpy as np

    from .errors import EdgecError
    from .options import CompileOptions
    from .pipeline import compile_model
    out_dir = Path(out_dir)
    with tempfile.TemporaryDirectory(prefix="edgec-calib-") as tmp:
        calib_path = None if calib is None else Path(calib) if isinstance(calib, (str, Path)) \
            else Path(tmp) / "calib.npy"
        if calib is not None and not isinstance(calib, (str, Path)):
            np.save(calib_path, np.asarray(calib))
        opts = CompileOptions(model=Path(model_path), target=target, out_dir=out_dir,
                              calib=calib_path, input_shape=input_shape, io=io,
                              optimize=optimize)
        try:
            compile_model(opts)
        except EdgecError as e:
            raise AssertionError(f"edgec could not compile {model_path} for {target}: {e}") \
                from None
    return out_dir


def assert_runs_on_target(model_path: str | Path, inputs: Any, target: str = DEFAULT_TARGET,
                          expect: Any = None, budgets: Mapping[str, Any] | str | Path | None = None,
                          *, labels: Any = None, calib: Any = None, io: str = "model",
                          optimize: str = "speed", input_shape: tuple[int, ...] | None = None,
                          out_dir: str | Path | None = None, atol: float | None = None,
                          compiled: str | Path | None = None, timeout_s: float = 1800.0):
    """Compile `model_path` for `target`, run `inputs` on the emulator, assert.

    inputs: an array (N, *input shape without batch, in the model's source layout; float
        or int8, as for `edgec run`), or a path to an .npy / .npz (x, optional labels y).
    expect: expected outputs (N, *output); default: edgec's golden model on the inputs.
    budgets: {figure: limit} (keys as in a budgets TOML: arena_bytes, sram_bytes,
        stack_bytes, flash_bytes, weights_bytes, code_bytes, instructions, latency_ms,
        accuracy) or the path of a budgets TOML.
    labels: class indices (N,) for the accuracy budget (or y in the .npz).
    compiled: an existing output directory: skip compiling (model_path is then only named).
    Returns the citest.TestResult (figures, checks, the firmware's outputs).
    """
    import numpy as np

    from . import citest
    from .errors import EdgecError
    try:
        if isinstance(inputs, (str, Path)):
            x, y = citest.load_cases(inputs)
        else:
            x, y = (dict(inputs) if isinstance(inputs, dict) else np.asarray(inputs)), None
        if labels is not None:
            y = np.asarray(labels)
        if budgets is None:
            limits = {}
        elif isinstance(budgets, (str, Path)):
            limits = citest.load_budgets(budgets)
        else:
            limits = citest.parse_budgets(dict(budgets))
        want = expect
        if isinstance(expect, (str, Path)):
            want = citest.load_expect(expect)
    except EdgecError as e:
        raise AssertionError(f"edgec test arguments: {e}") from None

    with tempfile.TemporaryDirectory(prefix="edgec-test-") as tmp:
        if compiled is not None:
            out = Path(compiled)
        else:
            out = Path(out_dir) if out_dir is not None else Path(tmp) / "net"
            compile_for_target(model_path, out, target, calib=calib, io=io,
                               optimize=optimize, input_shape=input_shape)
        try:
            result = citest.run_checks(out, x, labels=y, expect=want, budgets=limits,
                                       atol=atol, timeout_s=timeout_s)
        except EdgecError as e:
            raise AssertionError(f"edgec test of {model_path} on {target}: {e}") from None
    if not result.passed:
        lines = [f"{Path(model_path).name} on {target}: {citest.failure_line(result)}"]
        for c in result.failed:
            lines.append(f"  - {c.name}: {c.message}")
            lines += [f"      {d}" for d in c.detail.splitlines()]
        raise AssertionError("\n".join(lines))
    return result


# ---- pytest plugin ---------------------------------------------------------------------------

def pytest_addoption(parser) -> None:
    group = parser.getgroup("edgec", "edgec emulator-in-the-loop checks")
    group.addoption("--edgec-target", default=DEFAULT_TARGET,
                    help=f"target board for the edgec_target fixture (default {DEFAULT_TARGET})")


class EdgecTarget:
    """What the `edgec_target` fixture gives a test."""

    _cache: dict[str, Path] = {}  # per test session (one process)

    def __init__(self, target: str, tmp_path: Path, cache_root: Path):
        self.target, self.tmp_path, self._root = target, tmp_path, cache_root

    def compile(self, model_path: str | Path, **kwargs) -> Path:
        """Compile once per session for this target; returns the output directory."""
        h = hashlib.sha256(repr((str(Path(model_path).resolve()), self.target)).encode())
        h.update(Path(model_path).read_bytes())
        for k, v in sorted(kwargs.items()):
            h.update(k.encode())
            h.update(v.tobytes() + repr(v.shape).encode() if hasattr(v, "tobytes")
                     else repr(v).encode())
        key = h.hexdigest()[:16]
        if key not in self._cache:
            out = self._root / f"{Path(model_path).stem}-{key}"
            self._cache[key] = compile_for_target(model_path, out, self.target, **kwargs)
        return self._cache[key]

    def assert_runs(self, model_path: str | Path, inputs: Any, **kwargs):
        kwargs.setdefault("target", self.target)
        if "compiled" not in kwargs and kwargs["target"] == self.target and not (
                {"calib", "io", "optimize", "input_shape", "out_dir"} & set(kwargs)):
            kwargs["compiled"] = self.compile(model_path)
        return assert_runs_on_target(model_path, inputs, **kwargs)


try:
    import pytest as _pytest
except ImportError:  # the library half works without pytest
    _pytest = None

if _pytest is not None:
    @_pytest.fixture
    def edgec_target(request, tmp_path, tmp_path_factory) -> EdgecTarget:
        """Compile and check models on the emulator for --edgec-target (see module doc)."""
        root = tmp_path_factory.getbasetemp() / "edgec-compiled"
        root.mkdir(exist_ok=True)
        return EdgecTarget(request.config.getoption("--edgec-target"), tmp_path, root)
