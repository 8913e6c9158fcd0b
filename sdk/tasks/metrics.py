"""The numerics tasks share: softmax, pooling, classification results, metrics and label mapping."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from bmsdk.errors import DataError


def softmax(logits: np.ndarray) -> np.ndarray:
    z = logits.astype(np.float64) - logits.max(axis=-1, keepdims=True)
    e = np.exp(z)
    return (e / e.sum(axis=-1, keepdims=True)).astype(np.float32)


def mean_pool(hidden: np.ndarray, mask: np.ndarray | None, normalize: bool) -> np.ndarray:
    """Sentence embeddings: the mean of token vectors over the attention mask, optionally L2-normalised."""
    hidden = hidden.astype(np.float32)
    if mask is None:
        pooled = hidden.mean(axis=1)
    else:
        m = mask.astype(np.float32)[..., None]
        pooled = (hidden * m).sum(axis=1) / np.clip(m.sum(axis=1), 1e-9, None)
    if normalize:
        pooled /= np.clip(np.linalg.norm(pooled, axis=-1, keepdims=True), 1e-12, None)
    return pooled


def classify(logits: np.ndarray, labels: Sequence[str] | None) -> list[dict]:
    probs = softmax(logits)
    names = list(labels) if labels else [str(i) for i in range(probs.shape[-1])]
    out = []
    for row in probs:
        i = int(row.argmax())
        out.append(
            {
                "label": names[i],
                "index": i,
                "score": float(row[i]),
                "scores": {names[j]: float(p) for j, p in enumerate(row)},
            }
        )
    return out


# --- metrics -----------------------------------------------------------------


def accuracy(pred: np.ndarray, truth: np.ndarray) -> float:
    return float(np.mean(pred == truth)) if len(truth) else float("nan")


def macro_f1(pred: np.ndarray, truth: np.ndarray, num_classes: int) -> float:
    scores = []
    for c in range(num_classes):
        tp = np.sum((pred == c) & (truth == c))
        fp = np.sum((pred == c) & (truth != c))
        fn = np.sum((pred != c) & (truth == c))
        if tp + fp + fn == 0:
            continue  # class absent from both: it does not count
        scores.append(2 * tp / (2 * tp + fp + fn))
    return float(np.mean(scores)) if scores else float("nan")


def classification_metrics(pred: np.ndarray, truth: np.ndarray, num_classes: int) -> dict[str, float]:
    return {"accuracy": accuracy(pred, truth), "macro_f1": macro_f1(pred, truth, num_classes)}


def score_logits(logits: np.ndarray, raw_labels: Sequence, labels: Sequence[str] | None) -> dict[str, float]:
    """Accuracy and macro-F1 of class logits against data labels (names or indices)."""
    truth = label_indices(raw_labels, labels, logits.shape[-1])
    return {**classification_metrics(logits.argmax(-1), truth, logits.shape[-1]), "n": len(truth)}


def label_indices(raw_labels: Sequence, labels: Sequence[str] | None, num_classes: int) -> np.ndarray:
    """Map data labels (class indices or names, case-insensitive) to indices; unknown names are an error."""
    names = {str(n).lower(): i for i, n in enumerate(labels or [])}
    out = []
    for value in raw_labels:
        if isinstance(value, (int, np.integer)) or (
            isinstance(value, str) and value.strip().lstrip("-").isdigit() and value.lower() not in names
        ):
            idx = int(value)
        elif str(value).lower() in names:
            idx = names[str(value).lower()]
        else:
            raise DataError(
                f"label '{value}' is not one of the model's labels {list(labels or [])}",
                "use the model's label names or class indices",
            )
        if not 0 <= idx < num_classes:
            raise DataError(
                f"label index {idx} is out of range for a model with {num_classes} classes",
                "fix the labels in the data",
            )
        out.append(idx)
    return np.asarray(out, dtype=np.int64)
