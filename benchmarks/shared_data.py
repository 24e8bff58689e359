"""Where the benchmarks find ../shared: the real models and TFLM's anchor figures.

One place for both, so no script types a figure from anchors.md into its own code.
"""
from __future__ import annotations

import functools
import os
import re
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def candidate_dirs(arg: str | Path | None = None) -> list[Path]:
    """Where the shared models may be, in order: --models DIR, $EDGEC_SHARED_MODELS,
    <repo>/../shared/models (work tree and CI), and beside the local repository a scratch
    clone (`git clone . $(mktemp -d)`) came from."""
    cands = [arg, os.environ.get("EDGEC_SHARED_MODELS"), REPO.parent / "shared" / "models",
             REPO / "shared" / "models", _origin_shared()]
    return [Path(c) for c in cands if c]


def models_dir(arg: str | Path | None = None) -> Path:
    for cand in candidate_dirs(arg):
        if cand.is_dir() and any(cand.glob("*.tflite")):
            return cand
    raise SystemExit("shared/models not found: pass --models DIR or set EDGEC_SHARED_MODELS")


@functools.lru_cache(maxsize=None)
def _origin_shared() -> Path | None:
    """A scratch clone's models: beside the local repository it was cloned from."""
    try:
        url = subprocess.run(["git", "-C", str(REPO), "config", "--get", "remote.origin.url"],
                             capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return Path(url.removeprefix("file://")).parent / "shared" / "models" if url else None


def anchors(models: Path) -> dict[str, dict[str, int | None]]:
    """Every row of every table in shared/anchors.md (beside the models folder):
    {model: {column header: integer or None}}; later tables add columns to a model's row."""
    path = Path(models).parent / "anchors.md"
    rows: dict[str, dict[str, int | None]] = {}
    if not path.is_file():
        return rows
    header: list[str] | None = None
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.startswith("|"):
            header = None
            continue
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if header is None:
            header = cells
        elif not re.fullmatch(r"[-: ]*", "".join(cells)):
            row = rows.setdefault(cells[0], {})
            for name, cell in zip(header[1:], cells[1:]):
                value = cell.replace(",", "")
                row[name] = int(value) if value.isdigit() else row.get(name)
    return rows
