"""Model feeds from datasets: calibration batches, recovery batches (with labels) and the samples in samples.npz.

Every batch goes through the reference Model's own preprocessing and is checked against the model's inputs, so a
dataset that does not fit the model is refused with the data's name, before any export.
"""

from __future__ import annotations

import numpy as np

from bmsdk.data import Dataset
from bmsdk.errors import DataError, InputError
from bmsdk.runtimes import check_feeds
from bmsdk.runtimes.model import Model
from bmsdk.tasks.metrics import label_indices

from .sources.loader import example_feeds

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


def class_count(outputs) -> int | None:
    """The number of classes of a classifier: the first fixed dim after the batch of its first output."""
    return next((d for d in outputs[0].shape[1:] if isinstance(d, int)), None)


def recover_batches(model: Model, data: Dataset, limit: int = 4096) -> list[tuple[dict, np.ndarray | None]]:
    """Recovery data as (feeds, label indices or None) batches: 32 images or 16 texts each."""
    size = 16 if data.kind == "text" else 32
    feeds = calibration_feeds(model, data, limit, batch_size=size)
    if data.labels is None:
        return [(f, None) for f in feeds]
    labels = label_indices(data.head(limit).labels, model.labels, class_count(model.manifest.outputs))
    return [(f, labels[i * size : (i + 1) * size]) for i, f in enumerate(feeds)]


def calibration_feeds(model: Model, data: Dataset, limit: int, batch_size: int = 8) -> list[dict[str, np.ndarray]]:
    data = data.head(limit)
    return [checked_feeds(model, batch, data, "calibration") for batch in data.batches(batch_size)]


def checked_feeds(model: Model, batch, data: Dataset, what: str) -> dict[str, np.ndarray]:
    kind = model.manifest.data_kind
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


def sample_feeds(model: Model, data: Dataset | None, n: int) -> tuple[dict[str, np.ndarray], np.ndarray | None]:
    """Inputs for samples.npz and the raw inputs they came from (texts, uint8 HxWxC pixels after resizing, or float32
    waveforms at the model's rate and clip length).

    Taken from the first examples of the given data, else built-in texts or random images.
    """
    n = max(n, 2)  # batch >= 2 keeps the batch dim visibly dynamic
    if data is not None and len(data) >= 2:
        return _feeds_from_data(model, data.head(n))
    kind = model.manifest.data_kind
    if kind == "text":
        own = list(model.task_spec.sample_texts) or SAMPLE_TEXTS
        texts = (own * (n // len(own) + 1))[:n]
        return model.preprocess(texts), _raw_texts(texts)
    if kind == "audio":
        clips = synthetic_clips(model.manifest.preprocessing, n)
        return model.preprocess(list(clips)), clips
    if kind == "image":
        pre = model.manifest.preprocessing
        images = np.random.default_rng(0).integers(0, 256, (n, *pre["size"], pre["channels"]), dtype=np.uint8)
        # the raw pixels are the model-size ones the pipeline's resize and crop make (what a phone app hands over)
        return model.preprocess(list(images)), np.stack([model.preprocessor.load(i) for i in images]).astype(np.uint8)
    return example_feeds(model.manifest.inputs, batch=n), None


def _feeds_from_data(model: Model, head: Dataset) -> tuple[dict[str, np.ndarray], np.ndarray | None]:
    feeds = checked_feeds(model, head.items, head, "sample")
    if head.kind == "text":
        return feeds, _raw_texts(head.items)
    if head.kind == "image":
        return feeds, np.stack([model.preprocessor.load(item) for item in head.items]).astype(np.uint8)
    if head.kind == "audio":  # the waveforms at the model's rate and clip length (what a phone app hands over)
        return feeds, np.stack([model.preprocessor.clip(item) for item in head.items]).astype(np.float32)
    return feeds, None


def synthetic_clips(pre: dict, n: int, seed: int = 0) -> np.ndarray:
    """`n` clips of the model's length and rate: tones of different pitch with a little noise, float32 [n, samples]."""
    rng = np.random.default_rng(seed)
    rate, samples = int(pre["sampling_rate"]), int(pre["samples"])
    t = np.arange(samples) / rate
    pitch = rng.uniform(100.0, min(4000.0, rate / 4), (n, 1))
    clips = 0.5 * np.sin(2 * np.pi * pitch * t) + 0.05 * rng.standard_normal((n, samples))
    return clips.astype(np.float32)


def _raw_texts(texts) -> np.ndarray | None:
    """The texts samples.npz keeps; None for (question, context) pairs, whose windows are not one row each."""
    return np.asarray(texts, dtype=str) if all(isinstance(t, str) for t in texts) else None
