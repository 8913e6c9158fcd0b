"""Comparing an artifact's outputs with the source's: error statistics against a tolerance (numpy only)."""

from __future__ import annotations

import numpy as np

from bmsdk.sections import SampleCheck, Tolerance

# A classifier head with at most this many classes is judged over the batch, not per sample: a 2-class logit pair
# near the decision boundary has a cosine near 0 after an error far smaller than the logits' scale. Such a head
# passes when its centred logits over the batch are within the cosine and no clearly decided sample flips.
SMALL_HEAD = 16

# What targets declare per precision. Relative error is max|artifact - source| / max|source|; cosine is the smallest
# per-sample cosine similarity. Quantized models are judged by cosine (and by the task metric on --eval data).
FP32 = Tolerance(max_rel_error=1e-4, min_cosine=0.9999)
FP16 = Tolerance(max_rel_error=2e-2, min_cosine=0.999)
INT8 = Tolerance(min_cosine=0.98)
INT4 = Tolerance(min_cosine=0.95)  # 4-bit weights; a language model is judged by its perplexity budget
WEIGHT_COMPRESSED = Tolerance(min_cosine=0.98, min_top1_agreement=0.99)  # also top-1 agreement on --eval data


def cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Cosine similarity of each row (sample) of a with the same row of b."""
    a, b = a.reshape(len(a), -1).astype(np.float64), b.reshape(len(b), -1).astype(np.float64)
    return (a * b).sum(1) / np.clip(np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1), 1e-12, None)


def compare_outputs(
    reference: dict[str, np.ndarray],
    actual: dict[str, np.ndarray],
    tol: Tolerance,
    token_masks: dict[str, np.ndarray] | None = None,
) -> SampleCheck:
    """Error statistics over all outputs, and whether they are within the tolerance.

    `token_masks` ({output: [batch, sequence] bool}) marks the real tokens of per-token outputs: their padding
    positions are left out, and each real token is judged as one sample (a token classifier's logits).
    """
    n = int(len(next(iter(reference.values()))))

    def refused(reason: str) -> SampleCheck:
        return SampleCheck(n=n, tolerance=tol, passed=False, reason=reason)

    max_abs, max_rel, min_cos, top1, undecided = 0.0, 0.0, 1.0, [], []
    for name, ref in reference.items():
        if name not in actual:
            return refused(f"artifact has no output '{name}'")
        got = np.asarray(actual[name], dtype=np.float64)
        ref = np.asarray(ref, dtype=np.float64)
        if got.shape != ref.shape:
            return refused(f"output '{name}' has shape {list(got.shape)}, source {list(ref.shape)}")
        mask = (token_masks or {}).get(name)
        if mask is not None and ref.ndim >= 3 and mask.shape == ref.shape[:2]:
            ref, got = ref[mask], got[mask]  # [real tokens, ...]
        elif mask is not None and mask.shape == ref.shape:  # one value per token (start/end logits)
            ref, got = np.where(mask, ref, 0.0), np.where(mask, got, 0.0)
        if not np.isfinite(got).all():  # max()/min() would silently drop NaNs
            return refused(f"output '{name}' has NaN or infinite values")
        diff = float(np.max(np.abs(got - ref))) if ref.size else 0.0
        max_abs = max(max_abs, diff)
        max_rel = max(max_rel, diff / max(float(np.max(np.abs(ref))), 1e-12))
        if small_head(ref):
            min_cos = min(min_cos, batch_cosine(ref, got))
            undecided += disagreements(ref, got)
        else:
            min_cos = min(min_cos, float(cosines(got, ref).min()))
        if ref.ndim == 2:
            top1.append(float(np.mean(got.argmax(-1) == ref.argmax(-1))))
    failed = []
    if tol.max_rel_error is not None and max_rel > tol.max_rel_error:
        failed.append(f"relative error {max_rel:.2e} > {tol.max_rel_error:.0e}")
    if min_cos < tol.min_cosine:
        failed.append(f"cosine {min_cos:.5f} < {tol.min_cosine}")
    if undecided:
        failed.append(f"top-1 class differs on {len(undecided)} sample(s) the source decides clearly")
    return SampleCheck(
        n=n,
        max_abs_error=max_abs,
        max_rel_error=max_rel,
        min_cosine=min_cos,
        top1_agreement=min(top1) if top1 else None,
        tolerance=tol,
        passed=not failed,
        reason="; ".join(failed) or None,
    )


def small_head(ref: np.ndarray) -> bool:
    return ref.ndim == 2 and 1 < ref.shape[1] <= SMALL_HEAD


def batch_cosine(ref: np.ndarray, got: np.ndarray) -> float:
    """Cosine of all rows' logits at once, each row centred first (softmax ignores a row's common offset)."""
    ref, got = ref - ref.mean(axis=1, keepdims=True), got - got.mean(axis=1, keepdims=True)
    return float(cosines(got.reshape(1, -1), ref.reshape(1, -1))[0])


def disagreements(ref: np.ndarray, got: np.ndarray) -> list[int]:
    """Rows whose top-1 class differs although the source's margin between its two best classes is wider than
    twice the row's largest logit error (a flip within the error band is noise; one beyond it is a wrong answer)."""
    best2 = np.sort(ref, axis=1)[:, -2:]
    margin = best2[:, 1] - best2[:, 0]
    error = np.abs(got - ref).max(axis=1)
    flipped = got.argmax(1) != ref.argmax(1)
    return [int(i) for i in np.flatnonzero(flipped & (margin > 2 * error))]


def recorded_tolerance(manifest) -> Tolerance:
    """The tolerance the artifact was validated against at conversion (fp32's, the strictest, where none is)."""
    samples = manifest.validation.samples if manifest.validation else None
    return samples.tolerance if samples is not None else FP32
