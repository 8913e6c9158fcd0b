"""The CI gate: compare a report with a baseline report and name the cells that regressed past the budgets."""

from __future__ import annotations

import json
from pathlib import Path

from bmsdk.converters.budget import fits


def load_report(path: str | Path) -> dict:
    from bmsdk.errors import DataError

    try:
        report = json.loads(Path(path).read_text())
    except (OSError, json.JSONDecodeError) as e:
        raise DataError(f"cannot read baseline report {path} ({e})", "pass a report.json written by `bmsdk bench`") from None
    if not isinstance(report, dict) or "cells" not in report:
        raise DataError(f"{path} is not a bmsdk bench report", "pass a report.json written by `bmsdk bench`")
    return report


def _relative_latency(report: dict, cell: dict, batch: str) -> float | None:
    """Cell latency over the source model's, both from the same run: cancels out how fast the machine is."""
    latency = cell.get("latency", {}).get(batch, {}).get("p50_ms")
    source = (report.get("source_model") or {}).get("latency", {}).get(batch, {}).get("p50_ms")
    return latency / source if latency and source else None


def check(report: dict, baseline: dict, max_accuracy_drop_pt: float | None, max_latency_regression_pct: float | None) -> list[str]:
    """One line per violation; empty when the report is within budget of the baseline."""
    old_cells = {(c["target"], c["precision"], c.get("variant", "")): c for c in baseline["cells"]}
    problems = []
    for cell in report["cells"]:
        key = (cell["target"], cell["precision"], cell.get("variant", ""))
        name = " ".join(k for k in key if k)
        old = old_cells.get(key)
        if old is None:
            continue
        if old.get("status") in ("validated", "converted") and cell.get("status") not in ("validated", "converted"):
            problems.append(f"{name}: was {old['status']}, now {cell.get('status')} ({cell.get('reason', '')})")
            continue
        old_acc, new_acc = (old.get("metric") or {}).get("accuracy"), (cell.get("metric") or {}).get("accuracy")
        if max_accuracy_drop_pt is not None and old_acc is not None and new_acc is not None:
            drop = 100 * (old_acc - new_acc)
            if not fits(drop, max_accuracy_drop_pt):
                problems.append(f"{name}: accuracy {new_acc:.4f} is {drop:.2f} pt below the baseline's {old_acc:.4f} "
                                f"(budget {max_accuracy_drop_pt} pt)")
        if max_latency_regression_pct is None:
            continue
        for batch in cell.get("latency", {}):
            old_rel, new_rel = _relative_latency(baseline, old, batch), _relative_latency(report, cell, batch)
            if old_rel is None or new_rel is None:
                old_rel = old.get("latency", {}).get(batch, {}).get("p50_ms")
                new_rel = cell["latency"][batch]["p50_ms"]
            if old_rel and new_rel:
                change = 100 * (new_rel / old_rel - 1)
                if change > max_latency_regression_pct:
                    problems.append(f"{name} batch {batch}: latency {change:+.0f}% against the baseline "
                                    f"(relative to the source model; budget {max_latency_regression_pct}%)")
    return problems
