"""Run the whole zoo (every architecture x every target at fp32 and its default int8) and write what it found:

    python tests/zoo/support_table.py [--architectures bert,vit] [--tasks object-detection] [--out reports/zoo]
                                      [--write]

With neither --architectures nor --tasks it runs both zoos: the classification zoo (architectures.py) and the task
zoo (task_zoo.py: the newer tasks' trained tiny models, each cell converted with --eval, its metric recorded).

- `OUT/cells.jsonl`: every cell as it finishes (status, bmsdk's reason, where it was validated, seconds, metric);
- `OUT/support.json`, `OUT/support.md`: the record and the tables (✓ / ✗ per target and precision, reasons below);
- with `--write`: the tables into README.md (between the zoo-support / task-support markers) and the record into
  sdk/tasks/support.json, which `bmsdk tasks` reads, so the README, the CLI and the run agree; a zoo not run this
  time keeps its earlier record.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
sys.path[:0] = [str(HERE), str(HERE.parent)]  # the zoo's modules, and tests/ (tiny_lms.py)

from architectures import ARCHITECTURES, build, calibration_data  # noqa: E402
from cells import COLUMNS, METRICS, Cell, run_cell  # noqa: E402
from task_zoo import TASKS, source_and_weights  # noqa: E402

MARKERS = {
    "zoo": ("<!-- zoo-support:start -->", "<!-- zoo-support:end -->"),
    "tasks": ("<!-- task-support:start -->", "<!-- task-support:end -->"),
}


def _log(cell: Cell, out: Path | None, progress) -> None:
    label = f"{cell.task + ' ' if cell.task else ''}{cell.architecture}"
    progress(f"{label:30} {cell.target:10} {cell.precision:12} {cell.status:5} {cell.seconds:6.1f}s {cell.metric} "
             f"{cell.reason}")  # fmt: skip
    if out is not None:
        with (out / "cells.jsonl").open("a") as f:
            f.write(json.dumps(cell.as_dict()) + "\n")


def run(names: list[str], columns=COLUMNS, progress=print, out: Path | None = None) -> list[Cell]:
    cells = []
    with tempfile.TemporaryDirectory(prefix="bmsdk-zoo-") as tmp:
        work = Path(tmp)
        for name in names:
            arch = ARCHITECTURES[name]
            checkpoint = build(name, work / name)
            calibration = calibration_data(arch.kind, work / f"calibration-{arch.kind}")
            for target, precision in columns:
                cell = run_cell(name, checkpoint, target, precision, work / "out" / f"{name}-{target}-{precision}",
                                calibration)  # fmt: skip
                _log(cell, out, progress)
                cells.append(cell)
    return cells


def run_tasks(
    tasks: list[str], columns=COLUMNS, progress=print, out: Path | None = None, only: set[str] | None = None
) -> list[Cell]:
    """Every architecture of each task (or those named in `only`) on every column, converted with --eval on the
    task's labelled set (int8 cells of image and audio models calibrate on it)."""
    cells = []
    with tempfile.TemporaryDirectory(prefix="bmsdk-task-zoo-") as tmp:
        work = Path(tmp)
        for task in tasks:
            zoo = TASKS[task]
            (work / task / "eval").mkdir(parents=True)
            eval_data = zoo.eval_data(work / task / "eval")
            for arch in [a for a in zoo.architectures if not only or a in only]:
                progress(f"building the {task} {arch} (trained for a few seconds)")
                source, weights = source_and_weights(zoo.build(arch, work / task / arch))
                for target, precision in columns:
                    # TensorRT's int8 always calibrates (its Q/DQ scales); others' text int8 is dynamic
                    calibrate = precision == "int8" and (zoo.calibrate or target == "tensorrt")
                    calibration = eval_data if calibrate else None
                    folder = work / "out" / f"{task}-{arch}-{target}-{precision}"
                    cell = run_cell(arch, source, target, precision, folder, calibration, eval_data, weights, task)
                    _log(cell, out, progress)
                    cells.append(cell)
    return cells


