"""The conversion pipeline: source -> prune? -> export (+ quantize) -> validate -> package, written atomically.

`convert()` types and checks its arguments, then runs the stages of converters/stages.py.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from bmsdk.artifact import staged_folder
from bmsdk.data import Dataset
from bmsdk.manifest import Manifest
from bmsdk.progress import Progress

from .stages import STAGES, LoadSource, check_request, make_request, run_stages


@dataclass
class ConversionResult:
    path: Path
    manifest: Manifest

    @property
    def passed(self) -> bool | None:
        return self.manifest.validation.passed


def convert(
    source: str | Path,
    target: str = "onnx",
    output: str | Path | None = None,
    precision: str = "fp32",
    calibration: str | Path | None = None,
    eval_data: str | Path | Dataset | None = None,
    task: str | None = None,
    input_shapes: dict[str, list[int]] | None = None,
    max_length: int | None = None,
    labels: list[str] | None = None,
    mean: list[float] | None = None,
    std: list[float] | None = None,
    tokenizer: str | Path | None = None,
    weights: str | Path | None = None,
    revision: str | None = None,
    name: str | None = None,
    overwrite: bool = False,
    num_samples: int = 8,
    calibration_size: int = 256,
    progress: Progress | None = None,
    source_outputs: dict | None = None,
    prune: float | str | None = None,
    prune_method: str | None = None,
    importance: str = "magnitude",
    recover: str | Path | None = None,
    recover_steps: int | None = None,
    max_accuracy_drop: float | None = None,
    objective: str = "accuracy",
    smooth_quant: float | None = None,
    **target_options,
) -> ConversionResult:
    """See `bmsdk convert --help`. `source_outputs`: a dict shared across conversions of one source, in which the
    source's outputs on the eval data are kept so that they are computed once (the benchmark matrix uses it).
    Compression (pruning, recovery, accuracy budget, latency objective): see converters/compression.py and budget.py;
    `smooth_quant`: SmoothQuant's strength alpha for an int8 build (converters/smooth.py)."""
    arguments = dict(locals())  # exactly the parameters above: the fields of ConversionRequest
    request = make_request(arguments, arguments.pop("target_options"))
    ctx = LoadSource().run(check_request(request))  # every check of the arguments and the source, before any work
    with staged_folder(ctx.out, overwrite=request.overwrite) as folder:
        ctx.folder = folder
        ctx = run_stages(ctx, STAGES)
    return ConversionResult(ctx.out.resolve(), ctx.manifest)
