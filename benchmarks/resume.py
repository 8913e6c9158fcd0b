"""`--resume REPORT.json`: the cells an interrupted run finished, and the partial report each cell leaves behind."""

from __future__ import annotations

import json
from pathlib import Path

from bmsdk.benchmarks.harness import cell_key
from bmsdk.errors import DataError

FIX = "pass the report.json an interrupted `bmsdk bench` left in its output folder"
FINISHED = ("validated", "converted", "failed", "skipped")


def finished_cells(path: str | Path) -> dict:
    """cell_key -> cell for each finished cell of the report; the source model's entry under None."""
    try:
        report = json.loads(Path(path).read_text())
    except OSError as e:
        raise DataError(f"cannot read {path} to resume ({e.strerror or e})", FIX) from None
    except ValueError as e:
        raise DataError(f"{path} is not valid JSON ({e})", FIX) from None
    if not isinstance(report, dict) or not isinstance(report.get("cells"), list):
        raise DataError(f"{path} is not a bmsdk bench report (no cells)", FIX)
    done = {cell_key(c): c for c in report["cells"] if isinstance(c, dict) and _finished(c)}
    if report.get("source_model"):
        done[None] = report["source_model"]
    return done


def write_partial(out_dir: Path, cfg, cells: list[dict], source: dict | None) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    partial = {"complete": False, "source": str(cfg.source), "source_model": source, "cells": cells}
    tmp = out_dir / "report.json.tmp"
    tmp.write_text(json.dumps(partial, indent=2) + "\n")
    tmp.replace(out_dir / "report.json")


def _finished(cell: dict) -> bool:
    """A cell with its result; one that failed only because its workers kept dying is run again."""
    return cell.get("status") in FINISHED and not (cell["status"] == "failed" and cell.get("attempts"))
