"""The conversion pipeline as typed stages over one ConversionContext (DESIGN.md §4).

`ConversionRequest` is what `convert()` was asked, typed; `check_request` refuses bad arguments before any work and
starts the `ConversionContext` every stage reads and fills. A stage is a small object with one `run(ctx) -> ctx`:

    LoadSource -> CopySourceFiles -> Describe -> PrepareData -> Prune -> Smooth -> RunReference -> Deliver
                                                        Deliver: Build -> Package -> Validate -> WriteManifest

`Deliver` runs the build stages once, or (accuracy budget, latency objective) through `budget.deliver`, which
re-runs them on copies of the context with other float layers or precision, into the output or sibling folders.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime
import platform
import shutil
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import numpy as np

from bmsdk.artifact import check_output, file_checksums, save_samples
from bmsdk.checks import check_convert_args, check_overrides
from bmsdk.data import Dataset, load_dataset
from bmsdk.errors import BackendUnavailableError, BmsdkError, ConversionError, DataError
from bmsdk.manifest import Manifest
from bmsdk.progress import SILENT, Progress
from bmsdk.runtimes.model import Model
from bmsdk.sections import Pruning, Smoothing
from bmsdk.tasks import get_task
from bmsdk.tasks.metrics import label_indices
from bmsdk.version import __version__

from .budget import deliver
from .compression import CompressionRequest, eval_key, model_over, prune_stage
from .feeds import calibration_feeds, class_count, recover_batches, sample_feeds
from .registry import get_target
from .smooth import INT8_PRECISIONS, check_alpha, smooth_source
from .smooth import check_source as check_smoothable
from .sources.loader import Source, load_source
from .speed import FloatTwin, speed_check
from .target import Target, TargetOptions
from .validate import validate_artifact

RANKING_EXAMPLES = 64  # eval examples that rank layers for the budget search when there is no calibration data


@dataclass
class ConversionRequest:
    """Every argument of `convert()`; `options` is the target's own options dataclass."""

    source: str | Path
    target: str = "onnx"
    output: str | Path | None = None
    precision: str = "fp32"
    calibration: str | Path | None = None
    eval_data: str | Path | Dataset | None = None
    task: str | None = None
    input_shapes: dict[str, list[int]] | None = None
    max_length: int | None = None
    labels: list[str] | None = None
    mean: list[float] | None = None
    std: list[float] | None = None
    tokenizer: str | Path | None = None
    weights: str | Path | None = None
    revision: str | None = None
    name: str | None = None
    overwrite: bool = False
    num_samples: int = 8
    calibration_size: int = 256
    progress: Progress | None = None
    source_outputs: dict | None = None  # shared across conversions of one source: its outputs on the eval data
    prune: float | str | None = None
    prune_method: str | None = None
    importance: str = "magnitude"
    recover: str | Path | None = None
    recover_steps: int | None = None
    max_accuracy_drop: float | None = None
    objective: str = "accuracy"
    smooth_quant: float | None = None
    options: TargetOptions = field(default_factory=TargetOptions)

    def __post_init__(self):
        self.progress = self.progress or SILENT


def make_request(arguments: dict, target_options: dict) -> ConversionRequest:
    """The typed request; an unknown target or precision, or an option the target does not take, is refused."""
    spec = get_target(arguments["target"])
    spec.check_precision(arguments["precision"])
    return ConversionRequest(**arguments, options=spec.parse_options(target_options))


@dataclass
class ConversionContext:
    """What the stages know so far. A stage reads the fields before it and fills its own."""

    request: ConversionRequest
    target: Target
    compression: CompressionRequest
    calibration_data: Dataset | None = None
    eval_data: Dataset | None = None
    precision: str = "fp32"  # the precision being built (the latency objective also builds fp32)
    float_layers: list[str] = field(default_factory=list)  # source layers the build keeps in float
    source: Source | None = None
    name: str | None = None
    out: Path | None = None  # where the artifact lands
    folder: Path | None = None  # where this build writes (the staged output, or a sibling of it)
    manifest: Manifest | None = None  # the fields every build shares, then the built artifact's
    reference: Model | None = None  # a Model over the source: the reference every artifact is compared with
    calibration_feeds: list[dict[str, np.ndarray]] | None = None
    sample_feeds: dict[str, np.ndarray] | None = None
    sample_raw: np.ndarray | None = None
    sample_reference: dict[str, np.ndarray] | None = None
    pruning: Pruning | None = None
    smoothed: Source | None = None  # the source with SmoothQuant's scales, which int8 builds export
    smoothing: Smoothing | None = None
    validation_cache: dict | None = None  # the reference's outputs on the eval data, computed once
    float_twin: FloatTwin | None = None  # the float model of a quantized build, until validation has timed it

    @property
    def progress(self) -> Progress:
        return self.request.progress