def recorded(files: list[Path]) -> list[Cell]:
    """Cells from JSON-lines files (cells.jsonl of earlier runs), a later record of the same cell replacing an
    earlier one."""
    latest = {}
    for file in files:
        for line in file.read_text().splitlines():
            if line.strip():
                cell = Cell(**json.loads(line))
                latest[(cell.task, cell.architecture, cell.target, cell.precision)] = cell
    return list(latest.values())


def in_zoo_order(cells: list[Cell], names: list[str], tasks: list[str]) -> list[Cell]:
    keys = [("", n) for n in names] + [(t, a) for t in tasks for a in TASKS[t].architectures]
    order = {(*k, *c): i for i, (k, c) in enumerate((k, c) for k in keys for c in COLUMNS)}
    chosen = [c for c in cells if (c.task, c.architecture, c.target, c.precision) in order]
    return sorted(chosen, key=lambda c: order[c.task, c.architecture, c.target, c.precision])


def markdown(cells: list[Cell], columns=COLUMNS) -> str:
    """The table: ✓ validated and passed (✓* on a CPU stand-in of the target's runtime), ✗n a failure, its reason
    numbered below the table."""
    by_key = {(c.architecture, c.target, c.precision): c for c in cells}
    names = [n for n in ARCHITECTURES if any(c.architecture == n for c in cells)]
    head = "| architecture | task | tokenizer | " + " | ".join(f"{t} {p}" for t, p in columns) + " |"
    lines = [head, "|" + "---|" * (3 + len(columns))]
    reasons: dict[str, int] = {}
    for name in names:
        arch = ARCHITECTURES[name]
        marks = []
        for target, precision in columns:
            cell = by_key.get((name, target, precision))
            if cell is None:
                marks.append("")
            elif cell.status == "pass":
                marks.append("✓*" if cell.stand_in else "✓")
            else:
                number = reasons.setdefault(f"{target} {precision}: {cell.reason}", len(reasons) + 1)
                marks.append(f"✗{number}")
        lines.append(f"| {name} | {arch.task} | {arch.tokenizer or '-'} | " + " | ".join(marks) + " |")
    lines.append("")
    lines.append(LEGEND)
    for text, number in reasons.items():
        lines.append(f"{number}. {text}")
    return "\n".join(lines) + "\n"


LEGEND = ("✓ converted, validated on the target's runtime and within its tolerance; ✓* validated on the target's CPU "
          "stand-in (TensorRT: its prepared ONNX on onnxruntime; no GPU here).")  # fmt: skip


def _metric_value(cell: Cell) -> str:
    """'0.903' of 'entity_f1 0.903 (source 0.903)'."""
    parts = cell.metric.split()
    return parts[1] if len(parts) > 1 else ""


def task_markdown(cells: list[Cell], columns=COLUMNS) -> str:
    """The task zoo's table: one row per (task, architecture), ✓ / ✗ per column with the artifact's task metric on
    the eval set, the source's in its own column; reasons numbered below."""
    by_key = {(c.task, c.architecture, c.target, c.precision): c for c in cells}
    head = "| task | architecture | metric | source | " + " | ".join(f"{t} {p}" for t, p in columns) + " |"
    lines = [head, "|" + "---|" * (4 + len(columns))]
    reasons: dict[str, int] = {}
    for task, zoo in TASKS.items():
        for arch in zoo.architectures:
            row = [by_key.get((task, arch, t, p)) for t, p in columns]
            if not any(row):
                continue
            measured = next((c.metric.split() for c in row if c and c.metric), ["", ""])
            metric, source = measured[0], measured[-1].rstrip(")")
            marks = []
            for cell in row:
                if cell is None:
                    marks.append("")
                elif cell.status == "pass":
                    marks.append(f"{'✓*' if cell.stand_in else '✓'} {_metric_value(cell)}".strip())
                else:
                    number = reasons.setdefault(f"{cell.target} {cell.precision}: {cell.reason}", len(reasons) + 1)
                    marks.append(f"✗{number}")
            lines.append(f"| {task} | {arch} | {metric} | {source} | " + " | ".join(marks) + " |")
    lines.append("")
    names = ", ".join(name for name, _ in METRICS[:-1])
    lines.append(f"{LEGEND} The number is the artifact's task metric on the task's labelled set (the source's beside "
                 f"the architecture): {names}, accuracy, or perplexity (lower is better).")  # fmt: skip
    for text, number in reasons.items():
        lines.append(f"{number}. {text}")
    return "\n".join(lines) + "\n"


