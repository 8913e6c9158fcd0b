"""The CI gate: compare a report with a baseline report and name the cells that regressed past the budgets."""

from __future__ import annotations

import json
from pathlib import Path

from bmsdk.benchmarks.report import task_metric
from bmsdk.converters.budget import fits
from bmsdk.errors import DataError
from bmsdk.sections import show

MAX_REPORT_BYTES = 64 * 2**20
FIX = "pass a report.json written by `bmsdk bench`"


def load_report(path: str | Path) -> dict:
    """A baseline report.json, checked for every field the gate reads."""

    path = Path(path)
    try:
        if path.stat().st_size > MAX_REPORT_BYTES:
            raise DataError(f"baseline report {path} is larger than {MAX_REPORT_BYTES >> 20} MB", FIX)
        report = json.loads(path.read_bytes())
    except OSError as e:
        raise DataError(f"cannot read baseline report {path} ({e.strerror or e})", FIX) from None
    except RecursionError:
        raise DataError(f"baseline report {path} is nested too deeply", FIX) from None
    except ValueError as e:  # JSONDecodeError and UnicodeDecodeError
        raise DataError(f"baseline report {path} is not valid JSON ({e})", FIX) from None
    problem = _report_problem(report)
    if problem:
        raise DataError(f"baseline report {path}: {problem}", FIX)
    return report


def _report_problem(report) -> str | None:
    """What is missing or of the wrong type in a report, or None."""
    if not isinstance(report, dict) or "cells" not in report:
        return "not a bmsdk bench report (no 'cells')"
    if not isinstance(report["cells"], list):
        return "'cells' is not a list"
    for i, cell in enumerate(report["cells"]):
        problem = _cell_problem(cell)
        if problem:
            return f"cells[{i}] {problem}"
    source = report.get("source_model")
    if source is not None and not isinstance(source, dict):
        return "'source_model' is not an object"
    problem = _latency_problem(source.get("latency")) if source else None
    return f"source_model {problem}" if problem else None


def _cell_problem(cell) -> str | None:
    if not isinstance(cell, dict):
        return "is not an object"
    for key in ("target", "precision"):
        if not isinstance(cell.get(key), str):
            return f"has no '{key}' string"
    for key in ("variant", "status", "reason"):
        if cell.get(key) is not None and not isinstance(cell[key], str):
            return f"'{key}' is not a string"
    metric = cell.get("metric")
    if metric is not None and not isinstance(metric, dict):
        return "'metric' is not an object"
    if metric and metric.get("accuracy") is not None and not _is_number(metric["accuracy"]):
        return "'metric.accuracy' is not a number"
    return _latency_problem(cell.get("latency"))


def _latency_problem(latency) -> str | None:
    if latency is None:
        return None
    if not isinstance(latency, dict):
        return "'latency' is not an object of batch sizes"
    for batch, numbers in latency.items():
        if not isinstance(numbers, dict):
            return f"'latency.{batch[:20]}' is not an object"
        if numbers.get("p50_ms") is not None and not _is_number(numbers["p50_ms"]):
            return f"'latency.{batch[:20]}.p50_ms' is not a number"
    return None


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _relative_latency(report: dict, cell: dict, batch: str) -> float | None:
    """Cell latency over the source model's, both from the same run: cancels out how fast the machine is."""
    latency = (cell.get("latency") or {}).get(batch, {}).get("p50_ms")
    source = ((report.get("source_model") or {}).get("latency") or {}).get(batch, {}).get("p50_ms")
    return latency / source if latency and source else None


NOISE_CAP_PCT = 90.0  # however noisy the runs, a 2x regression always fails


def latency_allowance(budget_pct: float, old: dict, new: dict, batch: str) -> float:
    """The budget widened by both runs' measured noise (the half-widths of their medians' 95% intervals), so that
    noise alone never fails a cell; capped below 100% so that a real 2x regression always does."""
    widths = [((c.get("latency") or {}).get(batch) or {}).get("noise_pct") or 0.0 for c in (old, new)]
    return min(budget_pct + sum(widths), max(budget_pct, NOISE_CAP_PCT))


def hardware_change(report: dict, baseline: dict) -> str | None:
    """Why the two reports' latencies say nothing about each other (another CPU model or ISA: int8 that is 1.4x
    faster than fp32 with VNNI is 1.4x slower without it), or None when they were measured on the same kind."""
    old, new = baseline.get("environment"), report.get("environment")
    if not isinstance(old, dict) or not isinstance(new, dict):
        return None
    if old.get("cpu") != new.get("cpu"):
        return f"the baseline was measured on {show(old.get('cpu'))}, this run on {show(new.get('cpu'))}"
    old_isa, new_isa = _flags(old), _flags(new)
    if old_isa is None and new_isa is not None:
        return "the baseline does not record its CPU's ISA flags (re-record it with this bmsdk)"
    if old_isa != new_isa:
        gone, added = sorted(old_isa - new_isa), sorted(new_isa - old_isa)
        return f"the baseline's CPU has ISA flags this one lacks ({show(gone)}) or lacks some it has ({show(added)})"
    return None


def _flags(environment: dict) -> set[str] | None:
    """A report's ISA flags (a baseline is a file from anywhere: anything but a list of names counts as none)."""
    isa = environment.get("isa")
    return set(isa) if isinstance(isa, list) and all(isinstance(f, str) for f in isa) else None


def check(
    report: dict, baseline: dict, max_accuracy_drop_pt: float | None, max_latency_regression_pct: float | None
) -> list[str]:
    """One line per violation; empty when the report is within budget of the baseline. Latency is compared only
    when both were measured on the same hardware (`hardware_change`); accuracy always."""
    if hardware_change(report, baseline):
        max_latency_regression_pct = None
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
        old_acc, new_acc = _task_metric(old), _task_metric(cell)
        if max_accuracy_drop_pt is not None and old_acc is not None and new_acc is not None:
            drop = 100 * (old_acc - new_acc)
            if not fits(drop, max_accuracy_drop_pt):
                problems.append(
                    f"{name}: accuracy {new_acc:.4f} is {drop:.2f} pt below the baseline's {old_acc:.4f} "
                    f"(budget {max_accuracy_drop_pt} pt)"
                )
        if max_latency_regression_pct is None:
            continue
        for batch in cell.get("latency") or {}:
            old_rel, new_rel = _relative_latency(baseline, old, batch), _relative_latency(report, cell, batch)
            if old_rel is None or new_rel is None:
                old_rel = (old.get("latency") or {}).get(batch, {}).get("p50_ms")
                new_rel = cell["latency"][batch]["p50_ms"]
            if old_rel and new_rel:
                change = 100 * (new_rel / old_rel - 1)
                allowed = latency_allowance(max_latency_regression_pct, old, cell, batch)
                if change > allowed:
                    problems.append(
                        f"{name} batch {batch}: latency {change:+.0f}% against the baseline "
                        f"(relative to the source model; budget {max_latency_regression_pct}%, "
                        f"{allowed:.0f}% with the measured noise)"
                    )
    return problems


def _task_metric(cell: dict) -> float | None:
    """The metric the accuracy budget applies to (see report.task_metric)."""
    return task_metric(cell.get("metric") or {})
