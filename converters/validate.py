"""Checking an artifact against its source: sample outputs within per-precision tolerances, and the task metric.

numpy only, so `bmsdk validate` works wherever a runtime is installed.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from bmsdk.errors import UnsupportedError
from bmsdk.sections import Delta, EvalReport, SampleCheck, Scores, TensorRTConfig, Tolerance, Validation

# Relative error is max|artifact - source| / max|source|. Cosine is the smallest per-sample cosine similarity.
# Quantized models are judged by cosine (and by the task metric on --eval data), not by elementwise error.
TOLERANCES: dict[str, Tolerance] = {
    "fp32": Tolerance(max_rel_error=1e-4, min_cosine=0.9999),
    "fp16": Tolerance(max_rel_error=2e-2, min_cosine=0.999),
    "int8": Tolerance(min_cosine=0.98),
    "int8-dynamic": Tolerance(min_cosine=0.98),
    "fp8": Tolerance(min_cosine=0.98),  # TensorRT fp8 Q/DQ: judged like int8 (as it was before it had its own entry)
    # CoreML weight compression: judged like int8, and on --eval data by top-1 agreement with the source
    **{p: Tolerance(min_cosine=0.98, min_top1_agreement=0.99)
       for p in ("int4", "palettize4", "palettize6", "palettize8", "sparse50")},
}


def tolerance_for(precision: str) -> Tolerance:
    if precision not in TOLERANCES:
        raise UnsupportedError(f"no tolerance is defined for precision '{precision}'",
                               f"precisions bmsdk can judge: {', '.join(TOLERANCES)}")
    return TOLERANCES[precision]


def cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Cosine similarity of each row (sample) of a with the same row of b."""
    a, b = a.reshape(len(a), -1).astype(np.float64), b.reshape(len(b), -1).astype(np.float64)
    return (a * b).sum(1) / np.clip(np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1), 1e-12, None)


def compare_outputs(reference: dict[str, np.ndarray], actual: dict[str, np.ndarray], precision: str) -> SampleCheck:
    """Error statistics over all outputs, and whether they are within the precision's tolerance."""
    tol = tolerance_for(precision)
    n = int(len(next(iter(reference.values()))))

    def refused(reason: str) -> SampleCheck:
        return SampleCheck(n=n, tolerance=tol, passed=False, reason=reason)

    max_abs, max_rel, min_cos, top1 = 0.0, 0.0, 1.0, []
    for name, ref in reference.items():
        if name not in actual:
            return refused(f"artifact has no output '{name}'")
        got = np.asarray(actual[name], dtype=np.float64)
        ref = np.asarray(ref, dtype=np.float64)
        if got.shape != ref.shape:
            return refused(f"output '{name}' has shape {list(got.shape)}, source {list(ref.shape)}")
        if not np.isfinite(got).all():  # max()/min() would silently drop NaNs
            return refused(f"output '{name}' has NaN or infinite values")
        diff = float(np.max(np.abs(got - ref))) if ref.size else 0.0
        max_abs = max(max_abs, diff)
        max_rel = max(max_rel, diff / max(float(np.max(np.abs(ref))), 1e-12))
        min_cos = min(min_cos, float(cosines(got, ref).min()))
        if ref.ndim == 2:
            top1.append(float(np.mean(got.argmax(-1) == ref.argmax(-1))))
    failed = []
    if tol.max_rel_error is not None and max_rel > tol.max_rel_error:
        failed.append(f"relative error {max_rel:.2e} > {tol.max_rel_error:.0e}")
    if min_cos < tol.min_cosine:
        failed.append(f"cosine {min_cos:.5f} < {tol.min_cosine}")
    return SampleCheck(n=n, max_abs_error=max_abs, max_rel_error=max_rel, min_cosine=min_cos,
                       top1_agreement=min(top1) if top1 else None, tolerance=tol, passed=not failed,
                       reason="; ".join(failed) or None)


def agreement(reference: np.ndarray, actual: np.ndarray, task: str) -> dict[str, float]:
    """Over a dataset: top-1 agreement for classifiers, mean and min cosine similarity for embeddings (keyword
    arguments of EvalReport)."""
    if task == "feature-extraction":
        cos = cosines(actual, reference)
        return {"mean_cosine": float(cos.mean()), "min_cosine": float(cos.min())}
    return {"top1_agreement": float(np.mean(reference.argmax(-1) == actual.argmax(-1)))}


def scores(logits: np.ndarray, data, labels) -> Scores:
    from bmsdk.tasks import score_logits

    return Scores(**score_logits(logits, data.labels, labels))


def delta(artifact: Scores, source: Scores) -> Delta:
    return Delta(accuracy=artifact.accuracy - source.accuracy, macro_f1=artifact.macro_f1 - source.macro_f1)