def write_readme(section: str, table: str, readme: Path = ROOT / "README.md") -> None:
    start_marker, end_marker = MARKERS[section]
    text = readme.read_text()
    start, end = text.index(start_marker) + len(start_marker), text.index(end_marker)
    readme.write_text(text[:start] + "\n" + table + text[end:])


def registry(cells: list[Cell], task_cells: list[Cell], earlier: dict | None = None) -> dict:
    """support.json: the zoo's cells and the task zoo's; a zoo with no cells this time keeps `earlier`'s."""
    import transformers

    earlier = earlier or {}
    return {
        "generated_by": "python tests/zoo/support_table.py --write",
        "transformers": transformers.__version__,
        "architectures": {n: {"task": a.task, "tokenizer": a.tokenizer} for n, a in ARCHITECTURES.items()},
        "tasks": {t: {"architectures": dict(z.architectures)} for t, z in TASKS.items()},  # name -> tokenizer kind
        "cells": [c.as_dict() for c in cells] if cells else earlier.get("cells", []),
        "task_cells": [c.as_dict() for c in task_cells] if task_cells else earlier.get("task_cells", []),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--architectures", help="comma-separated zoo architectures, or 'none'")
    parser.add_argument("--tasks", help="comma-separated tasks of the task zoo, or 'none'")
    parser.add_argument("--task-architectures", help="only these architectures of the chosen tasks, comma-separated")
    parser.add_argument("--columns", help="only these TARGET:PRECISION columns, comma-separated (default: all)")
    parser.add_argument("--out", type=Path, default=ROOT / "reports" / "zoo")
    parser.add_argument("--write", action="store_true", help="update README.md and sdk/tasks/support.json")
    parser.add_argument(
        "--cells", nargs="+", type=Path, help="render cells recorded earlier (cells.jsonl files) instead of running"
    )
    args = parser.parse_args(argv)
    both = args.architectures is None and args.tasks is None
    names = _chosen(parser, "architectures", args.architectures, list(ARCHITECTURES), both)
    tasks = _chosen(parser, "tasks", args.tasks, list(TASKS), both)
    args.out.mkdir(parents=True, exist_ok=True)
    if args.cells:
        cells = in_zoo_order(recorded(args.cells), names, tasks)
    else:
        (args.out / "cells.jsonl").unlink(missing_ok=True)
        columns = [tuple(c.split(":")) for c in args.columns.split(",")] if args.columns else COLUMNS
        unknown = sorted(set(columns) - set(COLUMNS))
        if unknown:
            parser.error(f"unknown columns {unknown}; the zoo's are {', '.join(f'{t}:{p}' for t, p in COLUMNS)}")
        cells = run(names, columns, out=args.out) + run_tasks(
            tasks,
            columns,
            out=args.out,
            only=set(args.task_architectures.split(",")) if args.task_architectures else None,
        )
    zoo_cells, task_cells = [c for c in cells if not c.task], [c for c in cells if c.task]
    tables = {"zoo": markdown(zoo_cells) if zoo_cells else "", "tasks": task_markdown(task_cells) if task_cells else ""}
    support = ROOT / "sdk" / "tasks" / "support.json"
    record = registry(zoo_cells, task_cells, json.loads(support.read_text()) if args.write else None)
    (args.out / "support.json").write_text(json.dumps(record, indent=1) + "\n")
    (args.out / "support.md").write_text("\n".join(t for t in tables.values() if t))
    if args.write:
        for section, table in tables.items():
            if table:
                write_readme(section, table)
        support.write_text(json.dumps(record, indent=1) + "\n")
    print("\n".join(t for t in tables.values() if t))
    return 0


def _chosen(parser, what: str, value: str | None, known: list[str], default_all: bool) -> list[str]:
    if value is None:
        return known if default_all else []
    if value == "none":
        return []
    chosen = value.split(",")
    unknown = sorted(set(chosen) - set(known))
    if unknown:
        parser.error(f"unknown {what} {unknown}; the zoo has {', '.join(known)}")
    return chosen


if __name__ == "__main__":
    sys.exit(main())