class Stage(Protocol):
    def run(self, ctx: ConversionContext) -> ConversionContext: ...


def run_stages(ctx: ConversionContext, stages: Iterable[Stage]) -> ConversionContext:
    for stage in stages:
        ctx = stage.run(ctx)
    return ctx


def check_request(request: ConversionRequest) -> ConversionContext:
    """Every check of the arguments alone, before any work (data files are read here); the context they start."""
    calibration = load_dataset(request.calibration) if request.calibration else None
    eval_data = request.eval_data
    eval_set = eval_data if isinstance(eval_data, Dataset) else load_dataset(eval_data) if eval_data else None
    compression = CompressionRequest(
        request.prune,
        request.prune_method,
        request.importance,
        load_dataset(request.recover) if request.recover else None,
        request.recover_steps,
        request.max_accuracy_drop,
        request.objective,
    )
    compression.check(request.target, request.precision, eval_set is not None, calibration is not None)
    check_convert_args(request.labels, request.mean, request.std, request.max_length)
    request.smooth_quant = check_alpha(request.smooth_quant, request.precision)
    if request.output:
        check_output(Path(request.output), request.overwrite)  # before the source loads: minutes may pass
    spec = get_target(request.target)
    return ConversionContext(
        request,
        spec,
        compression,
        calibration,
        eval_set,
        precision=request.precision,
        validation_cache=request.source_outputs,
    )


class LoadSource:
    """The source model, checked against the request before any export; the artifact's name and path."""

    def run(self, ctx: ConversionContext) -> ConversionContext:
        request = ctx.request
        with ctx.progress.step(f"loading source {request.source}"):
            ctx.source = _load(request)
        _check_source(ctx)
        _check_eval_labels(ctx)
        ctx.name = request.name or ctx.source.name
        ctx.out = Path(request.output or f"{ctx.name}-{request.target}-{request.precision}.bmsdk")
        return ctx


def _load(request: ConversionRequest) -> Source:
    try:
        return load_source(
            request.source,
            task=request.task,
            input_shapes=request.input_shapes,
            max_length=request.max_length,
            labels=request.labels,
            mean=request.mean,
            std=request.std,
            tokenizer=request.tokenizer,
            weights=request.weights,
            revision=request.revision,
        )
    except ModuleNotFoundError as e:
        raise BackendUnavailableError(
            f"converting needs the '{e.name}' package, which is not installed", "pip install 'bmsdk[convert]'"
        ) from None


def _check_source(ctx: ConversionContext) -> None:
    src, request = ctx.source, ctx.request
    ctx.target.check_task(src.task)
    class_dim = class_count(src.outputs) if get_task(src.task).classifier else None
    check_overrides(request.labels, request.mean, request.std, class_dim, src.preprocessing.get("channels"))
    ctx.compression.check_source(src)
    if request.smooth_quant is not None:
        check_smoothable(src)
    ctx.target.check_request(src, request.precision, ctx.calibration_data is not None, request.options)


def _check_eval_labels(ctx: ConversionContext) -> None:
    """A classifier's eval data needs labels, all of them known to the model: refused now, not after the export."""
    if ctx.eval_data is None or not get_task(ctx.source.task).classifier:
        return
    if ctx.eval_data.labels is None:
        raise DataError(
            f"evaluation data {ctx.request.eval_data} has no labels",
            "add a 'label' column (JSONL/CSV) or a 'y' array (.npz)",
        )
    num_classes = class_count(ctx.source.outputs)
    if num_classes:
        label_indices(ctx.eval_data.labels, ctx.source.postprocessing.get("labels"), num_classes)


class CopySourceFiles:
    """The source's extra files (tokenizer, labels) into the folder being built."""

    def run(self, ctx: ConversionContext) -> ConversionContext:
        for rel, path in ctx.source.files.items():
            (ctx.folder / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, ctx.folder / rel)
        return ctx


