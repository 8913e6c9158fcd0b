"""Turning raw inputs (texts, images, audio) into model feeds. numpy, tokenizers and Pillow only: no torch."""

from __future__ import annotations

import functools
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from bmsdk.errors import InputError
from bmsdk.image_pipeline import default_resize
from bmsdk.manifest import TensorSpec

from .audio_ops import WAV_SUFFIXES, extract, read_wav, resample, waveform
from .generation import GenerationPreprocessor
from .image_ops import center_crop, resize_image
from .tokenizer import load_tokenizer

TEXT_INPUTS = ("input_ids", "attention_mask", "token_type_ids")


class TextRow(NamedTuple):
    """One encoded text: its token ids and token type ids (not padded), the text (question answering: the
    (question, context) pair), and the tokenizers `Encoding` (tokens, character offsets into the text, special-token
    mask, overflowing windows) for tasks that answer in spans of the text."""

    ids: np.ndarray
    type_ids: np.ndarray
    text: str
    encoding: Any


class TextPreprocessor:
    """WordPiece, BPE or Unigram tokenization from the artifact's `tokenizer.json`, padded to a batch's longest text."""

    encode_chunk = 1024  # texts handed to the tokenizer at once

    def __init__(self, config: dict, folder: Path, inputs: Sequence[TensorSpec]):
        self.max_length = int(config["max_length"])
        self.pad_id = int(config.get("pad_id", 0))
        self.tokenizer = load_tokenizer(folder / config["tokenizer"])
        self.tokenizer.no_padding()
        self.stride = int(config.get("stride", 0))  # question answering: tokens shared by consecutive windows
        if self.stride:  # a (question, context) pair: the context is cut into overlapping windows
            self.tokenizer.enable_truncation(self.max_length, stride=self.stride, strategy="only_second")
        else:
            self.tokenizer.enable_truncation(self.max_length)
        self.inputs = {t.name: t for t in inputs if t.name in TEXT_INPUTS}
        if "input_ids" not in self.inputs:
            raise InputError("a text model needs an 'input_ids' input", "convert it with --task text-classification")

    def __call__(self, texts: Sequence[str]) -> dict[str, np.ndarray]:
        """Tokenize, padded to the longest text of the batch (runtimes with fixed lengths pad further themselves)."""
        return self.pad(self.encode(texts))

    def encode(self, texts: Sequence[str]) -> list[TextRow]:
        """Each text's tokens, truncated to max_length and not padded."""
        if not _is_text_list(texts, pairs=bool(self.stride)):
            if self.stride:
                raise InputError(
                    "a question-answering model takes (question, context) pairs",
                    "pass predict({'question': ..., 'context': ...}) or a list of them",
                )
            raise InputError("text input must be a list of strings", "pass predict('text') or predict(['a', 'b'])")
        rows = []
        for start in range(0, len(texts), self.encode_chunk):
            chunk = [tuple(t) if self.stride else t for t in texts[start : start + self.encode_chunk]]
            try:
                encoded = self.tokenizer.encode_batch(chunk)
            except Exception as e:  # tokenizers raises a bare Exception, e.g. a question longer than max_length
                reason = str(e).strip().splitlines()[0][:200] if str(e).strip() else type(e).__name__
                fix = "shorten the question" if self.stride else "check the input texts"
                raise InputError(f"cannot tokenize the input ({reason})", fix) from None
            for text, e in zip(chunk, encoded):
                rows.append(TextRow(np.asarray(e.ids, dtype=np.int64), np.asarray(e.type_ids, dtype=np.int64), text, e))
        return rows

    def join_tokens(self, tokens: Sequence[str]) -> str:
        """Tokens back to a string as transformers' `convert_tokens_to_string` does (the tokenizer's decoder)."""
        decoder = self.tokenizer.decoder
        return decoder.decode(list(tokens)) if decoder is not None else " ".join(tokens)

    @functools.cached_property
    def unk_id(self) -> int | None:
        """The id of the tokenizer model's unknown token (None where it has none)."""
        model = json.loads(self.tokenizer.to_str()).get("model") or {}
        if isinstance(model.get("unk_id"), int):  # Unigram
            return model["unk_id"]
        token = model.get("unk_token")  # WordPiece, BPE
        return self.tokenizer.token_to_id(token) if isinstance(token, str) else None

    @property
    def word_aware(self) -> bool:
        """Whether the tokenizer marks the pieces that continue a word (WordPiece's '##')."""
        return bool(getattr(self.tokenizer.model, "continuing_subword_prefix", None))

    def pad(self, rows: Sequence[tuple[np.ndarray, np.ndarray] | TextRow]) -> dict[str, np.ndarray]:
        """Model feeds for encoded texts: padded on the right with pad_id (attention mask 0) to the longest."""
        width = max((len(row[0]) for row in rows), default=0)
        columns = {
            "input_ids": np.full((len(rows), width), self.pad_id, dtype=np.int64),
            "attention_mask": np.zeros((len(rows), width), dtype=np.int64),
            "token_type_ids": np.zeros((len(rows), width), dtype=np.int64),
        }
        for r, row in enumerate(rows):
            ids, types = row[0], row[1]
            columns["input_ids"][r, : len(ids)] = ids
            columns["attention_mask"][r, : len(ids)] = 1
            columns["token_type_ids"][r, : len(ids)] = types
        return {name: columns[name].astype(spec.dtype, copy=False) for name, spec in self.inputs.items()}


