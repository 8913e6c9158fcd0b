"""Run the whole zoo (every architecture x every target at fp32 and its default int8) and write what it found:

    python tests/zoo/support_table.py [--architectures bert,vit] [--out reports/zoo] [--write]

- `OUT/support.json`: every cell (status, bmsdk's reason, where it was validated, seconds);
- `OUT/support.md`: the table, one row per architecture, ✓ / ✗ per target and precision, reasons below it;
- with `--write`: the table into README.md (between the zoo-support markers) and the cells into
  sdk/tasks/support.json, which `bmsdk tasks` reads, so the README, the CLI and the run agree.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
sys.path.insert(0, str(HERE))

from architectures import ARCHITECTURES, build, calibration_data  # noqa: E402
from cells import COLUMNS, Cell, run_cell  # noqa: E402

README_START, README_END = "<!-- zoo-support:start -->", "<!-- zoo-support:end -->"


def run(names: list[str], columns=COLUMNS, progress=print) -> list[Cell]:
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
                progress(f"{name:14} {target:10} {precision:12} {cell.status:5} {cell.seconds:6.1f}s {cell.reason}")
                cells.append(cell)
    return cells


def recorded(files: list[Path], names: list[str]) -> list[Cell]:
    """Cells from JSON-lines files, a later record of the same cell replacing an earlier one, in zoo order."""
    latest = {}
    for file in files:
        for line in file.read_text().splitlines():
            if line.strip():
                cell = Cell(**json.loads(line))
                latest[(cell.architecture, cell.target, cell.precision)] = cell
    order = {(n, t, p): i for i, (n, (t, p)) in enumerate((n, c) for n in names for c in COLUMNS)}
    return [latest[k] for k in sorted(latest.keys() & order.keys(), key=order.get)]


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
    lines.append("✓ converted, validated on the target's runtime and within its tolerance; ✓* validated on the "
                 "target's CPU stand-in (TensorRT: its prepared ONNX on onnxruntime; no GPU here).")  # fmt: skip
    for text, number in reasons.items():
        lines.append(f"{number}. {text}")
    return "\n".join(lines) + "\n"


def write_readme(table: str, readme: Path = ROOT / "README.md") -> None:
    text = readme.read_text()
    start, end = text.index(README_START) + len(README_START), text.index(README_END)
    readme.write_text(text[:start] + "\n" + table + text[end:])


def registry(cells: list[Cell]) -> dict:
    import transformers

    return {
        "generated_by": "python tests/zoo/support_table.py --write",
        "transformers": transformers.__version__,
        "architectures": {n: {"task": a.task, "tokenizer": a.tokenizer} for n, a in ARCHITECTURES.items()},
        "cells": [c.as_dict() for c in cells],
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--architectures", help="comma-separated (default: the whole zoo)")
    parser.add_argument("--out", type=Path, default=ROOT / "reports" / "zoo")
    parser.add_argument("--write", action="store_true", help="update README.md and sdk/tasks/support.json")
    parser.add_argument(
        "--cells", nargs="+", type=Path, help="render cells recorded earlier (JSON lines of Cell) instead of running"
    )
    args = parser.parse_args(argv)
    names = args.architectures.split(",") if args.architectures else list(ARCHITECTURES)
    unknown = sorted(set(names) - set(ARCHITECTURES))
    if unknown:
        parser.error(f"unknown architectures {unknown}; the zoo has {', '.join(ARCHITECTURES)}")
    cells = recorded(args.cells, names) if args.cells else run(names)
    args.out.mkdir(parents=True, exist_ok=True)
    table = markdown(cells)
    (args.out / "support.json").write_text(json.dumps(registry(cells), indent=1) + "\n")
    (args.out / "support.md").write_text(table)
    if args.write:
        write_readme(table)
        (ROOT / "sdk" / "tasks" / "support.json").write_text(json.dumps(registry(cells), indent=1) + "\n")
    print(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
