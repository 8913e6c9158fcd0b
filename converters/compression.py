"""What `bmsdk convert` was asked to compress, checked before any work, and the pruning stage (prune, recover, score).

The pruning stage runs between loading the source and exporting it. It returns a new Source over the pruned (and
recovered) model, leaving the caller's source as it was; every later stage exports that smaller model and validates
against it.
"""

from __future__ import annotations

import copy
import dataclasses
from dataclasses import dataclass

import numpy as np

from bmsdk.converters.prune import check_method, check_source, default_method, prune
from bmsdk.converters.recover import recover
from bmsdk.errors import DataError, UnsupportedError
from bmsdk.sections import PruneMetrics, PruneSearch, PruneTrial, Pruning, Scores
from bmsdk.tasks import get_task

OBJECTIVES = ("accuracy", "latency")
DEFAULT_RECOVER_STEPS = 100
AUTO_RATIOS = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7)  # tried in this order; the last that fits the budget wins


@dataclass
class CompressionRequest:
    prune: float | str | None = None  # a ratio in (0, 1), or "auto"
    method: str | None = None
    importance: str = "magnitude"
    recover: object = None  # a Dataset of inputs (labels used where present)
    recover_steps: int | None = None
    max_accuracy_drop: float | None = None  # points
    objective: str = "accuracy"
    precision: str = "fp32"

    @property
    def active(self) -> bool:
        return self.prune is not None or self.max_accuracy_drop is not None or self.objective != "accuracy"

    @property
    def auto(self) -> bool:
        return self.prune == "auto"

    def check(self, target: str, precision: str, has_eval: bool, has_calibration: bool) -> None:
        """Refuse bad combinations before any work."""
        self.prune = _ratio(self.prune)
        self.precision = precision
        if self.objective not in OBJECTIVES:
            raise UnsupportedError(f"unknown objective '{self.objective}'", f"use one of: {', '.join(OBJECTIVES)}")
        if self.objective == "latency" and precision == "fp32":
            raise UnsupportedError(
                "--objective latency compares a quantized artifact with its float twin; fp32 has none",
                "ask for a quantized precision (e.g. --precision int8), or leave --objective out",
            )
        if self.max_accuracy_drop is not None:
            if self.max_accuracy_drop < 0:
                raise UnsupportedError(
                    f"--max-accuracy-drop {self.max_accuracy_drop} is negative", "pass a drop in points, e.g. 0.5"
                )
            if not has_eval:
                raise DataError("--max-accuracy-drop needs labelled data to measure the drop on", "pass --eval DATA")
        if self.prune is None:
            for flag, value in (
                ("--prune-method", self.method),
                ("--recover", self.recover),
                ("--recover-steps", self.recover_steps),
            ):
                if value is not None:
                    raise UnsupportedError(
                        f"{flag} applies only when pruning", "add --prune RATIO (e.g. 0.5) or leave the flag out"
                    )
            if self.importance != "magnitude":
                raise UnsupportedError(
                    "--importance applies only when pruning", "add --prune RATIO or leave --importance out"
                )
            return
        if self.auto and self.max_accuracy_drop is None:
            raise UnsupportedError(
                "--prune auto searches the largest ratio within an accuracy budget",
                "add --max-accuracy-drop PT and --eval DATA, or give a ratio, e.g. --prune 0.5",
            )
        if self.recover_steps is not None and (self.recover is None or self.recover_steps < 1):
            raise UnsupportedError(
                "--recover-steps needs --recover DATA and at least 1 step",
                "add --recover DATA, e.g. your training inputs",
            )

        check_method(self.method or "channels", self.importance, target)
        if self.importance == "taylor" and not has_calibration:
            raise DataError(
                "--importance taylor needs calibration data for its gradients",
                "pass --calibration DATA, or use --importance magnitude",
            )

    def check_source(self, source) -> None:
        if self.max_accuracy_drop is not None and not get_task(source.task).classifier:
            raise UnsupportedError(
                "--max-accuracy-drop needs a classifier (accuracy); this model extracts features",
                "leave --max-accuracy-drop out and read the cosine agreement in the validation",
            )
        if self.prune is not None:
            self.method = self.method or default_method(source)
            check_source(source, self.method)


def _ratio(value):
    if value is None or value == "auto":
        return value
    try:
        ratio = float(value)
    except (TypeError, ValueError):
        raise UnsupportedError(
            f"cannot read --prune '{value}'", "pass a ratio between 0 and 1 (e.g. 0.5) or 'auto'"
        ) from None
    if not 0 < ratio < 1:
        raise UnsupportedError(
            f"--prune {ratio} is not between 0 and 1", "pass the share of channels/heads to remove, e.g. 0.5"
        )
    return ratio


def eval_key(data) -> str:
    """The key validate_artifact uses for a dataset's outputs in its `source_outputs` cache."""
    return f"{data.origin}#{len(data)}"


