"""The conversion pipeline: source -> export (+ quantize) -> validate -> package, written atomically."""

from __future__ import annotations

import contextlib
import dataclasses
import datetime
import platform
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from bmsdk.artifact import check_output, file_checksums, save_samples, staged_folder
from bmsdk.checks import check_convert_args, check_overrides
from bmsdk.data import Dataset, load_dataset
from bmsdk.errors import BackendUnavailableError, BmsdkError, ConversionError, DataError, InputError
from bmsdk.manifest import Manifest
from bmsdk.progress import SILENT, Progress
from bmsdk.runtimes import check_feeds
from bmsdk.runtimes.model import Model
from bmsdk.tasks import get_task
from bmsdk.tasks.metrics import label_indices
from bmsdk.version import __version__

from .budget import deliver
from .compression import CompressionRequest, eval_key, prune_stage
from .registry import get_target
from .sources.loader import example_feeds, load_source
from .validate import validate_artifact

SAMPLE_TEXTS = [
    "I loved this, it was great!",
    "Terrible service, never again.",
    "It is okay I guess.",
    "The new update broke everything",
    "What a wonderful day to ship a model",
    "meh",
    "Absolutely fantastic performance from the whole team tonight",
    "Not sure how I feel about self-driving cars.",
]


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
    **target_options,
) -> ConversionResult:
    """See `bmsdk convert --help`. `source_outputs`: a dict shared across conversions of one source, in which the
    source's outputs on the eval data are kept so that they are computed once (the benchmark matrix uses it).
    Compression (pruning, recovery, accuracy budget, latency objective): see converters/compression.py and budget.py."""
    progress = progress or SILENT
    spec = get_target(target)
    spec.check_precision(precision)  # refuse bad arguments before any work
    options = spec.parse_options(target_options)
    calib_data = load_dataset(calibration) if calibration else None
    eval_set = eval_data if isinstance(eval_data, Dataset) else load_dataset(eval_data) if eval_data else None
    request = CompressionRequest(
        prune,
        prune_method,
        importance,
        load_dataset(recover) if recover else None,
        recover_steps,
        max_accuracy_drop,
        objective,
    )
    request.check(target, precision, eval_set is not None, calib_data is not None)
    check_convert_args(labels, mean, std, max_length)
    if output:
        check_output(Path(output), overwrite)  # before the source loads: minutes may pass before it is written

    with progress.step(f"loading source {source}"):
        try:
            src = load_source(
                source,
                task=task,
                input_shapes=input_shapes,
                max_length=max_length,
                labels=labels,
                mean=mean,
                std=std,
                tokenizer=tokenizer,
                weights=weights,
            )
        except ModuleNotFoundError as e:
            raise BackendUnavailableError(
                f"converting needs the '{e.name}' package, which is not installed", "pip install 'bmsdk[convert]'"
            ) from None
    spec.check_task(src.task)
    classifier = get_task(src.task).classifier
    class_dim = next((d for d in src.outputs[0].shape[1:] if isinstance(d, int)), None) if classifier else None
    check_overrides(labels, mean, std, class_dim, src.preprocessing.get("channels"))
    request.check_source(src)
    spec.check_request(src, precision, calib_data is not None, options)
    if eval_set is not None and classifier:
        if eval_set.labels is None:
            raise DataError(
                f"evaluation data {eval_data} has no labels", "add a 'label' column (JSONL/CSV) or a 'y' array (.npz)"
            )
        num_classes = next((d for d in src.outputs[0].shape[1:] if isinstance(d, int)), None)
        if num_classes:
            label_indices(eval_set.labels, src.postprocessing.get("labels"), num_classes)  # unknown labels: refuse now
    name = name or src.name
    out = Path(output) if output else Path(f"{name}-{target}-{precision}.bmsdk")

    with staged_folder(out, overwrite=overwrite) as folder:
        for rel, path in src.files.items():
            (folder / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, folder / rel)
        manifest = Manifest(
            name=name,
            task=src.task,
            target=target,
            precision=precision,
            model_file=spec.model_file,
            inputs=src.inputs,
            outputs=src.outputs,
            preprocessing=src.preprocessing,
            postprocessing=src.postprocessing,
            source=src.info,
            files={spec.model_file: ""},
        )
        reference = Model(folder, manifest, src)
        calib_feeds = _calibration_feeds(reference, calib_data, calibration_size) if calib_data else None
        sample_feeds, raw = _sample_feeds(reference, calib_data or eval_set, num_samples)
        pruning, validation_cache = None, source_outputs
        if request.prune is not None:  # the source becomes the pruned model: every later stage sees it
            recover_batches = _recover_batches(reference, request.recover) if request.recover is not None else None
            pruning, pruned_outputs = prune_stage(
                request, src, reference, calib_feeds, recover_batches, eval_set, source_outputs, progress
            )
            validation_cache = {eval_key(eval_set): pruned_outputs} if pruned_outputs is not None else {}
        with progress.step("running the source on the samples"):
            sample_reference = src.run(sample_feeds)

        def attempt(into: Path, precision: str, float_layers: list[str]) -> Manifest:
            """Build into `into`, validate on the artifact's runtime, write the manifest."""
            into.mkdir(parents=True, exist_ok=True)
            for rel, path in src.files.items() if into != folder else ():
                (into / rel).parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(path, into / rel)
            result = dataclasses.replace(manifest, precision=precision)
            with progress.step(f"building {target} {precision}"), typed_build_errors(spec):
                built = spec.build(src, into, precision, calib_feeds, options, float_layers or None)
            save_samples(into, sample_feeds, sample_reference, raw)
            result.model_file = built.model_file
            result.compression = dataclasses.replace(built.compression, pruning=pruning)
            result.target_config = built.target_config
            result.toolchain = {
                "bmsdk": __version__,
                "python": platform.python_version(),
                "numpy": np.__version__,
                **built.toolchain,
            }
            result.files = file_checksums(into)
            result.created = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
            result.bmsdk_version = __version__
            result.validation = validate_artifact(
                into, result, sample_feeds, sample_reference, eval_set, reference, progress, validation_cache
            )
            result.write(into)
            return result

        if request.active:
            original = pruning.metric.source if pruning and pruning.metric else None
            baseline = original.accuracy if original else None
            ranking_feeds = calib_feeds or (
                _calibration_feeds(reference, eval_set, 64) if eval_set is not None else [sample_feeds]
            )
            manifest = deliver(attempt, folder, precision, request, spec, src.module, ranking_feeds, baseline, progress)
        else:
            manifest = attempt(folder, precision, [])
    return ConversionResult(out.resolve(), manifest)


