"""One cell of the zoo's support table: an architecture converted to one target at one precision, through the
public API, with what bmsdk's own validation said about it.

A cell is ✓ when the conversion wrote an artifact whose validation ran on the target's runtime (or its stand-in)
and passed; otherwise ✗ with the reason bmsdk gave (a typed error's message, or the validation's reason).
Nothing here decides a pass itself: the table reports bmsdk's verdict.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from pathlib import Path

import bmsdk

# (target, precision) of every column: fp32 and the target's default int8
COLUMNS = [
    ("onnx", "fp32"),
    ("onnx", "int8"),
    ("tflite", "fp32"),
    ("tflite", "int8-dynamic"),
    ("coreml", "fp16"),
    ("coreml", "int8"),
    ("executorch", "fp32"),
    ("executorch", "int8"),
    ("tensorrt", "fp32"),
    ("tensorrt", "int8"),
]


@dataclass
class Cell:
    architecture: str
    target: str
    precision: str
    status: str  # "pass" or "fail" (bmsdk refused, or its validation failed or could not run)
    reason: str = ""
    validated_on: str = ""
    stand_in: bool = False  # validated on the target's CPU stand-in (TensorRT without a GPU)
    seconds: float = 0.0
    task: str = ""  # the task zoo's cells (task_zoo.py); "" for the classification zoo
    metric: str = ""  # the task metric on the cell's eval data, e.g. "entity_f1 0.903 (source 0.903)"

    def as_dict(self) -> dict:
        return asdict(self)


# (artifact's field, source's field) of each task metric, the first the eval report has
METRICS = [
    ("entity_f1", "source_entity_f1"),
    ("answer_f1", "source_answer_f1"),
    ("mean_iou", "source_mean_iou"),
    ("map_50_95", "source_map_50_95"),
    ("perplexity", "source_perplexity"),
]


def metric_of(report) -> str:
    """The task metric of an EvalReport and the source's, as the support table shows it."""
    for name, source in METRICS:
        if getattr(report, name, None) is not None:
            return f"{name} {getattr(report, name):.3f} (source {getattr(report, source):.3f})"
    if report.artifact is not None and report.artifact.accuracy is not None:
        return f"accuracy {report.artifact.accuracy:.3f} (source {report.source.accuracy:.3f})"
    return ""


def run_cell(
    architecture: str,
    checkpoint: Path | str,
    target: str,
    precision: str,
    out: Path,
    calibration: Path | None = None,
    eval_data: Path | None = None,
    weights: Path | None = None,
    task: str = "",
) -> Cell:
    cell = Cell(architecture, target, precision, "fail", task=task)
    start = time.perf_counter()
    try:
        result = bmsdk.convert(
            checkpoint,
            target=target,
            precision=precision,
            output=out,
            overwrite=True,
            calibration=calibration,
            eval_data=eval_data,
            weights=weights,
        )
    except bmsdk.BmsdkError as e:
        cell.reason = str(e).splitlines()[0]
    else:
        validation = result.manifest.validation
        cell.validated_on, cell.stand_in = validation.backend or "", bool(validation.stand_in)
        cell.metric = metric_of(validation.eval) if validation.eval is not None else ""
        if validation.validated and validation.passed:
            cell.status = "pass"
        else:
            samples = validation.samples
            cell.reason = validation.reason or (samples.reason if samples else None) or "not validated"
    cell.seconds = round(time.perf_counter() - start, 1)
    return cell