def score(model, data, cache: dict | None = None) -> tuple[Scores, np.ndarray]:
    """Accuracy and macro-F1 of a Model (here: over the source) on labelled data, and its outputs."""
    outputs = (cache or {}).get(eval_key(data))
    if outputs is None:
        outputs = model.primary_outputs(data)
        if cache is not None:
            cache[eval_key(data)] = outputs
    return Scores(**model.task_spec.metrics(outputs, data.labels, model.labels)), outputs


def prune_stage(
    request: CompressionRequest, source, reference, calibration, recover_batches, eval_set, source_outputs, progress
) -> tuple[object, Pruning, np.ndarray | None]:
    """Prune (searching the ratio for `auto`), recover, and score: the pruned Source (`source` is left as it is), the
    report, and the pruned model's eval outputs.

    `reference` is a Model over `source`; `source_outputs` caches the unpruned outputs; `recover_batches` is a list
    of (feeds, label indices or None).
    """
    teacher = copy.deepcopy(source.module)  # recovery's distillation teacher: recover() sets its mode
    original = None
    if eval_set is not None:
        with progress.step(f"evaluating the unpruned source on {len(eval_set)} examples"):
            original, _ = score(reference, eval_set, source_outputs)
    setup = PruneTrialSetup(request, source, reference, teacher, calibration, recover_batches, eval_set, progress)
    pruned, report, outputs = _search(setup, original) if request.auto else _prune_once(setup, request.prune)
    if original is not None:
        report.metric = dataclasses.replace(report.metric or PruneMetrics(), source=original)
    pruning = {"method": report.method, "ratio": report.ratio, "importance": report.importance}
    return dataclasses.replace(pruned, info={**source.info, "pruning": pruning}), report, outputs


def model_over(model, source):
    """The Model `model` (its manifest and preprocessing) with `source` as its runner."""
    other = copy.copy(model)
    other.runner = source
    return other


@dataclass
class PruneTrialSetup:
    """What every pruning trial shares: the request, the unpruned source, its Model, and the data."""

    request: CompressionRequest
    source: object
    reference: object
    teacher: object
    calibration: list | None
    recover_batches: list | None
    eval_set: object
    progress: object


def _prune_once(setup: PruneTrialSetup, ratio: float):
    """The pruned (and recovered) Source at `ratio`, its report, and its outputs on the eval data."""
    request, progress, eval_set = setup.request, setup.progress, setup.eval_set
    with progress.step(f"pruning {ratio:.0%} ({request.method}, {request.importance} importance)"):
        pruned, report = prune(setup.source, ratio, request.method, request.importance, setup.calibration)
    progress.info(
        f"    parameters {report.params.before:,} -> {report.params.after:,}, "
        f"MACs {report.macs.before:,} -> {report.macs.after:,}"
    )
    model = model_over(setup.reference, pruned)
    metric, outputs = PruneMetrics(), None
    if eval_set is not None:
        with progress.step("evaluating the pruned model"):
            metric.pruned, outputs = score(model, eval_set)
    if setup.recover_batches:
        report.recovery = _recover(setup, pruned)
        if eval_set is not None:
            with progress.step("evaluating the recovered model"):
                metric.recovered, outputs = score(model, eval_set)
    report.metric = metric if metric.stages() else None
    return pruned, report, outputs


def _recover(setup: PruneTrialSetup, pruned):
    feeds = [f for f, _ in setup.recover_batches]
    labels = None if any(y is None for _, y in setup.recover_batches) else [y for _, y in setup.recover_batches]
    steps = setup.request.recover_steps or DEFAULT_RECOVER_STEPS
    with setup.progress.step(f"recovering: {steps} fine-tuning steps with distillation"):
        return recover(pruned.module, setup.teacher, feeds, labels, steps, pruned.input_kind)


def _search(setup: PruneTrialSetup, original: Scores):
    """The largest ratio in AUTO_RATIOS whose drop fits the pruning share of the budget (all of it for fp32, half when
    quantizing: the rest is left to quantization)."""
    request = setup.request
    allowed = request.max_accuracy_drop * (1.0 if request.precision == "fp32" else 0.5)
    best, tried = None, []
    for ratio in AUTO_RATIOS:
        pruned, report, outputs = _prune_once(setup, ratio)
        final = report.metric.recovered or report.metric.pruned
        drop = 100 * (original.accuracy - final.accuracy)
        tried.append(PruneTrial(ratio=ratio, drop_pt=drop, params=report.params.after))
        setup.progress.info(f"    ratio {ratio:.0%}: accuracy drop {drop:+.2f} pt (allowed {allowed:.2f})")
        if drop > allowed:
            break
        best = (ratio, pruned, report, outputs)
    if best is None:
        raise DataError(
            f"--prune auto: even {AUTO_RATIOS[0]:.0%} pruning drops accuracy by {tried[0].drop_pt:.2f} pt, "
            f"over the {allowed:.2f} pt allowed for pruning",
            "raise --max-accuracy-drop, add --recover DATA, or leave --prune out",
        )
    ratio, pruned, report, outputs = best
    report.search = PruneSearch(tried=tried, allowed_drop_pt=allowed, chosen=ratio)
    return pruned, report, outputs