def _is_text_list(texts: Any, pairs: bool = False) -> bool:
    """A list of strings, or with `pairs` of (question, context) string pairs."""
    if pairs:
        return isinstance(texts, (list, tuple)) and all(
            isinstance(t, (list, tuple)) and len(t) == 2 and all(isinstance(v, str) for v in t) for t in texts
        )
    if isinstance(texts, np.ndarray) and texts.ndim != 1:
        return False
    return isinstance(texts, (list, tuple, np.ndarray)) and all(isinstance(t, str) for t in texts)


class ImagePreprocessor:
    """Resize, crop, scale, normalise and lay out images as the manifest says (bmsdk.image_pipeline): the steps and
    arithmetic of transformers' image processors (PIL backend)."""

    def __init__(self, config: dict, inputs: Sequence[TensorSpec]):
        self.input_name = config.get("input_name", inputs[0].name)
        self.height, self.width = (int(v) for v in config["size"])
        self.channels = int(config.get("channels", 3))
        self.layout = config.get("layout", "NCHW")
        self.resize = config.get("resize") or default_resize([self.height, self.width])
        self.crop = config.get("center_crop")
        self.scale = float(config.get("scale", 1 / 255))
        self.offset = float(config.get("offset", 0.0))
        self.mean = np.asarray(config.get("mean", [0.0] * self.channels), dtype=np.float32)
        self.std = np.asarray(config.get("std", [1.0] * self.channels), dtype=np.float32)
        again = config.get("renormalize_std")
        self.renormalize_std = None if again is None else np.asarray(again, dtype=np.float32)
        self.bgr = config.get("channel_order", "RGB") == "BGR"
        spec = next(t for t in inputs if t.name == self.input_name)
        self.dtype = spec.dtype

    def load(self, image: Any) -> np.ndarray:
        """One image (path, PIL image or HxW / HxWxC array of pixel values 0-255), resized and cropped to the
        model's size, as HxWxC float32 pixels 0-255."""
        return self.load_sized(image)[0]

    def load_sized(self, image: Any) -> tuple[np.ndarray, tuple[int, int]]:
        """load(image) and the image's own (height, width) before any resize or crop."""
        from PIL import Image

        if isinstance(image, (str, Path)):
            path = Path(image)
            if not path.is_file():
                raise InputError(f"image file {path} does not exist", "pass an existing image path")
            try:
                image = Image.open(path)
                image.load()
            except Exception as e:  # Pillow raises several types for unreadable files
                raise InputError(f"{path} is not a readable image ({e})", "pass a PNG/JPEG/BMP file") from None
        if isinstance(image, np.ndarray):
            image = Image.fromarray(pixels_hwc(image))
        if not hasattr(image, "convert"):
            raise InputError(
                f"cannot read an image from {type(image).__name__}", "pass a path, a PIL image or a numpy array"
            )
        size = (int(image.height), int(image.width))
        pixels = np.asarray(resize_image(image.convert("L" if self.channels == 1 else "RGB"), self.resize))
        if self.crop is not None:
            pixels = center_crop(pixels, *self.crop)
        if pixels.shape[:2] != (self.height, self.width):
            raise InputError(
                f"the model takes images of {self.height}x{self.width} and does not resize them, got "
                f"{pixels.shape[0]}x{pixels.shape[1]}",
                f"resize the image to {self.width}x{self.height} (width x height) first",
            )
        pixels = pixels.astype(np.float32)
        return (pixels[..., None] if pixels.ndim == 2 else pixels), size

    def __call__(self, images: Sequence[Any]) -> dict[str, np.ndarray]:
        return self.encode(images)[0]

    def encode(self, images: Sequence[Any]) -> tuple[dict[str, np.ndarray], list[tuple[int, int]]]:
        """The feeds of a batch of images and each image's own (height, width) before pre-processing."""
        loaded = [self.load_sized(img) for img in images]
        return {self.input_name: self.normalize(np.stack([p for p, _ in loaded]))}, [s for _, s in loaded]

    def normalize(self, pixels: np.ndarray) -> np.ndarray:
        """NxHxWxC pixels 0-255 to the model's input: transformers' rescale (the product in float64, then float32),
        normalize and flip, in its order and float32 arithmetic, then the layout."""
        batch = (pixels.astype(np.float64) * self.scale).astype(np.float32)
        if self.offset:  # EfficientNet's rescale_offset: transformers subtracts 1 in float32
            batch += np.float32(self.offset)
        batch = (batch - self.mean) / self.std
        if self.renormalize_std is not None:
            batch = batch / self.renormalize_std
        if self.bgr:
            batch = batch[..., ::-1]
        if self.layout == "NCHW":
            batch = batch.transpose(0, 3, 1, 2)
        return np.ascontiguousarray(batch, dtype=self.dtype)