@contextlib.contextmanager
def typed_build_errors(target):
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


def _recover_batches(model: Model, data: Dataset, limit: int = 4096) -> list[tuple[dict, np.ndarray | None]]:
    """Recovery data as (feeds, label indices or None) batches: 32 images or 16 texts each."""
    size = 16 if data.kind == "text" else 32
    feeds = _calibration_feeds(model, data, limit, batch_size=size)
    if data.labels is None:
        return [(f, None) for f in feeds]
    num_classes = next((d for d in model.manifest.outputs[0].shape[1:] if isinstance(d, int)), None)
    labels = label_indices(data.head(limit).labels, model.labels, num_classes)
    return [(f, labels[i * size : (i + 1) * size]) for i, f in enumerate(feeds)]


def _calibration_feeds(model: Model, data: Dataset, limit: int, batch_size: int = 8) -> list[dict[str, np.ndarray]]:
    batches = []
    data = data.head(limit)
    for batch in data.batches(batch_size):
        feeds = _checked_feeds(model, batch, data, "calibration")
        batches.append(feeds)
    return batches


def _checked_feeds(model: Model, batch, data: Dataset, what: str) -> dict[str, np.ndarray]:
    kind = model.manifest.preprocessing.get("kind")
    if kind and data.kind != "tensor" and data.kind != kind:
        raise DataError(
            f"{what} data {data.origin} holds {data.kind} inputs but the model takes {kind}",
            f"pass {kind} data for this model",
        )
    try:
        feeds = model.preprocess(list(batch) if data.kind == "text" else batch)
        check_feeds(model.manifest.inputs, feeds)
    except InputError as e:
        raise DataError(f"{what} data {data.origin} does not fit the model: {e.problem}", e.fix) from None
    return feeds


def _sample_feeds(model: Model, data: Dataset | None, n: int):
    """Inputs for samples.npz and the raw inputs they came from (texts, or uint8 HxWxC pixels after resizing).

    Taken from the first examples of the given data, else built-in texts or random images.
    """
    n = max(n, 2)  # batch >= 2 keeps the batch dim visibly dynamic
    kind = model.manifest.preprocessing.get("kind")
    if data is not None and len(data) >= 2:
        head = data.head(n)
        feeds = _checked_feeds(model, head.items, head, "sample")
        if head.kind == "text":
            return feeds, np.asarray(head.items, dtype=str)
        if head.kind == "image":
            return feeds, np.stack([model.preprocessor.load(item) for item in head.items]).astype(np.uint8)
        return feeds, None
    if kind == "text":
        texts = (SAMPLE_TEXTS * (n // len(SAMPLE_TEXTS) + 1))[:n]
        return model.preprocess(texts), np.asarray(texts, dtype=str)
    if kind == "image":
        pre = model.manifest.preprocessing
        images = np.random.default_rng(0).integers(0, 256, (n, *pre["size"], pre["channels"]), dtype=np.uint8)
        return model.preprocess(list(images)), images

    return example_feeds(model.manifest.inputs, batch=n), None
