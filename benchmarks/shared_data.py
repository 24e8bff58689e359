"""Where the benchmarks find ../shared: the real models and TFLM's anchor figures.

One place for both, so no script types a figure from anchors.md into its own code.
"""
from __future__ import annotations

import os
import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def models_dir(arg: str | Path | None = None) -> Path:
    """--models DIR, else $EDGEC_SHARED_MODELS, else <repo>/../shared/models."""
    for cand in (arg, os.environ.get("EDGEC_SHARED_MODELS"), REPO.parent / "shared" / "models",
                 REPO / "shared" / "models"):
        if cand and Path(cand).is_dir():
            return Path(cand)
    raise SystemExit("shared/models not found: pass --models DIR or set EDGEC_SHARED_MODELS")


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
