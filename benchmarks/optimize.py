"""`bmsdk optimize` and `convert --precision auto`: the fastest (or smallest) artifact that keeps accuracy, searched
across targets and precisions and measured on the runtime that will run it.

Every candidate is one cell of the benchmark harness (converted, validated against the source, scored on the eval
data, timed at batch 1), so the search and `bmsdk bench` agree on every number. Three rounds, each stopped by the
time budget:

1. every precision of every target asked for;
2. int8 candidates of text classifiers over the accuracy budget, rebuilt with SmoothQuant's scale migration
   (converters/smooth.py), which keeps every matmul int8;
3. quantized candidates still over the budget, rebuilt with sensitive layers kept in float (targets that can);
4. with `prune` ratios: the best candidates so far, pruned (and fine-tuned on `recover` data when given).

A candidate can ship when it validated, lost at most `max_accuracy_drop` points of the task metric, is not slower
than its float twin, and (objective latency) was timed on its real runtime here; the best of those is copied to
`output`. The report lists every candidate with why it was or was not chosen, and the Pareto front.
"""

from __future__ import annotations

import json
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

from bmsdk.artifact import check_output, staged_folder
from bmsdk.benchmarks.harness import BenchConfig, assemble, cell_key, prepare, run_cell, source_cell
from bmsdk.benchmarks.report import pareto_front, rows, write_reports
from bmsdk.converters import get_target
from bmsdk.converters.smooth import INT8_PRECISIONS
from bmsdk.errors import DataError, UnsupportedError
from bmsdk.progress import SILENT, Progress
from bmsdk.tasks import get_task

OBJECTIVES = ("latency", "size")
FLOAT = ("fp32",)
PRUNED_BEST = 2  # round 3 prunes this many of the best candidates of the first rounds
# SmoothQuant's strengths in round 2, each a candidate (demo MiniLM, every matmul int8, 2000 tweets, source 72.35%:
# 0.9 kept it on a VNNI CPU, ONNX static 72.35%; on an AVX2 one, with 7-bit weights, 0.9 71.70% and 1.0 72.15%)
SMOOTH_ALPHAS = (0.9, 1.0)
SMOOTHED_VARIANT = "smoothed-"  # + the alpha: "smoothed-0.9"
# the targets whose smoothed int8 was measured, and how: ONNX static (its dynamic int8 takes one range per batch,
# which padded batches widen: 0.6 pt lost where static lost none)
SMOOTHED = {"onnx": {"quant_scheme": "static"}, "tflite": {}}
TIMING = dict(warmup=10, iterations=100, seconds=2.0, repeats=3)  # per candidate at batch 1: about 6 s


@dataclass
class OptimizeResult:
    chosen: dict | None  # the shipped candidate's cell, None when no candidate fits
    path: Path | None  # the shipped artifact
    report: dict  # the benchmark report of every candidate, with "optimize": the verdicts
    paths: dict[str, Path] = field(default_factory=dict)  # report.json, report.md, optimize.md, plot.png ...


