"""`Model`: a runtime backend plus the task's pre- and post-processing. What `bmsdk.load` returns."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import numpy as np

from .data import Dataset
from .errors import InputError
from .manifest import Manifest
from .preprocessing import make_preprocessor
from .tasks import postprocess, score_logits


class Model:
    """`run(feeds)` is the raw model; `predict(x)` takes texts, images or arrays and returns labels and scores.

    `runner` is any object with `run(feeds) -> dict` (a runtime backend, or the source model during conversion).
    """

    def __init__(self, folder: Path, manifest: Manifest, runner: Any):
        self.folder = Path(folder)
        self.manifest = manifest
        self.runner = runner
        self.preprocessor = make_preprocessor(manifest.preprocessing, self.folder, manifest.inputs)

    # --- raw ---------------------------------------------------------------
    @property
    def task(self) -> str:
        return self.manifest.task

    @property
    def labels(self) -> list[str] | None:
        return self.manifest.labels

    @property
    def backend(self) -> str:
        return getattr(self.runner, "name", type(self.runner).__name__)

    def run(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        return self.runner.run(feeds)

    # --- with pre/post-processing -------------------------------------------
    def preprocess(self, items: Sequence[Any]) -> dict[str, np.ndarray]:
        """Feeds for a batch of raw inputs: strings for text models, images (paths, PIL, arrays) for image models."""
        if isinstance(items, np.ndarray) and items.ndim == len(self.manifest.inputs[0].shape) and items.dtype.kind == "f" \
                and len(self.manifest.inputs) == 1 and self.manifest.preprocessing.get("kind") != "text":
            return {self.manifest.inputs[0].name: items.astype(self.manifest.inputs[0].dtype, copy=False)}  # already a batch
        if self.preprocessor is None:
            raise InputError("this model has no pre-processing", "call run({name: array}) with the model's inputs")
        return self.preprocessor(items)

    def predict(self, x: Any):
        """A single input gives one prediction; a list (or a batch array) gives a list."""
        single = isinstance(x, (str, Path)) or (isinstance(x, np.ndarray) and self._one_array(x)) or hasattr(x, "convert")
        items = [x] if single else x
        if isinstance(items, (list, tuple)) and not items:
            raise InputError("predict() got an empty list", "pass at least one input")
        feeds = self.preprocess(items)
        result = postprocess(self.task, self.manifest.postprocessing, self.run(feeds), feeds)
        return result[0] if single else result

    def _one_array(self, x: np.ndarray) -> bool:
        """HxW, HxWxC and CxHxW arrays are one image, but a 1-channel model reads NxHxW as N images."""
        pre = self.manifest.preprocessing
        if x.ndim == 3 and pre.get("kind") == "image" and int(pre.get("channels", 3)) == 1:
            return 1 in (x.shape[0], x.shape[-1])
        return x.ndim <= 3

    def primary_outputs(self, data: Dataset, batch_size: int = 32) -> np.ndarray:
        """Class logits (classification) or pooled embeddings (feature extraction) for a whole dataset."""
        chunks = []
        for batch in data.batches(batch_size):
            feeds = self.preprocess(batch if data.kind != "text" else list(batch))
            outputs = self.run(feeds)
            if self.task == "feature-extraction":
                chunks.append(postprocess(self.task, self.manifest.postprocessing, outputs, feeds))
            else:
                chunks.append(outputs[self.manifest.postprocessing.get("output") or next(iter(outputs))].astype(np.float32))
        return np.concatenate(chunks)

    def evaluate(self, data: Dataset, batch_size: int = 32) -> dict[str, float]:
        """Accuracy and macro-F1 on labelled data (classification tasks)."""
        return score_logits(self.primary_outputs(data, batch_size), data.labels, self.labels)

    def close(self) -> None:
        close = getattr(self.runner, "close", None)
        if close:
            close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __repr__(self) -> str:
        m = self.manifest
        return f"Model({m.name!r}, task={m.task}, target={m.target}, precision={m.precision}, backend={self.backend})"


def load(path: str | Path, backend: str | None = None, threads: int | None = None, verify: bool = True,
         public_key: str | Path | bytes | None = None, **options) -> Model:
    """Open an artifact folder: manifest validated, checksums verified, backend chosen from the target.

    With `public_key` (a PEM path or bytes; default $BMSDK_PUBLIC_KEY), bmsdk.sig must be that key's signature of
    bmsdk.json, checked before any other file is read; checksums are then verified even with verify=False.
    """
    from .artifact import open_artifact
    from bmsdk.runtimes import open_backend

    folder, manifest = open_artifact(path, verify=verify, public_key=public_key)
    return Model(folder, manifest, open_backend(folder, manifest, backend=backend, threads=threads, **options))