def validate_artifact(folder, manifest, sample_feeds: dict, sample_reference: dict, eval_data=None, source=None,
                      progress=None, source_outputs: dict | None = None) -> Validation:
    """Run the artifact on its own backend: samples against the source's outputs, and the metric on `eval_data`.

    `source` is a Model over the source (during conversion) or None (`bmsdk validate` later, from samples.npz).
    Where the backend cannot run here, the result says `validated: false` and why; it never claims a check that did not run.
    """
    from bmsdk.errors import BackendUnavailableError
    from bmsdk.model import Model
    from bmsdk.progress import SILENT
    from bmsdk.runtimes import open_backend

    progress = progress or SILENT
    try:
        backend, backend_label, stand_in_note = open_backend(folder, manifest), None, None
    except BackendUnavailableError as e:
        stand_in = _stand_in(manifest.target)
        if stand_in is None:
            return Validation(validated=False, passed=None, reason=str(e))
        # the target's own runtime cannot run here: check the numerics of what it will run on a CPU stand-in
        backend = open_backend(folder, manifest, backend=stand_in[0])
        backend_label = f"{backend.name} ({stand_in[1]})"
        stand_in_note = f"validated on a stand-in: the {manifest.target} runtime itself did not run ({e.problem})"
    with Model(folder, manifest, backend) as artifact:
        result = _check_samples(artifact, backend, backend_label, manifest, sample_feeds, sample_reference, progress)
        if not result.validated:
            return result
        if stand_in_note:
            result.stand_in, result.device_real, result.note = True, False, stand_in_note
        profile_problems = _outside_profiles(manifest, sample_feeds)
        if profile_problems:
            result.passed = False
            result.reason = f"samples fall outside the optimization profile: {'; '.join(profile_problems)}"
        if eval_data is not None:
            result.eval = _evaluate(artifact, manifest, eval_data, source, source_outputs, progress, result)
    return result


def _check_samples(artifact, backend, label, manifest, feeds: dict, reference: dict, progress) -> Validation:
    from bmsdk.errors import UnsupportedError

    with progress.step(f"validating on {label or backend.name} ({len(next(iter(feeds.values())))} samples)"):
        try:
            outputs = artifact.run(feeds)
        except UnsupportedError as e:  # e.g. an op the reference executor does not implement
            return Validation(validated=False, passed=None, reason=f"{backend.name} cannot run this artifact: {e}")
        samples = compare_outputs(reference, outputs, manifest.precision)
    return Validation(validated=True, backend=label or backend.name, device_real=backend.device_real, samples=samples,
                      passed=samples.passed)


def _evaluate(artifact, manifest, eval_data, source, source_outputs: dict | None, progress,
              result: Validation) -> EvalReport:
    """The metric on `eval_data`; with the source, its agreement with the artifact (which may fail `result`)."""
    with progress.step(f"evaluating the artifact on {len(eval_data)} examples"):
        art_out = artifact.primary_outputs(eval_data)
    report = EvalReport(data=eval_data.origin, n=len(eval_data))
    classifier = manifest.task != "feature-extraction"
    if classifier:
        report.artifact = scores(art_out, eval_data, manifest.labels)
    if source is None:
        return report
    key = f"{eval_data.origin}#{len(eval_data)}"
    src_out = (source_outputs or {}).get(key)
    if src_out is None:
        with progress.step(f"evaluating the source on {len(eval_data)} examples"):
            src_out = source.primary_outputs(eval_data)
        if source_outputs is not None:
            source_outputs[key] = src_out
    report = dataclasses.replace(report, **agreement(src_out, art_out, manifest.task))
    floor = tolerance_for(manifest.precision).min_top1_agreement
    if floor is not None and report.top1_agreement is not None and report.top1_agreement < floor:
        result.passed = False
        result.reason = f"top-1 agreement {report.top1_agreement:.4f} < {floor} on {eval_data.origin}"
    if classifier:
        report.source = scores(src_out, eval_data, manifest.labels)
        report.delta = delta(report.artifact, report.source)
    return report


def _stand_in(target: str) -> tuple[str, str] | None:
    """The (backend, description) a target names to check its artifact where its own runtime cannot run."""
    from bmsdk.converters import get_target

    return getattr(get_target(target).TARGET, "stand_in", None)


def _outside_profiles(manifest, feeds: dict) -> list[str]:
    """For artifacts with optimization profiles (TensorRT): the sample inputs the profile does not cover."""
    config = manifest.target_config
    if not isinstance(config, TensorRTConfig) or not config.build.profiles:
        return []
    from bmsdk.converters.profiles import outside

    return outside(config.build.profiles, feeds)