def optimize(
    source: str | Path,
    targets: list[str],
    eval_data,
    output: str | Path | None = None,
    out_dir: str | Path = "reports/optimize",
    max_accuracy_drop: float = 0.5,
    objective: str = "latency",
    precisions: list[str] | None = None,
    calibration=None,
    prune: list[float] | None = None,
    recover=None,
    time_budget_s: float | None = None,
    threads: int = 1,
    overwrite: bool = False,
    progress: Progress = SILENT,
    **convert_options,
) -> OptimizeResult:
    """Search targets x precisions (x float fallback, x pruning) and ship the best artifact within the budget to
    `output` (default NAME-optimized.bmsdk); the report of every candidate goes to `out_dir`."""
    _check(targets, eval_data, max_accuracy_drop, objective, precisions, prune, time_budget_s)
    out_dir = Path(out_dir)
    name = convert_options.pop("name", None)
    output = Path(output or f"{name or Path(str(source).split(':')[-1]).name}-optimized.bmsdk").absolute()
    check_output(output, overwrite)  # an output that cannot be written fails now, not after the search
    cfg = BenchConfig(
        source=str(source),
        targets=list(targets),
        precisions=[],
        eval_data=eval_data,
        calibration=str(calibration) if calibration else None,
        threads=threads,
        name=name,
        convert_options={k: v for k, v in convert_options.items() if v is not None},
        **TIMING,
    )
    ctx = prepare(cfg, out_dir)
    deadline = time.monotonic() + time_budget_s if time_budget_s else None
    cells: list[dict] = []
    source_row = None

    def run_round(specs: list[tuple]) -> None:
        nonlocal source_row
        for spec in specs:
            if cell_key(spec) in {cell_key(c) for c in cells}:
                continue
            if deadline is not None and time.monotonic() > deadline:
                cells.append({**_spec_cell(spec), "status": "skipped", "reason": "not tried: time budget spent"})
                continue
            progress.info(f"[candidate {len(cells) + 1}] {' '.join(cell_key(spec))}".rstrip())
            cells.append(run_cell(cfg, spec, ctx, progress))
            if source_row is None and ctx.measured is not None:
                source_row = source_cell(cfg, *ctx.measured, ctx.probe, progress)

    run_round(first_round(targets, precisions))
    _refuse_generation(cells)
    run_round(smoothing_round(cells, max_accuracy_drop, calibration is not None))
    run_round(fallback_round(cells, max_accuracy_drop))
    if prune:
        ranked = ranking(cells, max_accuracy_drop, objective)
        best = [cells[i] for i in ranked[:PRUNED_BEST]]
        run_round(pruning_round(best, prune, recover, max_accuracy_drop, calibration is not None))
    report = assemble(cfg, ctx, cells, source_row)
    verdicts = judge(report, max_accuracy_drop, objective)
    chosen = next((c for c, v in zip(report["cells"], verdicts) if v["chosen"]), None)
    shipped = ship(chosen, output, overwrite, progress) if chosen else None
    report["optimize"] = {
        "max_accuracy_drop_pt": max_accuracy_drop,
        "objective": objective,
        "time_budget_s": time_budget_s,
        "verdicts": verdicts,
        "chosen": _label(chosen) if chosen else None,
        "shipped": str(shipped) if shipped else None,
    }
    paths = write_reports(report, out_dir)
    paths["optimize"] = out_dir / "optimize.md"
    paths["optimize"].write_text(markdown(report) + "\n")
    paths["json"].write_text(json.dumps(report, indent=2) + "\n")
    return OptimizeResult(chosen, shipped, report, paths)


def _check(targets, eval_data, max_drop, objective, precisions, prune, time_budget_s) -> None:
    if not targets:
        raise UnsupportedError("optimize needs the targets to search", "pass --targets, e.g. --targets onnx,tflite")
    for target in targets:
        get_target(target)  # an unknown target is refused now
    if eval_data is None:
        raise DataError(
            "optimize ranks candidates by the task metric on labelled data", "pass --eval DATA (the held-out set)"
        )
    if objective not in OBJECTIVES:
        raise UnsupportedError(f"unknown objective '{objective}'", f"use one of: {', '.join(OBJECTIVES)}")
    if max_drop is None or max_drop < 0:
        raise UnsupportedError(f"--max-accuracy-drop {max_drop} is not a drop in points", "pass e.g. 0.5")
    if precisions and not any(p in get_target(t).precisions for t in targets for p in precisions):
        raise UnsupportedError(
            f"no target of {', '.join(targets)} has any of the precisions {', '.join(precisions)}",
            "leave --precisions out to try every precision of each target",
        )
    for ratio in prune or []:
        if not 0 < ratio < 1:
            raise UnsupportedError(f"--prune {ratio} is not a ratio in (0, 1)", "pass e.g. --prune 0.3,0.5")
    if time_budget_s is not None and time_budget_s <= 0:
        raise UnsupportedError(f"--time-budget {time_budget_s} is not positive", "pass minutes, e.g. 20")


def first_round(targets: list[str], precisions: list[str] | None) -> list[tuple]:
    """Every precision of every target (or those of `precisions` each target has)."""
    return [(t, p) for t in targets for p in get_target(t).precisions if not precisions or p in precisions]