def pixels_hwc(array: np.ndarray) -> np.ndarray:
    """One image array (HxW, HxWxC or CxHxW, C = 1, 3 or 4; uint8 0-255 or float 0-1/0-255) as HxW or HxWxC uint8."""
    if array.dtype.kind not in "buif" or array.size == 0:
        raise InputError(
            f"an image array must hold numbers, got {array.dtype} of shape {array.shape}",
            "pass uint8 pixels 0-255 or floats 0-1",
        )
    if array.ndim == 3 and array.shape[0] in (1, 3) and array.shape[-1] not in (1, 3, 4):
        array = np.moveaxis(array, 0, -1)  # CHW -> HWC
    if array.ndim == 3 and array.shape[-1] == 1:
        array = array[..., 0]
    if array.ndim not in (2, 3) or (array.ndim == 3 and array.shape[-1] not in (3, 4)):
        raise InputError(
            f"an image array must be HxW, HxWxC or CxHxW with C = 1, 3 or 4, got shape {array.shape}",
            "pass one image at a time, or a list",
        )
    if array.dtype == np.uint8:
        return array
    if array.dtype.kind == "f" and not np.isfinite(array).all():
        raise InputError(
            f"the image array of shape {array.shape} holds NaN or infinite values", "pass finite pixel values"
        )
    if array.max() <= 1.0 + 1e-6:
        array = array * 255.0  # float images in [0, 1]
    return np.clip(array, 0, 255).round().astype(np.uint8)


class AudioPreprocessor:
    """Waveforms to `input_values` (and `attention_mask`) as the manifest says: read (WAV path) or take (1-D float
    array at the model's rate, or at `sampling_rate`), resample, then transformers' Wav2Vec2FeatureExtractor steps
    at a fixed clip length (bmsdk.tasks.audio_ops.extract)."""

    def __init__(self, config: dict, inputs: Sequence[TensorSpec]):
        self.input_name = config.get("input_name", "input_values")
        self.sampling_rate = int(config["sampling_rate"])
        self.samples = int(config["samples"])
        self.do_normalize = bool(config.get("do_normalize", True))
        self.padding_value = float(config.get("padding_value", 0.0))
        self.specs = {t.name: t for t in inputs}
        self.mask = "attention_mask" in self.specs and bool(config.get("attention_mask", True))

    def load(self, item: Any, sampling_rate: int | None = None) -> np.ndarray:
        """One input as a mono float32 waveform at the model's sampling rate (not yet cut to the clip length)."""
        if isinstance(item, (str, Path)):
            path = Path(item)
            if path.suffix.lower() not in WAV_SUFFIXES:
                raise InputError(f"{path} is not a .wav file", "pass a PCM .wav file or a 1-D float array")
            if sampling_rate is not None:
                raise InputError(
                    "sampling_rate= applies to arrays; a WAV file carries its own", "drop sampling_rate for WAV paths"
                )
            samples, rate = read_wav(path)
        else:
            samples, rate = waveform(item), self.sampling_rate if sampling_rate is None else sampling_rate
        return resample(samples, rate, self.sampling_rate)

    def __call__(self, items: Sequence[Any], sampling_rate: int | None = None) -> dict[str, np.ndarray]:
        if isinstance(items, np.ndarray) and items.ndim == 2:
            items = list(items)  # a batch of equal-length clips (eval .npz, samples)
        return self.features([self.load(item, sampling_rate) for item in items])

    def features(self, clips: Sequence[np.ndarray]) -> dict[str, np.ndarray]:
        """Model feeds from mono float32 clips at the model's rate."""
        values, mask = extract(list(clips), self.samples, self.do_normalize, self.padding_value, self.mask)
        feeds = {self.input_name: values.astype(self.specs[self.input_name].dtype, copy=False)}
        if mask is not None:
            feeds["attention_mask"] = mask.astype(self.specs["attention_mask"].dtype, copy=False)
        return feeds

    def clip(self, item: Any) -> np.ndarray:
        """One input as the raw waveform the model sees: at its rate, trimmed or padded to the clip length."""
        samples = self.load(item)[: self.samples]
        return np.pad(samples, (0, self.samples - len(samples)), constant_values=self.padding_value)


def make_preprocessor(config: dict, folder: Path, inputs: Sequence[TensorSpec]):
    kind = config.get("kind")
    if kind == "text":
        return TextPreprocessor(config, folder, inputs)
    if kind == "image":
        return ImagePreprocessor(config, inputs)
    if kind == "audio":
        return AudioPreprocessor(config, inputs)
    if kind == "generation":
        return GenerationPreprocessor(config, folder, inputs)
    return None
