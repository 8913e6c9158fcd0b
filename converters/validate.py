"""Checking an artifact against its source: sample outputs within the target's tolerance for the precision, and the
task metric on --eval data. Runs on the artifact's own runtime (or the target's CPU stand-in for it)."""

from __future__ import annotations

import dataclasses

from bmsdk.compare import compare_outputs
from bmsdk.errors import BackendUnavailableError, UnsupportedError
from bmsdk.progress import SILENT
from bmsdk.runtimes import open_backend
from bmsdk.runtimes.model import Model
from bmsdk.sections import Delta, EvalReport, Scores, Validation
from bmsdk.tasks.text_generation import greedy_check, sample_prompts

from .registry import get_target


def validate_artifact(
    folder,
    manifest,
    sample_feeds: dict,
    sample_reference: dict,
    eval_data=None,
    source=None,
    progress=None,
    source_outputs: dict | None = None,
) -> Validation:
    """Run the artifact on its own backend: samples against the source's outputs, and the metric on `eval_data`.

    `source` is a Model over the source (during conversion) or None (`bmsdk validate` later, from samples.npz).
    Where the backend cannot run here, the result says `validated: false` and why; it never claims a check that did
    not run.
    """
    progress = progress or SILENT
    target = get_target(manifest.target)
    try:
        try:
            backend, backend_label, stand_in_note = open_backend(folder, manifest), None, None
        except BackendUnavailableError as e:
            if target.stand_in is None:
                return Validation(validated=False, passed=None, reason=str(e))
            # the target's own runtime cannot run here: check the numerics of what it will run on a CPU stand-in
            stand_in, what = target.stand_in
            backend = open_backend(folder, manifest, backend=stand_in)
            backend_label = f"{backend.name} ({what})"
            stand_in_note = f"validated on a stand-in: the {manifest.target} runtime itself did not run ({e.problem})"
    except UnsupportedError as e:  # e.g. an op the reference executor does not implement: the artifact stays
        return Validation(validated=False, passed=None, reason=f"could not run the artifact here: {e}")
    with Model(folder, manifest, backend) as artifact:
        result = _check_samples(
            artifact, backend, backend_label, target, manifest, sample_feeds, sample_reference, progress
        )
        if not result.validated:
            return result
        if stand_in_note:
            result.stand_in, result.device_real, result.note = True, False, stand_in_note
        uncovered = target.uncovered_inputs(manifest, sample_feeds)
        if uncovered:
            result.passed = False
            result.reason = f"samples fall outside the optimization profile: {'; '.join(uncovered)}"
        if source is not None and manifest.input_kind == "generation":
            _check_greedy(artifact, source, manifest, sample_feeds, progress, result)
            _check_bundle(folder, target, source, manifest, sample_feeds, progress, result)
        if eval_data is not None:
            result.eval = _evaluate(artifact, target, manifest, eval_data, source, source_outputs, progress, result)
    return result


def _check_greedy(artifact, source, manifest, feeds: dict, progress, result: Validation) -> None:
    """Text generation: greedy decoding from the sample prompts, token by token against the source's."""
    prompts = sample_prompts(feeds)
    with progress.step(f"greedy decoding {len(prompts)} sample prompts against the source"):
        result.greedy = greedy_check(source.generator, artifact.generator, prompts, manifest.precision)
    if not result.greedy.passed:
        result.passed = False
        result.reason = (
            f"greedy tokens differ from the source's on {result.greedy.prompts - result.greedy.identical} of "
            f"{result.greedy.prompts} sample prompts ({manifest.precision} must match exactly)"
        )


def _check_bundle(folder, target, source, manifest, feeds: dict, progress, result: Validation) -> None:
    """A bundle for another engine (tflite --litertlm), greedy text on that engine against the source's."""
    result.bundle = target.check_bundle(folder, manifest, source.generator, sample_prompts(feeds), progress)
    if result.bundle and result.bundle.passed is False and result.passed is not False:
        result.passed = False
        result.reason = (
            f"the {result.bundle.file} bundle's greedy text differs from the source's on "
            f"{result.bundle.prompts - result.bundle.identical} of {result.bundle.prompts} sample prompts "
            f"({result.bundle.first_difference})"
        )


def _check_samples(artifact, backend, label, target, manifest, feeds: dict, reference: dict, progress) -> Validation:
    with progress.step(f"validating on {label or backend.name} ({len(next(iter(feeds.values())))} samples)"):
        try:
            outputs = artifact.run(feeds)
        except UnsupportedError as e:  # e.g. an op the reference executor does not implement
            return Validation(validated=False, passed=None, reason=f"{backend.name} cannot run this artifact: {e}")
        masks = artifact.task_spec.sample_masks(manifest.postprocessing, feeds, reference)
        samples = compare_outputs(reference, outputs, target.artifact_tolerance(manifest), masks)
    return Validation(
        validated=True,
        backend=label or backend.name,
        device_real=backend.device_real,
        samples=samples,
        passed=samples.passed,
    )


def _evaluate(
    artifact, target, manifest, eval_data, source, source_outputs: dict | None, progress, result: Validation
) -> EvalReport:
    """The metric on `eval_data`; with the source, its agreement with the artifact (which may fail `result`)."""
    task = artifact.task_spec
    with progress.step(f"evaluating the artifact on {len(eval_data)} examples"):
        art_out = artifact.primary_outputs(eval_data)
    report = EvalReport(data=eval_data.origin, n=len(eval_data))
    if task.classifier:
        report.artifact = Scores(**task.metrics(art_out, eval_data.labels, manifest.labels))
    elif (scores := task.metrics(art_out, eval_data.labels, manifest.labels)) is not None:
        report = dataclasses.replace(report, **scores)  # e.g. text generation's perplexity and tokens scored
    if source is None:
        return report
    key = f"{eval_data.origin}#{len(eval_data)}"
    src_out = (source_outputs or {}).get(key)
    if src_out is None:
        with progress.step(f"evaluating the source on {len(eval_data)} examples"):
            src_out = source.primary_outputs(eval_data)
        if source_outputs is not None:
            source_outputs[key] = src_out
    report = dataclasses.replace(report, **task.agreement(src_out, art_out))
    report = dataclasses.replace(report, **task.source_scores(src_out, eval_data.labels, manifest.labels))
    floor = target.artifact_tolerance(manifest).min_top1_agreement
    if (
        (task.classifier or task.agreement_floor)
        and floor is not None
        and report.top1_agreement is not None
        and report.top1_agreement < floor
    ):
        result.passed = False
        result.reason = f"top-1 agreement {report.top1_agreement:.4f} < {floor} on {eval_data.origin}"
    failure = task.eval_failure(report, manifest.precision)
    if failure:
        result.passed, result.reason = False, failure
    if task.classifier:
        report.source = Scores(**task.metrics(src_out, eval_data.labels, manifest.labels))
        report.delta = delta(report.artifact, report.source)
    return report


def delta(artifact: Scores, source: Scores) -> Delta:
    return Delta(accuracy=artifact.accuracy - source.accuracy, macro_f1=artifact.macro_f1 - source.macro_f1)