def smoothing_round(cells: list[dict], max_drop: float, calibrated: bool) -> list[tuple]:
    """int8 candidates of text classifiers over the budget, rebuilt with SmoothQuant's scales (ONNX: static, when
    there is calibration data)."""
    specs = []
    for cell in cells:
        target = cell["target"]
        if cell.get("variant") or cell["precision"] not in INT8_PRECISIONS or target not in SMOOTHED:
            continue
        if _over_budget(cell, max_drop) and get_task(cell["task"]).hf_inputs == "text":
            for alpha in SMOOTH_ALPHAS:
                variant = f"{SMOOTHED_VARIANT}{alpha:g}"
                specs.append((target, cell["precision"], variant, _smoothed_options(target, alpha, calibrated)))
    return specs


def _smoothed_options(target: str, alpha: float, calibrated: bool) -> dict:
    return {"smooth_quant": alpha, **(SMOOTHED[target] if calibrated else {})}


def _smoothed_alpha(cell: dict) -> float | None:
    """The SmoothQuant strength of a smoothing-round candidate, None for any other."""
    variant = cell.get("variant") or ""
    return float(variant[len(SMOOTHED_VARIANT) :]) if variant.startswith(SMOOTHED_VARIANT) else None


def fallback_round(cells: list[dict], max_drop: float) -> list[tuple]:
    """Quantized classifier candidates over the budget (and whose smoothed rebuild is too), rebuilt under it on
    targets that keep layers in float."""
    fits = {cell_key(c)[:2] for c in cells if _smoothed_alpha(c) is not None and not _over_budget(c, max_drop)}
    specs = []
    for cell in cells:
        if cell["precision"] not in FLOAT and not cell.get("variant") and _over_budget(cell, max_drop):
            if get_target(cell["target"]).capabilities.float_fallback and cell_key(cell)[:2] not in fits:
                specs.append((cell["target"], cell["precision"], "fallback", {"max_accuracy_drop": max_drop}))
    return specs


def _over_budget(cell: dict, max_drop: float) -> bool:
    """A scored classifier candidate that lost more than the budget."""
    scored = cell.get("status") == "validated" or "outside tolerance" in str(cell.get("reason"))
    return scored and _over(cell.get("accuracy_change_pt"), max_drop) and _classifier(cell)


def _over(drop: float | None, max_drop: float) -> bool:
    """A metric change (points, negative: lost) beyond the budget; a float-rounding hair over it is not."""
    return drop is not None and -drop > max_drop + 1e-9


def pruning_round(
    best: list[dict], ratios: list[float], recover, max_drop: float, calibrated: bool = False
) -> list[tuple]:
    """Each of the `best` candidates pruned at each ratio (fine-tuned on `recover` when given)."""
    specs = []
    for cell in best:
        for ratio in ratios:
            options = {"prune": ratio, **({"recover": recover} if recover else {})}
            if cell.get("variant") == "fallback":
                options["max_accuracy_drop"] = max_drop
            if (alpha := _smoothed_alpha(cell)) is not None:
                options.update(_smoothed_options(cell["target"], alpha, calibrated))
            label = f"pruned-{ratio:.0%}{'+recovery' if recover else ''}"
            specs.append((cell["target"], cell["precision"], label, options))
    return specs


def _classifier(cell: dict) -> bool:
    return bool(cell.get("task")) and get_task(cell["task"]).classifier


def _refuse_generation(cells: list[dict]) -> None:
    if any(c.get("task") == "text-generation" for c in cells):
        raise UnsupportedError(
            "optimize ranks by a task metric's drop; text generation is judged by perplexity and decode speed",
            "compare its precisions with `bmsdk bench SOURCE --targets ... --precisions ...`",
        )


def _spec_cell(spec: tuple) -> dict:
    target, precision, variant = cell_key(spec)
    return {"target": target, "precision": precision, **({"variant": variant} if variant else {})}


def _label(cell: dict) -> str:
    return " ".join(cell_key(cell)).strip()


# --- judging --------------------------------------------------------------------------------------------------


def _p50(cell: dict) -> float | None:
    return (cell.get("latency") or {}).get("1", {}).get("p50_ms")


