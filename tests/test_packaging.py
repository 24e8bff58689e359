"""`pip install .` must ship what a compile needs at run time: the C runtime, the target
files, the templates and every toolchain module (the package list in pyproject.toml is
explicit, so a new subpackage or data folder must be added there)."""
from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DATA_SUFFIXES = {".c", ".h", ".ld", ".toml", ".j2", ".json"}


def test_wheel_ships_runtime_targets_templates_and_modules(tmp_path):
    # a copy without build/ and *.egg-info: setuptools would reuse their stale files
    src = tmp_path / "src"
    shutil.copytree(ROOT, src, ignore=shutil.ignore_patterns(
        ".git", ".venv", "build", "*.egg-info", "__pycache__", ".pytest_cache"))
    subprocess.run([sys.executable, "-m", "pip", "wheel", str(src), "--no-deps",
                    "--no-build-isolation", "-q", "-w", str(tmp_path / "dist")],
                   check=True, capture_output=True, cwd=tmp_path)
    wheel = next((tmp_path / "dist").glob("edgec-*.whl"))
    shipped = set(zipfile.ZipFile(wheel).namelist())
    needed = []
    for folder in ("runtime_c", "targets", "codegen", "toolchain"):
        for path in (ROOT / folder).rglob("*"):
            if path.is_file() and "__pycache__" not in path.parts and \
                    (path.suffix == ".py" or path.suffix in DATA_SUFFIXES):
                needed.append("edgec/" + path.relative_to(ROOT).as_posix())
    assert len(needed) > 100
    missing = sorted(n for n in needed if n not in shipped)
    assert missing == [], f"not in the wheel: {missing}"
