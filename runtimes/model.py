"""`Model`: a runtime backend plus the task's pre- and post-processing. What `bmsdk.load` returns."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from bmsdk.artifact import open_artifact
from bmsdk.data import Dataset
from bmsdk.errors import InputError, ManifestError, UnsupportedError
from bmsdk.manifest import Manifest
from bmsdk.runtimes import open_backend
from bmsdk.tasks import Task, get_task
from bmsdk.tasks.generation import GenerationResult, GenerationStream, Generator, Sampling
from bmsdk.tasks.preprocessing import ImagePreprocessor, make_preprocessor


class Model:
    """`run(feeds)` is the raw model; `predict(x)` takes texts, images or arrays and returns labels and scores.

    `runner` is any object with `run(feeds) -> dict` (a runtime backend, or the source model during conversion).
    """

    batch_size = 64  # inputs per runtime call when predict() is given a batch

    def __init__(self, folder: Path, manifest: Manifest, runner: Any):
        self.folder = Path(folder)
        self.manifest = manifest
        self.runner = runner
        self.task_spec = task_of(manifest)
        self.preprocessor = make_preprocessor(manifest.preprocessing, self.folder, manifest.inputs)
        self._generator: Generator | None = None

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
    def preprocess(self, items: Sequence[Any], **options) -> dict[str, np.ndarray]:
        """Feeds for a batch of raw inputs: strings for text models, images (paths, PIL, arrays) for image models,
        WAV paths or waveforms for audio models (`options`: the preprocessor's, audio: sampling_rate)."""
        if (
            isinstance(items, np.ndarray)
            and items.ndim == len(self.manifest.inputs[0].shape)
            and items.dtype.kind == "f"
            and len(self.manifest.inputs) == 1
            and self.manifest.data_kind not in ("text", "audio")  # a 2-D float array is a batch of raw waveforms
        ):
            if not np.isfinite(items).all():
                raise InputError(
                    f"the input array of shape {items.shape} holds NaN or infinite values", "pass finite values"
                )
            return {
                self.manifest.inputs[0].name: items.astype(self.manifest.inputs[0].dtype, copy=False)
            }  # already a batch
        if self.preprocessor is None:
            raise InputError("this model has no pre-processing", "call run({name: array}) with the model's inputs")
        return self.preprocessor(items, **options)

    def preprocess_images(self, items: Sequence[Any]) -> tuple[dict[str, np.ndarray], list[tuple[int, int]]]:
        """preprocess(items) of an image model and each image's own (height, width); an already pre-processed
        batch counts as images of the model's input size."""
        if isinstance(self.preprocessor, ImagePreprocessor) and not (
            isinstance(items, np.ndarray) and items.dtype.kind == "f" and items.ndim == 4
        ):
            return self.preprocessor.encode(items)
        feeds = self.preprocess(items)
        pre = self.manifest.preprocessing
        size = tuple(int(v) for v in pre.get("size", next(iter(feeds.values())).shape[2:4]))
        return feeds, [size] * len(next(iter(feeds.values())))

    def predict(self, x: Any, **options):
        """A single input gives one prediction; a batch gives a list (feature extraction: an (N, D) array).

        What is one input and what is a batch is decided by `batch_of`. Batches run `batch_size` inputs at a time
        (texts sorted by token count, so that little padding is computed); results keep the input order.
        `options` are the task's (token-classification: `aggregation_strategy`, `ignore_labels`).
        """
        unknown = sorted(set(options) - set(self.task_spec.predict_options))
        if unknown:
            takes = ", ".join(self.task_spec.predict_options) or "no options"
            raise InputError(
                f"predict() got unknown option(s) {', '.join(unknown)}", f"a {self.task} model takes {takes}"
            )
        if self.manifest.input_kind == "generation":
            return self.generate(x).text if isinstance(x, str) else [self.generate(p).text for p in x]
        items, single = self.task_spec.batch_of(x) or self.batch_of(x)
        if self.manifest.input_kind == "text":
            results = self._predict_texts(items, options)
        else:
            size, given = self.batch_size, {k: v for k, v in options.items() if v is not None}
            parts = [self._predict_batch(items[i : i + size], given) for i in range(0, len(items), size)]
            results = np.concatenate(parts) if isinstance(parts[0], np.ndarray) else [r for part in parts for r in part]
        return results[0] if single else results

    def batch_of(self, x: Any) -> tuple[Any, bool]:
        """(the batch `predict(x)` runs, whether x is one input).

        A list or tuple is a batch. A string, a path or a PIL image is one input. For audio models an ndarray is one
        waveform. For image models an ndarray is one
        image if it is HxW, HxWxC (C = 1, 3 or 4) or CxHxW (C = 1 or 3), and a batch if it is 4-D (NxHxWxC or NxCxHxW of
        pixels, or a float array shaped like the model input, taken as already pre-processed); a 1-channel model also
        reads NxHxW at its own HxW as N images (N > 1). Any other array is refused. For models without pre-processing
        an ndarray is a batch of model inputs.
        """
        kind = self.manifest.input_kind
        if isinstance(x, (list, tuple)):
            if not x:
                raise InputError("predict() got an empty list", "pass at least one input")
            return list(x), False
        if isinstance(x, (str, Path)) or hasattr(x, "convert"):
            return [x], True
        if isinstance(x, dict):
            raise InputError(
                "predict() cannot take a dict", self._what_to_pass() + "; model feeds go to run({name: array})"
            )
        if not isinstance(x, np.ndarray) or x.ndim == 0:
            raise InputError(f"predict() cannot take {_describe(x)}", self._what_to_pass())
        if kind == "text":
            raise InputError(f"a text model cannot take an array (shape {x.shape})", self._what_to_pass())
        if kind == "audio":
            return [x], True  # one waveform; the preprocessor refuses any array that is not 1-D
        if kind != "image":
            return x, False
        if self._is_image_batch(x):
            return (list(x) if x.ndim == 3 else x), False
        return [x], True

    def _is_image_batch(self, x: np.ndarray) -> bool:
        pre = self.manifest.preprocessing
        if x.ndim == 4:
            return True
        if x.ndim == 3 and pre["channels"] == 1 and x.shape[0] > 1 and list(x.shape[1:]) == list(pre["size"]):
            return True
        if x.ndim == 2 or (x.ndim == 3 and (x.shape[-1] in (1, 3, 4) or x.shape[0] in (1, 3))):
            return False
        height, width = pre["size"]
        gray = f", or NxHxW at the model's {height}x{width} for N images" if pre["channels"] == 1 else ""
        raise InputError(
            f"cannot read an image array of shape {x.shape}: one image is HxW, HxWxC or CxHxW",
            f"pass one image with C = 1, 3 or 4 channels last or 1 or 3 first; a batch as a list, "
            f"NxHxWxC or NxCxHxW{gray}",
        )

    def _what_to_pass(self) -> str:
        kind = self.manifest.input_kind
        if kind == "text":
            return "pass a string or a list of strings"
        if kind == "image":
            return "pass an image path, a PIL image, a numpy pixel array, or a list of them"
        if kind == "audio":
            return "pass a .wav path, a 1-D float waveform array, or a list of them"
        return "pass a numpy array batch, or call run({name: array}) with the model's inputs"

    def _predict_batch(self, items: Any, options: dict | None = None):
        if self.manifest.input_kind == "image":
            feeds, sizes = self.preprocess_images(items)
            post = self.manifest.postprocessing
            return self.task_spec.postprocess_images(post, self.run(feeds), feeds, sizes, options or None)
        feeds = self.preprocess(items, **(options or {}))
        return self.task_spec.postprocess(self.manifest.postprocessing, self.run(feeds), feeds)

    def _predict_texts(self, texts: list, options: dict):
        pre, task = self.preprocessor, self.task_spec
        rows, owners = task.split(pre.encode(texts))
        order = sorted(range(len(rows)), key=lambda i: len(rows[i].ids))
        results: list = [None] * len(rows)
        for start in range(0, len(order), self.batch_size):
            chunk = order[start : start + self.batch_size]
            batch = [rows[i] for i in chunk]
            feeds = pre.pad(batch)
            post = self.manifest.postprocessing
            answers = self.task_spec.postprocess_text(post, self.run(feeds), feeds, batch, pre, options)
            for i, result in zip(chunk, answers):
                results[i] = result
        results = task.merge(results, owners, len(texts))
        return np.stack(results) if isinstance(results[0], np.ndarray) else results

    def generate(
        self,
        prompt: str | Sequence[dict],
        max_new_tokens: int = 64,
        temperature: float = 0.0,
        top_k: int | None = None,
        top_p: float | None = None,
        stop: str | Sequence[str] | None = None,
        seed: int | None = None,
        stream: bool = False,
        cache: str = "refuse",
        ignore_eos: bool = False,
    ) -> GenerationResult | GenerationStream:
        """Text from a prompt (or chat messages) for a text-generation model: greedy when temperature is 0.

        stream=True gives an iterator of text pieces (its `.result` holds the GenerationResult once exhausted).
        When the KV cache is full, cache="refuse" raises and cache="slide" drops the oldest tokens. ignore_eos=True
        goes on past end-of-sequence tokens (benchmarks use it to time a fixed number of tokens).
        """
        if self.manifest.input_kind != "generation":
            raise UnsupportedError(
                f"generate() needs a text-generation model; this one is {self.manifest.task}", "call predict() instead"
            )
        sampling = Sampling(temperature, top_k, top_p, seed)
        live = GenerationStream(
            self.generator,
            prompt,
            max_new_tokens=max_new_tokens,
            sampling=sampling,
            stop=stop,
            cache_policy=cache,
            ignore_eos=ignore_eos,
        )
        if stream:
            return live
        for _ in live:
            pass
        return live.result

    @property
    def generator(self) -> Generator:
        if self._generator is None:
            buckets = getattr(self.manifest.target_config, "sequence_buckets", None)
            self._generator = Generator(self.run, self.manifest.preprocessing, self.preprocessor.tokenizer, buckets)
        return self._generator

    def primary_outputs(self, data: Dataset, batch_size: int = 32) -> np.ndarray:
        """Class logits (classification) or pooled embeddings (feature extraction) for a whole dataset."""
        chunks, post = [], self.manifest.postprocessing
        for batch in data.batches(batch_size):
            if data.kind == "text" and self.manifest.input_kind == "text":
                rows, owners = self.task_spec.split(self.preprocessor.encode(list(batch)))
                feeds = self.preprocessor.pad(rows)
                primary = self.task_spec.primary_text(post, self.run(feeds), feeds, rows)
                chunks.append(self.task_spec.merge(primary, owners, len(batch)))
                continue
            if self.manifest.input_kind == "image" and data.kind != "text":
                feeds, sizes = self.preprocess_images(batch)
                chunks.append(self.task_spec.primary_images(post, self.run(feeds), feeds, sizes))
                continue
            feeds = self.preprocess(batch if data.kind != "text" else list(batch))
            chunks.append(self.task_spec.primary(post, self.run(feeds), feeds))
        return np.concatenate(chunks)

    def evaluate(self, data: Dataset, batch_size: int = 32) -> dict[str, float] | None:
        """The task metric on labelled data (accuracy and macro-F1 for classifiers; None for tasks without one)."""
        return self.task_spec.metrics(self.primary_outputs(data, batch_size), data.labels, self.labels)

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


def task_of(manifest: Manifest) -> Task:
    """The manifest's task; one this bmsdk does not know means the artifact needs a newer bmsdk or a plugin."""
    try:
        return get_task(manifest.task)
    except UnsupportedError as e:
        raise ManifestError(f"bmsdk.json names unknown task {manifest.task!r}", e.fix) from None


def _describe(x: Any) -> str:
    return "a 0-d array" if isinstance(x, np.ndarray) else "None" if x is None else f"a {type(x).__name__}"


def load(
    path: str | Path,
    backend: str | None = None,
    threads: int | None = None,
    verify: bool = True,
    public_key: str | Path | bytes | None = None,
    **options,
) -> Model:
    """Open an artifact folder: manifest validated, checksums verified, backend chosen from the target.

    With `public_key` (a PEM path or bytes; default $BMSDK_PUBLIC_KEY), bmsdk.sig must be that key's signature of
    bmsdk.json, checked before any other file is read; checksums are then verified even with verify=False.
    """
    folder, manifest = open_artifact(path, verify=verify, public_key=public_key)
    return Model(folder, manifest, open_backend(folder, manifest, backend=backend, threads=threads, **options))
