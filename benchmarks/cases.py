"""Benchmark cases: data files in benchmarks/cases/ naming a source, its data, the targets and precisions."""

from __future__ import annotations

import json
from pathlib import Path

from bmsdk.benchmarks.harness import BenchConfig
from bmsdk.data import load_dataset
from bmsdk.errors import DataError

from . import zoo

CASES_DIR = Path(__file__).parent / "cases"
KEYS = {
    "name",
    "source",
    "eval",
    "eval_limit",
    "calibration",
    "targets",
    "precisions",
    "batch",
    "threads",
    "warmup",
    "iterations",
    "seconds",
    "repeats",
    "max_noise_pct",
    "max_repeats",
    "description",
}


def load_case(path: str | Path, **overrides) -> BenchConfig:
    """A case file as a BenchConfig; `zoo:` names are built on first use; keyword overrides win over the file."""
    path = Path(path)
    try:
        case = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as e:
        raise DataError(
            f"cannot read benchmark case {path} ({e})", "pass a JSON case file like benchmarks/cases/mnist-cnn.json"
        ) from None
    unknown = set(case) - KEYS
    if unknown or "source" not in case:
        raise DataError(
            f"benchmark case {path} has unknown keys {sorted(unknown)} or no 'source'", f"keys are {sorted(KEYS)}"
        )
    eval_data = zoo.resolve(case["eval"]) if case.get("eval") else None
    if eval_data and case.get("eval_limit"):
        eval_data = load_dataset(eval_data).head(int(case["eval_limit"]))  # a classifier's labels: checked by convert
    cfg = BenchConfig(
        source=zoo.resolve(case["source"]),
        targets=case.get("targets", ["onnx"]),
        precisions=case.get("precisions", ["fp32"]),
        eval_data=eval_data,
        calibration=zoo.resolve(case["calibration"]) if case.get("calibration") else None,
        batches=case.get("batch", [1]),
        threads=case.get("threads", 1),
        warmup=case.get("warmup", 10),
        iterations=case.get("iterations", 100),
        seconds=case.get("seconds", 10.0),
        repeats=case.get("repeats", 3),
        max_noise_pct=case.get("max_noise_pct"),
        max_repeats=case.get("max_repeats", 10),
        name=case.get("name", path.stem),
    )
    for key, value in overrides.items():
        if value is not None:
            setattr(cfg, key, value)
    return cfg