class Describe:
    """The manifest fields every build shares, and the reference Model over the source."""

    def run(self, ctx: ConversionContext) -> ConversionContext:
        src, spec = ctx.source, ctx.target
        ctx.manifest = Manifest(
            name=ctx.name,
            task=src.task,
            target=ctx.request.target,
            precision=ctx.request.precision,
            model_file=spec.model_file,
            inputs=src.inputs,
            outputs=src.outputs,
            preprocessing=src.preprocessing,
            postprocessing=src.postprocessing,
            source=src.info,
            files={spec.model_file: ""},
        )
        ctx.reference = Model(ctx.folder, ctx.manifest, src)
        return ctx


class PrepareData:
    """Calibration feeds (from --calibration) and the sample feeds of samples.npz, through the model's preprocessing."""

    def run(self, ctx: ConversionContext) -> ConversionContext:
        request, calibration = ctx.request, ctx.calibration_data
        if calibration:
            ctx.calibration_feeds = calibration_feeds(ctx.reference, calibration, request.calibration_size)
        samples_from = calibration or ctx.eval_data
        ctx.sample_feeds, ctx.sample_raw = sample_feeds(ctx.reference, samples_from, request.num_samples)
        return ctx


class Prune:
    """Prune (and recover) when asked: the pruned copy is the source every later stage sees (the request's source
    model is left as it was); the manifest's `source` says how it was pruned."""

    def run(self, ctx: ConversionContext) -> ConversionContext:
        compression = ctx.compression
        if compression.prune is None:
            return ctx
        batches = recover_batches(ctx.reference, compression.recover) if compression.recover is not None else None
        pruned, ctx.pruning, pruned_outputs = prune_stage(
            compression,
            ctx.source,
            ctx.reference,
            ctx.calibration_feeds,
            batches,
            ctx.eval_data,
            ctx.request.source_outputs,
            ctx.progress,
        )
        ctx.source = pruned
        ctx.manifest = dataclasses.replace(ctx.manifest, source=pruned.info)
        ctx.reference = model_over(ctx.reference, pruned)
        ctx.reference.manifest = ctx.manifest
        ctx.validation_cache = {eval_key(ctx.eval_data): pruned_outputs} if pruned_outputs is not None else {}
        return ctx


class Smooth:
    """SmoothQuant's scale migration when asked (`smooth_quant`): int8 builds export the smoothed copy, while the
    samples' reference stays the source's own outputs (the two compute the same function in float)."""

    def run(self, ctx: ConversionContext) -> ConversionContext:
        alpha = ctx.request.smooth_quant
        if alpha is None:
            return ctx
        feeds = ctx.calibration_feeds or [ctx.sample_feeds]
        with ctx.progress.step(f"smoothing activation outliers into the weights (alpha {alpha})"):
            ctx.smoothed, ctx.smoothing = smooth_source(ctx.source, feeds, alpha)
        return ctx


class RunReference:
    """The source's outputs on the samples: what every artifact's outputs are compared with."""

    def run(self, ctx: ConversionContext) -> ConversionContext:
        with ctx.progress.step("running the source on the samples"):
            ctx.sample_reference = ctx.source.run(ctx.sample_feeds)
        return ctx


class Build:
    """The target's export (+ quantize) into `ctx.folder`, the samples next to it, and what the build reports."""

    def run(self, ctx: ConversionContext) -> ConversionContext:
        ctx.folder.mkdir(parents=True, exist_ok=True)
        manifest = dataclasses.replace(ctx.manifest, precision=ctx.precision)
        spec, float_layers = ctx.target, ctx.float_layers or None
        smoothing = ctx.smoothing if ctx.precision in INT8_PRECISIONS else None
        source = ctx.smoothed if smoothing else ctx.source
        if ctx.precision.startswith("int") and spec.capabilities.float_fallback and source.float_layers:
            # the source's own float layers (audio: the conv feature encoder) stay float in every build, an
            # accuracy-budget search choosing among the rest
            float_layers = [
                *(float_layers or []),
                *(n for n in source.float_layers if n not in (float_layers or [])),
            ]
        with ctx.progress.step(f"building {ctx.request.target} {ctx.precision}"), typed_build_errors(spec):
            built = spec.build(
                source, ctx.folder, ctx.precision, ctx.calibration_feeds, ctx.request.options, float_layers
            )
        ctx.float_twin = built.float_twin
        save_samples(ctx.folder, ctx.sample_feeds, ctx.sample_reference, ctx.sample_raw)
        manifest.model_file = built.model_file
        manifest.compression = dataclasses.replace(built.compression, pruning=ctx.pruning, smoothing=smoothing)
        manifest.target_config = built.target_config
        manifest.toolchain = {
            "bmsdk": __version__,
            "python": platform.python_version(),
            "numpy": np.__version__,
            **built.toolchain,
        }
        ctx.manifest = manifest
        return ctx