def rejection(cell: dict, max_drop: float, objective: str) -> str | None:
    """Why a candidate cannot ship, or None."""
    if cell.get("status") != "validated":
        return f"{cell.get('status', 'failed')}: {cell.get('reason') or 'not validated'}"
    drop = cell.get("accuracy_change_pt")
    if _over(drop, max_drop):
        return f"metric {drop:+.2f} pt, over the {max_drop:g} pt budget"
    speed = cell.get("speed_vs_float") or {}
    if speed.get("accelerated") is False:
        return f"slower than its float twin ({speed['artifact_ms']:.3f} ms against {speed['float_ms']:.3f} ms)"
    if objective == "latency":
        if _p50(cell) is None:
            return f"not timed on this machine ({cell.get('reason') or 'no latency'})"
        if cell.get("device_real") is False:
            return f"timed on {cell.get('backend')}, not on its device: its latency cannot be compared"
    return None


def ranking(cells: list[dict], max_drop: float, objective: str) -> list[int]:
    """Indices of the candidates that can ship, best first (latency; or size, then latency)."""
    fit = [i for i, c in enumerate(cells) if rejection(c, max_drop, objective) is None]
    if objective == "size":
        return sorted(fit, key=lambda i: (cells[i]["size_mb"], _p50(cells[i]) or float("inf")))
    return sorted(fit, key=lambda i: _p50(cells[i]))


def judge(report: dict, max_drop: float, objective: str) -> list[dict]:
    """One verdict per cell: chosen, on the Pareto front (latency against the task metric), or why not."""
    cells = report["cells"]
    ranked = ranking(cells, max_drop, objective)
    flat = rows(report)[1 if report.get("source_model") else 0 :]
    plotted = [i for i, r in enumerate(flat) if r["p50"] is not None and r["accuracy"] is not None]
    front = {plotted[j] for j in pareto_front([(flat[i]["p50"], flat[i]["accuracy"]) for i in plotted])}
    verdicts = []
    for i, cell in enumerate(cells):
        why = rejection(cell, max_drop, objective)
        verdicts.append(
            {
                "candidate": _label(cell),
                "chosen": bool(ranked) and i == ranked[0],
                "fits": why is None,
                "pareto": i in front,
                "reason": why or "",
            }
        )
    return verdicts


# --- shipping and the report ----------------------------------------------------------------------------------


def ship(cell: dict, output: Path, overwrite: bool, progress: Progress) -> Path:
    """Copy the chosen artifact to `output` (staged in a temporary sibling, then renamed: nothing half-written)."""
    with progress.step(f"shipping {_label(cell)} to {output}"), staged_folder(output, overwrite) as tmp:
        shutil.copytree(cell["artifact"], tmp, dirs_exist_ok=True)
    return output


def markdown(report: dict) -> str:
    opt = report["optimize"]
    metric = next((r["metric_name"] for r in rows(report) if r["metric_name"]), None) or "metric"
    lines = [
        f"### {report['name']}: optimize ({opt['objective']}, at most {opt['max_accuracy_drop_pt']:g} pt of "
        f"{metric} lost)",
        "",
        "| candidate | status | size (MB) | p50 (ms) | " + metric + " | Δ (pt) | verdict |",
        "|---|---|---:|---:|---:|---:|---|",
    ]
    flat = rows(report)[1 if report.get("source_model") else 0 :]
    for r, v in zip(flat, opt["verdicts"]):
        verdict = "**shipped**" if v["chosen"] else ("fits" if v["fits"] else v["reason"])
        if v["pareto"]:
            verdict += " (Pareto front)"
        lines.append(
            f"| {v['candidate']} | {r['status']} | {_fmt(r['size_mb'], '.2f')} | {_fmt(r['p50'], '.3f')} | "
            f"{_fmt(r['accuracy'], '.4f')} | {_fmt(r['delta_pt'], '+.2f')} | {verdict} |"
        )
    lines.append("")
    lines.append(
        f"shipped: {opt['chosen']} -> {opt['shipped']}"
        if opt["chosen"]
        else "nothing shipped: no candidate fits the budget (the verdicts say why)"
    )
    return "\n".join(lines)


def _fmt(value, spec: str) -> str:
    return "–" if value is None else format(value, spec)