class Package:
    """Checksums of the files as built (before validation runs the artifact), the creation time and version."""

    def run(self, ctx: ConversionContext) -> ConversionContext:
        ctx.manifest.files = file_checksums(ctx.folder)
        ctx.manifest.created = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
        ctx.manifest.bmsdk_version = __version__
        return ctx


class Validate:
    """The artifact on its own runtime against the reference: the samples, and the task metric on --eval data."""

    def run(self, ctx: ConversionContext) -> ConversionContext:
        ctx.manifest.validation = validate_artifact(
            ctx.folder,
            ctx.manifest,
            ctx.sample_feeds,
            ctx.sample_reference,
            ctx.eval_data,
            ctx.reference,
            ctx.progress,
            ctx.validation_cache,
        )
        twin, ctx.float_twin = ctx.float_twin, None
        if twin is not None:
            try:
                with ctx.progress.step(f"timing {ctx.precision} against its fp32 twin (batch 1, one thread)"):
                    ctx.manifest.validation.speed = speed_check(ctx.folder, ctx.manifest, twin, ctx.sample_feeds)
            finally:
                twin.cleanup()
        return ctx


class WriteManifest:
    def run(self, ctx: ConversionContext) -> ConversionContext:
        ctx.manifest.write(ctx.folder)
        return ctx


BUILD_STAGES: tuple[Stage, ...] = (Build(), Package(), Validate(), WriteManifest())


@dataclass
class Rebuild:
    """`attempt(folder, precision, float_layers) -> Manifest` for budget.deliver: the build stages on a copy of the
    context, into the staged output or (with the source's files) a sibling of it."""

    ctx: ConversionContext
    stages: tuple[Stage, ...] = BUILD_STAGES

    def __call__(self, folder: Path, precision: str, float_layers: list[str]) -> Manifest:
        trial = dataclasses.replace(self.ctx, folder=folder, precision=precision, float_layers=list(float_layers))
        stages = self.stages if folder == self.ctx.folder else (CopySourceFiles(), *self.stages)
        return run_stages(trial, stages).manifest


class Deliver:
    """The build stages once; or, with an accuracy budget or the latency objective, as often as `deliver` decides."""

    def run(self, ctx: ConversionContext) -> ConversionContext:
        attempt = Rebuild(ctx)
        if not ctx.compression.active:
            ctx.manifest = attempt(ctx.folder, ctx.precision, [])
            return ctx
        unpruned = ctx.pruning.metric.source if ctx.pruning and ctx.pruning.metric else None
        baseline = unpruned.accuracy if unpruned else None
        ctx.manifest = deliver(
            attempt,
            ctx.folder,
            ctx.precision,
            ctx.compression,
            ctx.target,
            ctx.source.module,
            _ranking_feeds(ctx),
            baseline,
            ctx.progress,
        )
        return ctx


def _ranking_feeds(ctx: ConversionContext) -> list[dict[str, np.ndarray]]:
    """The data that ranks layers by int8 sensitivity: calibration, else the eval data, else the samples."""
    if ctx.calibration_feeds:
        return ctx.calibration_feeds
    if ctx.eval_data is not None:
        return calibration_feeds(ctx.reference, ctx.eval_data, RANKING_EXAMPLES)
    return [ctx.sample_feeds]


# The stages inside the staged output folder, after LoadSource (the folder's name needs the source's).
STAGES: tuple[Stage, ...] = (
    CopySourceFiles(),
    Describe(),
    PrepareData(),
    Prune(),
    Smooth(),
    RunReference(),
    Deliver(),
)


@contextlib.contextmanager
def typed_build_errors(target: Target):
    """A converter's missing package or its own failure becomes a typed error naming the fix."""
    try:
        yield
    except BmsdkError:
        raise
    except ModuleNotFoundError as e:
        missing = f"the '{e.name}' package" if e.name else f"a package ({str(e).strip()[:120]})"
        raise BackendUnavailableError(
            f"the {target.name} converter needs {missing}, which is not installed",
            f"pip install 'bmsdk[{target.extra}]'",
        ) from e
    except Exception as e:
        text = str(e).strip().splitlines()[0][:300] if str(e).strip() else type(e).__name__
        raise ConversionError(
            f"{target.name} conversion failed: {text}", "run with --debug for the full traceback"
        ) from e
